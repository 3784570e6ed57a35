"""Latents that depend on each other given u: a linear-Gaussian SCM whose weights and noise
change with u (the weight-variant latent causal model of Liu et al. 2022), mixed as in
the iVAE paper.

Within segment k the latents follow, in a fixed causal order,

    z_i = sum_{j < i} lambda_ij(k) z_j + n_i,    n_i ~ N(beta_i1(k), beta_i2(k)),

on a random DAG: ``"independent"`` (no edge: the iVAE benchmark with Gaussian sources),
``"sparse"`` (each of the n (n - 1) / 2 possible edges present with probability p, an
Erdos-Renyi DAG; by default p = 2 / (n - 1), an expected degree of 2 as in the authors'
data) or ``"dense"`` (every edge). As in the authors' generator (public code of SuaVE),
each edge's weight is redrawn in every segment, |lambda| ~ U(0.2, 1) with a random sign;
noise standard deviations ~ U(0.1, 2) and, by default, noise means ~ U(-2, 2) per segment
and component. The latents z (not the noise) are then mixed by the paper's MLP
(:func:`nica.datasets.nonstationary.mixing_matrices`, xtanh by default).

Every DAG is lower triangular in some order of its nodes, and the order of the latents
is not observable through a random mixing, so the generator keeps the order 0, 1, ...,
n - 1 (parents have lower indices) without loss of generality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator
from nica.datasets.nonstationary import (
    DEFAULT_SLOPES,
    NonstationaryData,
    _bounds,
    _check_generator_args,
    _is_real,
    mixing_matrices,
    observe,
)

GRAPHS = ("independent", "sparse", "dense")


@dataclass
class LatentSCMData(NonstationaryData):
    """A simulated data set with causally related latents.

    Attributes
    ----------
    x : ``(N, n_obs)`` observations.
    s : ``(N, n_latents)`` the latent causal variables z, what is mixed into x (also ``z``).
    noise : ``(N, n_latents)`` their exogenous noise n, ``n = z - z @ lambda(u).T`` row by row.
    u : ``(N,)`` integer segment labels (segment-major rows).
    adjacency : ``(n_latents, n_latents)`` bool, ``adjacency[i, j]``: edge z_j -> z_i
        (strictly lower triangular).
    weights : ``(n_segments, n_latents, n_latents)`` lambda(k), zero off the graph.
    means, scales : ``(n_segments, n_latents)`` the noise means beta_1 and standard
        deviations sqrt(beta_2) per segment.
    mixing, activation, slope : the mixing MLP (see :class:`NonstationaryData`).
    graph : ``"independent"``, ``"sparse"`` or ``"dense"``.
    """

    noise: np.ndarray = field(default_factory=lambda: np.empty(0))
    adjacency: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    weights: np.ndarray = field(default_factory=lambda: np.empty(0))
    graph: str = "sparse"

    @property
    def z(self) -> np.ndarray:
        """``(N, n_latents)`` the latent causal variables (the same array as ``s``)."""
        return self.s

    def covariances(self) -> np.ndarray:
        """``(n_segments, n, n)`` Cov(z | u = k) = (I - L_k)^-1 diag(scales_k^2) (I - L_k)^-T."""
        eye = np.eye(self.weights.shape[-1])
        inv = np.linalg.inv(eye - self.weights)
        return inv * self.scales[:, None, :] ** 2 @ inv.transpose(0, 2, 1)


def random_dag(
    n_nodes: int, graph: str, rng: np.random.Generator, *, edge_prob: float | None = None
) -> np.ndarray:
    """A strictly lower-triangular ``(n_nodes, n_nodes)`` boolean adjacency matrix,
    ``[i, j]`` for the edge j -> i: no edge (``"independent"``), each edge with
    probability ``edge_prob`` (``"sparse"``; default 2 / (n - 1), at most 1) or every edge
    (``"dense"``)."""
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; choose one of {GRAPHS}")
    below = np.tril(np.ones((n_nodes, n_nodes), bool), k=-1)
    if graph == "independent":
        return np.zeros_like(below)
    if graph == "dense":
        return below
    p = default_edge_prob(n_nodes) if edge_prob is None else edge_prob
    return below & (rng.uniform(size=below.shape) < p)


def default_edge_prob(n_nodes: int) -> float:
    """Edge probability of a sparse graph: an expected degree (in + out) of 2."""
    return min(1.0, 2.0 / max(n_nodes - 1, 1))


def make_latent_scm(
    n_latents: int = 5,
    n_obs: int | None = None,
    n_segments: int = 40,
    n_per_segment: int = 1000,
    *,
    graph: str = "sparse",
    edge_prob: float | None = None,
    weight_bounds: tuple[float, float] = (0.2, 1.0),
    scale_bounds: tuple[float, float] = (0.1, 2.0),
    uncentered: bool = True,
    mean_bounds: tuple[float, float] = (-2.0, 2.0),
    n_layers: int = 3,
    activation: str = "xtanh",
    slope: float | None = None,
    repeat_matrix: bool = True,
    noise_std: float = 0.0,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> LatentSCMData:
    """Simulate latents from a u-dependent linear-Gaussian SCM, mixed by a random MLP.

    Parameters
    ----------
    n_latents, n_obs : latent and observed dimensions (``n_obs >= n_latents``; default equal).
    n_segments, n_per_segment : M segments (values of u) of L points each (N = M * L rows).
    graph : ``"independent"``, ``"sparse"`` or ``"dense"`` (see :func:`random_dag`).
    edge_prob : probability of each edge of a sparse graph; default 2 / (n - 1).
    weight_bounds : |lambda_ij(k)| ~ U(bounds), with a random sign, per edge and segment.
    scale_bounds : noise standard deviations ~ U(bounds) per segment and component.
    uncentered, mean_bounds : noise means ~ U(mean_bounds) per segment and component
        (the authors' data); ``uncentered=False`` gives zero-mean noise.
    n_layers, activation, slope, repeat_matrix : the mixing MLP, as in
        :func:`nica.make_nonstationary`.
    noise_std : std of additive Gaussian noise on x.
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.
    dtype : floating-point type of ``x``, ``s`` and ``noise``.

    Returns
    -------
    LatentSCMData with ``x (N, n_obs)``, ``z`` = ``s (N, n_latents)``, ``noise``, ``u (N,)``,
    ``adjacency (n, n)`` and ``weights (M, n, n)``.

    Examples
    --------
    >>> data = make_latent_scm(3, n_segments=4, n_per_segment=10, graph="dense", random_state=0)
    >>> data.x.shape, data.z.shape, data.weights.shape
    ((40, 3), (40, 3), (4, 3, 3))
    >>> int(data.adjacency.sum())
    3
    """
    n_obs = n_latents if n_obs is None else n_obs
    _check_generator_args(n_latents, n_obs, n_segments, n_per_segment, n_layers, "gauss",
                          activation, slope, scale_bounds, mean_bounds, noise_std, dtype)
    _check_scm_args(graph, edge_prob, weight_bounds)
    slope = DEFAULT_SLOPES[activation] if slope is None else float(slope)
    rng = as_generator(random_state)

    adjacency = random_dag(n_latents, graph, rng, edge_prob=edge_prob)
    magnitude = rng.uniform(*weight_bounds, size=(n_segments, n_latents, n_latents))
    sign = np.where(rng.uniform(size=magnitude.shape) < 0.5, -1.0, 1.0)
    weights = adjacency * magnitude * sign
    scales = rng.uniform(*scale_bounds, size=(n_segments, n_latents))
    means = (rng.uniform(*mean_bounds, size=(n_segments, n_latents)) if uncentered
             else np.zeros((n_segments, n_latents)))
    u = np.repeat(np.arange(n_segments), n_per_segment)
    noise = rng.standard_normal((n_segments * n_per_segment, n_latents)) * scales[u] + means[u]
    z = solve_scm(noise, weights[u])

    data = LatentSCMData(
        x=np.empty(0), s=z, u=u, means=means, scales=scales,
        mixing=mixing_matrices(n_latents, n_obs, n_layers, rng, repeat_matrix=repeat_matrix),
        activation=activation, slope=slope,
        noise=noise.astype(dtype), adjacency=adjacency, weights=weights, graph=graph,
    )
    observe(data, rng, noise_std=noise_std, dtype=dtype)
    return data


def solve_scm(noise: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """z with ``z_i = sum_j weights[i, j] z_j + noise_i`` for strictly lower-triangular
    weights, node by node in the causal order; noise ``(N, n)``, weights ``(N, n, n)``."""
    z = np.zeros_like(noise, dtype=np.float64)
    for i in range(noise.shape[1]):
        z[:, i] = noise[:, i] + np.einsum("nj,nj->n", weights[:, i, :i], z[:, :i])
    return z


def _check_scm_args(graph: str, edge_prob: float | None, weight_bounds: tuple[float, float]) -> None:
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; choose one of {GRAPHS}")
    if edge_prob is not None:
        if not (_is_real(edge_prob) and 0 <= edge_prob <= 1):
            raise ValueError(f"edge_prob must be a probability in [0, 1], got {edge_prob!r}")
        if graph != "sparse":
            raise ValueError(f"edge_prob applies to graph='sparse' only, not to {graph!r}")
    low, high = _bounds(weight_bounds, "weight_bounds")
    if not 0 <= low <= high:
        raise ValueError(f"weight_bounds must satisfy 0 <= low <= high, got {weight_bounds}")


__all__ = ["GRAPHS", "LatentSCMData", "default_edge_prob", "make_latent_scm", "random_dag", "solve_scm"]
