# ReSight data platform. `make demo` and `make test` work on a fresh clone: they create .venv,
# install everything, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install browser prometheus demo test test-topology dev lint typecheck check bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,dev,spark]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/resight demo

# The browser suite (resight_platform_tests/ui) drives Debian's Chromium with Playwright; nothing
# is downloaded by Playwright. Installed here with apt-get when missing and this user may (root,
# or passwordless sudo); otherwise, or if apt-get fails, the suite skips saying why. Never fails.
CHROMIUM := chromium chromium-browser google-chrome
browser:
	@for name in $(CHROMIUM); do command -v $$name >/dev/null 2>&1 && exit 0; done; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make: no Chromium, and not root nor passwordless sudo: the browser tests will skip (apt-get install chromium)"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: no Chromium and no apt-get: the browser tests will skip (install Chromium)"; exit 0; fi; \
	echo "make: installing Debian's chromium for the browser tests"; \
	$$sudo apt-get update -qq >/dev/null && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| echo "make: apt-get could not install chromium: the browser tests will skip"

# The metrics suite (resight_platform_tests/test_metrics.py) has Debian's Prometheus scrape
# `resight metrics`. Installed like Chromium above: apt-get when missing and this user may; otherwise
# the tests skip saying why. Never fails.
prometheus:
	@command -v prometheus >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make: no prometheus, and not root nor passwordless sudo: the metrics tests will skip (apt-get install prometheus)"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: no prometheus and no apt-get: the metrics tests will skip (install Prometheus)"; exit 0; fi; \
	echo "make: installing Debian's prometheus for the metrics tests"; \
	$$sudo apt-get update -qq >/dev/null && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
		|| echo "make: apt-get could not install prometheus: the metrics tests will skip"

test: $(STAMP) browser prometheus
	$(BIN)/ruff check resight_platform resight_platform_tests bench
	$(BIN)/mypy resight_platform bench
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The production topology (code server, webserver, daemon, MLflow as processes; Postgres and S3 over
# the network) and the zero-downtime redeploy, a Postgres restart and an S3 outage while files
# land: a few minutes, so not part of `make test` (resight_platform_tests/test_topology.py).
test-topology: $(STAMP)
	RESIGHT_TEST_TOPOLOGY=1 $(BIN)/pytest -p no:cacheprovider -q -s --durations=0 resight_platform_tests/test_topology.py $(PYTEST_ARGS)

dev: $(STAMP)
	$(BIN)/resight dev

lint: $(STAMP)
	$(BIN)/ruff check resight_platform resight_platform_tests bench

typecheck: $(STAMP)
	$(BIN)/mypy resight_platform bench

# Benchmarks (not part of `make test`): `make bench` runs all at full size; `make bench SIZE=quick`
# runs a few-minute version. Figures go to bench/*/results.json; see bench/RESULTS.md.
SIZE ?= full
bench: $(STAMP)
ifeq ($(SIZE),quick)
	$(BIN)/python -m bench.partitions.run --quick --output bench/partitions/results-quick.json
	$(BIN)/python -m bench.throughput.run --quick --output bench/throughput/results-quick.json
	$(BIN)/python -m bench.overhead.run --repeat 2 --output bench/overhead/results-quick.json
	$(BIN)/python -m bench.s3_read.run --rows 1000000 --repeat 2 --output bench/s3_read/results-quick.json
	$(BIN)/python -m bench.engines.run --quick --output bench/engines/results-quick.json
else
	$(BIN)/python -m bench.partitions.run --sources-per-model 300 12000 --days 365
	$(BIN)/python -m bench.throughput.run
	$(BIN)/python -m bench.overhead.run
	$(BIN)/python -m bench.s3_read.run
	$(BIN)/python -m bench.engines.run
endif

clean:
	rm -rf .resight
