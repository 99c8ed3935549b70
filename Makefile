# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
export PORT

.PHONY: run test test-clock lint install install-dev translations messages chromium faketime npm bench bench-dispatch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# FHIR R4 models for the export test, which need pydantic 1: a virtualenv of their own.
FHIR_R4_VENV := .venv-fhir-r4
$(FHIR_R4_VENV)/.installed: tests/fhir_r4/requirements.txt
	$(PYTHON) -m venv $(FHIR_R4_VENV)
	$(FHIR_R4_VENV)/bin/pip install --quiet -r tests/fhir_r4/requirements.txt
	touch $@

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

# Browser tests drive Debian's chromium; install it when missing and we may (root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing (apt-get install chromium): browser tests will be skipped"; fi; }

run: install
	$(FLASK) db upgrade
	$(FLASK) demo --base-url http://127.0.0.1:$(PORT)
	$(BIN)/honcho start -f Procfile -p $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: install-dev chromium lint
	$(BIN)/pytest

# No test may depend on the date, the hour or the machine's time zone: the suite but the browser
# tests (they drive a real chromium), under Debian's libfaketime at four clocks that keep ticking:
# 45 and 200 days ahead (the other side of daylight saving in Europe and the US), and tomorrow at
# 23:45 and at 03:10 UTC, each in a time zone whose date is not UTC's. The clock is moved by an
# offset in seconds, so the worker processes a test starts share its clock. libfaketime 0.9.10
# cannot fake the monotonic clock under Python (timed waits would last years), hence
# FAKETIME_DONT_FAKE_MONOTONIC=1, and tests/libfaketime.py works around its broken time.sleep().
# Only pytest runs under it; every clock runs, and the target fails if any of them failed.
TEST_CLOCKS := "+45 days|America/New_York" "+200 days|Europe/Madrid" \
	"tomorrow 23:45|Pacific/Kiritimati" "tomorrow 03:10|America/Los_Angeles"
test-clock: install-dev faketime
	@status=0; for spec in $(TEST_CLOCKS); do \
	  clock=$${spec%|*}; zone=$${spec#*|}; \
	  offset=$$(( $$(date -u -d "$$clock" +%s) - $$(date -u +%s) )); \
	  echo "== test-clock: $$(date -u -d "$$clock" '+%F %H:%M') UTC ($$clock), TZ=$$zone"; \
	  TZ=$$zone FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "+$$offset" \
	    $(BIN)/python -m pytest -p tests.libfaketime -m "not e2e" -q -p no:cacheprovider \
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
