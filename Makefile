# Two commands for a newcomer: `make lab` and `make test`.
# Each creates .venv on first use and reinstalls when the packaging changes.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
CHROMIUM := /usr/bin/chromium
# Overrides for tests and instructors (a learner types plain `make lab`):
#   make lab LAB_PORT=8899 LAB_ARGS="--no-browser --ip=127.0.0.1" LAB_DIR=/tmp/x
LAB_DIR  ?= notebooks/
LAB_PORT ?=
LAB_ARGS ?=
# Jupyter refuses to start as root (containers, cloud VMs) unless told it may.
ROOT_ARG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test bench clean chromium

# A new package folder (an __init__.py) also needs a fresh editable install.
$(STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, by exact version: here it is the CPU wheel on disk (no CUDA download)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# [browser]: Playwright for tests/test_browser.py; it drives Debian's Chromium, never a
	# browser of its own download
	$(BIN)/python -m pip install --quiet -e ".[test,browser]"
	mkdir -p $(dir $(SETTINGS)) && cp binder/overrides.json $(SETTINGS)
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter trust notebooks/*.ipynb
	$(BIN)/jupyter lab $(ROOT_ARG) $(if $(LAB_PORT),--port=$(LAB_PORT)) $(LAB_ARGS) $(LAB_DIR)

# Debian's chromium + chromium-driver, once: the browser itself is the stamp. As root
# directly, else through sudo -n; if neither works this says so and goes on, and the
# browser test then fails with the command to run.
chromium: $(CHROMIUM)
$(CHROMIUM):
	@if ! command -v apt-get >/dev/null; then \
	  echo "make: no apt-get here; install Chromium at $(CHROMIUM) for tests/test_browser.py"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium and chromium-driver for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null) || echo "make: apt-get could not install chromium"; \
	elif sudo -n true 2>/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver (sudo) for the browser test"; \
	  (sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install \
	    -y -qq chromium chromium-driver >/dev/null) || echo "make: apt-get could not install chromium"; \
	else \
	  echo "make: cannot install Chromium (not root, no sudo -n):" \
	    "run 'sudo apt-get install chromium chromium-driver'"; \
	fi

test: $(STAMP) $(CHROMIUM)
	MPLBACKEND=Agg $(BIN)/python -m pytest

bench: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python benchmarks/bench_widgets.py
	$(BIN)/python benchmarks/bench_notebooks.py
	$(BIN)/python benchmarks/bench_kernels.py
	$(BIN)/python benchmarks/bench_deploy.py
	$(BIN)/python benchmarks/bench_ptq.py
	$(BIN)/python benchmarks/bench_qat.py
	$(BIN)/python benchmarks/bench_compress.py
	$(BIN)/python benchmarks/bench_grade.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
