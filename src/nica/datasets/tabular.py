"""Tables and annotated matrices as plain arrays: pandas, AnnData, scipy sparse, CSV, parquet.

One place turns the user's containers into numpy arrays, for the estimator and the CLI
alike.  A table is a list of named columns; its numeric columns become one float array
and a non-numeric column is named in the error.  pandas, pyarrow, h5py and anndata are
optional (``pip install "nica[formats]"``) and imported only when such an object or
file is met: an object can only be a DataFrame if pandas is already imported.
"""

from __future__ import annotations

import csv
import importlib
import itertools
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: how to install every optional reader at once
FORMATS_EXTRA = 'pip install "nica[formats]"'
#: what a column selection may be: names, 0-based indices (negative from the end), or a
#: comma-separated string of those, where ``a:b`` is the index range a..b-1
ColumnSpec = str | int | Sequence[str | int]
#: numpy dtype kinds that count as numbers: bool, signed, unsigned, float
NUMERIC_KINDS = "biuf"


class MissingDependencyError(ImportError):
    """An optional package, needed for a file type or a container, is not installed."""


def require(module: str, purpose: str) -> Any:
    """Import the optional ``module``, or say which extra to install for ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module!r}, which is not installed; "
            f"install it with: {FORMATS_EXTRA}"
        ) from None


def _instance_of(obj: Any, module: str, cls: str) -> bool:
    mod = sys.modules.get(module)  # never imports: an object of an unimported type can't exist
    return mod is not None and isinstance(obj, getattr(mod, cls, ()))


def is_dataframe(obj: Any) -> bool:
    """True for a ``pandas.DataFrame``."""
    return _instance_of(obj, "pandas", "DataFrame")


def is_series(obj: Any) -> bool:
    """True for a ``pandas.Series``."""
    return _instance_of(obj, "pandas", "Series")


def is_anndata(obj: Any) -> bool:
    """True for an ``anndata.AnnData``."""
    return _instance_of(obj, "anndata", "AnnData")


def _is_sparse(obj: Any) -> bool:
    return _instance_of(obj, "scipy.sparse", "spmatrix") or _instance_of(obj, "scipy.sparse", "sparray")


# ---------------------------------------------------------------------------- tables
@dataclass
class Table:
    """Named columns of equal length, each a 1-D numpy array.

    ``source`` names where the table came from (a file, ``"the DataFrame"``) in errors.
    """

    names: list[str]
    columns: list[np.ndarray]
    source: str = "the table"
    #: the names come from the data (a header, a DataFrame), not from column positions
    named: bool = True
    #: the values were written as text (CSV): integral numbers in a u column are labels
    from_text: bool = False

    @classmethod
    def from_frame(cls, frame: Any, source: str = "the DataFrame") -> Table:
        """A pandas DataFrame's columns; nullable integers/floats become float with NaN."""
        return cls([str(c) for c in frame.columns], [_series_values(frame[c]) for c in frame.columns], source)

    def select(self, spec: ColumnSpec | None, option: str) -> list[int]:
        """Indices of the columns named by ``spec`` (see :data:`ColumnSpec`); None selects all.

        ``option`` names the argument in errors (e.g. ``"x_cols (--x-cols)"``).  A string
        token matching a column name is that column; otherwise an integer is an index.
        """
        if spec is None:
            return list(range(len(self.names)))
        tokens = _tokens(spec)
        if not tokens:
            raise ValueError(f"{option} selects no columns; name at least one column of {self.source}")
        out: list[int] = []
        for token in tokens:
            out.extend(self._resolve(token, option))
        duplicated = sorted({self.names[i] for i in out if out.count(i) > 1})
        if duplicated:
            raise ValueError(f"{option} selects column(s) {duplicated} more than once; name each column once")
        return out

    def _resolve(self, token: str | int, option: str) -> list[int]:
        n = len(self.names)
        if isinstance(token, str) and token in self.names:
            return [self.names.index(token)]
        if isinstance(token, str) and ":" in token:
            start, _, stop = token.partition(":")
            try:
                indices = list(range(n))[slice(int(start) if start else None, int(stop) if stop else None)]
            except ValueError:
                indices = []
            if indices:
                return indices
        else:
            try:
                index = int(token)
            except ValueError:
                index = None
            if index is not None and not isinstance(token, bool) and -n <= index < n:
                return [index % n]
        shown = self.names if n <= 20 else self.names[:20] + ["..."]
        raise ValueError(
            f"{option}: {token!r} is neither a column name nor a column index (0..{n - 1}) of "
            f"{self.source}; its columns are {shown}"
        )

    def non_numeric(self, indices: Sequence[int]) -> list[int]:
        """Which of the columns ``indices`` hold something other than numbers."""
        return [i for i in indices if _numeric(self.columns[i]) is None]

    def numeric(self, indices: Sequence[int], name: str) -> np.ndarray:
        """The selected columns as one float64 array ``(N, k)``; errors name non-numeric columns."""
        if len(indices) > 64 and all(self.columns[i].dtype.kind == "U" for i in indices):
            try:  # many text columns (a wide CSV): parsed as one block, not column by column
                block = np.char.strip(np.stack([self.columns[i] for i in indices], axis=1))
                return np.where(block == "", "nan", block).astype(np.float64)
            except ValueError:
                pass  # some column is not numbers: the loop below names it
        converted = {i: _numeric(self.columns[i]) for i in indices}
        bad = [i for i, values in converted.items() if values is None]
        if bad:
            details = ", ".join(f"{self.names[i]!r} ({_describe(self.columns[i])})" for i in bad[:10])
            raise TypeError(
                f"{name} has non-numeric column(s) in {self.source}: {details}; select only numeric "
                "columns (CLI: --x-cols / --u-col / --s-cols) or encode these as numbers"
            )
        if not indices:
            raise ValueError(f"{name} has no columns left in {self.source}; select at least one column")
        return np.column_stack([converted[i] for i in indices])

    def aux(self, indices: Sequence[int], name: str = "u") -> np.ndarray:
        """u from the selected columns: one column keeps its labels (text or numbers) ``(N,)``;
        several columns must be numeric and give ``(N, k)``."""
        if len(indices) == 1:
            column = self.columns[indices[0]]
            if column.dtype.kind in NUMERIC_KINDS:
                return _integers_if_integral(column) if self.from_text and column.dtype.kind == "f" else column
            values = _numeric(column)
            if values is not None:  # a text column of numbers (CSV)
                return _integers_if_integral(values)
            return _labels_column(column, f"{name} column {self.names[indices[0]]!r} of {self.source}")
        return self.numeric(indices, name)


