"""Latent dynamics on a coupled energy landscape seen through sparse additive mixing:
the MOSAIC synthetic protocol (v2).

Written from the paper and the public generator of MOSAIC (Fan et al., arXiv 2605.05524;
repository shichengf/mosaic, ``scripts/data_prep/synthetic/config.py`` and
``generate_data.py`` for the system, ``prepare.py`` for the regimes,
``scripts/eval/eval_baselines_5seeds.py`` for the scoring). Facts carried over:

* **Latents** q = (x, z1, z2, z3, u1, u2). U(q) = U_x(x; depth1 = z1, depth2 = z2,
  barrier = z3) + U_z1 + U_z2 + U_z3 + U_u1 + U_u2, with Gaussian bumps
  G(q; c, s) = exp(-(q - c)^2 / (2 s^2)):

  - U_x = -d1 G(x; -1, 0.45) - d2 G(x; 1, 0.45) + b G(x; 0, 0.5) + 0.08 x^4, where
    d1 = clip(z1, 0.1, 3), d2 = clip(z2, 0.1, 3), b = clip(z3, 0.05, 3);
  - z1, z2: double wells at 0.5 and 1.5, z3 at 0.2 and 1.2: depth 1, barrier 0.4, well
    width 0.25, barrier width 0.3, + 0.05 (q - mid)^4;
  - u1: double well at -1 and 1, depth 1, barrier 0.5, widths 0.45 / 0.5, + 0.08 u1^4;
  - u2: triple well at -1, 0, 1, depth 1, barriers 0.5 at -0.5 and 0.5, widths 0.35 /
    0.25, + 0.06 u2^4.

* **Dynamics.** Overdamped Langevin by Euler-Maruyama, q <- q - (dt / gamma) grad U +
  sqrt(2 kT dt / gamma) N(0, I), dt 0.002, kT 0.3, gamma 1 (the gradient of the clipped
  depths is zero outside the clip range, as automatic differentiation gives it);
  9 trajectories of 2,000,000 steps, every 40th state kept (50,000 frames each), started
  in state A (x = -1, z1 = 1.5, z2 = 0.5) or B (x = 1, z1 = 0.5, z2 = 1.5) in the order
  A A A B A B A A B, z3 = 0.7, u1 in a random one of its wells, u2 in a random one of its three.
* **Observations.** 30 features, sparse additive: latent j drives the features of its
  support, {0-4}, {5-8}, {9-12, 4}, {13-16, 8}, {17-21}, {22-26, 21} (features 4, 8 and
  21 are shared by two latents), features 27-29 are noise only; each edge adds
  w f(q_j + phi), w ~ U(0.5, 2), phi ~ U(-1, 1), f drawn uniformly from tanh(2 .),
  (.)^3 / 5, sigmoid(3 .), softplus(2 .) / 2 and, in the published v2 code, sin; then
  Gaussian noise of sd 0.05 on every feature. The paper's benchmark table uses a
  monotone variant whose generator is not public (``synthetic_well_v2_mono`` in their
  evaluation script); ours, ``mixing="monotone"`` (the default), leaves sin out.
* **Regimes.** The well of x: 0 (state A) for x < -0.1, 1 (state B) for x > 0.1, -1
  between; MOSAIC's training windows also drop 100 frames either side of a switch
  (:func:`boundary_buffer`).
* **Scoring.** MCC (|Pearson|, Hungarian) of the 6 latents on the first 5,000 frames of
  trajectory 1.

Ours: the held-out split is a second set of trajectories of the same system and mixing
(``n_test_trajectories``, default 9, same start states), simulated side by side with
the training ones (every step is one vectorised update of all trajectories). The
published code fixes the mixing's seed (42) and one seed per trajectory; here one
``numpy.random.Generator`` draws everything. A full default data set (2 x 9
trajectories x 2,000,000 steps) takes about 50 s on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nica._random import as_generator

N_LATENTS, N_FEATURES = 6, 30
LATENT_NAMES = ("x", "z1", "z2", "z3", "u1", "u2")
#: features each latent drives (MOSAIC's SUPPORT_SETS); 27-29 are noise only
SUPPORTS = ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 4), (13, 14, 15, 16, 8), (17, 18, 19, 20, 21),
            (22, 23, 24, 25, 26, 21))
MIXINGS = {"monotone": ("tanh", "cubic", "sigmoid", "softplus"),
           "original": ("sin", "tanh", "cubic", "sigmoid", "softplus")}
#: the start states, in trajectory order (cycled for more trajectories)
START_STATES = ("A", "A", "A", "B", "A", "B", "A", "A", "B")
#: x's regime threshold and the buffer of frames dropped around a switch
X_THRESHOLD, BOUNDARY_BUFFER = 0.1, 100
#: (latent, centre, width, dU coefficient) of every Gaussian bump; x's three take their
#: depths / barrier from z1, z2, z3 (coefficient None); wells enter U with -depth,
#: barriers with +height
_BUMPS = (
    (0, -1.0, 0.45, None), (0, 1.0, 0.45, None), (0, 0.0, 0.5, None),
    (1, 0.5, 0.25, 1.0), (1, 1.5, 0.25, 1.0), (1, 1.0, 0.3, -0.4),
    (2, 0.5, 0.25, 1.0), (2, 1.5, 0.25, 1.0), (2, 1.0, 0.3, -0.4),
    (3, 0.2, 0.25, 1.0), (3, 1.2, 0.25, 1.0), (3, 0.7, 0.3, -0.4),
    (4, -1.0, 0.45, 1.0), (4, 1.0, 0.45, 1.0), (4, 0.0, 0.5, -0.5),
    (5, -1.0, 0.35, 1.0), (5, 0.0, 0.35, 1.0), (5, 1.0, 0.35, 1.0), (5, -0.5, 0.25, -0.5), (5, 0.5, 0.25, -0.5),
)
#: centre and coefficient k of each latent's confinement k (q - centre)^4
_QUARTIC_CENTRE = np.array([0.0, 1.0, 1.0, 0.7, 0.0, 0.0])
_QUARTIC_K = np.array([0.08, 0.05, 0.05, 0.05, 0.08, 0.06])
#: clip range of (depth1, depth2, barrier) = (z1, z2, z3) inside U_x, and each one's sign in U_x
_CLIP_LOW, _CLIP_HIGH = np.array([0.1, 0.1, 0.05]), np.array([3.0, 3.0, 3.0])
_X_SIGN = np.array([-1.0, -1.0, 1.0])


def _f(name: str, v: np.ndarray) -> np.ndarray:
    if name == "sin":
        return np.sin(v)
    if name == "tanh":
        return np.tanh(2.0 * v)
    if name == "cubic":
        return v**3 / 5.0
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-3.0 * v))
    if name == "softplus":
        return np.logaddexp(0.0, 2.0 * v) / 2.0
    raise ValueError(f"unknown mixing function {name!r}")


@dataclass
class MixingEdge:
    """One term w f(q_latent + phi) of feature ``feature``."""

    feature: int
    latent: int
    function: str
    weight: float
    shift: float


@dataclass
class EnergyLandscapeData:
    """A simulated energy-landscape data set and its mixing.

    Attributes
    ----------
    x, s : training trajectories: observations ``(N, T, 30)`` and latents ``(N, T, 6)``
        (x, z1, z2, z3, u1, u2).
    regimes : ``(N, T)`` the well of x: 0 (x < -0.1), 1 (x > 0.1), -1 between.
    x_test, s_test, regimes_test : the held-out trajectories, same layout.
    edges : the mixing's terms (:class:`MixingEdge`); noise_std : sd of the observation noise.
    """

    x: np.ndarray
    s: np.ndarray
    regimes: np.ndarray
    x_test: np.ndarray
    s_test: np.ndarray
    regimes_test: np.ndarray
    edges: list[MixingEdge]
    noise_std: float

    def mix(self, s: np.ndarray) -> np.ndarray:
        """The noise-free observations: ``(..., 6) -> (..., 30)``."""
        s = np.asarray(s, dtype=np.float64)
        x = np.zeros((*s.shape[:-1], N_FEATURES))
        for e in self.edges:
            x[..., e.feature] += e.weight * _f(e.function, s[..., e.latent] + e.shift)
        return x


def energy(q: np.ndarray) -> np.ndarray:
    """U(q) of the coupled landscape: ``(..., 6) -> (...)``."""
    q = np.asarray(q, dtype=np.float64)
    total = (_QUARTIC_K * (q - _QUARTIC_CENTRE) ** 4).sum(-1)
    clipped = np.clip(q[..., 1:4], _CLIP_LOW, _CLIP_HIGH) * _X_SIGN
    for b, (latent, centre, width, coef) in enumerate(_BUMPS):
        bump = np.exp(-((q[..., latent] - centre) ** 2) / (2 * width**2))
        total = total + (clipped[..., b] if coef is None else -coef) * bump
    return total


class _Gradient:
    """grad U for a batch of states ``(B, 6)``, with buffers reused across steps (the
    simulation is a long loop over small arrays, bound by the number of numpy calls)."""

    def __init__(self, batch: int, dt: float) -> None:
        self.latent = np.array([b[0] for b in _BUMPS])
        self.centre = np.array([b[1] for b in _BUMPS])
        precision = 1.0 / np.array([b[2] for b in _BUMPS]) ** 2
        self.half_precision = -0.5 * precision
        # d/dq of coef * (-G) is coef * G * (q - c) * precision; scaled by dt up front
        coef = np.array([0.0 if b[3] is None else b[3] for b in _BUMPS])
        self.weight = np.tile(coef * precision * dt, (batch, 1))
        self.x_weight = -_X_SIGN * precision[:3] * dt  # x's bumps: coefficient -sign * clip(z)
        self.scatter = np.zeros((len(_BUMPS), N_LATENTS))
        self.scatter[np.arange(len(_BUMPS)), self.latent] = 1.0
        self.quartic = 4.0 * _QUARTIC_K * dt
        self.coupling = _X_SIGN * dt  # d U_x / d z_j = sign_j G_j(x) inside the clip range
        n = len(_BUMPS)
        self.d, self.g, self.t = np.empty((batch, n)), np.empty((batch, n)), np.empty((batch, n))
        self.c, self.c3, self.out = np.empty((batch, 6)), np.empty((batch, 6)), np.empty((batch, 6))
        self.clipped = np.empty((batch, 3))

    def step(self, q: np.ndarray) -> np.ndarray:
        """dt * grad U(q) ``(B, 6)`` (a buffer, overwritten by the next call)."""
        np.take(q, self.latent, axis=1, out=self.d)
        self.d -= self.centre
        np.multiply(self.d, self.d, out=self.g)
        self.g *= self.half_precision
        np.exp(self.g, out=self.g)
        z = q[:, 1:4]
        np.clip(z, _CLIP_LOW, _CLIP_HIGH, out=self.clipped)
        np.multiply(self.clipped, self.x_weight, out=self.weight[:, :3])
        np.multiply(self.weight, self.g, out=self.t)
        self.t *= self.d
        np.matmul(self.t, self.scatter, out=self.out)
        np.subtract(q, _QUARTIC_CENTRE, out=self.c)
        np.multiply(self.c, self.c, out=self.c3)
        self.c3 *= self.c
        self.c3 *= self.quartic
        self.out += self.c3
        inside = (z > _CLIP_LOW) & (z < _CLIP_HIGH)
        np.multiply(self.g[:, :3], inside * self.coupling, out=self.clipped)
        self.out[:, 1:4] += self.clipped
        return self.out


def energy_gradient(q: np.ndarray, dt: float = 1.0) -> np.ndarray:
    """grad U(q) (times ``dt``) of a batch of states ``(B, 6) -> (B, 6)``."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    return _Gradient(len(q), dt).step(q).copy()


