"""Unconditional VAE baselines of the paper: beta-VAE and beta-TCVAE.

Both are :class:`nica.VAE` (prior N(0, I), encoder q(z | x)) trained with the reweighted
decomposition of :mod:`nica.models.objectives`, whose weights follow from ``beta``
(:func:`~nica.models.objectives.beta_vae_weights`,
:func:`~nica.models.objectives.beta_tcvae_weights`). Networks, trainer and every other
hyperparameter are those of :class:`nica.IVAE`, so a comparison isolates the prior and
the objective.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

from nica.base.estimator import FitInputs, FitPlan
from nica.base.registry import register_estimator
from nica.ivae._format import IVAE_FORMAT
from nica.ivae.estimator import IVAE, VAE
from nica.models.objectives import ObjectiveWeights, beta_tcvae_weights, beta_vae_weights

#: IVAE parameters a beta baseline does not take: ``beta`` decides them
FIXED_BY_BETA = ("objective", "objective_weights", "anneal_fraction")


def _shared_defaults() -> dict[str, Any]:
    """IVAE's keyword parameters (less those fixed by beta) and their defaults, in order."""
    params = inspect.signature(IVAE.__init__).parameters
    return {name: p.default for name, p in params.items()
            if name not in ("self", "n_components", *FIXED_BY_BETA)}


class _BetaVAEBase(VAE):
    """A :class:`nica.VAE` whose objective weights are a function of ``beta``."""

    #: the objective weights as a function of beta
    _weights_for: Callable[[float], ObjectiveWeights]
    #: fixed: the decomposition, weighted by ``_weights_for(beta)``
    objective = "reweighted"

    def __init__(self, n_components: int, *, beta: float, **params: Any) -> None:
        shared = _shared_defaults()
        unknown = sorted(set(params) - set(shared))
        if unknown:
            fixed = [name for name in unknown if name in FIXED_BY_BETA]
            hint = f"; {fixed} are set by beta in {type(self).__name__}" if fixed else ""
            raise TypeError(f"{type(self).__name__}() got unexpected keyword argument(s) {unknown}{hint}")
        self.n_components = n_components
        self.beta = beta
        for name, default in shared.items():
            setattr(self, name, params.get(name, default))

    @classmethod
    def _param_names(cls) -> list[str]:
        return ["n_components", "beta", *_shared_defaults()]

    @property
    def objective_weights(self) -> tuple[float, float, float, float]:
        """(reconstruction, MI, TC, dimension-wise KL) weights implied by ``beta``."""
        return astuple(type(self)._weights_for(self.beta))

    @property
    def anneal_fraction(self) -> float:
        """Unused: the weights stay fixed during training."""
        return 0.0

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        beta = self.beta
        if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not math.isfinite(beta) \
                or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        return super()._fit_plan(inputs)


@register_estimator("BetaVAE", IVAE_FORMAT, model="beta-vae")
class BetaVAE(_BetaVAEBase):
    """beta-VAE (Higgins et al., ICLR 2017): the ELBO with its KL term weighted by ``beta``.

    Maximises E_q[log p(x|z)] - beta KL(q(z|x) || N(0, I)), written as the decomposition
    with MI, TC and dimension-wise KL all weighted ``beta`` (the three add up to the
    one-sample KL estimate); ``beta=1`` is the plain VAE's ELBO.

    Parameters
    ----------
    n_components : latent dimension n.
    beta : weight of the KL term; default 4, the value of Higgins et al. on dSprites
        (the iVAE paper swept 1..45).
    **params : any other :class:`nica.IVAE` hyperparameter (networks, optimisation,
        ``random_state``, ...) except ``objective``, ``objective_weights`` and
        ``anneal_fraction``, which ``beta`` decides.

    Attributes
    ----------
    As :class:`nica.IVAE`; ``objective_weights`` is read-only, ``(1, beta, beta, beta)``.

    Examples
    --------
    >>> from nica import BetaVAE, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=100, random_state=0)
    >>> model = BetaVAE(2, beta=2.0, max_steps=20, random_state=0).fit(data.x)
    >>> model.objective_weights
    (1.0, 2.0, 2.0, 2.0)
    >>> model.transform(data.x).shape
    (500, 2)
    """

    _weights_for = staticmethod(beta_vae_weights)

    def __init__(self, n_components: int, *, beta: float = 4.0, **params: Any) -> None:
        super().__init__(n_components, beta=beta, **params)


@register_estimator("BetaTCVAE", IVAE_FORMAT, model="beta-tcvae")
class BetaTCVAE(_BetaVAEBase):
    """beta-TCVAE (Chen et al., NeurIPS 2018): only the total correlation is weighted by ``beta``.

    Maximises E_q[log p(x|z)] - I(x; z) - beta TC(z) - sum_i KL(q(z_i) || p(z_i)), with
    q(z) estimated by minibatch-weighted sampling as in Chen et al.; ``beta=1`` is an
    estimate of the plain ELBO.

    Parameters
    ----------
    n_components : latent dimension n.
    beta : weight of the total-correlation term; default 6, the value in the example
        command of Chen et al.'s public code.
    **params : any other :class:`nica.IVAE` hyperparameter except ``objective``,
        ``objective_weights`` and ``anneal_fraction``.

    Examples
    --------
    >>> from nica import BetaTCVAE, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=100, random_state=0)
    >>> model = BetaTCVAE(2, max_steps=20, random_state=0).fit(data.x)
    >>> model.objective_weights
    (1.0, 1.0, 6.0, 1.0)
    """

    _weights_for = staticmethod(beta_tcvae_weights)

    def __init__(self, n_components: int, *, beta: float = 6.0, **params: Any) -> None:
        super().__init__(n_components, beta=beta, **params)


__all__ = ["BetaTCVAE", "BetaVAE", "FIXED_BY_BETA"]
