"""Nothing lost, nothing unbounded (issue 20): what the user sees when an output is the
user's, a file declares more than it holds, or two fits meet. Each test runs the command
line and checks the exit code, the one line printed and the files on disk."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import nica
from nica.base.checkpointing import fit_lock, working_folder
from nica.cli import main
from nica.persistence import CONFIG_FILE, WEIGHTS_FILE

#: the iVAE path of nica fit, small and quick (the flow's own path is in the tests that name it)
FIT = ["--model", "ivae", "--n-components", "2", "--max-steps", "20", "--hidden-dim", "8", "--layers", "2",
       "--batch-size", "50", "--device", "cpu", "--quiet"]
FLOW = ["--n-components", "2", "--max-steps", "10", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def data() -> nica.NonstationaryData:
    return nica.make_nonstationary(2, n_segments=6, n_per_segment=40, random_state=3)


@pytest.fixture
def data_file(data, tmp_path) -> Path:
    path = tmp_path / "d.npz"
    np.savez(path, x=data.x, u=data.u, s=data.s)
    return path


def run(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result) -> str:
    """The one ``Error: ...`` line of a refused command (exit code 1, no traceback)."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def tree(path: Path) -> list[str]:
    """Every entry under ``path``, hidden ones included, relative and sorted."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ---------------------------------------------------------------- --overwrite and the user's files
def test_overwrite_never_replaces_a_folder_nica_did_not_save(data_file, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.json").write_text('{"a": 1}')
    (proj / "important.txt").write_text("keep")
    before = tree(tmp_path)
    line = error_line(run("fit", data_file, "--out", proj, "--overwrite", *FIT))
    assert "is not a saved nica model" in line and "choose another path" in line
    assert tree(tmp_path) == before and (proj / "important.txt").read_text() == "keep"


def test_overwrite_refuses_a_model_folder_holding_the_users_files(data_file, tmp_path):
    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FIT))
    (model / "notes.txt").write_text("mine")
    line = error_line(run("fit", data_file, "--out", model, "--overwrite", *FIT))
    assert "a nica model with other files in it (notes.txt)" in line
    assert (model / "notes.txt").read_text() == "mine"
    (model / "notes.txt").unlink()
    config = (model / CONFIG_FILE).read_text()
    ok(run("fit", data_file, "--out", model, "--overwrite", "--seed", "1", *FIT))  # its own model: replaced
    assert (model / CONFIG_FILE).read_text() != config and sorted(os.listdir(model)) == [CONFIG_FILE, WEIGHTS_FILE]
    assert tree(tmp_path) == sorted(["d.npz", "m", f"m/{CONFIG_FILE}", f"m/{WEIGHTS_FILE}"])  # no debris


def test_the_users_working_folder_and_old_folder_are_left_alone(data_file, tmp_path):
    """A .NAME.checkpoints/ or .NAME.old/ of the user's survives a successful fit."""
    for name in (".m.checkpoints", ".m.old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mine.txt").write_text("keep")
    ok(run("fit", data_file, "--out", tmp_path / "m", *FIT))
    ok(run("fit", data_file, "--out", tmp_path / "m", "--overwrite", "--seed", "2", *FIT))
    for name in (".m.checkpoints", ".m.old"):
        assert (tmp_path / name / "mine.txt").read_text() == "keep"
    assert sorted(os.listdir(tmp_path / ".m.checkpoints")) == ["mine.txt"]  # nica's files are gone


def test_outputs_are_checked_before_any_work_and_leave_no_debris(data_file, tmp_path, monkeypatch):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    for out in ("notes", "."):
        before = tree(tmp_path)
        line = error_line(run("fit", data_file, "--out", out, "--overwrite", *FIT))
        assert "is not a saved nica model" in line
        assert tree(tmp_path) == before  # nothing trained, no working folder left
    ok(run("fit", data_file, "--out", "m", *FIT))  # and the next command is not taken for a resume


