"""Sweeps on Dask: config validation, the results table, resume, failures, the command."""

from __future__ import annotations

import copy
import csv
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nica.sweep.execute as sweep
from nica import make_nonstationary
from nica.cli import main
from nica.datasets.settings import BENCHMARK_SETTINGS
from nica.sweep import ResultsTable, SweepConfig, SweepConfigError, load_config, plan_sweep, run_sweep

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]

#: 2 data seeds x 2 model seeds x 2 learning rates; 2 sources, 5 segments x 40 points, 20 steps
CONFIG = {
    "data": {"n_sources": 2, "n_segments": 5, "n_per_segment": 40, "n_layers": 2, "seeds": [1, 2]},
    "model": {"seeds": [0, 1], "max_steps": 20, "hidden_dim": 8, "n_layers": 2, "batch_size": 100,
              "device": "cpu"},
    "grid": {"learning_rate": [1e-2, 3e-3]},
}

TOML = """\
out = "results.csv"

[data]
n_sources = 2
n_segments = 5
n_per_segment = 40
n_layers = 2
seeds = [1, 2]

[model]
seeds = [0, 1]
max_steps = 20
hidden_dim = 8
n_layers = 2
batch_size = 100
device = "cpu"

[grid]
learning_rate = [1e-2, 3e-3]
"""


def config(**changes: dict) -> dict:
    """CONFIG with sections updated (a value of None deletes the key)."""
    out = copy.deepcopy(CONFIG)
    for section, values in changes.items():
        if values is None:
            out.pop(section, None)
            continue
        out.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                out[section].pop(key, None)
            else:
                out[section][key] = value
    return out


