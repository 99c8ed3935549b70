# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
export PORT

.PHONY: run test lint install install-dev translations messages chromium npm bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Test-only JavaScript (axe-core for the accessibility tests); nothing from npm is ever served.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@
npm: node_modules/.installed

install: $(VENV)/.installed translations
install-dev: $(VENV)/.installed-dev translations npm

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

test: install-dev chromium lint
	$(BIN)/pytest

# Budgets of the patient app (transfer size, requests, offline, Lighthouse): see bench/README.md.
bench: install-dev chromium
	npm ci --prefix bench --no-audit --no-fund --silent
	$(BIN)/python bench/patient_pages.py

clean:
	rm -rf $(VENV) node_modules bench/node_modules .pytest_cache .ruff_cache
