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
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import hashlib
import inspect
import io
import itertools
import json
import logging
import os
import socket
import statistics
import time
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from nica.datasets.io import Dataset, atomic_write, load_dataset
from nica.datasets.nonstationary import make_nonstationary
from nica.datasets.settings import BENCHMARK_SETTINGS
from nica.estimator import IVAE, VAE
from nica.metrics import mean_corr_coef
from nica.presets import PRESETS

#: the estimators a config may name
ESTIMATORS: dict[str, type[IVAE]] = {"IVAE": IVAE, "VAE": VAE}
INSTALL_HINT = 'pip install "nica[distributed]"'

_TOP_KEYS = ("out", "data", "model", "grid")
_DATA_KEYS = ("setting", "path", "seeds", "holdout")
_MODEL_KEYS = ("estimator", "preset", "seeds")
#: make_nonstationary arguments a config may set (the seed comes from data.seeds)
_GENERATOR_ARGS = tuple(p for p in inspect.signature(make_nonstationary).parameters
                        if p not in ("random_state", "dtype"))
#: estimator hyperparameters a config may set (the seed comes from model.seeds)
_HYPERPARAMETERS = tuple(p for p in IVAE(1).get_params() if p != "random_state")
#: hyperparameters that do not change a fit's result, so stay out of run keys
_NOT_IN_KEY = ("random_state", "verbose")

#: leading and trailing columns of the results table; the grid's hyperparameters go between
HEAD_FIELDS = ["run_key", "status", "data", "data_seed", "model_seed", "estimator", "preset"]
TAIL_FIELDS = ["mcc", "heldout_mcc", "elbo", "score", "score_on", "fit_time", "steps",
               "params", "error", "finished_at", "worker"]


class SweepConfigError(ValueError):
    """A sweep config is malformed; the message names the key and the fix."""


# ====================================================================== the config
@dataclass(frozen=True)
class DataSpec:
    """Where a run's data come from: the paper's generator with its arguments, or a file.

    ``generator`` holds every :func:`nica.make_nonstationary` argument but the seed (None
    for a file); ``path`` and ``sha256`` name a file holding ``x``, ``u`` and ``s``;
    ``holdout`` is the fraction of rows held out from fitting (0: evaluate on the
    training rows, the paper's protocol).
    """

    label: str
    n_sources: int
    generator: dict[str, Any] | None = None
    path: Path | None = None
    sha256: str | None = None
    holdout: float = 0.0

    def identity(self) -> dict[str, Any]:
        """What determines the data (a file by its content, not its name), for run keys."""
        source = {"generator": self.generator} if self.path is None else {"file_sha256": self.sha256}
        return {**source, "holdout": self.holdout}

    def load(self, seed: int | None) -> Dataset:
        """The data of one data seed (the file for file data): x ``(N, d)``, u, s ``(N, n)``."""
        if self.path is not None:
            ds = load_dataset(self.path)
            return Dataset(x=_as_2d(ds.x), u=ds.u, s=_as_2d(ds.s))
        return _make_data(self.generator, seed)


