"""The parts of a save format (:class:`nica.persistence.SaveFormat`) the families share:
the fitted state every estimator of the skeleton has (the module's config, u's encoding,
the seed, the training history), X's standardisation, X's column names and the restarts'
record, written to ``config.json`` and read back checked."""

from __future__ import annotations

from typing import Any

import numpy as np

from nica._validation import AuxEncoder
from nica.training.trainer import TrainHistory


def fitted_entries(model: Any) -> dict[str, Any]:
    """The ``config.json`` entries of a model with a module config, an encoding of u, a
    standardisation of X (``x_mean_``, ``x_scale_``), a seed and a training history (the
    iVAE family, the temporal model)."""
    return {
        "module": model.config_.to_dict(),
        "aux": model.aux_encoder_.to_dict(),
        "x_mean": model.x_mean_.tolist(),
        "x_scale": model.x_scale_.tolist(),
        "seed": model.seed_,
        "history": model.history_.to_dict(),
    }


def restore_fitted_entries(model: Any, config: dict[str, Any], x_dim: int) -> None:
    """Set what :func:`fitted_entries` wrote (but the module) back on ``model``, checked."""
    model.aux_encoder_ = AuxEncoder(**config["aux"])
    model.x_mean_ = np.asarray(config["x_mean"], np.float32)
    model.x_scale_ = np.asarray(config["x_scale"], np.float32)
    if not model.x_mean_.shape == model.x_scale_.shape == (x_dim,):
        raise ValueError(f"x_mean and x_scale must hold {x_dim} values each")
    if not (np.all(np.isfinite(model.x_mean_)) and np.all(model.x_scale_ > 0)):
        raise ValueError("x_mean must be finite and x_scale > 0")
    model.seed_ = config["seed"]
    model.history_ = TrainHistory.from_dict(config["history"])


def feature_names_entry(model: Any) -> list[str] | None:
    """X's column names as saved (None when fitted on an array)."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def restore_feature_names(model: Any, names: list[str] | None, n_features: int) -> None:
    """``feature_names_in_`` from :func:`feature_names_entry`'s record (absent from models
    saved before it was recorded), checked against the number of features."""
    if names is not None and len(names) != n_features:
        raise ValueError(f"feature_names must hold {n_features} names")
    model.feature_names_in_ = None if names is None else np.asarray(names, dtype=object)


def restarts_entry(model: Any, **per_restart: Any) -> dict[str, Any]:
    """The restarts' record: the kept one, each one's score under ``selection``, the
    family's own per-restart values (``per_restart``, lists) and their agreement."""
    agreement = model.restart_agreement_
    return {"selected": model.selected_restart_, "scores": np.asarray(model.restart_scores_).tolist(),
            **{k: np.asarray(v).tolist() if not isinstance(v, list) else v for k, v in per_restart.items()},
            "agreement": None if agreement is None else np.asarray(agreement).tolist()}


def restore_restarts_entry(model: Any, record: dict[str, Any]) -> None:
    """``selected_restart_``, ``restart_scores_`` and ``restart_agreement_`` from
    :func:`restarts_entry`'s record."""
    model.selected_restart_ = int(record["selected"])
    model.restart_scores_ = np.asarray(record["scores"], dtype=float)
    agreement = record["agreement"]
    model.restart_agreement_ = None if agreement is None else np.asarray(agreement, dtype=float)


def single_restart_record(key: str, score: float) -> dict[str, Any]:
    """The record of a model saved before its restarts were: one restart, kept."""
    return {"selected": 0, "scores": [1.0], key: [score], "agreement": None}


__all__ = ["feature_names_entry", "fitted_entries", "restarts_entry", "restore_feature_names",
           "restore_fitted_entries", "restore_restarts_entry", "single_restart_record"]
