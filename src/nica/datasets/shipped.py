"""Real data sets that ship inside installed packages (no download at run time): where their
files are, and the reader of their ``.ts`` text format (the UEA/UCR archive's).

sktime (and aeon) ship a few of the archive's data sets as files inside the package:
:mod:`nica.datasets.motions` (BasicMotions, smart-watch sensors) and
:mod:`nica.datasets.vowels` (JapaneseVowels, speech) read them from there, without
importing the package. ``pip install 'nica[examples]'``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from nica.datasets.tabular import MissingDependencyError

#: packages that ship the UEA/UCR files, and the folder of the data sets inside each
SHIPPED_IN = (("sktime", "datasets/data"), ("aeon", "datasets/data"))
EXAMPLES_EXTRA = "pip install 'nica[examples]'"


def shipped_file(dataset: str, filename: str) -> Path:
    """The path of ``dataset/filename`` inside the first installed package that ships it.

    Raises :class:`nica.datasets.tabular.MissingDependencyError` when none does.
    """
    for package, folder in SHIPPED_IN:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / folder / dataset / filename
        if path.is_file():
            return path
    raise MissingDependencyError(
        f"the {dataset} data ship inside the optional package 'sktime' (or 'aeon'), "
        f"which is not installed; install it with: {EXAMPLES_EXTRA}"
    )


def read_ts_cases(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """A multivariate ``.ts`` file of series of any lengths: one ``(n_channels, length)``
    float32 array per case, and the class labels ``(n_cases,)``."""
    series, labels = [], []
    in_data = False
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        try:
            values = [[float(v) for v in channel.split(",")] for channel in channels]
        except ValueError:
            raise ValueError(f"{path}, line {number}: a value is not a number") from None
        if not values or len({len(c) for c in values}) != 1:
            raise ValueError(f"{path}, line {number}: the case's channels are not equal-length")
        series.append(np.asarray(values, dtype=np.float32))
        labels.append(label.strip())
    if not series or len({s.shape[0] for s in series}) != 1:
        raise ValueError(f"{path} holds no multivariate series with the same channels after @data")
    return series, np.asarray(labels)


def read_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A multivariate, equal-length ``.ts`` file: series ``(n_cases, n_channels, length)``
    float32 and class labels ``(n_cases,)``."""
    series, labels = read_ts_cases(path)
    if len({s.shape for s in series}) != 1:
        raise ValueError(f"{path} holds no equal-length multivariate series after @data")
    return np.stack(series), labels


__all__ = ["EXAMPLES_EXTRA", "SHIPPED_IN", "read_ts", "read_ts_cases", "shipped_file"]