def test_a_second_fit_to_the_same_output_is_refused_while_the_first_runs(data_file, tmp_path):
    out = tmp_path / "m"
    with fit_lock(working_folder(out), out):
        line = error_line(run("fit", data_file, "--out", out, *FIT))
        assert "another nica fit is running with the checkpoints in" in line
    assert not out.exists()
    ok(run("fit", data_file, "--out", out, *FIT))
    assert not working_folder(out).exists()


def test_transform_never_writes_over_its_input(data, tmp_path):
    model = tmp_path / "m"
    np.save(tmp_path / "x.npy", data.x)
    np.savez(tmp_path / "d.npz", x=data.x, u=data.u)
    ok(run("fit", tmp_path / "d.npz", "--out", model, *FIT))
    before = (tmp_path / "x.npy").read_bytes()
    line = error_line(run("transform", model, tmp_path / "x.npy", "--out", tmp_path / "x.npy", "--overwrite"))
    assert "is the input" in line
    assert (tmp_path / "x.npy").read_bytes() == before


# ---------------------------------------------------------------- untrusted model folders
def _edit_config(model: Path, **module: object) -> None:
    config = json.loads((model / CONFIG_FILE).read_text())
    config["module"].update(module)
    (model / CONFIG_FILE).write_text(json.dumps(config))


@pytest.mark.parametrize("field, value, fragment", [
    ("n_flows", 10**7, "sets module.n_flows = 10000000, which the"),
    ("hidden_dim", 20_000, "sets module.hidden_dim = 20000"),
    ("x_dim", 10**7, "sets module.x_dim = 10000000"),
    ("hidden_dim", -5, "sets module.hidden_dim = -5"),
    ("n_bins", 400, "describes a network of"),
])
def test_sizes_in_a_model_folder_are_checked_before_they_are_allocated(data_file, tmp_path, field, value,
                                                                       fragment):
    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FLOW))
    _edit_config(model, **{field: value})
    assert fragment in error_line(run("info", model))
    assert fragment in error_line(run("transform", model, data_file, "--out", tmp_path / "z.npy"))


@pytest.mark.skipif(os.name != "posix", reason="devices and FIFOs")
def test_a_config_that_is_a_device_a_fifo_or_nested_too_deep_is_refused(data_file, tmp_path):
    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FIT))
    (model / CONFIG_FILE).unlink()
    (model / CONFIG_FILE).symlink_to("/dev/zero")
    assert "is not a regular file" in error_line(run("info", model))
    (model / CONFIG_FILE).unlink()
    os.mkfifo(model / CONFIG_FILE)  # opening a FIFO with no writer would hang: never opened
    signal.alarm(20)
    try:
        assert "is not a regular file" in error_line(run("info", model))
    finally:
        signal.alarm(0)
    (model / CONFIG_FILE).unlink()
    (model / CONFIG_FILE).write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in error_line(run("info", model))


def test_weights_of_the_wrong_kind_or_range_are_refused(data_file, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FIT))
    state = load_file(str(model / WEIGHTS_FILE))
    good = (model / WEIGHTS_FILE).read_bytes()
    for dtype in ("int64", "bool"):
        save_file({k: v.to(getattr(torch, dtype)) for k, v in state.items()}, str(model / WEIGHTS_FILE))
        assert f"is torch.{dtype}, where the model holds torch.float32" in error_line(run("info", model))
    save_file({k: v.double() * 1e300 + 1e300 for k, v in state.items()}, str(model / WEIGHTS_FILE))
    assert "beyond float32's range" in error_line(run("transform", model, data_file, "--out", tmp_path / "z.npy"))
    (model / WEIGHTS_FILE).write_bytes(good)
    ok(run("info", model))


