"""Time series: the temporal generator, series input, the temporal model (its log-Jacobian
against autograd, a small seeded recovery, bad input), saving, and ``nica fit --model temporal``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import nica
from nica import TemporalIVAE, mean_corr_coef
from nica.cli import main
from nica.datasets.temporal import make_temporal
from nica.temporal import InverseTransition, TemporalIVAEConfig, TemporalIVAEModule, check_series, lagged_aux, \
    time_windows
from nica.temporal.series import window_ends, windows

FAST = dict(n_flows=1, flow_hidden=8, transition_hidden=8, max_steps=20, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def series() -> nica.datasets.temporal.TemporalData:
    return make_temporal(3, lags=2, n_domains=4, n_per_domain=150, random_state=0)


# ---------------------------------------------------------------- the generator
def test_innovations_are_what_the_transition_leaves_of_each_step():
    data = make_temporal(4, lags=2, n_domains=3, n_per_domain=400, random_state=1)
    s, lags = data.s.astype(np.float64), data.lags
    past = np.stack([s[lags - 1 - k: len(s) - 1 - k] for k in range(lags)], axis=1)  # most recent first
    residual = s[lags:] - data.transition_mean(past)
    np.testing.assert_allclose(residual, data.innovations[lags:], atol=1e-4)
    np.testing.assert_allclose(data.mix(data.s), data.x, rtol=1e-4, atol=1e-4)


def test_the_transition_reads_exactly_lags_steps_and_the_second_lag_matters():
    data = make_temporal(3, lags=2, n_domains=2, n_per_domain=50, random_state=2)
    assert data.transition[0].shape == (2 * 3, 3)
    past = np.random.default_rng(0).normal(size=(200, 2, 3))
    moved = past.copy()
    moved[:, 1] += 1.0  # change z_{t-2} only
    assert np.abs(data.transition_mean(moved) - data.transition_mean(past)).mean() > 0.05
    assert make_temporal(3, lags=1, n_domains=2, n_per_domain=50, random_state=2).transition[0].shape == (3, 3)


def test_the_series_is_stationary_within_a_domain_and_its_innovation_scale_is_the_domains():
    data = make_temporal(3, lags=2, n_domains=2, n_per_domain=6000, random_state=3)
    for domain in range(2):
        s = data.s[data.u == domain][500:]  # past the change of domain
        first, second = np.array_split(s, 2)
        np.testing.assert_allclose(first.std(0), second.std(0), rtol=0.15)
        np.testing.assert_allclose(np.abs(first.mean(0) - second.mean(0)), 0, atol=0.2 * s.std(0).max())
        # Laplace(0, b): E|eps| = b
        eps = data.innovations[data.u == domain]
        np.testing.assert_allclose(np.abs(eps).mean(0), data.scales[domain], rtol=0.1)
    assert np.isfinite(data.s).all() and np.abs(data.s).max() < 100


def test_the_past_explains_part_of_each_step():
    data = make_temporal(8, lags=2, n_domains=4, n_per_domain=2000, random_state=4001)
    explained = 1 - data.innovations.var(0) / data.s.var(0)
    assert 0.05 < explained.mean() < 0.95


def test_fixed_innovations_share_one_scale_and_nonstationary_ones_differ():
    fixed = make_temporal(3, innovations="fixed", n_domains=4, n_per_domain=50, random_state=0)
    assert np.ptp(fixed.scales) == 0
    changing = make_temporal(3, n_domains=4, n_per_domain=50, random_state=0)
    assert np.ptp(changing.scales, axis=0).min() > 0


def test_sequences_stay_in_one_domain_and_the_splits_share_the_process():
    data = make_temporal(2, lags=1, n_domains=3, n_per_domain=40, sequence_length=10, random_state=0)
    assert data.x.shape == (12, 10, 2) and data.u.shape == (12, 10)
    assert (data.u == data.u[:, :1]).all() and sorted(set(data.u[:, 0])) == [0, 1, 2]
    assert data.x_test.shape == (3, 10, 2)
    np.testing.assert_allclose(data.mix(data.s_test), data.x_test, rtol=1e-4, atol=1e-4)


def test_the_generator_is_seeded():
    a, b = (make_temporal(2, n_domains=2, n_per_domain=30, random_state=7) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, make_temporal(2, n_domains=2, n_per_domain=30, random_state=8).x)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_obs=2), "n_obs (2) must be >= n_sources"),
    (dict(innovations="wild"), "innovations must be one of"),
    (dict(contraction=1.2), "contraction must be in (0, 1)"),
    (dict(sequence_length=7), "must divide n_per_domain"),
    (dict(sequence_length=2), "sequence_length must be an integer >= lags + 1"),
    (dict(n_per_domain=2), "n_per_domain must be >= lags + 1"),
    (dict(scale_bounds=(0, 1)), "scale_bounds must satisfy"),
    (dict(lags=0), "lags must be a positive integer"),
])
def test_generator_arguments_are_checked(kwargs, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make_temporal(3, **{"n_per_domain": 20, "n_domains": 2, "lags": 2, **kwargs})


# ---------------------------------------------------------------- series input
def test_check_series_reads_one_series_stacked_series_and_a_list():
    one = check_series(np.zeros((10, 2)), np.arange(10) % 2)
    assert one.layout == "single" and one.n_steps == 10
    stacked = check_series(np.zeros((3, 10, 2)), np.array([0, 1, 2]))  # one label per series
    assert stacked.layout == "stacked" and [len(u) for u in stacked.u] == [10, 10, 10]
    ragged = check_series([np.zeros((5, 2)), np.zeros((8, 2))], [np.zeros(5), np.ones(8)])
    assert ragged.restore(np.arange(13)[:, None]) [1].ravel().tolist() == list(range(5, 13))


def test_windows_and_their_last_steps():
    x = [np.arange(10.0).reshape(5, 2), 100 + np.arange(6.0).reshape(3, 2)]
    w = windows(x, 2)
    assert w.shape == (4, 3, 2)
    np.testing.assert_array_equal(w[0], x[0][:3])
    np.testing.assert_array_equal(w[-1], x[1])
    np.testing.assert_array_equal(window_ends(x, 2), [2, 3, 4, 7])


@pytest.mark.parametrize("X, u, fragment", [
    (np.zeros((2, 3)), None, "too short for the model's lags"),
    ([np.zeros((9, 3)), np.zeros((2, 3))], None, r"X\[1\] has 2 time steps"),
    (np.zeros((9, 3)), np.zeros(8), "u has 8 values but the series has 9 time steps"),
    (np.zeros((2, 9, 3)), np.zeros((2, 8)), "u of series 0 has 8 values"),
    (np.zeros((2, 9, 3)), np.zeros(5), r"u must have shape \(2, 9\)"),
    ([np.zeros((9, 3))], np.zeros(9), "pass u as a list"),
    (np.full((9, 3), np.nan), None, "NaN"),
    ([np.zeros((9, 3)), np.zeros((9, 2))], None, "different numbers of features"),
])
def test_bad_series_are_refused_with_a_clear_error(X, u, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_series(X, u, min_length=3)


def test_ivae_inputs_from_the_time_structure():
    x = np.arange(12.0).reshape(6, 2)
    rows, aux = lagged_aux(x, np.array([0, 0, 0, 1, 1, 1]), lags=1)
    np.testing.assert_array_equal(rows, x[1:])
    np.testing.assert_array_equal(aux[:, :2], x[:-1])
    np.testing.assert_array_equal(aux[:, 2:].argmax(1), [0, 0, 1, 1, 1])
    assert time_windows(7, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize("kind", ["mlp", "affine"])
@pytest.mark.parametrize("activation", ["lrelu", "xtanh", "tanh"])
def test_the_inverse_transitions_log_jacobian_matches_autograd(kind, activation):
    torch.manual_seed(0)
    n, lags, aux_dim, batch = 3, 2, 4, 5
    transition = InverseTransition(n, lags, aux_dim, kind=kind, hidden_dim=7, activation=activation).double()
    z = torch.randn(batch, n, dtype=torch.float64)
    past = torch.randn(batch, lags * n, dtype=torch.float64)
    u = torch.randn(batch, aux_dim, dtype=torch.float64)
    _, log_slope = transition(z, past, u)
    jac = torch.autograd.functional.jacobian(lambda v: transition(v, past, u)[0], z)  # (batch, n, batch, n)
    per_row = torch.stack([jac[b, :, b, :] for b in range(batch)])  # d eps_b / d z_b
    diagonal = torch.diagonal(per_row, dim1=-2, dim2=-1)
    np.testing.assert_allclose(log_slope.detach().numpy(), torch.log(diagonal.abs()).detach().numpy(), atol=1e-10)
    # component-wise: eps_i depends on z_{t,i} alone among the current latents, and on no other row
    off = jac.clone()
    for b in range(batch):
        off[b, :, b, :] -= torch.diag(diagonal[b])
    assert off.abs().max() < 1e-12


def test_the_flow_models_objective_is_the_exact_log_likelihood_of_the_window():
    torch.manual_seed(0)
    config = TemporalIVAEConfig(x_dim=2, n_latent=2, lags=1, aux_dim=3, n_flows=1, flow_hidden=8,
                                transition_hidden=8)
    module = TemporalIVAEModule(config).double()
    x = torch.randn(4, 2, 2, dtype=torch.float64)
    u = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0]]
    observation, log_prior = module.window_terms(x, u, None)
    # log |det d f^{-1} / dx| at x_t by autograd
    flat = module.flow()
    for b in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: flat(v[None])[0], x[b, -1])
        assert abs(float(torch.linalg.slogdet(jac)[1]) - float(observation[b].detach())) < 1e-8
    z = module.latents(x)
    expected = module.log_prior(z[:, -1], z[:, 0], u)
    np.testing.assert_allclose(log_prior.detach().numpy(), expected.detach().numpy(), atol=1e-10)


def _small_problem_mcc(model_seed: int) -> tuple[float, float]:
    """Held-out MCC of a short fit on a small seeded series, and the raw observations' MCC."""
    data = make_temporal(2, lags=1, n_domains=6, n_per_domain=300, random_state=0)
    model = TemporalIVAE(2, lags=1, flow="affine-coupling", n_flows=2, flow_hidden=16, transition_hidden=16,
                         max_steps=1000, batch_size=128, learning_rate=3e-3, random_state=model_seed, device="cpu")
    z = model.fit(data.x, data.u).transform(data.x_test)
    return mean_corr_coef(data.s_test, z), mean_corr_coef(data.s_test, data.x_test)


