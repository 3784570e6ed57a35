"""A resumed fit is the uninterrupted fit, bit for bit, wherever the interruption lands: at
any step (inside an epoch, at its end, at a checkpoint, just after one, at the last step),
during a checkpoint write, with another thread count, and when a non-finite step after
the resume rolls the model back (the rollback state travels in the checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nica import IVAE
from nica.models.analytic import AnalyticLoss
from nica.models.ivae import IVAEModule, LossOutput
from nica.training import checkpoint as checkpoint_module

# bitwise resume: also under other kernels and threads (make test, docs/reproducibility.md)
pytestmark = pytest.mark.numerics

#: 500 rows at batch 50: an epoch is 10 steps; checkpoints every 7 steps land at every
#: position in an epoch and never on the trainer's 50-step rollback snapshots
PARAMS = dict(hidden_dim=16, n_layers=2, batch_size=50, max_steps=120, checkpoint_every=7, device="cpu",
              random_state=3)


class Interrupt(BaseException):
    """Raised inside training, as a kill would stop it (not caught as an error)."""


def route_losses(monkeypatch, hook) -> None:
    """Call ``hook(call_number, module, compute)`` for every training-loss call."""
    calls = {"n": 0}
    autograd_loss, analytic_loss = IVAEModule.loss, AnalyticLoss.__call__

    def via_autograd(self, *args, **kwargs):
        calls["n"] += 1
        return hook(calls["n"], self, lambda: autograd_loss(self, *args, **kwargs))

    def via_analytic(self, *args, **kwargs):
        calls["n"] += 1
        return hook(calls["n"], self.module, lambda: analytic_loss(self, *args, **kwargs))

    monkeypatch.setattr(IVAEModule, "loss", via_autograd)
    monkeypatch.setattr(AnalyticLoss, "__call__", via_analytic)


def stop_at(step: int, poison_at: int | None = None):
    """A hook that interrupts the ``step``-th call (None: never) and poisons the parameters
    (NaN weights and loss) at the ``poison_at``-th."""

    def hook(n, module, compute):
        if n == step:
            raise Interrupt
        out = compute()
        if n == poison_at:
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))
            return LossOutput(out.loss * float("nan"), out.elbo, out.reconstruction, out.kl)
        return out

    return hook


def fit(data, folder, *, resume=False, **extra):
    return IVAE(3, **{**PARAMS, **extra}, checkpoint_dir=folder).fit(data.x, data.u, resume=resume)


def assert_same_fit(resumed, full, data):
    np.testing.assert_array_equal(resumed.transform(data.x), full.transform(data.x))
    assert resumed.history_.elbo == full.history_.elbo
    assert resumed.history_.learning_rate == full.history_.learning_rate
    assert resumed.n_steps_ == full.n_steps_


@pytest.fixture(scope="module")
def full(tiny_data, tmp_path_factory):
    return fit(tiny_data, tmp_path_factory.mktemp("full"))


@pytest.mark.parametrize("step", [1, 2, 6, 7, 8, 9, 10, 11, 14, 15, 49, 50, 51, 69, 70, 71, 112, 113, 119, 120])
def test_interrupted_at_any_step(tiny_data, full, tmp_path, monkeypatch, step):
    route_losses(monkeypatch, stop_at(step))
    with pytest.raises(Interrupt):
        fit(tiny_data, tmp_path)
    monkeypatch.undo()
    assert_same_fit(fit(tiny_data, tmp_path, resume=True), full, tiny_data)


@pytest.mark.parametrize("write", [1, 2, 5, 17, 18])
@pytest.mark.parametrize("where", ["while writing", "before the rename", "after the rename"])
def test_interrupted_during_a_checkpoint_write(tiny_data, full, tmp_path, monkeypatch, write, where):
    """A kill inside ``Checkpointing.save``: mid-file, with the file complete but not yet in
    place, or just after it replaced the previous one (the 18th write is the last, at step 120)."""
    calls = {"n": 0}
    save, replace = torch.save, checkpoint_module.os.replace

    def partial_save(obj, fh, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == write and where == "while writing":
            fh.write(b"\x80\x02half a pickle")
            raise Interrupt
        return save(obj, fh, *args, **kwargs)

    def interrupted_replace(src, dst):
        if calls["n"] == write and where == "before the rename":
            raise Interrupt
        replace(src, dst)
        if calls["n"] == write and where == "after the rename":
            raise Interrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", partial_save)
    monkeypatch.setattr(checkpoint_module.os, "replace", interrupted_replace)
    with pytest.raises(Interrupt):
        fit(tiny_data, tmp_path)
    monkeypatch.undo()
    assert_same_fit(fit(tiny_data, tmp_path, resume=True), full, tiny_data)


def test_resumed_with_another_thread_count(tiny_data, full, tmp_path, monkeypatch):
    """A busy machine changes timing, never the arithmetic: the resumed process may use
    another number of threads."""
    route_losses(monkeypatch, stop_at(45))
    with pytest.raises(Interrupt):
        fit(tiny_data, tmp_path)
    monkeypatch.undo()
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if threads == 1 else 1)
    try:
        resumed = fit(tiny_data, tmp_path, resume=True)
    finally:
        torch.set_num_threads(threads)
    assert_same_fit(resumed, full, tiny_data)


@pytest.mark.parametrize("restarts", [1, 3])
def test_a_rollback_after_the_resume_is_the_uninterrupted_rollback(tiny_data, tmp_path, monkeypatch, restarts):
    """Step 40 poisons the parameters; both fits roll back to the snapshot of step 0 (the
    last multiple of 50), although the resumed one restarted from the checkpoint of step 35."""
    route_losses(monkeypatch, stop_at(step=0, poison_at=40))
    full = fit(tiny_data, tmp_path / "full", n_restarts=restarts)
    assert [e["step"] for e in full.history_.events] == [40]
    route_losses(monkeypatch, stop_at(step=38))
    with pytest.raises(Interrupt):
        fit(tiny_data, tmp_path / "killed", n_restarts=restarts)
    route_losses(monkeypatch, stop_at(step=0, poison_at=40 - 35))  # call numbers restart at the resume
    resumed = fit(tiny_data, tmp_path / "killed", resume=True, n_restarts=restarts)
    assert [e["step"] for e in resumed.history_.events] == [35, 40]  # resumed, then rolled back
    assert_same_fit(resumed, full, tiny_data)


@pytest.mark.parametrize("every", [7, 10])
def test_resuming_a_fit_that_stopped_early_is_a_no_op(tiny_data, tmp_path, every):
    """Early stopping after epoch 3 (step 30): the final checkpoint is written after the
    loop (every 7) or at step 30 inside the epoch (every 10); resuming either changes nothing."""
    early = dict(n_iter_no_change=2, tol=10.0, checkpoint_every=every)
    full = fit(tiny_data, tmp_path, **early)
    assert full.history_.stopped_early and full.n_steps_ == 30
    resumed = fit(tiny_data, tmp_path, resume=True, **early)
    assert_same_fit(resumed, full, tiny_data)
