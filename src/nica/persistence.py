"""Saving and loading fitted estimators: a directory with ``config.json`` and
``weights.safetensors``; no pickle is involved, so loading runs no stored code.

Writes are atomic: the directory is assembled under a temporary name beside the
target and renamed into place, so a crash leaves either the old model or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from nica._base import resolve_device
from nica._fs import publish_permissions
from nica._validation import AuxEncoder
from nica._version import __version__
from nica.models.ivae import IVAEConfig, IVAEModule
from nica.training.trainer import TrainHistory

if TYPE_CHECKING:
    from nica.estimator import IVAE

#: 2: every tensor has a leading model dimension (stacked restarts); 1 is read and converted
FORMAT_VERSION = 2
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (e.g. ``n_components=np.int64(5)``) as plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def save_model(model: IVAE, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` to directory ``path``; refuses to replace it unless ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if target.exists() and not (target / CONFIG_FILE).is_file():
        raise FileExistsError(f"{target} exists and is not a saved nica model; refusing to replace it")
    config = {
        "format_version": FORMAT_VERSION,
        "nica_version": __version__,
        "estimator": type(model).__name__,
        "params": {k: _jsonable(v) for k, v in model.get_params().items()},
        "module": model.config_.to_dict(),
        "aux": model.aux_encoder_.to_dict(),
        "x_mean": model.x_mean_.tolist(),
        "x_scale": model.x_scale_.tolist(),
        "seed": model.seed_,
        "history": vars(model.history_),
        "restarts": {
            "selected": model.selected_restart_,
            "scores": np.asarray(model.restart_scores_).tolist(),
            "elbo": np.asarray(model.restart_elbo_).tolist(),
            "agreement": None if model.restart_agreement_ is None
            else np.asarray(model.restart_agreement_).tolist(),
        },
        "torch_version": torch.__version__,
        # where it was fitted, for the record; load maps the weights to any device
        "fitted_device": str(getattr(model, "device_", "cpu")),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        publish_permissions(tmp, directory=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.module_.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _restore_restarts(model: IVAE, record: dict | None) -> None:
    """Restart attributes from config.json; a format-1 model was a single restart."""
    log_jacobian = float(np.log(model.x_scale_).sum())
    if record is None:
        elbo = model.history_.elbo[-1] - log_jacobian
        record = {"selected": 0, "scores": [1.0], "elbo": [elbo], "agreement": None}
    model.selected_restart_ = int(record["selected"])
    model.restart_scores_ = np.asarray(record["scores"], dtype=float)
    model.restart_elbo_ = np.asarray(record["elbo"], dtype=float)
    agreement = record["agreement"]
    model.restart_agreement_ = None if agreement is None else np.asarray(agreement, dtype=float)
    model.elbo_ = float(model.restart_elbo_[model.selected_restart_])


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved model, checked to be a JSON object of a known format."""
    source = Path(path)
    if not source.is_dir():
        raise FileNotFoundError(f"no saved model at {source}: expected a directory with {CONFIG_FILE}")
    try:
        config = json.loads((source / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{source} has no {CONFIG_FILE}; is it a nica model directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source / CONFIG_FILE} is corrupt (invalid JSON: {exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{source} is not a valid nica model: {CONFIG_FILE} holds no JSON object")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{source} was saved in model format {version!r}; this nica reads formats up to "
            f"{FORMAT_VERSION}: upgrade nica to load it"
        )
    return config


def load(path: str | Path, *, device: str = "cpu") -> IVAE:
    """Load a model saved by :meth:`IVAE.save`; weights are mapped to ``device``.

    A model fitted on a GPU loads on a CPU-only machine: tensors are read onto the CPU,
    cast to the module's float32 parameters, then moved to ``device``.
    """
    from nica.baselines.vae import BetaTCVAE, BetaVAE
    from nica.estimator import IVAE, VAE

    source = Path(path)
    config = read_config(source)
    version = config["format_version"]
    target_device = resolve_device(device)
    classes = {cls.__name__: cls for cls in (IVAE, VAE, BetaVAE, BetaTCVAE)}
    try:  # everything read from config.json: a missing or malformed entry is one clear error
        cls = classes[config["estimator"]]
        params = dict(config["params"])
        if "objective_weights" in params:  # the beta baselines derive theirs from beta
            params["objective_weights"] = tuple(params["objective_weights"])
        model = cls(**params)
        model.config_ = IVAEConfig(**config["module"])
        model.module_ = IVAEModule(model.config_)
        model.aux_encoder_ = AuxEncoder(**config["aux"])
        model.x_mean_ = np.asarray(config["x_mean"], np.float32)
        model.x_scale_ = np.asarray(config["x_scale"], np.float32)
        if not model.x_mean_.shape == model.x_scale_.shape == (model.config_.x_dim,):
            raise ValueError(f"x_mean and x_scale must hold {model.config_.x_dim} values each")
        if not (np.all(np.isfinite(model.x_mean_)) and np.all(model.x_scale_ > 0)):
            raise ValueError("x_mean must be finite and x_scale > 0")
        model.seed_ = config["seed"]
        model.history_ = TrainHistory(**config["history"])
        _restore_restarts(model, config.get("restarts"))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"{source} is not a valid nica model: {exc!r}") from None
    try:  # onto the CPU whatever device the tensors were saved from
        state = load_file(str(source / WEIGHTS_FILE), device="cpu")
    except Exception as exc:  # safetensors raises its own error type for corrupt files
        raise ValueError(f"{source / WEIGHTS_FILE} could not be read: {exc}") from None
    broken = [name for name, tensor in state.items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        raise ValueError(f"{source / WEIGHTS_FILE} is corrupt: tensor(s) {broken[:5]} hold NaN or infinite values")
    if version < 2:  # format 1 stored single models: add the leading model dimension
        expected = model.module_.state_dict()
        state = {k: v.reshape(expected[k].shape) if k in expected and v.numel() == expected[k].numel()
                 else v for k, v in state.items()}
    try:
        model.module_.load_state_dict(state)  # copies cast float64 (or float16) tensors to float32
    except RuntimeError as exc:
        raise ValueError(f"{source} is not a valid nica model: {exc}") from None
    model.device_ = target_device
    model.module_.to(model.device_).eval()
    model.n_features_in_ = model.config_.x_dim
    model.n_steps_ = model.history_.n_steps
    model.fit_time_ = model.history_.fit_time
    return model


def model_info(path: str | Path) -> dict[str, Any]:
    """What a saved model is and how it was trained, after checking that it loads.

    Returns a JSON-ready dict: ``path``, ``estimator``, the versions (``format_version``,
    ``nica_version``, ``torch_version``), ``fitted_device``, ``seed``, ``params`` (every
    setting), ``data`` (features, components, the kind of u and its labels or width) and
    ``training`` (``n_steps``, ``n_epochs``, ``fit_time``, ``final_elbo``, ``stopped_early``
    and ``elbo``, the per-epoch training ELBO per sample in the units of X, of the kept
    restart) and ``restarts`` (their number, the kept one, each one's final ELBO and score).
    """
    model = load(path)  # the whole model must load: info on a broken one would mislead
    config = read_config(path)
    history = model.history_
    offset = float(np.log(model.x_scale_).sum())  # ELBOs in the units of X, as ``elbo_``
    aux = model.aux_encoder_
    if not model.config_.conditional:
        u_info: dict[str, Any] = {"kind": "none"}
    elif aux.kind == "categorical":
        u_info = {"kind": "categorical", "n_labels": len(aux.classes), "labels": aux.classes}
    else:
        u_info = {"kind": "continuous", "dim": len(aux.mean)}
    return {
        "path": str(Path(path)),
        "estimator": config["estimator"],
        "format_version": config["format_version"],
        "nica_version": config.get("nica_version"),
        "torch_version": config.get("torch_version"),
        "fitted_device": config.get("fitted_device"),
        "seed": model.seed_,
        "params": config["params"],
        "data": {"n_features": model.n_features_in_, "n_components": model.config_.n_latent, "u": u_info},
        "training": {
            "n_steps": history.n_steps,
            "n_epochs": len(history.elbo),
            "fit_time": history.fit_time,
            "final_elbo": model.elbo_,
            "stopped_early": history.stopped_early,
            "elbo": [e - offset for e in history.elbo],
        },
        "restarts": {
            "n_restarts": len(model.restart_elbo_),
            "selected": model.selected_restart_,
            "elbo": np.asarray(model.restart_elbo_).tolist(),
            "scores": np.asarray(model.restart_scores_).tolist(),
        },
    }
