"""Input checks shared by the estimator, the functions and the CLI.

Every check raises before any training starts, with a message that names the argument,
the problem and what to do about it.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nica.datasets.tabular import to_array, to_aux

U_TYPES = ("auto", "categorical", "continuous")
#: up to this many labels u is taken as categorical however few rows each label has
MAX_LABELS_ALWAYS_OK = 10


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised here that points at the first caller outside
    nica (the user's line), however many nica frames lie between."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


class IdentifiabilityWarning(UserWarning):
    """The data or model cannot satisfy the identifiability conditions of the theory."""


def check_observations(
    x: Any,
    name: str = "X",
    *,
    min_samples: int = 2,
    dtype: type = np.float32,
    allow_1d: bool = False,
) -> np.ndarray:
    """Return ``x`` as a finite real array ``(n_samples, n_features)`` of ``dtype``.

    Accepts anything ``np.asarray`` reads, and pandas DataFrames, AnnData objects (their
    ``X``) and scipy sparse matrices (see :func:`nica.datasets.tabular.to_array`).
    ``allow_1d`` reads a 1-D array as one column.
    """
    x = to_array(x, name)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}; pass its real part or modulus")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}; convert it with astype(float)")
    if allow_1d and arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}; "
            "reshape a single feature with x.reshape(-1, 1)"
        )
    if arr.shape[0] < min_samples or arr.shape[1] < 1:
        samples = "sample" if min_samples == 1 else "samples"
        raise ValueError(
            f"{name} needs at least {min_samples} {samples} and 1 feature, got shape {arr.shape}"
        )
    _check_finite(arr, name, "NaN or infinite values", "drop or impute those rows")
    with np.errstate(over="ignore", under="ignore"):  # reported just below, with the argument's name
        # C order whatever the input's layout: a column-major or realigned X then takes the
        # same kernels as the row-major original, so its latents are bitwise the same
        out = arr.astype(dtype, order="C")
    # finite float64 values beyond float32's range (~3.4e38) overflow to inf in the cast
    info = np.finfo(dtype)
    _check_finite(out, name, f"values too large for {np.dtype(dtype).name} (|value| > {info.max:.1e})",
                  "rescale it, e.g. divide by its largest value")
    _check_representable(arr, out, name, info)
    return out


def _check_finite(arr: np.ndarray, name: str, problem: str, fix: str) -> None:
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} {problem} ({first_position(bad)}); {fix}")


def first_position(bad: np.ndarray) -> str:
    """Where the first flagged entry of a 2-D mask ``(N, d)`` is, in words: its row and column
    (0-based positions, as numpy indexes them)."""
    row, col = np.argwhere(bad)[0]
    return f"first at row {row}, column {col}; 0-based"


def _check_representable(arr: np.ndarray, out: np.ndarray, name: str, info: np.finfo) -> None:
    """Non-zero values that the cast to ``out``'s dtype flushed to zero (or to a subnormal,
    losing their digits), e.g. float64 data scaled by 1e-300: refused rather than fitted
    as zeros (which would read as binary X)."""
    if arr.dtype.kind != "f" or arr.dtype.itemsize <= out.dtype.itemsize:
        return
    lost = (arr != 0) & (np.abs(arr) < info.tiny)
    if lost.any():
        raise ValueError(
            f"{name} contains {int(lost.sum())} values too small for {out.dtype.name} (0 < |value| < "
            f"{info.tiny:.1e}, {first_position(lost)}), which would become 0; rescale it, e.g. "
            "divide by its largest absolute value"
        )


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
    ``counts`` holds the fit-time rows per label (categorical u; empty for a model saved
    before it was recorded): the label frequencies that :meth:`nica.IVAE.predict_u` takes
    as the prior p(u).
    """

    u_type: str = "auto"
    kind: str = ""
    classes: list = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @property
    def dim(self) -> int:
        """Width of the encoded auxiliary vector."""
        return len(self.classes) if self.kind == "categorical" else len(self.mean)

    @property
    def n_values(self) -> int | None:
        """Number of distinct labels (categorical u), else None."""
        return len(self.classes) if self.kind == "categorical" else None

    def describe(self) -> dict[str, Any]:
        """What ``nica info`` says of u: its kind with the labels, or its dimension."""
        if self.kind == "categorical":
            return {"kind": "categorical", "n_labels": len(self.classes), "labels": self.classes}
        return {"kind": "continuous", "dim": len(self.mean)}

    def fit(self, u: Any, n_samples: int) -> AuxEncoder:
        """Learn the encoding from the fit-time u; validates shape, dtype and values."""
        if self.u_type not in U_TYPES:
            raise ValueError(f"u_type must be one of {U_TYPES}, got {self.u_type!r}")
        arr = _as_array(u)
        check_same_length(np.empty(n_samples), arr, "X", "u")
        kind = self.u_type if self.u_type != "auto" else _infer_kind(arr)
        self.kind = kind
        if kind == "categorical":
            labels = _labels(arr, "set u_type='continuous' (CLI: --u-type continuous) for a continuous "
                                  "auxiliary variable")
            if arr.ndim == 2:
                # one-hot rows: every column is a label, including columns no row uses, so the
                # same one-hot layout is accepted again at transform time
                self.classes = list(range(arr.shape[1]))
            else:
                self.classes = [_py_scalar(c) for c in np.unique(labels)]
            if len(np.unique(labels)) < 2:
                raise ValueError(
                    "u has a single label: the prior p(z | u) cannot be modulated; the model needs u "
                    "to take several values (segments, sessions, classes)"
                )
            self._check_label_count(arr, n_samples)
            self.counts = np.bincount(self.label_index(u), minlength=len(self.classes)).tolist()
        else:
            cont = _continuous(arr, "pass numbers, or set u_type='categorical' (CLI: --u-type categorical) "
                                   "for labels")
            self.mean = cont.mean(0).tolist()
            std = cont.std(0)
            if np.any(std == 0):
                raise ValueError(
                    f"continuous u has constant column(s) {np.nonzero(std == 0)[0].tolist()}: "
                    "a constant auxiliary variable carries no information; drop it"
                )
            self.scale = std.tolist()
        return self

    def _check_label_count(self, arr: np.ndarray, n_samples: int) -> None:
        """More labels than half the rows leaves under 2 rows per label: most likely u is
        continuous (or an ID) and was read as labels; an error when guessed, a warning when asked."""
        n_labels = len(self.classes)
        if n_labels <= max(n_samples / 2, MAX_LABELS_ALWAYS_OK):
            return
        problem = (f"u has {n_labels} distinct labels for {n_samples} rows (fewer than 2 rows per "
                   "label), and each label gets its own prior parameters")
        if self.u_type == "categorical" or arr.ndim == 2:
            warnings.warn(f"{problem}; they will be poorly estimated", UserWarning, stacklevel=user_stacklevel())
            return
        fix = ("if u is a continuous variable (a time, a measurement) set u_type='continuous' "
               "(CLI: --u-type continuous)"
               if arr.dtype.kind in "iufb" else
               "if u is an identifier (cell or sample ID), pass a grouping variable instead")
        raise ValueError(f"{problem}: {fix}; to use these labels anyway set u_type='categorical' "
                         "(CLI: --u-type categorical)")

    def transform(self, u: Any) -> np.ndarray:
        """Encode u for the network: ``(N, aux_dim)`` float32."""
        if self.kind == "categorical":
            return np.eye(len(self.classes), dtype=np.float32)[self.label_index(u)]
        arr = _as_array(u)
        cont = _continuous(arr, "the model was fitted with continuous u; pass numbers")
        if cont.shape[1] != len(self.mean):
            raise ValueError(f"u has {cont.shape[1]} columns but the model was fitted with {len(self.mean)}")
        return ((cont - np.array(self.mean)) / np.array(self.scale)).astype(np.float32)

    def label_index(self, u: Any) -> np.ndarray:
        """Categorical u as the position of each row's label in ``classes``: ``(N,)`` int64.

        The compact form of :meth:`transform` (whose rows are one-hot over these indices).
        """
        if self.kind != "categorical":
            raise ValueError(f"label indices exist for categorical u only; this u is {self.kind}")
        arr = _as_array(u)
        known = f"{self.classes[:10]}{' ...' if len(self.classes) > 10 else ''}"
        if arr.ndim == 2 and arr.shape[1] > 1 and not _is_onehot(arr):
            raise ValueError(
                "u is continuous-valued but the model was fitted with categorical u "
                f"({len(self.classes)} labels); pass the labels or one-hot rows"
            )
        if arr.ndim == 2 and arr.shape[1] > 1 and arr.shape[1] != len(self.classes):
            raise ValueError(
                f"one-hot u has {arr.shape[1]} columns but the model knows {len(self.classes)} labels"
            )
        labels = _labels(arr, f"the model was fitted with categorical u, labels {known}; pass those labels")
        if arr.ndim == 2 and arr.shape[1] > 1:
            return labels.astype(np.int64)
        # one dictionary lookup per distinct label, not per row
        distinct, inverse = np.unique(labels, return_inverse=True)
        lookup = {c: i for i, c in enumerate(self.classes)}
        unseen = sorted({_py_scalar(v) for v in distinct} - set(self.classes), key=str)
        if unseen:
            raise ValueError(f"u contains label(s) not seen at fit time: {unseen[:10]}; known labels are {known}")
        positions = np.array([lookup[_py_scalar(v)] for v in distinct], dtype=np.int64)
        return positions[inverse.reshape(-1)]

    def to_dict(self) -> dict:
        return {"u_type": self.u_type, "kind": self.kind, "classes": self.classes,
                "mean": self.mean, "scale": self.scale, "counts": self.counts}


