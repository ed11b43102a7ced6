# One-command set-up: every target below creates .venv and installs when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint docs bench soak fuzz image clean scenarios crash-test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/pos-sim

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

scenarios: $(STAMP)
	$(BIN)/pos-sim --headless --scenario scenarios/*.toml

docs: $(STAMP)
	$(BIN)/python -m terminal.diagram --readme README.md > docs/state-diagram.md

bench: $(STAMP)
	$(BIN)/python -m sim.bench

crash-test: $(STAMP)
	$(BIN)/python -m sim.crash

soak fuzz: $(STAMP)
	$(BIN)/python -m pytest tests -m "$@" -p no:randomly || test $$? -eq 5

clean:
	rm -rf $(VENV) build *.egg-info
