"""The parameters every estimator shares and their checks.

:class:`ParamsMixin` gives the scikit-learn parameter protocol (``get_params`` /
``set_params`` / ``clone``-compatible re-instantiation) from the ``__init__`` signature;
:class:`NotFittedError` and :func:`resolve_device` are shared by all estimators (and by
:mod:`nica.persistence`); the functions validate the arguments every estimator shares.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from nica._validation import check_observations
from nica.datasets.features import align_columns, feature_names

#: rows per forward pass at inference time, to keep memory bounded on large inputs
INFERENCE_CHUNK = 65_536


class NotFittedError(RuntimeError):
    """An estimator method that needs a fitted model was called before ``fit``."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to torch."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:  # torch's message does not name the argument
        raise ValueError(
            f"device {device!r} is not a valid torch device ({exc}); use 'auto', 'cpu' or 'cuda'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


class ParamsMixin:
    """``get_params`` / ``set_params`` / ``__repr__`` from the keyword arguments of ``__init__``.

    ``__init__`` must store every argument under its own name and take no ``*args`` or
    ``**kwargs`` (the scikit-learn convention), so ``type(est)(**est.get_params())`` is an
    unfitted copy.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        params = inspect.signature(cls.__init__).parameters
        return {name: params[name].default for name in cls._param_names()}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters as a dict (sklearn protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> ParamsMixin:
        """Set hyperparameters by name (sklearn protocol)."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = self._param_defaults()
        # required arguments are shown positionally, the others only where they differ
        shown = [repr(v) if defaults[k] is inspect.Parameter.empty else f"{k}={v!r}"
                 for k, v in self.get_params().items()
                 if defaults[k] is inspect.Parameter.empty or not _same(v, defaults[k])]
        return f"{type(self).__name__}({', '.join(shown)})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and the like
        return a is b


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` >= 1 (numpy integers accepted, booleans refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_n_components(n_components: Any, n_features: int, *, allow_none: bool = False,
                       reason: str = "") -> int:
    """The number of components, at most ``n_features``; ``None`` means all (if allowed).
    ``reason`` (why the model needs it) follows the error message."""
    if n_components is None and allow_none:
        return n_features
    n = check_positive_int(n_components, "n_components")
    if n > n_features:
        raise ValueError(f"n_components={n} exceeds the {n_features} features of X{reason}")
    return n


def log_jacobian(x_scale: np.ndarray) -> float:
    """log |d x_std / d x| per sample of X divided by ``x_scale`` ``(d,)``: subtracted from a
    log-density (or ELBO) of the standardised X, it gives the same in the units of X."""
    return float(np.log(x_scale).sum())


def check_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`nica.NotFittedError` unless ``estimator`` has ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit first")


def check_new_observations(X: Any, n_features: int, name: str = "X",
                           fitted_names: Sequence[str] | None = None) -> np.ndarray:
    """X at inference time: finite float32 ``(n_rows, n_features)`` with the fitted width,
    its columns realigned by name to ``fitted_names`` (refused when the names differ)."""
    x = align_columns(check_observations(X, name, min_samples=1), feature_names(X), fitted_names, name)
    if x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} features but the model was fitted with {n_features}")
    return x


def seeded_init(module_factory: Any, seed: int) -> torch.nn.Module:
    """Build a torch module with weights drawn from ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return module_factory()


def chunks(n_rows: int, size: int) -> Iterator[slice]:
    """Row slices of at most ``size`` rows covering ``range(n_rows)``."""
    for start in range(0, n_rows, size):
        yield slice(start, start + size)
