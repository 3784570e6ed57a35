"""The model ``nica fit`` uses: the rule, ``fit_model``, and every path of ``nica fit``."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import nica
from nica.cli import main
from nica.model_choice import MODELS, choose_model, compare_models, make_model, register_model

FLOW_FAST = dict(max_steps=60, n_restarts=2, device="cpu")
CLI_FAST = ["--max-steps", "40", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def clean_square() -> nica.NonstationaryData:
    """Noise-free 2 -> 2 data, 8 segments."""
    return nica.make_nonstationary(2, n_segments=8, n_per_segment=100, random_state=3)


@pytest.fixture(scope="module")
def noisy_tall() -> nica.NonstationaryData:
    """2 sources in 6 noisy observations."""
    return nica.make_nonstationary(2, 6, n_segments=8, n_per_segment=100, noise_std=0.2, random_state=4)


def run(*args, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


# ---------------------------------------------------------------- the rule
def test_auto_rule(clean_square, noisy_tall, tmp_path):
    assert choose_model(clean_square.x, 2).name == "flow"
    tall = choose_model(noisy_tall.x, 2)
    assert tall.name == "flow" and "principal components" in tall.reason
    binary = (noisy_tall.x > 0).astype(np.float32)
    assert choose_model(binary, 2) == choose_model(binary, 2)
    assert (choose_model(binary, 2).name, choose_model(binary, 2).params) == ("ivae", {"decoder": "bernoulli"})
    np.save(tmp_path / "x.npy", noisy_tall.x)
    streamed = nica.datasets.streaming.open_array(tmp_path / "x.npy")
    choice = choose_model(streamed, 2)
    assert choice.name == "flow" and "read from disk" in choice.reason
    np.save(tmp_path / "binary.npy", binary)
    streamed_binary = nica.datasets.streaming.open_array(tmp_path / "binary.npy")
    assert choose_model(streamed_binary, 2).params == {"decoder": "bernoulli"}
    with pytest.raises(ValueError, match="exceeds the 6 features"):
        choose_model(noisy_tall.x, 7)
    with_nan = noisy_tall.x.copy()
    with_nan[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        choose_model(with_nan, 2)


def test_fit_model_picks_and_fits(clean_square, noisy_tall):
    flow = nica.fit_model(clean_square.x, clean_square.u, 2, random_state=0, **FLOW_FAST)
    assert isinstance(flow, nica.IFlow) and flow.components_ is None
    tall = nica.fit_model(noisy_tall.x, noisy_tall.u, 2, random_state=0, **FLOW_FAST)
    assert isinstance(tall, nica.IFlow) and tall.components_.shape == (6, 2)
    ivae = nica.fit_model(noisy_tall.x, noisy_tall.u, 2, model="ivae", max_steps=20, random_state=0)
    assert isinstance(ivae, nica.IVAE) and ivae.transform(noisy_tall.x, noisy_tall.u).shape == (800, 2)


def test_make_model_refuses_bad_requests():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        make_model("nope", 2)
    with pytest.raises(ValueError, match="pass X"):
        make_model("auto", 2)
    with pytest.raises(ValueError, match=r"IFlow \(model 'flow'\) has no parameter\(s\) \['objective'\]"):
        make_model("flow", 2, objective="elbo")
    with pytest.raises(ValueError, match="taken by IFlow"):
        register_model("flow", nica.IVAE)
    assert register_model("ivae", nica.IVAE) is nica.IVAE and MODELS["ivae"] is nica.IVAE


def test_scores_of_both_models_compare_on_held_out_rows(noisy_tall):
    """Both scores are mean log p(x | u) per sample in the units of X; the ELBO is a lower
    bound, so on data the two fit about equally its score cannot be far above the flow's."""
    x, u = noisy_tall.x, noisy_tall.u
    train, test = np.arange(len(x)) % 4 != 0, np.arange(len(x)) % 4 == 0
    models = {"flow": nica.IFlow(2, max_steps=300, random_state=0).fit(x[train], u[train]),
              "ivae": nica.IVAE(2, max_steps=300, objective="elbo", decoder_var="learned",
                                random_state=0).fit(x[train], u[train])}
    scores = compare_models(models, x[test], u[test])
    assert set(scores) == {"flow", "ivae"} and all(np.isfinite(v) for v in scores.values())
    # the same quantity per sample: both within a few nats of each other (not off by a
    # units-of-X constant such as d log 10)
    assert abs(scores["flow"] - scores["ivae"]) < 5.0


