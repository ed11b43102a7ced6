# One-command set-up: every target below creates .venv and installs when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint docs bench soak fuzz image clean scenarios crash-test lock bench-compare release-check

LOCK := requirements/dev.lock
LOCK_OPTS := --generate-hashes --python-version 3.11 --universal -q

# Pinned with hashes: a build next month installs exactly today's versions (make lock refreshes them).
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	@$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

# After changing a dependency in pyproject.toml: re-resolve both lock files (uv is only needed here).
lock:
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_OPTS) -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_OPTS) -o requirements/device.lock

run: $(STAMP)
	$(BIN)/pos-sim

# pytest on 8 workers: the suite waits on ptys, sockets and child processes more than it computes. The workers take
# one test at a time (--maxschedchunk 1), longest first (tests/conftest.py), so they finish together. Bytecode
# caching stays on even in a shell that sets PYTHONDONTWRITEBYTECODE: without it every pos-terminal, pos-sim and
# pos-fw child process and every xdist worker compiles the tree again (about 40 s of CPU per run).
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 8 --dist load --maxschedchunk 1

# What a packager does (sdist + wheel in isolation, installed into a fresh venv, packaged scenario run); CI runs it
release-check: $(STAMP)
	$(BIN)/python -m pytest tests/release -m release -p no:randomly

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

scenarios: $(STAMP)
	$(BIN)/pos-sim --headless --scenario scenarios/*.toml scenarios/cards/*.toml scenarios/contactless/*.toml

docs: $(STAMP)
	$(BIN)/python -m terminal.diagram --readme README.md > docs/state-diagram.md
	$(BIN)/python -m sim.docs_pictures docs/pictures

bench: $(STAMP)
	$(BIN)/python -m sim.bench --out build/bench.json

# SMP vs POSFW1 on the whole application image at 115200 and 921600 baud, paced to the wire: about 8 minutes
# (make bench compares them on a typical MCU-sized image; sim/bench/smp.py says why)
.PHONY: bench-smp bench-cpu
bench-smp: $(STAMP)
	$(BIN)/python -m sim.bench.smp --full --out build/bench-smp.json

# The terminal's CPU per chip top-up, RUNS separate runs (each its own world and pos-terminal): median, least, most
RUNS ?= 5
bench-cpu: $(STAMP)
	$(BIN)/python -c "from sim.bench.suite import cpu_runs; cpu_runs($(RUNS), out='build/bench-cpu.json')"

# Ratios of the last make bench (build/bench.json, or NEW=…) against a saved run: make bench-compare BASE=old.json
bench-compare: $(STAMP)
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=saved-bench.json [NEW=build/bench.json]"; exit 2; }
	$(BIN)/python -m sim.bench.record $(BASE) $(or $(NEW),build/bench.json)

crash-test: $(STAMP)
	$(BIN)/python -m sim.crash

DEV_KEY := build/dev-signing-key.pem

image: $(STAMP)
	@mkdir -p build
	@test -f $(DEV_KEY) || $(BIN)/pos-fw keygen -k $(DEV_KEY)
	@echo "################################################################################"
	@echo "## WARNING: signed with the DEVELOPMENT key $(DEV_KEY)"
	@echo "## Development keys are for development only: devices in the field must never trust it."
	@echo "################################################################################"
	$(BIN)/pos-fw build --key $(DEV_KEY) --output build/pos-terminal.img
	$(BIN)/pos-fw verify --key $(DEV_KEY) build/pos-terminal.img

soak fuzz: $(STAMP)
	$(BIN)/python -m pytest tests -m "$@" -p no:randomly || test $$? -eq 5

clean:
	rm -rf $(VENV) build *.egg-info
