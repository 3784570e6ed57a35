"""Every example in examples/ runs, in its quick mode, and produces what it promises."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

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
    methods = ["ivae", "vae"] + (["cebra"] if importlib.util.find_spec("cebra") else [])
    assert list(summary) == [*methods, "raw x"]
    for method in methods:
        s = summary[method]
        assert 0.0 <= s["weak_mcc_mean"] <= 1.0 and 0.0 <= s["mcc_mean"] <= 1.0
        assert 0.25 < s["activity_accuracy_recording"] <= 1.0  # chance is 0.25: 4 activities
    with open(tmp_path / "basic-motions-quick.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {*methods, "raw x"} and len(rows) == 2 * len(methods) + 1
    assert (tmp_path / "basic-motions-quick-summary.csv").exists()
    assert (tmp_path / "basic-motions-quick.png").stat().st_size > 10_000


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
