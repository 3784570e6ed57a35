"""Saving and loading fitted estimators: a directory with ``config.json`` and
``weights.safetensors``; no pickle is involved, so loading runs no stored code.

Writes are atomic: the directory is assembled under a temporary name beside the
target and renamed into place, so a crash leaves either the old model or the new one.

This module knows no concrete estimator. Each estimator class registers the name it is
saved under (``"estimator"`` in ``config.json``) and its :class:`SaveFormat` in the one
registry of estimators (:mod:`nica.base.registry`, :func:`register_estimator`);
:func:`load` rebuilds the class registered under the saved name. The registry finds the
built-in estimators by itself (importing their families by name on first need), so a
model loads in a fresh process; an estimator of your own registers when your module is
imported, before you load its models.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from nica._fs import publish_permissions
from nica._version import __version__
from nica.base.params import resolve_device
from nica.base.registry import ESTIMATOR_TYPES, EstimatorType, SavedType, register_estimator, registered_type, type_of

#: 2: every tensor has a leading model dimension (stacked restarts); 1 is read and converted.
#: 3: also every restart (``restarts.*``), u's label counts and X's column names; 1-2 load
#: without them (no restarts after load, uniform label prior, no column check).
#: 4: the flow's module config names its width ``n_latent`` (was ``x_dim``), and the
#: temporal model and TCL save their restarts' settings; 1-3 load as before (a nica that
#: reads up to 3 refuses a format-4 model with a message rather than misreading it)
FORMAT_VERSION = 4
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"

class SaveFormat(Protocol):
    """How a family of estimators is written to a model directory and rebuilt from it.

    :mod:`nica.persistence` writes and reads the directory, the versions, the estimator's
    name and its ``params`` (``get_params()``); the format owns everything else.
    """

    def config(self, model: Any) -> dict[str, Any]:
        """The estimator's own entries of ``config.json`` (JSON-ready values)."""

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        """The tensors written to ``weights.safetensors``."""

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        """An instance of ``cls`` with every fitted attribute ``config.json`` holds.

        Raises KeyError, TypeError, ValueError, IndexError or AttributeError on a missing
        or malformed entry (reported as an invalid model).
        """

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        """Put the saved tensors (finite, on the CPU) into ``model`` and move it to ``device``;
        raises ValueError when they do not fit the model."""

    def describe(self, model: Any) -> dict[str, Any]:
        """:func:`model_info`'s ``data``, ``training`` and ``restarts`` entries."""


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Load saved weights into ``module`` and move it to ``device`` in eval mode; a
    ValueError names the mismatch when the weights do not fit its configuration."""
    try:
        module.load_state_dict(state)  # copies cast float64 (or float16) tensors to float32
    except RuntimeError as exc:
        raise ValueError(f"the weights do not fit the saved configuration: {exc}") from None
    module.to(device).eval()


def _saved_type(cls: type) -> tuple[str, SaveFormat]:
    """The name ``cls`` is saved under and its format; a subclass that did not register
    is saved under its class name in the format of its nearest registered base."""
    for base in cls.__mro__:
        saved = type_of(base)
        if saved is not None and saved.save_format is not None:
            return (saved.name if base is cls else cls.__name__), saved.save_format
    raise TypeError(f"{cls.__name__} has no save format: register it with nica.persistence.register_estimator")


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


def save_model(model: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` to directory ``path``; refuses to replace it unless ``overwrite``."""
    name, save_format = _saved_type(type(model))
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if target.exists() and not (target / CONFIG_FILE).is_file():
        raise FileExistsError(f"{target} exists and is not a saved nica model; refusing to replace it")
    config = {
        "format_version": FORMAT_VERSION,
        "nica_version": __version__,
        "estimator": name,
        "params": {k: _jsonable(v) for k, v in model.get_params().items()},
        **save_format.config(model),
        "torch_version": torch.__version__,
        # where it was fitted, for the record; load maps the weights to any device
        "fitted_device": str(getattr(model, "device_", "cpu")),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        publish_permissions(tmp, directory=True)
        state = {k: v.detach().cpu().contiguous() for k, v in save_format.tensors(model).items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        publish_permissions(tmp / WEIGHTS_FILE)  # safetensors creates it private (0600)
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


def load(path: str | Path, *, device: str = "cpu") -> Any:
    """Load a model saved by an estimator's ``save`` (e.g. :meth:`nica.IVAE.save`); weights
    are mapped to ``device``.

    A model fitted on a GPU loads on a CPU-only machine: tensors are read onto the CPU,
    cast to the module's float32 parameters, then moved to ``device``.
    """
    source = Path(path)
    config = read_config(source)
    target_device = resolve_device(device)
    try:  # everything read from config.json: a missing or malformed entry is one clear error
        saved = registered_type(config["estimator"])
        if saved.save_format is None:
            raise TypeError(f"{saved.name} has no save format")
        model = saved.save_format.rebuild(saved.cls, dict(config["params"]), config)
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
    try:
        saved.save_format.load_tensors(model, state, config["format_version"], target_device)
    except ValueError as exc:
        raise ValueError(f"{source} is not a valid nica model: {exc}") from None
    return model


def model_info(path: str | Path) -> dict[str, Any]:
    """What a saved model is and how it was trained, after checking that it loads.

    Returns a JSON-ready dict: ``path``, ``estimator``, the versions (``format_version``,
    ``nica_version``, ``torch_version``), ``fitted_device``, ``seed``, ``params`` (every
    setting), then what the estimator's save format describes; for the iVAE family
    ``data`` (features, components, the kind of u and its labels or width) and
    ``training`` (``n_steps``, ``n_epochs``, ``fit_time``, ``final_elbo``, ``stopped_early``
    and ``elbo``, the per-epoch training ELBO per sample in the units of X, of the kept
    restart) and ``restarts`` (their number, the kept one, each one's final ELBO and score).
    """
    model = load(path)  # the whole model must load: info on a broken one would mislead
    config = read_config(path)
    return {
        "path": str(Path(path)),
        "estimator": config["estimator"],
        "format_version": config["format_version"],
        "nica_version": config.get("nica_version"),
        "torch_version": config.get("torch_version"),
        "fitted_device": config.get("fitted_device"),
        "seed": getattr(model, "seed_", None),
        "params": config["params"],
        **registered_type(config["estimator"]).save_format.describe(model),
    }


__all__ = ["CONFIG_FILE", "ESTIMATOR_TYPES", "EstimatorType", "FORMAT_VERSION", "SaveFormat", "SavedType",
           "WEIGHTS_FILE", "load", "load_module_state", "model_info", "read_config", "register_estimator",
           "registered_type", "save_model"]
