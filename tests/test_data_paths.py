"""What a user meets on the data paths: column names checked at transform time, shared
models readable by others, sweep workers sized from the CPU affinity, restarts after
``nica.load``, ``nica info | head`` quiet, and select-n's warning on short fits."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import nica
from nica import IFlow, IVAE
from nica.cli import main
from nica.datasets.features import align_columns, feature_names
from nica.model_selection import select_n_components

FAST = dict(hidden_dim=16, n_layers=2, batch_size=100, max_steps=30, device="cpu", random_state=0)
COLUMNS = ["acc", "gyro", "temp"]


@pytest.fixture(scope="module")
def frame(tiny_data):
    return pd.DataFrame(tiny_data.x, columns=COLUMNS)


@pytest.fixture(scope="module")
def frame_model(frame, tiny_data):
    return IVAE(3, **FAST).fit(frame, tiny_data.u)


# ---------------------------------------------------------------- column names
def test_a_table_model_records_its_column_names(frame_model, fitted_ivae):
    assert list(frame_model.feature_names_in_) == COLUMNS
    assert fitted_ivae.feature_names_in_ is None  # fitted on an array


@pytest.mark.numerics
def test_reordered_columns_are_realigned_by_name(frame_model, frame):
    expected = frame_model.transform(frame)
    np.testing.assert_array_equal(frame_model.transform(frame[COLUMNS[::-1]]), expected)
    np.testing.assert_array_equal(frame_model.transform(frame.to_numpy()), expected)  # no names: as given


@pytest.mark.parametrize("columns, problem", [
    (["acc", "gyro", "pressure"], "missing ['temp']; not seen at fit time ['pressure']"),
    (["acc", "gyro", "temp", "extra"], "not seen at fit time ['extra']"),
])
def test_other_columns_are_refused(frame_model, frame, columns, problem):
    other = frame.reindex(columns=columns, fill_value=0.0)
    if "pressure" in columns:
        other["pressure"] = frame["temp"]
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        frame_model.transform(other)


@pytest.mark.numerics
def test_column_names_survive_save_and_load(frame_model, frame, tmp_path):
    loaded = nica.load(frame_model.save(tmp_path / "m"))
    assert list(loaded.feature_names_in_) == COLUMNS
    np.testing.assert_array_equal(loaded.transform(frame[COLUMNS[::-1]]), frame_model.transform(frame))
    with pytest.raises(ValueError, match="do not match"):
        loaded.transform(frame.rename(columns={"acc": "ACC"}))


@pytest.mark.numerics
@pytest.mark.parametrize("estimator", [IVAE, IFlow])
def test_any_layout_of_x_gives_bitwise_the_same_latents(tiny_data, estimator):
    """Row-major, column-major and column-realigned X hold the same numbers: each is taken
    as a row-major float32 copy, so the transform runs the same kernels and its latents
    are bitwise equal (on any CPU: the layout no longer picks the kernel)."""
    model = estimator(3, **{**FAST, "max_steps": 10}).fit(tiny_data.x, tiny_data.u)
    expected = model.transform(tiny_data.x)
    shuffled = tiny_data.x[:, [2, 0, 1]]  # column-major, as realignment by name makes it
    for x in (np.asfortranarray(tiny_data.x), shuffled[:, [1, 2, 0]], tiny_data.x.astype(np.float64, order="F")):
        assert not x.flags.c_contiguous or x.dtype != np.float32
        np.testing.assert_array_equal(model.transform(x), expected)
    assert align_columns(shuffled, ["temp", "acc", "gyro"], COLUMNS).flags.c_contiguous
    refit = estimator(3, **{**FAST, "max_steps": 10}).fit(np.asfortranarray(tiny_data.x), tiny_data.u)
    np.testing.assert_array_equal(refit.transform(tiny_data.x), expected)  # the fit too


@pytest.mark.numerics
def test_iflow_checks_column_names(frame, tiny_data):
    flow = IFlow(3, n_flows=1, hidden_dim=8, max_steps=5, random_state=0).fit(frame, tiny_data.u)
    np.testing.assert_array_equal(flow.transform(frame[["temp", "acc", "gyro"]]), flow.transform(frame))
    with pytest.raises(ValueError, match="do not match"):
        flow.transform(frame.rename(columns={"gyro": "g"}))


def test_align_columns_unit():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(align_columns(x, ["b", "c", "a"], ["a", "b", "c"]), x[:, [2, 0, 1]])
    assert align_columns(x, None, ["a", "b", "c"]) is x
    with pytest.raises(ValueError, match="repeated names"):
        align_columns(x, ["a", "a", "b"], ["a", "b", "c"])
    assert feature_names(pd.DataFrame(x, columns=[0, 1, 2])) is None  # not names: positions


@pytest.mark.numerics
def test_cli_refuses_or_realigns_a_table_by_its_header(tiny_data, tmp_path):
    def write(path, columns):
        frame = pd.DataFrame(tiny_data.x, columns=COLUMNS).assign(seg=tiny_data.u)
        frame[columns].to_csv(path, index=False)

    write(tmp_path / "fit.csv", COLUMNS + ["seg"])
    write(tmp_path / "reordered.csv", ["temp", "seg", "acc", "gyro"])
    renamed = pd.read_csv(tmp_path / "fit.csv").rename(columns={"temp": "temperature"})
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    runner = CliRunner()
    fit = runner.invoke(main, ["fit", str(tmp_path / "fit.csv"), "--u-col", "seg", "--n-components", "3",
                               "--max-steps", "20", "--hidden-dim", "8", "--quiet", "--out", str(tmp_path / "m")])
    assert fit.exit_code == 0, fit.output
    assert list(nica.load(tmp_path / "m").feature_names_in_) == COLUMNS
    for name in ("fit", "reordered"):
        result = runner.invoke(main, ["transform", str(tmp_path / "m"), str(tmp_path / f"{name}.csv"),
                                      "--u-col", "seg", "--out", str(tmp_path / f"z-{name}.npy")])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "z-reordered.npy"), np.load(tmp_path / "z-fit.npy"))
    for command in ("transform", "predict-u"):
        result = runner.invoke(main, [command, str(tmp_path / "m"), str(tmp_path / "renamed.csv"), "--u-col", "seg",
                                      "--out", str(tmp_path / "out.npy")])
        assert result.exit_code == 1
        assert "missing ['temp']; not seen at fit time ['temperature']" in result.output


# ---------------------------------------------------------------- permissions
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_saved_files_get_the_umasks_permissions(fitted_ivae, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = fitted_ivae.save(tmp_path / "m")
    finally:
        os.umask(previous)
    for name in ("config.json", "weights.safetensors"):
        assert stat.S_IMODE(os.stat(path / name).st_mode) == mode, name
    assert stat.S_IMODE(os.stat(path).st_mode) == mode | (mode & 0o444) >> 2  # directories: x where r


# ---------------------------------------------------------------- sweep workers
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux feature")
def test_sweep_workers_follow_the_cpu_affinity(monkeypatch):
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from nica.sweep.execute import usable_cpus; print(usable_cpus())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"

    import distributed

    from nica.sweep import execute

    made = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", lambda cluster: FakeCluster())
    monkeypatch.setattr(execute, "usable_cpus", lambda: 6)
    with execute._connect(None, None, None, threads_per_worker=1, torch_threads=2):
        pass
    assert made["n_workers"] == 3


# ---------------------------------------------------------------- restarts after load
@pytest.mark.numerics
def test_restarts_survive_save_and_load(tiny_data, tmp_path):
    model = IVAE(3, **{**FAST, "n_restarts": 3}).fit(tiny_data.x, tiny_data.u)
    loaded = nica.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform_restarts(tiny_data.x), model.transform_restarts(tiny_data.x))
    np.testing.assert_array_equal(loaded.transform_restarts(tiny_data.x)[loaded.selected_restart_],
                                  loaded.transform(tiny_data.x))
    single = nica.load(IVAE(3, **FAST).fit(tiny_data.x, tiny_data.u).save(tmp_path / "one"))
    assert single.transform_restarts(tiny_data.x).shape == (1, len(tiny_data.x), 3)


# ---------------------------------------------------------------- nica info | head
def test_info_into_a_closed_pipe_is_quiet(fitted_ivae, tmp_path):
    path = fitted_ivae.save(tmp_path / "m")
    read, write = os.pipe()
    os.close(read)  # the reader has gone, as `head` does after its lines
    try:
        code = "import sys; from nica.cli import main; sys.exit(main())"
        result = subprocess.run([sys.executable, "-c", code, "info", str(path)], stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert "Error" not in result.stderr and "Broken pipe" not in result.stderr, result.stderr
    assert result.stderr == ""


# ---------------------------------------------------------------- select-n on short fits
def test_select_n_warns_when_fits_are_too_short(tiny_data):
    with pytest.warns(UserWarning, match=r"max_steps=20 per fit is shorter than the 10,000 steps"):
        select_n_components(tiny_data.x, tiny_data.u, candidates=[1, 2], max_steps=20, hidden_dim=8,
                            random_state=0, progress=False)


def test_select_n_cli_says_so(tiny_data, tmp_path):
    np.savez(tmp_path / "d.npz", x=tiny_data.x, u=tiny_data.u)
    result = CliRunner().invoke(main, ["select-n", str(tmp_path / "d.npz"), "--candidates", "1-2", "--max-steps",
                                       "20", "--hidden-dim", "8", "--quiet", "--out", str(tmp_path / "sel")])
    assert result.exit_code == 0, result.output
    assert "Warning: max_steps=20 per fit is shorter than the 10,000 steps" in result.output
    assert "--max-steps" in result.output
