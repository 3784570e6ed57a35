"""A sweep's config: reading a TOML or YAML file, validating every key, and the runs it names.

:class:`SweepConfig` is a validated config (:func:`load_config` reads one from a file);
:meth:`SweepConfig.runs` lists its runs, each with a stable key, and
:meth:`SweepConfig.check` fits every hyperparameter combination for one step before a
sweep starts. The format is described in ``docs/sweeps.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import itertools
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._fs import read_bounded
from nica.datasets.io import Dataset, load_dataset
from nica.datasets.nonstationary import make_nonstationary
from nica.datasets.settings import BENCHMARK_SETTINGS
from nica.base.registry import estimator_types
from nica.presets import PRESETS
from nica.sweep._values import canonical_json, cell, one_line


class _Estimators(Mapping[str, type]):
    """The estimators a config may name (``model.estimator``): every registered estimator
    offered by model name (what ``nica fit --model`` takes), by its class name; a live view
    of the registry (:mod:`nica.base.registry`)."""

    def _table(self) -> dict[str, type]:
        return {t.name: t.cls for t in estimator_types().values() if t.model is not None}

    def __getitem__(self, name: str) -> type:
        return self._table()[name]

    def __iter__(self) -> Any:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def model_names(self) -> dict[str, str]:
        """Model name (``"flow"``) -> class name (``"IFlow"``)."""
        return {t.model: t.name for t in estimator_types().values() if t.model is not None}


#: the estimators a config may name: class name -> class (``"IVAE"``, ``"IFlow"``, ...)
ESTIMATORS = _Estimators()
INSTALL_HINT = 'pip install "nica[distributed]"'
_TOP_KEYS = ("out", "data", "model", "grid")
_DATA_KEYS = ("setting", "path", "seeds", "holdout")
_MODEL_KEYS = ("estimator", "preset", "seeds")
#: make_nonstationary arguments a config may set (the seed comes from data.seeds)
_GENERATOR_ARGS = tuple(p for p in inspect.signature(make_nonstationary).parameters
                        if p not in ("random_state", "dtype"))
#: hyperparameters that do not change a fit's result, so stay out of run keys
_NOT_IN_KEY = ("random_state", "verbose")


class SweepConfigError(ValueError):
    """A sweep config is malformed; the message names the key and the fix."""


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
        estimator = _estimator_name(model.get("estimator", "IVAE"))
        for key in model:
            _check_name(key, "model.", estimator, _MODEL_KEYS)
        preset = model.get("preset", "default")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise SweepConfigError(f"model.preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        if preset != "default" and not hasattr(ESTIMATORS[estimator], "from_preset"):
            raise SweepConfigError(f"model.preset: {estimator} has no presets (they configure the iVAE family); "
                                   "leave model.preset out")
        model_seeds = _seeds(model.get("seeds", [0]), "model.seeds")
        hints = _parameter_hints(ESTIMATORS[estimator])
        params = {k: _conform(v, hints.get(k, Any), f"model.{k}") for k, v in model.items() if k not in _MODEL_KEYS}
        grid = {}
        for name, values in grid_raw.items():
            _check_name(name, "grid.", estimator)
            if name in params:
                raise SweepConfigError(f"grid.{name} is also set in [model]; keep it in one place")
            grid[name] = _grid_values(values, hints.get(name, Any), f"grid.{name}")
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

    def estimator_for(self, params: Mapping[str, Any], model_seed: int | None = None) -> Any:
        """An unfitted estimator with the preset (the iVAE family's), then ``params``, then the seed."""
        params = dict(params)
        n_components = params.pop("n_components", self.data.n_sources)
        cls = ESTIMATORS[self.estimator]
        if hasattr(cls, "from_preset"):
            return cls.from_preset(self.preset, n_components, random_state=model_seed, **params)
        return cls(n_components, random_state=model_seed, **params)

    def _key(self, data_seed: int | None, model_seed: int, params: Mapping[str, Any]) -> str:
        """16 hex digits of the SHA-256 of the run's canonical JSON: data, seeds, every hyperparameter."""
        hyper = {k: v for k, v in self.estimator_for(params).get_params().items() if k not in _NOT_IN_KEY}
        settings = {"data": self.data.identity(), "data_seed": data_seed, "model_seed": model_seed,
                    "estimator": self.estimator, "hyperparameters": hyper}
        return hashlib.sha256(canonical_json(settings).encode()).hexdigest()[:16]

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
                                        "verbose": False, "checkpoint_dir": None}, model_seed=self.model_seeds[0])
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
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SweepConfigError(f"unsupported config type {suffix!r} for {path}; use .toml, .yaml or .yml")
    text = read_bounded(path, MAX_CONFIG_BYTES, "the sweep config")
    try:
        raw = _parse_toml(text, path) if suffix == ".toml" else _parse_yaml(text, path)
    except RecursionError:
        raise SweepConfigError(f"{path} is nested too deeply to be a sweep config") from None
    return SweepConfig.from_dict(raw if raw is not None else {}, base_dir=path.parent)


