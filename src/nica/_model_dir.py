"""The saved-model directory as the file system sees it (no torch, so the command line
checks its outputs quickly): the names of its files, a bounded read of ``config.json``,
and whether a path may receive a model.

The rule: ``overwrite`` replaces only a model nica wrote, a directory holding nothing but
its ``config.json`` (a nica one) and ``weights.safetensors``; never a directory of the
user's, and never a model directory into which the user put other files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nica._fs import read_bounded

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"
#: the files a saved model consists of; a directory holding anything else is not replaced
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)
#: config.json is read only up to this size (a model's holds settings, a history and labels)
MAX_CONFIG_BYTES = 64 * 2**20


def absolute(path: str | Path) -> Path:
    """``path`` made absolute without resolving links: ``.`` becomes the current directory
    (which has a name, where ``Path('.')`` has none)."""
    return Path(os.path.abspath(path))


def parse_config(path: str | Path) -> Any:
    """The parsed JSON of a model's ``config.json``, read only if it is a regular file of at
    most :data:`MAX_CONFIG_BYTES`; ValueError for anything else or invalid JSON."""
    data = read_bounded(path, MAX_CONFIG_BYTES, "the model file")
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is corrupt (invalid JSON: {exc})") from None
    except RecursionError:
        raise ValueError(f"{path} is corrupt (JSON nested too deeply)") from None


def is_nica_config(config: Any) -> bool:
    """Whether a parsed ``config.json`` is one nica writes (its format, version and estimator)."""
    return (isinstance(config, dict) and isinstance(config.get("format_version"), int)
            and isinstance(config.get("estimator"), str) and isinstance(config.get("nica_version"), str))


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory with a ``config.json`` that nica wrote."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return False
    try:
        return is_nica_config(parse_config(path / CONFIG_FILE))
    except (OSError, ValueError):
        return False


def foreign_entries(path: str | Path) -> list[str]:
    """The names in model directory ``path`` that are not a model's files (sorted)."""
    return sorted(entry.name for entry in Path(path).iterdir() if entry.name not in MODEL_FILES)


def check_model_output(path: str | Path, overwrite: bool) -> None:
    """Refuse, before any work, a model output that would replace anything but a model of
    nica's: an existing path without ``overwrite``; with it, a file, a directory that is
    not a saved model (an empty one is fine), or a model directory with other files in it."""
    target = absolute(path)
    if not target.exists():
        if target.is_symlink():
            raise FileExistsError(f"{path} is a broken symbolic link; remove it or choose another path")
        return
    if not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if not target.is_dir():
        raise FileExistsError(f"{path} exists and is a file, not a saved nica model; refusing to replace it: "
                              "choose another path")
    if not any(target.iterdir()):
        return
    if not is_model_dir(target):
        raise FileExistsError(f"{path} exists and is not a saved nica model (it has no nica {CONFIG_FILE}); "
                              "overwrite replaces only a model nica saved: choose another path")
    extra = foreign_entries(target)
    if extra:
        shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise FileExistsError(f"{path} is a nica model with other files in it ({shown}); overwrite replaces "
                              "only a model's own files: move them elsewhere, or choose another path")


__all__ = ["CONFIG_FILE", "MAX_CONFIG_BYTES", "MODEL_FILES", "WEIGHTS_FILE", "absolute", "check_model_output",
           "foreign_entries", "is_model_dir", "is_nica_config", "parse_config"]
