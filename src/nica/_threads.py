"""How many CPU threads torch uses while an estimator fits.

A fit of these models is a long chain of small tensor operations. A second thread buys
little there, and on a machine whose cores are busy with other work torch's default (one
thread per core) can make a fit 15x slower, because every operation waits for a thread
that is not scheduled (docs/performance.md, Threads). So every estimator fits on
``n_threads=1`` unless told otherwise: near a fair share of a busy machine, and the same
numbers on every machine (the thread count changes the order of float sums, and these
fits are chaotic). ``n_threads=None`` leaves torch's own setting alone.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch


def check_threads(n_threads: object) -> int | None:
    """``n_threads`` as a positive ``int`` or None; anything else is refused."""
    if n_threads is None:
        return None
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op torch threads (None: unchanged), then
    restore the caller's setting."""
    n = check_threads(n_threads)
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (what SLURM, cgroups' cpusets or
    ``taskset`` give it) where the system reports one, else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


F = TypeVar("F", bound=Callable[..., Any])


def fits_on_threads(fit: F) -> F:
    """Decorator of an estimator's ``fit``: the whole fit (training and the choice among
    restarts) runs under :func:`torch_threads` with the estimator's ``n_threads``."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.n_threads):
            return fit(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = ["check_threads", "fits_on_threads", "torch_threads", "usable_cpus"]
