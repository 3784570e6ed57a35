"""The ``nica`` command line, end to end, through click's test runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nica
from nica.cli import main

SIM = ["--n-sources", "2", "--n-segments", "6", "--per-segment", "50", "--seed", "1"]
# the iVAE path of ``nica fit`` (its default, --model auto, fits a flow to these d = n data;
# tests/test_model_choice.py covers that path)
FIT = ["--model", "ivae", "--n-components", "2", "--max-steps", "30", "--hidden-dim", "16", "--layers", "2",
       "--batch-size", "100", "--device", "cpu", "--quiet"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args, ok: bool = True):
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=True)
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 1, one line ``Error: ...`` naming the problem, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.output
    for fragment in fragments:
        assert fragment in error_lines[0], (fragment, error_lines[0])


@pytest.fixture
def sim_file(runner, tmp_path) -> Path:
    path = tmp_path / "data.npz"
    run(runner, "simulate", "--out", path, *SIM)
    return path


@pytest.fixture
def model_dir(runner, tmp_path, sim_file) -> Path:
    path = tmp_path / "model"
    run(runner, "fit", sim_file, "--out", path, *FIT)
    return path


# ---------------------------------------------------------------- the happy path
def test_simulate_writes_the_benchmark(runner, tmp_path):
    path = tmp_path / "sim.npz"
    result = run(runner, "simulate", "--out", path, *SIM, "--n-obs", "3", "--uncentered")
    assert "wrote" in result.output
    with np.load(path) as f:
        assert f["x"].shape == (300, 3) and f["s"].shape == (300, 2) and f["u"].shape == (300,)
        assert f["means"].shape == f["scales"].shape == (6, 2)
        expected = nica.make_nonstationary(2, 3, 6, 50, uncentered=True, random_state=1)
        np.testing.assert_array_equal(f["x"], expected.x)


def test_simulate_fit_transform_evaluate(runner, tmp_path, sim_file):
    model_dir = tmp_path / "model"
    result = run(runner, "fit", sim_file, "--out", model_dir, *FIT)
    assert "30 steps" in result.output and "ELBO" in result.output
    assert (model_dir / "config.json").is_file() and (model_dir / "weights.safetensors").is_file()

    z_path = tmp_path / "z.npy"
    result = run(runner, "transform", model_dir, sim_file, "--out", z_path)
    assert z_path.is_file() and "latents (300, 2)" in result.output
    z = np.load(z_path)
    with np.load(sim_file) as f:
        x, u, s = f["x"], f["u"], f["s"]
    # the CLI's latents are the library's
    np.testing.assert_array_equal(z, nica.load(model_dir).transform(x, u))

    result = run(runner, "evaluate", z_path, sim_file)
    assert "MCC (pearson)" in result.output and "weak MCC" in result.output
    result = run(runner, "evaluate", z_path, sim_file, "--json", "--method", "spearman")
    report = json.loads(result.output)
    assert report["method"] == "spearman"
    assert report["mcc"] == pytest.approx(nica.mean_corr_coef(s, z, "spearman"), abs=1e-12)
    assert 0 <= report["weak_mcc"] <= 1
    assert sorted(report["permutation"]) == [0, 1]
    assert len(report["correlations"]) == 2


def test_fit_is_reproducible_with_seed(runner, tmp_path, sim_file):
    for name in ("a", "b"):
        run(runner, "fit", sim_file, "--out", tmp_path / name, *FIT, "--seed", "5")
        run(runner, "transform", tmp_path / name, sim_file, "--out", tmp_path / f"{name}.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_transform_sample_and_csv_output(runner, tmp_path, sim_file, model_dir):
    out = tmp_path / "z.csv"
    run(runner, "transform", model_dir, sim_file, "--out", out, "--sample", "--seed", "3")
    z = np.loadtxt(out, delimiter=",")
    assert z.shape == (300, 2)
    model = nica.load(model_dir)
    with np.load(sim_file) as f:
        np.testing.assert_allclose(z, model.sample_posterior(f["x"], f["u"], random_state=3)[0], rtol=1e-6)
    # evaluate reads csv latents too
    assert "MCC" in run(runner, "evaluate", out, sim_file).output


def test_fit_with_epochs(runner, tmp_path, sim_file):
    out = tmp_path / "m"
    result = run(runner, "fit", sim_file, "--out", out, *FIT, "--epochs", "2")
    # 300 rows / batch 100 = 3 steps per epoch; --epochs overrides --max-steps
    assert "(6 steps)" in result.output
    assert nica.load(out).n_steps_ == 6


def test_fit_with_options(runner, tmp_path, sim_file):
    out = tmp_path / "m"
    run(runner, "fit", sim_file, "--out", out, *FIT, "--prior", "laplace", "--no-prior-mean",
        "--decoder-var", "0.1", "--objective", "annealed", "--lr", "0.005")
    model = nica.load(out)
    assert model.prior == "laplace" and model.prior_mean is False
    assert model.decoder_var == 0.1 and model.objective == "annealed" and model.learning_rate == 0.005


def test_fit_with_authors_preset(runner, tmp_path, sim_file):
    out = tmp_path / "m"
    run(runner, "fit", sim_file, "--out", out, "--preset", "authors", *FIT)
    model = nica.load(out)
    assert model.objective == "reweighted" and model.prior_mean is False and model.n_steps_ == 30


def test_npy_pair_with_u(runner, tmp_path, sim_file):
    with np.load(sim_file) as f:
        x, u, s = f["x"], f["u"], f["s"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "u.npy", u)
    np.save(tmp_path / "s.npy", s)
    run(runner, "fit", tmp_path / "x.npy", "--u", tmp_path / "u.npy", "--out", tmp_path / "m", *FIT)
    run(runner, "transform", tmp_path / "m", tmp_path / "x.npy", "--u", tmp_path / "u.npy",
        "--out", tmp_path / "z.npy")
    result = run(runner, "evaluate", tmp_path / "z.npy", tmp_path / "x.npy", "--s", tmp_path / "s.npy")
    assert "MCC" in result.output


def test_csv_input(runner, tmp_path, sim_file):
    with np.load(sim_file) as f:
        x, u = f["x"], f["u"]
    (tmp_path / "x.csv").write_text("a,b\n" + "\n".join(f"{r[0]!r},{r[1]!r}" for r in x.tolist()) + "\n")
    np.savetxt(tmp_path / "u.csv", u, delimiter=",", fmt="%d")
    run(runner, "fit", tmp_path / "x.csv", "--u", tmp_path / "u.csv", "--out", tmp_path / "m", *FIT)
    run(runner, "transform", tmp_path / "m", tmp_path / "x.csv", "--u", tmp_path / "u.csv",
        "--out", tmp_path / "z.npy")
    model = nica.load(tmp_path / "m")
    assert model.n_features_in_ == 2 and model.aux_encoder_.n_values == 6
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), model.transform(x, u), rtol=1e-5, atol=1e-6)


def test_vae_model_transform_without_u(runner, tmp_path, sim_file, fast_params):
    with np.load(sim_file) as f:
        x = f["x"]
    nica.VAE(2, **fast_params, random_state=0).fit(x).save(tmp_path / "vae")
    np.save(tmp_path / "x.npy", x)
    run(runner, "transform", tmp_path / "vae", tmp_path / "x.npy", "--out", tmp_path / "z.npy")
    assert np.load(tmp_path / "z.npy").shape == (300, 2)


def test_version_and_help(runner):
    assert nica.__version__ in run(runner, "--version").output
    help_text = run(runner, "--help").output
    for command in ("simulate", "fit", "transform", "evaluate", "demo"):
        assert command in help_text


# ---------------------------------------------------------------- user errors
def test_missing_data_file(runner, tmp_path):
    result = run(runner, "fit", tmp_path / "nope.npz", "--out", tmp_path / "m", *FIT, ok=False)
    assert_user_error(result, "file not found", "nope.npz")
    assert not (tmp_path / "m").exists()


def test_npz_without_u(runner, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(50, 2)))
    result = run(runner, "fit", tmp_path / "d.npz", "--out", tmp_path / "m", *FIT, ok=False)
    assert_user_error(result, "no auxiliary variable 'u'", "--u")


def test_npz_without_x(runner, tmp_path):
    np.savez(tmp_path / "d.npz", u=np.arange(50) % 5)
    result = run(runner, "fit", tmp_path / "d.npz", "--out", tmp_path / "m", *FIT, ok=False)
    assert_user_error(result, "no array 'x'")


@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "empty"])
def test_corrupt_npz(runner, tmp_path, sim_file, corrupt):
    bad = tmp_path / "bad.npz"
    data = sim_file.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a zip file" * 50, "empty": b""}[corrupt])
    result = run(runner, "fit", bad, "--out", tmp_path / "m", *FIT, ok=False)
    assert_user_error(result, "could not read", "bad.npz")


def test_csv_with_strings(runner, tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1.0,2.0\n3.0,oops\n5.0,6.0\n")
    np.savetxt(tmp_path / "u.csv", [0, 1, 0], delimiter=",")
    result = run(runner, "fit", tmp_path / "x.csv", "--u", tmp_path / "u.csv", "--out", tmp_path / "m",
                 *FIT, ok=False)
    assert_user_error(result, "non-numeric", "x.csv")


def test_wrong_length_u(runner, tmp_path, sim_file):
    with np.load(sim_file) as f:
        np.save(tmp_path / "x.npy", f["x"])
        np.save(tmp_path / "u.npy", f["u"][:-3])
    result = run(runner, "fit", tmp_path / "x.npy", "--u", tmp_path / "u.npy", "--out", tmp_path / "m",
                 *FIT, ok=False)
    assert_user_error(result, "300 rows", "297")


def test_unsupported_suffix(runner, tmp_path):
    (tmp_path / "x.txt").write_text("1,2\n")
    result = run(runner, "fit", tmp_path / "x.txt", "--u", tmp_path / "x.txt", "--out", tmp_path / "m",
                 *FIT, ok=False)
    assert_user_error(result, "unsupported file type")


def test_bad_decoder_var(runner, tmp_path, sim_file):
    result = run(runner, "fit", sim_file, "--out", tmp_path / "m", *FIT, "--decoder-var", "big", ok=False)
    assert_user_error(result, "--decoder-var")


def test_bad_epochs(runner, tmp_path, sim_file):
    result = run(runner, "fit", sim_file, "--out", tmp_path / "m", *FIT, "--epochs", "0", ok=False)
    assert_user_error(result, "--epochs must be > 0")


def test_too_many_components(runner, tmp_path, sim_file):
    result = run(runner, "fit", sim_file, "--out", tmp_path / "m", *FIT, "--n-components", "3", ok=False)
    assert_user_error(result, "n_components=3 exceeds")


def test_bad_device(runner, tmp_path, sim_file):
    result = run(runner, "fit", sim_file, "--out", tmp_path / "m", *FIT, "--device", "tpu9", ok=False)
    assert_user_error(result, "tpu9")


def test_simulate_existing_out_without_overwrite(runner, tmp_path, sim_file):
    before = sim_file.read_bytes()
    result = run(runner, "simulate", "--out", sim_file, *SIM, "--seed", "2", ok=False)
    assert_user_error(result, "already exists", "--overwrite")
    assert sim_file.read_bytes() == before
    run(runner, "simulate", "--out", sim_file, *SIM, "--seed", "2", "--overwrite")
    assert sim_file.read_bytes() != before


def test_fit_existing_out_without_overwrite(runner, tmp_path, sim_file, model_dir):
    before = (model_dir / "weights.safetensors").read_bytes()
    result = run(runner, "fit", sim_file, "--out", model_dir, *FIT, "--seed", "9", ok=False)
    assert_user_error(result, "already exists")
    assert (model_dir / "weights.safetensors").read_bytes() == before
    run(runner, "fit", sim_file, "--out", model_dir, *FIT, "--seed", "9", "--overwrite")
    assert (model_dir / "weights.safetensors").read_bytes() != before


def test_transform_existing_out_without_overwrite(runner, tmp_path, sim_file, model_dir):
    out = tmp_path / "z.npy"
    np.save(out, np.arange(3))
    before = out.read_bytes()
    result = run(runner, "transform", model_dir, sim_file, "--out", out, ok=False)
    assert_user_error(result, "already exists")
    assert out.read_bytes() == before


def test_transform_with_missing_model(runner, tmp_path, sim_file):
    result = run(runner, "transform", tmp_path / "nomodel", sim_file, "--out", tmp_path / "z.npy", ok=False)
    assert_user_error(result, "no saved model")


def test_transform_with_corrupt_model(runner, tmp_path, sim_file, model_dir):
    (model_dir / "config.json").write_text("{not json")
    result = run(runner, "transform", model_dir, sim_file, "--out", tmp_path / "z.npy", ok=False)
    assert_user_error(result, "corrupt")


def test_transform_unknown_label(runner, tmp_path, sim_file, model_dir):
    with np.load(sim_file) as f:
        np.save(tmp_path / "x.npy", f["x"])
        np.save(tmp_path / "u.npy", f["u"] + 100)
    result = run(runner, "transform", model_dir, tmp_path / "x.npy", "--u", tmp_path / "u.npy",
                 "--out", tmp_path / "z.npy", ok=False)
    assert_user_error(result, "not seen at fit time")
    assert not (tmp_path / "z.npy").exists()


def test_transform_bad_output_suffix(runner, tmp_path, sim_file, model_dir):
    result = run(runner, "transform", model_dir, sim_file, "--out", tmp_path / "z.parquet", ok=False)
    assert_user_error(result, "unsupported output type")


def test_evaluate_data_without_s(runner, tmp_path, sim_file, model_dir):
    with np.load(sim_file) as f:
        np.savez(tmp_path / "nos.npz", x=f["x"], u=f["u"])
    run(runner, "transform", model_dir, sim_file, "--out", tmp_path / "z.npy")
    result = run(runner, "evaluate", tmp_path / "z.npy", tmp_path / "nos.npz", ok=False)
    assert_user_error(result, "no true sources 's'", "--s")


def test_evaluate_row_mismatch(runner, tmp_path, sim_file):
    np.save(tmp_path / "z.npy", np.zeros((10, 2)))
    result = run(runner, "evaluate", tmp_path / "z.npy", sim_file, ok=False)
    assert_user_error(result, "rows")


def test_evaluate_missing_latents(runner, tmp_path, sim_file):
    result = run(runner, "evaluate", tmp_path / "z.npy", sim_file, ok=False)
    assert_user_error(result, "file not found")


def test_identifiability_warning_is_one_line(runner, tmp_path):
    data = tmp_path / "few.npz"
    run(runner, "simulate", "--out", data, "--n-sources", "3", "--n-segments", "3", "--per-segment", "40")
    result = run(runner, "fit", data, "--out", tmp_path / "m", *FIT, "--n-components", "3")
    warning_lines = [line for line in result.output.splitlines() if "distinct values" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("Warning:")


# ---------------------------------------------------------------- demo
def test_demo_quick(runner, tmp_path):
    out_dir = tmp_path / "demo"
    result = run(runner, "demo", "--quick", "--out-dir", out_dir)
    png = out_dir / "recovery.png"
    assert png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "iVAE" in result.output and "VAE" in result.output and "MCC" in result.output
    assert "nica fit (auto): IFlow" in result.output  # the default model of nica fit, for d = n data


# ---------------------------------------------------------------- other data formats
def test_fit_transform_evaluate_from_a_csv_table(runner, tmp_path, sim_file):
    with np.load(sim_file) as f:
        x, u, s = f["x"], f["u"], f["s"]
    rows = ["cell,g1,g2,segment,s1,s2"] + [
        f"c{i},{a!r},{b!r},seg{k},{p!r},{q!r}" for i, ((a, b), k, (p, q)) in enumerate(zip(x.tolist(), u, s.tolist()))
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    cols = ["--x-cols", "g1,g2", "--u-col", "segment"]
    run(runner, "fit", tmp_path / "d.csv", *cols, "--out", tmp_path / "m", *FIT)
    run(runner, "transform", tmp_path / "m", tmp_path / "d.csv", *cols, "--out", tmp_path / "z.npy")
    model = nica.load(tmp_path / "m")
    labels = np.array([f"seg{k}" for k in u])
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), model.transform(x, labels), rtol=1e-5, atol=1e-6)
    result = run(runner, "evaluate", tmp_path / "z.npy", tmp_path / "d.csv", "--s-cols", "s1,s2", "--json")
    assert json.loads(result.output)["mcc"] == pytest.approx(
        nica.mean_corr_coef(s, np.load(tmp_path / "z.npy")), abs=1e-6)
    # without --u-col the table has no u, and the text columns are not features: the error
    # says how to name u, in the command line's words
    result = run(runner, "fit", tmp_path / "d.csv", "--out", tmp_path / "m2", *FIT, ok=False)
    assert_user_error(result, "no u column was named", "'cell'", "--u-col", "--x-cols")
    assert "u_cols" not in result.output
    result = run(runner, "fit", tmp_path / "d.csv", "--x-cols", "1:3", "--out", tmp_path / "m2", *FIT, ok=False)
    assert_user_error(result, "no auxiliary variable", "--u-col")


def test_fit_and_transform_from_parquet_and_hdf5(runner, tmp_path, sim_file):
    pd = pytest.importorskip("pandas")
    h5py = pytest.importorskip("h5py")
    with np.load(sim_file) as f:
        x, u = f["x"], f["u"]
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "seg": u}).to_parquet(tmp_path / "d.parquet")
    with h5py.File(tmp_path / "d.h5", "w") as fh:
        fh["obs/x"] = x
        fh["obs/segment"] = u
    run(runner, "fit", tmp_path / "d.parquet", "--u-col", "seg", "--out", tmp_path / "m", *FIT)
    for data, opts in [(tmp_path / "d.parquet", ["--u-col", "seg"]),
                       (tmp_path / "d.h5", ["--x-key", "obs/x", "--u-key", "obs/segment"])]:
        out = tmp_path / f"z{data.suffix}.npy"
        run(runner, "transform", tmp_path / "m", data, *opts, "--out", out)
        np.testing.assert_allclose(np.load(out), nica.load(tmp_path / "m").transform(x, u), rtol=1e-5, atol=1e-6)
    result = run(runner, "transform", tmp_path / "m", tmp_path / "d.h5", "--out", tmp_path / "z.npy", ok=False)
    assert_user_error(result, "no dataset 'x'", "obs/x")


# ---------------------------------------------------------------- nica info
def test_info(runner, model_dir):
    result = run(runner, "info", model_dir)
    out = result.output
    from nica.persistence import FORMAT_VERSION

    for fragment in (f"(IVAE, model format {FORMAT_VERSION})", f"nica {nica.__version__}", "seed        0",
                     "2 features -> 2 components; u categorical, 6 labels", "30 steps",
                     "stopped early: no", "final ELBO", "ELBO curve  epoch 1:", "settings",
                     "max_steps", "hidden_dim"):
        assert fragment in out, (fragment, out)
    model = nica.load(model_dir)
    assert f"{model.elbo_:.4f}" in out
    record = json.loads(run(runner, "info", model_dir, "--json").output)
    assert record["training"]["n_steps"] == 30 and record["seed"] == 0
    assert len(record["training"]["elbo"]) == len(model.history_.elbo)


def test_info_errors(runner, tmp_path, model_dir):
    assert_user_error(run(runner, "info", tmp_path / "none", ok=False), "no saved model")
    (tmp_path / "empty").mkdir()
    assert_user_error(run(runner, "info", tmp_path / "empty", ok=False), "has no config.json")
    (model_dir / "weights.safetensors").write_bytes(b"garbage")
    assert_user_error(run(runner, "info", model_dir, ok=False), "weights.safetensors could not be read")


# ---------------------------------------------------------------- outputs are never replaced by default
@pytest.fixture
def existing(tmp_path) -> Path:
    path = tmp_path / "existing"
    path.mkdir()
    return path


@pytest.mark.parametrize("command", ["simulate", "fit", "transform", "evaluate", "demo"])
def test_every_command_refuses_to_replace_an_output(runner, tmp_path, sim_file, model_dir, command):
    z = tmp_path / "z.npy"
    run(runner, "transform", model_dir, sim_file, "--out", z)
    out = {"simulate": tmp_path / "sim.npz", "fit": tmp_path / "model2", "transform": tmp_path / "z2.npy",
           "evaluate": tmp_path / "report.json", "demo": tmp_path / "demo" / "recovery.png"}[command]
    out.parent.mkdir(exist_ok=True)
    if command == "fit":  # a model nica saved: the one kind of directory --overwrite replaces
        shutil.copytree(model_dir, out)
        marker = out / "config.json"
    else:
        out.write_bytes(b"precious")
        marker = out
    args = {
        "simulate": ["simulate", "--out", out, *SIM],
        "fit": ["fit", sim_file, "--out", out, *FIT],
        "transform": ["transform", model_dir, sim_file, "--out", out],
        "evaluate": ["evaluate", z, sim_file, "--out", out],
        "demo": ["demo", "--quick", "--out-dir", out.parent],
    }[command]
    before = marker.read_bytes()
    result = run(runner, *args, ok=False)
    assert_user_error(result, "already exists", "--overwrite")
    assert marker.read_bytes() == before
    if command != "demo":  # the demo's refusal is enough: its --overwrite run takes seconds
        run(runner, *args, "--overwrite")
        assert marker.read_bytes() != before


def test_evaluate_writes_its_report(runner, tmp_path, sim_file, model_dir):
    run(runner, "transform", model_dir, sim_file, "--out", tmp_path / "z.npy")
    result = run(runner, "evaluate", tmp_path / "z.npy", sim_file, "--out", tmp_path / "r" / "report.json")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert f"MCC (pearson): {report['mcc']:.4f}" in result.output
    assert set(report) == {"mcc", "weak_mcc", "method", "permutation", "correlations"}


def test_transform_checks_output_suffix_before_loading(runner, tmp_path, sim_file):
    result = run(runner, "transform", tmp_path / "no-model", sim_file, "--out", tmp_path / "z.txt", ok=False)
    assert_user_error(result, "unsupported output type")


# ---------------------------------------------------------------- restarts, checkpoints, streaming
def test_fit_with_restarts_checkpoint_and_resume(tmp_path, tiny_data):
    data = tmp_path / "d.npz"
    np.savez(data, x=tiny_data.x, u=tiny_data.u)
    args = ["fit", str(data), "--model", "ivae", "--n-components", "3", "--max-steps", "40", "--hidden-dim", "16",
            "--restarts", "2", "--selection", "elbo", "--checkpoint-dir", str(tmp_path / "ck"),
            "--checkpoint-every", "10", "--quiet", "--device", "cpu"]
    first = CliRunner().invoke(main, args + ["--out", str(tmp_path / "m1")])
    assert first.exit_code == 0, first.output
    assert "of 2 kept by ELBO" in first.output
    assert (tmp_path / "ck" / "checkpoint.pt").exists()
    # the checkpoint is not replaced without --resume; with it, the finished fit is reloaded
    refused = CliRunner().invoke(main, args + ["--out", str(tmp_path / "m2")])
    assert refused.exit_code != 0 and "--resume" in refused.output and "Traceback" not in refused.output
    resumed = CliRunner().invoke(main, args + ["--out", str(tmp_path / "m2"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a, b = nica.load(tmp_path / "m1"), nica.load(tmp_path / "m2")
    np.testing.assert_array_equal(a.transform(tiny_data.x, tiny_data.u), b.transform(tiny_data.x, tiny_data.u))


def test_fit_streaming_from_npy(tmp_path, tiny_data):
    np.save(tmp_path / "x.npy", tiny_data.x.astype(np.float32))
    np.save(tmp_path / "u.npy", tiny_data.u)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "x.npy"), "--u", str(tmp_path / "u.npy"),
                                       "--model", "ivae", "--stream", "--n-components", "3", "--max-steps", "20",
                                       "--out", str(tmp_path / "m"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert nica.load(tmp_path / "m").transform(tiny_data.x, tiny_data.u).shape == (len(tiny_data.x), 3)
    missing_u = CliRunner().invoke(main, ["fit", str(tmp_path / "x.npy"), "--model", "ivae", "--stream",
                                          "--n-components", "3",
                                          "--out", str(tmp_path / "m2")])
    assert missing_u.exit_code != 0 and "Error:" in missing_u.output and "Traceback" not in missing_u.output


def test_threads_option_sets_torch_threads(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["--threads", "1", "simulate", "--out", str(tmp_path / "d.npz"),
                                           "--n-segments", "3", "--per-segment", "20", "--n-sources", "2"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        refused = CliRunner().invoke(main, ["--threads", "0", "simulate", "--out", str(tmp_path / "e.npz")])
        assert refused.exit_code != 0 and "--threads" in refused.output
    finally:
        torch.set_num_threads(before)
