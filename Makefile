# Both targets set up everything they need on a fresh machine: a .venv with the package and its
# test tools, and (for `make test`, when run as root on Debian/Ubuntu) the system packages the
# integration tests start: PostgreSQL 15 with PostGIS for the real STAC API, Chromium to render
# report.html, QGIS (python3-qgis, qgis-providers; with GDAL's ogrinfo/ogr2ogr) to load the
# outputs. Override the interpreter with `make PYTHON=python3.11 ...`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sitewatch-installed
PYTEST_ARGS ?=
SYSTEM_PACKAGES := postgresql-15 postgresql-15-postgis-3 chromium python3-qgis qgis-providers gdal-bin

.PHONY: demo test lint system-packages clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,dask]'
	touch $(STAMP)

# Installs the system packages when running as root with apt-get; otherwise says what is missing
# (the tests that need them then skip with the reason, and CI, which forbids skips, fails).
system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	  fi; \
	else \
	  dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
	    echo "note: install $(SYSTEM_PACKAGES) (as root: apt-get install $(SYSTEM_PACKAGES)) for the STAC API, report and QGIS tests"; \
	fi

demo: $(STAMP)
	$(BIN)/sitewatch demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy

test: system-packages lint
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
