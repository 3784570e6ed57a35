"""Training checkpoints: written atomically, read back without running stored code.

A checkpoint holds everything the training loop needs to continue bit-for-bit: the
model and optimiser state, the learning-rate schedule, the random generator, the
current epoch's batch order and position, the history so far, and the last good state a
non-finite step would roll back to (with the count of failed steps in a row). It is written to a
temporary file in the same directory, flushed to disk and renamed over the previous
one, so a process killed at any moment leaves either the old or the new checkpoint.
Reading uses ``torch.load(weights_only=True)``: tensors and plain containers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._fs import publish_permissions, remove_stale_temps, temp_prefix
from nica.datasets.io import safe_reason

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to another fit."""


@dataclass
class Checkpointing:
    """Where and how often a fit writes checkpoints.

    Attributes
    ----------
    directory : folder of ``checkpoint.pt`` (created if needed).
    every : write after every ``every`` optimisation steps (and at the end of the fit).
    fingerprint : identifies the fit (settings and data); a checkpoint with another
        fingerprint is refused on resume.
    metadata : stored with every checkpoint and returned by ``load`` (e.g. the seed).
    """

    directory: Path
    every: int = 1_000
    fingerprint: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not isinstance(self.every, (int, np.integer)) or isinstance(self.every, bool) or self.every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {self.every!r}")
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"checkpoint directory {self.directory} exists and is not a directory")

    @property
    def path(self) -> Path:
        return self.directory / CHECKPOINT_FILE

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (temp file, fsync, rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.directory, CHECKPOINT_FILE)  # left by a killed writer (never a live one's)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(CHECKPOINT_FILE), dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save({**state, "fingerprint": self.fingerprint, "metadata": self.metadata}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            publish_permissions(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> dict[str, Any] | None:
        """The saved state, None when there is no checkpoint yet; refuses another fit's."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for damaged files
            raise CheckpointError(f"checkpoint {self.path} could not be read ({safe_reason(exc)}); delete it "
                                  "to start over") from None
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to a different fit (other data, settings or seed); "
                "use another checkpoint directory or delete it to start over"
            )
        return state


def fingerprint(settings: dict[str, Any], *arrays: np.ndarray) -> str:
    """A short hash of JSON-able ``settings`` and the bytes of ``arrays``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:32]
