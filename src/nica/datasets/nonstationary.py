"""The paper's synthetic benchmark: nonstationary sources mixed by a random MLP (§3).

Sources come in ``n_segments`` segments of ``n_per_segment`` points (segment-major rows);
within a segment each component is ``mean + scale * e`` with unit-variance base noise e,
scales ~ U(0.5, 3) and means 0 (centered) or ~ U(-5, 5) (uncentered).  The mixing MLP
alternates column-normalised, well-conditioned random matrices with a leaky-ReLU or
xtanh nonlinearity; the last layer is linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator

BASE_NOISE = ("gauss", "laplace", "hypsecant")
MIXING_ACTIVATIONS = ("xtanh", "lrelu", "none")
#: slopes used by the authors: xtanh(x) = tanh(x) + 0.1 x, leaky ReLU slope 0.2
DEFAULT_SLOPES = {"xtanh": 0.1, "lrelu": 0.2, "none": 1.0}


@dataclass
class NonstationaryData:
    """A simulated data set.

    Attributes
    ----------
    x : ``(N, n_obs)`` observations (0/1 floats when ``discrete``).
    s : ``(N, n_sources)`` true sources.
    u : ``(N,)`` integer segment labels.
    means, scales : ``(n_segments, n_sources)`` per-segment source means and stds.
    mixing : the mixing matrices in the order applied, ``x_{l+1} = act(x_l @ A_l)``.
    activation, slope : the mixing nonlinearity.
    """

    x: np.ndarray
    s: np.ndarray
    u: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    mixing: list[np.ndarray] = field(default_factory=list)
    activation: str = "xtanh"
    slope: float = 0.1

    @property
    def u_onehot(self) -> np.ndarray:
        """``(N, n_segments)`` one-hot encoding of ``u``."""
        return np.eye(self.means.shape[0], dtype=self.x.dtype)[self.u]

    def mix(self, s: np.ndarray) -> np.ndarray:
        """Apply the (noise-free) mixing to sources ``(N, n_sources) -> (N, n_obs)``."""
        h = np.asarray(s, dtype=np.float64)
        for layer, a in enumerate(self.mixing):
            h = h @ a
            if layer < len(self.mixing) - 1:
                h = _activate(h, self.activation, self.slope)
        return h


def _activate(h: np.ndarray, activation: str, slope: float) -> np.ndarray:
    if activation == "xtanh":
        return np.tanh(h) + slope * h
    if activation == "lrelu":
        return np.where(h > 0, h, slope * h)
    return h


def _base_noise(rng: np.random.Generator, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance base noise of the named family."""
    if kind == "gauss":
        return rng.standard_normal(shape)
    if kind == "laplace":
        return rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape)
    if kind == "hypsecant":
        # density 1/(2 b) sech(pi x / (2 b)) has variance b^2; inverse CDF of sech with b = 1
        p = rng.uniform(0.0, 1.0, shape)
        return (2.0 / np.pi) * np.log(np.tan(np.pi * p / 2.0))
    raise ValueError(f"unknown base noise {kind!r}; choose one of {BASE_NOISE}")


