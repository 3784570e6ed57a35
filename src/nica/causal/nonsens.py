"""NonSENS: causal discovery by unmixing nonstationary disturbances (Monti, Zhang &
Hyvärinen, UAI 2019; the iVAE paper's Sec. 5.2 and App. I.2).

The observed variables follow structural equations ``x_k = f_k(parents, s_k)`` whose
disturbances s are independent given the segment u and nonstationary across segments.
Then x = f(s) with f lower triangular in the causal order, and nonlinear ICA with n = d
(the iVAE, the identifiable flow, or TCL as in the original paper) recovers s up to a permutation and
component-wise transforms. Independence tests (HSIC) between every observed x_i and every
recovered component z_j then show the order: x_i depends on its own disturbance and its
ancestors' only. :mod:`nica.causal.ordering` reads the order and matches the components to
the variables from those tests; :mod:`nica.causal.hsic` runs them, by default *given u*
(within segments: the disturbances are independent given the segment, not pooled).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nica.base.params import ParamsMixin, check_fitted, check_new_observations
from nica._random import as_generator, draw_seed
from nica._validation import AuxEncoder, check_observations, check_same_length
from nica.causal.hsic import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_PERMUTATIONS,
    HSICMatrix,
    check_test_options,
    hsic_matrix,
    rows_to_test,
)
from nica.causal.ordering import CORRECTIONS, CausalOrdering, adjust_pvalues, causal_order
from nica.base.registry import ModelTable

#: the unmixing estimators known by name: a live view of the estimators registered with
#: ``unmixing=True`` (:mod:`nica.base.registry`: ``"flow"``, ``"ivae"``, ``"tcl"``); any
#: object with fit(X, u) and transform(X, u) works too
UNMIXINGS = ModelTable(unmixing=True)


class NonSENS(ParamsMixin):
    """Causal order of d >= 2 variables from nonstationary data (NonSENS).

    Parameters
    ----------
    unmixing : ``"flow"`` (default: :class:`nica.IFlow` at its defaults, the identifiable
        flow: exact likelihood, learned prior mean and scale; docs/results.md, section
        causal, compares the unmixings),
        ``"ivae"`` (:class:`nica.IVAE`, its defaults; the iVAE paper's choice), ``"tcl"``
        (:class:`nica.TCL`, the original NonSENS paper's choice), or an
        unfitted estimator with ``fit(X, u)`` and ``transform(X, u)`` and
        ``n_components = d`` (copied, not changed, when it has ``get_params``).
    unmixing_params : keyword arguments for the named unmixing estimator, e.g.
        ``{"prior_mean": True}`` for mean-modulated data with the iVAE (the flow learns a
        prior mean by default).
    alpha : family-wise significance level of the independence tests.
    correction : multiple-testing correction over the d^2 tests: ``"bonferroni"``
        (NonSENS), ``"holm"`` or ``"none"``.
    test : HSIC null, ``"gamma"`` (Gretton et al.'s approximation) or ``"permutation"``.
    test_given_u : test independence within segments (``x ⊥ z | u``; needs segment
        labels) instead of pooled over all rows.
    max_test_samples : HSIC is O(n^2): the tests run on a random subsample of rows of
        this cost (this many pooled rows, or ``max_test_samples / sqrt(M)`` rows of each
        of M segments); None tests every row.
    n_permutations : permutations of the permutation test.
    hsic_backend : ``"nica"`` or ``"hyppo"`` (``hyppo.independence.Hsic``, optional,
        pooled tests only).
    device : device of the named unmixing estimator.
    random_state : int, ``numpy.random.Generator`` or None: seeds the unmixing fit and the
        tests' subsample; resolved once per fit.
    verbose : progress bar during the unmixing fit.

    Attributes
    ----------
    unmixing_ : the fitted unmixing estimator.
    order_ : ``(d,)`` causal order, column indices of X, causes first (always given).
    decided_ : whether the tests support ``order_`` at level alpha (see
        :mod:`nica.causal.ordering`); False means NonSENS would not conclude.
    direction_ : for d = 2, ``(cause, effect)`` by NonSENS's rule, or None (undecided or
        no dependence); None for d > 2.
    disturbance_ : ``(d,)`` the unmixing's component matched to each variable.
    ancestors_ : ``(d, d)`` bool, ``[i, k]``: x_k depends on x_i's disturbance.
    pvalues_, log_pvalues_, adjusted_pvalues_, statistics_, normalized_hsic_ : ``(d, d)``
        the HSIC tests, ``[i, j]`` of x_i against component j of the unmixing.
    ordering_ : the :class:`~nica.causal.ordering.CausalOrdering`.
    n_features_in_, n_test_samples_, test_given_u_, seed_ : as named.

    Examples
    --------
    >>> from nica.causal import NonSENS, make_causal
    >>> data = make_causal(2, n_segments=10, n_per_segment=100, n_layers=1, random_state=0)
    >>> model = NonSENS("ivae", unmixing_params={"max_steps": 200}, random_state=0)
    >>> model.fit(data.x, data.u).order_.shape
    (2,)
    """

    def __init__(
        self,
        unmixing: Any = "flow",
        *,
        unmixing_params: dict[str, Any] | None = None,
        alpha: float = 0.05,
        correction: str = "bonferroni",
        test: str = "gamma",
        test_given_u: bool = True,
        max_test_samples: int | None = DEFAULT_MAX_SAMPLES,
        n_permutations: int = DEFAULT_PERMUTATIONS,
        hsic_backend: str = "nica",
        device: str = "auto",
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.unmixing = unmixing
        self.unmixing_params = unmixing_params
        self.alpha = alpha
        self.correction = correction
        self.test = test
        self.test_given_u = test_given_u
        self.max_test_samples = max_test_samples
        self.n_permutations = n_permutations
        self.hsic_backend = hsic_backend
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting
    def _check_params(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise ValueError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"unknown correction {self.correction!r}; choose one of {CORRECTIONS}")
        check_test_options(self.test, self.hsic_backend, self.n_permutations, self.max_test_samples,
                           bool(self.test_given_u))
        if self.unmixing_params is not None and not isinstance(self.unmixing_params, dict):
            raise TypeError(f"unmixing_params must be a dict or None, got {type(self.unmixing_params).__name__}")

    def _unmixing_estimator(self, d: int, seed: int) -> Any:
        params = dict(self.unmixing_params or {})
        if isinstance(self.unmixing, str):
            if self.unmixing not in UNMIXINGS:
                raise ValueError(f"unknown unmixing {self.unmixing!r}; choose one of {sorted(UNMIXINGS)} "
                                 "or pass an estimator")
            params = {"random_state": seed, "device": self.device, "verbose": self.verbose, **params}
            return UNMIXINGS[self.unmixing](d, **params)
        if params:
            raise ValueError(f"unmixing_params applies to a named unmixing {tuple(UNMIXINGS)}; "
                             "set the parameters on the estimator you pass instead")
        est = self.unmixing
        if not (hasattr(est, "fit") and hasattr(est, "transform")):
            raise TypeError(f"unmixing must be one of {sorted(UNMIXINGS)} or an estimator with fit and transform, "
                            f"got {est!r}")
        if hasattr(est, "get_params"):
            est = type(est)(**est.get_params())  # an unfitted copy: the caller's object is left alone
        n = getattr(est, "n_components", d)
        if n != d:
            raise ValueError(f"the unmixing must recover one disturbance per variable: n_components={n}, "
                             f"but X has {d} variables")
        return est

    def fit(self, X: Any, u: Any) -> NonSENS:
        """Unmix the disturbances of (X, u), test every variable against every one, order.

        Parameters
        ----------
        X : ``(n_samples, d)`` observed variables, d >= 2.
        u : ``(n_samples,)`` segment labels (or what the unmixing estimator accepts;
            ``test_given_u`` needs labels).

        Returns
        -------
        self
        """
        self._check_params()
        x = check_observations(X, "X")
        d = x.shape[1]
        if d < 2:
            raise ValueError(f"causal discovery needs at least 2 variables (columns of X), got {d}")
        if u is None:
            raise ValueError("u is required: NonSENS unmixes the disturbances through their nonstationarity in u")
        check_same_length(x, u, "X", "u")
        groups = None
        if self.test_given_u:
            aux = AuxEncoder("auto").fit(u, len(x))
            if aux.kind != "categorical":
                raise ValueError("test_given_u=True tests within segments and needs segment labels u; "
                                 "for a continuous u set test_given_u=False (pooled tests)")
            groups = np.asarray(aux.classes)[aux.label_index(u)]  # the user's labels, for messages
        rng = as_generator(self.random_state)
        seed = draw_seed(rng)
        test_rng = np.random.default_rng(seed + 1)
        # the test's rows first: too few rows (per segment) is an error before any training
        rows_to_test(len(x), groups, self.max_test_samples, np.random.default_rng(0))

        model = self._unmixing_estimator(d, seed)
        model.fit(x, u)
        z = np.asarray(model.transform(x, u), dtype=np.float64)
        if z.shape != (len(x), d):
            raise ValueError(f"the unmixing returned shape {z.shape}; expected ({len(x)}, {d})")
        tests = hsic_matrix(x, z, groups=groups, method=self.test, backend=self.hsic_backend,
                            n_permutations=self.n_permutations, max_samples=self.max_test_samples,
                            random_state=test_rng)
        self._store(model, tests, d, seed, groups is not None)
        return self

    def _store(self, model: Any, tests: HSICMatrix, d: int, seed: int, given_u: bool) -> None:
        adjusted = adjust_pvalues(tests.pvalue, self.correction)
        ordering = causal_order(tests.log_pvalue, adjusted, alpha=self.alpha, normalized=tests.normalized)
        self.unmixing_ = model
        self.pvalues_, self.log_pvalues_, self.adjusted_pvalues_ = tests.pvalue, tests.log_pvalue, adjusted
        self.statistics_, self.normalized_hsic_ = tests.statistic, tests.normalized
        self.ordering_: CausalOrdering = ordering
        self.order_, self.disturbance_, self.ancestors_ = ordering.order, ordering.disturbance, ordering.ancestors
        self.decided_ = ordering.decided
        self.direction_ = ordering.direction if d == 2 else None
        self.n_features_in_, self.n_test_samples_, self.test_given_u_, self.seed_ = d, tests.n_samples, given_u, seed

    # ----------------------------------------------------------------- results
    def transform(self, X: Any, u: Any) -> np.ndarray:
        """The recovered disturbances, column i matched to variable x_i: ``(n_rows, d)``
        (each up to a monotone or component-wise transform of the true one)."""
        check_fitted(self, "order_")
        x = check_new_observations(X, self.n_features_in_)
        return np.asarray(self.unmixing_.transform(x, u))[:, self.disturbance_]

    def to_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        """The result as plain JSON-ready values: ``order`` (column indices, causes first),
        ``pvalues`` (``[i][j]``: x_i against component j), the adjusted p-values,
        ``decided``, ``direction`` (d = 2), ``disturbance``, ``ancestors``, ``names``."""
        check_fitted(self, "order_")
        names = self._names(names)
        return {
            "order": [int(i) for i in self.order_],
            "order_names": [names[int(i)] for i in self.order_],
            "decided": bool(self.decided_),
            "direction": None if self.direction_ is None else [int(i) for i in self.direction_],
            "pvalues": self.pvalues_.tolist(),
            "adjusted_pvalues": self.adjusted_pvalues_.tolist(),
            "disturbance": [int(j) for j in self.disturbance_],
            "ancestors": self.ancestors_.astype(int).tolist(),
            "names": names,
            "alpha": float(self.alpha),
            "correction": self.correction,
            "test": self.test,
            "test_given_u": bool(self.test_given_u_),
            "n_test_samples": int(self.n_test_samples_),
        }

    def _names(self, names: list[str] | None) -> list[str]:
        d = self.n_features_in_
        if names is None:
            return [f"x{i}" for i in range(d)]
        if len(names) != d:
            raise ValueError(f"{len(names)} names for {d} variables")
        return [str(n) for n in names]

    def summary(self, names: list[str] | None = None) -> str:
        """A readable report: the order, the verdict, and the p-value of each test with the
        variable's own (matched) disturbance marked."""
        check_fitted(self, "order_")
        names = self._names(names)
        verdict = ("the tests support this order" if self.decided_ else
                   f"undecided: the tests do not support this order at alpha = {self.alpha} "
                   f"({self.correction}); it is the most likely one")
        lines = ["causal order (causes first): " + " -> ".join(names[int(i)] for i in self.order_), verdict]
        if self.direction_ is not None:
            lines.append(f"direction: {names[self.direction_[0]]} -> {names[self.direction_[1]]}")
        given = "given the segment u" if self.test_given_u_ else "pooled over segments"
        lines.append(f"HSIC p-values ({self.test}, {given}, {self.n_test_samples_} rows; "
                     "row: variable, column: the disturbance matched to that variable; * its own):")
        width = max(len(n) for n in names) + 2
        header = " " * width + "".join(f"{'s(' + names[int(k)] + ')':>14}" for k in self.order_)
        lines.append(header)
        for i in self.order_:
            cells = []
            for k in self.order_:
                mark = "*" if k == i else " "
                cells.append(f"{self.pvalues_[int(i), self.disturbance_[int(k)]]:>13.3g}{mark}")
            lines.append(f"{names[int(i)]:<{width}}" + "".join(cells))
        return "\n".join(lines)
