"""File-system helpers shared by every write and by every read of a size from a file.

* permissions: a temporary file renamed into place gets the mode a plain ``open`` would;
* temporary names carry the writer's process id, so that a later write removes what a
  killed writer left (:func:`temp_prefix`, :func:`remove_stale_temps`) and never the
  temporary file of a writer still running;
* :func:`exchange` swaps two directories in one step where the system can (Linux), so a
  crash while a model is replaced leaves the old model or the new one at its path;
* :func:`read_bounded` reads a small file the user gave (a config) only when it is a
  regular file of bounded size: never a device, a FIFO or a multi-gigabyte file;
* :func:`check_allocation` compares a size read from a file with the memory this process
  may still use, before anything of that size is allocated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import stat
from pathlib import Path


class TooLargeError(ValueError):
    """A size read from a file (an array's shape, a network's width) exceeds what this
    machine can hold, or what the file itself can hold."""


def default_mode(directory: bool = False) -> int:
    """The permissions a plain ``open`` / ``mkdir`` would give under the current umask.

    ``tempfile.mkstemp`` / ``mkdtemp`` create private (0600 / 0700) entries; a file renamed
    into place from one would stay unreadable to the group and others.
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def publish_permissions(path: str | Path, directory: bool = False) -> None:
    """Give a temporary file or directory (about to be renamed into place) the default mode."""
    os.chmod(path, default_mode(directory))


# ------------------------------------------------------------------ temporary names
def temp_prefix(name: str) -> str:
    """The prefix of a temporary entry written on the way to ``name``: hidden, and naming
    this process (``.NAME.PID.``), so :func:`remove_stale_temps` can tell it is dead."""
    return f".{name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(directory: str | Path, name: str) -> list[Path]:
    """Remove the temporary entries for ``name`` in ``directory`` whose writer (the process
    named in them by :func:`temp_prefix`) no longer runs; returns what was removed.

    A writer killed between creating its temporary file and renaming it leaves it behind;
    this is the only way such debris goes. Entries of live writers are left alone.
    """
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\.[^/]+$")
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


# ------------------------------------------------------------------ swapping directories
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():  # the libc function, or None where there is none
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap the entries at ``a`` and ``b`` in one atomic step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); False where the system or the file system cannot, and nothing
    was changed."""
    function = _renameat2()
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(os.fspath(a)), _AT_FDCWD, os.fsencode(os.fspath(b)), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


# ------------------------------------------------------------------ bounded reads
def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` when it is a regular file (a symbolic link to one is followed)
    of at most ``limit`` bytes; an error naming ``what`` otherwise, before reading it (a
    device such as /dev/zero, a FIFO, a directory or a huge file is never read)."""
    path = Path(path)
    info = os.stat(path)  # FileNotFoundError for a missing file or a broken link
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {path} is not a regular file; refusing to read it")
    if info.st_size > limit:
        raise TooLargeError(f"{what} {path} is {format_bytes(info.st_size)}, more than the "
                            f"{format_bytes(limit)} such a file can be; refusing to read it")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{what} {path} grew beyond {format_bytes(limit)} while it was read")
    return data


# ------------------------------------------------------------------ memory
def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) memory limit still allows, where one is set."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_limit() -> int | None:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def available_memory() -> int | None:
    """Bytes this process may still allocate: the least of the system's available memory,
    the cgroup's remaining limit and the address-space limit (None when none is known)."""
    known = [v for v in (_meminfo_available(), _cgroup_available(), _address_space_limit()) if v is not None]
    return min(known) if known else None


def check_allocation(n_bytes: int, what: str, fix: str = "") -> None:
    """Raise :class:`TooLargeError` when ``what`` (``n_bytes``, a size read from a file) is
    more than this process can allocate; ``fix`` says what to do instead."""
    available = available_memory()
    if available is not None and n_bytes > available:
        raise TooLargeError(f"{what} needs {format_bytes(n_bytes)} of memory, but {format_bytes(available)} "
                            f"is available{'; ' + fix if fix else ''}")


__all__ = ["TooLargeError", "available_memory", "check_allocation", "default_mode", "exchange",
           "format_bytes", "publish_permissions", "read_bounded", "remove_stale_temps", "temp_prefix"]