def _column_normalised(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.uniform(-1.0, 1.0, shape)
    return a / np.linalg.norm(a, axis=-2, keepdims=True)


def condition_threshold(
    n_rows: int, n_cols: int, rng: np.random.Generator, n_draws: int = 10_000, q: float = 25.0
) -> float:
    """The ``q``-th percentile of condition numbers of ``n_draws`` random mixing matrices."""
    return float(np.percentile(np.linalg.cond(_column_normalised(rng, (n_draws, n_rows, n_cols))), q))


def mixing_matrix(
    n_rows: int, n_cols: int, rng: np.random.Generator, n_draws_for_threshold: int = 10_000
) -> np.ndarray:
    """A ``(n_rows, n_cols)`` matrix, entries U(-1, 1), unit-norm columns, redrawn until
    its condition number is below the 25th percentile of ``n_draws_for_threshold`` draws."""
    threshold = condition_threshold(n_rows, n_cols, rng, n_draws_for_threshold)
    while True:
        a = _column_normalised(rng, (n_rows, n_cols))
        if np.linalg.cond(a) <= threshold:
            return a


def make_nonstationary(
    n_sources: int = 5,
    n_obs: int | None = None,
    n_segments: int = 40,
    n_per_segment: int = 1000,
    *,
    n_layers: int = 3,
    base_noise: str = "gauss",
    activation: str = "xtanh",
    slope: float | None = None,
    scale_bounds: tuple[float, float] = (0.5, 3.0),
    uncentered: bool = False,
    mean_bounds: tuple[float, float] = (-5.0, 5.0),
    repeat_matrix: bool = True,
    noise_std: float = 0.0,
    discrete: bool = False,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> NonstationaryData:
    """Simulate the iVAE paper's nonstationary benchmark.

    Parameters
    ----------
    n_sources, n_obs : latent and observed dimensions (``n_obs >= n_sources``; default equal).
    n_segments, n_per_segment : M segments of L points each (N = M * L rows).
    n_layers : number of mixing matrices; the last layer is linear.
    base_noise : ``"gauss"``, ``"laplace"`` or ``"hypsecant"`` (all unit variance).
    activation, slope : mixing nonlinearity ``"xtanh"`` (tanh(x) + slope x, slope 0.1),
        ``"lrelu"`` (slope 0.2) or ``"none"``.
    scale_bounds : per-segment source standard deviations ~ U(bounds).
    uncentered, mean_bounds : add per-segment means ~ U(mean_bounds).
    repeat_matrix : reuse one matrix for every layer (the authors' current default;
        for ``n_obs > n_sources`` the first matrix is ``n x d`` and one ``d x d`` matrix
        is reused after it) or draw a fresh one per layer.
    noise_std : std of additive Gaussian noise on x.
    discrete : draw x ~ Bernoulli(sigmoid(mixed)) instead.
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    NonstationaryData with ``x (N, n_obs)``, ``s (N, n_sources)``, ``u (N,)``.

    Examples
    --------
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=10, random_state=0)
    >>> data.x.shape, data.s.shape, data.u.shape
    ((50, 2), (50, 2), (50,))
    """
    n_obs = n_sources if n_obs is None else n_obs
    _check_generator_args(n_sources, n_obs, n_segments, n_per_segment, n_layers, base_noise,
                          activation, slope, scale_bounds, mean_bounds, noise_std, dtype)
    slope = DEFAULT_SLOPES[activation] if slope is None else float(slope)
    rng = as_generator(random_state)

    n = n_segments * n_per_segment
    scales = rng.uniform(*scale_bounds, size=(n_segments, n_sources))
    means = (
        rng.uniform(*mean_bounds, size=(n_segments, n_sources))
        if uncentered
        else np.zeros((n_segments, n_sources))
    )
    u = np.repeat(np.arange(n_segments), n_per_segment)
    s = _base_noise(rng, base_noise, (n, n_sources)) * scales[u] + means[u]

    data = NonstationaryData(
        x=np.empty(0), s=s, u=u, means=means, scales=scales,
        mixing=mixing_matrices(n_sources, n_obs, n_layers, rng, repeat_matrix=repeat_matrix),
        activation=activation, slope=slope,
    )
    observe(data, rng, noise_std=noise_std, discrete=discrete, dtype=dtype)
    return data


def mixing_matrices(
    n_sources: int, n_obs: int, n_layers: int, rng: np.random.Generator, *, repeat_matrix: bool = True
) -> list[np.ndarray]:
    """The mixing MLP's matrices in the order applied: ``n x d`` first, ``d x d`` after it;
    one matrix reused for every layer (``repeat_matrix``, the authors' current default) or
    a fresh one per layer."""
    if repeat_matrix:
        first = mixing_matrix(n_sources, n_obs, rng)
        later = first if n_obs == n_sources else mixing_matrix(n_obs, n_obs, rng)
        return [first] + [later] * (n_layers - 1)
    mats = [mixing_matrix(n_sources, n_obs, rng)]
    return mats + [mixing_matrix(n_obs, n_obs, rng) for _ in range(n_layers - 1)]


def observe(data: NonstationaryData, rng: np.random.Generator, *, noise_std: float = 0.0,
            discrete: bool = False, dtype: type = np.float32) -> None:
    """Fill ``data.x`` with the mixed sources ``data.s`` (plus Gaussian noise of std
    ``noise_std``, or Bernoulli draws when ``discrete``); both cast to ``dtype``."""
    x = data.mix(data.s)
    if noise_std > 0:
        x = x + noise_std * rng.standard_normal(x.shape)
    if discrete:
        x = (rng.uniform(size=x.shape) < 1.0 / (1.0 + np.exp(-x))).astype(np.float64)
    data.x = x.astype(dtype)
    data.s = data.s.astype(dtype)


def _check_generator_args(
    n_sources: int, n_obs: int, n_segments: int, n_per_segment: int, n_layers: int,
    base_noise: str, activation: str, slope: float | None, scale_bounds: tuple[float, float],
    mean_bounds: tuple[float, float], noise_std: float, dtype: type,
) -> None:
    for name, value in [("n_sources", n_sources), ("n_obs", n_obs), ("n_segments", n_segments),
                        ("n_per_segment", n_per_segment), ("n_layers", n_layers)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_obs < n_sources:
        raise ValueError(f"n_obs ({n_obs}) must be >= n_sources ({n_sources}): the mixing is injective")
    if base_noise not in BASE_NOISE:
        raise ValueError(f"unknown base_noise {base_noise!r}; choose one of {BASE_NOISE}")
    if activation not in MIXING_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {MIXING_ACTIVATIONS}")
    if slope is not None and not (_is_real(slope) and slope > 0):
        raise ValueError(f"slope must be a number > 0 (the mixing must be invertible), got {slope!r}")
    low, high = _bounds(scale_bounds, "scale_bounds")
    if not 0 < low <= high:
        raise ValueError(f"scale_bounds must satisfy 0 < low <= high, got {scale_bounds}")
    low, high = _bounds(mean_bounds, "mean_bounds")
    if not low <= high:
        raise ValueError(f"mean_bounds must satisfy low <= high, got {mean_bounds}")
    if not (_is_real(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    try:
        floating = np.issubdtype(np.dtype(dtype), np.floating)
    except TypeError:
        floating = False
    if not floating:
        raise ValueError(f"dtype must be a floating-point type such as np.float32, got {dtype!r}")


def _is_real(value: object) -> bool:
    """A finite real number (bools excluded)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _bounds(bounds: object, name: str) -> tuple[float, float]:
    """``(low, high)`` as two finite numbers, or an error naming ``name``."""
    try:
        low, high = bounds  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {bounds!r}") from None
    if not (_is_real(low) and _is_real(high)):
        raise ValueError(f"{name} must hold two finite numbers, got {bounds!r}")
    return float(low), float(high)