def _tokens(spec: ColumnSpec) -> list[str | int]:
    if isinstance(spec, str):
        return [t.strip() for t in spec.split(",") if t.strip()]
    if isinstance(spec, (int, np.integer)):
        return [int(spec)]
    return list(spec)


def _numeric(column: np.ndarray) -> np.ndarray | None:
    """The column as float64, or None when it is not numbers.

    Text columns (from CSV) are parsed; an empty field is a missing value (NaN).
    """
    kind = column.dtype.kind
    if kind in NUMERIC_KINDS:
        return column.astype(np.float64)
    if kind == "U":
        stripped = np.char.strip(column)
        try:
            return np.where(stripped == "", "nan", stripped).astype(np.float64)
        except ValueError:
            return None
    return None


def _integers_if_integral(values: np.ndarray) -> np.ndarray:
    # CSV labels "1", "2" arrive as text; integer labels keep u's label type stable
    finite = np.isfinite(values)
    if finite.all() and np.all(values == np.round(values)) and np.abs(values).max(initial=0) < 2**53:
        return values.astype(np.int64)
    return values


def _describe(column: np.ndarray) -> str:
    if column.dtype.kind == "U":
        stripped = np.char.strip(column)
        for value in stripped:
            try:
                float(value or "nan")
            except ValueError:
                return f"holds text such as {str(value)[:30]!r}"
    if column.dtype == object:
        kinds = sorted({type(v).__name__ for v in column[:1000]})
        return f"dtype object holding {', '.join(kinds)}"
    return f"dtype {column.dtype}"


def _labels_column(column: np.ndarray, name: str) -> np.ndarray:
    """Text labels with missing entries (None, NaN, empty) rejected."""
    values = np.asarray(column, dtype=object)
    missing = [i for i, v in enumerate(values)
               if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and v != v)]
    if missing:
        raise ValueError(
            f"{name} has {len(missing)} missing value(s) (first in row {missing[0]}); "
            "drop those rows or fill in their labels"
        )
    if all(isinstance(v, (str, np.str_)) for v in values):
        return np.char.strip(values.astype(str))
    return values