@pytest.mark.numerics
def test_a_small_seeded_problem_is_recovered():
    """One short fit beats the mixing's leftover. The threshold holds for every model seed
    measured (0-7: MCC 0.686-0.911, the observations 0.575), which stand in for other CPUs:
    one fit's MCC moves like another seed's when the rounding changes (issue 20)."""
    mcc, raw = _small_problem_mcc(0)
    assert mcc > 0.65
    assert mcc > raw + 0.05  # not the mixing's leftover


@pytest.mark.slow
def test_small_seeded_problems_are_recovered_on_average():
    """Over four model seeds the mean held-out MCC is well above the observations' (seeds
    0-7 measured: mean 0.853, sd 0.08; the mean of four has a standard error of 0.04)."""
    results = np.array([_small_problem_mcc(seed) for seed in range(4)])
    assert results[:, 0].mean() > 0.75
    assert (results[:, 0] - results[:, 1]).mean() > 0.15


def test_fit_is_deterministic_and_layouts_come_back_as_given(series):
    a = TemporalIVAE(3, lags=2, random_state=0, **FAST).fit(series.x, series.u)
    b = TemporalIVAE(3, lags=2, random_state=0, **FAST).fit(series.x, series.u)
    np.testing.assert_array_equal(a.transform(series.x), b.transform(series.x))
    assert a.transform(series.x).shape == (600, 3)
    stacked = np.stack([series.x[:300], series.x[300:]])
    assert a.transform(stacked).shape == (2, 300, 3)
    parts = a.transform([series.x[:10], series.x[10:30]])
    assert [p.shape for p in parts] == [(10, 3), (20, 3)]
    assert a.score_samples(series.x, series.u).shape == (598,)
    assert np.isfinite(a.score(series.x, series.u))


