"""Former home of the iVAE family's save format, now :mod:`nica.ivae._format` (kept so that
``from nica._ivae_format import IVAE_FORMAT`` keeps working)."""

from nica.ivae._format import IVAE_FORMAT, IVAEFormat

__all__ = ["IVAE_FORMAT", "IVAEFormat"]
