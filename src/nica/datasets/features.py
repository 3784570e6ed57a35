"""The names of X's columns: recorded at fit time, checked at transform time.

A model fitted on a table (a pandas DataFrame, an AnnData, a CSV or parquet file with a
header) records its column names as ``feature_names_in_``, as scikit-learn does. New data
whose columns come in another order are realigned by name; columns that were renamed,
are missing or were not seen at fit time are refused, rather than silently giving
different latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nica.datasets.tabular import is_anndata, is_dataframe


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a DataFrame (when every name is a string) or the ``var_names``
    of an AnnData, as an object array ``(n_features,)``; None for anything else."""
    if is_anndata(X):
        names = list(X.var_names)
    elif is_dataframe(X):
        names = list(X.columns)
    else:
        return None
    if not names or not all(isinstance(n, str) for n in names):
        return None
    return np.asarray(names, dtype=object)


def align_columns(x: np.ndarray, names: Sequence[str] | None, fitted: Sequence[str] | None,
                  source: str = "X") -> np.ndarray:
    """x ``(N, d)`` with its columns in the fitted order.

    ``names`` are x's column names (None: unknown, x is taken as it is), ``fitted`` the
    model's ``feature_names_in_`` (None: fitted without names). The same names in another
    order are realigned (a C-contiguous copy, so that its latents are bitwise those of x in
    the fitted order); different names raise ``ValueError`` naming them.
    """
    if names is None or fitted is None:
        return x
    names, fitted = [str(n) for n in names], [str(n) for n in fitted]
    if names == fitted:
        return x
    if len(set(names)) == len(names) and set(names) == set(fitted):
        position = {name: i for i, name in enumerate(names)}
        # a row-major copy: x[:, order] alone is column-major, and the layout changes the
        # kernels (and the float rounding) of the transform that follows
        return np.ascontiguousarray(x[:, [position[name] for name in fitted]])
    missing = [n for n in fitted if n not in names]
    unexpected = [n for n in names if n not in fitted]
    parts = [f"missing {missing[:10]}" if missing else "", f"not seen at fit time {unexpected[:10]}" if unexpected else "",
             "repeated names" if len(set(names)) < len(names) else ""]
    raise ValueError(
        f"the columns of {source} do not match the {len(fitted)} the model was fitted with "
        f"({'; '.join(p for p in parts if p)}); pass the fitted columns, by these names: "
        f"{fitted[:20]}{' ...' if len(fitted) > 20 else ''}"
    )


__all__ = ["align_columns", "feature_names"]
