"""Reading data files and writing results atomically.

Three kinds of data file:

* keyed files, ``.npz`` and HDF5 (``.h5``/``.hdf5``), hold named arrays: ``x`` (N, d),
  ``u`` (N,) labels or (N, m) one-hot / continuous values, and optionally ``s`` (N, n)
  true sources (other names with ``x_key``/``u_key``/``s_key``; HDF5 names may be paths
  such as ``"data/x"``);
* tables, ``.csv`` and ``.parquet``, hold named columns: u and s are the columns chosen
  by ``u_cols``/``s_cols`` and x the columns ``x_cols`` (by default every other column);
* ``.npy`` holds one array.

u and s may also come from their own files.  Parquet needs pyarrow and HDF5 needs h5py
(``pip install "nica[formats]"``).  Arrays are read with ``allow_pickle=False``: reading a
data file never runs stored code.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from nica._fs import TooLargeError, publish_permissions, remove_stale_temps, temp_prefix
from nica.datasets.sizes import check_dataset, check_npy_file, check_npz_member
from nica.datasets.tabular import ColumnSpec, MissingDependencyError, Table, read_csv_table, \
    read_parquet_table, require

KEYED = (".npz", ".h5", ".hdf5")
TABULAR = (".csv", ".parquet")
SUFFIXES = (".npz", ".npy", ".csv", ".parquet", ".h5", ".hdf5")
PARTS = ("x", "u", "s")
#: how errors name the column options: the argument of load_dataset and the CLI option
COLUMN_OPTIONS = {"x": "x_cols (--x-cols)", "u": "u_cols (--u-col)", "s": "s_cols (--s-cols)"}


class DataFileError(ValueError):
    """A data file is missing, unreadable or lacks what was asked of it."""


@dataclass
class Dataset:
    """Arrays read from disk: x ``(N, d)``, u ``(N,)`` or ``(N, m)``, s ``(N, n)``; None when absent."""

    x: np.ndarray | None
    u: np.ndarray | None = None
    s: np.ndarray | None = None
    #: x's column names, for a table with a header (None otherwise)
    x_names: list[str] | None = None


def _data_file(path: str | Path) -> tuple[Path, str]:
    """The path and its lower-case suffix, once it is known to be a readable kind of file."""
    path = Path(path)
    if path.is_dir():
        raise DataFileError(f"{path} is a directory, not a data file; pass one of {SUFFIXES}")
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"unsupported file type {suffix!r} for {path}; use one of {SUFFIXES}")
    return path, suffix


def _reading(path: Path, read: Callable[[], Any]) -> Any:
    """Run ``read()``; the many ways a file can be broken become one :class:`DataFileError`."""
    try:
        return read()
    except (DataFileError, MissingDependencyError, TooLargeError):
        raise
    except ValueError as exc:
        if "Object arrays cannot be loaded" in str(exc):
            raise DataFileError(
                f"{path} holds an object array (pickled Python objects), which nica never loads "
                "because unpickling can run code; save numbers, or labels as a string array"
            ) from None
        if "pickled data" in str(exc):  # not an array file at all, or a pickle in disguise
            raise DataFileError(f"could not read {path}: it is not a valid {path.suffix} file") from None
        raise DataFileError(f"could not read {path}: {safe_reason(exc)}") from None
    except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"could not read {path}: {safe_reason(exc)}") from None


#: advice in numpy's and torch's errors that nica must never pass on: loading pickles runs code
UNSAFE_ADVICE = ("allow_pickle", "weights_only", "pickle")


def safe_reason(exc: BaseException) -> str:
    """A library's error message without advice to unpickle (``allow_pickle=True``,
    ``weights_only=False``): the sentences that give it are dropped, or the whole
    message when nothing else is left."""
    sentences = [part.strip() for part in str(exc).replace("\n", " ").split(". ")]
    kept = [part for part in sentences if not any(word in part for word in UNSAFE_ADVICE)]
    reason = ". ".join(kept).strip()
    return reason or f"{type(exc).__name__} (the file is not in the expected format)"


def array_names(path: str | Path) -> list[str]:
    """Names of the arrays in a keyed file: ``.npz`` entries or HDF5 dataset paths."""
    path, suffix = _data_file(path)
    if suffix == ".npz":
        def names() -> list[str]:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
                return list(archive.files)
    elif suffix in KEYED:
        h5py = require("h5py", f"reading {path.name} (HDF5)")

        def names() -> list[str]:
            found: list[str] = []
            with h5py.File(path, "r") as fh:
                fh.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
            return found
    else:
        raise DataFileError(f"{path} is not a keyed file; only {KEYED} files hold named arrays")
    return _reading(path, names)


def npz_keys(path: str | Path) -> list[str]:
    """Names of the arrays in an ``.npz`` file."""
    return array_names(path)


def _pick_key(path: Path, key: str | None, names: list[str]) -> str:
    if key is None and len(names) == 1:
        return names[0]
    if key not in names:
        what = "array" if path.suffix.lower() == ".npz" else "dataset"
        raise DataFileError(f"{path} has no {what} {key!r}; it holds {sorted(names)}")
    return key


def _read_keyed(path: Path, key: str | None) -> np.ndarray:
    key = _pick_key(path, key, array_names(path))
    if path.suffix.lower() == ".npz":
        check_npz_member(path, key, f"array {key!r} of {path}")  # its declared size, before numpy allocates it

        def read() -> np.ndarray:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
                return archive[key]
        return _reading(path, read)
    h5py = require("h5py", f"reading {path.name} (HDF5)")

    def read_hdf5() -> np.ndarray:
        with h5py.File(path, "r") as fh:
            dataset = fh[key]
            if h5py.check_string_dtype(dataset.dtype) is not None:
                return np.asarray(dataset.asstr()[()], dtype=str)  # text labels
            check_dataset(dataset, f"dataset {key!r} of {path}")
            arr = np.asarray(dataset[()])
        if arr.dtype.names is not None:
            raise DataFileError(
                f"dataset {key!r} in {path} is a compound (record) array; store it as a plain "
                "numeric array (N, d)"
            )
        return arr
    return _reading(path, read_hdf5)


def _read_table(path: Path) -> Table:
    reader = read_csv_table if path.suffix.lower() == ".csv" else read_parquet_table
    return _reading(path, lambda: reader(path))


def read_array(
    path: str | Path, key: str | None = None, *, columns: ColumnSpec | None = None, labels: bool = False
) -> np.ndarray:
    """One array from a data file.

    Parameters
    ----------
    path : ``.npy``; ``.npz`` or HDF5 (the array ``key``, or the only one when ``key`` is
        None); ``.csv`` or ``.parquet`` (the ``columns``, by default all of them).
    columns : table columns by name or 0-based index (``"a,b"``, ``"0:3"``, ``["a", 2]``).
    labels : a single table column may hold text labels (for u); otherwise every column
        must be numeric.

    Returns
    -------
    The array; a single table column comes back 1-D ``(N,)``, several as ``(N, k)``.
    """
    return _read_array(path, key, columns, labels, name="the array", option="columns")


def _read_array(path: str | Path, key: str | None, columns: ColumnSpec | None, labels: bool, *,
                name: str, option: str) -> np.ndarray:
    """:func:`read_array`, with errors that call the array ``name`` and its columns ``option``."""
    path, suffix = _data_file(path)
    if columns is not None and suffix not in TABULAR:
        raise DataFileError(f"{option} can only choose columns of {'/'.join(TABULAR)} tables; {path} "
                            f"is a {suffix} file")
    if suffix == ".npy":
        check_npy_file(path, str(path))

        def read_npy() -> np.ndarray:
            with open(path, "rb") as fh:  # our handle: numpy leaves its own open when a file is broken
                arr = np.load(fh, allow_pickle=False)
            if not isinstance(arr, np.ndarray):
                arr.close()
                raise DataFileError(f"{path} is an .npz archive, not an .npy array; rename it to .npz")
            return arr
        return _reading(path, read_npy)
    if suffix in KEYED:
        return _read_keyed(path, key)
    table = _read_table(path)
    index = table.select(columns, option)
    if labels:
        return table.aux(index, name)
    arr = table.numeric(index, name)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def load_dataset(
    path: str | Path,
    *,
    u_path: str | Path | None = None,
    s_path: str | Path | None = None,
    x_key: str = "x",
    u_key: str = "u",
    s_key: str = "s",
    x_cols: ColumnSpec | None = None,
    u_cols: ColumnSpec | None = None,
    s_cols: ColumnSpec | None = None,
    parts: Collection[str] = PARTS,
) -> Dataset:
    """Read x, u and s from a data file (see the module docstring for the file kinds).

    Parameters
    ----------
    path : the data file.
    u_path, s_path : u or s from their own file; ``u_key``/``u_cols`` (``s_key``/``s_cols``)
        then choose within that file.
    x_key, u_key, s_key : array names in ``.npz``/HDF5 files; u and s are optional there.
    x_cols, u_cols, s_cols : columns of a ``.csv``/``.parquet`` table, by name or 0-based
        index (``"a,b"``, ``"0:3"``, ``["a", 2]``); x defaults to every column not taken
        by u or s.  A single u column may hold text labels.
    parts : which of ``"x"``, ``"u"``, ``"s"`` to read; the others are None.

    Returns
    -------
    Dataset with x ``(N, d)`` (required when asked for), and u, s or None.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts may only name {PARTS}, got {sorted(unknown)}")
    path, suffix = _data_file(path)
    in_table = {"x": x_cols, "u": u_cols if u_path is None else None, "s": s_cols if s_path is None else None}
    if suffix not in TABULAR:
        chosen = [COLUMN_OPTIONS[p] for p, spec in in_table.items() if spec is not None]
        if chosen:
            fix = ("name its arrays with x_key/u_key/s_key (--x-key/--u-key/--s-key)" if suffix in KEYED
                   else "it holds x alone; give u and s their own files")
            raise DataFileError(
                f"{', '.join(chosen)} can only choose columns of {'/'.join(TABULAR)} tables; {path} "
                f"is a {suffix} file: {fix}"
            )
    out: dict[str, Any] = {"x": None, "u": None, "s": None}
    if suffix in TABULAR:
        out.update(_from_table(path, in_table, parts, u_elsewhere=u_path is not None))
    elif suffix in KEYED:
        names = array_names(path)
        keys = {"x": x_key, "u": u_key, "s": s_key}
        own_file = {"u": u_path, "s": s_path}
        for part in parts:
            if part == "x" or (own_file[part] is None and keys[part] in names):
                out[part] = _read_keyed(path, keys[part])
    elif "x" in parts:
        out["x"] = read_array(path)
    own = {"u": (u_path, u_key, u_cols), "s": (s_path, s_key, s_cols)}
    for part, (own_path, key, cols) in own.items():
        if own_path is not None and part in parts:
            keyed = Path(own_path).suffix.lower() in KEYED
            out[part] = _read_array(own_path, key if keyed else None, cols, labels=part == "u",
                                    name=part, option=COLUMN_OPTIONS[part])
    return Dataset(**out)