# ---------------------------------------------------------------- nica fit, every path
@pytest.mark.parametrize(("data_name", "model", "expected"), [
    ("clean_square", "auto", "IFlow"), ("noisy_tall", "auto", "IFlow"), ("noisy_tall", "ivae", "IVAE"),
    ("clean_square", "flow", "IFlow"),
])
def test_fit_transform_evaluate_info_and_determinism(tmp_path, request, data_name, model, expected):
    data = request.getfixturevalue(data_name)
    path = tmp_path / "d.npz"
    np.savez(path, x=data.x, u=data.u, s=data.s)
    fits = [run("fit", path, "--n-components", "2", "--model", model, "--out", tmp_path / f"m{i}", *CLI_FAST)
            for i in range(2)]
    assert f"model {'flow' if expected == 'IFlow' else 'ivae'}" in fits[0].output
    assert ("log-likelihood" if expected == "IFlow" else "ELBO") in fits[0].output
    if expected == "IFlow":  # the flow's restarts are kept by their exact log-likelihood
        assert "kept by log-likelihood" in fits[0].output
    for i in range(2):
        run("transform", tmp_path / f"m{i}", path, "--out", tmp_path / f"z{i}.npy")
    z0, z1 = np.load(tmp_path / "z0.npy"), np.load(tmp_path / "z1.npy")
    np.testing.assert_array_equal(z0, z1)  # same seed, same latents
    loaded = nica.load(tmp_path / "m0")
    assert type(loaded).__name__ == expected
    np.testing.assert_allclose(loaded.transform(data.x, data.u), z0, rtol=1e-6, atol=1e-6)
    assert "MCC (pearson)" in run("evaluate", tmp_path / "z0.npy", path).output
    info = run("info", tmp_path / "m0").output
    assert expected in info and ("log-lik." if expected == "IFlow" else "ELBO") in info


def test_fit_matrix_lr_reaches_the_flow(tmp_path, clean_square):
    path = tmp_path / "d.npz"
    np.savez(path, x=clean_square.x, u=clean_square.u)
    for value, expected in (("adam", None), ("0.05", 0.05), ("auto", "auto")):
        run("fit", path, "--n-components", "2", "--out", tmp_path / value, "--matrix-lr", value, *CLI_FAST)
        assert nica.load(tmp_path / value).matrix_learning_rate == expected
    for bad in ("0", "-1", "fast", "inf"):
        result = run("fit", path, "--n-components", "2", "--out", tmp_path / "bad", "--matrix-lr", bad, ok=False)
        assert result.exit_code == 2 and "--matrix-lr" in result.output and not (tmp_path / "bad").exists()
    result = run("fit", path, "--n-components", "2", "--model", "ivae", "--matrix-lr", "0.1",
                 "--out", tmp_path / "ivae", *CLI_FAST, ok=False)
    assert result.exit_code == 1 and "--matrix-lr applies to --model flow" in result.output


def test_fit_tail_units_reach_the_flow(tmp_path, clean_square):
    path = tmp_path / "d.npz"
    np.savez(path, x=clean_square.x, u=clean_square.u)
    for value, expected in (("2", 2), ("auto", 0)):  # auto: none for 2 latents
        run("fit", path, "--n-components", "2", "--out", tmp_path / value, "--tail-units", value, *CLI_FAST)
        assert nica.load(tmp_path / value).module_.config.n_tail_units == expected
    for bad in ("-1", "1.5", "many"):
        result = run("fit", path, "--n-components", "2", "--out", tmp_path / "bad", "--tail-units", bad, ok=False)
        assert result.exit_code == 2 and "--tail-units" in result.output and not (tmp_path / "bad").exists()
    result = run("fit", path, "--n-components", "2", "--model", "ivae", "--tail-units", "2",
                 "--out", tmp_path / "ivae", *CLI_FAST, ok=False)
    assert result.exit_code == 1 and "--tail-units applies to --model flow" in result.output


