"""The save format of :class:`nica.IFlow`: what :mod:`nica.persistence` writes beside the
settings, and how a fitted flow is rebuilt from it.

``config.json`` holds the module's :class:`~nica.flows.IFlowConfig` (of the kept restart),
the encoding of u, the standardisation of X, the seed, the training history and the
restarts' record; ``weights.safetensors`` the kept restart's module (for zuko flows this
includes their random permutations, stored as buffers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder
from nica.base.formats import feature_names_entry, restarts_entry, restore_feature_names, restore_restarts_entry
from nica.flows.module import IFlowConfig, IFlowModule
from nica.flows.projection import InputProjection
from nica.persistence import load_module_state
from nica.training.trainer import TrainHistory


class IFlowFormat:
    """:class:`nica.persistence.SaveFormat` of :class:`nica.IFlow`."""

    def config(self, model: Any) -> dict[str, Any]:
        return {
            "module": model.config_.to_dict(),
            "aux": model.aux_encoder_.to_dict(),
            "projection": model.projection_.to_dict(),
            "feature_names": feature_names_entry(model),
            "seed": model.seed_,
            "history": model.history_.to_dict(),
            "restarts": restarts_entry(model, log_likelihood=model.restart_log_likelihood_,
                                       priors=list(model.restart_priors_)),
        }

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        return model.module_.state_dict()

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        # a model saved before round s7 trained every parameter with Adam: a refit of it does too
        model = cls(**{"matrix_learning_rate": None, **params})
        model.config_ = IFlowConfig.from_dict(config["module"])
        model.module_ = IFlowModule(model.config_)
        model.aux_encoder_ = AuxEncoder(**config["aux"])
        projection = InputProjection.from_dict(config["projection"])
        if len(projection.scale) != model.config_.n_latent:
            raise ValueError(f"the projection has {len(projection.scale)} outputs, the flow "
                             f"{model.config_.n_latent} inputs")
        model._set_projection(projection)
        restore_feature_names(model, config.get("feature_names"), projection.n_features)
        model.seed_ = config["seed"]
        model.history_ = TrainHistory.from_dict(config["history"])
        record = config["restarts"]
        restore_restarts_entry(model, record)
        model.restart_log_likelihood_ = np.asarray(record["log_likelihood"], dtype=float)
        model.restart_priors_ = list(record["priors"])
        model.score_ = float(model.restart_log_likelihood_[model.selected_restart_])
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        load_module_state(model.module_, state, device)
        model.device_ = device
        model.n_steps_ = model.history_.n_steps
        model.fit_time_ = model.history_.fit_time

    def describe(self, model: Any) -> dict[str, Any]:
        history = model.history_
        # the training curve is of the flow's input y: in the units of X up to the
        # projection's constant Jacobian (and, for n < d, without the residual's density)
        offset = model.projection_.log_jacobian()
        u_info = model.aux_encoder_.describe()
        return {
            "data": {"n_features": model.n_features_in_, "n_components": model.config_.n_latent, "u": u_info,
                     "input": "standardised features" if model.components_ is None
                     else f"top {model.config_.n_latent} principal components",
                     "feature_names": _names(model)},
            "model": {"prior": model.config_.prior, "selection_rule": "log-likelihood"
                      if model.selection in ("score", "elbo", "likelihood") else model.selection,
                      "unused_params": unused_params(model)},
            "training": {
                "n_steps": history.n_steps,
                "n_epochs": len(history.score),
                "fit_time": history.fit_time,
                "final_log_likelihood": model.score_,
                "stopped_early": history.stopped_early,
                # per epoch, the mean over restarts of the mini-batch log-likelihood
                "log_likelihood": [e - offset for e in history.score],
                "score_name": "log-likelihood",
                "final_score": model.score_,
                "score": [e - offset for e in history.score],
            },
            "restarts": {
                "n_restarts": len(model.restart_log_likelihood_),
                "selected": model.selected_restart_,
                "log_likelihood": np.asarray(model.restart_log_likelihood_).tolist(),
                "priors": list(model.restart_priors_),
                "scores": np.asarray(model.restart_scores_).tolist(),
            },
        }


def _names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def unused_params(model: Any) -> list[str]:
    """The settings the fitted flow does not read: the zuko flows' spline and conditioner
    settings for the invertible MLP (the conditioner's for its prior too, when u is
    categorical: a table, not an MLP), and the invertible MLP's for a zuko flow."""
    config = model.config_
    unused = []
    if config.flow == "invertible-mlp":
        unused.append("tail_bound")
        if config.prior_net == "table":
            unused += ["hidden_dim", "n_layers", "activation"]
    else:
        unused.append("init_noise")
    return unused


#: the instance :class:`nica.IFlow` registers with
IFLOW_FORMAT = IFlowFormat()