@dataclass(frozen=True)
class Run:
    """One fit of a sweep: its key, seeds, grid values and every hyperparameter set by the config."""

    key: str
    data_seed: int | None
    model_seed: int
    combination: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: build it with :func:`load_config` or :meth:`from_dict`.

    Examples
    --------
    >>> config = SweepConfig.from_dict({
    ...     "data": {"n_sources": 2, "n_segments": 5, "n_per_segment": 40, "seeds": [1, 2]},
    ...     "model": {"seeds": [0, 1], "max_steps": 20},
    ...     "grid": {"learning_rate": [1e-2, 3e-3]},
    ... })
    >>> len(config.runs())
    8
    >>> config.combinations()
    [{'learning_rate': 0.01}, {'learning_rate': 0.003}]
    """

    data: DataSpec
    data_seeds: tuple[int | None, ...]
    model_seeds: tuple[int, ...]
    estimator: str = "IVAE"
    preset: str = "default"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    grid: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    out: Path | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base_dir: str | Path = ".") -> SweepConfig:
        """Validate a parsed config; relative paths in it are relative to ``base_dir``."""
        base_dir = Path(base_dir)
        if not isinstance(raw, Mapping):
            raise SweepConfigError(f"a sweep config must be a table of keys, got {type(raw).__name__}")
        _check_keys(raw, _TOP_KEYS, "")
        if "data" not in raw:
            raise SweepConfigError("the config has no [data] section: give data.setting or data.path")
        data, data_seeds = _data_spec(_section(raw, "data"), base_dir)
        model = _section(raw, "model") if "model" in raw else {}
        grid_raw = _section(raw, "grid") if "grid" in raw else {}
        for key in model:
            _check_name(key, "model.", _MODEL_KEYS)
        estimator = _estimator_name(model.get("estimator", "IVAE"))
        preset = model.get("preset", "default")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise SweepConfigError(f"model.preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        model_seeds = _seeds(model.get("seeds", [0]), "model.seeds")
        hints = typing.get_type_hints(IVAE.__init__)
        params = {k: _conform(v, hints[k], f"model.{k}") for k, v in model.items() if k not in _MODEL_KEYS}
        grid = {}
        for name, values in grid_raw.items():
            _check_name(name, "grid.")
            if name in params:
                raise SweepConfigError(f"grid.{name} is also set in [model]; keep it in one place")
            grid[name] = _grid_values(values, hints[name], f"grid.{name}")
        out = raw.get("out")
        if out is not None:
            if not isinstance(out, str) or not out:
                raise SweepConfigError(f'out must be a file name such as "sweep.csv", got {out!r}')
            out = base_dir / out
        return cls(data, data_seeds, model_seeds, estimator, preset, params, grid, out)

    def combinations(self) -> list[dict[str, Any]]:
        """The grid's hyperparameter combinations, in the order of the config's lists."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def runs(self) -> list[Run]:
        """Every run: data seeds, then model seeds, then combinations vary slowest to fastest."""
        runs = []
        for data_seed, model_seed, combination in itertools.product(
                self.data_seeds, self.model_seeds, self.combinations()):
            params = {**self.params, **combination}
            runs.append(Run(self._key(data_seed, model_seed, params), data_seed, model_seed,
                            combination, params))
        return runs

    def estimator_for(self, params: Mapping[str, Any], model_seed: int | None = None) -> IVAE:
        """An unfitted estimator with the preset, then ``params``, then the seed."""
        params = dict(params)
        n_components = params.pop("n_components", self.data.n_sources)
        return ESTIMATORS[self.estimator].from_preset(self.preset, n_components, random_state=model_seed,
                                                      **params)

    def _key(self, data_seed: int | None, model_seed: int, params: Mapping[str, Any]) -> str:
        """16 hex digits of the SHA-256 of the run's canonical JSON: data, seeds, every hyperparameter."""
        hyper = {k: v for k, v in self.estimator_for(params).get_params().items() if k not in _NOT_IN_KEY}
        settings = {"data": self.data.identity(), "data_seed": data_seed, "model_seed": model_seed,
                    "estimator": self.estimator, "hyperparameters": hyper}
        return hashlib.sha256(_canonical_json(settings).encode()).hexdigest()[:16]

    def check(self) -> list[str]:
        """Fit every combination for one step on the first data seed's data, on CPU.

        Catches values the types cannot (``objective="reweigthed"``, ``n_components`` larger
        than the data) before a cluster starts.  Returns the distinct warnings raised
        (e.g. identifiability warnings), each prefixed by the combination that raised it.
        """
        try:
            data = self.data.load(self.data_seeds[0])
        except ValueError as exc:
            raise SweepConfigError(f"data: {exc}") from None
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one-step fits: more threads only add overhead
        try:
            return self._check_combinations(data)
        finally:
            torch.set_num_threads(threads)

    def _check_combinations(self, data: Dataset) -> list[str]:
        found: dict[str, None] = {}
        for combination in self.combinations():
            _check_overridden({**self.params, **combination}, combination)
            model = self.estimator_for({**self.params, **combination, "max_steps": 1, "device": "cpu",
                                        "verbose": False}, model_seed=self.model_seeds[0])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    model.fit(data.x, data.u)
                except (ValueError, TypeError, FloatingPointError) as exc:
                    where = f"grid combination {_describe_combination(combination)}" if combination \
                        else "the [model] settings"
                    raise SweepConfigError(f"{where}: {exc}") from None
            for w in caught:
                prefix = f"{_describe_combination(combination)}: " if combination else ""
                found[prefix + str(w.message)] = None
        return list(found)


