"""The HSIC test of independence (Gretton et al., NIPS 2007 / 2008), pooled or given u.

HSIC (the Hilbert-Schmidt independence criterion) measures the dependence between two
variables through Gaussian kernels on each: with centred Gram matrices ``Kc = H K H`` and
``Lc = H L H`` (``H = I - 11'/n``) of ``n`` paired rows, the test statistic is
``n * HSIC_b = tr(Kc Lc) / n`` (the biased estimate, scaled). Two null distributions:

- ``"gamma"`` (default): the two-moment gamma approximation of Gretton et al. (2008), the
  test NonSENS ran. One ``O(n^2)`` pass; p-values come with their logarithm (``log_pvalue``,
  finite where the p-value underflows to 0), so strong dependences can still be ranked.
- ``"permutation"``: ``n_permutations`` random pairings of the rows, the exact level of a
  permutation test (``(1 + #{null >= observed}) / (1 + B)``); slower by that factor.

**Given groups** (``groups``: a label per row, e.g. the segment u) the test is of
independence *within* every group, ``x ⊥ y | group``: the statistic is the sum of the
groups' statistics (each on its own centred Gram matrices), its gamma null has the summed
means and variances of theirs (the groups are independent), and permutations pair rows
within groups only. NonSENS needs this form: its disturbances are independent given the
segment, but with a finite number of segments their segment-wise means and variances make
them (weakly, for mean modulation strongly) dependent when the segments are pooled.

Both kernels have the median heuristic bandwidth: ``k(a, b) = exp(-|a - b|^2 / (2 m^2))``
with ``m`` the median distance between distinct rows of that variable in that group (each
variable gets its own, unlike ``hyppo.independence.Hsic``, which reuses x's for y).

HSIC is ``O(n^2)`` in time and memory (``O(n^2 / G)`` over ``G`` equal groups): on more
than ``max_samples`` rows (default 1,000) the test runs on that many rows drawn at random
without replacement; given ``G`` groups, on ``max_samples / sqrt(G)`` rows of each (so 144
rows of each of 48 segments: the same cost as 1,000 pooled rows; at least
:data:`MIN_GROUP_ROWS` each). The same rows serve every pair of one :func:`hsic_matrix`.
That is a power / time trade-off: more rows detect weaker dependences, an approximate
unmixing's leftovers among them.

``backend="hyppo"`` runs ``hyppo.independence.Hsic`` instead (a well-kept implementation;
an optional dependency, ``pip install nica[causal]``), on this module's kernel matrices and
for pooled tests only. The test suite checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from nica._random import as_generator
from nica._validation import check_observations, check_same_length

METHODS = ("gamma", "permutation")
BACKENDS = ("nica", "hyppo")
#: rows the test runs on at most (a random subsample beyond; HSIC is O(n^2))
DEFAULT_MAX_SAMPLES = 1_000
#: fewest rows of one test: below this neither null is worth a p-value
MIN_TEST_SAMPLES = 20
#: fewest rows of one group in a test given groups (the gamma moments need n > 5)
MIN_GROUP_ROWS = 8
DEFAULT_PERMUTATIONS = 500


@dataclass(frozen=True)
class HSICResult:
    """One HSIC test.

    Attributes
    ----------
    statistic : ``n * HSIC_b`` on the rows tested (summed over the groups given groups).
    pvalue : p-value of independence under ``method``'s null.
    log_pvalue : its natural logarithm (finite even where ``pvalue`` underflows to 0).
    normalized : ``HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y))`` in [0, 1], a scale-free size
        of the dependence (the statistic hyppo reports).
    n_samples : rows tested (after subsampling).
    method : ``"gamma"`` or ``"permutation"`` (``"hyppo-*"`` for the hyppo backend).
    """

    statistic: float
    pvalue: float
    log_pvalue: float
    normalized: float
    n_samples: int
    method: str


# ---------------------------------------------------------------- kernels
def median_bandwidth(x: np.ndarray) -> float:
    """Median Euclidean distance between distinct rows of ``x`` ``(n, p)`` (1.0 if all rows coincide)."""
    sq = _squared_distances(x)
    upper = np.sqrt(sq[np.triu_indices(len(sq), k=1)])
    positive = upper[upper > 0]
    return float(np.median(positive)) if positive.size else 1.0


def gaussian_gram(x: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian kernel matrix ``(n, n)`` of the rows of ``x`` ``(n,)`` or ``(n, p)``;
    median-heuristic bandwidth unless one is given."""
    sq = _squared_distances(x)
    m = median_bandwidth(x) if bandwidth is None else float(bandwidth)
    return np.exp(-sq / (2.0 * m * m))


