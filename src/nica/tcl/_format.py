"""The save format of :class:`nica.TCL`: what :mod:`nica.persistence` writes beside the
settings, and how a fitted TCL is rebuilt from it.

``config.json`` holds the network's :class:`~nica.tcl.network.TCLConfig`, the encoding of
the labels, X's column names, the seed, the training history, the restarts' record, the
training accuracy and the scalar settings of the two linear maps (the input whitening
and the final FastICA); ``weights.safetensors`` the network's weights and the linear maps'
arrays (``whitener.*``, ``ica.*``, float64 as fitted), from which the scikit-learn
decompositions are rebuilt to transform exactly as after ``fit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder
from nica.base.formats import feature_names_entry, restarts_entry, restore_feature_names, restore_restarts_entry
from nica.baselines.linear import PCA, LinearICA
from nica.persistence import load_module_state
from nica.tcl.network import TCLConfig, TCLNetwork
from nica.training.trainer import TrainHistory

#: the fitted arrays of each linear map (of its scikit-learn model), saved as tensors
LINEAR_ARRAYS = {"whitener": ("components_", "mean_", "explained_variance_"),
                 "ica": ("components_", "mean_", "mixing_", "whitening_")}


class TCLFormat:
    """:class:`nica.persistence.SaveFormat` of :class:`nica.TCL`."""

    def config(self, model: Any) -> dict[str, Any]:
        return {
            "module": model.config_.to_dict(),
            "aux": model.aux_encoder_.to_dict(),
            "feature_names": feature_names_entry(model),
            "seed": model.seed_,
            "history": model.history_.to_dict(),
            "restarts": restarts_entry(model, score=model.restart_score_),
            "classification_accuracy": model.classification_accuracy_,
            "linear": {"n_features": model.whitener_.n_features_in_, "n_components": model.ica_.n_components_,
                       "ica_n_iter": int(model.ica_.n_iter_)},
        }

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        state = dict(model.module_.state_dict())
        for prefix, names in LINEAR_ARRAYS.items():
            fitted = getattr(model, f"{prefix}_").model_
            state.update({f"{prefix}.{name}": torch.from_numpy(np.ascontiguousarray(getattr(fitted, name)))
                          for name in names})
        return state

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        model = cls(**params)
        model.config_ = TCLConfig(**config["module"])
        with torch.random.fork_rng(devices=[]):  # its random init is overwritten by the weights
            model.module_ = TCLNetwork.from_config(model.config_)
        model.aux_encoder_ = AuxEncoder(**config["aux"])
        model.classes_ = np.asarray(model.aux_encoder_.classes)
        model.n_features_in_ = model.config_.x_dim
        restore_feature_names(model, config.get("feature_names"), model.n_features_in_)
        model.seed_ = config["seed"]
        model.history_ = TrainHistory.from_dict(config["history"])
        record = config["restarts"]
        restore_restarts_entry(model, record)
        model.restart_score_ = np.asarray(record["score"], dtype=float)
        model.classification_accuracy_ = model.score_ = float(config["classification_accuracy"])
        model.n_steps_, model.fit_time_ = model.history_.n_steps, model.history_.fit_time
        linear = config["linear"]
        if int(linear["n_features"]) != model.n_features_in_ or int(linear["n_components"]) != model.n_components:
            raise ValueError("the linear maps do not fit the network")
        model._linear_record = linear
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        linear = {k: v for k, v in state.items() if k.split(".", 1)[0] in LINEAR_ARRAYS}
        load_module_state(model.module_, {k: v for k, v in state.items() if k not in linear}, device)
        record = model.__dict__.pop("_linear_record")
        d, n = model.n_features_in_, model.n_components
        model.whitener_ = _rebuild_linear(PCA(whiten=True), linear, "whitener", d, d,
                                          {"n_samples_": 0, "noise_variance_": 0.0})
        model.ica_ = _rebuild_linear(LinearICA(n, max_iter=model.ica_max_iter, random_state=model.seed_), linear,
                                     "ica", n, n, {})
        model.ica_.mixing_, model.ica_.n_iter_ = model.ica_.model_.mixing_, int(record["ica_n_iter"])
        model.ica_.model_.n_iter_ = model.ica_.n_iter_
        model.whitener_.explained_variance_ = model.whitener_.model_.explained_variance_
        model.device_ = device

    def describe(self, model: Any) -> dict[str, Any]:
        history, aux = model.history_, model.aux_encoder_
        return {
            "data": {"n_features": model.n_features_in_, "n_components": model.n_components, "u": aux.describe()},
            "training": {"n_steps": history.n_steps, "n_epochs": len(history.score), "fit_time": history.fit_time,
                         "final_label_log_likelihood": history.score[-1] if history.score else None,
                         "classification_accuracy": model.classification_accuracy_,
                         "stopped_early": history.stopped_early, "label_log_likelihood": list(history.score),
                         "score_name": "label log-likelihood",
                         "final_score": history.score[-1] if history.score else float("nan"),
                         "score": list(history.score)},
            "restarts": {"n_restarts": len(model.restart_score_), "selected": model.selected_restart_,
                         "score": np.asarray(model.restart_score_).tolist(),
                         "scores": np.asarray(model.restart_scores_).tolist()},
        }


def _rebuild_linear(wrapper: Any, arrays: dict[str, torch.Tensor], prefix: str, n_features: int,
                    n_components: int, extra: dict[str, Any]) -> Any:
    """A fitted :mod:`nica.baselines.linear` wrapper from its saved arrays: its scikit-learn
    model is built unfitted and given the fitted attributes ``transform`` reads."""
    model = wrapper._make(n_components)
    for name in LINEAR_ARRAYS[prefix]:
        value = arrays[f"{prefix}.{name}"].numpy()
        expected = {"components_": (n_components, n_features), "mean_": (n_features,),
                    "explained_variance_": (n_components,), "mixing_": (n_features, n_components),
                    "whitening_": (n_components, n_features)}[name]
        if value.shape != expected:
            raise ValueError(f"{prefix}.{name} has shape {tuple(value.shape)}, expected {expected}")
        setattr(model, name, value)
    model.n_features_in_ = n_features
    model.n_components_ = n_components
    for name, value in extra.items():
        setattr(model, name, value)
    wrapper.model_, wrapper.n_components_, wrapper.n_features_in_ = model, n_components, n_features
    wrapper.components_, wrapper.mean_ = model.components_, model.mean_
    return wrapper


#: the instance :class:`nica.TCL` registers with
TCL_FORMAT = TCLFormat()
