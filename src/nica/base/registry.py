"""The one registry of estimators: each registers once, and everything that lists or finds
estimators reads it.

An estimator class registers with :func:`register_estimator` (a class decorator): the
name its models are saved under, its save format (:class:`nica.persistence.SaveFormat`),
and, when users may ask for it by name, its model name (``nica.fit_model(model=NAME)``,
``nica fit --model NAME``, ``nica sweep``'s ``model.estimator``) and whether NonSENS may
unmix with it (:data:`nica.causal.nonsens.UNMIXINGS`). Read from here:

- :func:`nica.load` finds the class of a saved model (:func:`registered_type`);
- :data:`nica.MODELS` / :func:`nica.fit_model` / ``nica fit --model`` and ``nica sweep``
  list the estimators with a model name (:func:`models`), and the command line offers
  each one the options its parameters name;
- NonSENS lists its unmixings (:func:`unmixings`).

Built-in estimators are found without importing every one up front: a built-in family
is a package ``nica/<family>/`` with a module ``estimator.py``, and the first lookup that
needs them imports every such module (whose package registers the family's classes). An
estimator of your own registers when your module is imported.

This module imports no estimator (it sits below them all); the families fill it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, TypeVar

T = TypeVar("T", bound=type)

#: the package folder whose subpackages are searched for built-in families
PACKAGE = Path(__file__).resolve().parents[1]
#: the module a built-in family's package holds (imported to register the family)
FAMILY_MODULE = "estimator"
#: packages with a module of that name that are not families
NOT_FAMILIES = ("base",)


@dataclass(frozen=True)
class EstimatorType:
    """A registered estimator.

    ``name``: what its models are saved as (``"estimator"`` in config.json); ``cls``: the
    class; ``save_format``: how it is saved (None: it cannot be); ``model``: its name for
    ``fit_model`` / ``--model`` / sweeps (None: not offered by name); ``unmixing``: NonSENS
    may unmix with it (n_components = the number of variables, ``fit(X, u)``,
    ``transform(X)``).
    """

    name: str
    cls: type
    save_format: Any = None
    model: str | None = None
    unmixing: bool = False


#: the former name of :class:`EstimatorType` (it held the class and its save format)
SavedType = EstimatorType

#: saved name -> the registered estimator
ESTIMATOR_TYPES: dict[str, EstimatorType] = {}
_builtins_loaded = False


def register_estimator(name: str, save_format: Any = None, *, model: str | None = None,
                       unmixing: bool = False) -> Callable[[T], T]:
    """Class decorator: register ``cls`` under the saved name ``name`` with its
    ``save_format``, its ``model`` name (None: not offered by name) and whether NonSENS
    may ``unmix`` with it. A name already taken by another class is refused.

    Examples
    --------
    >>> from nica import IVAE
    >>> from nica.ivae import IVAE_FORMAT
    >>> @register_estimator("CenteredIVAE", IVAE_FORMAT)
    ... class CenteredIVAE(IVAE):
    ...     '''An IVAE that always centres X.'''
    >>> ESTIMATOR_TYPES["CenteredIVAE"].cls is CenteredIVAE
    True
    >>> del ESTIMATOR_TYPES["CenteredIVAE"]
    """

    def register(cls: T) -> T:
        known = ESTIMATOR_TYPES.get(name)
        if known is not None and _qualified_name(known.cls) != _qualified_name(cls):
            raise ValueError(f"the saved-estimator name {name!r} is taken by {_qualified_name(known.cls)}")
        if model is not None:
            _check_model_name(model, cls)
        ESTIMATOR_TYPES[name] = EstimatorType(name, cls, save_format, model, unmixing)
        return cls

    return register


def register_model(name: str, cls: type) -> type:
    """Offer estimator class ``cls`` as ``model=name`` (``cls(n_components, **params)``
    must build it, and ``fit(X, u)`` fit it); a class not registered yet is registered
    under its class name, without a save format. Returns ``cls``."""
    _check_model_name(name, cls)
    for saved in list(ESTIMATOR_TYPES.values()):
        if saved.cls is cls:
            ESTIMATOR_TYPES[saved.name] = replace(saved, model=name)
            return cls
    ESTIMATOR_TYPES[cls.__name__] = EstimatorType(cls.__name__, cls, None, name)
    return cls


def _check_model_name(name: str, cls: type) -> None:
    for saved in ESTIMATOR_TYPES.values():
        if saved.model == name and _qualified_name(saved.cls) != _qualified_name(cls):
            raise ValueError(f"the model name {name!r} is taken by {saved.cls.__name__}")


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def builtin_modules() -> list[str]:
    """The modules that register the built-in families: ``nica.<family>.estimator`` for
    every package ``nica/<family>/`` that has one (found on disk, nothing imported)."""
    return sorted(f"nica.{path.parent.name}.{FAMILY_MODULE}"
                  for path in PACKAGE.glob(f"*/{FAMILY_MODULE}.py")
                  if path.parent.name not in NOT_FAMILIES and (path.parent / "__init__.py").is_file())


def load_builtins() -> None:
    """Import every built-in family once (each registers its estimators)."""
    global _builtins_loaded
    if not _builtins_loaded:
        for module in builtin_modules():
            importlib.import_module(module)
        _builtins_loaded = True


def registered_type(name: str) -> EstimatorType:
    """The estimator registered under the saved name ``name``, the built-in families
    imported first if need be; KeyError for a name nothing registers."""
    if name not in ESTIMATOR_TYPES:
        load_builtins()
    return ESTIMATOR_TYPES[name]


def estimator_types() -> dict[str, EstimatorType]:
    """Every registered estimator by saved name, the built-in ones included."""
    load_builtins()
    return dict(ESTIMATOR_TYPES)


def models() -> dict[str, type]:
    """Model name -> class, for every estimator offered by name, by name (whatever order
    the families were imported in)."""
    return {t.model: t.cls for t in sorted(estimator_types().values(), key=_model_key) if t.model is not None}


def unmixings() -> dict[str, type]:
    """Model name -> class of the estimators NonSENS may unmix with, by name."""
    return {t.model: t.cls for t in sorted(estimator_types().values(), key=_model_key)
            if t.unmixing and t.model is not None}


def _model_key(saved: EstimatorType) -> str:
    return saved.model or ""


def type_of(cls: type) -> EstimatorType | None:
    """The registration of ``cls`` itself (not of a base class), or None."""
    for saved in ESTIMATOR_TYPES.values():
        if saved.cls is cls:
            return saved
    return None


class ModelTable(Mapping[str, type]):
    """A read-only live view of :func:`models` (what :data:`nica.MODELS` is), or with
    ``unmixing=True`` of :func:`unmixings` (:data:`nica.causal.nonsens.UNMIXINGS`)."""

    def __init__(self, *, unmixing: bool = False) -> None:
        self._read = unmixings if unmixing else models

    def __getitem__(self, name: str) -> type:
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __repr__(self) -> str:
        return repr({name: cls.__name__ for name, cls in self._read().items()})


__all__ = ["ESTIMATOR_TYPES", "EstimatorType", "ModelTable", "SavedType", "builtin_modules", "estimator_types",
           "load_builtins", "models", "register_estimator", "register_model", "registered_type", "type_of",
           "unmixings"]
