"""Regimes: latent Langevin dynamics on an energy landscape with several wells.

Our protocol (the published molecular-dynamics and energy-landscape benchmarks that
report iVAE numbers do not publish theirs): latents z in R^n follow overdamped Langevin
dynamics at unit temperature with a diagonal, position-dependent diffusion D(z),

    dz = (-D(z) grad E(z) + div D(z)) dt + sqrt(2 D(z)) dW,
    E(z) = -log sum_k w_k N(z; c_k, diag(sigma_k^2)),

so the stationary density is exp(-E) (the divergence term is the Ito correction that
keeps it so), a mixture of K Gaussian wells: the process stays in one well for a while
(a metastable regime) and hops between them. The regime of a step is the well with the
largest responsibility r_k(z_t). The diffusion blends per-well coefficients,
D_i(z) = sum_k r_k(z) D_{k,i} (each state has its own friction, as conformations of a
molecule do): the innovations' variance then changes with the regime. With one constant
diffusion the innovations would be isotropic Gaussian and any rotation of z would fit
as well (not identifiable); the per-well diffusion is what makes the components
identifiable from the dynamics. Observations are
x = MLP(h(z)), with h a component-wise monotone nonlinearity
h_i(z) = z + a_i tanh(b_i (z - o_i)) (a_i, b_i > 0) and the MLP the mixing of the iVAE
benchmark (well-conditioned matrices, leaky ReLU, last layer linear).

Integration: Euler-Maruyama with step ``dt``, one step in ``record_every`` kept, after a
burn-in. The held-out split (``x_test``...) is a second run of the same system.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator
from nica.datasets.nonstationary import mixing_matrix

SLOPE = 0.2


@dataclass
class RegimeData:
    """A simulated regimes data set and the system that made it.

    Attributes
    ----------
    x, s, regimes : training series: observations ``(T, d)``, latents ``(T, n)``, the
        well (regime) of each step ``(T,)``.
    x_test, s_test, regimes_test : the held-out series, same layout.
    centers, widths, weights : the wells: ``(K, n)`` centres, ``(K, n)`` standard
        deviations, ``(K,)`` mixture weights.
    diffusion : ``(K, n)`` diffusion coefficient of each component in each well.
    monotone : ``(3, n)`` the a, b, o of h_i(z) = z + a_i tanh(b_i (z - o_i)).
    mixing : the mixing matrices in the order applied.
    """

    x: np.ndarray
    s: np.ndarray
    regimes: np.ndarray
    x_test: np.ndarray
    s_test: np.ndarray
    regimes_test: np.ndarray
    centers: np.ndarray
    widths: np.ndarray
    weights: np.ndarray
    diffusion: np.ndarray
    monotone: np.ndarray
    mixing: list[np.ndarray] = field(default_factory=list)

    def responsibilities(self, z: np.ndarray) -> np.ndarray:
        """Posterior probability of each well at z: ``(..., n) -> (..., K)``."""
        log_w = self._log_components(np.asarray(z, dtype=np.float64))
        log_w -= log_w.max(-1, keepdims=True)
        w = np.exp(log_w)
        return w / w.sum(-1, keepdims=True)

    def regime(self, z: np.ndarray) -> np.ndarray:
        """The well of largest responsibility at z: ``(..., n) -> (...)`` integers."""
        return self._log_components(np.asarray(z, dtype=np.float64)).argmax(-1)

    def energy_gradient(self, z: np.ndarray) -> np.ndarray:
        """grad E(z) = sum_k r_k(z) (z - c_k) / sigma_k^2: ``(..., n) -> (..., n)``."""
        return -(self.responsibilities(z)[..., None] * self._score_terms(z)).sum(-2)

    def drift(self, z: np.ndarray) -> np.ndarray:
        """-D(z) grad E(z) + div D(z), with D_i(z) = sum_k r_k(z) D_{k,i}: ``(..., n) -> (..., n)``.

        d D_i / d z_i = sum_k r_k (g_{k,i} - gbar_i) D_{k,i}, with g_k = grad log N_k and
        gbar = sum_k r_k g_k = -grad E.
        """
        return self._drift_and_diffusion(z)[0]

    def _drift_and_diffusion(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.responsibilities(z)[..., None]
        g = self._score_terms(z)
        g_mean = (r * g).sum(-2)
        diffusion = (r * self.diffusion).sum(-2)
        divergence = (r * (g - g_mean[..., None, :]) * self.diffusion).sum(-2)
        return diffusion * g_mean + divergence, diffusion

    def diffusion_at(self, z: np.ndarray) -> np.ndarray:
        """D(z) = sum_k r_k(z) D_k: ``(..., n) -> (..., n)``."""
        return self.responsibilities(z) @ self.diffusion

    def _score_terms(self, z: np.ndarray) -> np.ndarray:
        """g_k = grad log N(z; c_k, sigma_k^2) = -(z - c_k) / sigma_k^2: ``(..., n) -> (..., K, n)``."""
        return -(np.asarray(z, dtype=np.float64)[..., None, :] - self.centers) / self.widths**2

    def _log_components(self, z: np.ndarray) -> np.ndarray:
        diff = (z[..., None, :] - self.centers) / self.widths
        return np.log(self.weights) - np.log(self.widths).sum(-1) - 0.5 * (diff**2).sum(-1)

    def mix(self, s: np.ndarray) -> np.ndarray:
        """x = MLP(h(z)): ``(..., n) -> (..., d)``."""
        a, b, o = self.monotone
        h = s + a * np.tanh(b * (s - o))
        for layer, m in enumerate(self.mixing):
            h = h @ m
            if layer < len(self.mixing) - 1:
                h = np.where(h > 0, h, SLOPE * h)
        return h


def make_regimes(
    n_sources: int = 3,
    n_obs: int | None = None,
    *,
    n_wells: int = 4,
    n_steps: int = 20_000,
    dt: float = 0.025,
    record_every: int = 2,
    width_bounds: tuple[float, float] = (0.3, 0.6),
    diffusion_bounds: tuple[float, float] = (0.2, 1.0),
    separation: float = 6.0,
    mixing_layers: int = 2,
    test_fraction: float = 0.5,
    burn_in: int = 1000,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> RegimeData:
    """Simulate latent Langevin dynamics on a multi-well landscape, mixed nonlinearly.

    Parameters
    ----------
    n_sources, n_obs : latent dimension n and observed dimension d (``d >= n``; default d = n).
    n_wells : K, the number of wells (regimes).
    n_steps : recorded steps of the training series.
    dt, record_every : Euler-Maruyama step and how many steps make one recorded step.
    width_bounds : each well's standard deviation per component ~ U(width_bounds).
    diffusion_bounds : each well's diffusion coefficient per component ~ U(diffusion_bounds).
    separation : the barriers: the wells' centres are placed so that each is reached
        from the others by hops of at most ``separation`` times the mean width (the
        longest edge of their minimum spanning tree), no two closer than half that.
    mixing_layers : matrices of the mixing MLP after the monotone nonlinearity.
    test_fraction : the held-out series has ``test_fraction * n_steps`` steps.
    burn_in : recorded steps simulated and dropped first (from a random well's centre).
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    RegimeData

    Examples
    --------
    >>> data = make_regimes(2, n_wells=3, n_steps=200, random_state=0)
    >>> data.x.shape, data.regimes.shape, data.x_test.shape
    ((200, 2), (200,), (100, 2))
    """
    n_obs = n_sources if n_obs is None else n_obs
    _check_args(n_sources, n_obs, n_wells, n_steps, dt, record_every, width_bounds, diffusion_bounds, separation,
                mixing_layers, test_fraction, burn_in)
    rng = as_generator(random_state)
    widths = rng.uniform(*width_bounds, size=(n_wells, n_sources))
    diffusion = rng.uniform(*diffusion_bounds, size=(n_wells, n_sources))
    centers = _placed_centers(n_wells, n_sources, separation * float(np.mean(width_bounds)), rng)
    monotone = np.stack([rng.uniform(0.5, 1.5, n_sources), rng.uniform(1.0, 2.0, n_sources),
                         rng.uniform(-1.0, 1.0, n_sources)])
    mixing = [mixing_matrix(n_sources, n_obs, rng)] + [mixing_matrix(n_obs, n_obs, rng)
                                                       for _ in range(mixing_layers - 1)]
    data = RegimeData(*[np.empty(0)] * 6, centers=centers, widths=widths, weights=np.full(n_wells, 1.0 / n_wells),
                      diffusion=diffusion, monotone=monotone, mixing=mixing)
    n_test = max(2, int(round(test_fraction * n_steps)))
    for split, length in (("", n_steps), ("_test", n_test)):
        s = _langevin(data, length, dt, record_every, burn_in, rng)
        setattr(data, f"x{split}", data.mix(s).astype(dtype))
        setattr(data, f"s{split}", s.astype(dtype))
        setattr(data, f"regimes{split}", data.regime(s))
    return data


def _placed_centers(k: int, n: int, hop: float, rng: np.random.Generator, max_tries: int = 1_000) -> np.ndarray:
    """K centres, drawn uniformly in a cube and rescaled so that the longest edge of their
    minimum spanning tree is ``hop``: every well is reached from the others by hops of at
    most ``hop`` (the barriers the process crosses); draws with two centres closer than
    ``hop / 2`` are redrawn, so that the wells stay distinct."""
    for _ in range(max_tries):
        c = rng.uniform(-1.0, 1.0, size=(k, n))
        distances = np.linalg.norm(c[:, None] - c[None], axis=-1)
        c *= hop / _longest_tree_edge(distances)
        distances *= hop / _longest_tree_edge(distances)
        np.fill_diagonal(distances, np.inf)
        if distances.min() >= 0.5 * hop:
            return c
    raise ValueError(f"could not place {k} distinct wells in {n} dimensions; use fewer wells")


def _longest_tree_edge(distances: np.ndarray) -> float:
    """The longest edge of the minimum spanning tree of a complete graph (Prim's algorithm)."""
    k = len(distances)
    inside = np.zeros(k, bool)
    inside[0] = True
    best = distances[0].copy()
    longest = 0.0
    for _ in range(k - 1):
        j = int(np.argmin(np.where(inside, np.inf, best)))
        longest = max(longest, float(best[j]))
        inside[j] = True
        best = np.minimum(best, distances[j])
    return longest


def _langevin(data: RegimeData, length: int, dt: float, record_every: int, burn_in: int,
              rng: np.random.Generator) -> np.ndarray:
    """Recorded states ``(length, n)`` of one Euler-Maruyama run started at a random well."""
    z = data.centers[rng.integers(len(data.centers))].copy()
    out = np.empty((length, z.shape[0]))
    for step in range((burn_in + length) * record_every):
        drift, diffusion = data._drift_and_diffusion(z)
        z = z + dt * drift + np.sqrt(2.0 * dt * diffusion) * rng.standard_normal(z.shape)
        recorded, rest = divmod(step + 1, record_every)
        if rest == 0 and recorded > burn_in:
            out[recorded - burn_in - 1] = z
    return out


def _check_args(n_sources: int, n_obs: int, n_wells: int, n_steps: int, dt: float, record_every: int,
                width_bounds: tuple[float, float], diffusion_bounds: tuple[float, float], separation: float,
                mixing_layers: int, test_fraction: float, burn_in: int) -> None:
    for name, value in [("n_sources", n_sources), ("n_obs", n_obs), ("n_wells", n_wells), ("n_steps", n_steps),
                        ("record_every", record_every), ("mixing_layers", mixing_layers)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_obs < n_sources:
        raise ValueError(f"n_obs ({n_obs}) must be >= n_sources ({n_sources}): the mixing is injective")
    if n_wells < 2:
        raise ValueError(f"n_wells must be >= 2 for several regimes, got {n_wells}")
    low, _ = _bounds(width_bounds, "width_bounds")
    _, d_high = _bounds(diffusion_bounds, "diffusion_bounds")
    for name, value in [("dt", dt), ("test_fraction", test_fraction)]:
        if not (isinstance(value, (int, float, np.floating)) and 0 < value < np.inf):
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not 0 < separation < np.inf:
        raise ValueError(f"separation must be a number > 0, got {separation!r}")
    if dt * d_high > 0.5 * low**2:
        raise ValueError(f"dt={dt} is too large for wells of width {low} and diffusion up to {d_high}: "
                         f"Euler-Maruyama needs dt * D <= width^2 / 2, dt <= {0.5 * low**2 / d_high:.3g}")
    if test_fraction > 1:
        raise ValueError(f"test_fraction must be in (0, 1], got {test_fraction}")
    if not isinstance(burn_in, (int, np.integer)) or isinstance(burn_in, bool) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")


def _bounds(bounds: object, name: str) -> tuple[float, float]:
    """``(low, high)`` with ``0 < low <= high < inf``, or an error naming ``name``."""
    try:
        low, high = (float(v) for v in bounds)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers (low, high), got {bounds!r}") from None
    if not 0 < low <= high < np.inf:
        raise ValueError(f"{name} must satisfy 0 < low <= high, got {bounds!r}")
    return low, high
