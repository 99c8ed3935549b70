# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
export PORT

.PHONY: run test test-clock lint install install-dev lock translations messages chromium java faketime npm bench bench-dispatch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Every package comes from a lock file (requirements/*.txt: the whole tree pinned, each file checked
# against its hashes), then the app itself without its dependencies, built by the locked setuptools.
# `pip check` fails when pyproject.toml asks for something the lock does not hold: run `make lock`.
LOCK_CHECK = $(BIN)/pip check >/dev/null || { $(BIN)/pip check; \
	echo "pyproject.toml and the lock files disagree: run 'make lock'"; exit 1; }
$(VENV)/.installed: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/runtime.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(LOCK_CHECK)
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	@$(LOCK_CHECK)
	touch $@

# FHIR R4 models for the export test, which need pydantic 1: a virtualenv of their own.
FHIR_R4_VENV := .venv-fhir-r4
$(FHIR_R4_VENV)/.installed: tests/fhir_r4/requirements.txt
	$(PYTHON) -m venv $(FHIR_R4_VENV)
	$(FHIR_R4_VENV)/bin/pip install --quiet --require-hashes -r tests/fhir_r4/requirements.txt
	touch $@

# The lock files, made by pip-tools' pip-compile (options in pyproject.toml, [tool.pip-tools]):
# requirements/runtime.txt for `make run` (with setuptools, which builds the app), requirements/dev.txt
# for `make test` (the dev extra too, at the same versions as runtime.txt), and the FHIR R4
# virtualenv's tests/fhir_r4/requirements.txt (from requirements.in beside it; it keeps the extra in
# pydantic[email], which that venv's older pip needs to match fhir.resources). Run it after changing
# a dependency: every pin that still fits is kept. LOCK_ARGS=--upgrade moves everything to the newest
# versions, LOCK_ARGS="--upgrade-package NAME" one package. Needs PyPI (several minutes).
PIP_COMPILE = $(BIN)/pip-compile --quiet $(LOCK_ARGS)
lock: | $(BIN)/python
	@test -x $(BIN)/pip-compile || $(BIN)/pip install --quiet \
	  "$$(grep -o 'pip-tools==[0-9.]*' pyproject.toml)"
	$(PIP_COMPILE) --all-build-deps -o requirements/runtime.txt pyproject.toml
	$(PIP_COMPILE) --all-build-deps --extra dev -c requirements/runtime.txt \
	  -o requirements/dev.txt pyproject.toml
	$(PIP_COMPILE) --no-strip-extras -o tests/fhir_r4/requirements.txt tests/fhir_r4/requirements.in

# Test-only JavaScript (axe-core for the accessibility tests); nothing from npm is ever served.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@
npm: node_modules/.installed

install: $(VENV)/.installed translations
install-dev: $(VENV)/.installed-dev translations npm $(FHIR_R4_VENV)/.installed

# Compiled catalogues are build output (.mo files are not committed).
translations: $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -d companion/translations 2>&1 | tail -n 1

# After changing texts: refresh the template and the catalogues, then translate what is new.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
	  -o companion/translations/messages.pot .
	$(BIN)/pybabel update -i companion/translations/messages.pot -d companion/translations \
	  --no-fuzzy-matching

# Browser tests drive Debian's chromium, and the handout test reads its QR code with zbar
# (libzbar0, through pyzbar); install them when missing and we may (root).
chromium:
	@{ command -v chromium >/dev/null 2>&1 && ldconfig -p | grep -q libzbar.so.0; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    apt-get install -y -qq chromium libzbar0 >/dev/null; \
	  else echo "chromium or libzbar0 is missing (apt-get install chromium libzbar0): browser and QR tests will be skipped"; fi; }

# The W3C Nu HTML Checker (node_modules/vnu-jar) is a Java program: the markup tests need a Java
# runtime, installed when missing and we may (root).
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    apt-get install -y -qq default-jre-headless >/dev/null; \
	  else echo "java is missing (apt-get install default-jre-headless): the Nu HTML Checker tests will be skipped"; fi; }

run: install
	$(FLASK) db upgrade
	$(FLASK) demo --base-url http://127.0.0.1:$(PORT)
	@mkdir -p instance
	COMPANION_PYTHON=$(abspath $(BIN)/python) $(BIN)/supervisord --configuration supervisord.conf

# pip-audit checks every lock file for known vulnerabilities (tools/audit_deps.py; accepted ones are
# listed in requirements/audit-ignore.txt). When no vulnerability service answers, AUDIT=if-reachable
# (the default, so `make test` works on a fresh machine that reaches only the package index) prints a
# loud warning that the audit did NOT run and goes on; AUDIT=require fails (use it before a release).
AUDIT ?= if-reachable
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python tools/audit_deps.py --mode $(AUDIT) requirements/runtime.txt requirements/dev.txt \
	  tests/fhir_r4/requirements.txt

test: install-dev chromium java lint
	$(BIN)/pytest

# No test may depend on the date, the hour or the machine's time zone: the suite but the browser
# tests (they drive a real chromium), under Debian's libfaketime at four clocks that keep ticking:
# 45 and 200 days ahead (the other side of daylight saving in Europe and the US), and tomorrow at
# 23:45 and at 03:10 UTC, each in a time zone whose date is not UTC's. The clock is moved by an
# offset in seconds, so the worker processes a test starts share its clock. libfaketime 0.9.10
# cannot fake the monotonic clock under Python (timed waits would last years), hence
# FAKETIME_DONT_FAKE_MONOTONIC=1, and tests/libfaketime.py works around its broken time.sleep().
# Only pytest runs under it; every clock runs, and the target fails if any of them failed.
# schemathesis (marker fuzz) sends generated data that reads no clock: it runs once, in `make test`.
TEST_CLOCKS := "+45 days|America/New_York" "+200 days|Europe/Madrid" \
	"tomorrow 23:45|Pacific/Kiritimati" "tomorrow 03:10|America/Los_Angeles"
test-clock: install-dev faketime
	@status=0; for spec in $(TEST_CLOCKS); do \
	  clock=$${spec%|*}; zone=$${spec#*|}; \
	  offset=$$(( $$(date -u -d "$$clock" +%s) - $$(date -u +%s) )); \
	  echo "== test-clock: $$(date -u -d "$$clock" '+%F %H:%M') UTC ($$clock), TZ=$$zone"; \
	  TZ=$$zone FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "+$$offset" \
	    $(BIN)/python -m pytest -p tests.libfaketime -m "not e2e and not fuzz" -q -p no:cacheprovider \
	    || status=1; \
	done; exit $$status

faketime:
	@command -v faketime >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq faketime >/dev/null; \
	  else echo "faketime is missing (apt-get install faketime): make test-clock needs it"; exit 1; fi; }

# Reminders per second for one and three workers (issue 4). Needs PostgreSQL on 127.0.0.1; the
# script creates the database and drops its schema on every run, so give it one of its own.
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_dispatch
BENCH_DISPATCH = $(BIN)/python bench/dispatch.py --database-url $(BENCH_DATABASE_URL) $(BENCH_DISPATCH_ARGS)

# Budgets of the patient app (transfer size, requests, offline, Lighthouse), the reminder
# dispatch rate and the review queue: see bench/README.md. One after the other in one recipe (never side by side, even
# with -j: each would skew the others' figures), and all run even when one misses a budget.
bench: install-dev chromium
	npm ci --prefix bench --no-audit --no-fund --silent
	status=0; $(BIN)/python bench/patient_pages.py || status=1; \
	  $(BENCH_DISPATCH) || status=1; \
	  $(BIN)/python bench/review_queue.py $(BENCH_QUEUE_ARGS) || status=1; exit $$status

bench-dispatch: install
	$(BENCH_DISPATCH)

# The review queue (`GET /`) of one clinic with 1,000 patients and 20,000 check-ins, over HTTP
# (gunicorn on 127.0.0.1), against a median of 200 ms (issue 5). SQLite in a temp dir by default;
# BENCH_QUEUE_ARGS="--database-url postgresql://postgres@127.0.0.1:5432/bench_queue" for
# PostgreSQL (its schema is dropped on every run), "--commit HEAD" to measure the last commit.
.PHONY: bench-queue
bench-queue: install
	$(BIN)/python bench/review_queue.py $(BENCH_QUEUE_ARGS)

clean:
	rm -rf $(VENV) $(FHIR_R4_VENV) node_modules bench/node_modules .pytest_cache .ruff_cache
