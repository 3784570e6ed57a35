"""Temporal nonlinear ICA benchmark (the TDRL / LEAP protocol, Yao et al. 2021, 2022).

Latent processes with time-delayed nonlinear transitions and independent innovations,

    z_t = g(z_{t-1}, ..., z_{t-L}) + eps_t,    eps_{t,i} ~ Laplace(0, b_i(u_t)),

seen through an invertible MLP, x_t = f(z_t). The transition g is a random leaky-ReLU MLP
over the L lags (rescaled so that it contracts: the series is stationary within a
domain, and the past explains a good part of z_t); the innovation scale b changes across domains ("nonstationary", the setting of
the published temporal-ICA benchmarks) or is one scale for every domain ("fixed"). The
mixing f alternates well-conditioned random matrices (:func:`mixing_matrix`, as the
iVAE benchmark) with leaky ReLUs; the last layer is linear.

A data set is one long series whose domains follow each other in blocks of
``n_per_domain`` steps (arrays ``(T, d)``), or, with ``sequence_length``, many short
sequences that each stay in one domain (arrays ``(N, T, d)``, as the published
generators draw them); every series starts from a burn-in. The held-out split
(``x_test``...) is a second draw of the same process: same transition, mixing and scales.

Departures from the published generators, all to serve one long stationary series: the
published transitions act on 4 steps after a N(0, 1) start, so they need not contract;
ours is rescaled to a growth rate ``contraction`` < 1 and starts from a burn-in. The
published mixing also passes z through a leaky ReLU before its first matrix, a
component-wise monotone map (within the indeterminacy of the model); we leave it out, so
that the latents scored are the ones mixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator
from nica.datasets.nonstationary import mixing_matrix

INNOVATIONS = ("nonstationary", "fixed")
#: leaky-ReLU slope of the transition and the mixing (the published generators use 0.2)
SLOPE = 0.2


def _leaky_relu(h: np.ndarray, slope: float = SLOPE) -> np.ndarray:
    return np.where(h > 0, h, slope * h)


@dataclass
class TemporalData:
    """A simulated temporal data set and the process that made it.

    Attributes
    ----------
    x, s, u : training split: observations ``(T, d)``, latents ``(T, n)``, domain of each
        step ``(T,)`` (one series); ``(N, T, d)``, ``(N, T, n)``, ``(N, T)`` (sequences).
    x_test, s_test, u_test : the held-out split, same layout.
    innovations, innovations_test : eps_t of each step, like s (the burn-in gives every
        step, the first ``lags`` too, a past).
    scales : ``(n_domains, n)`` Laplace scale b of the innovations per domain.
    transition : the weight matrices of g in the order applied (``h @ W``), first one
        ``(lags * n, hidden)``; the input is ``[z_{t-1}, ..., z_{t-L}]``.
    mixing : the mixing matrices in the order applied, ``x_{l+1} = act(x_l @ A_l)``.
    lags : L.
    """

    x: np.ndarray
    s: np.ndarray
    u: np.ndarray
    x_test: np.ndarray
    s_test: np.ndarray
    u_test: np.ndarray
    innovations: np.ndarray
    innovations_test: np.ndarray
    scales: np.ndarray
    transition: list[np.ndarray] = field(default_factory=list)
    mixing: list[np.ndarray] = field(default_factory=list)
    lags: int = 1

    def transition_mean(self, past: np.ndarray) -> np.ndarray:
        """g(z_{t-1}, ..., z_{t-L}): past ``(..., L, n)`` (most recent first) -> ``(..., n)``."""
        h = np.asarray(past, dtype=np.float64).reshape(*past.shape[:-2], -1)
        for layer, w in enumerate(self.transition):
            h = h @ w
            if layer < len(self.transition) - 1:
                h = _leaky_relu(h)
        return h

    def mix(self, s: np.ndarray) -> np.ndarray:
        """The noise-free mixing f: ``(..., n) -> (..., d)``."""
        h = np.asarray(s, dtype=np.float64)
        for layer, a in enumerate(self.mixing):
            h = h @ a
            if layer < len(self.mixing) - 1:
                h = _leaky_relu(h)
        return h


def make_temporal(
    n_sources: int = 8,
    n_obs: int | None = None,
    *,
    lags: int = 2,
    n_domains: int = 20,
    n_per_domain: int = 2000,
    innovations: str = "nonstationary",
    scale_bounds: tuple[float, float] = (0.1, 1.0),
    sequence_length: int | None = None,
    contraction: float = 0.8,
    transition_layers: int = 2,
    mixing_layers: int = 2,
    test_fraction: float = 0.25,
    burn_in: int = 100,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> TemporalData:
    """Simulate the temporal nonlinear ICA benchmark.

    Parameters
    ----------
    n_sources, n_obs : latent dimension n and observed dimension d (``d >= n``; default d = n).
    lags : L, how many past steps the transition reads (the published settings: 1 or 2).
    n_domains, n_per_domain : domains and steps per domain (the training split has
        ``n_domains * n_per_domain`` steps).
    innovations : ``"nonstationary"`` (Laplace scale per domain and component ~
        U(scale_bounds)) or ``"fixed"`` (every scale the middle of scale_bounds).
    sequence_length : ``None``: one long series, domains in blocks of ``n_per_domain``
        steps; an integer dividing ``n_per_domain``: sequences of that many steps, each in
        one domain, each from its own burn-in.
    contraction : growth factor per step of the noise-free process (measured from 500
        random starts), < 1 so that the series is stationary. At 0.8 the past explains
        20-90% of the variance of z_t (8 latents, 2 lags; it depends on the draw).
    transition_layers : matrices of g (hidden width n, leaky ReLU slope 0.2 between).
    mixing_layers : matrices of the mixing MLP (``n x d`` then ``d x d``); 2, as the
        published generators (their ``Nlayer = 3`` draws two matrices).
    test_fraction : the held-out split has ``test_fraction * n_per_domain`` steps per domain.
    burn_in : steps simulated and dropped before each series.
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    TemporalData

    Examples
    --------
    >>> data = make_temporal(3, lags=1, n_domains=4, n_per_domain=50, random_state=0)
    >>> data.x.shape, data.u.shape, data.x_test.shape
    ((200, 3), (200,), (48, 3))
    >>> make_temporal(3, n_domains=2, n_per_domain=40, sequence_length=10, random_state=0).x.shape
    (8, 10, 3)
    """
    n_obs = n_sources if n_obs is None else n_obs
    _check_args(n_sources, n_obs, lags, n_domains, n_per_domain, innovations, scale_bounds,
                sequence_length, contraction, transition_layers, mixing_layers, test_fraction, burn_in)
    rng = as_generator(random_state)
    n = n_sources
    transition = _random_transition(n, lags, transition_layers, contraction, rng)
    low, high = map(float, scale_bounds)
    if innovations == "nonstationary":
        scales = rng.uniform(low, high, size=(n_domains, n))
    else:
        scales = np.full((n_domains, n), 0.5 * (low + high))
    mixing = [mixing_matrix(n, n_obs, rng)] + [mixing_matrix(n_obs, n_obs, rng) for _ in range(mixing_layers - 1)]
    data = TemporalData(x=np.empty(0), s=np.empty(0), u=np.empty(0), x_test=np.empty(0), s_test=np.empty(0),
                        u_test=np.empty(0), innovations=np.empty(0), innovations_test=np.empty(0),
                        scales=scales, transition=transition, mixing=mixing, lags=lags)
    length = sequence_length or n_per_domain
    n_test = max(lags + 2, int(round(test_fraction * n_per_domain)))
    if sequence_length is not None:  # whole sequences per domain in the test split too
        n_test = max(sequence_length, n_test // sequence_length * sequence_length)
    for split, per_domain in (("", n_per_domain), ("_test", n_test)):
        domains = _domain_schedule(n_domains, per_domain, sequence_length)
        s, eps = _simulate(data, domains, burn_in, rng)
        x = data.mix(s)
        if sequence_length is None:  # one series: drop the sequence axis
            s, eps, x, domains = s[0], eps[0], x[0], domains[0]
        setattr(data, f"x{split}", x.astype(dtype))
        setattr(data, f"s{split}", s.astype(dtype))
        setattr(data, f"u{split}", domains)
        setattr(data, "innovations" + split, eps.astype(dtype))
    return data


def _random_transition(n: int, lags: int, n_layers: int, contraction: float,
                       rng: np.random.Generator) -> list[np.ndarray]:
    """Matrices of a bias-free leaky-ReLU MLP ``(lags * n) -> n -> ... -> n``, entries
    U(-1, 1), rescaled so that the noise-free process grows at rate ``contraction`` per step.

    The rate of the state ``(z_t, ..., z_{t-L+1})`` rises with the matrices' scale; the
    scale is found by bisection (the product of spectral norms, a bound that always
    holds, is about 3x too loose and leaves almost no dynamics).
    """
    widths = [lags * n] + [n] * n_layers
    mats = [rng.uniform(-1.0, 1.0, size=(w_in, w_out)) for w_in, w_out in zip(widths[:-1], widths[1:])]
    starts = rng.standard_normal((500, lags, n))
    low, high = -6.0, 6.0  # log of the factor applied to every matrix
    for _ in range(30):
        mid = 0.5 * (low + high)
        if _growth_rate([m * np.exp(mid) for m in mats], lags, starts) > contraction:
            high = mid
        else:
            low = mid
    return [m * np.exp(low) for m in mats]


def _growth_rate(mats: list[np.ndarray], lags: int, starts: np.ndarray, n_steps: int = 200) -> float:
    """Largest asymptotic growth factor per step of ``||(z_t, ..., z_{t-L+1})||`` under the
    noise-free transition from the initial states ``starts`` ``(n_starts, L, n)``
    (geometric mean over the second half of ``n_steps``, the state renormalised every step)."""
    probe = TemporalData(*[np.empty(0)] * 8, scales=np.empty((0, starts.shape[2])), transition=mats, lags=lags)
    past = starts / np.linalg.norm(starts.reshape(len(starts), -1), axis=1)[:, None, None]
    log_growth = np.zeros(len(starts))
    for step in range(n_steps):
        past = np.concatenate([probe.transition_mean(past)[:, None], past[:, :-1]], axis=1)
        norm = np.linalg.norm(past.reshape(len(past), -1), axis=1)
        if step >= n_steps // 2:
            log_growth += np.log(norm)
        past /= norm[:, None, None]
    return float(np.exp(log_growth.max() / (n_steps - n_steps // 2)))


def _domain_schedule(n_domains: int, per_domain: int, sequence_length: int | None) -> np.ndarray:
    """Domain of each step ``(n_sequences, length)``: one series in domain blocks, or
    sequences of one domain each (domain-major)."""
    if sequence_length is None:
        return np.repeat(np.arange(n_domains), per_domain)[None, :]
    per = per_domain // sequence_length
    return np.repeat(np.arange(n_domains), per)[:, None].repeat(sequence_length, axis=1)


def _simulate(data: TemporalData, domains: np.ndarray, burn_in: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Latents and innovations ``(n_sequences, length, n)`` for a domain schedule; each
    sequence starts at zero and runs ``burn_in`` steps (in its first domain) first."""
    n_seq, length = domains.shape
    lags, n = data.lags, data.scales.shape[1]
    past = np.zeros((n_seq, lags, n))  # most recent first
    s = np.empty((n_seq, length, n))
    eps_out = np.empty((n_seq, length, n))
    for step in range(burn_in + length):
        t = step - burn_in
        scale = data.scales[domains[:, max(t, 0)]]
        eps = rng.laplace(0.0, 1.0, size=(n_seq, n)) * scale
        z = data.transition_mean(past) + eps
        past = np.concatenate([z[:, None], past[:, :-1]], axis=1)
        if t >= 0:
            s[:, t] = z
            eps_out[:, t] = eps
    return s, eps_out


