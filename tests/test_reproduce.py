"""``nica reproduce``: every experiment end to end at its tiny smoke size, and the parts."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner

import nica
from nica.cli import main
from nica.datasets.easy import make_easy_to_classify, staircase_means
from nica.experiments import EXPERIMENTS, FIELDS, default_seeds, read_results, replot, run_experiment
from nica.experiments._core import Task
from nica.experiments._runner import execute
from nica.experiments._trace import fit_traced

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: object):
    return CliRunner().invoke(main, ["reproduce", *map(str, args)], catch_exceptions=True)


def expected_fits(name: str, n_seeds: int = 1) -> int:
    experiment = EXPERIMENTS[name]
    return len(experiment.tasks(experiment.config("smoke"), default_seeds(n_seeds), "smoke"))


# ---------------------------------------------------------------- every experiment, end to end
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_from_the_command_line(name, tmp_path):
    result = invoke(name, "--smoke", "--out", tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)

    rows = read_results(tmp_path / f"{name}.csv")
    with open(tmp_path / f"{name}.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == FIELDS
    assert {r["experiment"] for r in rows} == {name}
    assert {r["size"] for r in rows} == {"smoke"}
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows]
    assert all(0.0 <= r["mcc"] <= 1.0 for r in rows)
    assert all(math.isfinite(r["seconds"]) for r in rows)
    assert {r["data_seed"] for r in rows} == {3001}
    fits = {(r["method"], r["value"]) for r in rows} if name != "dynamics" else {r["method"] for r in rows}
    assert len(fits) == expected_fits(name)
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    # the summary table and the paper's numbers are printed
    assert "|---|" in result.output
    assert EXPERIMENTS[name].paper in result.output


def test_dynamics_records_every_epoch_from_initialisation(tmp_path):
    result = run_experiment("dynamics", size="smoke", out=tmp_path)
    config = EXPERIMENTS["dynamics"].config("smoke")
    steps_per_epoch = (config.n_segments * config.n_per_segment) // 64
    n_epochs = -(-config.steps // steps_per_epoch)
    for method in config.methods:
        mine = [r for r in result.rows if r["method"] == method]
        assert [r["value"] for r in mine] == list(range(n_epochs + 1))
        assert mine[0]["step"] == 0 and mine[-1]["step"] == config.steps
        assert mine[-1]["score_name"] == "ELBO"


def test_replot_draws_the_figure_again_from_the_csv(tmp_path):
    result = run_experiment("easy", size="smoke", out=tmp_path)
    path = replot(result.csv_path, tmp_path / "again.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(FileExistsError):
        replot(result.csv_path, result.png_path)
    rows = result.csv_path.read_text().splitlines()
    (tmp_path / "mixed.csv").write_text("\n".join([*rows, rows[1].replace("easy,", "iflow,", 1)]) + "\n")
    with pytest.raises(ValueError, match="mixes experiments"):
        replot(tmp_path / "mixed.csv", tmp_path / "mixed.png")


def test_list_names_every_experiment_and_its_configurations():
    result = invoke("--list")
    assert result.exit_code == 0, result.output
    for name, experiment in EXPERIMENTS.items():
        assert name in result.output and experiment.figure in result.output
    assert result.output.count("quick: seeds=") == len(EXPERIMENTS)


def test_seeds_option_and_jobs_do_not_change_the_rows(tmp_path):
    """Two workers give the rows one process gives (one torch thread per fit everywhere)."""
    one = run_experiment("select-hparams", size="smoke", n_seeds=2, out=tmp_path / "one", jobs=1)
    two = invoke("select-hparams", "--smoke", "--seeds", 2, "--jobs", 2, "--out", tmp_path / "two")
    assert two.exit_code == 0, (two.output, two.exception)
    rows_two = read_results(tmp_path / "two" / "select-hparams.csv")
    rows_one = read_results(one.csv_path)
    assert {r["data_seed"] for r in rows_two} == {3001, 3002}
    assert len(rows_two) == expected_fits("select-hparams", 2)
    drop = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert [drop(r) for r in rows_two] == [drop(r) for r in rows_one]


# ---------------------------------------------------------------- files and errors
def test_refuses_to_overwrite_before_fitting_and_overwrites_when_asked(tmp_path):
    (tmp_path / "latent-dim.csv").write_text("precious")
    result = invoke("latent-dim", "--smoke", "--out", tmp_path)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--overwrite" in result.output
    assert not (tmp_path / "latent-dim.png").exists()  # nothing was fitted or written
    assert (tmp_path / "latent-dim.csv").read_text() == "precious"

    result = invoke("latent-dim", "--smoke", "--out", tmp_path, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(read_results(tmp_path / "latent-dim.csv")) == expected_fits("latent-dim")


def test_all_refuses_when_a_later_experiment_would_overwrite(tmp_path):
    (tmp_path / "iflow.png").write_bytes(b"old")
    result = invoke("all", "--smoke", "--out", tmp_path)
    assert result.exit_code == 1 and "iflow.png already exists" in result.output
    assert not (tmp_path / "dynamics.csv").exists()


@pytest.mark.parametrize("args, fragment", [
    (["no-such-experiment", "--smoke"], "unknown experiment 'no-such-experiment'"),
    (["easy", "--smoke", "--quick"], "--quick and --smoke"),
    (["segments", "--smoke", "--methods", "iVAE,nope"], "no method(s) ['nope']"),
])
def test_bad_arguments_are_one_line_errors(args, fragment, tmp_path):
    result = invoke(*args, "--out", tmp_path)
    assert result.exit_code == 1
    assert fragment in result.output and "Traceback" not in result.output


def test_methods_option_runs_only_those_fits_and_restarts_are_a_method(tmp_path):
    result = invoke("segments", "--smoke", "--methods", "TCL, iVAE (2 restarts)", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "segments.csv")
    assert {r["method"] for r in rows} == {"TCL", "iVAE (2 restarts)"}
    restart_rows = [r for r in rows if r["method"] == "iVAE (2 restarts)"]
    assert [int(r["value"]) for r in restart_rows] == [10] and all(0 < r["mcc"] <= 1 for r in restart_rows)


def test_merge_replaces_only_the_methods_run(tmp_path):
    assert invoke("segments", "--smoke", "--out", tmp_path).exit_code == 0
    before = read_results(tmp_path / "segments.csv")
    refused = invoke("segments", "--smoke", "--methods", "TCL", "--out", tmp_path)
    assert refused.exit_code == 1 and "--merge" in refused.output
    result = invoke("segments", "--smoke", "--methods", "TCL", "--merge", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    after = read_results(tmp_path / "segments.csv")
    key = lambda r: (r["method"], r["value"], r["data_seed"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, before))
    untouched = [r for r in before if r["method"] != "TCL"]
    assert [r for r in after if r["method"] != "TCL"] == untouched
    assert (tmp_path / "segments.png").read_bytes().startswith(PNG_MAGIC)


def test_values_option_and_merge_redo_only_those_fits(tmp_path):
    assert invoke("segments", "--smoke", "--out", tmp_path).exit_code == 0
    before = read_results(tmp_path / "segments.csv")
    result = invoke("segments", "--smoke", "--values", "6", "--methods", "TCL", "--seeds", "2", "--merge",
                    "--out", tmp_path)
    assert result.exit_code == 0, result.output
    after = read_results(tmp_path / "segments.csv")
    redone = lambda r: r["method"] == "TCL" and r["value"] == 6  # noqa: E731
    assert [r for r in after if not redone(r)] == [r for r in before if not redone(r)]
    assert sorted(r["data_seed"] for r in after if redone(r)) == [3001, 3002]
    unknown = invoke("segments", "--smoke", "--values", "7", "--out", tmp_path / "other")
    assert unknown.exit_code == 1 and "no n_segments ['7']" in unknown.output


def test_merge_refuses_another_experiments_csv_and_needs_methods(tmp_path):
    assert invoke("easy", "--smoke", "--out", tmp_path).exit_code == 0
    (tmp_path / "segments.csv").write_bytes((tmp_path / "easy.csv").read_bytes())
    result = invoke("segments", "--smoke", "--methods", "TCL", "--merge", "--out", tmp_path)
    assert result.exit_code == 1 and "not of segments (smoke)" in result.output
    assert (tmp_path / "segments.csv").read_bytes() == (tmp_path / "easy.csv").read_bytes()
    assert invoke("segments", "--smoke", "--merge", "--out", tmp_path).exit_code == 2


def test_a_name_is_required():
    result = invoke()
    assert result.exit_code == 2 and "--list" in result.output


def test_a_failed_fit_becomes_a_row_with_its_error(monkeypatch):
    experiment = EXPERIMENTS["latent-dim"]

    def broken(task, config):
        raise FloatingPointError("the loss diverged")

    monkeypatch.setattr(experiment, "run", broken)
    tasks = experiment.tasks(experiment.config("smoke"), [3001], "smoke")
    lines: list[str] = []
    rows = execute(tasks, jobs=1, echo=lines.append)
    assert len(rows) == len(tasks)
    assert all(r["error"] == "FloatingPointError: the loss diverged" and math.isnan(r["mcc"]) for r in rows)
    assert all("FAILED" in line for line in lines)


def test_default_seeds_are_apart_from_the_test_seeds():
    assert default_seeds(3) == [3001, 3002, 3003]
    assert min(default_seeds(100)) >= 100
    with pytest.raises(ValueError, match="positive integer"):
        default_seeds(0)


def test_every_experiment_has_three_sizes_with_at_least_five_full_seeds():
    for experiment in EXPERIMENTS.values():
        assert set(experiment.configs) == {"full", "quick", "smoke"}
        assert experiment.config("full").seeds >= 5
        assert experiment.config("smoke").seeds <= experiment.config("quick").seeds
    with pytest.raises(ValueError, match="unknown configuration size"):
        EXPERIMENTS["easy"].config("huge")


def test_task_rows_carry_the_task():
    task = Task("easy", "smoke", "iVAE", "max_steps", 10, 3001, 3001)
    row = task.row(mcc=0.5, seconds=1.0, step=10)
    assert set(row) == set(FIELDS)
    assert row["method"] == "iVAE" and row["value"] == 10 and row["error"] == ""


# ---------------------------------------------------------------- the pieces
@pytest.mark.parametrize("cls, params", [(nica.IVAE, {}), (nica.VAE, {"objective": "elbo"}),
                                         (nica.BetaTCVAE, {})])
def test_traced_fit_is_the_fit(cls, params, tiny_data, fast_params):
    """Recording MCC every epoch changes nothing: the latents equal those of model.fit."""
    settings = {**fast_params, **params, "max_steps": 25, "random_state": 4}
    plain = cls(3, **settings).fit(tiny_data.x, tiny_data.u)
    traced, trace = fit_traced(cls(3, **settings), tiny_data.x, tiny_data.u, tiny_data.s)
    np.testing.assert_array_equal(traced.transform(tiny_data.x, tiny_data.u),
                                  plain.transform(tiny_data.x, tiny_data.u))
    assert traced.elbo_ == plain.elbo_
    epochs, steps, mcc, _ = zip(*trace)
    assert epochs == tuple(range(len(trace))) and steps[0] == 0 and steps[-1] == 25
    assert mcc[-1] == pytest.approx(nica.mean_corr_coef(tiny_data.s, traced.transform(tiny_data.x, tiny_data.u)))


def test_traced_fit_records_every_k_epochs_and_the_last(tiny_data, fast_params):
    model = nica.IVAE(3, **{**fast_params, "max_steps": 25, "random_state": 0})
    _, trace = fit_traced(model, tiny_data.x, tiny_data.u, tiny_data.s, every=2)
    assert [t[0] for t in trace] == [0, 2, 4, 5]  # 5 steps per epoch: 5 epochs
    with pytest.raises(ValueError, match="one restart"):
        fit_traced(nica.IVAE(3, n_restarts=2), tiny_data.x, tiny_data.u, tiny_data.s)


# ---------------------------------------------------------------- the easy-to-classify data
def test_easy_data_shapes_labels_and_mixing():
    data = make_easy_to_classify(n_segments=5, n_per_segment=20, random_state=0)
    assert data.x.shape == data.s.shape == (100, 2)
    assert data.means.shape == data.scales.shape == (5, 2)
    np.testing.assert_array_equal(data.u, np.repeat(np.arange(5), 20))
    assert data.x.dtype == data.s.dtype == np.float32
    np.testing.assert_allclose(data.x, data.mix(data.s), rtol=1e-5, atol=1e-5)
    assert len(data.mixing) == 3 and all(m is data.mixing[0] for m in data.mixing)
    wide = make_easy_to_classify(n_segments=3, n_per_segment=4, n_sources=4, n_layers=2, random_state=0)
    assert wide.x.shape == (12, 4) and len(wide.mixing) == 2


def test_easy_data_mean_of_source_0_climbs_with_u_and_only_that():
    data = make_easy_to_classify(n_segments=6, n_per_segment=4000, n_sources=3, mean_step=3.0, random_state=1)
    seg_means = np.stack([data.s[data.u == k].mean(0) for k in range(6)])
    np.testing.assert_allclose(np.diff(seg_means[:, 0]), 3.0, atol=0.25)  # sd <= 3, 4000 points
    np.testing.assert_allclose(seg_means[:, 1:], 0.0, atol=0.2)
    np.testing.assert_array_equal(data.means, staircase_means(6, 3, 3.0))
    assert data.means[:, 0].mean() == pytest.approx(0.0)
    seg_sd = np.stack([data.s[data.u == k].std(0) for k in range(6)])
    np.testing.assert_allclose(seg_sd, data.scales, rtol=0.06)  # every source variance-modulated
    assert np.all((data.scales >= 0.5) & (data.scales <= 3.0))


def test_easy_data_is_easier_to_classify_from_source_0_than_centred_data():
    """Nearest-mean classification of u from source 0 alone: good with the staircase, poor without."""
    def accuracy(mean_step: float) -> float:
        data = make_easy_to_classify(n_segments=5, n_per_segment=400, mean_step=mean_step, random_state=2)
        centres = np.array([data.s[data.u == k, 0].mean() for k in range(5)])
        guess = np.abs(data.s[:, [0]] - centres).argmin(1)
        return float(np.mean(guess == data.u))

    assert accuracy(6.0) > 0.6 > 0.35 > accuracy(0.0)


def test_easy_data_seeding():
    a = make_easy_to_classify(n_segments=3, n_per_segment=10, random_state=5)
    b = make_easy_to_classify(n_segments=3, n_per_segment=10, random_state=np.random.default_rng(5))
    c = make_easy_to_classify(n_segments=3, n_per_segment=10, random_state=6)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.s, b.s)
    assert not np.allclose(a.x, c.x)
    zero = make_easy_to_classify(n_segments=3, n_per_segment=10, mean_step=0.0, random_state=5)
    assert np.all(zero.means == 0)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_segments=0), "n_segments"),
    (dict(n_per_segment=2.5), "n_per_segment"),
    (dict(mean_step=float("nan")), "mean_step"),
    (dict(activation="relu"), "activation"),
    (dict(scale_bounds=(2.0, 1.0)), "scale_bounds"),
])
def test_easy_data_rejects_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_easy_to_classify(**kwargs)
