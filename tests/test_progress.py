"""The progress bar of a fit: it moves every step, ends at the ELBO the summary prints (in
the units of X), and with restarts shows how far their ELBOs spread."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from nica.cli import main
from nica.training import progress

FIT = ["--model", "ivae", "--n-components", "3", "--hidden-dim", "16", "--layers", "2", "--batch-size", "50", "--seed", "1",
       "--device", "cpu"]


@pytest.fixture
def data_file(tiny_data, tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=tiny_data.x * 7.0 + 3.0, u=tiny_data.u)  # units far from standardised ones
    return path


def bar_states(output: str) -> list[str]:
    return [part for part in output.replace("\r", "\n").splitlines() if part.startswith("fit:")]


def test_the_bar_ends_at_the_elbo_the_summary_prints(data_file, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "REFRESH_SECONDS", 0.0)  # every step redraws: the bar moves within an epoch
    result = CliRunner().invoke(main, ["fit", str(data_file), "--out", str(tmp_path / "m"), "--max-steps", "25", *FIT])
    assert result.exit_code == 0, result.output
    states = bar_states(result.output)
    steps = {int(m.group(1)) for s in states if (m := re.search(r"\| *(\d+)/25", s))}
    assert {1, 5, 9} <= steps  # an epoch is 10 steps: the bar moved inside it
    shown = float(re.search(r"ELBO (-?[\d.]+)", [s for s in states if "25/25" in s][-1]).group(1))
    summary = float(re.search(r"training ELBO (-?[\d.]+) per sample in the units of X", result.output).group(1))
    assert shown == summary


def test_restarts_show_their_spread_and_agreement(data_file, tmp_path):
    result = CliRunner().invoke(main, ["fit", str(data_file), "--out", str(tmp_path / "m"), "--max-steps", "20",
                                       "--restarts", "3", *FIT])
    assert result.exit_code == 0, result.output
    final = [s for s in bar_states(result.output) if "20/20" in s][-1]
    low, high = map(float, re.search(r"restarts (-?[\d.]+) to (-?[\d.]+)", final).groups())
    kept = float(re.search(r"training ELBO (-?[\d.]+)", result.output).group(1))
    assert low <= kept <= high
    assert re.search(r"the restarts' latents agree with MCC [\d.]+ on average \(pairs [\d.]+ to [\d.]+\)",
                     result.output)


def test_the_flow_bar_shows_its_log_likelihood_and_the_summary_explains_it(data_file, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "REFRESH_SECONDS", 0.0)
    result = CliRunner().invoke(main, ["fit", str(data_file), "--out", str(tmp_path / "m"), "--max-steps", "20",
                                       "--n-components", "3", "--device", "cpu", "--seed", "1"])
    assert result.exit_code == 0, result.output
    final = [s for s in bar_states(result.output) if "20/20" in s][-1]
    shown = float(re.search(r"log-lik\. (-?[\d.]+)", final).group(1))
    summary = float(re.search(r"the progress bar's (-?[\d.]+) was the last epoch's mean", result.output).group(1))
    assert shown == summary and "model flow" in result.output
    exact = float(re.search(r"log-likelihood (-?[\d.]+) per sample in the units of X \(exact", result.output).group(1))
    import nica

    data = np.load(data_file)
    assert exact == pytest.approx(nica.load(tmp_path / "m").score(data["x"], data["u"]), abs=2e-3)
