"""Sweeps: a grid of data seeds x model seeds x hyperparameters, run on Dask distributed.

``nica sweep CONFIG`` (or :func:`run_sweep`) reads a TOML or YAML file, validates all of
it (and fits every hyperparameter combination for one step) before anything starts, runs
each (data seed, model seed, combination) as one Dask task, and appends one CSV row per
run to the results table as runs finish.  Every run has a stable key, a hash of
everything that determines it; rerunning the same command skips the keys already in the
table, so an interrupted sweep resumes where it stopped.  ``docs/sweeps.md`` has the full
reference.  A config::

    out = "sweep-5-5.csv"            # results table (or --out)

    [data]
    setting = "5-5"                  # a named setting (nica.datasets.settings.BENCHMARK_SETTINGS),
    n_segments = 20                  # then any make_nonstationary argument; or instead
    seeds = [1001, 1002, 1003]       # path = "data.npz" (arrays x, u, s) without seeds

    [model]
    estimator = "IVAE"               # or "VAE"
    preset = "default"               # nica.presets.PRESETS
    seeds = [0, 1]
    max_steps = 4000                 # hyperparameters fixed for every run

    [grid]                           # the cartesian product of these lists
    learning_rate = [1e-2, 3e-3]
    batch_size = [64, 256]

Where the runs execute: by default a local cluster of worker processes (``--workers``,
``--threads-per-worker``; each fit uses ``--torch-threads`` torch threads, 1 by default,
so that workers x threads x torch threads stays within the cores).  ``--scheduler
tcp://host:8786`` uses a running cluster instead (``dask scheduler`` on one machine,
``dask worker tcp://host:8786 --nthreads 1`` on each of the others; every worker needs
nica installed).  On SLURM or PBS, ``dask-jobqueue`` starts the workers as batch jobs
(``pip install dask-jobqueue``)::

    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster      # PBSCluster for PBS
    from nica.sweep import run_sweep

    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00")
    cluster.scale(jobs=32)                      # 32 single-core workers
    with Client(cluster) as client:
        run_sweep("sweep.toml", client=client)

Generated data are simulated on the workers; a data file is read once by the client and
sent to the workers, so they need no shared file system.  One sweep at a time may write
a results table.

The package, one job per module: :mod:`~nica.sweep.config` reads and validates a config
and lists its runs; :mod:`~nica.sweep.table` is the results table and its summary;
:mod:`~nica.sweep.execute` plans a sweep and runs it on Dask (one run per task). The
command ``nica sweep`` is :mod:`nica.cli.sweep`.
"""

from nica.sweep.config import ESTIMATORS, DataSpec, Run, SweepConfig, SweepConfigError, load_config
from nica.sweep.execute import SweepPlan, plan_sweep, run_sweep
from nica.sweep.table import ResultsTable, SweepResult

__all__ = ["ESTIMATORS", "DataSpec", "ResultsTable", "Run", "SweepConfig", "SweepConfigError", "SweepPlan",
           "SweepResult", "load_config", "plan_sweep", "run_sweep"]