#: a sweep config is a few keys and lists: anything larger is refused unread
MAX_CONFIG_BYTES = 2**20


def _parse_toml(text: bytes, path: Path) -> Any:
    import tomllib

    try:
        return tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepConfigError(f"{path} is not valid TOML: {exc}") from None


def _parse_yaml(text: bytes, path: Path) -> Any:
    """YAML by PyYAML's safe loader with aliases refused: an alias repeats a node, and a
    few hundred bytes of nested aliases expand to more than any memory (a "billion laughs")."""
    try:
        import yaml
    except ImportError:
        raise ImportError(f"YAML configs need PyYAML: {INSTALL_HINT}, or write the config as TOML") from None

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise SweepConfigError(f"{path} uses a YAML alias (*{event.anchor}, line {event.start_mark.line + 1}); "
                                       "a sweep config takes no anchors or aliases: write the values out")
            return super().compose_node(parent, index)

    try:
        return yaml.load(text.decode("utf-8"), Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SweepConfigError(f"{path} is not valid YAML: {one_line(exc)}") from None


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


def _hyperparameters(estimator: str) -> tuple[str, ...]:
    """The hyperparameters of ``estimator`` a config may set (the seed comes from model.seeds)."""
    return tuple(p for p in ESTIMATORS[estimator]._param_names() if p != "random_state")


def _parameter_hints(cls: type) -> dict[str, Any]:
    """The type hints of ``cls``'s parameters, from its ``__init__`` and those of its bases
    (a subclass that passes ``**params`` on declares them there)."""
    hints: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        if "__init__" in vars(base) and base is not object:
            try:
                hints.update(typing.get_type_hints(base.__init__))
            except (NameError, TypeError):  # a base whose hints do not resolve: no check
                continue
    return hints


def _check_name(name: str, prefix: str, estimator: str, also: tuple[str, ...] = ()) -> None:
    """``name`` is a hyperparameter of the estimator (or one of ``also``)."""
    if name == "random_state":
        raise SweepConfigError(f"{prefix}random_state: set the model seeds with model.seeds = [0, 1, ...]")
    names = _hyperparameters(estimator)

    def hint(prefix: str) -> str:
        head = "estimator, preset, seeds and the " if prefix == "model." else "the "
        return f"{prefix.rstrip('.')} takes {head}hyperparameters of {estimator}: {', '.join(names)}"

    _check_keys({name: None}, also + names, prefix, hint)


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
    changes = ",".join(f"{k}={cell(v)}" for k, v in explicit.items())
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
    """The class name of the estimator ``name`` names: a class name (any case) or a model name."""
    if isinstance(name, str):
        for known in ESTIMATORS:
            if name.upper() == known.upper():
                return known
        aliases = ESTIMATORS.model_names()
        if name.lower() in aliases:
            return aliases[name.lower()]
    raise SweepConfigError(f"model.estimator: unknown estimator {name!r}; choose one of {list(ESTIMATORS)} "
                           f"(or a model name: {', '.join(ESTIMATORS.model_names())})")


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


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a[:, None] if a.ndim == 1 else a


def _make_data(generator: Mapping[str, Any], seed: int | None) -> Dataset:
    """The generated data of one data seed: x ``(N, d)``, u ``(N,)``, s ``(N, n)``."""
    data = make_nonstationary(**generator, random_state=seed)
    return Dataset(x=data.x, u=data.u, s=data.s)
