"""Sizes declared by data files, checked before anything of that size is allocated.

An ``.npy`` array (alone or inside an ``.npz``) states its shape and dtype in a short
header; numpy allocates the whole array from that header before it reads a byte of the
data. A 386-byte file can so ask for terabytes. Every array nica reads from a file is
checked here first: against the bytes the file (or the archive member) actually holds,
and against the memory this process may still use (:func:`nica._fs.check_allocation`).

>>> import io, numpy as np
>>> buffer = io.BytesIO()
>>> np.save(buffer, np.zeros((3, 2)))
>>> _ = buffer.seek(0)
>>> npy_header(buffer)
((3, 2), dtype('float64'), 128)
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from nica._fs import TooLargeError, check_allocation, format_bytes

#: what to do with data larger than memory, said by every refusal
STREAM_HINT = ("for data larger than memory save x as .npy, HDF5 or zarr and fit it from disk "
               "(nica fit --stream; nica.datasets.streaming.open_array)")


def npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and header length (bytes) of the ``.npy`` stream at ``fh``'s
    position; the position is left just after the header."""
    start = fh.tell()
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(n) for n in shape), np.dtype(dtype), fh.tell() - start


def declared_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (Python integers: no overflow)."""
    count = 1
    for n in shape:
        count *= int(n)
    return count * np.dtype(dtype).itemsize


def check_declared(shape: tuple[int, ...], dtype: np.dtype, held: int | None, what: str) -> None:
    """Refuse an array that declares more bytes than its file holds (``held``; None when
    unknown) or than this process can allocate."""
    if np.dtype(dtype).hasobject:
        return  # refused by the reader itself: object arrays are never unpickled
    n_bytes = declared_bytes(shape, dtype)
    if held is not None and n_bytes > held:
        raise TooLargeError(f"{what} declares shape {shape} of {np.dtype(dtype)} ({format_bytes(n_bytes)}) but "
                            f"holds {format_bytes(held)} of data: the file is truncated or corrupt")
    check_allocation(n_bytes, f"{what} (shape {shape}, {np.dtype(dtype)})", STREAM_HINT)


def check_npy_file(path: Path, what: str) -> None:
    """Check the array of an ``.npy`` file against its size and the memory (see module doc)."""
    with open(path, "rb") as fh:
        try:
            shape, dtype, header = npy_header(fh)
        except ValueError:
            return  # not an .npy header: the reader's own error says so
    check_declared(shape, dtype, path.stat().st_size - header, what)


def check_npz_member(path: Path, key: str, what: str) -> None:
    """Check array ``key`` of an ``.npz`` archive before numpy allocates it: its declared
    size against the member's uncompressed size and against the memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = _member(archive, key)
            if member is None:
                return
            with archive.open(member) as fh:
                try:
                    shape, dtype, header = npy_header(fh)
                except ValueError:
                    return
    except (zipfile.BadZipFile, OSError, EOFError):
        return  # the reader reports a broken archive in its own words
    check_declared(shape, dtype, member.file_size - header, what)


def _member(archive: zipfile.ZipFile, key: str) -> Any:
    for name in (key, f"{key}.npy"):
        try:
            return archive.getinfo(name)
        except KeyError:
            continue
    return None


def check_dataset(dataset: Any, what: str) -> None:
    """Check an HDF5 (or zarr) dataset's shape and dtype against the memory before it is read."""
    try:
        dtype = np.dtype(dataset.dtype)
    except TypeError:
        return
    check_declared(tuple(int(n) for n in dataset.shape), dtype, None, what)


__all__ = ["STREAM_HINT", "check_dataset", "check_declared", "check_npy_file", "check_npz_member",
           "declared_bytes", "npy_header"]
