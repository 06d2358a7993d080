# The two commands of the README: `make run` and `make test`. Each sets up what it needs,
# idempotently: .venv from the pinned constraints, npm peers (anvil, solc), Debian packages.
# `make run` installs anvil too: with no payments.pay_to it runs in test mode on a local chain
# (and espeak-ng, which speaks its demo Space).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench setup setup-test clean-venv migrate mutants

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

setup: $(STAMP)

setup-test: $(STAMP) node_modules/.installed
	bash scripts/ensure-system-deps.sh

migrate: setup
	$(BIN)/spacescribe migrate

run: setup node_modules/.installed
	@bash scripts/ensure-run-deps.sh
	$(BIN)/spacescribe run

# lint-imports: the layer contracts of pyproject.toml ([tool.importlinter])
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy core adapters bot

pytest: setup-test
	@set +e; $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test: setup-test lint typecheck pytest

# mutation testing of money and queue (README "Mutation testing"); not part of `make test`.
# MUTANTS="core.money.*" narrows it; results are kept in mutants/ and re-used.
mutants: setup-test
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,mutation]'
	$(BIN)/python scripts/mutants.py

bench: setup-test
	$(BIN)/python -m bench

clean-venv:
	rm -rf $(VENV)
