"""The benchmark data settings of the README table (REFERENCE.md §3): the library's own
table, :data:`nica.datasets.settings.BENCHMARK_SETTINGS`, shared with ``nica sweep``."""

from __future__ import annotations

from nica.datasets.settings import BENCHMARK_SETTINGS as SETTINGS

#: data seeds of the benchmarks; the test suite uses seeds below 100
DATA_SEEDS = (1001, 1002, 1003, 1004, 1005)

__all__ = ["SETTINGS", "DATA_SEEDS"]