def start_states(n: int, rng: np.random.Generator) -> np.ndarray:
    """MOSAIC's start positions of ``n`` trajectories ``(n, 6)`` (states A / B in
    :data:`START_STATES` order, cycled; u1 and u2 in random wells)."""
    q = np.zeros((n, N_LATENTS))
    for i in range(n):
        a = START_STATES[i % len(START_STATES)] == "A"
        q[i, :3] = (-1.0, 1.5, 0.5) if a else (1.0, 0.5, 1.5)
    q[:, 3] = 0.7
    q[:, 4] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    q[:, 5] = rng.choice([-1.0, 0.0, 1.0], size=n)
    return q


def simulate_langevin(q0: np.ndarray, n_steps: int, record_every: int, rng: np.random.Generator, *,
                      dt: float = 0.002, kT: float = 0.3, gamma: float = 1.0, chunk: int = 4_096) -> np.ndarray:
    """Euler-Maruyama from ``q0`` ``(B, 6)``: the state after steps record_every * k + 1
    (k = 0, 1, ...), as MOSAIC keeps ``trajectory[::record_every]``: ``(B, frames, 6)``."""
    q = np.array(q0, dtype=np.float64)
    batch = len(q)
    gradient = _Gradient(batch, dt / gamma)
    noise_scale = np.sqrt(2.0 * kT * dt / gamma)
    frames = np.empty((batch, -(-n_steps // record_every), N_LATENTS))
    for start in range(0, n_steps, chunk):
        size = min(chunk, n_steps - start)
        noise = rng.standard_normal((size, batch, N_LATENTS))
        noise *= noise_scale
        for k in range(size):
            q -= gradient.step(q)
            q += noise[k]
            step = start + k
            if step % record_every == 0:
                frames[:, step // record_every] = q
    return frames


def well_of_x(s: np.ndarray) -> np.ndarray:
    """MOSAIC's regime of each frame from x = ``s[..., 0]``: 0, 1, or -1 within 0.1 of 0."""
    x = np.asarray(s)[..., 0]
    return np.where(x < -X_THRESHOLD, 0, np.where(x > X_THRESHOLD, 1, -1))


def boundary_buffer(regimes: np.ndarray, buffer: int = BOUNDARY_BUFFER) -> np.ndarray:
    """MOSAIC's labels for training windows: frames within ``buffer`` of a direct switch
    (A next to B) set to -1. ``regimes`` ``(T,)`` or ``(N, T)``."""
    regimes = np.asarray(regimes)
    if regimes.ndim == 2:
        return np.stack([boundary_buffer(r, buffer) for r in regimes])
    out = regimes.copy()
    switches = np.flatnonzero((regimes[1:] != regimes[:-1]) & (regimes[1:] >= 0) & (regimes[:-1] >= 0)) + 1
    for t in switches:
        out[max(0, t - buffer):min(len(out), t + buffer)] = -1
    return out


def make_energy_landscape(
    n_trajectories: int = 9,
    n_steps: int = 2_000_000,
    *,
    record_every: int = 40,
    dt: float = 0.002,
    kT: float = 0.3,
    gamma: float = 1.0,
    mixing: str = "monotone",
    noise_std: float = 0.05,
    n_test_trajectories: int = 9,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> EnergyLandscapeData:
    """Simulate MOSAIC's synthetic benchmark (defaults: its settings, monotone mixing).

    Parameters
    ----------
    n_trajectories, n_test_trajectories : trajectories of the training and held-out splits.
    n_steps : Euler-Maruyama steps per trajectory; ``n_steps / record_every`` frames are kept.
    record_every : keep one state in this many.
    dt, kT, gamma : step, temperature and friction of the Langevin dynamics.
    mixing : ``"monotone"`` (tanh, cubic, sigmoid, softplus: the paper's table) or
        ``"original"`` (with sin: the public v2 code).
    noise_std : sd of the Gaussian noise on every observed feature.
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    EnergyLandscapeData

    Examples
    --------
    >>> data = make_energy_landscape(2, 4_000, n_test_trajectories=1, random_state=0)
    >>> data.x.shape, data.s.shape, data.regimes.shape, data.x_test.shape
    ((2, 100, 30), (2, 100, 6), (2, 100), (1, 100, 30))
    """
    for name, value in [("n_trajectories", n_trajectories), ("n_steps", n_steps), ("record_every", record_every),
                        ("n_test_trajectories", n_test_trajectories)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {sorted(MIXINGS)}, got {mixing!r}")
    for name, value in [("dt", dt), ("kT", kT), ("gamma", gamma)]:
        if not (isinstance(value, (int, float, np.floating)) and 0 < value < np.inf):
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not 0 <= noise_std < np.inf:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    rng = as_generator(random_state)
    functions = MIXINGS[mixing]
    edges = [MixingEdge(feature, latent, str(rng.choice(functions)), float(rng.uniform(0.5, 2.0)),
                        float(rng.uniform(-1.0, 1.0)))
             for latent, support in enumerate(SUPPORTS) for feature in support]
    q0 = start_states(n_trajectories + n_test_trajectories, rng)
    s = simulate_langevin(q0, n_steps, record_every, rng, dt=dt, kT=kT, gamma=gamma)
    data = EnergyLandscapeData(*[np.empty(0)] * 6, edges=edges, noise_std=float(noise_std))
    for split, rows in (("", slice(0, n_trajectories)), ("_test", slice(n_trajectories, None))):
        x = data.mix(s[rows])
        x += noise_std * rng.standard_normal(x.shape)
        setattr(data, f"x{split}", x.astype(dtype))
        setattr(data, f"s{split}", s[rows].astype(dtype))
        setattr(data, f"regimes{split}", well_of_x(s[rows]))
    return data


__all__ = ["BOUNDARY_BUFFER", "EnergyLandscapeData", "LATENT_NAMES", "MIXINGS", "MixingEdge", "SUPPORTS",
           "boundary_buffer", "energy", "energy_gradient", "make_energy_landscape", "simulate_langevin",
           "start_states", "well_of_x"]
