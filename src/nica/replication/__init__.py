"""Consistency across seeds on data without known sources: :func:`consistency` (``nica
consistency``), its result :class:`ConsistencyResult` and figure.

``nica.consistency`` fits the model with several seeds, each on its own random rotation
of the whitened data where the model starts near the identity, and reports how far the
seeds' latents agree (strong and weak MCC, overall and per component) beside the same
measurement for references without identifiability (the same model with u shuffled, the
plain VAE). docs/real-data.md, "Your own data: nica consistency".
"""

from nica.replication._check import DEFAULT_REFERENCES, DEFAULT_THRESHOLD, REFERENCES, consistency
from nica.replication._plot import plot_consistency
from nica.replication._result import SAVED_FILES, ConsistencyResult

__all__ = ["DEFAULT_REFERENCES", "DEFAULT_THRESHOLD", "REFERENCES", "SAVED_FILES", "ConsistencyResult", "consistency",
           "plot_consistency"]
