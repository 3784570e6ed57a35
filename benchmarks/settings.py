"""The benchmark data settings of the README table (REFERENCE.md §3).

Every setting is the paper's default protocol (40 segments x 1000 points, 3 mixing
layers, xtanh, one matrix reused) with the named change.
"""

from __future__ import annotations

from typing import Any

SETTINGS: dict[str, dict[str, Any]] = {
    "5-5": dict(n_sources=5, n_obs=5),
    "10-10": dict(n_sources=10, n_obs=10),
    "5-20": dict(n_sources=5, n_obs=20),
    "laplace-5-5": dict(n_sources=5, n_obs=5, base_noise="laplace"),
    "noisy-5-20": dict(n_sources=5, n_obs=20, noise_std=0.1),
    "uncentered-5-5": dict(n_sources=5, n_obs=5, uncentered=True),
}

#: data seeds of the benchmarks; the test suite uses seeds below 100
DATA_SEEDS = (1001, 1002, 1003, 1004, 1005)