def _series_values(series: Any) -> np.ndarray:
    """One pandas column as numpy: numbers (nullable ones with NaN) or objects."""
    pd = sys.modules["pandas"]
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in NUMERIC_KINDS + "Mmc":
        return series.to_numpy()
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if not isinstance(dtype, pd.CategoricalDtype):  # nullable Int64 / Float64 / boolean
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)


# ---------------------------------------------------------------------------- containers
def to_array(data: Any, name: str = "X") -> Any:
    """``data`` as a numpy array when it is a container numpy cannot read on its own.

    A DataFrame gives its numeric columns as float64 ``(N, k)`` (an error names any
    non-numeric column); a Series its values; an AnnData its ``X``; a scipy sparse matrix
    its dense form.  Anything else is returned unchanged for ``np.asarray``.
    """
    if is_anndata(data):
        return to_array(data.X, f"{name} (AnnData .X)")
    if is_dataframe(data):
        table = Table.from_frame(data)
        return table.numeric(range(len(table.names)), name)
    if is_series(data):
        return _series_values(data)
    if _is_sparse(data):
        return data.toarray()
    return data


def to_aux(u: Any, name: str = "u") -> Any:
    """u as a numpy array when it is a pandas Series/DataFrame; labels keep their values.

    A categorical or text Series gives its labels (missing ones are an error); a
    DataFrame gives its numeric columns ``(N, k)``.  Anything else is returned unchanged.
    """
    if is_series(u):
        values = _series_values(u)
        return values if values.dtype != object else _labels_column(values, name)
    if is_dataframe(u):
        table = Table.from_frame(u)
        return table.aux(range(len(table.names)), name)
    if _is_sparse(u):
        return u.toarray()
    return u


def split_aux(X: Any, u: Any) -> tuple[Any, Any]:
    """Resolve ``u`` given as a column name: ``adata.obs[u]`` or a DataFrame column.

    ``fit(adata, u="segment")`` takes u from ``adata.obs["segment"]``;
    ``fit(frame, u="segment")`` takes that column as u and the other columns as X.
    Any other u is returned as is.
    """
    if not isinstance(u, str):
        return X, u
    if is_anndata(X):
        columns = list(X.obs.columns)
        if u not in columns:
            raise ValueError(f"u={u!r} is not a column of adata.obs; its columns are {columns}")
        return X, X.obs[u]
    if is_dataframe(X):
        columns = [str(c) for c in X.columns]
        if u not in X.columns:
            raise ValueError(f"u={u!r} is not a column of X; its columns are {columns}")
        return X.drop(columns=[u]), X[u]
    raise TypeError(
        f"u={u!r} is a column name, but X is a {type(X).__name__} without named columns; pass u "
        "as an array (n_samples,), or X as a pandas DataFrame or AnnData that holds that column"
    )


