# Quick start: `make demo` (set-up + the main job) and `make test` (set-up + tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU wheel first: an open range would pull a multi-GB CUDA build
TORCH_PIN ?= torch==2.13.0

.PHONY: setup demo test test-slow bench clean

$(BIN)/nica: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/nica

demo: setup
	$(BIN)/nica --threads 1 demo --overwrite

test: setup
	$(BIN)/python -m pytest -n 2 -q

test-slow: setup
	$(BIN)/python -m pytest -n 2 -q -m slow

bench: setup
	$(BIN)/python benchmarks/recovery.py --settings 5-5 --configs auto ivae-0.1 authors --jobs 2

clean:
	rm -rf $(VENV) nica-output .pytest_cache