def _check_overridden(params: Mapping[str, Any], combination: Mapping[str, Any]) -> None:
    """The settings :meth:`SweepConfig.check` replaces for its one-step fit on CPU."""
    where = f"grid combination {_describe_combination(combination)}: " if combination else ""
    steps = params.get("max_steps", 1)
    if steps < 1:
        raise SweepConfigError(f"{where}max_steps must be a positive integer, got {steps}")
    device = params.get("device", "auto")
    if device != "auto":
        try:
            torch.device(device)
        except (RuntimeError, TypeError):
            raise SweepConfigError(f"{where}device {device!r} is not a torch device; use 'auto', 'cpu' or "
                                   "'cuda'") from None


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config from a ``.toml``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SweepConfigError(f"{path} is not valid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError(f"YAML configs need PyYAML: {INSTALL_HINT}, or write the config as TOML") from None
        try:
            with open(path) as fh:
                raw = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise SweepConfigError(f"{path} is not valid YAML: {_one_line(exc)}") from None
    else:
        raise SweepConfigError(f"unsupported config type {suffix!r} for {path}; use .toml, .yaml or .yml")
    return SweepConfig.from_dict(raw if raw is not None else {}, base_dir=path.parent)


# ---------------------------------------------------------------------- validation helpers
def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw[name]
    if not isinstance(value, Mapping):
        raise SweepConfigError(f"[{name}] must be a table of keys, got {value!r}")
    return value


def _check_keys(section: Mapping[str, Any], allowed: tuple[str, ...], prefix: str,
                hint: Callable[[str], str] | None = None) -> None:
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            where = prefix.rstrip(".") or "the top level"
            extra = hint(prefix) if hint else f"{where} takes {', '.join(allowed)}"
            raise SweepConfigError(f"{prefix}{key}: unknown key; {guess}{extra}")


def _hyperparameter_hint(prefix: str) -> str:
    head = "estimator, preset, seeds and the " if prefix == "model." else "the "
    return f"{prefix.rstrip('.')} takes {head}hyperparameters of IVAE: {', '.join(_HYPERPARAMETERS)}"


def _check_name(name: str, prefix: str, also: tuple[str, ...] = ()) -> None:
    """``name`` is a hyperparameter of the estimator (or one of ``also``)."""
    if name == "random_state":
        raise SweepConfigError(f"{prefix}random_state: set the model seeds with model.seeds = [0, 1, ...]")
    _check_keys({name: None}, also + _HYPERPARAMETERS, prefix, _hyperparameter_hint)


def _data_spec(data: Mapping[str, Any], base_dir: Path) -> tuple[DataSpec, tuple[int | None, ...]]:
    allowed = _DATA_KEYS + _GENERATOR_ARGS
    _check_keys(data, allowed, "data.", lambda _: (
        "data takes setting, path, seeds, holdout and the arguments of make_nonstationary: "
        + ", ".join(_GENERATOR_ARGS)))
    holdout = _conform(data.get("holdout", 0.0), float, "data.holdout")
    if not 0.0 <= holdout < 1.0:
        raise SweepConfigError(f"data.holdout must be a fraction in [0, 1), got {holdout}")
    if "path" in data:
        extra = [k for k in data if k in _GENERATOR_ARGS or k in ("setting", "seeds")]
        if extra:
            raise SweepConfigError(
                f"data.path reads the data from a file; remove data.{extra[0]} (it describes "
                "generated data)")
        return _file_spec(data["path"], base_dir, holdout), (None,)
    setting = data.get("setting")
    if setting is not None and (not isinstance(setting, str) or setting not in BENCHMARK_SETTINGS):
        raise SweepConfigError(f"data.setting: unknown setting {setting!r}; choose one of "
                               f"{list(BENCHMARK_SETTINGS)} or give make_nonstationary arguments")
    hints = typing.get_type_hints(make_nonstationary)
    explicit = {k: _conform(v, hints[k], f"data.{k}") for k, v in data.items() if k in _GENERATOR_ARGS}
    bound = inspect.signature(make_nonstationary).bind_partial(
        **{**BENCHMARK_SETTINGS.get(setting, {}), **explicit})
    bound.apply_defaults()
    generator = {k: v for k, v in bound.arguments.items() if k in _GENERATOR_ARGS}
    if "seeds" not in data:
        raise SweepConfigError("data.seeds is missing: list the data seeds, e.g. seeds = [1001, 1002]")
    changes = ",".join(f"{k}={_cell(v)}" for k, v in explicit.items())
    label = (setting or "generated") + (f"({changes})" if changes else "")
    return DataSpec(label, generator["n_sources"], generator=generator, holdout=holdout), \
        _seeds(data["seeds"], "data.seeds")


def _file_spec(path: Any, base_dir: Path, holdout: float) -> DataSpec:
    if not isinstance(path, str) or not path:
        raise SweepConfigError(f'data.path must be a file name such as "data.npz", got {path!r}')
    full = base_dir / path
    if not full.is_file():
        raise SweepConfigError(f"data.path: file not found: {full}")
    try:
        ds = load_dataset(full)
    except ValueError as exc:
        raise SweepConfigError(f"data.path: {exc}") from None
    missing = [name for name in ("u", "s") if getattr(ds, name) is None]
    if missing:
        raise SweepConfigError(f"data.path: {full} has no array {missing[0]!r}; a sweep needs x, u and s "
                               "(the true sources, for MCC)")
    digest = hashlib.sha256(full.read_bytes()).hexdigest()
    return DataSpec(full.name, _as_2d(ds.s).shape[1], path=full, sha256=digest, holdout=holdout)


def _estimator_name(name: Any) -> str:
    for known in ESTIMATORS:
        if isinstance(name, str) and name.upper() == known:
            return known
    raise SweepConfigError(f"model.estimator: unknown estimator {name!r}; choose one of {list(ESTIMATORS)}")


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise SweepConfigError(f"{where} must be a non-empty list of integers, e.g. seeds = [0, 1, 2]")
    for seed in value:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SweepConfigError(f"{where} must hold non-negative integers, got {seed!r}")
    if len(set(value)) != len(value):
        raise SweepConfigError(f"{where} lists a seed twice: {value}")
    return tuple(value)


def _grid_values(values: Any, hint: Any, where: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise SweepConfigError(f"{where} must be a non-empty list of values, e.g. {where.split('.')[-1]} = "
                               "[a, b]; set a single value in [model] instead")
    out = [_conform(v, hint, f"{where}[{i}]") for i, v in enumerate(values)]
    for i, v in enumerate(out):
        if v in out[:i]:
            raise SweepConfigError(f"{where} lists {v!r} twice")
    return out


def _conform(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against a type hint; ints become floats and lists tuples where those are expected."""
    is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if is_union else (hint,)
    for option in options:
        try:
            return _conform_one(value, option)
        except TypeError:
            continue
    raise SweepConfigError(f"{where} must be {' or '.join(_describe_type(o) for o in options)}, got {value!r}")


def _conform_one(value: Any, option: Any) -> Any:
    if option is type(None):
        if value is None:
            return None
    elif option is bool:
        if isinstance(value, bool):
            return value
    elif option is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif option is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif option is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(option) is tuple:
        args = typing.get_args(option)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_conform_one(v, a) for v, a in zip(value, args))
    else:
        return value  # a type a config file cannot spell (e.g. a numpy Generator): no check
    raise TypeError(option)


def _describe_type(option: Any) -> str:
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typing.get_origin(option) is tuple:
        return f"a list of {len(typing.get_args(option))} numbers"
    return names.get(option, getattr(option, "__name__", str(option)))


def _describe_combination(combination: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in combination.items()) + "}"


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a[:, None] if a.ndim == 1 else a


# ====================================================================== one run, on a worker
def _make_data(generator: Mapping[str, Any], seed: int | None) -> Dataset:
    """The generated data of one data seed: x ``(N, d)``, u ``(N,)``, s ``(N, n)``."""
    data = make_nonstationary(**generator, random_state=seed)
    return Dataset(x=data.x, u=data.u, s=data.s)


def _split(u: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out row indices; categorical u is split within each label."""
    rng = np.random.default_rng(seed)
    n = len(u)
    labels = np.unique(u, axis=0, return_inverse=True)[1].reshape(n)
    groups = [np.nonzero(labels == g)[0] for g in range(labels.max() + 1)] if labels.max() < n // 2 \
        else [np.arange(n)]
    held = np.concatenate([rng.permutation(g)[: round(fraction * len(g))] for g in groups])
    mask = np.zeros(n, bool)
    mask[held] = True
    return np.nonzero(~mask)[0], np.nonzero(mask)[0]


def _fit_and_evaluate(data: Dataset, model: IVAE, holdout: float, split_seed: int) -> dict[str, Any]:
    """Fit on the training rows; MCC of the posterior mean, training ELBO, score and time."""
    x, u, s = data.x, data.u, data.s
    train, test = _split(u, holdout, split_seed) if holdout > 0 else (np.arange(len(x)), None)
    model.fit(x[train], u[train])
    z = model.transform(x[train], u[train])
    measured: dict[str, Any] = {
        "mcc": mean_corr_coef(s[train], z), "elbo": model.elbo_, "fit_time": model.fit_time_,
        "steps": model.n_steps_,
    }
    if test is None:
        measured.update(score=model.score(x, u), score_on="train")
    else:
        z_test = model.transform(x[test], u[test])
        measured.update(heldout_mcc=mean_corr_coef(s[test], z_test), score=model.score(x[test], u[test]),
                        score_on="heldout")
    return measured


def _run_task(data: Dataset, model: IVAE, holdout: float, split_seed: int, torch_threads: int) -> dict[str, Any]:
    """One run as a Dask task; an error becomes a failed row rather than a failed task."""
    torch.set_num_threads(torch_threads)  # workers x threads x torch threads within the cores
    start = time.perf_counter()
    try:
        measured = {**_fit_and_evaluate(data, model, holdout, split_seed), "status": "ok", "error": ""}
    except Exception as exc:  # recorded in the table; the sweep goes on
        measured = {"status": "failed", "error": _one_line(exc), "fit_time": time.perf_counter() - start}
    return {**measured, "worker": _worker_name(), "finished_at": _now()}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the table holds one line per run), at most 500 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 500 else text[:497] + "..."


# ====================================================================== the results table
class ResultsTable:
    """The sweep's CSV file: one complete line per run, appended and fsynced as runs finish.

    Reading ignores a torn last line (a write cut short by a crash); :meth:`prepare`
    removes it and makes sure the header holds every column before the first append.
    The last row of a run key is its current result (a failed run rerun with
    ``--rerun-failed`` gets a second row).
    """

    def __init__(self, path: str | Path, fields: list[str]) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        self.header = list(fields)

    def read(self) -> dict[str, dict[str, str]]:
        """The current row of each run key, as strings."""
        text = self._complete_lines()
        if not text:
            return {}
        reader = csv.DictReader(io.StringIO(text))
        if "run_key" not in (reader.fieldnames or []):
            raise ValueError(f"{self.path} is not a sweep results table (no run_key column); choose another --out")
        rows: dict[str, dict[str, str]] = {}
        bad = 0
        for row in reader:
            if None in row or None in row.values() or not row["run_key"]:
                bad += 1  # too many or too few fields: not a row this module wrote
                continue
            rows.pop(row["run_key"], None)  # re-insert so that dict order is finishing order
            rows[row["run_key"]] = row
        if bad:
            warnings.warn(f"{self.path}: ignored {bad} malformed row(s)", stacklevel=2)
        return rows

    def _complete_lines(self) -> str:
        if not self.path.exists():
            return ""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        return data[:end].decode("utf-8")

    def prepare(self) -> None:
        """Cut a torn last line; write the header, or widen it to every column, atomically."""
        if self.path.exists():
            size, complete = self.path.stat().st_size, len(self._complete_lines().encode("utf-8"))
            if complete < size:
                warnings.warn(f"{self.path}: removed an incomplete last line (a write cut short)", stacklevel=2)
                os.truncate(self.path, complete)
        text = self._complete_lines()
        if not text:
            atomic_write(self.path, lambda fh: fh.write(self._line(None).encode("utf-8")), overwrite=True)
            return
        existing = next(csv.reader(io.StringIO(text)))
        missing = [f for f in self.fields if f not in existing]
        self.header = existing + missing
        if missing:  # a config with new grid columns: rewrite with the union of the columns
            all_rows = list(csv.DictReader(io.StringIO(text)))
            body = self._line(None) + "".join(self._line(r) for r in all_rows if None not in r)
            atomic_write(self.path, lambda fh: fh.write(body.encode("utf-8")), overwrite=True)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one complete line and force it to disk."""
        line = self._line(row)
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _line(self, row: Mapping[str, Any] | None) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.header, restval="", extrasaction="ignore", lineterminator="\n")
        if row is None:
            writer.writeheader()
        else:
            writer.writerow(row)
        return buf.getvalue()


def _cell(value: Any, exact: bool = False) -> str:
    """A value as written to the table: measurements to 6 digits (``exact``: all), lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if exact or abs(value) >= 1e6 else f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


# ====================================================================== the sweep
@dataclass
class SweepPlan:
    """What a sweep would do: all its runs, those to run now and how many are already done."""

    config: SweepConfig
    out: Path
    runs: list[Run]
    pending: list[Run]
    n_done: int
    warnings: list[str]


@dataclass
class SweepResult:
    """The outcome of :func:`run_sweep`.

    Attributes
    ----------
    out : the results table.
    rows : the current row of each of the sweep's runs found in the table, as strings,
        in the order of :meth:`SweepConfig.runs` (runs not yet done are missing).
    grid : the names of the grid's hyperparameters.
    n_runs, n_skipped, n_computed : all runs, runs already in the table, runs run now.
    """

    out: Path
    rows: list[dict[str, str]]
    grid: list[str]
    n_runs: int
    n_skipped: int
    n_computed: int

    @property
    def n_failed(self) -> int:
        """Runs whose current row is a failure."""
        return sum(r["status"] != "ok" for r in self.rows)

    def summary(self, markdown: bool = False) -> str:
        """Median MCC (and more) per hyperparameter combination, best first."""
        groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for row in self.rows:
            groups.setdefault(tuple(row.get(k, "") for k in self.grid), []).append(row)
        header = [*self.grid, "runs", "failed", "median MCC", "mean MCC", "min MCC", "median ELBO",
                  "median s / fit"]
        lines = []
        for values, rows in groups.items():
            ok = [r for r in rows if r["status"] == "ok"]
            stats = ["-"] * 5
            if ok:
                mcc = [float(r["mcc"]) for r in ok]
                stats = [f"{statistics.median(mcc):.3f}", f"{statistics.fmean(mcc):.3f}", f"{min(mcc):.3f}",
                         f"{statistics.median(float(r['elbo']) for r in ok):.3f}",
                         f"{statistics.median(float(r['fit_time']) for r in ok):.1f}"]
            lines.append([*values, str(len(rows)), str(len(rows) - len(ok)), *stats])
        lines.sort(key=lambda line: -float(line[len(self.grid) + 2]) if line[len(self.grid) + 2] != "-"
                   else float("inf"))
        return _format_table(header, lines, markdown)


def _format_table(header: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [header, *lines])


def plan_sweep(config: SweepConfig | Mapping[str, Any] | str | Path, out: str | Path | None = None, *,
               rerun_failed: bool = False) -> SweepPlan:
    """Validate ``config`` fully (one-step fits included) and find the runs still to do in ``out``."""
    if not isinstance(config, SweepConfig):
        config = SweepConfig.from_dict(config) if isinstance(config, Mapping) else load_config(config)
    out = Path(out) if out is not None else config.out
    if out is None:
        raise SweepConfigError('no results table: pass --out FILE or set out = "FILE.csv" in the config')
    runs = config.runs()
    found = config.check()
    done = ResultsTable(out, _fields(config)).read()
    pending = [r for r in runs if r.key not in done or (rerun_failed and done[r.key]["status"] != "ok")]
    return SweepPlan(config, out, runs, pending, len(runs) - len(pending), found)


def run_sweep(
    config: SweepConfig | Mapping[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    torch_threads: int = 1,
    rerun_failed: bool = False,
    max_runs: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run a sweep on Dask; one row per run is appended to ``out`` as runs finish.

    Parameters
    ----------
    config : a :class:`SweepConfig`, a dict of the config file's contents, or the path of
        a ``.toml`` / ``.yaml`` file.
    out : the results table (CSV); default the config's ``out``.
    client : a ``distributed.Client`` to run on (left open); default a new local cluster
        (or ``scheduler``), closed at the end.
    scheduler : address of a running Dask scheduler, e.g. ``"tcp://host:8786"``.
    n_workers, threads_per_worker : shape of the local cluster (default one worker per
        ``threads_per_worker * torch_threads`` cores).
    torch_threads : torch threads of each fit, set in the worker before each run (with an
        in-process cluster, in this process).
    rerun_failed : run again the runs whose current row is a failure (by default every run
        already in the table is skipped).
    max_runs : run at most this many of the runs still to do (the rest on a later call).
    progress : show a progress bar over the runs.
    echo : where to print status lines (e.g. ``print``); None prints nothing.

    Returns
    -------
    SweepResult with the sweep's rows and :meth:`SweepResult.summary`.
    """
    _import_distributed()
    if client is not None and scheduler is not None:
        raise ValueError("pass a client or a scheduler address, not both")
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker),
                        ("torch_threads", torch_threads), ("max_runs", max_runs)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    say = echo or (lambda _: None)
    plan = plan_sweep(config, out, rerun_failed=rerun_failed)
    for message in plan.warnings:
        warnings.warn(message, stacklevel=2)
    pending = plan.pending[:max_runs] if max_runs is not None else plan.pending
    say(f"{len(plan.runs)} runs: {plan.n_done} already in {plan.out}, {len(pending)} to run now"
        + (f", {len(plan.pending) - len(pending)} left for later" if len(pending) < len(plan.pending) else ""))
    table = ResultsTable(plan.out, _fields(plan.config))
    if pending:
        table.prepare()
        with _connect(client, scheduler, n_workers, threads_per_worker, torch_threads) as cl:
            _execute(cl, plan.config, pending, table, torch_threads, progress, say)
    current = table.read()
    # the grid values come from the run: a row written before a value moved into the grid lacks them
    rows = [{**current[r.key], **_grid_cells(r)} for r in plan.runs if r.key in current]
    return SweepResult(plan.out, rows, list(plan.config.grid), len(plan.runs), plan.n_done, len(pending))


def _fields(config: SweepConfig) -> list[str]:
    return HEAD_FIELDS + list(config.grid) + TAIL_FIELDS


def _row(config: SweepConfig, run: Run, measured: Mapping[str, Any]) -> dict[str, str]:
    row = {
        "run_key": run.key, "data": config.data.label, "data_seed": run.data_seed, "model_seed": run.model_seed,
        "estimator": config.estimator, "preset": config.preset, **measured,
        "params": _canonical_json(run.params),
    }
    return {**{k: _cell(v) for k, v in row.items()}, **_grid_cells(run)}


def _grid_cells(run: Run) -> dict[str, str]:
    return {k: _cell(v, exact=True) for k, v in run.combination.items()}


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"nica sweep runs on Dask distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


@contextmanager
def _connect(client: Any, scheduler: str | None, n_workers: int | None, threads_per_worker: int,
             torch_threads: int) -> Iterator[Any]:
    """The caller's client, a client of ``scheduler``, or a new local cluster (closed on exit)."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    if n_workers is None:
        n_workers = max(1, (os.cpu_count() or 1) // (threads_per_worker * torch_threads))
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def _execute(client: Any, config: SweepConfig, pending: list[Run], table: ResultsTable, torch_threads: int,
             progress: bool, say: Callable[[str], None]) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm

    data: dict[int | None, Any] = {}
    for seed in dict.fromkeys(r.data_seed for r in pending):
        if config.data.path is not None:  # read here, sent to the workers: no shared file system needed
            data[seed] = client.scatter(config.data.load(None))
        else:
            identity = hashlib.sha256(_canonical_json(config.data.generator).encode()).hexdigest()[:16]
            data[seed] = client.submit(_make_data, config.data.generator, seed, key=f"nica-data-{identity}-{seed}")
    futures = {}
    for run in pending:
        model = config.estimator_for(run.params, model_seed=run.model_seed)
        future = client.submit(_run_task, data[run.data_seed], model, config.data.holdout, run.data_seed or 0,
                               torch_threads, key=f"nica-run-{run.key}", retries=0)
        futures[future] = run
    bar = tqdm(total=len(pending), unit="run", disable=not progress, desc="sweep")
    n_failed = 0
    try:
        for future in as_completed(list(futures)):
            run = futures.pop(future)
            try:
                measured = future.result()
            except Exception as exc:  # the task itself could not run (its data failed, a worker died)
                measured = {"status": "failed", "error": _one_line(exc), "finished_at": _now()}
            table.append(_row(config, run, measured))
            future.release()
            n_failed += measured["status"] != "ok"
            bar.update()
            bar.set_postfix_str(f"failed {n_failed}" + (f", last MCC {measured['mcc']:.3f}" if "mcc" in measured
                                                         else ""))
    except KeyboardInterrupt:
        client.cancel(list(futures))
        say(f"interrupted: {len(pending) - len(futures)} of {len(pending)} runs written to {table.path}; "
            "run the same command again to resume")
        raise
    finally:
        bar.close()


# ====================================================================== the command line
def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI's one-line error messages (imported late: ``nica.cli`` imports this module)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nica.cli import user_errors

        return user_errors(func)(*args, **kwargs)

    return wrapper


@click.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="results table (CSV); default: out in the config")
@click.option("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786 "
              "(default: a local cluster)")
@click.option("--workers", "n_workers", type=click.IntRange(min=1),
              help="local worker processes  [default: cores / (threads per worker x torch threads)]")
@click.option("--threads-per-worker", type=click.IntRange(min=1), help="runs side by side in each local "
              "worker  [default: 1]")
@click.option("--torch-threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads of each fit")
@click.option("--rerun-failed", is_flag=True, help="run again the runs recorded as failed")
@click.option("--max-runs", type=click.IntRange(min=1), help="run at most this many new runs now")
@click.option("--dry-run", is_flag=True, help="validate the config, count the runs to do, and exit")
@click.option("--quiet", is_flag=True, help="no progress bar")
@_user_errors
def sweep_command(config: Path, out: Path | None, scheduler: str | None, n_workers: int | None,
                  threads_per_worker: int | None, torch_threads: int, rerun_failed: bool,
                  max_runs: int | None, dry_run: bool, quiet: bool) -> None:
    """Run CONFIG's grid of data seeds x model seeds x hyperparameters on Dask.

    CONFIG is a .toml or .yaml file (docs/sweeps.md).  One row per run is appended to the
    results table as runs finish; running the same command again skips the runs already
    there, so an interrupted sweep resumes where it stopped.
    """
    if scheduler is not None and (n_workers is not None or threads_per_worker is not None):
        raise ValueError("--workers and --threads-per-worker shape the local cluster; "
                         "drop them when you pass --scheduler")
    try:
        _import_distributed()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        plan = plan_sweep(config, out, rerun_failed=rerun_failed)
        for message in plan.warnings:
            warnings.warn(message, stacklevel=1)
        click.echo(f"config OK: {len(plan.config.data_seeds)} data seed(s) x {len(plan.config.model_seeds)} "
                   f"model seed(s) x {len(plan.config.combinations())} combination(s) = {len(plan.runs)} runs; "
                   f"{plan.n_done} already in {plan.out}, {len(plan.pending)} to run")
        return
    result = run_sweep(config, out, scheduler=scheduler, n_workers=n_workers,
                       threads_per_worker=threads_per_worker or 1, torch_threads=torch_threads,
                       rerun_failed=rerun_failed, max_runs=max_runs, progress=not quiet, echo=click.echo)
    click.echo(f"{result.n_computed} runs done now, {len(result.rows)} of {result.n_runs} in {result.out}"
               f" ({result.n_failed} failed)")
    if result.rows:
        click.echo(result.summary())


__all__ = ["ESTIMATORS", "DataSpec", "ResultsTable", "Run", "SweepConfig", "SweepConfigError", "SweepPlan",
           "SweepResult", "load_config", "plan_sweep", "run_sweep", "sweep_command"]