@pytest.fixture(scope="module")
def client():
    """Two in-process workers: no process start-up, and monkeypatches reach the tasks."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def count_fits(monkeypatch) -> list[tuple]:
    """Records (data seed, model seed, learning rate) of every run fitted on a worker."""
    calls: list[tuple] = []
    real = sweep._fit_and_evaluate

    def counted(data, model, holdout, split_seed):
        calls.append((split_seed, model.random_state, model.learning_rate))
        return real(data, model, holdout, split_seed)

    monkeypatch.setattr(sweep, "_fit_and_evaluate", counted)
    return calls


# ---------------------------------------------------------------- config validation
@pytest.mark.parametrize("raw, fragments", [
    ({**CONFIG, "outt": "x.csv"}, ["outt: unknown key", "did you mean 'out'"]),
    (config(data={"n_segmentz": 5}), ["data.n_segmentz: unknown key", "did you mean 'n_segments'"]),
    (config(model={"learnig_rate": 0.1}), ["model.learnig_rate", "did you mean 'learning_rate'",
                                           "hyperparameters of IVAE"]),
    (config(grid={"max_stepz": [1, 2]}), ["grid.max_stepz", "did you mean 'max_steps'"]),
    (config(grid={"random_state": [0, 1]}), ["grid.random_state", "model.seeds"]),
    (config(model={"random_state": 0}), ["model.random_state", "model.seeds"]),
    (config(grid={"learning_rate": []}), ["grid.learning_rate must be a non-empty list"]),
    (config(grid={"learning_rate": 0.01}), ["grid.learning_rate must be a non-empty list"]),
    (config(grid={"learning_rate": [0.01, 0.01]}), ["grid.learning_rate lists 0.01 twice"]),
    (config(grid={"learning_rate": ["0.01"]}), ["grid.learning_rate[0] must be a number", "'0.01'"]),
    (config(grid={"decoder_var": [True]}), ["grid.decoder_var[0] must be a number or a string", "True"]),
    (config(model={"max_steps": True}), ["model.max_steps must be an integer", "True"]),
    (config(grid={"objective_weights": [100, 1, 0, 10]}), ["grid.objective_weights[0] must be a list of 4"]),
    (config(grid={"max_steps": [10]}), ["grid.max_steps is also set in [model]", "one place"]),
    (config(data={"seeds": None}), ["data.seeds is missing"]),
    (config(data={"seeds": []}), ["data.seeds must be a non-empty list"]),
    (config(model={"seeds": [0, True]}), ["model.seeds must hold non-negative integers"]),
    (config(model={"seeds": [3, 3]}), ["model.seeds lists a seed twice"]),
    (config(data={"setting": "6-6"}), ["data.setting: unknown setting '6-6'", "5-5"]),
    (config(data={"path": "x.npz"}), ["data.path reads the data from a file", "remove data."]),
    (config(data={"holdout": 1.0}), ["data.holdout must be a fraction in [0, 1)"]),
    (config(data={"n_sources": "2"}), ["data.n_sources must be an integer"]),
    (config(model={"estimator": "PCA"}), ["model.estimator: unknown estimator 'PCA'", "IVAE"]),
    (config(model={"preset": "fast"}), ["model.preset: unknown preset 'fast'", "authors"]),
    (config(data=None), ["no [data] section"]),
    ({**CONFIG, "grid": [1, 2]}, ["[grid] must be a table"]),
    ({**CONFIG, "out": 3}, ["out must be a file name"]),
])
def test_config_errors_name_the_key_and_the_fix(raw, fragments):
    with pytest.raises(SweepConfigError) as info:
        SweepConfig.from_dict(raw)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_values_the_types_cannot_catch_fail_before_any_run(tmp_path):
    raw = config(grid={"objective": ["reweighted", "reweigthed"]})
    with pytest.raises(SweepConfigError, match=r"grid combination \{learning_rate=0.01, objective='reweigthed'\}: "
                       r"objective must be one of"):
        plan_sweep(raw, tmp_path / "out.csv")
    with pytest.raises(SweepConfigError, match=r"\[model\] settings: n_components=3 exceeds"):
        plan_sweep(config(model={"n_components": 3}, grid=None), tmp_path / "out.csv")
    with pytest.raises(SweepConfigError, match=r"max_steps=0\}: max_steps must be a positive integer"):
        plan_sweep(config(model={"max_steps": None}, grid={"max_steps": [0]}), tmp_path / "out.csv")
    with pytest.raises(SweepConfigError, match=r"device 'gpu0' is not a torch device"):
        plan_sweep(config(model={"device": "gpu0"}), tmp_path / "out.csv")
    with pytest.raises(SweepConfigError, match=r"^data: .*n_obs"):
        plan_sweep(config(data={"n_obs": 1}), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_warnings_of_the_one_step_fits_are_reported_once_per_combination(tmp_path):
    plan = plan_sweep(config(data={"n_segments": 2}), tmp_path / "out.csv")
    assert len(plan.warnings) == 2 and all("n k + 1" in w for w in plan.warnings)
    assert plan.warnings[0].startswith("{learning_rate=0.01}: u takes 2 distinct values")


def test_config_normalises_values_and_keys_are_stable():
    a = SweepConfig.from_dict(config(model={"decoder_var": 1}, grid={"learning_rate": [1, 3e-3]}))
    # an integer where a float is expected is the same run as its float, however spelled
    b = SweepConfig.from_dict(config(model={"decoder_var": 1.0}, grid={"learning_rate": [1.0, 3e-3]}))
    assert [r.key for r in a.runs()] == [r.key for r in b.runs()]
    assert len({r.key for r in a.runs()}) == 8
    # a named setting and its spelled-out arguments make the same data
    named = SweepConfig.from_dict(config(data={"setting": "5-5", "n_sources": None}))
    spelled = SweepConfig.from_dict(config(data={"n_sources": 5, "n_obs": 5}))
    assert [r.key for r in named.runs()] == [r.key for r in spelled.runs()]
    assert named.data.label == "5-5(n_segments=5,n_per_segment=40,n_layers=2)"
    # any change to what determines a run changes its key
    other = SweepConfig.from_dict(config(model={"hidden_dim": 9}))
    assert not {r.key for r in other.runs()} & {r.key for r in b.runs()}


def test_toml_yaml_and_bad_files(tmp_path):
    (tmp_path / "sweep.toml").write_text(TOML)
    from_toml = load_config(tmp_path / "sweep.toml")
    assert from_toml.out == tmp_path / "results.csv"
    assert len(from_toml.runs()) == 8
    yaml = pytest.importorskip("yaml")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({**CONFIG, "out": "results.csv"}))
    assert [r.key for r in load_config(tmp_path / "sweep.yaml").runs()] == [r.key for r in from_toml.runs()]
    (tmp_path / "bad.toml").write_text("[data\nseeds = 1")
    with pytest.raises(SweepConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "sweep.json").write_text("{}")
    with pytest.raises(SweepConfigError, match="use .toml, .yaml or .yml"):
        load_config(tmp_path / "sweep.json")


def test_benchmark_settings_match_the_benchmark_scripts():
    spec = importlib.util.spec_from_file_location("bench_settings", ROOT / "benchmarks" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SETTINGS == BENCHMARK_SETTINGS


def test_docs_example_config_is_valid(tmp_path):
    text = (ROOT / "docs" / "sweeps.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "sweep.toml").write_text(example)
    cfg = load_config(tmp_path / "sweep.toml")
    assert len(cfg.runs()) == len(cfg.data_seeds) * len(cfg.model_seeds) * len(cfg.combinations())


# ---------------------------------------------------------------- running
def test_grid_of_two_by_two_by_two_writes_eight_rows(client, tmp_path):
    out = tmp_path / "results.csv"
    result = run_sweep(CONFIG, out, client=client, progress=False)
    rows = read_rows(out)
    assert len(rows) == 8 and len({r["run_key"] for r in rows}) == 8
    assert {r["status"] for r in rows} == {"ok"}
    assert {(r["data_seed"], r["model_seed"], r["learning_rate"]) for r in rows} == {
        (d, m, lr) for d in ("1", "2") for m in ("0", "1") for lr in ("0.01", "0.003")}
    for r in rows:
        assert 0 <= float(r["mcc"]) <= 1
        assert np.isfinite(float(r["elbo"])) and np.isfinite(float(r["score"]))
        assert r["score_on"] == "train" and r["steps"] == "20" and float(r["fit_time"]) > 0
        assert r["worker"].startswith("inproc://") and r["finished_at"]
    assert result.n_runs == result.n_computed == 8 and result.n_skipped == 0 and result.n_failed == 0
    summary = result.summary().splitlines()
    assert summary[0].split()[:4] == ["learning_rate", "runs", "failed", "median"]
    assert len(summary) == 3 and all(line.split()[1] == "4" for line in summary[1:])


def test_an_interrupted_sweep_resumes_with_exactly_the_missing_runs(client, tmp_path, count_fits):
    out = tmp_path / "results.csv"
    first = run_sweep(CONFIG, out, client=client, progress=False, max_runs=3)
    assert first.n_computed == 3 and len(count_fits) == 3
    before = {r["run_key"]: r for r in read_rows(out)}
    assert len(before) == 3

    second = run_sweep(CONFIG, out, client=client, progress=False)
    assert second.n_skipped == 3 and second.n_computed == 5
    assert len(count_fits) == 8 and len(set(count_fits)) == 8  # each run fitted exactly once
    rows = read_rows(out)
    assert len(rows) == 8 and len({r["run_key"] for r in rows}) == 8
    assert all(rows[i] == before[rows[i]["run_key"]] for i in range(3))  # finished rows untouched

    third = run_sweep(CONFIG, out, client=client, progress=False)
    assert third.n_computed == 0 and len(count_fits) == 8 and len(third.rows) == 8


def test_a_torn_last_line_is_ignored_then_removed(client, tmp_path, count_fits):
    out = tmp_path / "results.csv"
    run_sweep(CONFIG, out, client=client, progress=False, max_runs=2)
    complete = read_rows(out)
    with open(out, "a") as fh:  # a crash in the middle of writing the third row
        fh.write(f'{SweepConfig.from_dict(CONFIG).runs()[7].key},ok,"generated(n_so')
    assert len(plan_sweep(CONFIG, out).pending) == 6  # readable as it is
    with pytest.warns(UserWarning, match="removed an incomplete last line"):
        result = run_sweep(CONFIG, out, client=client, progress=False)
    assert result.n_computed == 6 and len(count_fits) == 8
    rows = read_rows(out)
    assert len(rows) == 8 and len({r["run_key"] for r in rows}) == 8 and rows[:2] == complete
    assert all(None not in r and None not in r.values() for r in rows)


def test_a_failing_run_is_recorded_and_rerun_on_request(client, tmp_path, monkeypatch):
    out = tmp_path / "results.csv"
    real = sweep._fit_and_evaluate

    def fails_for_model_seed_1(data, model, holdout, split_seed):
        if model.random_state == 1:
            raise FloatingPointError("loss diverged\nat step 7")
        return real(data, model, holdout, split_seed)

    monkeypatch.setattr(sweep, "_fit_and_evaluate", fails_for_model_seed_1)
    result = run_sweep(CONFIG, out, client=client, progress=False)
    rows = read_rows(out)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 8 and result.n_failed == 4 == len(failed)
    assert {r["model_seed"] for r in failed} == {"1"}
    assert all(r["error"] == "FloatingPointError: loss diverged at step 7" and r["mcc"] == "" for r in failed)
    assert "failed" in result.summary()

    assert run_sweep(CONFIG, out, client=client, progress=False).n_computed == 0  # failures count as done
    monkeypatch.setattr(sweep, "_fit_and_evaluate", real)
    again = run_sweep(CONFIG, out, client=client, progress=False, rerun_failed=True)
    assert again.n_computed == 4 and again.n_failed == 0 and len(again.rows) == 8
    assert len(read_rows(out)) == 12  # the failures stay in the table; the newest row of a key counts


def test_a_task_that_cannot_run_is_recorded_as_failed(client, tmp_path, monkeypatch):
    real = sweep._make_data

    def no_data_for_seed_2(generator, seed):
        if seed == 2:
            raise MemoryError("no room for data seed 2")
        return real(generator, seed)

    monkeypatch.setattr(sweep, "_make_data", no_data_for_seed_2)
    result = run_sweep(CONFIG, tmp_path / "results.csv", client=client, progress=False)
    failed = [r for r in result.rows if r["status"] == "failed"]
    assert len(result.rows) == 8 and len(failed) == 4
    assert {r["data_seed"] for r in failed} == {"2"}
    assert all("MemoryError: no room for data seed 2" in r["error"] for r in failed)


def test_file_data_with_a_held_out_split(client, tmp_path):
    data = make_nonstationary(2, n_segments=5, n_per_segment=40, n_layers=2, random_state=3)
    np.savez(tmp_path / "data.npz", x=data.x, u=data.u, s=data.s)
    raw = config(data={"path": "data.npz", "holdout": 0.25, "seeds": None, "n_sources": None,
                       "n_segments": None, "n_per_segment": None, "n_layers": None})
    cfg = SweepConfig.from_dict(raw, base_dir=tmp_path)
    assert cfg.data.label == "data.npz" and len(cfg.runs()) == 4
    result = run_sweep(cfg, tmp_path / "results.csv", client=client, progress=False)
    assert result.n_failed == 0 and len(result.rows) == 4
    assert all(r["data_seed"] == "" and r["score_on"] == "heldout" and 0 <= float(r["heldout_mcc"]) <= 1
               for r in result.rows)


def test_new_grid_columns_widen_the_table(client, tmp_path):
    out = tmp_path / "results.csv"
    run_sweep(config(model={"seeds": [0]}, data={"seeds": [1]}), out, client=client, progress=False)
    # batch size 100 was fixed before: those two runs keep their keys and are not redone
    wider = config(model={"seeds": [0], "batch_size": None}, data={"seeds": [1]}, grid={"batch_size": [50, 100]})
    result = run_sweep(wider, out, client=client, progress=False)
    rows = read_rows(out)
    assert "batch_size" in rows[0] and len(rows) == 4 and result.n_computed == 2 and result.n_skipped == 2
    assert sorted(r["batch_size"] for r in rows) == ["", "", "50", "50"]
    assert sorted(r["batch_size"] for r in result.rows) == ["100", "100", "50", "50"]
    assert len(result.summary().splitlines()) == 5


def test_results_table_rejects_a_foreign_csv(tmp_path):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a nica sweep results table"):
        ResultsTable(tmp_path / "other.csv", ["run_key"]).read()


# ---------------------------------------------------------------- the command
def test_command_runs_on_a_scheduler_and_resumes(client, tmp_path):
    (tmp_path / "sweep.toml").write_text(TOML)
    runner = CliRunner()
    args = ["sweep", str(tmp_path / "sweep.toml"), "--scheduler", client.scheduler.address, "--quiet"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2 data seed(s) x 2 model seed(s) x 2 combination(s) = 8 runs; 0 already" in dry.output
    first = runner.invoke(main, [*args, "--max-runs", "5"])
    assert first.exit_code == 0, (first.output, first.exception)
    assert "8 runs: 0 already" in first.output and "3 left for later" in first.output
    second = runner.invoke(main, args)
    assert second.exit_code == 0, (second.output, second.exception)
    assert "8 runs: 5 already" in second.output and "3 runs done now, 8 of 8" in second.output
    assert "median MCC" in second.output
    assert len(read_rows(tmp_path / "results.csv")) == 8


def one_line_error(result) -> str:
    assert result.exit_code == 1, (result.output, result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_command_errors_are_one_line(tmp_path, monkeypatch):
    runner = CliRunner()
    (tmp_path / "sweep.toml").write_text(TOML.replace("max_steps", "max_stepz"))
    error = one_line_error(runner.invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--dry-run"]))
    assert "model.max_stepz: unknown key; did you mean 'max_steps'?" in error
    error = one_line_error(runner.invoke(main, ["sweep", str(tmp_path / "none.toml")]))
    assert "config file not found" in error
    error = one_line_error(runner.invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--scheduler",
                                                "tcp://localhost:1", "--workers", "2"]))
    assert "drop them when you pass --scheduler" in error
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    error = one_line_error(runner.invoke(main, ["sweep", str(tmp_path / "sweep.toml")]))
    assert 'pip install "nica[distributed]"' in error
    with pytest.raises(ImportError, match=re.escape('pip install "nica[distributed]"')):
        run_sweep(CONFIG, tmp_path / "out.csv")


# ---------------------------------------------------------------- nothing lost, nothing unbounded
def test_an_out_that_is_not_a_results_table_is_never_touched(client, tmp_path):
    """A file without a newline (or any file not a results table) at --out is refused before
    any run, whatever its suffix, and stays as it was."""
    (tmp_path / "sweep.toml").write_text(TOML)
    for name, content in (("v.txt", b"keep me"), ("notes.csv", b"line one\nline two")):
        (tmp_path / name).write_bytes(content)
        result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / name),
                                           "--scheduler", client.scheduler.address, "--quiet"])
        assert "not a nica sweep results table" in one_line_error(result)
        assert (tmp_path / name).read_bytes() == content


def test_runs_with_a_checkpoint_dir_each_get_their_own_folder(client, tmp_path):
    """model.checkpoint_dir: the dry run writes nothing; a sweep's runs all succeed, each
    checkpointing to checkpoint_dir/<run key>, and a second sweep skips them."""
    text = TOML.replace('device = "cpu"', f'device = "cpu"\ncheckpoint_dir = "{tmp_path / "ck"}"')
    (tmp_path / "sweep.toml").write_text(text)
    args = ["sweep", str(tmp_path / "sweep.toml"), "--scheduler", client.scheduler.address, "--quiet"]
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert not (tmp_path / "ck").exists()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (result.output, result.exception)
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted(r["run_key"] for r in rows)


def test_a_sweep_with_failed_runs_exits_1(client, tmp_path, monkeypatch):
    (tmp_path / "sweep.toml").write_text(TOML)

    def broken(*args, **kwargs):
        raise ValueError("the fit went wrong")

    monkeypatch.setattr(sweep, "_fit_and_evaluate", broken)
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--scheduler",
                                       client.scheduler.address, "--quiet"])
    assert "8 of 8 runs failed" in one_line_error(result) and "--rerun-failed" in result.output


def test_yaml_aliases_and_huge_configs_are_refused_unexpanded(tmp_path):
    """A 'billion laughs' of nested aliases (a few hundred bytes) is refused by its first
    alias, never expanded; a config over 1 MiB is refused unread."""
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\n")
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "bomb.yaml"), "--out", str(tmp_path / "r.csv")])
    assert "uses a YAML alias (*a, line 2)" in one_line_error(result)
    (tmp_path / "big.toml").write_text("# padding\n" * 200_000)
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "big.toml"), "--out", str(tmp_path / "r.csv")])
    assert "more than the 1 MiB" in one_line_error(result)
