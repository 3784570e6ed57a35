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

# the exactness and seeded-outcome tests (-m numerics) again under other numerics: torch's
# generic kernels, then AVX2 kernels with MKL's SSE4.2 code path (near what an AMD EPYC
# runs) on two threads (one worker: the threads take both cores): a result that holds on
# one kind of CPU only fails on every machine (docs/reproducibility.md)
NUMERICS_A := ATEN_CPU_CAPABILITY=default
NUMERICS_B := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=SSE4_2 NICA_TEST_THREADS=2

test: setup
	$(BIN)/python -m pytest -n 2 -q
	$(NUMERICS_A) $(BIN)/python -m pytest -n 2 -q -m numerics
	$(NUMERICS_B) $(BIN)/python -m pytest -q -m numerics

test-slow: setup
	$(BIN)/python -m pytest -n 2 -q -m slow

bench: setup
	$(BIN)/python benchmarks/recovery.py --settings 5-5 --configs auto ivae-0.1 authors --jobs 2

clean:
	rm -rf $(VENV) nica-output .pytest_cache
