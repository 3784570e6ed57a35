"""The experiments ``nica reproduce`` knows, by name.

:func:`register_experiment` adds one (the package registers the paper's in the paper's
order); :func:`get_experiment` finds one by name, for the command and for the worker
processes that run its fits.
"""

from __future__ import annotations

from nica.experiments._core import Experiment

#: name -> experiment, in the order of registration (the paper's for the built-in ones)
EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Make ``experiment`` runnable as ``nica reproduce NAME`` (NAME: ``experiment.name``)."""
    if not experiment.name:
        raise ValueError(f"{type(experiment).__name__} has no name: set its class attribute name")
    known = EXPERIMENTS.get(experiment.name)
    if known is not None and type(known).__qualname__ != type(experiment).__qualname__:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The registered experiment called ``name``."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} "
                         "(nica reproduce --list)") from None