def test_the_vae_inference_fits_and_several_series_or_no_u_are_accepted(series):
    vae = TemporalIVAE(3, lags=2, inference="vae", hidden_dim=16, random_state=0, **FAST)
    vae.fit(np.stack([series.x[:300], series.x[300:]]), np.array([0, 1]))
    assert vae.transform(series.x).shape == (600, 3)
    assert vae.inverse_transform(np.zeros((4, 3))).shape == (4, 3)
    plain = TemporalIVAE(3, lags=1, random_state=0, **FAST).fit(series.x)  # one domain
    assert np.isfinite(plain.score(series.x))
    one_label = TemporalIVAE(3, lags=1, random_state=0, **FAST).fit(series.x, np.full(600, 2.0))
    assert one_label.aux_encoder_.classes == [2.0] and np.isfinite(one_label.score(series.x, np.full(600, 2.0)))
    with pytest.raises(ValueError, match="u is required"):
        TemporalIVAE(3, lags=1, random_state=0, **FAST).fit(series.x, series.u).score(series.x)


def test_the_flow_inverts_exactly(series):
    model = TemporalIVAE(3, lags=2, random_state=0, **FAST).fit(series.x, series.u)
    np.testing.assert_allclose(model.inverse_transform(model.transform(series.x)), series.x, atol=1e-3)


