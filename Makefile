# ReSight data platform. `make demo` and `make test` work on a fresh clone: they create .venv,
# install everything, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test dev lint typecheck check bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/resight demo

test: $(STAMP)
	$(BIN)/ruff check resight_platform resight_platform_tests bench
	$(BIN)/mypy resight_platform
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

dev: $(STAMP)
	$(BIN)/resight dev

lint: $(STAMP)
	$(BIN)/ruff check resight_platform resight_platform_tests bench

typecheck: $(STAMP)
	$(BIN)/mypy resight_platform

clean:
	rm -rf .resight