def _as_array(u: Any) -> np.ndarray:
    """u as a 1-D ``(N,)`` or 2-D ``(N, m)`` array of numbers, booleans or text labels."""
    if isinstance(u, str):
        raise TypeError(f"u={u!r} is a single string; pass one value per row of X (or, with a "
                        "DataFrame or AnnData X, the name of its column to the estimator)")
    try:
        arr = np.asarray(to_aux(u))
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise ValueError(f"u could not be converted to an array: {exc}") from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"u must be 1-D labels (N,) or 2-D (N, m), got shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.size == 0:
        raise ValueError(f"u is empty (shape {arr.shape}); pass one value per row of X")
    if arr.dtype.kind == "c":
        raise TypeError(f"u must be real-valued, got complex dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        arr = _object_labels(arr)
    if arr.dtype.kind == "S":  # bytes labels (e.g. from HDF5) as text, so they can be saved as JSON
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind not in "biufU":
        raise TypeError(
            f"u must hold labels or numbers, got dtype {arr.dtype}; convert it (datetimes to "
            "seconds with u_type='continuous', or to text labels)"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("u contains NaN or infinite values; drop or impute those rows")
    return arr


def _object_labels(arr: np.ndarray) -> np.ndarray:
    """An object array (lists of mixed Python values, pandas) as a typed one, or a clear error."""
    flat = arr.ravel()
    missing = [i for i, v in enumerate(flat) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise ValueError(
            f"u has {len(missing)} missing value(s) (first at position {missing[0]}); "
            "drop those rows or fill in their labels"
        )
    types = {bool if isinstance(v, (bool, np.bool_)) else
             str if isinstance(v, (str, np.str_)) else
             float if isinstance(v, (int, float, np.integer, np.floating)) else type(v) for v in flat}
    if len(types) > 1 or not types <= {bool, str, float}:
        names = sorted(t.__name__ for t in {type(v) for v in flat})
        raise TypeError(f"u mixes value types ({', '.join(names)}); use one type, e.g. u.astype(str) for labels")
    return np.array(flat.tolist()).reshape(arr.shape)


def _infer_kind(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iubU":
        return "categorical"
    if arr.ndim == 1:
        return "categorical" if _is_integral(arr) else "continuous"
    return "categorical" if _is_onehot(arr) else "continuous"


def _labels(arr: np.ndarray, hint: str) -> np.ndarray:
    """Label per row: the column index of one-hot rows, integral floats as integers."""
    if arr.ndim == 2:
        if not _is_onehot(arr):
            raise ValueError(
                "2-D categorical u must be one-hot (one 1 per row, zeros elsewhere); "
                "pass 1-D labels or set u_type='continuous' (CLI: --u-type continuous)"
            )
        return arr.argmax(1)
    if arr.dtype.kind == "f":
        if not _is_integral(arr):
            raise ValueError(f"u has non-integer values but categorical labels were expected; {hint}")
        return arr.astype(np.int64)
    return arr


def _continuous(arr: np.ndarray, hint: str) -> np.ndarray:
    if arr.dtype.kind not in "iufb":
        raise TypeError(f"u holds text labels (dtype {arr.dtype}) but continuous values were expected; {hint}")
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
    warnings.warn(message, IdentifiabilityWarning, stacklevel=user_stacklevel())