def centered(k: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11'/n``: the Gram matrix of the centred features."""
    row = k.mean(0, keepdims=True)
    return k - row - row.T + k.mean()


def _squared_distances(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    norms = (x * x).sum(1)
    return np.maximum(norms[:, None] + norms[None, :] - 2.0 * x @ x.T, 0.0)


@dataclass
class _Gram:
    """One variable's Gram matrix in one group, and what the gamma null needs of it."""

    kc: np.ndarray  # H K H
    mean_off_diagonal: float  # mean of K's off-diagonal entries
    self_hsic: float  # sum(Kc * Kc): HSIC of the variable with itself, times n^2
    k: np.ndarray | None = None  # K itself, kept for the hyppo backend only

    @classmethod
    def of(cls, x: np.ndarray, keep_kernel: bool = False) -> _Gram:
        k = gaussian_gram(x)
        n = len(k)
        off = (k.sum() - np.trace(k)) / (n * (n - 1))
        kc = centered(k)
        return cls(kc, float(off), float((kc * kc).sum()), k if keep_kernel else None)


def _grams(column: np.ndarray, groups: list[np.ndarray], keep_kernel: bool) -> list[_Gram]:
    return [_Gram.of(column[rows], keep_kernel) for rows in groups]


# ---------------------------------------------------------------- the nulls
def _gamma_moments(a: _Gram, b: _Gram) -> tuple[float, float, float]:
    """One group's statistic ``n * HSIC_b`` and its mean and variance under independence
    (Gretton et al. 2008)."""
    n = len(a.kc)
    prod = a.kc * b.kc
    statistic = prod.sum() / n
    sq = (prod / 6.0) ** 2
    var = (sq.sum() - np.trace(sq)) / (n * (n - 1))
    var *= 72.0 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3))
    mean = (1.0 + a.mean_off_diagonal * b.mean_off_diagonal - a.mean_off_diagonal - b.mean_off_diagonal) / n
    # of HSIC_b: mean and variance; of the statistic n * HSIC_b: n times and n^2 times them
    return float(statistic), float(n * mean), float(n * n * var)


def _gamma_test(xs: list[_Gram], ys: list[_Gram]) -> tuple[float, float, float]:
    """Summed statistic, p-value and log p-value, the null a gamma with the summed moments."""
    statistic = mean = var = 0.0
    for a, b in zip(xs, ys):
        s, m, v = _gamma_moments(a, b)
        statistic, mean, var = statistic + s, mean + m, var + v
    if not (var > 0 and mean > 0):  # a constant variable: no evidence of dependence
        return statistic, 1.0, 0.0
    log_p = gamma_logsf(statistic, mean * mean / var, var / mean)
    return statistic, float(np.exp(log_p)), log_p


def gamma_logsf(x: float, shape: float, scale: float) -> float:
    """log P(X > x) for X ~ Gamma(shape, scale), finite far in the tail where scipy's
    ``logsf`` underflows to -inf (there the leading terms of the asymptotic expansion
    ``Γ(a, t) ~ t^(a-1) e^(-t) (1 + (a-1)/t)``, accurate to ``O(t^-2)``)."""
    log_p = float(stats.gamma.logsf(x, shape, scale=scale))
    if np.isfinite(log_p):
        return log_p
    t = x / scale
    return float((shape - 1.0) * np.log(t) - t - special.gammaln(shape) + np.log1p((shape - 1.0) / t))


def _permutation_test(xs: list[_Gram], ys: list[_Gram], n_permutations: int,
                      rng: np.random.Generator) -> tuple[float, float, float]:
    """Summed statistic and its permutation p-value, rows paired anew within each group."""
    statistic = sum(float((a.kc * b.kc).sum()) / len(a.kc) for a, b in zip(xs, ys))
    exceed = 0
    for _ in range(n_permutations):
        null = 0.0
        for a, b in zip(xs, ys):
            p = rng.permutation(len(a.kc))
            # permuting the rows of y permutes rows and columns of its centred Gram matrix
            null += float((a.kc * b.kc[np.ix_(p, p)]).sum()) / len(a.kc)
        exceed += null >= statistic - 1e-12 * abs(statistic)
    pvalue = (1.0 + exceed) / (1.0 + n_permutations)
    return statistic, pvalue, float(np.log(pvalue))


