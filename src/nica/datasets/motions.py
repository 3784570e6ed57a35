"""BasicMotions: real accelerometer and gyroscope recordings, read from a package that ships
them (no download at run time).

Four people wore a smart watch while standing, walking, running and playing badminton,
five recordings of each activity each; every recording is 10 s of 3-D accelerometer and
3-D gyroscope readings at 10 Hz (100 time points x 6 channels). The UEA archive splits
the 80 recordings into 40 for training and 40 for testing, 10 per activity in each.

The files ship inside ``sktime`` (and ``aeon``): ``pip install 'nica[examples]'``. They are
read directly from the installed package (the ``.ts`` text format), without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nica.datasets.shipped import read_ts, shipped_file

CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
SPLITS = ("train", "test", "all")


@dataclass
class MotionRecordings:
    """Recordings as rows of one table: every time point of every recording is a row.

    Attributes
    ----------
    x : ``(n_recordings * 100, 6)`` sensor readings (float32), channels as in :data:`CHANNELS`.
    recording : ``(N,)`` recording index (0.. within the loaded split(s)).
    activity : ``(N,)`` activity name of the row's recording.
    time : ``(N,)`` time point within its recording (0..99, tenths of a second).
    split : ``(N,)`` ``"train"`` or ``"test"``: the archive's split of the recording.
    """

    x: np.ndarray
    recording: np.ndarray
    activity: np.ndarray
    time: np.ndarray
    split: np.ndarray

    @property
    def n_recordings(self) -> int:
        return int(self.recording.max()) + 1 if len(self.recording) else 0


def basic_motions_path(split: str) -> Path:
    """The shipped ``BasicMotions_{TRAIN,TEST}.ts`` file of ``split`` (``"train"``/``"test"``)."""
    return shipped_file("BasicMotions", f"BasicMotions_{split.upper()}.ts")


def load_basic_motions(split: str = "all") -> MotionRecordings:
    """The BasicMotions recordings of ``split`` (``"train"``, ``"test"`` or ``"all"``: train
    then test) as rows of a table, one per time point; see :class:`MotionRecordings`.

    Raises :class:`nica.datasets.tabular.MissingDependencyError` when no installed package
    ships the files (``pip install 'nica[examples]'``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    parts = ("train", "test") if split == "all" else (split,)
    xs, activities, names = [], [], []
    for part in parts:
        series, labels = read_ts(basic_motions_path(part))
        xs.append(series)
        activities.append(labels)
        names.append(np.full(len(labels), part))
    series, labels, split_of = np.concatenate(xs), np.concatenate(activities), np.concatenate(names)
    n_cases, n_channels, length = series.shape
    if n_channels != len(CHANNELS):
        raise ValueError(f"BasicMotions should have {len(CHANNELS)} channels, the file has {n_channels}")
    return MotionRecordings(
        x=np.ascontiguousarray(series.transpose(0, 2, 1).reshape(n_cases * length, n_channels)),
        recording=np.repeat(np.arange(n_cases), length),
        activity=np.repeat(labels, length),
        time=np.tile(np.arange(length), n_cases),
        split=np.repeat(split_of, length),
    )


__all__ = ["CHANNELS", "MotionRecordings", "basic_motions_path", "load_basic_motions", "read_ts"]
