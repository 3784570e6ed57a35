"""NonSENS's simulation (Monti, Zhang & Hyvärinen 2019; the iVAE paper's App. I.2).

Observed variables x = f(s) are driven by nonstationary latent disturbances s: M
segments of L points, per segment and component ``s_j = mean + scale * e`` with Laplace
base noise e (unit variance), scales ~ U(0.5, 3) and, in the ``"mean"`` variant, means
~ U(-5, 5) as well (``"variance"``: zero means, the paper's "normal" data). The mixing f
is an MLP of ``n_layers`` lower-triangular matrices with leaky-ReLU (slope 0.2) between
them, the last layer linear, so in the causal order x_k depends on s_1..s_k only: the
structural equations ``x_k = f_k(x_1..x_{k-1}, s_k)`` of a DAG whose every earlier
variable is a parent (generically; one layer is a linear SEM). Each matrix has entries
U(-1, 1), unit-norm columns, and is redrawn until its condition number is below the 25th
percentile of such triangular matrices (the benchmark's rule, :mod:`nica.datasets`).
Finally the columns are shuffled, so the causal order is random: ``order`` says it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nica._random import as_generator
from nica.datasets.nonstationary import DEFAULT_SLOPES, NonstationaryData

MODULATIONS = ("variance", "mean")
#: draws of random triangular matrices that set the condition-number threshold
N_THRESHOLD_DRAWS = 2_000


@dataclass
class CausalData:
    """A simulated causal data set; columns of ``x`` and ``s`` are in the same (shuffled) order.

    Attributes
    ----------
    x : ``(N, d)`` observed variables.
    s : ``(N, d)`` latent disturbances; ``s[:, k]`` is the disturbance of ``x[:, k]``.
    u : ``(N,)`` integer segment labels.
    order : ``(d,)`` the causal order as column indices of ``x``, causes first.
    means, scales : ``(n_segments, d)`` per-segment disturbance means and stds (columns as x).
    mixing : the lower-triangular matrices in the causal order, ``h_{l+1} = act(h_l @ A_l)``
        (row vectors, so each ``A_l`` is upper triangular: ``A[j, k] = 0`` for j > k).
    modulation : ``"variance"`` or ``"mean"``.
    """

    x: np.ndarray
    s: np.ndarray
    u: np.ndarray
    order: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    mixing: list[np.ndarray] = field(default_factory=list)
    modulation: str = "variance"

    @property
    def ancestors(self) -> np.ndarray:
        """``(d, d)`` bool: ``[i, k]`` is True when x_i is an ancestor (here: a parent) of x_k."""
        d = len(self.order)
        position = np.empty(d, dtype=int)
        position[self.order] = np.arange(d)
        return position[:, None] < position[None, :]

    @property
    def direction(self) -> tuple[int, int]:
        """Two variables: ``(cause, effect)`` as column indices."""
        if len(self.order) != 2:
            raise ValueError(f"direction is defined for 2 variables, this data set has {len(self.order)}")
        return int(self.order[0]), int(self.order[1])


def _triangular(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Upper-triangular matrices (row-vector convention: lower-triangular maps), entries
    U(-1, 1), unit-norm columns."""
    a = np.triu(rng.uniform(-1.0, 1.0, shape))
    return a / np.linalg.norm(a, axis=-2, keepdims=True)


def triangular_mixing_matrix(d: int, rng: np.random.Generator, threshold: float) -> np.ndarray:
    """A ``(d, d)`` triangular mixing matrix with condition number at most ``threshold``."""
    while True:
        a = _triangular(rng, (d, d))
        if np.linalg.cond(a) <= threshold:
            return a


def make_causal(
    n_variables: int = 2,
    n_segments: int = 40,
    n_per_segment: int = 500,
    *,
    n_layers: int = 3,
    modulation: str = "variance",
    slope: float = DEFAULT_SLOPES["lrelu"],
    scale_bounds: tuple[float, float] = (0.5, 3.0),
    mean_bounds: tuple[float, float] = (-5.0, 5.0),
    shuffle: bool = True,
    random_state: int | np.random.Generator | None = None,
    dtype: type = np.float32,
) -> CausalData:
    """Simulate NonSENS's data: x = f(s), f lower triangular in a random causal order.

    Parameters
    ----------
    n_variables : d >= 2 observed variables (and as many disturbances).
    n_segments, n_per_segment : M segments of L points each (N = M * L rows, segment-major).
    n_layers : triangular matrices in f (1: a linear SEM); leaky ReLU between them.
    modulation : ``"variance"`` (per-segment scales; the paper's "normal" data) or
        ``"mean"`` (per-segment means ~ U(mean_bounds) too).
    slope : the leaky ReLU's negative slope (> 0, so f is invertible).
    scale_bounds, mean_bounds : ranges of the per-segment stds and means.
    shuffle : shuffle the columns (else the causal order is 0, 1, ..., d-1).
    random_state : seed or ``numpy.random.Generator``; all randomness comes from it.

    Returns
    -------
    CausalData with ``x``, ``s`` ``(N, d)``, ``u`` ``(N,)`` and the causal ``order``.

    Examples
    --------
    >>> data = make_causal(2, n_segments=10, n_per_segment=50, random_state=0)
    >>> data.x.shape, data.order.tolist(), data.direction
    ((500, 2), [1, 0], (1, 0))
    """
    for name, value in [("n_variables", n_variables), ("n_segments", n_segments),
                        ("n_per_segment", n_per_segment), ("n_layers", n_layers)]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_variables < 2:
        raise ValueError(f"causal discovery needs at least 2 variables, got n_variables={n_variables}")
    if modulation not in MODULATIONS:
        raise ValueError(f"unknown modulation {modulation!r}; choose one of {MODULATIONS}")
    if not (isinstance(slope, (int, float)) and 0 < slope <= 1):
        raise ValueError(f"slope must be a number in (0, 1] (the mixing must be invertible), got {slope!r}")
    if not 0 < scale_bounds[0] <= scale_bounds[1]:
        raise ValueError(f"scale_bounds must satisfy 0 < low <= high, got {scale_bounds}")
    if not mean_bounds[0] <= mean_bounds[1]:
        raise ValueError(f"mean_bounds must satisfy low <= high, got {mean_bounds}")
    rng = as_generator(random_state)
    d = int(n_variables)

    scales = rng.uniform(*scale_bounds, size=(n_segments, d))
    means = rng.uniform(*mean_bounds, size=(n_segments, d)) if modulation == "mean" else np.zeros((n_segments, d))
    u = np.repeat(np.arange(n_segments), n_per_segment)
    s = rng.laplace(0.0, 1.0 / np.sqrt(2.0), (len(u), d)) * scales[u] + means[u]

    threshold = float(np.percentile(np.linalg.cond(_triangular(rng, (N_THRESHOLD_DRAWS, d, d))), 25.0))
    mats = [triangular_mixing_matrix(d, rng, threshold) for _ in range(n_layers)]
    mixer = NonstationaryData(x=np.empty(0), s=s, u=u, means=means, scales=scales, mixing=mats,
                              activation="lrelu", slope=float(slope))
    x = mixer.mix(s)  # columns in the causal order

    # column k of the output holds the variable at causal position perm[k]
    perm = rng.permutation(d) if shuffle else np.arange(d)
    order = np.argsort(perm)
    return CausalData(x=x[:, perm].astype(dtype), s=s[:, perm].astype(dtype), u=u, order=order,
                      means=means[:, perm], scales=scales[:, perm], mixing=mats, modulation=modulation)