@pytest.mark.parametrize("X, u, params, fragment", [
    (np.zeros((2, 3)), None, {}, "too short for the model's lags"),
    ("series", np.zeros(10), {}, "u has 10 values but the series has 600 time steps"),
    ("series", None, {"n_components": 2}, "inference='flow' is a bijection"),
    ("series", None, {"lags": 0}, "lags must be a positive integer"),
    ("nan", None, {}, "NaN"),
])
def test_bad_input_is_refused_before_training(series, X, u, params, fragment):
    X = {"series": series.x, "nan": np.full((20, 3), np.nan)}.get(X, X) if isinstance(X, str) else X
    model = TemporalIVAE(**{"n_components": 3, "lags": 2, **FAST, **params})
    with pytest.raises(ValueError, match=fragment):
        model.fit(X, u)
    assert not hasattr(model, "module_")


def test_the_fit_runs_on_n_threads_and_restores_the_callers_setting(series, monkeypatch):
    import nica.base.estimator as temporal_estimator

    seen = []
    original = temporal_estimator.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(temporal_estimator, "train", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for n_threads in (1, None, 3):  # default 1; None leaves torch's setting alone
            TemporalIVAE(3, lags=2, n_flows=1, max_steps=2, n_threads=n_threads, random_state=0).fit(series.x)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2, 3]


def test_transform_checks_the_width_and_needs_a_fit(series):
    with pytest.raises(nica.NotFittedError):
        TemporalIVAE(3).transform(series.x)
    model = TemporalIVAE(3, lags=2, random_state=0, **FAST).fit(series.x, series.u)
    with pytest.raises(ValueError, match="fitted with 3"):
        model.transform(np.zeros((10, 4)))


def test_save_and_load_give_the_same_latents_and_scores(series, tmp_path):
    model = TemporalIVAE(3, lags=2, random_state=0, **FAST).fit(series.x, series.u)
    model.save(tmp_path / "m")
    loaded = nica.load(tmp_path / "m")
    assert isinstance(loaded, TemporalIVAE) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.transform(series.x), model.transform(series.x))
    assert loaded.score(series.x, series.u) == pytest.approx(model.score(series.x, series.u))
    info = nica.persistence.model_info(tmp_path / "m")
    assert info["data"]["lags"] == 2 and info["training"]["inference"] == "flow"


# ---------------------------------------------------------------- the command line
def test_fit_and_transform_a_series_from_the_command_line(series, tmp_path):
    np.savez(tmp_path / "series.npz", x=series.x, u=series.u, s=series.s)
    runner = CliRunner()
    fit = runner.invoke(main, ["fit", str(tmp_path / "series.npz"), "--model", "temporal", "--lags", "2",
                               "--n-components", "3", "--out", str(tmp_path / "m"), "--max-steps", "20", "--quiet"])
    assert fit.exit_code == 0, fit.output
    out = runner.invoke(main, ["transform", str(tmp_path / "m"), str(tmp_path / "series.npz"),
                               "--out", str(tmp_path / "z.npy")])
    assert out.exit_code == 0, out.output
    assert np.load(tmp_path / "z.npy").shape == (600, 3)
    info = runner.invoke(main, ["info", str(tmp_path / "m")])
    assert info.exit_code == 0 and "TemporalIVAE" in info.output


@pytest.mark.parametrize("args, fragment", [
    (["--model", "temporal", "--prior", "laplace"], "--prior applies to --model ivae, beta-tcvae"),
    (["--model", "temporal", "--objective", "elbo"], "but the model is 'temporal'; pass --model ivae"),
    (["--lags", "2"], "--lags applies to --model switching, temporal, but the model is 'flow'"),
    (["--model", "temporal", "--lags", "700"], "too short for the model's lags"),
])
def test_command_line_errors_are_one_line(series, tmp_path, args, fragment):
    np.savez(tmp_path / "series.npz", x=series.x, u=series.u)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "series.npz"), "--n-components", "3",
                                       "--out", str(tmp_path / "m"), *args])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output
