"""What every ``nica`` command shares: one-line errors and warnings, the check that no
output is replaced without ``--overwrite``, and the option groups several commands take.

This module is below every command and imports no command, and nothing torch-heavy of
its own, so that ``nica --help`` stays quick.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from nica._model_dir import check_model_output
from nica.datasets.io import KEYED, TABULAR, DataFileError, Dataset, load_dataset, refuse_existing
from nica.datasets.tabular import MissingDependencyError

#: errors that are the user's to fix: printed as one line, exit code 1, no traceback
#: (OSError covers existing, missing, unreadable and unwritable paths)
USER_ERRORS = (DataFileError, ValueError, TypeError, OSError, FloatingPointError, MissingDependencyError)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's input errors into a one-line ``Error: ...`` message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # the reader left (`nica info m | head`): click exits quietly
            raise
        except USER_ERRORS as exc:
            raise click.ClickException(command_line_message(str(exc))) from None
        except MemoryError as exc:  # a size nica could not check in advance: still one line
            raise click.ClickException(command_line_message(
                f"out of memory ({exc or 'an allocation failed'}): the data or the model is too large for this "
                "machine; for data larger than memory save x as .npy, HDF5 or zarr and use nica fit --stream"
            )) from None

    return wrapper


def command_line_message(message: str) -> str:
    """A library error as the command line says it: one line whatever the message (some
    libraries' span several), and the option a Python argument stands for where the
    message names both ("pass overwrite=True (CLI: --overwrite)" -> "pass --overwrite")."""
    message = re.sub(r"(?:\b[\w.]+=[\w.'\"]+|\b\w+_\w+) \(CLI: (--[^)]+)\)", r"\1", message)
    return " ".join(message.split())


def one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` while a command runs: ``Warning: ...`` on stderr."""
    click.echo(f"Warning: {message}", err=True)


def check_outputs(paths: Iterable[Path], overwrite: bool, inputs: Iterable[Path | None] = ()) -> None:
    """Refuse, before any work, to replace an existing output unless ``--overwrite``, and
    ever to write over one of the command's ``inputs`` (``transform X --out X``)."""
    given = [Path(p) for p in inputs if p is not None]
    for path in paths:
        for source in given:
            if Path(path).exists() and source.exists() and os.path.samefile(path, source):
                raise FileExistsError(f"--out {path} is the input {source}; nica never writes over its input: "
                                      "choose another --out")
        refuse_existing(path, overwrite)


def check_model_outputs(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, a model output that exists without ``--overwrite``, or that
    is not a model nica saved (``--overwrite`` replaces nothing else; see
    :func:`nica._model_dir.check_model_output`)."""
    check_model_output(out, overwrite)


# ---------------------------------------------------------------- option groups
def _apply(func: Callable[..., Any], options: list[Callable[..., Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        func = option(func)
    return func


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say where x and u are in the data file (and their own files)."""
    return _apply(func, [
        click.option("--u", "u_file", type=click.Path(path_type=Path),
                     help="u from its own file (.npy/.npz/.csv/.parquet/.h5)"),
        click.option("--x-key", default="x", show_default=True, help="name of x in .npz/HDF5 files"),
        click.option("--u-key", default="u", show_default=True, help="name of u in .npz/HDF5 files"),
        click.option("--x-cols", help="x columns of a .csv/.parquet table: names or 0-based indices, "
                                      "comma separated, a:b for a range [default: all but u]"),
        click.option("--u-col", "u_cols", help="u column(s) of a .csv/.parquet table (labels or numbers)"),
    ])


def overwrite_option(help: str = "replace --out if it exists") -> Callable[[Callable[..., Any]], Any]:
    """``--overwrite``: replace existing outputs (otherwise refused before any work)."""
    return click.option("--overwrite", is_flag=True, help=help)


def check_finite_rows(x: Any, names: list[str] | None, data: Path) -> None:
    """Refuse NaN or infinite values in x as a file's reader counts: the first such value by
    its data row (from 1, a header not counted) and its column (the header's name, or its
    position from 1)."""
    import numpy as np

    if getattr(x, "dtype", None) is None or x.dtype.kind != "f" or x.ndim != 2:
        return
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    column = repr(names[col]) if names is not None else f"{col + 1} of {x.shape[1]}"
    raise DataFileError(f"x in {data} contains {int(bad.sum())} NaN or infinite value(s), the first in data row "
                        f"{row + 1} (counting from 1, without the header), column {column}; drop or impute "
                        "those rows")


def read_xu(data: Path, u_file: Path | None, x_key: str, u_key: str, x_cols: str | None,
            u_cols: str | None, need_u: bool = True) -> Dataset:
    """x (2-D) and u of DATA, located by the :func:`data_options`."""
    ds = load_dataset(data, u_path=u_file, x_key=x_key, u_key=u_key, x_cols=x_cols, u_cols=u_cols,
                      parts=("x", "u"))
    if ds.x.ndim == 1:  # a single observed feature stored as a flat column
        ds.x = ds.x[:, None]
    check_finite_rows(ds.x, ds.x_names, data)
    if need_u and ds.u is None:
        suffix = data.suffix.lower()
        where = (f"add an array {u_key!r} to it (or name it with --u-key)" if suffix in KEYED else
                 "choose its column with --u-col" if suffix in TABULAR else "a .npy file holds x alone")
        raise DataFileError(f"{data} has no auxiliary variable {u_key!r}: {where}, or pass --u FILE")
    return ds
