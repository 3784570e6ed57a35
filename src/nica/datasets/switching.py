"""Switching latent dynamics with hidden Markov regimes: the CtrlNS synthetic protocol.

Written from the paper and the public generator of CtrlNS (Song et al., NeurIPS 2024,
"Causal Temporal Representation Learning with Nonstationary Sparse Transition";
repository xiangchensong/ctrlns, ``datasets/generate_data.py``, its argparse defaults;
``datasets/simulation.py`` for how the arrays are read). Facts carried over:

* **Regimes.** K = 5. Every regime path has 3 x 5 = 15 steps: 5 regimes drawn
  uniformly, then 5 from a "clean" cyclic Markov chain (stay with probability 0.8, else
  move to the next regime, the last one back to the first), then 5 from a random chain
  (entries U(0.2, 0.8) plus 0.8 on the anti-diagonal, ``rot90`` of the identity, rows
  normalised); each chained segment starts from its chain's stationary distribution.
  1,000 paths; each is shared by 32 sequences (``inner_batch_size``), which the
  published data loader then treats as 32,000 separate sequences.
* **Latents.** z_0 ~ N(0, I_8); z_t = g_{c_t}(z_{t-1}) + sqrt(0.1) N(0, I) for the 15 steps
  (``noise_level`` 0.1 is the variance). Each regime's g has its own sparse Jacobian
  support: entries kept with probability 0.7 plus a random permutation's diagonal, and
  any two supports differ in more than 10% of the entries both ways (a new one is
  redrawn otherwise). Output i of g is its own MLP: Linear(8 -> 32) with N(0, 1) weights
  masked by row i of the support (|w| < 0.01 set to +-0.01), LeakyReLU(0.2),
  Linear(32 -> 1); biases and the output layer as ``torch.nn.Linear`` initialises them
  (U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
* **Mixing.** ``num_mixing_layer`` 2: one layer, a LeakyReLU(0.2) on z and then a random
  orthogonal matrix (Haar), x = lrelu(z) @ A; more layers repeat the pair.
* **Scoring** (``train_nsctrl.py``, ``models/metrics``): a random 10% of the sequences is
  held out; MCC (Pearson, Hungarian) of z_t at steps t >= 1 and the regime accuracy after
  the Hungarian matching of regime labels.

Ours: the held-out split is a second draw of paths and sequences from the same chains,
transitions and mixing (``n_test_paths`` paths, default 100: 10% of the training
data, as the published validation split). ``regimes[:, 0]`` (z_0 has no transition)
repeats ``regimes[:, 1]`` so that the label array has one entry per step; the published
arrays have 15 labels for 16 steps. Randomness is one ``numpy.random.Generator``
(the published code draws from numpy and torch), so the draws differ from theirs, not
the distributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator

#: leaky-ReLU slope of the transition MLPs and of the mixing (both 0.2 in the published code)
SLOPE = 0.2
#: weights of the transition's first layer smaller than this in magnitude are set to +-it
MIN_WEIGHT = 0.01
#: two regimes' supports must differ in more than this fraction of entries, both ways
MIN_SUPPORT_DIFFERENCE = 0.1


def _leaky_relu(h: np.ndarray, slope: float = SLOPE) -> np.ndarray:
    return np.where(h > 0, h, slope * h)


@dataclass
class SwitchingTransition:
    """Per-regime transition means g_k(z) = (MLP_{k,i}(z))_i with sparse Jacobians.

    Attributes
    ----------
    supports : ``(K, n, n)`` 0/1, ``supports[k, i, j] = 1`` when output i of regime k reads z_j.
    w1 : ``(K, n, H, n)`` first-layer weights (zero off the support); b1 : ``(K, n, H)``.
    w2 : ``(K, n, H)`` output weights; b2 : ``(K, n)``.
    """

    supports: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def mean(self, z: np.ndarray, regime: int) -> np.ndarray:
        """g_regime(z): ``(..., n) -> (..., n)``."""
        h = np.einsum("...j,ihj->...ih", np.asarray(z, dtype=np.float64), self.w1[regime]) + self.b1[regime]
        return np.einsum("...ih,ih->...i", _leaky_relu(h), self.w2[regime]) + self.b2[regime]


@dataclass
class SwitchingData:
    """A simulated switching data set and the system that made it.

    Attributes
    ----------
    x, s : training sequences: observations ``(N, T, d)`` and latents ``(N, T, n)``
        (T = 1 + 3 * segment_length = 16 by default).
    regimes : ``(N, T)`` the regime c_t whose transition made step t (``[:, 0]`` repeats ``[:, 1]``).
    x_test, s_test, regimes_test : the held-out sequences, same layout.
    transition : the per-regime transitions (:class:`SwitchingTransition`).
    clean_chain, random_chain : ``(K, K)`` transition matrices of the chained segments.
    mixing : the mixing matrices in the order applied, ``h <- lrelu(h) @ A``.
    noise_var : variance of the innovations.
    """

    x: np.ndarray
    s: np.ndarray
    regimes: np.ndarray
    x_test: np.ndarray
    s_test: np.ndarray
    regimes_test: np.ndarray
    transition: SwitchingTransition
    clean_chain: np.ndarray
    random_chain: np.ndarray
    mixing: list[np.ndarray] = field(default_factory=list)
    noise_var: float = 0.1

    def mix(self, s: np.ndarray, slope: float = SLOPE) -> np.ndarray:
        """x = (lrelu then A) applied for each mixing matrix: ``(..., n) -> (..., d)``."""
        h = np.asarray(s, dtype=np.float64)
        for a in self.mixing:
            h = _leaky_relu(h, slope) @ a
        return h


def cyclic_chain(n_regimes: int, stickiness: float = 0.8) -> np.ndarray:
    """The "clean" chain: stay with probability ``stickiness``, else go to the next regime
    (the last to the first): ``(K, K)``."""
    p = np.eye(n_regimes) * stickiness
    p[np.arange(n_regimes), (np.arange(n_regimes) + 1) % n_regimes] += 1.0 - stickiness
    return p / p.sum(1, keepdims=True)


def random_chain(n_regimes: int, rng: np.random.Generator, stickiness: float = 0.8) -> np.ndarray:
    """The random chain: U(0.2, 0.8) entries plus ``stickiness`` on the anti-diagonal, rows normalised."""
    p = rng.uniform(0.2, 0.8, size=(n_regimes, n_regimes)) + np.rot90(np.eye(n_regimes) * stickiness)
    return p / p.sum(1, keepdims=True)


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """pi with pi P = pi (the left eigenvector of eigenvalue 1), normalised: ``(K,)``."""
    values, vectors = np.linalg.eig(np.asarray(transition).T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return pi / pi.sum()


def sample_chain(transition: np.ndarray, n_paths: int, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """``n_paths`` Markov chains of ``n_steps`` started from the stationary distribution: ``(n_paths, n_steps)``."""
    k = len(transition)
    cumulative = np.cumsum(transition, axis=1)
    states = np.empty((n_paths, n_steps), dtype=np.int64)
    states[:, 0] = rng.choice(k, size=n_paths, p=stationary_distribution(transition))
    for t in range(1, n_steps):
        draw = rng.random(n_paths)[:, None]
        states[:, t] = np.minimum((draw > cumulative[states[:, t - 1]]).sum(1), k - 1)
    return states


def distinct_supports(n_regimes: int, n: int, keep: float, rng: np.random.Generator,
                      max_tries: int = 1_000) -> np.ndarray:
    """K sparse Jacobian supports ``(K, n, n)``: each entry kept with probability ``keep``
    plus a permutation's diagonal; a draw is kept when it differs from every earlier one in
    more than 10% of the entries in both directions (added and removed)."""
    supports: list[np.ndarray] = []
    threshold = MIN_SUPPORT_DIFFERENCE * n * n
    for _ in range(max_tries):
        if len(supports) == n_regimes:
            break
        mask = (rng.random((n, n)) < keep).astype(np.float64)
        mask[rng.permutation(n), np.arange(n)] = 1.0
        if all(((mask - m) == 1).sum() > threshold and ((mask - m) == -1).sum() > threshold for m in supports):
            supports.append(mask)
    if len(supports) < n_regimes:
        raise ValueError(f"could not draw {n_regimes} distinct supports of {n} x {n} with keep={keep} in "
                         f"{max_tries} tries; use fewer regimes or a smaller keep probability")
    return np.stack(supports)


def _transition(supports: np.ndarray, hidden: int, rng: np.random.Generator) -> SwitchingTransition:
    k, n, _ = supports.shape
    w1 = rng.standard_normal((k, n, hidden, n))
    small = np.abs(w1) < MIN_WEIGHT
    w1[small] = np.where(w1[small] >= 0, MIN_WEIGHT, -MIN_WEIGHT)
    w1 *= supports[:, :, None, :]
    b1 = rng.uniform(-1.0, 1.0, size=(k, n, hidden)) / np.sqrt(n)
    w2 = rng.uniform(-1.0, 1.0, size=(k, n, hidden)) / np.sqrt(hidden)
    b2 = rng.uniform(-1.0, 1.0, size=(k, n)) / np.sqrt(hidden)
    return SwitchingTransition(supports, w1, b1, w2, b2)


def haar_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed random orthogonal ``(n, n)`` matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def make_switching(
    n_sources: int = 8,
    n_regimes: int = 5,
    *,
    n_paths: int = 1_000,
    sequences_per_path: int = 32,
    segment_length: int = 5,
    hidden: int = 32,
    noise_var: float = 0.1,
    keep: float = 0.7,
    stickiness: float = 0.8,
    mixing_layers: int = 2,
    n_test_paths: int = 100,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> SwitchingData:
    """Simulate CtrlNS's switching dynamics (defaults: its generator's defaults).

    Parameters
    ----------
    n_sources : n, latents (= observed features).
    n_regimes : K.
    n_paths, sequences_per_path : regime paths, and sequences sharing each path.
    segment_length : steps of each of the three segments of a path (uniform, clean
        chain, random chain); sequences have ``1 + 3 * segment_length`` steps.
    hidden : hidden units of each output's transition MLP.
    noise_var : variance of the Gaussian innovations.
    keep : probability that an entry of a Jacobian support is kept.
    stickiness : self-transition weight of the chains.
    mixing_layers : ``num_mixing_layer``; ``mixing_layers - 1`` (lrelu, orthogonal) layers.
    n_test_paths : paths of the held-out split (each with ``sequences_per_path`` sequences).
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    SwitchingData

    Examples
    --------
    >>> data = make_switching(n_paths=4, sequences_per_path=2, n_test_paths=1, random_state=0)
    >>> data.x.shape, data.regimes.shape, data.x_test.shape
    ((8, 16, 8), (8, 16), (2, 16, 8))
    """
    for name, value in [("n_sources", n_sources), ("n_regimes", n_regimes), ("n_paths", n_paths),
                        ("sequences_per_path", sequences_per_path), ("segment_length", segment_length),
                        ("hidden", hidden), ("mixing_layers", mixing_layers), ("n_test_paths", n_test_paths)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_regimes < 2:
        raise ValueError(f"n_regimes must be >= 2 for switching dynamics, got {n_regimes}")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep!r}")
    if not 0 <= stickiness < np.inf or not 0 < noise_var < np.inf:
        raise ValueError(f"stickiness must be >= 0 and noise_var > 0, got {stickiness!r} and {noise_var!r}")
    rng = as_generator(random_state)
    clean = cyclic_chain(n_regimes, stickiness)
    chain = random_chain(n_regimes, rng, stickiness)
    transition = _transition(distinct_supports(n_regimes, n_sources, keep, rng), hidden, rng)
    mixing = [haar_orthogonal(n_sources, rng) for _ in range(mixing_layers - 1)]
    data = SwitchingData(*[np.empty(0)] * 6, transition=transition, clean_chain=clean, random_chain=chain,
                         mixing=mixing, noise_var=float(noise_var))
    for split, paths in (("", n_paths), ("_test", n_test_paths)):
        path_regimes = np.concatenate([rng.integers(0, n_regimes, size=(paths, segment_length)),
                                       sample_chain(clean, paths, segment_length, rng),
                                       sample_chain(chain, paths, segment_length, rng)], axis=1)
        regimes = np.repeat(path_regimes, sequences_per_path, axis=0)  # (N, 3 * segment_length)
        s = _simulate(transition, regimes, noise_var, rng)
        setattr(data, f"x{split}", data.mix(s).astype(dtype))
        setattr(data, f"s{split}", s.astype(dtype))
        setattr(data, f"regimes{split}", np.concatenate([regimes[:, :1], regimes], axis=1))
    return data


def _simulate(transition: SwitchingTransition, regimes: np.ndarray, noise_var: float,
              rng: np.random.Generator) -> np.ndarray:
    """Latents ``(N, 1 + steps, n)`` of sequences with the given regime paths ``(N, steps)``."""
    n_seq, steps = regimes.shape
    n = transition.supports.shape[1]
    z = np.empty((n_seq, steps + 1, n))
    z[:, 0] = rng.standard_normal((n_seq, n))
    for t in range(steps):
        noise = np.sqrt(noise_var) * rng.standard_normal((n_seq, n))
        for k in np.unique(regimes[:, t]):
            rows = regimes[:, t] == k
            z[rows, t + 1] = transition.mean(z[rows, t], int(k)) + noise[rows]
    return z


__all__ = ["SwitchingData", "SwitchingTransition", "cyclic_chain", "distinct_supports", "haar_orthogonal",
           "make_switching", "random_chain", "sample_chain", "stationary_distribution"]
