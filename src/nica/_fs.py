"""File-system helpers shared by every atomic write."""

from __future__ import annotations

import os
from pathlib import Path


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
