"""Choosing the latent dimension by the ELBO (the paper's proposal, Fig. 6b).

:func:`select_n_components` fits one :class:`nica.IVAE` per candidate ``n_components``
and picks n from the curve of their ELBOs per sample, without ever seeing sources::

    from nica.model_selection import select_n_components

    result = select_n_components(x, u, candidates=range(2, 9), random_state=0)
    result.n_components            # the chosen n
    result.model                   # its fitted IVAE
    result.plot()                  # the ELBO curve, the choice marked

Three things make the curve informative (``docs/results.md``, select-dim):

* The models are fitted on the **plain ELBO** (``objective="elbo"``), not the library's
  default reweighted objective, which is not a bound on log p(x | u) and charges for
  every latent whatever the data.
* The decoder variance is **learned** (``decoder_var="learned"``). A fixed variance
  declares that share of each standardised feature noise, so a source that moves x by
  less than that costs a model without it almost nothing; with the noise level a
  parameter, leaving out a real source costs nats, an extra latent next to none.
* With ``n_restarts`` > 1 each n keeps its restart with the best training ELBO
  (``selection="elbo"``): a candidate is scored by its best fit, so one bad optimum at
  the true n does not hand the choice to a larger n.

Beyond the true n the ELBO is flat (an unused latent can copy its prior, at no cost), so
its argmax falls on any n at or above the true one by fit-to-fit noise. The default rule,
``"knee"``, takes the smallest n that reaches ``fraction`` (95%) of the ELBO gain from the
smallest candidate to the best; ``"argmax"`` is the plain maximum.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nica._random import draw_seed
from nica._validation import AuxEncoder, check_observations, check_same_length
from nica._model_dir import check_model_output
from nica.datasets.io import atomic_write, refuse_existing
from nica.datasets.tabular import split_aux
from nica.ivae.settings import SHAPE_DEFAULTS
from nica.ivae.estimator import IVAE
from nica.training.checkpoint import CHECKPOINT_FILE

#: the estimator settings under which fits are compared by their ELBO (here: of different
#: n; ``nica reproduce select-hparams``: of different hyperparameters); overridable
ELBO_SELECTION_SETTINGS: Mapping[str, Any] = {
    "objective": "elbo", "decoder_var": "learned", "selection": "elbo",
    # one setting for every candidate n, so that their ELBOs compare: the estimator's
    # shape-dependent defaults would switch at n = d (the prior network, a table for
    # labels and an MLP for continuous u, and the step budget are set per selection)
    **{k: v for k, v in SHAPE_DEFAULTS["square"].items() if k not in ("prior_net", "max_steps")},
}
#: the training budget of every candidate unless the caller sets ``max_steps``
SELECTION_STEPS = SHAPE_DEFAULTS["square"]["max_steps"]

#: share of the ELBO gain (smallest candidate -> best) at which the knee rule stops
KNEE_FRACTION = 0.95
#: optimiser steps per fit with which the choice was validated (select-dim: the true n in
#: 13 of 15 data sets); shorter fits stop before the curve settles and tend to choose a
#: larger n (n = 4 for a true 3 at 500 and 2,000 steps), so they are warned about
VALIDATED_MAX_STEPS = 10_000

RULES = ("knee", "argmax")

FIGURE_SIZE = (4.5, 3.2)

#: what :meth:`DimensionSelection.save` writes into its directory
SAVED_FILES = ("elbo.csv", "elbo.png", "model")


def check_saved_files(directory: str | Path, overwrite: bool) -> None:
    """Refuse, before any fit, outputs of :meth:`SelectionResult.save` in ``directory``
    that exist without ``overwrite``, or a ``model`` folder that is not a model nica saved."""
    for name in SAVED_FILES:
        if name == "model":
            check_model_output(Path(directory) / name, overwrite)
        else:
            refuse_existing(Path(directory) / name, overwrite)


def select_argmax(dims: Sequence[int], elbo: Sequence[float]) -> int:
    """The n with the highest ELBO. ``dims`` and ``elbo``: ``(n_candidates,)``."""
    return int(dims[int(np.nanargmax(elbo))])


def select_knee(dims: Sequence[int], elbo: Sequence[float], fraction: float = KNEE_FRACTION) -> int:
    """The smallest n whose ELBO reaches ``fraction`` of the gain from the smallest n to the best.

    ``dims``: ``(n_candidates,)`` ascending; ``elbo``: ``(n_candidates,)``, the ELBO for each.
    """
    elbo = np.asarray(elbo, dtype=float)
    best = np.nanmax(elbo)
    threshold = elbo[0] + fraction * (best - elbo[0])
    return int(dims[int(np.nonzero(elbo >= threshold)[0][0])])


def choose(dims: Sequence[int], elbo: Sequence[float], rule: str = "knee",
           fraction: float = KNEE_FRACTION) -> int:
    """n chosen from an ELBO curve by ``rule`` (``"knee"`` or ``"argmax"``)."""
    if rule == "knee":
        return select_knee(dims, elbo, fraction)
    if rule == "argmax":
        return select_argmax(dims, elbo)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


@dataclass
class DimensionSelection:
    """What :func:`select_n_components` found.

    ``candidates``: ``(k,)`` ascending; ``elbo``: ``(k,)`` ELBO per sample of each fitted
    model (on the validation data when given, else on the fitted data; units of X);
    ``n_components``: the chosen n; ``models``: candidate -> fitted :class:`nica.IVAE`.
    """

    candidates: tuple[int, ...]
    elbo: np.ndarray
    n_components: int
    rule: str
    fraction: float
    models: dict[int, IVAE] = field(repr=False)

    @property
    def model(self) -> IVAE:
        """The fitted model with the chosen n."""
        return self.models[self.n_components]

    @property
    def argmax(self) -> int:
        """The n the ``"argmax"`` rule picks from this curve."""
        return select_argmax(self.candidates, self.elbo)

    @property
    def knee(self) -> int:
        """The n the ``"knee"`` rule (at :attr:`fraction`) picks from this curve."""
        return select_knee(self.candidates, self.elbo, self.fraction)

    def table(self) -> str:
        """The ELBO curve as text, the choice marked."""
        lines = ["n_components  ELBO per sample"]
        for n, value in zip(self.candidates, self.elbo):
            mark = f"  <- chosen ({self.rule})" if n == self.n_components else ""
            lines.append(f"{n:>12}  {value:15.4f}{mark}")
        return "\n".join(lines)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``elbo.csv`` (the curve), ``elbo.png`` (:meth:`plot`) and ``model/`` (the
        chosen fitted model, :meth:`nica.IVAE.save`) into ``directory``, each atomically;
        existing files are replaced only with ``overwrite`` (all are checked first)."""
        directory = Path(directory)
        paths = {name: directory / name for name in SAVED_FILES}
        check_saved_files(directory, overwrite)
        lines = ["n_components,elbo_per_sample,chosen"] + [
            f"{n},{value!r},{int(n == self.n_components)}" for n, value in zip(self.candidates, self.elbo.tolist())]
        atomic_write(paths["elbo.csv"], lambda fh: fh.write(("\n".join(lines) + "\n").encode()), overwrite=overwrite)
        from matplotlib.figure import Figure  # no pyplot: the user's backend is left alone

        figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
        self.plot(figure.add_subplot())
        atomic_write(paths["elbo.png"], lambda fh: figure.savefig(fh, format="png", dpi=110), overwrite=overwrite)
        self.model.save(paths["model"], overwrite=overwrite)
        return directory

    def plot(self, ax: Any = None) -> Any:
        """The ELBO against n with the chosen n marked; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=FIGURE_SIZE, layout="constrained")
        ax.plot(self.candidates, self.elbo, "o-", color="C0")
        ax.axvline(self.n_components, color="k", linestyle="--", linewidth=1,
                   label=f"chosen n = {self.n_components} ({self.rule})")
        ax.set_xticks(list(self.candidates))
        ax.set_xlabel("n_components")
        ax.set_ylabel("ELBO per sample")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return ax


def _check_candidates(candidates: Iterable[int], n_features: int) -> tuple[int, ...]:
    values = list(candidates)
    for n in values:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"candidates must be positive integers, got {n!r}")
    dims = tuple(sorted({int(n) for n in values}))
    if len(dims) < 2:
        raise ValueError(f"candidates needs at least two different n to compare, got {values!r}")
    if dims[-1] > n_features:
        raise ValueError(f"candidate n_components={dims[-1]} exceeds the {n_features} features of X; "
                         "iVAE needs n_components <= n_features")
    return dims


def _checkpoint_folder(checkpoint_dir: str | Path, n: int) -> Path:
    return Path(checkpoint_dir) / f"n{n}"


def select_n_components(
    X: Any,
    u: Any = None,
    candidates: Iterable[int] | None = None,
    *,
    rule: str = "knee",
    fraction: float = KNEE_FRACTION,
    validation_data: tuple[Any, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    random_state: int | np.random.Generator | None = None,
    progress: bool = True,
    **params: Any,
) -> DimensionSelection:
    """Fit an iVAE for every candidate latent dimension and choose n by the ELBO.

    Parameters
    ----------
    X, u : as :meth:`nica.IVAE.fit`: ``(n_samples, n_features)`` observations and the
        auxiliary variable.
    candidates : the n_components to try (default 1 .. n_features), each <= n_features.
    rule : ``"knee"`` (smallest n reaching ``fraction`` of the ELBO gain from the smallest
        candidate to the best; default) or ``"argmax"``.
    validation_data : ``(X_val, u_val)`` to score the models on held-out rows; by default
        they are scored on (X, u).
    checkpoint_dir : each candidate's fit checkpoints to ``checkpoint_dir/n<k>``; with
        ``resume=True`` an interrupted selection continues (finished fits are not redone).
    random_state : one seed drawn from it seeds every candidate's fit.
    progress : a progress bar over the candidates.
    **params : any other :class:`nica.IVAE` parameter (``n_restarts``, ``max_steps``, ...);
        ``objective``, ``decoder_var`` and ``selection`` default to
        :data:`ELBO_SELECTION_SETTINGS` (plain ELBO, learned variance, the restart
        with the best ELBO kept).

    Every input and parameter is checked before the first fit starts.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if "n_components" in params or "random_state" in params or "checkpoint_dir" in params:
        raise TypeError("n_components, random_state and checkpoint_dir are set per candidate: "
                        "pass candidates=, random_state= and checkpoint_dir= to select_n_components")
    settings = {**ELBO_SELECTION_SETTINGS, **params}
    steps = settings.get("max_steps", IVAE._param_defaults()["max_steps"])
    if isinstance(steps, (int, np.integer)) and 0 < steps < VALIDATED_MAX_STEPS:
        warnings.warn(
            f"max_steps={steps} per fit is shorter than the {VALIDATED_MAX_STEPS:,} steps this choice was "
            "validated with (the true n in 13 of 15 benchmark data sets, docs/results.md select-dim): "
            "short fits stop before the ELBO curve settles and tend to choose too large an n; raise "
            f"max_steps (CLI: --max-steps) to {VALIDATED_MAX_STEPS:,} or more to trust the choice",
            UserWarning, stacklevel=2,
        )
    X, u = split_aux(X, u)
    settings.setdefault("max_steps", SELECTION_STEPS)
    if "prior_net" not in params and u is not None:
        kind = AuxEncoder(settings.get("u_type", "auto")).fit(u, len(u)).kind
        settings["prior_net"] = "table" if kind == "categorical" else "mlp"
    # data, u and every parameter are checked once, before any fit
    probe = IVAE(1, **settings)
    inputs = probe._fit_inputs(X, u)
    x_checked, aux = inputs.x, inputs.aux
    dims = _check_candidates(range(1, x_checked.shape[1] + 1) if candidates is None else candidates,
                             x_checked.shape[1])
    probe._train_config().validate()
    probe._objective()
    probe._check_restarts()
    if validation_data is not None:
        if not isinstance(validation_data, tuple) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, u_val)")
        x_val, u_val = split_aux(*validation_data)
        x_val_checked = check_observations(x_val, "validation X")
        if x_val_checked.shape[1] != x_checked.shape[1]:
            raise ValueError(f"validation X has {x_val_checked.shape[1]} features, X has {x_checked.shape[1]}")
        check_same_length(x_val_checked, u_val, "validation X", "validation u")
        aux.transform(u_val)  # the same kind of u, no label unseen in u
    else:
        x_val, u_val = X, u
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir: the folder the interrupted selection wrote to")
    if checkpoint_dir is not None and not resume:
        earlier = [n for n in dims if (_checkpoint_folder(checkpoint_dir, n) / CHECKPOINT_FILE).exists()]
        if earlier:
            raise FileExistsError(
                f"{checkpoint_dir} holds checkpoints of an earlier selection (n_components {earlier}); "
                "pass resume=True to continue it, or choose another checkpoint_dir")

    seed = draw_seed(random_state)
    models: dict[int, IVAE] = {}
    elbo = np.empty(len(dims))
    for i, n in enumerate(tqdm(dims, desc="n_components", unit="fit", disable=not progress)):
        where = None if checkpoint_dir is None else _checkpoint_folder(checkpoint_dir, n)
        model = IVAE(n, random_state=seed, checkpoint_dir=where, **settings)
        model.fit(X, u, resume=resume)
        models[n] = model
        elbo[i] = model.score(x_val, u_val)
    return DimensionSelection(dims, elbo, choose(dims, elbo, rule, fraction), rule, fraction, models)
