"""Checkpoints, resume after interruption (including SIGKILL), and non-finite losses."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import nica
from nica import IVAE
from nica.models.analytic import AnalyticLoss
from nica.models.ivae import IVAEModule, LossOutput
from nica.training import CheckpointError, TrainingDivergedError
from nica.training.checkpoint import CHECKPOINT_FILE

RESUME = dict(hidden_dim=16, n_layers=2, batch_size=50, max_steps=120, checkpoint_every=25,
              device="cpu", random_state=3)


def latents(model, data):
    return model.transform(data.x, data.u)


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    return IVAE(3, **RESUME, checkpoint_dir=tmp_path_factory.mktemp("full")).fit(tiny_data.x, tiny_data.u)


class Interrupt(Exception):
    pass


def patch_training_loss(monkeypatch, wrap) -> None:
    """Route every training-loss call through ``wrap(module, compute)``, whichever path the
    trainer takes (autograd: ``IVAEModule.loss``; hand-derived: ``AnalyticLoss.__call__``)."""
    autograd_loss, analytic_loss = IVAEModule.loss, AnalyticLoss.__call__

    def via_autograd(self, *args, **kwargs):
        return wrap(self, lambda: autograd_loss(self, *args, **kwargs))

    def via_analytic(self, *args, **kwargs):
        return wrap(self.module, lambda: analytic_loss(self, *args, **kwargs))

    monkeypatch.setattr(IVAEModule, "loss", via_autograd)
    monkeypatch.setattr(AnalyticLoss, "__call__", via_analytic)


def interrupt_at_step(monkeypatch, step: int) -> None:
    """Make the step-th call of the loss raise, as a kill between two checkpoints would."""
    calls = {"n": 0}

    def wrap(module, compute):
        calls["n"] += 1
        if calls["n"] == step:
            raise Interrupt
        return compute()

    patch_training_loss(monkeypatch, wrap)


@pytest.mark.parametrize("stop_at", [30, 76, 100])
def test_resume_reaches_the_uninterrupted_result(tiny_data, tmp_path, monkeypatch, uninterrupted, stop_at):
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, stop_at)
        with pytest.raises(Interrupt):
            IVAE(3, **RESUME, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    resumed = IVAE(3, **RESUME, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u, resume=True)
    np.testing.assert_array_equal(latents(resumed, tiny_data), latents(uninterrupted, tiny_data))
    assert resumed.history_.elbo == uninterrupted.history_.elbo
    assert resumed.n_steps_ == uninterrupted.n_steps_ == 120
    assert any(e["event"] == "resumed from checkpoint" for e in resumed.history_.events)


def test_resume_without_a_checkpoint_starts_fresh(tiny_data, tmp_path, uninterrupted):
    model = IVAE(3, **RESUME, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u, resume=True)
    np.testing.assert_array_equal(latents(model, tiny_data), latents(uninterrupted, tiny_data))


def test_resuming_a_finished_fit_is_a_no_op(tiny_data, uninterrupted):
    again = IVAE(3, **RESUME, checkpoint_dir=uninterrupted.checkpoint_dir).fit(
        tiny_data.x, tiny_data.u, resume=True)
    np.testing.assert_array_equal(latents(again, tiny_data), latents(uninterrupted, tiny_data))


def test_resume_takes_the_seed_from_the_checkpoint(tiny_data, uninterrupted):
    params = {**RESUME, "random_state": None}
    again = IVAE(3, **params, checkpoint_dir=uninterrupted.checkpoint_dir).fit(
        tiny_data.x, tiny_data.u, resume=True)
    assert again.seed_ == uninterrupted.seed_


def test_resume_refuses_other_data_settings_or_seed(tiny_data, uninterrupted):
    folder = uninterrupted.checkpoint_dir
    with pytest.raises(CheckpointError, match="different fit"):
        IVAE(3, **RESUME, checkpoint_dir=folder).fit(tiny_data.x + 1, tiny_data.u, resume=True)
    with pytest.raises(CheckpointError, match="different fit"):
        IVAE(3, **{**RESUME, "learning_rate": 0.5}, checkpoint_dir=folder).fit(tiny_data.x, tiny_data.u,
                                                                               resume=True)
    with pytest.raises(CheckpointError, match="random_state"):
        IVAE(3, **{**RESUME, "random_state": 4}, checkpoint_dir=folder).fit(tiny_data.x, tiny_data.u,
                                                                           resume=True)


def test_existing_checkpoint_is_not_overwritten_without_resume(tiny_data, uninterrupted):
    path = Path(uninterrupted.checkpoint_dir) / CHECKPOINT_FILE
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="resume"):
        IVAE(3, **RESUME, checkpoint_dir=uninterrupted.checkpoint_dir).fit(tiny_data.x, tiny_data.u)
    assert path.read_bytes() == before


def test_resume_needs_a_checkpoint_dir(tiny_data):
    with pytest.raises(ValueError, match="checkpoint_dir"):
        IVAE(3, **RESUME).fit(tiny_data.x, tiny_data.u, resume=True)


@pytest.mark.parametrize("every", [0, -3, 2.5])
def test_bad_checkpoint_every(tiny_data, tmp_path, every):
    with pytest.raises(ValueError, match="checkpoint_every"):
        IVAE(3, **{**RESUME, "checkpoint_every": every}, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u)


def test_corrupt_checkpoint_is_a_clear_error(tiny_data, tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        IVAE(3, **RESUME, checkpoint_dir=tmp_path).fit(tiny_data.x, tiny_data.u, resume=True)


# ---------------------------------------------------------------- SIGKILL
CHILD = """
import sys, numpy as np, torch
torch.set_num_threads({threads})
import nica
import nica._threads
_torch_threads = nica._threads.torch_threads  # the test threads, as tests/conftest.py sets them
nica._threads.torch_threads = lambda n: _torch_threads(None if n is None else {threads})
data = nica.make_nonstationary(3, n_segments=10, n_per_segment=50, random_state=0)
params = dict(hidden_dim=16, n_layers=2, batch_size=50, max_steps={steps}, device="cpu", random_state=3,
              checkpoint_every={every}, checkpoint_dir=sys.argv[1])
