# Two commands for a newcomer: `make lab` and `make test`.
# Each creates .venv on first use and reinstalls when the packaging changes.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: lab test bench clean

# A new package folder (an __init__.py) also needs a fresh editable install.
$(STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, by exact version: here it is the CPU wheel on disk (no CUDA download)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	mkdir -p $(dir $(SETTINGS)) && cp binder/overrides.json $(SETTINGS)
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter trust notebooks/*.ipynb
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest

bench: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python benchmarks/bench_widgets.py
	$(BIN)/python benchmarks/bench_notebooks.py
	$(BIN)/python benchmarks/bench_kernels.py
	$(BIN)/python benchmarks/bench_ptq.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
