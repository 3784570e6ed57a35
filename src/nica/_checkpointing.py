"""Former home of a fit's checkpoints, now :mod:`nica.base.checkpointing` (kept so that
``from nica._checkpointing import checkpoints_beside`` keeps working)."""

from nica.base.checkpointing import aux_identity, checkpoints_beside, fit_checkpointing, working_folder

__all__ = ["aux_identity", "checkpoints_beside", "fit_checkpointing", "working_folder"]
