"""The save format of the iVAE family (:class:`nica.IVAE`, :class:`nica.VAE` and the beta
baselines): what :mod:`nica.persistence` writes beside the settings, and how a model is
rebuilt from it.

``config.json`` holds the module's :class:`~nica.models.IVAEConfig`, the encoding of u
(with its label counts), X's column names, the standardisation of X, the seed, the
training history and the restarts' record; ``weights.safetensors`` the kept restart's
module and, for several restarts, all of them stacked (``restarts.*``, model format 3 on).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from nica.base.formats import (
    feature_names_entry,
    fitted_entries,
    restarts_entry,
    restore_feature_names,
    restore_fitted_entries,
    restore_restarts_entry,
    single_restart_record,
)
from nica.base.params import log_jacobian
from nica.models.ivae import IVAEConfig, IVAEModule
from nica.persistence import load_module_state


#: prefix of the stacked restarts' tensors in ``weights.safetensors`` (format 3 on)
RESTARTS = "restarts."


class IVAEFormat:
    """:class:`nica.persistence.SaveFormat` of estimators built on :class:`IVAEModule`."""

    def config(self, model: Any) -> dict[str, Any]:
        return {
            **fitted_entries(model),
            "feature_names": feature_names_entry(model),
            "restarts": restarts_entry(model, elbo=model.restart_elbo_),
        }

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        state = dict(model.module_.state_dict())
        restarts = getattr(model, "restarts_module_", None)
        if restarts is not None and restarts.config.n_models > 1:  # every restart, for transform_restarts
            state.update({f"{RESTARTS}{k}": v for k, v in restarts.state_dict().items()})
        return state

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        if "objective_weights" in params:  # the beta baselines derive theirs from beta
            params["objective_weights"] = tuple(params["objective_weights"])
        model = cls(**params)
        model.config_ = IVAEConfig(**config["module"])
        model.module_ = IVAEModule(model.config_)
        restore_fitted_entries(model, config, model.config_.x_dim)
        restore_feature_names(model, config.get("feature_names"), model.config_.x_dim)
        _restore_restarts(model, config.get("restarts"))
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        if format_version < 2:  # format 1 stored single models: add the leading model dimension
            expected = model.module_.state_dict()
            state = {k: v.reshape(expected[k].shape) if k in expected and v.numel() == expected[k].numel()
                     else v for k, v in state.items()}
        stacked = {k[len(RESTARTS):]: v for k, v in state.items() if k.startswith(RESTARTS)}
        state = {k: v for k, v in state.items() if not k.startswith(RESTARTS)}
        load_module_state(model.module_, state, device)
        if stacked:
            n_models = len(model.restart_elbo_)
            per_model = sum(t.numel() for t in model.module_.state_dict().values())
            if n_models * per_model != sum(t.numel() for t in stacked.values()):
                raise ValueError(f"the record of {n_models} restarts does not match the saved restarts' weights")
            with torch.random.fork_rng(devices=[]):  # its random init is overwritten
                restarts = IVAEModule(replace(model.config_, n_models=n_models))
            load_module_state(restarts, stacked, device)
            model.restarts_module_ = restarts
        model.device_ = device
        if not stacked and len(model.restart_elbo_) == 1:  # a single restart is the kept model
            model.restarts_module_ = model.module_
        model.n_features_in_ = model.config_.x_dim
        model.n_steps_ = model.history_.n_steps
        model.fit_time_ = model.history_.fit_time

    def describe(self, model: Any) -> dict[str, Any]:
        history = model.history_
        offset = log_jacobian(model.x_scale_)  # ELBOs in the units of X, as ``score_``
        aux = model.aux_encoder_
        u_info = aux.describe() if model.config_.conditional else {"kind": "none"}
        return {
            "data": {"n_features": model.n_features_in_, "n_components": model.config_.n_latent, "u": u_info,
                     "feature_names": None if getattr(model, "feature_names_in_", None) is None
                     else [str(n) for n in model.feature_names_in_]},
            "model": {"prior": model.config_.prior, "selection_rule": model.selection, "unused_params": []},
            "training": {
                "n_steps": history.n_steps,
                "n_epochs": len(history.score),
                "fit_time": history.fit_time,
                "final_elbo": model.score_,
                "stopped_early": history.stopped_early,
                "elbo": [e - offset for e in history.score],
                "score_name": "ELBO",
                "final_score": model.score_,
                "score": [e - offset for e in history.score],
            },
            "restarts": {
                "n_restarts": len(model.restart_elbo_),
                "selected": model.selected_restart_,
                "elbo": np.asarray(model.restart_elbo_).tolist(),
                "scores": np.asarray(model.restart_scores_).tolist(),
            },
        }


def _restore_restarts(model: Any, record: dict | None) -> None:
    """Restart attributes from config.json; a format-1 model was a single restart."""
    if record is None:
        record = single_restart_record("elbo", model.history_.score[-1] - log_jacobian(model.x_scale_))
    restore_restarts_entry(model, record)
    model.restart_elbo_ = np.asarray(record["elbo"], dtype=float)
    model.score_ = float(model.restart_elbo_[model.selected_restart_])


#: the one instance the iVAE family registers with
IVAE_FORMAT = IVAEFormat()