# ---------------------------------------------------------------------------- files
def read_csv_table(path: Path) -> Table:
    """A comma-separated file as a table.

    Lines starting with ``#`` are comments.  The first row is a header when it holds text
    above numbers, or, above text, names that never recur in their column while a column
    below repeats its values (labels).  A table of numbers is parsed as numbers directly;
    one with text columns is read as text a bounded block of rows at a time (a table of a
    million columns never asks for 50,000 rows of them at once), and its columns are
    parsed when selected, so a text column can hold labels for u.  The memory the table
    needs, estimated from its first rows and the file's size, is checked before it is
    read.  Without a header the columns are named by their indices ``"0"``, ``"1"``, ...
    """
    head: list[tuple[int, list[str], int]] = []  # (line number, fields, bytes) of the first content lines
    with open(path, newline="", encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            if line.strip() and not line.lstrip().startswith("#"):
                head.append((number, next(csv.reader([line])), len(line.encode("utf-8"))))
                if len(head) == HEADER_SNIFF_ROWS:
                    break
    if not head:
        raise ValueError(f"{path} is empty")
    has_header = _looks_like_header([fields for _, fields, _ in head])
    if has_header and len(head) == 1:
        raise ValueError(f"{path} has a header row but no data rows")
    first = int(has_header)
    rows = [fields for _, fields, _ in head[first:]]
    all_numbers = all(field.strip() and _is_number(field) for row in rows for field in row)
    _check_table_memory(path, head[first:], all_numbers)
    options = dict(delimiter=",", skiprows=head[first][0], ndmin=2, quotechar='"', encoding="utf-8")
    columns: list[np.ndarray] | None = None
    if all_numbers:  # numbers only, no text copies; any surprise further down is read as text
        try:
            values = np.loadtxt(path, dtype=np.float64, **options)
            columns = list(values.T)
        except ValueError:
            columns = None
    if columns is None:
        columns = list(_read_text_cells(path, options, len(rows[0])).T)
    names = [h.strip() for h in head[0][1]] if has_header else [str(i) for i in range(len(columns))]
    if len(names) != len(columns):
        raise ValueError(f"{path} has {len(names)} header fields but {len(columns)} fields per row")
    return Table(names, columns, str(path), named=has_header, from_text=True)


#: cells parsed as text per block (rows x columns): bounds what numpy allocates at once
TEXT_BLOCK_CELLS = 2**20


def _read_text_cells(path: Path, options: dict[str, Any], n_columns: int) -> np.ndarray:
    """Every field of a CSV file as text ``(rows, columns)``, in blocks of rows."""
    block = max(1, min(50_000, TEXT_BLOCK_CELLS // max(1, n_columns)))
    parts = []
    skip = options["skiprows"]
    with warnings.catch_warnings(), open(path, newline="", encoding="utf-8") as fh:
        warnings.simplefilter("ignore")  # numpy's "input contained no data" at the end of the file
        lines = itertools.islice(fh, skip, None)
        while True:
            chunk = list(itertools.islice(lines, block))
            if not chunk:
                break
            try:
                cells = np.loadtxt(chunk, dtype=str, **{**options, "skiprows": 0, "max_rows": block})
            except ValueError as exc:
                message = str(exc).split(";")[0]  # numpy's advice on `usecols` does not apply here
                if "number of columns changed" in message:
                    raise ValueError(f"{path} has rows of different lengths ({message}); every row "
                                     "needs the same number of fields") from None
                raise
            if cells.size:
                if parts and cells.shape[1] != parts[0].shape[1]:
                    raise ValueError(f"{path} has rows of different lengths ({parts[0].shape[1]} and "
                                     f"{cells.shape[1]} fields); every row needs the same number of fields")
                parts.append(cells)
    if not parts:
        raise ValueError(f"{path} has no data rows")
    width = max(p.dtype.itemsize for p in parts) // 4
    return np.concatenate([p.astype(f"<U{width}") for p in parts]) if len(parts) > 1 else parts[0]


def _check_table_memory(path: Path, data_head: list[tuple[int, list[str], int]], numbers: bool) -> None:
    """The memory a table will take, estimated from its first data rows and the file's
    size, against what this process may allocate (a one-line error before reading it)."""
    from nica._fs import check_allocation

    line_bytes = sum(size for _, _, size in data_head) / len(data_head)
    n_rows = path.stat().st_size / max(line_bytes, 1.0)
    n_columns = max(len(fields) for _, fields, _ in data_head)
    width = 8 if numbers else 4 * max(len(field) for _, fields, _ in data_head for field in fields) + 8
    check_allocation(int(n_rows * n_columns * width), f"reading {path} (about {n_rows:,.0f} rows x {n_columns:,} "
                     "columns)", "read fewer columns, or save x as .npy, HDF5 or zarr and fit it from disk "
                                 "(nica fit --stream)")


#: rows read to decide whether the first row of a CSV file is a header
HEADER_SNIFF_ROWS = 1000


def _is_number(field: str) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return not field.strip()  # an empty field is a missing number


def _looks_like_header(rows: list[list[str]]) -> bool:
    first, rest = rows[0], rows[1:]
    if not rest:
        return not all(_is_number(f) for f in first)
    if any(not _is_number(a) and _is_number(b) for a, b in zip(first, rest[0])):
        return True  # text above a number
    text = [j for j, field in enumerate(first) if not _is_number(field)]
    if not text:
        return False
    below = {j: [row[j].strip() for row in rest if j < len(row)] for j in text}
    if any(first[j].strip() in below[j] for j in text):
        return False  # the first row's text recurs: it is a label like the others
    return any(len(set(values)) < len(values) for values in below.values())


def read_parquet_table(path: Path) -> Table:
    """A parquet file as a table (needs pyarrow)."""
    pq = require("pyarrow.parquet", f"reading {path.name} (parquet)")
    table = pq.read_table(path)
    return Table(list(table.column_names), [table.column(i).to_numpy() for i in range(table.num_columns)],
                 str(path))


__all__ = [
    "FORMATS_EXTRA",
    "MissingDependencyError",
    "Table",
    "is_anndata",
    "is_dataframe",
    "is_series",
    "read_csv_table",
    "read_parquet_table",
    "require",
    "split_aux",
    "to_array",
    "to_aux",
]