def _from_table(path: Path, specs: dict[str, ColumnSpec | None], parts: Collection[str],
                u_elsewhere: bool = False) -> dict[str, Any]:
    """x, u and s from the columns of one table; x takes what u and s leave."""
    table = _read_table(path)
    index = {p: table.select(spec, COLUMN_OPTIONS[p]) for p, spec in specs.items()
             if spec is not None and p != "x"}
    taken = [i for cols in index.values() for i in cols]
    index["x"] = table.select(specs["x"], COLUMN_OPTIONS["x"]) if specs["x"] is not None else \
        [i for i in range(len(table.names)) if i not in taken]
    for part in ("u", "s"):
        shared = sorted(set(index["x"]) & set(index.get(part, [])))
        if shared:
            raise DataFileError(
                f"column(s) {[table.names[i] for i in shared]} of {path} are chosen for both x and "
                f"{part}; a column can be only one of them"
            )
    out: dict[str, Any] = {}
    if "x" in parts and specs["x"] is None and "u" not in index and not u_elsewhere:
        labels = table.non_numeric(index["x"])
        if labels:  # most likely u, left among x's columns because no u column was named
            raise DataFileError(
                f"{path} has text column(s) {[table.names[i] for i in labels[:10]]} and no u column was "
                f"named; if it is u, name it: u_cols={table.names[labels[0]]!r} "
                f"(CLI: --u-col {table.names[labels[0]]}); otherwise choose x's numeric columns "
                "with x_cols (CLI: --x-cols)"
            )
    if "x" in parts:
        out["x"] = table.numeric(index["x"], "x")
        out["x_names"] = [table.names[i] for i in index["x"]] if table.named else None
    if "u" in parts and "u" in index:
        out["u"] = table.aux(index["u"], "u")
    if "s" in parts and "s" in index:
        out["s"] = table.numeric(index["s"], "s")
    return out


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` if ``path`` exists and ``overwrite`` is not set.

    Outputs are checked before any work, so that a long fit never ends in a refusal.
    """
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], *, overwrite: bool = False) -> Path:
    """Write a file through ``write(handle)`` into a temporary file, then rename it into place.

    Refuses to replace an existing file unless ``overwrite``; a failure leaves no partial file.
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)  # left by a writer that was killed
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        publish_permissions(tmp)
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
