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
#: ... and at most this many bytes of float64 values per chunk (wide arrays get fewer rows)
CHUNK_BYTES = 32 * 2**20
#: the widest X whose covariance ``column_stats(covariance=True)`` accumulates (128 MB)
MAX_COVARIANCE_FEATURES = 4_096


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
    """Per-feature mean and standard deviation ``(n_features,)`` of an array, with
    ``covariance=True`` its covariance ``(n_features, n_features)`` (divisor N), and
    ``digest``: a hash of every value read, in order (its identity in a checkpoint's
    fingerprint; empty for an array in memory, which is fingerprinted by its bytes)."""

    mean: np.ndarray
    std: np.ndarray
    n_rows: int
    cov: np.ndarray | None = None
    digest: str = ""


def check_array_shape(x: Any, name: str = "X", min_rows: int = 2) -> Any:
    """``x`` itself, after checking without reading it that it is 2-D, with at least
    ``min_rows`` rows and one column, of a real-valued dtype."""
    shape = tuple(x.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}")
    if shape[0] < min_rows or shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_rows} row{'s' if min_rows > 1 else ''} and 1 column, "
                         f"got shape {shape}")
    if not np.issubdtype(np.dtype(x.dtype), np.number) or np.issubdtype(np.dtype(x.dtype), np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x


def check_finite_block(block: Any, name: str = "X", start: int = 0) -> np.ndarray:
    """A block of rows read from disk as a numpy array, refused when it holds NaN or inf
    (naming the first bad row, counted from ``start``)."""
    block = np.asarray(block)
    finite = np.isfinite(block)
    if not finite.all():
        bad = start + int(np.nonzero(~finite.all(1))[0][0])
        raise ValueError(f"{name} contains NaN or infinite values (first at row {bad}); "
                         "remove or impute them before fitting")
    return block


def is_binary(x: Any, chunk_rows: int = CHUNK_ROWS) -> bool:
    """Whether every value of an out-of-core ``x`` is 0 or 1, read chunk by chunk and
    stopping at the first chunk with another value (the first, for real-valued data)."""
    step = chunk_rows_for(x.shape[1], chunk_rows)
    return all(np.isin(np.asarray(x[start : start + step]), (0.0, 1.0)).all()
               for start in range(0, x.shape[0], step))


def chunk_rows_for(n_features: int, chunk_rows: int = CHUNK_ROWS) -> int:
    """Rows per chunk: at most ``chunk_rows``, and a float64 chunk of at most
    :data:`CHUNK_BYTES` however wide the array is."""
    return max(1, min(int(chunk_rows), CHUNK_BYTES // (8 * max(int(n_features), 1))))


def column_stats(x: Any, name: str = "X", chunk_rows: int = CHUNK_ROWS, *, covariance: bool = False) -> ColumnStats:
    """One chunked pass over ``x`` ``(N, d)``: checks shape, dtype and finiteness, and
    returns the mean and standard deviation of each column, and with ``covariance`` the
    covariance matrix (the d x d second moments, for principal components computed from
    one pass: :mod:`nica.flows.projection`).

    Sums are float64 and taken about the first row (so a large common offset does not
    cancel the variance away); memory is one chunk plus, with ``covariance``, 8 d^2 bytes.
    """
    shape = check_array_shape(x, name).shape
    if covariance and shape[1] > MAX_COVARIANCE_FEATURES:
        raise ValueError(f"{name} has {shape[1]} features: the covariance of more than "
                         f"{MAX_COVARIANCE_FEATURES} (8 d^2 bytes) is not accumulated; reduce the features first")
    shift = None
    total = np.zeros(shape[1])
    total_sq = np.zeros(shape[1])
    cross = np.zeros((shape[1], shape[1])) if covariance else None
    digest = hashlib.blake2b(str((shape, np.dtype(x.dtype).str)).encode(), digest_size=16)
    step = chunk_rows_for(shape[1], chunk_rows)
    for start in range(0, shape[0], step):
        raw = np.ascontiguousarray(x[start : start + step])
        digest.update(raw.tobytes())
        chunk = check_finite_block(raw, name, start).astype(np.float64)
        if shift is None:
            shift = chunk[0].copy()
        chunk -= shift
        total += chunk.sum(0)
        total_sq += np.square(chunk).sum(0)
        if cross is not None:
            cross += chunk.T @ chunk
    offset = total / shape[0]
    var = np.maximum(total_sq / shape[0] - offset**2, 0.0)
    cov = None
    if cross is not None:
        cov = cross / shape[0] - np.outer(offset, offset)
        cov = 0.5 * (cov + cov.T)
    return ColumnStats(offset + shift, np.sqrt(var), shape[0], cov, digest.hexdigest())


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
    in place of indexing an in-memory tensor. Subclasses map the raw rows differently by
    overriding :meth:`standardise` (and ``shape`` when the width changes).
    """

    def __init__(self, array: Any, mean: np.ndarray, scale: np.ndarray, device: torch.device) -> None:
        self.array = array
        self.mean = np.asarray(mean, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.device = torch.device(device)
        self.shape = (int(array.shape[0]), int(array.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def standardise(self, block: np.ndarray) -> np.ndarray:
        """The model's float32 input ``(rows, shape[1])`` for raw rows ``(rows, d)``."""
        return (np.asarray(block, np.float32) - self.mean) / self.scale

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Standardised float32 rows ``(len(rows), shape[1])`` in the order of ``rows``."""
        order = np.argsort(rows, kind="stable")
        unique, inverse = np.unique(rows[order], return_inverse=True)
        if hasattr(self.array, "oindex"):  # zarr
            block = self.array.oindex[unique, :]
        else:  # numpy memmaps and h5py read sorted, unique indices
            block = self.array[unique]
        out = np.empty((len(rows), self.shape[1]), np.float32)
        out[order] = self.standardise(block)[inverse]
        return out

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.read(idx.cpu().numpy())).to(self.device)

    def chunks(self, chunk_rows: int = CHUNK_ROWS):
        """Consecutive standardised blocks ``(<= chunk_rows, shape[1])`` as tensors on ``device``."""
        for start in range(0, self.shape[0], chunk_rows):
            yield torch.from_numpy(self.standardise(self.array[start : start + chunk_rows])).to(self.device)


class RowSubset:
    """The rows ``rows`` of a :class:`RowSource`, indexed from 0 (``gather`` as the source's)."""

    def __init__(self, source: RowSource, rows: torch.Tensor) -> None:
        self.source, self.rows = source, torch.as_tensor(rows, dtype=torch.int64)
        self.device = source.device
        self.shape = (len(self.rows), source.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        return self.source.gather(self.rows[idx.cpu()])


def row_subset(rows_of: Any, rows: torch.Tensor) -> Any:
    """The rows ``rows`` of a tensor, a :class:`RowSource` (read lazily) or :class:`OneHotRows`."""
    if isinstance(rows_of, RowSource):
        return RowSubset(rows_of, rows)
    if isinstance(rows_of, OneHotRows):
        return OneHotRows(rows_of.labels[rows.to(rows_of.device)], rows_of.n_classes)
    return rows_of[rows.to(rows_of.device)]


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
