"""The paper's experiments, reproduced: ``nica reproduce NAME``.

One module per experiment, each an :class:`~nica.experiments._core.Experiment` with a
``full`` (the paper's sizes), ``quick`` (minutes on 2 CPU cores) and ``smoke`` (the
tests') configuration; :data:`EXPERIMENTS` names them in the paper's order.
:func:`run_experiment` runs one (fits in parallel over worker processes, one torch
thread each, the same rows for any number of workers) and writes ``OUT/NAME.csv``
(one row per fit, columns :data:`FIELDS`) and ``OUT/NAME.png``. docs/results.md holds
the commands and our measured numbers beside the paper's.
"""

from __future__ import annotations

from nica.experiments import (
    discrete,
    dynamics,
    easy,
    iflow,
    latent_dim,
    segments,
    select_dim,
    select_hparams,
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
    replot,
    run_experiment,
)

#: name -> experiment, in the paper's order
EXPERIMENTS: dict[str, Experiment] = {
    module.EXPERIMENT.name: module.EXPERIMENT
    for module in (dynamics, latent_dim, segments, easy, discrete, select_dim, select_hparams, iflow)
}


def get_experiment(name: str) -> Experiment:
    """The registered experiment called ``name``."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} "
                         "(nica reproduce --list)") from None


from nica.experiments.command import reproduce_command  # noqa: E402  (needs the registry)

__all__ = ["EXPERIMENTS", "FIELDS", "SEED_BASE", "SIZES", "Experiment", "ExperimentResult", "Task",
           "default_seeds", "get_experiment", "read_results", "replot", "reproduce_command",
           "run_experiment"]