nica.IVAE(3, **params).fit(data.x, data.u, resume=True)
"""


def run_and_kill(folder: Path, steps: int, every: int, delay: float) -> None:
    """Start a fit in a child process and SIGKILL it ``delay`` s after its first checkpoint.
    The child trains on the test threads (NICA_TEST_THREADS) as the parent's fits do: steps
    on another thread count may round differently, and the resumed fit must be the same fit."""
    threads = int(os.environ.get("NICA_TEST_THREADS", "1"))
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(steps=steps, every=every, threads=threads),
                              str(folder)],
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 120
        while not (folder / CHECKPOINT_FILE).exists():
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the child fit ended or stalled before writing a checkpoint")
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


@pytest.mark.numerics
def test_sigkill_then_resume_gives_the_uninterrupted_latents(tiny_data, tmp_path):
    steps = 2_000
    params = {**RESUME, "max_steps": steps, "checkpoint_every": 100}
    run_and_kill(tmp_path / "killed", steps, 100, delay=0.5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = IVAE(3, **params, checkpoint_dir=tmp_path / "killed").fit(tiny_data.x, tiny_data.u, resume=True)
        full = IVAE(3, **params, checkpoint_dir=tmp_path / "full").fit(tiny_data.x, tiny_data.u)
    finally:
        torch.set_num_threads(threads)
    events = [e["step"] for e in resumed.history_.events if e["event"] == "resumed from checkpoint"]
    assert len(events) == 1 and 0 < events[0] < steps  # it really was interrupted mid-fit
    np.testing.assert_array_equal(latents(resumed, tiny_data), latents(full, tiny_data))


def test_checkpoint_is_never_half_written(tmp_path):
    """Kill a fit that checkpoints every step, at several moments: the file always loads."""
    folder = tmp_path / "ck"
    for delay in (0.05, 0.13, 0.29):
        run_and_kill(folder, steps=100_000, every=1, delay=delay)
        state = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
        assert state["history"]["n_steps"] > 0
    # stale temporary files of killed writers are swept by the next write
    assert len(list(folder.iterdir())) <= 2


# ---------------------------------------------------------------- non-finite losses
def poison(monkeypatch, steps: set[int], parameters: bool = False) -> None:
    """Make the loss non-finite at the given calls (optionally also poisoning a weight)."""
    calls = {"n": 0}

    def wrap(module, compute):
        calls["n"] += 1
        out = compute()
        if calls["n"] in steps:
            if parameters:
                with torch.no_grad():
                    next(module.parameters()).fill_(float("nan"))
            return LossOutput(out.loss * float("nan"), out.elbo, out.reconstruction, out.kl)
        return out

    patch_training_loss(monkeypatch, wrap)


def test_a_poisoned_batch_is_skipped_and_reported(tiny_data, fast_params, monkeypatch, caplog):
    poison(monkeypatch, {10})
    with caplog.at_level(logging.WARNING, logger="nica.training"):
        model = IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert np.isfinite(model.transform(tiny_data.x, tiny_data.u)).all()
    (event,) = model.history_.events
    assert event["step"] == 10 and "skipped" in event["event"]
    assert event["learning_rate"] < model.learning_rate
    assert "non-finite loss at step 10" in caplog.text
    assert model.n_steps_ == fast_params["max_steps"]


def test_poisoned_parameters_are_rolled_back(tiny_data, fast_params, monkeypatch):
    poison(monkeypatch, {20}, parameters=True)
    model = IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, tiny_data.u)
    (event,) = model.history_.events
    assert "rolled back" in event["event"]
    assert all(torch.isfinite(p).all() for p in model.module_.parameters())
    assert np.isfinite(model.transform(tiny_data.x, tiny_data.u)).all()


def test_repeated_failures_stop_with_the_last_good_model(tiny_data, fast_params, monkeypatch):
    poison(monkeypatch, set(range(5, 100)), parameters=True)
    model = IVAE(3, **fast_params, random_state=0)
    with pytest.raises(TrainingDivergedError, match="non-finite 6 times in a row"):
        model.fit(tiny_data.x, tiny_data.u)
    # the estimator keeps the last good state and reports what happened
    assert np.isfinite(model.transform(tiny_data.x, tiny_data.u)).all()
    assert len(model.history_.events) == 5
    assert isinstance(model, nica.IVAE) and model.n_steps_ == 10