def _hyppo_test(a: _Gram, b: _Gram, method: str, n_permutations: int,
                rng: np.random.Generator) -> tuple[float, float, float]:
    """hyppo's Hsic on this module's kernel matrices (so both use the same bandwidths)."""
    try:
        from hyppo.independence import Hsic
    except ImportError:
        raise ImportError("backend='hyppo' needs the optional dependency hyppo: "
                          "pip install 'nica[causal]' (or pip install hyppo)") from None
    auto = method == "gamma"  # hyppo's fast path is its chi-square approximation
    np_state = np.random.get_state()
    np.random.seed(int(rng.integers(0, 2**31 - 1)))  # hyppo permutes with numpy's global generator
    try:
        # permutations of the biased statistic (this module's); the chi-square path wants hyppo's unbiased one
        stat, pvalue = Hsic(compute_kernel=None, bias=not auto).test(a.k, b.k, reps=n_permutations, workers=1,
                                                                     auto=auto)
    finally:
        np.random.set_state(np_state)
    pvalue = float(min(max(pvalue, 0.0), 1.0))
    return float(stat), pvalue, float(np.log(pvalue)) if pvalue > 0 else -np.inf


def _test(xs: list[_Gram], ys: list[_Gram], method: str, backend: str, n_permutations: int,
          rng: np.random.Generator) -> HSICResult:
    if backend == "hyppo":
        statistic, pvalue, log_p = _hyppo_test(xs[0], ys[0], method, n_permutations, rng)
        name = f"hyppo-{method}"
    elif method == "gamma":
        statistic, pvalue, log_p = _gamma_test(xs, ys)
        name = method
    else:
        statistic, pvalue, log_p = _permutation_test(xs, ys, n_permutations, rng)
        name = method
    cross = sum(float((a.kc * b.kc).sum()) for a, b in zip(xs, ys))
    denom = np.sqrt(sum(a.self_hsic for a in xs) * sum(b.self_hsic for b in ys))
    normalized = float(np.clip(cross / denom, 0.0, 1.0)) if denom > 0 else 0.0
    return HSICResult(statistic, pvalue, log_p, normalized, sum(len(a.kc) for a in xs), name)


# ---------------------------------------------------------------- input and rows
def check_test_options(method: str, backend: str, n_permutations: int, max_samples: int | None,
                       grouped: bool) -> None:
    """Raise ValueError on an unknown method or backend or a bad count (before any work)."""
    if method not in METHODS:
        raise ValueError(f"unknown HSIC method {method!r}; choose one of {METHODS}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown HSIC backend {backend!r}; choose one of {BACKENDS}")
    if backend == "hyppo" and grouped:
        raise ValueError("the hyppo backend tests pooled (marginal) independence only; pass groups=None "
                         "or use backend='nica'")
    if not isinstance(n_permutations, (int, np.integer)) or isinstance(n_permutations, bool) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    if max_samples is not None and (not isinstance(max_samples, (int, np.integer)) or isinstance(max_samples, bool)
                                    or max_samples < MIN_TEST_SAMPLES):
        raise ValueError(f"max_samples must be an integer >= {MIN_TEST_SAMPLES} or None (all rows), "
                         f"got {max_samples!r}")


def rows_to_test(
    n_rows: int,
    groups: Any = None,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    random_state: int | np.random.Generator | None = None,
) -> list[np.ndarray]:
    """The rows a test runs on: one sorted index array per group (one for pooled tests).

    ``max_samples`` bounds the cost (``O(n^2)`` in time and memory). Without groups: all
    ``n_rows`` rows, or ``max_samples`` of them drawn at random. With ``groups``
    ``(n_rows,)`` (any labels) of ``G`` groups: every group's rows, or ``max_samples /
    sqrt(G)`` of them drawn at random (at least :data:`MIN_GROUP_ROWS`), so that the
    summed cost is at most the pooled test's.
    Raises ValueError when there are fewer than :data:`MIN_TEST_SAMPLES` rows, or a group
    has fewer than :data:`MIN_GROUP_ROWS` rows.
    """
    rng = as_generator(random_state)
    if n_rows < MIN_TEST_SAMPLES:
        raise ValueError(f"the HSIC test needs at least {MIN_TEST_SAMPLES} rows, got {n_rows}")
    if groups is None:
        if max_samples is None or n_rows <= max_samples:
            return [np.arange(n_rows)]
        return [np.sort(rng.choice(n_rows, size=max_samples, replace=False))]
    labels = np.asarray(groups)
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(f"groups must hold one label per row ({n_rows},), got shape {labels.shape}")
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    small = np.flatnonzero(counts < MIN_GROUP_ROWS)
    if small.size:
        g = small[np.argmin(counts[small])]
        label = values[g].item() if hasattr(values[g], "item") else values[g]
        raise ValueError(
            f"segment {label!r} has {counts[g]} rows; the HSIC test given the segment needs at least "
            f"{MIN_GROUP_ROWS} rows in every segment ({small.size} of {len(values)} segments have fewer): "
            "merge short segments or drop them")
    # the budget is the pooled test's cost: sum of n_g^2 <= max_samples^2
    share = None if max_samples is None else max(MIN_GROUP_ROWS, int(max_samples / np.sqrt(len(values))))
    out = []
    for g in range(len(values)):
        rows = np.flatnonzero(inverse == g)
        if share is not None and len(rows) > share:
            rows = np.sort(rng.choice(rows, size=share, replace=False))
        out.append(rows)
    return out