def test_info_json_is_strict_json(data_file, tmp_path):
    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FIT))
    config = json.loads((model / CONFIG_FILE).read_text())
    config["history"]["elbo"][0] = float("-inf")  # a diverged first epoch
    (model / CONFIG_FILE).write_text(json.dumps(config))
    text = ok(run("info", model, "--json"))
    assert "Infinity" not in text and json.loads(text)["training"]["elbo"][0] is None


def test_an_interrupted_replacement_points_to_the_old_model(data_file, tmp_path):
    model = tmp_path / "m"
    ok(run("fit", data_file, "--out", model, *FIT))
    model.rename(tmp_path / ".m.old-abc123")  # what a crash between the two renames leaves
    line = error_line(run("info", model))
    assert "left the previous model in" in line and ".m.old-abc123" in line


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_write(data_file, tmp_path):
    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    (tmp_path / f".z.npy.{dead}.abc.tmp").write_bytes(b"half")
    (tmp_path / f".m.{dead}.xyz").mkdir()
    (tmp_path / f".z.npy.{os.getpid()}.live.tmp").write_bytes(b"a live writer's")
    ok(run("fit", data_file, "--out", tmp_path / "m", *FIT))
    ok(run("transform", tmp_path / "m", data_file, "--out", tmp_path / "z.npy"))
    names = os.listdir(tmp_path)
    assert f".z.npy.{dead}.abc.tmp" not in names and f".m.{dead}.xyz" not in names
    assert f".z.npy.{os.getpid()}.live.tmp" in names


