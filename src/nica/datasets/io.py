"""Reading data files and writing results atomically.

An ``.npz`` file holds ``x`` (N, d), ``u`` (N,) labels or (N, m) one-hot / continuous
values, and optionally ``s`` (N, n) true sources.  ``.npy`` and ``.csv`` files hold one
array each; u and s then come from their own files.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

SUFFIXES = (".npz", ".npy", ".csv")


class DataFileError(ValueError):
    """A data file is missing, unreadable or lacks what was asked of it."""


@dataclass
class Dataset:
    """Arrays read from disk: x ``(N, d)``, u ``(N,)`` or ``(N, m)`` or None, s ``(N, n)`` or None."""

    x: np.ndarray
    u: np.ndarray | None = None
    s: np.ndarray | None = None


def read_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """One array from ``.npy``, ``.csv`` (comma separated, optional header) or ``.npz[key]``."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".csv":
            return _read_csv(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if key not in archive.files:
                    raise DataFileError(f"{path} has no array {key!r}; it holds {sorted(archive.files)}")
                return archive[key]
    except DataFileError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"could not read {path}: {exc}") from None
    raise DataFileError(f"unsupported file type {suffix!r} for {path}; use one of {SUFFIXES}")


def _read_csv(path: Path) -> np.ndarray:
    with open(path) as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.strip().split(",") if v.strip()]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    except ValueError as exc:
        raise DataFileError(f"{path} holds non-numeric values: {exc}") from None
    return arr[:, 0] if arr.shape[1] == 1 else arr


def npz_keys(path: str | Path) -> list[str]:
    """Names of the arrays in an ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return list(archive.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"could not read {path}: {exc}") from None


def load_dataset(
    path: str | Path,
    *,
    u_path: str | Path | None = None,
    s_path: str | Path | None = None,
    x_key: str = "x",
    u_key: str = "u",
    s_key: str = "s",
) -> Dataset:
    """Read x (and u, s when present) from an ``.npz`` or from ``.npy``/``.csv`` files."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"file not found: {path}")
    if path.suffix.lower() == ".npz":
        keys = npz_keys(path)
        x = read_array(path, x_key)
        u = read_array(path, u_key) if u_key in keys else None
        s = read_array(path, s_key) if s_key in keys else None
    else:
        x = read_array(path)
        u = None
        s = None
    if u_path is not None:
        u = read_array(u_path, u_key)
    if s_path is not None:
        s = read_array(s_path, s_key)
    return Dataset(x=x, u=u, s=s)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], *, overwrite: bool = False) -> Path:
    """Write a file through ``write(handle)`` into a temporary file, then rename it into place.

    Refuses to replace an existing file unless ``overwrite``; a failure leaves no partial file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_array(path: str | Path, array: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save one array as ``.npy`` or ``.csv`` by the path's suffix, atomically."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return atomic_write(path, lambda fh: np.save(fh, array), overwrite=overwrite)
    if suffix == ".csv":
        return atomic_write(path, lambda fh: np.savetxt(fh, array, delimiter=","), overwrite=overwrite)
    raise DataFileError(f"unsupported output type {suffix!r} for {path}; use .npy or .csv")


def save_npz(path: str | Path, *, overwrite: bool = False, **arrays: np.ndarray) -> Path:
    """Save named arrays to an ``.npz`` file, atomically."""
    if Path(path).suffix.lower() != ".npz":
        raise DataFileError(f"output {path} must end in .npz")
    return atomic_write(path, lambda fh: np.savez(fh, **arrays), overwrite=overwrite)
