"""The fits behind :func:`nica.consistency`: what each seed's fit sees, and running them on
worker processes (one torch thread each).

Every fit is described by a :class:`FitJob` (which estimator, its seed, the rotation of the
input and the permutation of u it gets) and run by :func:`run_job`; the data are sent to
each worker once (:func:`_init_worker`), not with every job.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Whitening:
    """x -> ``(x - mean) @ matrix``: the top ``n`` principal directions of the fit rows,
    each scaled to unit variance, ``matrix`` ``(d, n)``. Rotated by an orthogonal R after
    it, every seed's fit sees data with the same mean, the same (identity) covariance and
    the same higher-order structure, in a basis of its own."""

    mean: np.ndarray
    matrix: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, n: int) -> Whitening:
        """From the rows x ``(N, d)``; refuses when x has fewer than ``n`` directions of variance."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
        std = sv[:n] / np.sqrt(max(len(x) - 1, 1))
        if len(std) < n or not std[-1] > 1e-8 * max(std[0], 1e-300):
            raise ValueError(f"X has fewer than {n} directions of non-zero variance (its rank is below "
                             f"n_components={n}); choose a smaller n_components")
        return cls(mean=mean, matrix=vt[:n].T / std)

    def apply(self, x: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
        """``(N, n)`` float32: x whitened, then rotated by ``rotation`` ``(n, n)`` when given."""
        y = (np.asarray(x, dtype=np.float64) - self.mean) @ self.matrix
        return (y if rotation is None else y @ rotation.T).astype(np.float32)


def random_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    """An ``(n, n)`` orthogonal matrix drawn uniformly (Haar measure): QR of a Gaussian
    matrix with the signs of R's diagonal moved into Q (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


@dataclass(frozen=True)
class FitJob:
    """One fit: ``group`` (``"model"`` or a reference's name), the estimator (a name in
    :data:`nica.MODELS` or ``"vae"``), its latent dimension, seed and other keyword
    arguments, and what it sees: the fit rows rotated by ``rotation`` (None: X as given)
    with u permuted by ``u_permutation`` (None: u as given)."""

    group: str
    estimator: str
    n_components: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    rotation: np.ndarray | None = None
    u_permutation: np.ndarray | None = None

    def describe(self) -> str:
        return f"{self.group} seed {self.seed}"


@dataclass(frozen=True)
class FitOutcome:
    """A finished fit: the latents of the evaluation rows ``(N_eval, n)``, its process CPU
    seconds and wall seconds."""

    latents: np.ndarray
    cpu_seconds: float
    wall_seconds: float


@dataclass(frozen=True)
class FitData:
    """The rows every job reads: fit rows (x, u) and evaluation rows (x, u), and the
    whitening that a rotated job applies first (None: no job is rotated)."""

    x_fit: np.ndarray
    u_fit: np.ndarray
    x_eval: np.ndarray
    u_eval: np.ndarray | None
    whitening: Whitening | None = None


_DATA: FitData | None = None  # a worker's copy of the data, set once by _init_worker


def _init_worker(data: FitData) -> None:
    import torch

    global _DATA
    torch.set_num_threads(1)
    _DATA = data


def make_estimator(job: FitJob) -> Any:
    """The unfitted estimator of ``job``."""
    if job.estimator == "vae":
        from nica.estimator import VAE

        return VAE(job.n_components, **job.params, random_state=job.seed)
    from nica.model_choice import make_model

    return make_model(job.estimator, job.n_components, **job.params, random_state=job.seed)


def run_job(job: FitJob, data: FitData | None = None) -> FitOutcome:
    """Fit ``job`` on the fit rows and return the latents of the evaluation rows."""
    data = _DATA if data is None else data
    if data is None:
        raise RuntimeError("run_job needs the data: pass it, or run it in a worker started by run_jobs")
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    x_fit, x_eval = data.x_fit, data.x_eval
    if job.rotation is not None:
        x_fit, x_eval = data.whitening.apply(x_fit, job.rotation), data.whitening.apply(x_eval, job.rotation)
    u_fit = data.u_fit if job.u_permutation is None else data.u_fit[job.u_permutation]
    model = make_estimator(job).fit(x_fit, u_fit)
    latents = _transform(model, x_eval, data.u_eval)
    return FitOutcome(latents=np.asarray(latents, dtype=np.float64),
                      cpu_seconds=time.process_time() - start_cpu, wall_seconds=time.perf_counter() - start_wall)


def _transform(model: Any, x: np.ndarray, u: np.ndarray | None) -> np.ndarray:
    """Latents of x, without u where the model allows (its encoder does not read u: the
    evaluation rows may be new groups whose labels mean something else), else with u."""
    try:
        return model.transform(x)
    except ValueError:
        if u is None:
            raise
    return model.transform(x, u)


def run_jobs(jobs: Sequence[FitJob], data: FitData, n_jobs: int,
             echo: Callable[[str], None] | None = None) -> list[FitOutcome]:
    """Every job on ``n_jobs`` worker processes (one torch thread each; ``n_jobs=1``: here,
    on one thread), outcomes in job order. Each fit is seeded, so the outcomes do not
    depend on ``n_jobs``."""
    import torch

    outcomes: list[FitOutcome | None] = [None] * len(jobs)
    width = len(str(len(jobs)))

    def report(done: int, index: int) -> None:
        if echo is not None:
            out = outcomes[index]
            echo(f"[{done:>{width}}/{len(jobs)}] {jobs[index].describe()}: {out.wall_seconds:.1f} s "
                 f"({out.cpu_seconds:.1f} s CPU)")

    if n_jobs == 1 or len(jobs) <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: the same sums, the same latents
        try:
            for i, job in enumerate(jobs):
                outcomes[i] = run_job(job, data)
                report(i + 1, i)
        finally:
            torch.set_num_threads(threads)
        return outcomes  # type: ignore[return-value]
    # spawn: forking a process that holds torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=context,
                             initializer=_init_worker, initargs=(data,)) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                index = futures[future]
                outcomes[index] = future.result()
                report(done, index)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return outcomes  # type: ignore[return-value]


__all__ = ["FitData", "FitJob", "FitOutcome", "Whitening", "make_estimator", "random_rotation", "run_job", "run_jobs"]
