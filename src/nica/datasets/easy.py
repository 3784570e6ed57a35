"""Data whose segments are easy to classify: one source's mean climbs with u (Fig. 3b).

The iVAE paper contrasts iVAE with time-contrastive learning (TCL) on data where a
classifier of the segment label needs only one source: source 0's mean rises by
``mean_step`` from one segment to the next (a staircase, as the flag in the authors'
script is named), on top of the benchmark's per-segment variance modulation of every
source. TCL's classifier then solves its task from source 0 alone, so its features need
not separate the other sources; iVAE, a generative model, has to explain all of x.
Everything else follows :func:`nica.make_nonstationary`: scales ~ U(0.5, 3), Gaussian
base noise, an MLP mixing with one well-conditioned matrix reused in every layer.
"""

from __future__ import annotations

import numpy as np

from nica._random import as_generator
from nica.datasets.nonstationary import (
    DEFAULT_SLOPES,
    MIXING_ACTIVATIONS,
    NonstationaryData,
    mixing_matrix,
)


def staircase_means(n_segments: int, n_sources: int, mean_step: float) -> np.ndarray:
    """``(n_segments, n_sources)`` means: source 0 rises by ``mean_step`` per segment
    (centred on 0), every other source has mean 0."""
    means = np.zeros((n_segments, n_sources))
    means[:, 0] = mean_step * (np.arange(n_segments) - (n_segments - 1) / 2)
    return means


def make_easy_to_classify(
    n_segments: int = 10,
    n_per_segment: int = 500,
    *,
    n_sources: int = 2,
    mean_step: float = 4.0,
    n_layers: int = 3,
    activation: str = "xtanh",
    scale_bounds: tuple[float, float] = (0.5, 3.0),
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> NonstationaryData:
    """Simulate the "easy to classify" data of the iVAE paper's comparison with TCL.

    Parameters
    ----------
    n_segments, n_per_segment : M segments of L points (N = M L rows, segment-major).
    n_sources : latent and observed dimension (the paper's figure uses 2).
    mean_step : rise of source 0's mean from one segment to the next; the other
        sources have mean 0 in every segment. ``0`` gives the usual centred benchmark.
    n_layers, activation : the mixing MLP (as :func:`nica.make_nonstationary`, one matrix
        reused in every layer, the last layer linear).
    scale_bounds : per-segment standard deviations of every source ~ U(bounds).
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    NonstationaryData with ``x (N, n_sources)``, ``s (N, n_sources)``, ``u (N,)``,
    ``means`` and ``scales`` ``(n_segments, n_sources)``.

    Examples
    --------
    >>> data = make_easy_to_classify(n_segments=4, n_per_segment=10, random_state=0)
    >>> data.x.shape, data.means[:, 0].tolist()
    ((40, 2), [-6.0, -2.0, 2.0, 6.0])
    """
    for name, value in [("n_segments", n_segments), ("n_per_segment", n_per_segment),
                        ("n_sources", n_sources), ("n_layers", n_layers)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not np.isfinite(mean_step):
        raise ValueError(f"mean_step must be a finite number, got {mean_step!r}")
    if activation not in MIXING_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {MIXING_ACTIVATIONS}")
    if not 0 < scale_bounds[0] <= scale_bounds[1]:
        raise ValueError(f"scale_bounds must satisfy 0 < low <= high, got {scale_bounds}")
    rng = as_generator(random_state)

    scales = rng.uniform(*scale_bounds, size=(n_segments, n_sources))
    means = staircase_means(n_segments, n_sources, float(mean_step))
    u = np.repeat(np.arange(n_segments), n_per_segment)
    s = rng.standard_normal((n_segments * n_per_segment, n_sources)) * scales[u] + means[u]
    matrix = mixing_matrix(n_sources, n_sources, rng)
    data = NonstationaryData(
        x=np.empty(0), s=s.astype(dtype), u=u, means=means, scales=scales,
        mixing=[matrix] * n_layers, activation=activation, slope=DEFAULT_SLOPES[activation],
    )
    data.x = data.mix(s).astype(dtype)
    return data


__all__ = ["make_easy_to_classify", "staircase_means"]
