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
import stat
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from nica._fs import TooLargeError, check_allocation, exchange, publish_permissions, remove_stale_temps, \
    temp_prefix
from nica._model_dir import CONFIG_FILE, MODEL_FILES, WEIGHTS_FILE, absolute, check_model_output, \
    is_nica_config, parse_config
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
    ValueError names the mismatch when the weights do not fit its configuration: another
    shape, integers or booleans where the module has floats (or the reverse), or values
    beyond float32's range."""
    expected = module.state_dict()
    kinds = [name for name, tensor in state.items()
             if name in expected and tensor.is_floating_point() != expected[name].is_floating_point()]
    if kinds:
        name = kinds[0]
        raise ValueError(f"the weights do not fit the saved configuration: tensor {name!r} is {state[name].dtype}, "
                         f"where the model holds {expected[name].dtype}")
    try:
        module.load_state_dict(state)  # copies cast float64 (or float16) tensors to float32
    except RuntimeError as exc:
        raise ValueError(f"the weights do not fit the saved configuration: {exc}") from None
    overflow = [name for name, tensor in module.state_dict().items()
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if overflow:
        raise ValueError(f"tensor(s) {overflow[:5]} hold values beyond float32's range (|value| > 3.4e38)")
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
    """Write ``model`` to directory ``path``; refuses to replace it unless ``overwrite``,
    and even then replaces only a model nica saved there (see :mod:`nica._model_dir`)."""
    name, save_format = _saved_type(type(model))
    check_model_output(path, overwrite)
    target = absolute(path)
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
    remove_stale_temps(target.parent, target.name)  # what a killed save left
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        publish_permissions(tmp, directory=True)
        state = {k: v.detach().cpu().contiguous() for k, v in save_format.tensors(model).items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        publish_permissions(tmp / WEIGHTS_FILE)  # safetensors creates it private (0600)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
        _put_in_place(tmp, target)
    finally:
        _remove_model_files(tmp)  # the new files after a failure, or the old model after an exchange
    return target


def _put_in_place(new: Path, target: Path) -> None:
    """Move the finished directory ``new`` to ``target``, replacing a model there: in one
    atomic exchange where the system can; else in two renames, and a crash between them
    leaves the old model at ``.NAME.old-*`` beside it (which :func:`load` points to)."""
    if not target.exists() or not any(target.iterdir()):
        os.replace(new, target)  # an empty directory is replaced as well
        return
    if exchange(new, target):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old)
    os.replace(new, target)
    _remove_model_files(old)


def _remove_model_files(directory: Path) -> None:
    """Remove a model directory nica wrote: its own files, then the directory if it is
    empty (anything else in it stays)."""
    for name in MODEL_FILES:
        try:
            (directory / name).unlink()
        except OSError:
            pass
    try:
        directory.rmdir()
    except OSError:
        pass


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved model, checked to be a JSON object of a known format
    (read only if it is a regular file of bounded size)."""
    source = Path(path)
    if not source.is_dir():
        left = sorted(absolute(source).parent.glob(f".{absolute(source).name}.old-*"))
        hint = (f"; a save to it was interrupted and left the previous model in {left[0]}: rename that "
                f"back to {source}" if left else "")
        raise FileNotFoundError(f"no saved model at {source}: expected a directory with {CONFIG_FILE}{hint}")
    if not (source / CONFIG_FILE).exists():
        if (source / "model" / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{source} has no {CONFIG_FILE}: it is the output of nica select-n, whose "
                                    f"chosen model is {source / 'model'}")
        raise FileNotFoundError(f"{source} has no {CONFIG_FILE}; is it a nica model directory?")
    config = parse_config(source / CONFIG_FILE)
    if not isinstance(config, dict):
        raise ValueError(f"{source} is not a valid nica model: {CONFIG_FILE} holds no JSON object")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{source} was saved in model format {version!r}; this nica reads formats up to "
            f"{FORMAT_VERSION}: upgrade nica to load it"
        )
    if not is_nica_config(config):
        raise ValueError(f"{source} is not a valid nica model: {CONFIG_FILE} lacks the estimator or the nica version")
    return config


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``weights.safetensors``, read only if it is a regular file that fits
    in memory; on the CPU whatever device they were saved from."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing; the model directory is incomplete") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file; refusing to read it")
    check_allocation(info.st_size, f"reading {path}")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error type for corrupt files
        raise ValueError(f"{path} could not be read: {exc}") from None


#: a size in config.json's module settings above both this and the number of saved weights
#: is refused before any network is built (a layer count of 10**7 would take minutes to build)
MAX_UNBACKED_SIZE = 10_000


def _check_sizes(saved: SavedType, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Refuse a config.json whose network would be larger than its weights: every integer
    setting of the module is bounded by the weights' count, then the network is built on
    torch's meta device (no memory) and its parameters counted; the real one, built after,
    must hold no more parameters than the file holds values."""
    n_saved = sum(t.numel() for t in state.values())
    bound = max(n_saved, MAX_UNBACKED_SIZE)
    for key, value in _integers(config.get("module", {})):
        if value < 0 or value > bound:
            raise TooLargeError(f"{CONFIG_FILE} sets {key} = {value}, which the {n_saved} saved weights cannot "
                                "back; the model directory is corrupt or not nica's")
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            probe = saved.save_format.rebuild(saved.cls, dict(config["params"]), config)
    except NotImplementedError:  # a network whose set-up computes (torch has no meta kernel for
        return                   # some operations): the integer bounds above stand alone
    needed = sum(p.numel() for module in vars(probe).values() if isinstance(module, torch.nn.Module)
                 for p in module.parameters())
    if needed > n_saved:
        raise TooLargeError(f"{CONFIG_FILE} describes a network of {needed:,} parameters but "
                            f"{WEIGHTS_FILE} holds {n_saved:,} values; the model directory is corrupt")


def _integers(value: Any, key: str = "module") -> list[tuple[str, int]]:
    """Every integer in a JSON value, with where it is (``module.hidden_dim``)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(key, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _integers(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _integers(v, f"{key}[{i}]")]
    return []


def load(path: str | Path, *, device: str = "cpu") -> Any:
    """Load a model saved by an estimator's ``save`` (e.g. :meth:`nica.IVAE.save`); weights
    are mapped to ``device``.

    A model fitted on a GPU loads on a CPU-only machine: tensors are read onto the CPU,
    cast to the module's float32 parameters, then moved to ``device``. Every size in the
    directory is checked before it is allocated: ``config.json`` must be a regular file of
    bounded size, the weights must fit in memory, and the network ``config.json`` describes
    may be no larger than the saved weights.
    """
    source = Path(path)
    config = read_config(source)
    target_device = resolve_device(device)
    state = _read_weights(source / WEIGHTS_FILE)
    broken = [name for name, tensor in state.items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        raise ValueError(f"{source / WEIGHTS_FILE} is corrupt: tensor(s) {broken[:5]} hold NaN or infinite values")
    try:  # everything read from config.json: a missing or malformed entry is one clear error
        saved = registered_type(config["estimator"])
        if saved.save_format is None:
            raise TypeError(f"{saved.name} has no save format")
        _check_sizes(saved, config, state)
        model = saved.save_format.rebuild(saved.cls, dict(config["params"]), config)
    except TooLargeError as exc:
        raise TooLargeError(f"{source} is not a valid nica model: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError, OverflowError,
            RecursionError) as exc:
        raise ValueError(f"{source} is not a valid nica model: {exc!r}") from None
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
