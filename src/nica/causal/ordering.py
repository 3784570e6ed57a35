"""From the independence tests of observed variables against recovered disturbances to a
causal order (NonSENS's reading of the tests, Monti, Zhang & Hyvärinen 2019).

Under the model x = f(s) with f lower triangular in the causal order, x_k depends on
its own disturbance s_k and on those of its ancestors, and is independent (given the
segment) of every other disturbance. Nonlinear ICA recovers the disturbances only up to
a permutation and component-wise transforms, so which recovered component z_j belongs to
which variable is unknown; the tests themselves tell:

- a **root** depends on exactly one component (its own) and is independent of the rest;
- once a root and its component are set aside, a root of the remaining variables depends
  on no remaining component but its own; and so on down the order.

:func:`causal_order` reads the order greedily in that way from the ``(d, d)`` matrix of
log p-values (``log_pvalues[i, j]``: x_i against z_j): at each step it takes the
variable-component pair whose *strongest remaining dependence other than the pair itself*
is weakest (the largest smallest p-value; ties broken by the normalised HSIC), so it
always returns an order. For two variables this is NonSENS's bivariate rule: of the four
tests, the one with the largest p-value names the cause (x_i ⊥ z_j makes x_i the cause
and z_j the effect's disturbance).

Whether the tests *support* that order at level ``alpha`` after a multiple-testing
correction (:func:`adjust_pvalues`, Bonferroni over the d^2 tests by default) is
``decided``: every variable depends on its own component and is independent of the
components of all variables after it. ``ancestors[i, k]`` (x_k depends on x_i's
component) is the ancestral relation the tests show; for two variables ``direction`` is
``(cause, effect)`` only when decided and the effect depends on the cause's component,
else None (NonSENS: x_1 -> x_2 when x_1 ⊥ s_2 and x_2 not ⊥ s_1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORRECTIONS = ("bonferroni", "holm", "none")


def adjust_pvalues(pvalues: np.ndarray, correction: str = "bonferroni") -> np.ndarray:
    """P-values adjusted for testing all of them at once (family-wise error rate).

    Parameters
    ----------
    pvalues : any shape; every entry is one test.
    correction : ``"bonferroni"`` (times the number of tests), ``"holm"`` (Holm's
        step-down, uniformly more powerful) or ``"none"``.

    Returns
    -------
    Array of the same shape, each entry in [0, 1]; reject where it is <= alpha.

    Examples
    --------
    >>> adjust_pvalues(np.array([0.01, 0.02, 0.5]), "bonferroni").round(2).tolist()
    [0.03, 0.06, 1.0]
    >>> adjust_pvalues(np.array([0.01, 0.02, 0.5]), "holm").round(2).tolist()
    [0.03, 0.04, 0.5]
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose one of {CORRECTIONS}")
    p = np.asarray(pvalues, dtype=np.float64)
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p-values must be finite numbers in [0, 1]")
    m = p.size
    if correction == "none" or m == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    flat = p.ravel()
    rank = np.argsort(flat, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * flat[rank])
    out = np.empty(m)
    out[rank] = np.minimum(1.0, stepped)
    return out.reshape(p.shape)


@dataclass(frozen=True)
class CausalOrdering:
    """A causal order read from the tests, and whether the tests support it.

    Attributes
    ----------
    order : ``(d,)`` variable indices, causes first (always given).
    disturbance : ``(d,)`` the recovered component matched to each variable:
        ``disturbance[i]`` is the column of z that is x_i's disturbance.
    ancestors : ``(d, d)`` bool, ``[i, k]``: x_k depends on x_i's disturbance at level
        alpha after the correction, so x_i is an ancestor of x_k.
    decided : the tests support ``order``: each variable depends on its own disturbance
        and is independent of the disturbances of all variables after it.
    """

    order: np.ndarray
    disturbance: np.ndarray
    ancestors: np.ndarray
    decided: bool

    @property
    def direction(self) -> tuple[int, int] | None:
        """Two variables: ``(cause, effect)`` when decided and the effect depends on the
        cause's disturbance (NonSENS's rule), else None."""
        if len(self.order) != 2:
            raise ValueError(f"direction is defined for 2 variables, not {len(self.order)}; use order")
        cause, effect = (int(i) for i in self.order)
        return (cause, effect) if self.decided and bool(self.ancestors[cause, effect]) else None


def causal_order(
    log_pvalues: np.ndarray,
    adjusted_pvalues: np.ndarray,
    *,
    alpha: float = 0.05,
    normalized: np.ndarray | None = None,
) -> CausalOrdering:
    """Read a causal order and the variables' disturbances from a matrix of tests.

    Parameters
    ----------
    log_pvalues : ``(d, d)``, ``[i, j]`` the log p-value of x_i against component z_j
        (used for the order: finite where p-values underflow).
    adjusted_pvalues : ``(d, d)`` the same tests' p-values after the multiple-testing
        correction (used for ``decided`` and ``ancestors``).
    alpha : family-wise level.
    normalized : ``(d, d)`` normalised HSIC, breaks ties in the order (optional).

    Returns
    -------
    CausalOrdering

    Examples
    --------
    x_0 depends on z_1 only, x_1 on both: x_0 -> x_1, x_0's disturbance is z_1.

    >>> logp = np.log(np.array([[0.6, 1e-9], [1e-9, 1e-12]]))
    >>> result = causal_order(logp, np.exp(logp) * 4)
    >>> result.order.tolist(), result.disturbance.tolist(), result.direction
    ([0, 1], [1, 0], (0, 1))
    """
    logp = np.asarray(log_pvalues, dtype=np.float64)
    adjusted = np.asarray(adjusted_pvalues, dtype=np.float64)
    d = logp.shape[0]
    if logp.ndim != 2 or logp.shape != (d, d) or adjusted.shape != (d, d):
        raise ValueError(f"log_pvalues and adjusted_pvalues must be square (d, d) and alike, got "
                         f"{logp.shape} and {adjusted.shape}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    norm = np.zeros((d, d)) if normalized is None else np.asarray(normalized, dtype=np.float64)
    logp = np.nan_to_num(logp, nan=0.0, neginf=-1e300)

    variables, components = list(range(d)), list(range(d))
    order, disturbance = [], np.empty(d, dtype=int)
    while variables:
        best, best_key = (variables[0], components[0]), None
        for i in variables:
            for j in components:
                others = [k for k in components if k != j]
                # the strongest dependence on a component that would not be x_i's own
                weakest_other = (min(logp[i, k] for k in others), -max(norm[i, k] for k in others)) \
                    if others else (0.0, 0.0)
                key = (*weakest_other, -logp[i, j])  # then: the most dependent own component
                if best_key is None or key > best_key:
                    best, best_key = (i, j), key
        i, j = best
        order.append(i)
        disturbance[i] = j
        variables.remove(i)
        components.remove(j)

    dependent = adjusted <= alpha
    ancestors = dependent[:, disturbance].T.copy()  # [i, k]: x_k depends on x_i's disturbance
    np.fill_diagonal(ancestors, False)
    own = all(dependent[i, disturbance[i]] for i in range(d))
    later_independent = all(not dependent[order[p], disturbance[order[q]]]
                            for p in range(d) for q in range(p + 1, d))
    return CausalOrdering(np.array(order), disturbance, ancestors, bool(own and later_independent))
