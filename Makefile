# wattbit — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean services

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[report]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: the digital twin on the bundled default scenario; prints the key figures, writes the report
run: $(VENV)/.installed-run
	$(BIN)/wattbit run

## test: install with the dev extras, start the services the tests need, run the suite
test: $(VENV)/.installed-dev
	bash scripts/test.sh

## bench: speed and memory figures (run by hand; never part of the test suite)
bench: $(VENV)/.installed-dev
	bash benchmarks/run_all.sh

## lint: the code style every change keeps (CI runs it after the tests)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
