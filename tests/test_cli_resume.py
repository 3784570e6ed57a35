"""``nica fit`` checkpoints without being asked: a killed fit continues with ``--resume`` to
the uninterrupted result, and a successful fit leaves no working folder behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nica
from nica import IFlow, IVAE
from nica._checkpointing import checkpoints_beside, working_folder
from nica.cli import main
from nica.training.checkpoint import CHECKPOINT_FILE

SETTINGS = ["--n-components", "3", "--hidden-dim", "16", "--layers", "2", "--batch-size", "50",
            "--checkpoint-every", "20", "--seed", "5", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def data_file(tiny_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.npz"
    np.savez(path, x=tiny_data.x, u=tiny_data.u)
    return path


def fit_command(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["fit", str(data), "--out", str(out), "--max-steps", str(steps), *SETTINGS, *extra]


def run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


def start_and_kill(args: list[str], folder: Path, wait_for_step: int) -> None:
    """Run ``nica --threads 1 ARGS`` in a child process; SIGKILL it once its checkpoint in
    ``folder`` has reached ``wait_for_step`` steps."""
    code = "import sys; from nica.cli import main; sys.exit(main())"
    child = subprocess.Popen([sys.executable, "-c", code, "--threads", "1", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if (folder / CHECKPOINT_FILE).exists() and _checkpoint_step(folder) >= wait_for_step:
                break
            time.sleep(0.05)
        assert child.poll() is None, f"the fit ended before it was killed: {child.stderr.read()}"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()


def _checkpoint_step(folder: Path) -> int:
    import torch

    try:
        return int(torch.load(folder / CHECKPOINT_FILE, weights_only=True)["history"]["n_steps"])
    except Exception:  # caught mid-rename: try again
        return -1


def test_a_fit_killed_without_checkpoint_dir_resumes_to_the_uninterrupted_latents(data_file, tiny_data, tmp_path):
    steps = 1_000
    run(fit_command(data_file, tmp_path / "full", steps))
    assert not working_folder(tmp_path / "full").exists()  # removed once the fit succeeded
    assert nica.load(tmp_path / "full").checkpoint_dir is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]

    killed = tmp_path / "killed"
    start_and_kill(fit_command(data_file, killed, steps), working_folder(killed), wait_for_step=100)
    assert (working_folder(killed) / CHECKPOINT_FILE).exists() and not killed.exists()

    # the same command without --resume is refused, naming the option
    result = CliRunner().invoke(main, fit_command(data_file, killed, steps))
    assert result.exit_code == 1 and "--resume" in result.output and "resume=True" not in result.output

    run(fit_command(data_file, killed, steps, "--resume"))
    assert not working_folder(killed).exists()
    full, resumed = nica.load(tmp_path / "full"), nica.load(killed)
    assert any(e["event"] == "resumed from checkpoint" for e in resumed.history_.events)
    np.testing.assert_array_equal(resumed.transform(tiny_data.x), full.transform(tiny_data.x))
    assert resumed.history_.elbo == full.history_.elbo


def test_an_explicit_checkpoint_dir_is_kept(data_file, tmp_path):
    run(fit_command(data_file, tmp_path / "m", 40, "--checkpoint-dir", str(tmp_path / "ck")))
    assert (tmp_path / "ck" / CHECKPOINT_FILE).exists()
    assert not working_folder(tmp_path / "m").exists()
    assert nica.load(tmp_path / "m").checkpoint_dir == str(tmp_path / "ck")


def test_a_failed_fit_keeps_its_working_folder(tiny_data, tmp_path):
    model = IVAE(3, hidden_dim=8, max_steps=20, checkpoint_every=10, random_state=0)
    with pytest.raises(RuntimeError, match="boom"):
        with checkpoints_beside(model, tmp_path / "m") as folder:
            model.fit(tiny_data.x, tiny_data.u)
            raise RuntimeError("boom")
    assert (folder / CHECKPOINT_FILE).exists()
    assert model.checkpoint_dir is None  # the estimator's own setting comes back
    with pytest.raises(FileExistsError, match="resume"):
        with checkpoints_beside(model, tmp_path / "m"):
            pass
    with checkpoints_beside(model, tmp_path / "m", resume=True):
        model.fit(tiny_data.x, tiny_data.u, resume=True)
    assert not folder.exists()


def test_checkpoints_beside_needs_an_estimator_that_checkpoints(tmp_path):
    from nica.baselines import PCA

    with pytest.raises(TypeError, match="checkpoint_dir"):
        with checkpoints_beside(PCA(2), tmp_path / "m"):
            pass


@pytest.mark.numerics
def test_iflow_resumes_to_the_uninterrupted_fit(tiny_data, tmp_path, monkeypatch):
    params = dict(n_flows=1, hidden_dim=8, max_steps=60, batch_size=50, checkpoint_every=10, random_state=0)
    full = IFlow(3, **params).fit(tiny_data.x, tiny_data.u)
    from nica.flows.module import IFlowModule

    calls = {"n": 0}
    loss = IFlowModule.loss

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 37:
            raise KeyboardInterrupt
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(IFlowModule, "loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        IFlow(3, **params, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u)
    monkeypatch.setattr(IFlowModule, "loss", loss)
    resumed = IFlow(3, **params, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u, resume=True)
    assert resumed.history_.events[0]["step"] == 30
    np.testing.assert_array_equal(resumed.transform(tiny_data.x), full.transform(tiny_data.x))


def test_the_command_line_names_options_not_python_arguments(data_file, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    result = CliRunner().invoke(main, fit_command(data_file, tmp_path / "m", 10))
    assert result.exit_code == 1
    assert "pass --overwrite to replace it" in result.output and "overwrite=True" not in result.output


def test_working_folder_is_beside_the_model(tmp_path):
    assert working_folder(tmp_path / "sub" / "model") == tmp_path / "sub" / ".model.checkpoints"