def _check_args(n_sources: int, n_obs: int, lags: int, n_domains: int, n_per_domain: int, innovations: str,
                scale_bounds: tuple[float, float], sequence_length: int | None, contraction: float,
                transition_layers: int, mixing_layers: int, test_fraction: float, burn_in: int) -> None:
    for name, value in [("n_sources", n_sources), ("n_obs", n_obs), ("lags", lags), ("n_domains", n_domains),
                        ("n_per_domain", n_per_domain), ("transition_layers", transition_layers),
                        ("mixing_layers", mixing_layers)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_obs < n_sources:
        raise ValueError(f"n_obs ({n_obs}) must be >= n_sources ({n_sources}): the mixing is injective")
    if innovations not in INNOVATIONS:
        raise ValueError(f"innovations must be one of {INNOVATIONS}, got {innovations!r}")
    try:
        low, high = (float(v) for v in scale_bounds)
    except (TypeError, ValueError):
        raise ValueError(f"scale_bounds must be a pair of numbers (low, high), got {scale_bounds!r}") from None
    if not 0 < low <= high < np.inf:
        raise ValueError(f"scale_bounds must satisfy 0 < low <= high, got {scale_bounds!r}")
    if not 0 < contraction < 1:
        raise ValueError(f"contraction must be in (0, 1) for a stationary series, got {contraction!r}")
    if not 0 < test_fraction <= 1:
        raise ValueError(f"test_fraction must be in (0, 1], got {test_fraction!r}")
    if not isinstance(burn_in, (int, np.integer)) or isinstance(burn_in, bool) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    if sequence_length is not None:
        if not isinstance(sequence_length, (int, np.integer)) or sequence_length < lags + 1:
            raise ValueError(f"sequence_length must be an integer >= lags + 1 = {lags + 1}, got {sequence_length!r}")
        if n_per_domain % sequence_length:
            raise ValueError(f"sequence_length ({sequence_length}) must divide n_per_domain ({n_per_domain})")
    elif n_per_domain < lags + 1:
        raise ValueError(f"n_per_domain must be >= lags + 1 = {lags + 1}, got {n_per_domain}")