def _as_columns(x: Any, name: str) -> np.ndarray:
    return check_observations(x, name, allow_1d=True, dtype=np.float64)


# ---------------------------------------------------------------- public tests
def hsic_test(
    x: Any,
    y: Any,
    *,
    groups: Any = None,
    method: str = "gamma",
    backend: str = "nica",
    n_permutations: int = DEFAULT_PERMUTATIONS,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    random_state: int | np.random.Generator | None = None,
) -> HSICResult:
    """Test the independence of ``x`` ``(n,)`` or ``(n, p)`` and ``y`` ``(n,)`` or ``(n, q)``.

    Parameters
    ----------
    x, y : paired samples (rows match).
    groups : ``(n,)`` labels (e.g. segments): test independence within every group
        (``x ⊥ y | group``) instead of pooled over the rows.
    method : ``"gamma"`` (Gretton et al.'s gamma approximation) or ``"permutation"``.
    backend : ``"nica"`` (this module) or ``"hyppo"`` (``hyppo.independence.Hsic``,
        optional; pooled tests only).
    n_permutations : permutations of the permutation test.
    max_samples : test on at most this many rows, drawn at random (None: all rows).
    random_state : seed or generator of the subsample and the permutations.

    Returns
    -------
    HSICResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=300)
    >>> hsic_test(a, rng.normal(size=300), random_state=0).pvalue > 0.01
    True
    >>> hsic_test(a, a ** 2, random_state=0).pvalue < 1e-6
    True
    """
    return _hsic(x, y, ("x", "y"), groups, method, backend, n_permutations, max_samples, random_state).result(0, 0)


@dataclass(frozen=True)
class HSICMatrix:
    """Every test of one column of ``x`` against one column of ``z``: arrays ``(d_x, d_z)``."""

    statistic: np.ndarray
    pvalue: np.ndarray
    log_pvalue: np.ndarray
    normalized: np.ndarray
    n_samples: int
    method: str

    def result(self, i: int, j: int) -> HSICResult:
        """The test of ``x_i`` against ``z_j``."""
        return HSICResult(float(self.statistic[i, j]), float(self.pvalue[i, j]), float(self.log_pvalue[i, j]),
                          float(self.normalized[i, j]), self.n_samples, self.method)


def hsic_matrix(
    x: Any,
    z: Any,
    *,
    groups: Any = None,
    method: str = "gamma",
    backend: str = "nica",
    n_permutations: int = DEFAULT_PERMUTATIONS,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    random_state: int | np.random.Generator | None = None,
) -> HSICMatrix:
    """HSIC tests of each column ``x[:, i]`` against each column ``z[:, j]``.

    ``x`` ``(n, d_x)``, ``z`` ``(n, d_z)`` (1-D arrays are one column); all tests run on
    the same rows (:func:`rows_to_test`) and each column's Gram matrices are built once.
    Other arguments as :func:`hsic_test`.

    Returns
    -------
    HSICMatrix with ``(d_x, d_z)`` arrays; ``pvalue[i, j]`` tests ``x_i`` against ``z_j``.
    """
    return _hsic(x, z, ("x", "z"), groups, method, backend, n_permutations, max_samples, random_state)


def _hsic(x: Any, z: Any, names: tuple[str, str], groups: Any, method: str, backend: str, n_permutations: int,
          max_samples: int | None, random_state: int | np.random.Generator | None) -> HSICMatrix:
    check_test_options(method, backend, n_permutations, max_samples, groups is not None)
    xa, za = _as_columns(x, names[0]), _as_columns(z, names[1])
    check_same_length(xa, za, *names)
    rng = as_generator(random_state)
    rows = rows_to_test(len(xa), groups, max_samples, rng)
    keep = backend == "hyppo"
    gx = [_grams(xa[:, i], rows, keep) for i in range(xa.shape[1])]
    gz = [_grams(za[:, j], rows, keep) for j in range(za.shape[1])]
    results = [[_test(a, b, method, backend, n_permutations, rng) for b in gz] for a in gx]

    def field(name: str) -> np.ndarray:
        return np.array([[getattr(r, name) for r in row] for row in results], dtype=np.float64)

    return HSICMatrix(field("statistic"), field("pvalue"), field("log_pvalue"), field("normalized"),
                      results[0][0].n_samples, results[0][0].method)
