"""The paper's experiments, reproduced: ``nica reproduce NAME``.

One module per experiment, each an :class:`~nica.experiments._core.Experiment` with a
``full`` (the paper's sizes), ``quick`` (minutes on 2 CPU cores) and ``smoke`` (the
tests') configuration; :data:`EXPERIMENTS` names them in the paper's order, and
:func:`register_experiment` adds one (docs/architecture.md has the recipe).
:func:`run_experiment` runs one (fits in parallel over worker processes, one torch
thread each, the same rows for any number of workers) and writes ``OUT/NAME.csv``
(one row per fit, columns :data:`FIELDS`) and ``OUT/NAME.png``. docs/results.md holds
the commands and our measured numbers beside the paper's.
"""

from __future__ import annotations

from nica.experiments import (
    causal,
    dependent_latents,
    discrete,
    dynamics,
    easy,
    energy_landscape,
    iflow,
    latent_dim,
    regimes,
    segments,
    select_dim,
    select_hparams,
    switching,
    temporal,
)
from nica.experiments._core import (
    FIELDS,
    SEED_BASE,
    SIZES,
    Experiment,
    ExperimentResult,
    Task,
    default_seeds,
    read_results,
)
from nica.experiments._registry import EXPERIMENTS, get_experiment, register_experiment
from nica.experiments._runner import replot, run_experiment

# the paper's experiments, in the paper's order
for _module in (dynamics, latent_dim, segments, easy, discrete, select_dim, select_hparams, iflow, causal):
    register_experiment(_module.EXPERIMENT)
# tasks of later papers where iVAE is the baseline
for _module in (dependent_latents, temporal, regimes, switching, energy_landscape):
    register_experiment(_module.EXPERIMENT)
del _module

__all__ = ["EXPERIMENTS", "FIELDS", "SEED_BASE", "SIZES", "Experiment", "ExperimentResult", "Task",
           "default_seeds", "get_experiment", "read_results", "register_experiment", "replot",
           "run_experiment"]
