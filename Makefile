# Both targets set up everything they need on a fresh machine: a .venv with the package and its
# test tools. Override the interpreter with `make PYTHON=python3.11 ...`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sitewatch-installed
PYTEST_ARGS ?=

.PHONY: demo test lint clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sitewatch demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
