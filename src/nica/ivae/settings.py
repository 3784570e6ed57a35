"""From an :class:`nica.IVAE`'s parameters and the shape of X to the settings a fit runs
with: the module's :class:`~nica.models.IVAEConfig`, the trainer's
:class:`~nica.training.TrainConfig` and the scaling of X.

Six parameters may be ``"auto"`` and are then resolved by the shape of X
(:data:`SHAPE_DEFAULTS`): as many latents as features ("square") or fewer ("tall").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nica._validation import AuxEncoder
from nica.base.scaling import standardization as column_scaling
from nica.datasets.streaming import ColumnStats
from nica.models.ivae import IVAEConfig
from nica.models.objectives import Objective, ObjectiveWeights
from nica.training.trainer import TrainConfig

#: bounds of the automatic hidden width (10 units per observed feature)
MIN_AUTO_WIDTH, MAX_AUTO_WIDTH = 50, 100
#: what the ``"auto"`` parameters stand for, by shape: as many latents as features
#: ("square": the g4 setting of docs/tuning.md), or fewer ("tall": the authors' recipe,
#: which measured best on 5 -> 20 data with and without noise, round h3)
SHAPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "square": dict(standardize=True, encoder_sees_u=False, shared_encoder=True, prior_net="table",
                   max_steps=10_000, lr_schedule="cosine"),
    "tall": dict(standardize=False, encoder_sees_u=True, shared_encoder=False, prior_net="mlp",
                 max_steps=12_500, lr_schedule="plateau"),
}


def by_shape(est: Any, name: str, x_dim: int | None) -> Any:
    """Parameter ``name`` of ``est`` with ``"auto"`` resolved for X of ``x_dim`` features
    (None: the square values, for checks made before the data are seen); the boolean ones
    are checked to be booleans."""
    value = getattr(est, name)
    if isinstance(value, str) and value == "auto":
        tall = x_dim is not None and int(est.n_components) < x_dim
        return SHAPE_DEFAULTS["tall" if tall else "square"][name]
    if name in ("shared_encoder", "encoder_sees_u") and not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")
    return value


def hidden_width(est: Any, x_dim: int) -> int:
    """``"auto"``: 10 units per observed feature, between 50 and 100 (docs/tuning.md)."""
    if est.hidden_dim == "auto":
        return int(min(MAX_AUTO_WIDTH, max(MIN_AUTO_WIDTH, 10 * x_dim)))
    if not isinstance(est.hidden_dim, (int, np.integer)) or isinstance(est.hidden_dim, bool) or est.hidden_dim < 1:
        raise ValueError(f"hidden_dim must be a positive integer or 'auto', got {est.hidden_dim!r}")
    return int(est.hidden_dim)


def model_config(est: Any, x_dim: int, aux: AuxEncoder, n_models: int = 1) -> IVAEConfig:
    """The module's architecture for X of ``x_dim`` features and the encoded u."""
    prior_net = by_shape(est, "prior_net", x_dim)
    if aux.kind != "categorical" and est.prior_net == "auto":  # a table needs labels
        prior_net = "mlp"
    return IVAEConfig(
        x_dim=x_dim, aux_dim=aux.dim, n_latent=int(est.n_components),
        prior=est.prior, prior_mean=est.prior_mean, prior_scale=est.prior_scale, prior_net=prior_net,
        conditional=est._conditional,
        shared_encoder=bool(by_shape(est, "shared_encoder", x_dim)),
        encoder_sees_u=bool(by_shape(est, "encoder_sees_u", x_dim)),
        decoder=est.decoder, decoder_var=est.decoder_var,
        hidden_dim=hidden_width(est, x_dim), n_layers=est.n_layers, activation=est.activation,
        n_models=n_models,
    )


def objective(est: Any) -> Objective:
    """The training objective: its name, weights and annealing (checked)."""
    weights = est.objective_weights
    if len(weights) != 4:
        raise ValueError(f"objective_weights needs 4 numbers (rec, MI, TC, KL), got {weights!r}")
    result = Objective(est.objective, ObjectiveWeights(*map(float, weights)), est.anneal_fraction)
    result.validate()
    return result


def train_config(est: Any, x_dim: int | None = None) -> TrainConfig:
    """The optimisation settings (``x_dim`` resolves the ``"auto"`` ones, see :func:`by_shape`)."""
    return TrainConfig(
        batch_size=est.batch_size, learning_rate=est.learning_rate,
        max_steps=by_shape(est, "max_steps", x_dim), lr_schedule=by_shape(est, "lr_schedule", x_dim),
        n_iter_no_change=est.n_iter_no_change, tol=est.tol, compile=bool(est.compile),
    )


def scaling(est: Any, x_dim: int) -> str:
    """``standardize`` resolved: ``"feature"``, ``"global"`` or ``"none"``."""
    value = by_shape(est, "standardize", x_dim)
    if isinstance(value, str):
        if value == "global":
            return "global"
        raise ValueError(f"standardize must be True, False, 'global' or 'auto', got {value!r}")
    return "feature" if value else "none"


def standardization(est: Any, stats: ColumnStats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale ``(n_features,)`` each that X is standardised with: per feature, one
    scale for every feature (``"global"``: the root mean feature variance), or the identity
    (not standardising, or a Bernoulli decoder)."""
    kind = scaling(est, len(stats.mean))
    return column_scaling(stats, kind if est.decoder == "gaussian" else "none")


__all__ = ["MAX_AUTO_WIDTH", "MIN_AUTO_WIDTH", "SHAPE_DEFAULTS", "by_shape", "hidden_width", "model_config",
           "objective", "scaling", "standardization", "train_config"]
