"""Input checks shared by the estimator, the functions and the CLI.

Every check raises before any training starts, with a message that names the argument,
the problem and what to do about it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

U_TYPES = ("auto", "categorical", "continuous")


class IdentifiabilityWarning(UserWarning):
    """The data or model cannot satisfy the identifiability conditions of the theory."""


def check_observations(x: Any, name: str = "X", *, min_samples: int = 2) -> np.ndarray:
    """Return ``x`` as a finite float32 array ``(n_samples, n_features)``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}; convert it with astype(float)")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}; "
            "reshape a single feature with x.reshape(-1, 1)"
        )
    if arr.shape[0] < min_samples or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_samples} samples and 1 feature, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite values (first in row {rows[0]}); "
            "drop or impute those rows before fitting"
        )
    return arr


def check_same_length(a: np.ndarray, b: Any, name_a: str, name_b: str) -> None:
    """Raise if ``a`` and ``b`` disagree in their number of rows."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} rows but {name_b} has {len(b)}; they must match row for row")


def _is_integral(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _is_onehot(u: np.ndarray) -> bool:
    return bool(
        u.ndim == 2 and u.shape[1] > 1 and np.isin(u, (0, 1)).all() and np.all(u.sum(1) == 1)
    )


@dataclass
class AuxEncoder:
    """Maps the user's u to the network's auxiliary input ``(N, aux_dim)``.

    Categorical u (integer/str labels, integral floats, or one-hot rows) becomes one-hot
    over the labels seen at fit time; continuous u ``(N,)`` or ``(N, m)`` is standardised.
    """

    u_type: str = "auto"
    kind: str = ""
    classes: list = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    @property
    def dim(self) -> int:
        """Width of the encoded auxiliary vector."""
        return len(self.classes) if self.kind == "categorical" else len(self.mean)

    @property
    def n_values(self) -> int | None:
        """Number of distinct labels (categorical u), else None."""
        return len(self.classes) if self.kind == "categorical" else None

    def fit(self, u: Any, n_samples: int) -> AuxEncoder:
        """Learn the encoding from the fit-time u; validates shape, dtype and values."""
        if self.u_type not in U_TYPES:
            raise ValueError(f"u_type must be one of {U_TYPES}, got {self.u_type!r}")
        arr = _as_array(u)
        check_same_length(np.empty(n_samples), arr, "X", "u")
        kind = self.u_type if self.u_type != "auto" else _infer_kind(arr)
        self.kind = kind
        if kind == "categorical":
            labels = _labels(arr)
            if arr.ndim == 2:
                # one-hot rows: every column is a label, including columns no row uses, so the
                # same one-hot layout is accepted again at transform time
                self.classes = list(range(arr.shape[1]))
            else:
                self.classes = [_py_scalar(c) for c in np.unique(labels)]
            if len(np.unique(labels)) < 2:
                raise ValueError(
                    "u has a single label: the prior cannot be modulated. iVAE needs u to take "
                    "several values (segments, sessions, classes)"
                )
        else:
            cont = _continuous(arr)
            self.mean = cont.mean(0).tolist()
            std = cont.std(0)
            if np.any(std == 0):
                raise ValueError(
                    f"continuous u has constant column(s) {np.nonzero(std == 0)[0].tolist()}: "
                    "a constant auxiliary variable carries no information; drop it"
                )
            self.scale = std.tolist()
        return self

    def transform(self, u: Any) -> np.ndarray:
        """Encode u for the network: ``(N, aux_dim)`` float32."""
        arr = _as_array(u)
        if self.kind == "categorical":
            if arr.ndim == 2 and arr.shape[1] > 1 and not _is_onehot(arr):
                raise ValueError(
                    "u is continuous-valued but the model was fitted with categorical u "
                    f"({len(self.classes)} labels); pass the labels or one-hot rows"
                )
            if arr.ndim == 2 and arr.shape[1] > 1 and arr.shape[1] != len(self.classes):
                raise ValueError(
                    f"one-hot u has {arr.shape[1]} columns but the model knows {len(self.classes)} labels"
                )
            labels = _labels(arr)
            if arr.ndim == 2 and arr.shape[1] > 1:
                index = labels.astype(np.int64)
            else:
                lookup = {c: i for i, c in enumerate(self.classes)}
                try:
                    index = np.array([lookup[_py_scalar(v)] for v in labels], dtype=np.int64)
                except KeyError as exc:
                    unseen = sorted({_py_scalar(v) for v in labels} - set(self.classes), key=str)
                    raise ValueError(
                        f"u contains label(s) not seen at fit time: {unseen[:10]}; known labels are "
                        f"{self.classes[:10]}{' ...' if len(self.classes) > 10 else ''}"
                    ) from exc
            return np.eye(len(self.classes), dtype=np.float32)[index]
        cont = _continuous(arr)
        if cont.shape[1] != len(self.mean):
            raise ValueError(f"u has {cont.shape[1]} columns but the model was fitted with {len(self.mean)}")
        return ((cont - np.array(self.mean)) / np.array(self.scale)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"u_type": self.u_type, "kind": self.kind, "classes": self.classes,
                "mean": self.mean, "scale": self.scale}


def _as_array(u: Any) -> np.ndarray:
    arr = np.asarray(u)
    if arr.ndim not in (1, 2):
        raise ValueError(f"u must be 1-D labels (N,) or 2-D (N, m), got shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.size == 0:
        raise ValueError("u is empty")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError("u contains NaN or infinite values; drop or impute those rows")
    return arr


def _infer_kind(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iubUSO":
        return "categorical"
    if arr.ndim == 1:
        return "categorical" if _is_integral(arr) else "continuous"
    return "categorical" if _is_onehot(arr) else "continuous"


def _labels(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        if not _is_onehot(arr):
            raise ValueError(
                "2-D categorical u must be one-hot (one 1 per row, zeros elsewhere); "
                "pass 1-D labels or set u_type='continuous'"
            )
        return arr.argmax(1)
    if arr.dtype.kind == "f":
        if not _is_integral(arr):
            raise ValueError(
                "u has non-integer values but categorical labels were expected; "
                "set u_type='continuous' for a continuous auxiliary variable"
            )
        return arr.astype(np.int64)
    return arr


def _continuous(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "iufb":
        raise TypeError(f"continuous u must be numeric, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64).reshape(len(arr), -1)


def _py_scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def warn_identifiability(
    n_values: int | None, n_components: int, *, prior: str, prior_mean: bool, prior_scale: bool
) -> None:
    """Warn when the prior or u cannot meet the identifiability conditions (§2).

    u must take at least n k + 1 distinct values, k being the number of u-dependent
    sufficient statistics per component; a Gaussian prior modulated in its mean only is
    not identifiable at all (Prop. 1).
    """
    k = int(prior_mean) + int(prior_scale)
    if k == 0:
        message = "the prior does not depend on u: the model is a plain VAE and not identifiable"
    elif prior == "gaussian" and not prior_scale:
        message = (
            "a Gaussian prior modulated in its mean only is not identifiable (Prop. 1 of the "
            "paper); keep prior_scale=True"
        )
    elif n_values is not None and n_values < n_components * k + 1:
        message = (
            f"u takes {n_values} distinct values, but identifiability of {n_components} "
            f"components with {k} u-dependent statistic(s) each needs at least "
            f"{n_components * k + 1} (n k + 1); recovery may fail"
        )
    else:
        return
    warnings.warn(message, IdentifiabilityWarning, stacklevel=3)
