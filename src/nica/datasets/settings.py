"""Named settings of the paper's benchmark data (REFERENCE.md §3), for sweeps and benchmarks.

Every setting is the paper's default protocol (40 segments x 1000 points, 3 mixing
layers, xtanh, one matrix reused) with the named change; the values are keyword
arguments of :func:`nica.make_nonstationary`; the benchmark scripts import this table.
"""

from __future__ import annotations

from typing import Any

BENCHMARK_SETTINGS: dict[str, dict[str, Any]] = {
    "5-5": dict(n_sources=5, n_obs=5),
    "10-10": dict(n_sources=10, n_obs=10),
    "5-20": dict(n_sources=5, n_obs=20),
    "laplace-5-5": dict(n_sources=5, n_obs=5, base_noise="laplace"),
    "noisy-5-20": dict(n_sources=5, n_obs=20, noise_std=0.1),
    "noisy-5-5": dict(n_sources=5, n_obs=5, noise_std=0.1),
    "uncentered-5-5": dict(n_sources=5, n_obs=5, uncentered=True),
}
