# Crieur — the README's two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
NODESTAMP := node_modules/.installed

.PHONY: run test test-fast bench lint format worker clean help translations

help:
	@echo "make run    - start Crieur on http://127.0.0.1:5000 (SQLite, in-process worker, outbox)"
	@echo "make test   - install the development dependencies and run the whole test suite"
	@echo "make bench  - run the benchmarks and write bench/reports/*.md"
	@echo "make lint   - ruff check and format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEVSTAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NODESTAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP) $(NODESTAMP)
	$(BIN)/crieur db upgrade
	$(BIN)/crieur demo --if-empty
	$(BIN)/crieur run

worker: $(STAMP) $(NODESTAMP)
	$(BIN)/crieur worker

test: $(DEVSTAMP) $(NODESTAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: $(DEVSTAMP) $(NODESTAMP)
	CRIEUR_TEST_BACKENDS=sqlite $(BIN)/pytest -q -m "not slow" -x $(PYTEST_ARGS)

bench: $(DEVSTAMP) $(NODESTAMP)
	mkdir -p bench/reports
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	@cat bench/reports/*.md > bench/REPORT.md; echo "Report: bench/REPORT.md"

lint: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEVSTAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache .ruff_cache

translations: $(DEVSTAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -k DomainError:2 -k ApiError:2 \
		-k MjmlError:2 -k ImportFileError:2 -o /tmp/crieur-messages.pot .
	$(BIN)/pybabel update -i /tmp/crieur-messages.pot -d webapp/translations -l en --no-fuzzy-matching
