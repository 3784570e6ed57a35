"""Every example in examples/ runs, in its quick mode, and produces what it promises."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_basic_motions_quick(tmp_path):
    pytest.importorskip("sktime", reason="the example's data ship in the 'examples' extra (part of 'dev')")
    example = load_example("basic_motions")
    summary = example.main(["--quick", "--out", str(tmp_path)])
    methods = ["flow", "ivae", "vae"] + (["cebra"] if importlib.util.find_spec("cebra") else [])
    assert list(summary) == [*methods, "raw x", "consistency check"]
    for method in methods:
        s = summary[method]
        assert 0.0 <= s["weak_mcc_mean"] <= 1.0 and 0.0 <= s["mcc_mean"] <= 1.0
        assert 0.25 < s["activity_accuracy_recording"] <= 1.0  # chance is 0.25: 4 activities
    check = summary["consistency check"]
    assert check["model"] == "IFlow" and check["new_rows"] and check["n_eval_rows"] == 4000
    assert list(check["references"]) == ["vae", "shuffled-u"] and len(check["per_component"]) == 6
    with open(tmp_path / "basic-motions-quick.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {*methods, "raw x"} and len(rows) == 2 * len(methods) + 1
    for name in ("basic-motions-quick-summary.csv", "basic-motions-quick-consistency.json"):
        assert (tmp_path / name).exists()
    for name in ("basic-motions-quick.png", "basic-motions-quick-consistency.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_basic_motions_data_are_read_from_the_installed_package():
    pytest.importorskip("sktime")
    from nica.datasets.motions import CHANNELS, load_basic_motions

    train, test = load_basic_motions("train"), load_basic_motions("test")
    assert train.x.shape == test.x.shape == (40 * 100, len(CHANNELS))
    assert train.n_recordings == test.n_recordings == 40
    assert sorted(set(train.activity)) == ["Badminton", "Running", "Standing", "Walking"]
    assert list(train.time[:3]) == [0, 1, 2] and train.recording[100] == 1


def test_missing_extra_is_a_clear_error(monkeypatch):
    import importlib.util as util

    from nica.datasets import motions
    from nica.datasets.tabular import MissingDependencyError

    monkeypatch.setattr(util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"nica\[examples\]"):
        motions.load_basic_motions("train")


def test_read_ts(tmp_path):
    from nica.datasets.motions import read_ts

    path = tmp_path / "t.ts"
    path.write_text("# comment\n@problemName T\n@data\n1,2,3:4,5,6:walk\n7,8,9:1,1,1:run\n")
    series, labels = read_ts(path)
    assert series.shape == (2, 2, 3) and list(labels) == ["walk", "run"]
    assert series[1, 0].tolist() == [7.0, 8.0, 9.0]
    path.write_text("@data\n1,2,x:4,5,6:walk\n")
    with pytest.raises(ValueError, match="line 2"):
        read_ts(path)
    path.write_text("@data\n1,2:4,5,6:walk\n")
    with pytest.raises(ValueError, match="equal-length"):
        read_ts(path)


def test_japanese_vowels_quick(tmp_path):
    pytest.importorskip("sktime", reason="the example's data ship in the 'examples' extra (part of 'dev')")
    example = load_example("japanese_vowels")
    summary = example.main(["--quick", "--out", str(tmp_path)])
    methods = ["flow", "vae"] + (["cebra"] if importlib.util.find_spec("cebra") else [])
    assert list(summary) == [*methods, "raw x", "pca", "consistency check"]
    for method in methods:
        s = summary[method]
        assert 0.0 <= s["weak_mcc_mean"] <= 1.0 and 0.0 <= s["mcc_mean"] <= 1.0
        assert 1 / 9 < s["speaker_accuracy_utterance"] <= 1.0  # 9 speakers
    check = summary["consistency check"]
    assert check["model"] == "IFlow" and check["n_eval_rows"] == 5687 and check["n_fit_rows"] == 4274
    with open(tmp_path / "japanese-vowels-quick.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {*methods, "raw x", "pca"} and len(rows) == 2 * len(methods) + 2
    for name in ("japanese-vowels-quick.png", "japanese-vowels-quick-consistency.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_japanese_vowels_data_are_read_from_the_installed_package():
    pytest.importorskip("sktime")
    from nica.datasets.vowels import N_COEFFICIENTS, load_japanese_vowels

    train, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    assert train.x.shape == (4274, N_COEFFICIENTS) and test.x.shape == (5687, N_COEFFICIENTS)
    assert train.n_utterances == 270 and test.n_utterances == 370
    assert sorted(set(train.speaker)) == list(range(1, 10))
    assert np.bincount(train.speaker[np.r_[True, np.diff(train.utterance) > 0]])[1:].tolist() == [30] * 9
    lengths = np.bincount(test.utterance)
    assert lengths.min() >= 7 and lengths.max() <= 29 and test.time.max() == lengths.max() - 1
    both = load_japanese_vowels("all")
    assert both.n_utterances == 640 and set(both.split) == {"train", "test"}
    with pytest.raises(ValueError, match="split"):
        load_japanese_vowels("dev")


def test_read_ts_cases_of_different_lengths(tmp_path):
    from nica.datasets.shipped import read_ts_cases

    path = tmp_path / "t.ts"
    path.write_text("@problemName T\n@data\n1,2,3:4,5,6:a\n7,8:9,10:b\n")
    series, labels = read_ts_cases(path)
    assert [s.shape for s in series] == [(2, 3), (2, 2)] and list(labels) == ["a", "b"]
    path.write_text("@data\n1,2,3:4,5,6:a\n7,8:b\n")
    with pytest.raises(ValueError, match="same channels"):
        read_ts_cases(path)
