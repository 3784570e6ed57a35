"""Former home of a fit's checkpoints, now :mod:`nica.base.checkpointing` (kept so that
``from nica._checkpointing import checkpoints_beside`` keeps working)."""

from nica.base.checkpointing import LOCK_FILE, aux_identity, checkpoints_beside, fit_checkpointing, fit_lock, \
    nica_entries, working_folder

__all__ = ["LOCK_FILE", "aux_identity", "checkpoints_beside", "fit_checkpointing", "fit_lock", "nica_entries",
           "working_folder"]
