"""What :func:`nica.consistency` returns: the agreement of the model's seeds and of the
references, in words (:meth:`ConsistencyResult.summary`), as JSON
(:meth:`ConsistencyResult.to_dict`) and as files (:meth:`ConsistencyResult.save`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nica.datasets.io import atomic_write, refuse_existing, save_npz
from nica.metrics.agreement import SeedAgreement
from nica.replication._plot import REFERENCE_LABELS, plot_consistency

#: the files :meth:`ConsistencyResult.save` writes into its folder
SAVED_FILES = ("consistency.json", "consistency.png", "latents.npz")
#: how far above chance and the VAE a model must agree to be called consistent (and
#: within what of them it is called not consistent); docs/real-data.md
MARGIN = 0.1


@dataclass
class ConsistencyResult:
    """The outcome of :func:`nica.consistency`.

    Attributes
    ----------
    model : the estimator's class name (``"IFlow"``, ``"IVAE"``, ...); model_name: its
        name in :data:`nica.MODELS`; reason: why ``"auto"`` chose it ("" when named).
    seeds : the model seeds; n_components : n.
    agreement : :class:`nica.metrics.SeedAgreement` of the model's fits.
    references : reference name -> its :class:`~nica.metrics.SeedAgreement`.
    rotated : whether each fit saw its own random rotation of the whitened X.
    holdout, n_fit_rows, n_eval_rows : the fraction held out, the rows fitted on and the
        rows agreement was measured on (all rows when ``holdout`` is 0).
    threshold : components below it are named as not replicating.
    chance_mcc : the MCC between seeds expected when the latents are pinned down only up
        to a rotation (:func:`nica.metrics.chance_agreement`; 0.73 for n = 5).
    rows : ``(n_eval_rows,)`` the indices of the rows of X agreement was measured on (None
        when it was measured on new rows, ``X_eval``: then ``new_rows`` is True).
    cpu_seconds, wall_seconds : group (``"model"`` or a reference) -> seconds of each fit
        (process CPU time of its single-threaded worker; wall time).
    latents : ``(K, n_eval_rows, n)`` the latents of every model fit on the evaluation
        rows, each fit's columns matched (order and sign) to the anchor fit's.
    """

    model: str
    model_name: str
    reason: str
    seeds: list[int]
    n_components: int
    agreement: SeedAgreement
    references: dict[str, SeedAgreement]
    rotated: bool
    holdout: float
    n_fit_rows: int
    n_eval_rows: int
    threshold: float
    chance_mcc: float = float("nan")
    new_rows: bool = False
    rows: np.ndarray | None = None
    cpu_seconds: dict[str, list[float]] = field(default_factory=dict)
    wall_seconds: dict[str, list[float]] = field(default_factory=dict)
    latents: np.ndarray | None = None

    # ---------------------------------------------------------------- headline numbers
    @property
    def mcc(self) -> float:
        """Mean strong MCC over the pairs of the model's seeds."""
        return self.agreement.mcc

    @property
    def weak_mcc(self) -> float:
        """Mean weak (CCA-aligned) MCC over the pairs of the model's seeds."""
        return self.agreement.weak_mcc

    @property
    def per_component(self) -> np.ndarray:
        """``(n,)`` each latent's agreement across seeds (see :class:`~nica.metrics.SeedAgreement`)."""
        return self.agreement.per_component

    @property
    def reference(self) -> str | None:
        """The first reference's name (the one ``reference_mcc`` reports), or None."""
        return next(iter(self.references), None)

    @property
    def reference_mcc(self) -> float | None:
        """The first reference's mean strong MCC between seeds (None without references)."""
        return None if self.reference is None else self.references[self.reference].mcc

    def not_replicating(self) -> list[int]:
        """Indices of the latents whose agreement across seeds is below ``threshold``."""
        return [int(i) for i in np.flatnonzero(self.per_component < self.threshold)]

    # ---------------------------------------------------------------- outputs
    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON values: ``mcc``, ``weak_mcc``, ``per_component``,
        ``reference_mcc`` first, then the details."""
        return {
            "mcc": self.mcc, "weak_mcc": self.weak_mcc, "per_component": self.per_component.tolist(),
            "reference_mcc": self.reference_mcc, "reference": self.reference,
            "chance_mcc": self.chance_mcc, "not_replicating": self.not_replicating(), "threshold": self.threshold,
            "model": self.model, "model_name": self.model_name, "reason": self.reason, "seeds": self.seeds,
            "n_components": self.n_components, "rotated": self.rotated, "holdout": self.holdout,
            "new_rows": self.new_rows, "n_fit_rows": self.n_fit_rows, "n_eval_rows": self.n_eval_rows,
            "agreement": self.agreement.to_dict(),
            "references": {name: a.to_dict() for name, a in self.references.items()},
            "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        """The result in words: the model's agreement beside the references' and chance,
        each component's, the components that do not replicate, and what it says."""
        a = self.agreement
        why = f" (auto: {self.reason})" if self.reason else ""
        rows = (f"{self.n_eval_rows} new rows (X_eval; fitted on all {self.n_fit_rows} rows of X)" if self.new_rows
                else f"{self.n_eval_rows} held-out rows ({self.holdout:.0%}; fitted on the other {self.n_fit_rows})"
                if self.holdout else f"all {self.n_eval_rows} rows (fitted and measured on the same rows)")
        lines = [f"{self.model}{why}, n = {self.n_components}, seeds {_seed_list(self.seeds)}; agreement "
                 f"measured on {rows}"]
        if self.rotated:
            lines.append("each fit saw X whitened and under a random rotation of its own, so seeds cannot agree "
                         "merely by starting alike")
        labels = {"model": "model", **{name: _label(name) for name in self.references}}
        width = max(len(v) for v in [*labels.values(), "chance (latents fixed up to a rotation)"]) + 2
        lines.append(f"{'':<{width}}{'MCC between seeds':>20}{'weak MCC':>18}")
        lines.append(_row("model", a, width))
        for name, ref in self.references.items():
            lines.append(_row(labels[name], ref, width))
        lines.append(f"{'chance (latents fixed up to a rotation)':<{width}}{self.chance_mcc:>12.3f}")
        per = "  ".join(f"z{i + 1} {v:.3f}" for i, v in enumerate(self.per_component))
        lines.append(f"per component (seed {self.seeds[a.anchor]}'s latents, each matched in the other "
                     f"seeds): {per}")
        bad = self.not_replicating()
        if bad:
            named = ", ".join(f"z{i + 1} ({self.per_component[i]:.3f})" for i in bad)
            lines.append(f"not replicating (agreement below {self.threshold:.2f}): {named}")
        else:
            lines.append(f"every component replicates (agreement >= {self.threshold:.2f})")
        lines.extend(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> list[str]:
        """What the numbers say, in one or two sentences."""
        floor = max([self.chance_mcc, *(r.mcc for name, r in self.references.items() if name != "shuffled-u")])
        what = "chance" if floor == self.chance_mcc else "the " + REFERENCE_LABELS.get(
            next(n for n, r in self.references.items() if r.mcc == floor), "reference")
        gap = self.mcc - floor
        if self.mcc >= self.threshold and gap >= MARGIN:
            out = [f"Consistent: the seeds agree at {self.mcc:.3f}, {gap:.2f} above {what} ({floor:.3f}), the "
                   "higher of chance and the agreement of the references without identifiability."]
        elif gap < MARGIN:
            good = [f"z{i + 1}" for i in range(self.n_components) if i not in self.not_replicating()]
            out = [f"Not clearly consistent beyond a model without identifiability: the seeds agree at "
                   f"{self.mcc:.3f}, {gap:+.2f} against {what} ({floor:.3f}), less than the {MARGIN:.2f} by which "
                   "the model's own seeds can exceed it on data where nothing is identifiable; "
                   + (f"{', '.join(good)} replicate, but read them with care." if good
                      else "do not read meaning into single components.")]
        else:
            good = [f"z{i + 1}" for i in range(self.n_components) if i not in self.not_replicating()]
            out = [f"Partly consistent: the seeds agree at {self.mcc:.3f}, {gap:.2f} above {what} ({floor:.3f}), "
                   f"but below {self.threshold:.2f}; " + (f"{', '.join(good)} replicate." if good else
                                                          "no single component replicates.")]
        if "shuffled-u" in self.references:
            shuffled = self.references["shuffled-u"].mcc
            if shuffled >= self.mcc - MARGIN / 3:
                out.append(f"With u shuffled the same model agrees about as well ({shuffled:.3f}): what pins the "
                           "latents down here is in x itself (e.g. heavy-tailed sources), not in u.")
            else:
                out.append(f"With u shuffled the same model agrees less ({shuffled:.3f}): u is part of what pins "
                           "the latents down.")
        return out

    def plot(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """The figure: each component's agreement across seeds beside the references'
        (:func:`nica.replication.plot_consistency`), written atomically as PNG."""
        return plot_consistency(self, path, overwrite=overwrite)

    def save(self, out: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write :data:`SAVED_FILES` into folder ``out``: the JSON, the figure and the
        model's latents of the evaluation rows; only those files are replaced, and only
        with ``overwrite`` (checked before anything is written)."""
        out = Path(out)
        for name in SAVED_FILES:
            refuse_existing(out / name, overwrite)
        text = self.to_json().encode()
        written = [atomic_write(out / SAVED_FILES[0], lambda fh: fh.write(text), overwrite=overwrite),
                   self.plot(out / SAVED_FILES[1], overwrite=overwrite)]
        latents = self.latents if self.latents is not None else np.empty((0, 0, self.n_components))
        written.append(save_npz(out / SAVED_FILES[2], overwrite=overwrite, latents=latents,
                                seeds=np.asarray(self.seeds), per_component=self.per_component))
        return written


def _label(name: str) -> str:
    return f"reference: {REFERENCE_LABELS.get(name, name)}"


def _row(label: str, a: SeedAgreement, width: int) -> str:
    return f"{label:<{width}}{a.mcc:>12.3f} ± {a.mcc_std:.3f}{a.weak_mcc:>10.3f} ± {a.weak_mcc_std:.3f}"


def _seed_list(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


__all__ = ["REFERENCE_LABELS", "SAVED_FILES", "ConsistencyResult"]