# ---------------------------------------------------------------- data files that declare too much
def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """The magic string and header of an .npy file declaring ``shape`` (no data)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_npz_declaring_terabytes_is_refused_before_it_is_read(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive:
        archive.writestr("x.npy", _npy_header((10**9, 1000)) + b"\0" * 64)
        archive.writestr("u.npy", _npy_header((10,)) + b"\0" * 80)
    assert os.path.getsize(tmp_path / "d.npz") < 1000
    line = error_line(run("fit", tmp_path / "d.npz", "--out", tmp_path / "m", *FIT))
    assert "declares shape (1000000000, 1000) of float64 (7.28 TiB)" in line and "corrupt" in line


def test_arrays_larger_than_memory_are_refused_with_the_way_out(tmp_path, monkeypatch):
    import nica._fs

    monkeypatch.setattr(nica._fs, "available_memory", lambda: 10_000)
    np.savez_compressed(tmp_path / "d.npz", x=np.zeros((2000, 5)), u=np.arange(2000) % 4)
    line = error_line(run("fit", tmp_path / "d.npz", "--out", tmp_path / "m", *FIT))
    assert "needs 78.1 KiB of memory, but 9.77 KiB is available" in line and "--stream" in line
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "d.h5", "w") as fh:
        fh.create_dataset("x", shape=(10**7, 100), dtype="f8", chunks=(1000, 100), compression="gzip")
        fh.create_dataset("u", data=np.arange(10**3) % 4)
    line = error_line(run("fit", tmp_path / "d.h5", "--out", tmp_path / "m", *FIT))
    assert "dataset 'x'" in line and "(7.45 GiB)" not in line and "needs 7.45 GiB of memory" in line


def test_a_csv_of_a_million_columns_is_read_without_string_blocks(tmp_path):
    n = 10**6
    header = ",".join(f"c{i}" for i in range(n)) + ",seg"
    rows = [",".join([v] * n) + f",{label}" for v, label in (("1", "a"), ("2", "b"))]
    (tmp_path / "wide.csv").write_text("\n".join([header, *rows]) + "\n")  # 12 MB
    line = error_line(run("fit", tmp_path / "wide.csv", "--u-col", "seg", "--out", tmp_path / "m", *FLOW))
    assert "X has 2 rows for 1000000 features: too few to find 2 principal components" in line


def test_float64_values_float32_would_flush_to_zero_are_refused(data, tmp_path):
    np.savez(tmp_path / "d.npz", x=data.x.astype(np.float64) * 1e-300, u=data.u)
    line = error_line(run("fit", tmp_path / "d.npz", "--out", tmp_path / "m", *FIT))
    assert "values too small for float32" in line and "rescale it" in line
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- streaming
def test_stream_resume_refuses_a_row_shuffled_copy(data, tmp_path):
    """Same shape, same column means and scales, another order of rows: another fit."""
    np.save(tmp_path / "x.npy", data.x)
    params = dict(max_steps=20, checkpoint_every=5, hidden_dim=8, n_layers=2, batch_size=50, device="cpu",
                  random_state=0)
    nica.IVAE(2, checkpoint_dir=tmp_path / "ck", **params).fit(nica.datasets.streaming.open_array(
        tmp_path / "x.npy"), data.u)
    order = np.random.default_rng(0).permutation(len(data.x))
    np.save(tmp_path / "x.npy", data.x[order])
    with pytest.raises(ValueError, match="belongs to a different fit"):
        nica.IVAE(2, checkpoint_dir=tmp_path / "ck", **params).fit(
            nica.datasets.streaming.open_array(tmp_path / "x.npy"), data.u, resume=True)


def test_a_zarr_store_streams_with_its_u(data, tmp_path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "x.zarr"), mode="w")
    for key, value in (("x", data.x), ("u", data.u)):
        (group.create_array if hasattr(group, "create_array") else group.create_dataset)(key, data=value)
    output = ok(run("fit", tmp_path / "x.zarr", "--stream", "--out", tmp_path / "m", *FIT[2:]))
    assert "saved to" in output and (tmp_path / "m" / CONFIG_FILE).is_file()


# ---------------------------------------------------------------- the newcomer's items
def test_predict_u_on_a_model_without_a_label_posterior_is_one_line(tmp_path):
    np.savez(tmp_path / "series.npz", x=np.random.default_rng(0).normal(size=(200, 2)))
    ok(run("fit", tmp_path / "series.npz", "--model", "temporal", "--n-components", "2", "--max-steps", "5",
           "--out", tmp_path / "t", "--quiet"))
    line = error_line(run("predict-u", tmp_path / "t", tmp_path / "series.npz", "--out", tmp_path / "u.csv"))
    assert "holds a TemporalIVAE, which cannot predict u" in line and "--model auto, flow or ivae" in line


def test_temporal_with_fewer_latents_than_columns_is_fitted_not_refused(tmp_path):
    """Item 3: the refusal advised inference='vae' or PCA, which the command line cannot do;
    now the command fits the temporal flow on the top principal components."""
    np.savez(tmp_path / "series.npz", x=np.random.default_rng(0).normal(size=(100, 4)))
    output = ok(run("fit", tmp_path / "series.npz", "--model", "temporal", "--n-components", "2",
                    "--max-steps", "5", "--out", tmp_path / "t", "--quiet"))
    assert "inference=" not in output and (tmp_path / "t" / CONFIG_FILE).is_file()


def test_flow_transform_takes_u_as_a_column_name(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data.x, columns=["a", "b"]).assign(condition=data.u)
    flow = nica.IFlow(2, max_steps=5, n_restarts=1, random_state=0).fit(frame, u="condition")
    np.testing.assert_array_equal(flow.transform(frame, u="condition"), flow.transform(frame[["a", "b"]]))
    assert np.isfinite(flow.score(frame, u="condition"))


def test_messages_speak_the_command_lines_dialect(data, data_file, tmp_path):
    np.savez(tmp_path / "one.npz", x=data.x, u=np.zeros(len(data.x)))
    line = error_line(run("fit", tmp_path / "one.npz", "--out", tmp_path / "m", *FLOW))
    assert "single label" in line and "iVAE" not in line  # the flow is being fitted
    np.savez(tmp_path / "ids.npz", x=data.x, u=np.arange(len(data.x)))
    line = error_line(run("fit", tmp_path / "ids.npz", "--out", tmp_path / "m", *FIT))
    assert "set --u-type continuous" in line and "u_type=" not in line
    ok(run("fit", data_file, "--out", tmp_path / "m", *FIT))
    np.save(tmp_path / "new_u.npy", data.u)
    output = ok(run("predict-u", tmp_path / "m", data_file, "--u", tmp_path / "new_u.npy",
                    "--out", tmp_path / "p.csv"))
    assert "accuracy against the u in new_u.npy" in output


def test_nan_is_named_by_its_data_row_and_column(data, tmp_path):
    x = data.x.astype(float).copy()
    x[4, 1] = np.nan
    rows = ["temp,acc,seg"] + [f"{a!r},{b!r},{k}" for (a, b), k in zip(x.tolist(), data.u)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    line = error_line(run("fit", tmp_path / "d.csv", "--u-col", "seg", "--out", tmp_path / "m", *FIT))
    assert "the first in data row 5 (counting from 1, without the header), column 'acc'" in line


def test_info_on_a_select_n_folder_points_to_its_model(data_file, tmp_path):
    ok(run("select-n", data_file, "--candidates", "1-2", "--max-steps", "5", "--out", tmp_path / "sel", "--quiet",
           "--device", "cpu"))
    line = error_line(run("info", tmp_path / "sel"))
    assert "output of nica select-n" in line and str(tmp_path / "sel" / "model") in line


def test_info_says_what_the_flow_is(data, tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = np.column_stack([data.x, data.x @ rng.normal(size=(2, 2))])  # 4 features, 2 components
    pd.DataFrame(x, columns=["p", "q", "r", "t"]).assign(seg=data.u).to_csv(tmp_path / "d.csv", index=False)
    output = ok(run("fit", tmp_path / "d.csv", "--u-col", "seg", "--out", tmp_path / "m", *FLOW))
    first = output.splitlines()[0]
    assert first.startswith("model flow (auto: 4 real-valued features -> 2 components: flow on the top 2 "
                            "principal components): fitting")  # before training, briefly
    info = ok(run("info", tmp_path / "m"))
    assert "(the flow models the top 2 principal components)" in info
    assert any(line.startswith("features") and line.endswith("p, q, r, t") for line in info.splitlines())
    assert "of the kept restart (restarts: gaussian x2, laplace x2)" in info
    assert "kept by log-likelihood" in info and "tail_bound" not in info.split("settings")[1].split("(not used")[0]
    assert "(not used by this model: activation, hidden_dim, n_layers, tail_bound)" in info
    assert "exact, the kept restart on all training rows" in info and "while training" in info


def test_info_calls_the_temporal_flows_score_a_log_likelihood(tmp_path):
    np.savez(tmp_path / "series.npz", x=np.random.default_rng(0).normal(size=(200, 2)))
    ok(run("fit", tmp_path / "series.npz", "--model", "temporal", "--n-components", "2", "--max-steps", "5",
           "--out", tmp_path / "t", "--quiet"))
    info = ok(run("info", tmp_path / "t"))
    assert "final log-lik." in info and "per step" in info and "final ELBO" not in info


class _Stored:  # pickled into a "checkpoint": torch's error names weights_only=False
    pass


def test_no_message_suggests_unpickling(data, data_file, tmp_path):
    ok(run("fit", data_file, "--out", tmp_path / "m0", *FIT))  # a clean run first, then a broken resume
    folder = working_folder(tmp_path / "m")
    folder.mkdir()
    torch.save({"x": _Stored()}, folder / "checkpoint.pt")
    line = error_line(run("fit", data_file, "--out", tmp_path / "m", "--resume", *FIT))
    assert "could not be read" in line and "weights_only" not in line and "pickle" not in line.lower()
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = error_line(run("fit", tmp_path / "obj.npy", "--u", tmp_path / "obj.npy", "--out", tmp_path / "m2", *FIT))
    assert "allow_pickle" not in line