def test_fit_bad_input_on_the_flow_path(tmp_path, clean_square):
    path = tmp_path / "d.npz"
    np.savez(path, x=clean_square.x, u=clean_square.u)
    for option in (["--objective", "elbo"], ["--decoder-var", "0.1"], ["--preset", "authors"],
                   ["--encoder-sees-u"]):
        result = run("fit", path, "--n-components", "2", "--out", tmp_path / "m", *option, *CLI_FAST, ok=False)
        assert result.exit_code == 1 and "applies to --model ivae" in result.output
        assert "but the model is 'flow' (chosen by --model auto" in result.output
        assert not (tmp_path / "m").exists()
    assert "unknown --model 'glow'" in run("fit", path, "--n-components", "2", "--model", "glow",
                                           "--out", tmp_path / "m", ok=False).output
    assert "exceeds the 2 features" in run("fit", path, "--n-components", "3", "--out", tmp_path / "m",
                                           *CLI_FAST, ok=False).output
    bad = tmp_path / "bad.npz"
    x = clean_square.x.copy()
    x[3, 1] = np.nan
    np.savez(bad, x=x, u=clean_square.u)
    assert "NaN" in run("fit", bad, "--n-components", "2", "--out", tmp_path / "m", *CLI_FAST, ok=False).output
    np.savez(bad, x=clean_square.x, u=clean_square.u[:-1])
    assert "rows" in run("fit", bad, "--n-components", "2", "--out", tmp_path / "m", *CLI_FAST, ok=False).output
    run("fit", path, "--n-components", "2", "--out", tmp_path / "m", *CLI_FAST)
    refused = run("fit", path, "--n-components", "2", "--out", tmp_path / "m", *CLI_FAST, ok=False)
    assert "--overwrite" in refused.output
    assert "deterministic" in run("transform", tmp_path / "m", path, "--out", tmp_path / "z.npy", "--sample",
                                  ok=False).output


def test_threads_reach_the_fit_and_are_restored(monkeypatch, clean_square):
    import torch

    import nica.base.estimator as flow_estimator

    seen = []
    original = flow_estimator.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(flow_estimator, "train", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        nica.IFlow(2, max_steps=5, random_state=0).fit(clean_square.x, clean_square.u)  # default: 1
        assert torch.get_num_threads() == 2  # the caller's setting comes back
        nica.IFlow(2, max_steps=5, n_threads=None, random_state=0).fit(clean_square.x, clean_square.u)
        nica.IFlow(2, max_steps=5, n_threads=3, random_state=0).fit(clean_square.x, clean_square.u)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2, 3]
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        nica.IFlow(2, n_threads=0).fit(clean_square.x, clean_square.u)


@pytest.mark.numerics
def test_both_scores_against_a_known_log_likelihood(linear_gaussian):
    # margin over model seeds 0-3: the flow 0.014 from the exact answer (asked: 0.05), the
    # iVAE's ELBO 0.18-0.31 below it (asked: within 1.0)
    """On linear Gaussian data with isotropic noise (3 sources in 6 observations) the exact
    mean log p(x | u) is known: the flow's score reaches it, and the iVAE's ELBO, a lower
    bound of the same quantity in the same units, lies at or below it and near it."""
    x, u, exact = linear_gaussian(3, 6, 0.3, seed=6)
    flow = nica.IFlow(3, n_flows=1, max_steps=1500, random_state=0, device="cpu").fit(x, u)
    ivae = nica.IVAE(3, objective="elbo", decoder_var="learned", max_steps=3000, random_state=0,
                     device="cpu").fit(x, u)
    scores = compare_models({"flow": flow, "ivae": ivae}, x, u)
    assert scores["flow"] == pytest.approx(exact, abs=0.05)
    assert exact - 1.0 < scores["ivae"] <= exact + 0.05
