"""Fitting from arrays that do not fit in memory: memory-mapped ``.npy``, HDF5, zarr.

A :class:`RowSource` reads the rows a mini-batch needs and nothing else, so the memory a
fit uses is bounded by the batch size (plus the model), not by the data set. Statistics
the fit needs up front (finiteness, per-feature mean and scale) are computed in one
chunked pass.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
>>> np.save(path, np.arange(12, dtype=np.float32).reshape(6, 2))
>>> x = open_array(path)
>>> is_out_of_core(x), x.shape
(True, (6, 2))
>>> stats = column_stats(x, chunk_rows=4)
>>> stats.mean.tolist(), stats.n_rows
([5.0, 6.0], 6)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica.datasets.sizes import check_dataset
from nica.datasets.tabular import require

#: rows read per chunk when scanning or transforming an out-of-core array
CHUNK_ROWS = 65_536


def is_out_of_core(x: Any) -> bool:
    """True for arrays read lazily from disk: numpy memmaps, h5py datasets, zarr arrays."""
    if isinstance(x, np.memmap):
        return True
    module = type(x).__module__
    return module.startswith(("h5py", "zarr"))


def open_array(path: str | Path, key: str | None = None) -> Any:
    """Open a 2-D array on disk without reading it: ``.npy`` (memory-mapped), ``.h5`` /
    ``.hdf5`` (dataset ``key``, default ``"x"``) or a ``.zarr`` store (array ``key``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path} is not a numeric .npy array ({exc})") from None
    if suffix in (".h5", ".hdf5"):
        h5py = require("h5py", "reading HDF5")
        handle = h5py.File(path, "r")
        name = key or "x"
        if name not in handle:
            raise ValueError(f"{path} has no dataset {name!r}; it holds {sorted(handle.keys())}")
        return handle[name]
    if suffix == ".zarr":
        zarr = require("zarr", "reading zarr")
        store = zarr.open(str(path), mode="r")
        if hasattr(store, "shape"):
            return store
        name = key or "x"
        if name not in store:
            raise ValueError(f"{path} has no array {name!r}; it holds {sorted(store.keys())}")
        return store[name]
    raise ValueError(f"{path}: out-of-core fitting reads .npy, .h5/.hdf5 or .zarr, not {suffix!r}")


def read_store_array(path: str | Path, key: str) -> np.ndarray | None:
    """Array ``key`` of a zarr store (a folder of arrays), read into memory after its
    size is checked (u beside an out-of-core x); None when the store holds no such array."""
    zarr = require("zarr", "reading zarr")
    store = zarr.open(str(path), mode="r")
    if hasattr(store, "shape") or key not in store:
        return None
    array = store[key]
    check_dataset(array, f"array {key!r} of {path}")
    return np.asarray(array[...])


@dataclass
class ColumnStats:
    """Per-feature mean and standard deviation ``(n_features,)`` of an out-of-core array,
    and ``digest``: a hash of every value read, in order (its identity in a checkpoint's
    fingerprint; empty for an array in memory, which is fingerprinted by its bytes)."""

    mean: np.ndarray
    std: np.ndarray
    n_rows: int
    digest: str = ""


