"""The save format of :class:`nica.TemporalIVAE`: what :mod:`nica.persistence` writes
beside the settings, and how a model is rebuilt from it.

``config.json`` holds the module's :class:`~nica.temporal.TemporalIVAEConfig`, the
encoding of u, the standardisation of X, the seed and the training history;
``weights.safetensors`` the module's state (the flow's permutations included).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nica.base.formats import (
    fitted_entries,
    restarts_entry,
    restore_fitted_entries,
    restore_restarts_entry,
    single_restart_record,
)
from nica.base.params import log_jacobian
from nica.persistence import load_module_state
from nica.temporal.module import TemporalIVAEConfig, TemporalIVAEModule


class TemporalFormat:
    """:class:`nica.persistence.SaveFormat` of :class:`nica.TemporalIVAE`."""

    def config(self, model: Any) -> dict[str, Any]:
        return {**fitted_entries(model), "restarts": restarts_entry(model, score=model.restart_score_)}

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        return model.module_.state_dict()

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        model = cls(**params)
        model.config_ = TemporalIVAEConfig(**config["module"])
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten by the weights
            model.module_ = TemporalIVAEModule(model.config_)
        restore_fitted_entries(model, config, model.config_.x_dim)
        model.n_features_in_ = model.config_.x_dim
        model.n_steps_, model.fit_time_ = model.history_.n_steps, model.history_.fit_time
        record = config.get("restarts")  # format 4 on; before, a single restart
        if record is None:
            last = model.history_.score[-1] if model.history_.score else float("nan")
            record = single_restart_record("score", last - log_jacobian(model.x_scale_))
        restore_restarts_entry(model, record)
        model.restart_score_ = np.asarray(record["score"], dtype=float)
        model.score_ = float(model.restart_score_[model.selected_restart_])
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        load_module_state(model.module_, state, device)
        model.device_ = device

    def describe(self, model: Any) -> dict[str, Any]:
        """The iVAE family's entries (so that ``nica info`` reads both), plus ``lags`` and
        ``inference``; ``final_elbo`` and ``elbo`` hold the exact log-likelihood per step
        for flow inference; with several restarts each one's score and selection score."""
        c, history, aux = model.config_, model.history_, model.aux_encoder_
        offset = log_jacobian(model.x_scale_)
        u_info = {"kind": "none"} if aux.kind == "categorical" and len(aux.classes) == 1 else aux.describe()
        return {
            "data": {"n_features": c.x_dim, "n_components": c.n_latent, "lags": c.lags, "u": u_info},
            "training": {"inference": c.inference, "n_steps": history.n_steps, "n_epochs": len(history.score),
                         "fit_time": history.fit_time, "final_elbo": model.score_,
                         "stopped_early": history.stopped_early, "elbo": [e - offset for e in history.score],
                         "score_name": model.score_name, "final_score": model.score_,
                         "score": [e - offset for e in history.score]},
            "restarts": {"n_restarts": len(model.restart_score_), "selected": model.selected_restart_,
                         **({"score": np.asarray(model.restart_score_).tolist(),
                             "scores": np.asarray(model.restart_scores_).tolist()}
                            if len(model.restart_score_) > 1 else {})},
        }


TEMPORAL_FORMAT = TemporalFormat()
