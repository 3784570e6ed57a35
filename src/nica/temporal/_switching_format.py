"""The save format of :class:`nica.SwitchingTemporalFlow`: ``config.json`` holds the
module's :class:`~nica.temporal.switching.SwitchingConfig`, the encoding of u, the
projection of X, the seed, the held-out scores of ``n_regimes="auto"``, the training
history and the restarts' record; ``weights.safetensors`` the kept restart's module
(flow, transitions, chain, and the rotation of the reported latents)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder
from nica.base.formats import restarts_entry, restore_restarts_entry, single_restart_record
from nica.flows.projection import FEATURE_SCALINGS, InputProjection
from nica.persistence import load_module_state
from nica.temporal.switching import SwitchingConfig, SwitchingTemporalModule
from nica.training.trainer import TrainHistory


class SwitchingFormat:
    """:class:`nica.persistence.SaveFormat` of :class:`nica.SwitchingTemporalFlow`."""

    def config(self, model: Any) -> dict[str, Any]:
        return {"module": model.config_.to_dict(), "aux": model.aux_encoder_.to_dict(),
                "projection": model.projection_.to_dict(), "seed": model.seed_, "history": model.history_.to_dict(),
                "regime_scores": {str(k): v for k, v in model.regime_scores_.items()},
                "n_features": model.n_features_in_,
                "restarts": restarts_entry(model, score=model.restart_score_)}

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        return model.module_.state_dict()

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        model = cls(**params)
        model.config_ = SwitchingConfig(**config["module"])
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten by the weights
            model.module_ = SwitchingTemporalModule(model.config_)
        model.module_.sparsity = float(params.get("sparsity", 0.0))
        model.aux_encoder_ = AuxEncoder(**config["aux"])
        model.projection_ = InputProjection.from_dict(config["projection"])
        model.n_features_in_ = int(config["n_features"])
        width = model.config_.n_latent + model.config_.n_extra
        if len(model.projection_.scale) != width or model.projection_.n_features != model.n_features_in_:
            raise ValueError("the saved projection does not fit the model's features and latents")
        model.seed_ = config["seed"]
        model.history_ = TrainHistory.from_dict(config["history"])
        model.regime_scores_ = {int(k): float(v) for k, v in config["regime_scores"].items()}
        model.n_regimes_ = model.config_.n_regimes
        model.n_steps_, model.fit_time_ = model.history_.n_steps, model.history_.fit_time
        record = config.get("restarts")  # format 4 on; before, one restart and score_ in the flow's units
        if record is None:
            last = model.history_.score[-1] if model.history_.score else float("nan")
            record = single_restart_record("score", last - model.projection_.log_jacobian())
        restore_restarts_entry(model, record)
        model.restart_score_ = np.asarray(record["score"], dtype=float)
        model.score_ = float(model.restart_score_[model.selected_restart_])
        model.feature_names_in_ = None
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        load_module_state(model.module_, state, device)
        model.device_ = device

    def describe(self, model: Any) -> dict[str, Any]:
        c, history = model.config_, model.history_
        offset = model.projection_.log_jacobian()
        scaled = ""
        if model.projection_.feature_weights is not None:
            name = getattr(model, "feature_scaling", "sqrt-std")
            scaled = f" of the features each divided by sd**{FEATURE_SCALINGS.get(name, 0.5):g} ({name})"
        deflated = getattr(model, "subspace", "principal") == "deflation"

        def kind(width: int) -> str:
            return (f"{width} principal components of the subspace chosen by nonlinear deflation" if deflated
                    else f"top {width} principal components")

        return {
            "data": {"n_features": model.n_features_in_, "n_components": c.n_latent, "lags": c.lags,
                     "n_regimes": c.n_regimes, "u": model.aux_encoder_.describe(),
                     "input": "standardised features" if model.projection_.components is None
                     else f"{kind(c.n_latent)}{scaled}" if not c.n_extra
                     else f"{kind(c.n_latent + c.n_extra)}{scaled} ({c.n_extra} of the flow's outputs as white "
                          "noise)"},
            "training": {"n_steps": history.n_steps, "n_epochs": len(history.score), "fit_time": history.fit_time,
                         "final_log_likelihood": model.score_, "stopped_early": history.stopped_early,
                         "log_likelihood": [e - offset for e in history.score],
                         "score_name": "log-likelihood", "final_score": model.score_,
                         "score": [e - offset for e in history.score],
                         "regime_scores": {str(k): v for k, v in model.regime_scores_.items()}},
            "regimes": {"transition_matrix": np.round(model.transition_matrix_, 4).tolist(),
                        "initial_distribution": np.round(model.initial_distribution_, 4).tolist()},
            "restarts": {"n_restarts": len(model.restart_score_), "selected": model.selected_restart_},
        }


SWITCHING_FORMAT = SwitchingFormat()