def column_stats(x: Any, name: str = "X", chunk_rows: int = CHUNK_ROWS) -> ColumnStats:
    """One chunked pass over ``x`` ``(N, d)``: checks shape, dtype and finiteness, and
    returns the mean and standard deviation of each column (float64 accumulators) and a
    digest (BLAKE2b) of the bytes of every row, so that two arrays with the same
    statistics (a row-shuffled copy) are told apart."""
    shape = tuple(x.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}")
    if shape[0] < 2 or shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 rows and 1 column, got shape {shape}")
    if not np.issubdtype(np.dtype(x.dtype), np.number) or np.issubdtype(np.dtype(x.dtype), np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    total = np.zeros(shape[1])
    total_sq = np.zeros(shape[1])
    digest = hashlib.blake2b(str((shape, np.dtype(x.dtype).str)).encode(), digest_size=16)
    for start in range(0, shape[0], chunk_rows):
        raw = np.ascontiguousarray(x[start : start + chunk_rows])
        digest.update(raw.tobytes())
        chunk = raw.astype(np.float64)
        if not np.isfinite(chunk).all():
            bad = start + int(np.nonzero(~np.isfinite(chunk).all(1))[0][0])
            raise ValueError(f"{name} contains NaN or infinite values (first at row {bad}); "
                             "remove or impute them before fitting")
        total += chunk.sum(0)
        total_sq += np.square(chunk).sum(0)
    mean = total / shape[0]
    var = np.maximum(total_sq / shape[0] - mean**2, 0.0)
    return ColumnStats(mean, np.sqrt(var), shape[0], digest.hexdigest())


def streamed_data_id(stats: ColumnStats) -> tuple[np.ndarray, ...]:
    """What identifies an out-of-core X in a fit's checkpoint fingerprint
    (:func:`nica.base.checkpointing.fit_checkpointing`): the digest of every row the fit read
    and the array's shape. Any estimator that streams X from disk passes this (with its
    u) as its ``data_id``, so ``resume`` refuses a checkpoint of other data, a row-shuffled
    or edited copy with the same column statistics included."""
    if not stats.digest:
        raise ValueError("these statistics were not computed from an out-of-core array (no digest)")
    return np.frombuffer(bytes.fromhex(stats.digest), np.uint8), np.asarray([stats.n_rows, len(stats.mean)])


class RowSource:
    """Rows of an out-of-core array ``(N, d)``, standardised, as float32 tensors on ``device``.

    ``gather(idx)`` reads exactly the rows ``idx`` (in the order given); the trainer uses it
    in place of indexing an in-memory tensor.
    """

    def __init__(self, array: Any, mean: np.ndarray, scale: np.ndarray, device: torch.device) -> None:
        self.array = array
        self.mean = np.asarray(mean, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.device = torch.device(device)
        self.shape = (int(array.shape[0]), int(array.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Standardised float32 rows ``(len(rows), d)`` in the order of ``rows``."""
        order = np.argsort(rows, kind="stable")
        unique, inverse = np.unique(rows[order], return_inverse=True)
        if hasattr(self.array, "oindex"):  # zarr
            block = self.array.oindex[unique, :]
        else:  # numpy memmaps and h5py read sorted, unique indices
            block = self.array[unique]
        out = np.empty((len(rows), self.shape[1]), np.float32)
        out[order] = (np.asarray(block, np.float32)[inverse] - self.mean) / self.scale
        return out

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.read(idx.cpu().numpy())).to(self.device)

    def chunks(self, chunk_rows: int = CHUNK_ROWS):
        """Consecutive standardised blocks ``(<= chunk_rows, d)`` as tensors on ``device``."""
        for start in range(0, self.shape[0], chunk_rows):
            block = np.asarray(self.array[start : start + chunk_rows], np.float32)
            yield torch.from_numpy((block - self.mean) / self.scale).to(self.device)


class OneHotRows:
    """Categorical u kept as label indices ``(N,)`` and one-hot encoded a batch at a time.

    Indexing with a tensor of rows or a slice returns float32 one-hot rows
    ``(len(rows), n_classes)``, exactly the rows of the dense encoding, so the trainer and
    the inference loops use it in place of a ``(N, n_classes)`` tensor: 8 bytes a row
    instead of ``4 * n_classes`` (at 10^6 rows and 40 segments, 8 MB instead of 160 MB).
    """

    def __init__(self, labels: torch.Tensor | np.ndarray, n_classes: int) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.n_classes = int(n_classes)
        self.shape = (int(self.labels.shape[0]), self.n_classes)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: torch.Tensor | slice) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.labels[rows], self.n_classes).to(torch.float32)

    def to(self, device: torch.device | str) -> OneHotRows:
        return OneHotRows(self.labels.to(device), self.n_classes)
