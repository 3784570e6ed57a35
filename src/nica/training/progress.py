"""The progress bar of a fit: steps as they happen, the running training ELBO in the units
the caller reports it in, and, with several restarts, how far their ELBOs spread.

The bar moves every step and its ELBO refreshes about twice a second, so a long epoch on
a busy machine never leaves it still; the ELBO shown at the end is the last epoch's mean,
the number :attr:`nica.IVAE.elbo_` holds for a single restart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

#: seconds between refreshes of the running ELBO
REFRESH_SECONDS = 0.5


class FitProgress:
    """A tqdm bar over the steps of a fit.

    Parameters
    ----------
    total, initial : the step budget and the steps already done (a resumed fit).
    enabled : show the bar at all.
    score_offset : subtracted from every training score shown (per sample), e.g. the
        log-determinant of a standardisation of x, so that the bar shows it in the units of x.
    score_name : what the bar calls the score (``"ELBO"``; ``"log-lik."`` for a flow).
    """

    def __init__(self, total: int, initial: int, enabled: bool, score_offset: float = 0.0,
                 score_name: str = "ELBO") -> None:
        self.enabled = enabled
        self.offset = float(score_offset)
        self.score_name = score_name
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, desc="fit", unit="step",
                        leave=False, mininterval=REFRESH_SECONDS)
        self.last = time.monotonic()

    def step(self, score_sum: torch.Tensor, n_good: int) -> None:
        """One step done; ``score_sum`` ``(K,)`` sums the epoch's per-batch scores so far."""
        self.bar.update(1)
        now = time.monotonic()
        if now - self.last >= REFRESH_SECONDS and n_good:
            self.last = now
            self.show((score_sum / n_good).tolist(), refresh=False)

    def show(self, model_score: Sequence[float], refresh: bool = True) -> None:
        """Show the mean training score per sample; with K > 1 restarts, their range too.
        At the end of an epoch (``refresh``) the bar is redrawn at once, so that the last
        score it shows is the final epoch's mean."""
        values = [v - self.offset for v in model_score]
        text = f"{self.score_name} {sum(values) / len(values):.3f}"
        if len(values) > 1:
            text += f" (restarts {min(values):.3f} to {max(values):.3f})"
        self.bar.set_postfix_str(text, refresh=refresh)

    def close(self) -> None:
        self.bar.close()


__all__ = ["FitProgress", "REFRESH_SECONDS"]
