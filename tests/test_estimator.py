"""The sklearn-style estimators ``nica.IVAE`` and ``nica.VAE``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nica
import nica.base.estimator
from nica import IVAE, VAE, IdentifiabilityWarning, NotFittedError

FITTED_ATTRIBUTES = ("module_", "config_", "history_", "elbo_", "n_features_in_", "n_steps_",
                     "fit_time_", "seed_", "aux_encoder_", "x_mean_", "x_scale_", "device_")


def fit_fast(tiny_data, fast_params, u=None, cls=IVAE, n=3, **kwargs):
    params = {**fast_params, "random_state": 0, **kwargs}
    return cls(n, **params).fit(tiny_data.x, tiny_data.u if u is None else u)


# ---------------------------------------------------------------- shapes
def test_output_shapes(fitted_ivae, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    n = len(x)
    z = fitted_ivae.transform(x, u)
    assert z.shape == (n, 3) and z.dtype == np.float32 and np.isfinite(z).all()
    draws = fitted_ivae.sample_posterior(x, u, n_samples=4, random_state=0)
    assert draws.shape == (4, n, 3)
    assert fitted_ivae.inverse_transform(z).shape == (n, 3)
    scores = fitted_ivae.score_samples(x, u)
    assert scores.shape == (n,) and np.isfinite(scores).all()
    score = fitted_ivae.score(x, u)
    assert isinstance(score, float)
    assert score == pytest.approx(float(scores.mean()))
    # a single row works at inference time
    assert fitted_ivae.transform(x[:1], u[:1]).shape == (1, 3)


def test_fewer_components_than_features(tiny_data, fast_params):
    data = nica.make_nonstationary(2, 5, n_segments=6, n_per_segment=40, random_state=1)
    model = IVAE(2, **fast_params, random_state=0).fit(data.x, data.u)
    z = model.transform(data.x, data.u)
    assert z.shape == (240, 2)
    assert model.inverse_transform(z).shape == (240, 5)
    assert model.n_features_in_ == 5


def test_fit_transform_equals_fit_then_transform(tiny_data, fast_params):
    a = IVAE(3, **fast_params, random_state=3).fit_transform(tiny_data.x, tiny_data.u)
    b = fit_fast(tiny_data, fast_params, random_state=3).transform(tiny_data.x, tiny_data.u)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- determinism
def test_same_seed_bit_identical(tiny_data, fast_params):
    a = fit_fast(tiny_data, fast_params, random_state=7)
    b = fit_fast(tiny_data, fast_params, random_state=7)
    np.testing.assert_array_equal(a.transform(tiny_data.x, tiny_data.u), b.transform(tiny_data.x, tiny_data.u))
    assert a.history_.elbo == b.history_.elbo
    assert a.seed_ == b.seed_ == 7


def test_different_seeds_differ(tiny_data, fast_params):
    a = fit_fast(tiny_data, fast_params, random_state=1)
    b = fit_fast(tiny_data, fast_params, random_state=2)
    assert not np.allclose(a.transform(tiny_data.x, tiny_data.u), b.transform(tiny_data.x, tiny_data.u))


def test_generator_random_state_is_reproducible(tiny_data, fast_params):
    a = fit_fast(tiny_data, fast_params, random_state=np.random.default_rng(5))
    b = fit_fast(tiny_data, fast_params, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.transform(tiny_data.x, tiny_data.u), b.transform(tiny_data.x, tiny_data.u))


def test_fit_does_not_touch_global_torch_rng(tiny_data, fast_params):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit_fast(tiny_data, fast_params)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- fitted state
def test_fitted_attributes(tiny_data, fast_params):
    model = IVAE(3, **fast_params, random_state=0)
    params = set(model.get_params())
    assert not [a for a in vars(model) if a.endswith("_") and not a.startswith("__")]
    model.fit(tiny_data.x, tiny_data.u)
    new = set(vars(model)) - params
    assert new, "fit set no attributes"
    assert all(a.endswith("_") for a in new), sorted(new)
    for attr in FITTED_ATTRIBUTES:
        assert hasattr(model, attr), attr
    assert model.n_features_in_ == 3
    assert model.fit_time_ > 0
    assert math.isfinite(model.elbo_)
    # hyperparameters are left as given
    assert model.get_params()["random_state"] == 0


@pytest.mark.parametrize("method", ["transform", "sample_posterior", "score", "score_samples"])
def test_not_fitted_error(method, tiny_data):
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(IVAE(3), method)(tiny_data.x, tiny_data.u)


def test_not_fitted_error_inverse_transform_and_save(tmp_path):
    with pytest.raises(NotFittedError):
        IVAE(3).inverse_transform(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        IVAE(3).save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert issubclass(NotFittedError, RuntimeError)


# ---------------------------------------------------------------- parameters
def test_get_set_params_round_trip():
    model = IVAE(4, prior="laplace", hidden_dim=7, objective="annealed", random_state=3)
    params = model.get_params()
    assert params["n_components"] == 4 and params["prior"] == "laplace" and params["hidden_dim"] == 7
    clone = IVAE(**params)
    assert clone.get_params() == params
    other = IVAE(2)
    assert other.set_params(**params) is other
    assert other.get_params() == params
    other.set_params(learning_rate=0.5)
    assert other.learning_rate == 0.5 and model.learning_rate != 0.5
    with pytest.raises(ValueError, match="unknown parameter 'nonsense'"):
        model.set_params(nonsense=1)


def test_repr_shows_changed_params():
    r = repr(IVAE(3, hidden_dim=7))
    assert r.startswith("IVAE(3") and "hidden_dim=7" in r and "prior=" not in r
    assert repr(VAE(2)) == "VAE(2)"


def test_authors_preset():
    model = IVAE.from_preset("authors", 5)
    assert model.n_components == 5
    assert model.objective == "reweighted"
    assert model.prior_mean is False
    assert model.prior_scale is True
    assert model.decoder_var == 0.1
    assert model.batch_size == 64
    assert model.learning_rate == 1e-2
    assert model.max_steps == 12_500
    assert tuple(model.objective_weights) == (100.0, 1.0, 0.0, 10.0)
    # overrides win over the preset
    assert IVAE.from_preset("authors", 5, max_steps=10).max_steps == 10
    assert isinstance(VAE.from_preset("authors", 2), VAE)


def test_default_preset_is_the_defaults():
    assert IVAE.from_preset("default", 3).get_params() == IVAE(3).get_params()


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="unknown preset 'fastest'"):
        IVAE.from_preset("fastest", 3)


# ---------------------------------------------------------------- u encodings
def test_u_encodings_give_identical_results(tiny_data, fast_params):
    x, labels = tiny_data.x, tiny_data.u
    onehot = np.eye(10)[labels]
    names = np.array([f"seg{k:02d}" for k in labels])  # sorts like the integers
    floats = labels.astype(np.float64)
    outputs = []
    for u in (labels, onehot, names, floats):
        model = IVAE(3, **fast_params, random_state=4).fit(x, u)
        outputs.append(model.transform(x, u))
        assert model.aux_encoder_.kind == "categorical"
        assert model.aux_encoder_.dim == 10
    for out in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], out)


def test_model_fitted_on_labels_accepts_onehot_at_transform(fitted_ivae, tiny_data):
    x, labels = tiny_data.x, tiny_data.u
    np.testing.assert_array_equal(fitted_ivae.transform(x, labels), fitted_ivae.transform(x, np.eye(10)[labels]))
    np.testing.assert_array_equal(fitted_ivae.transform(x, labels), fitted_ivae.transform(x, labels[:, None]))


def test_u_enters_the_prior_but_not_the_default_encoder(fitted_ivae, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    shifted = (u + 1) % 10
    np.testing.assert_array_equal(fitted_ivae.transform(x, u), fitted_ivae.transform(x, shifted))
    assert fitted_ivae.score(x, u) != fitted_ivae.score(x, shifted)


def test_encoder_sees_u_when_asked(tiny_data, fast_params):
    x, u = tiny_data.x, tiny_data.u
    model = nica.IVAE(3, encoder_sees_u=True, **fast_params, random_state=0).fit(x, u)
    assert not np.allclose(model.transform(x, u), model.transform(x, (u + 1) % 10))


def test_continuous_u(tiny_data, fast_params):
    t = np.linspace(0, 4 * np.pi, len(tiny_data.x))
    u = np.column_stack([np.sin(t), np.cos(t)]) + 0.01 * np.random.default_rng(0).normal(size=(len(t), 2))
    model = IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, u)
    assert model.aux_encoder_.kind == "continuous"
    assert model.aux_encoder_.dim == 2
    z = model.transform(tiny_data.x, u)
    assert z.shape == (len(t), 3) and np.isfinite(z).all()
    # new values of a continuous u are fine at transform time
    assert np.isfinite(model.transform(tiny_data.x[:5], u[:5] + 0.37)).all()
    with pytest.raises(ValueError, match="columns"):
        model.transform(tiny_data.x, u[:, :1].repeat(3, axis=1))


def test_continuous_u_1d_explicit(tiny_data, fast_params):
    u = np.arange(len(tiny_data.x), dtype=float)
    model = IVAE(3, **fast_params, u_type="continuous", random_state=0).fit(tiny_data.x, u)
    assert model.aux_encoder_.kind == "continuous" and model.aux_encoder_.dim == 1


# ---------------------------------------------------------------- identifiability warnings
def test_warns_when_too_few_segments(fast_params):
    data = nica.make_nonstationary(5, n_segments=5, n_per_segment=40, random_state=0)
    with pytest.warns(IdentifiabilityWarning, match="5 distinct values") as record:
        IVAE(5, **{**fast_params, "max_steps": 2}, random_state=0).fit(data.x, data.u)
    # the warning points at the caller's line, not at nica's internals
    assert [w.filename for w in record if w.category is IdentifiabilityWarning] == [__file__]


def test_variance_only_prior_needs_fewer_segments(fast_params):
    # k = 1 statistic: 5 components need n + 1 = 6 values
    data = nica.make_nonstationary(5, n_segments=6, n_per_segment=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        IVAE(5, **{**fast_params, "max_steps": 2}, prior_mean=False, random_state=0).fit(data.x, data.u)
    with pytest.warns(IdentifiabilityWarning, match="11"):
        IVAE(5, **{**fast_params, "max_steps": 2}, prior_mean=True, random_state=0).fit(data.x, data.u)


def test_warns_for_mean_only_gaussian_prior(tiny_data, fast_params):
    with pytest.warns(IdentifiabilityWarning, match="mean only"):
        fit_fast(tiny_data, fast_params, prior_mean=True, prior_scale=False, max_steps=2)


def test_warns_for_prior_independent_of_u(tiny_data, fast_params):
    with pytest.warns(IdentifiabilityWarning, match="does not depend on u"):
        fit_fast(tiny_data, fast_params, prior_mean=False, prior_scale=False, max_steps=2)


def test_no_warning_in_the_identifiable_setting(tiny_data, fast_params):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        fit_fast(tiny_data, fast_params, max_steps=2)
        fit_fast(tiny_data, fast_params, prior_mean=True, max_steps=2)
        fit_fast(tiny_data, fast_params, prior="laplace", max_steps=2)


def test_identifiability_warning_is_a_user_warning():
    assert issubclass(IdentifiabilityWarning, UserWarning)


# ---------------------------------------------------------------- posterior sampling
def test_sample_posterior_reproducible(fitted_ivae, tiny_data):
    x, u = tiny_data.x[:50], tiny_data.u[:50]
    a = fitted_ivae.sample_posterior(x, u, n_samples=3, random_state=11)
    b = fitted_ivae.sample_posterior(x, u, n_samples=3, random_state=11)
    c = fitted_ivae.sample_posterior(x, u, n_samples=3, random_state=12)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a[0], a[1])  # draws differ from each other


def test_sample_posterior_mean_approaches_transform(fitted_ivae, tiny_data):
    x, u = tiny_data.x[:40], tiny_data.u[:40]
    n_draws = 4000
    draws = fitted_ivae.sample_posterior(x, u, n_samples=n_draws, random_state=0)
    mean = fitted_ivae.transform(x, u)
    se = draws.std(0) / np.sqrt(n_draws)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * se + 1e-6)
    # and the draws have a non-degenerate spread
    assert np.all(draws.std(0) > 0)


def test_sample_posterior_rejects_bad_n_samples(fitted_ivae, tiny_data):
    with pytest.raises(ValueError, match="n_samples"):
        fitted_ivae.sample_posterior(tiny_data.x, tiny_data.u, n_samples=0)


# ---------------------------------------------------------------- training results
def test_reconstruction_beats_the_mean(fitted_ivae, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    x_hat = fitted_ivae.inverse_transform(fitted_ivae.transform(x, u))
    mse = ((x_hat - x) ** 2).mean()
    baseline = ((x - x.mean(0)) ** 2).mean()
    assert mse < 0.5 * baseline


def test_training_improves_the_elbo(fitted_ivae, tiny_data):
    untrained = IVAE(**{**fitted_ivae.get_params(), "max_steps": 1})
    untrained.fit(tiny_data.x, tiny_data.u)
    assert fitted_ivae.score(tiny_data.x, tiny_data.u) > untrained.score(tiny_data.x, tiny_data.u)
    assert fitted_ivae.history_.elbo[-1] > fitted_ivae.history_.elbo[0]


def test_score_is_deterministic_and_in_units_of_x(fitted_ivae, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    assert fitted_ivae.score(x, u) == fitted_ivae.score(x, u)
    # scaling X by c shifts every log-density by -d log c once the model is refitted on it;
    # without refitting, the standardisation constants convert between the two units
    scaled = IVAE(**fitted_ivae.get_params()).fit(10 * x, u)
    np.testing.assert_allclose(scaled.score_samples(10 * x, u),
                               fitted_ivae.score_samples(x, u) - 3 * np.log(10), rtol=1e-3, atol=1e-3)


def test_history_without_early_stopping(tiny_data, fast_params):
    model = fit_fast(tiny_data, fast_params, max_steps=23)  # 5 steps per epoch (500 rows / 100)
    h = model.history_
    assert model.n_steps_ == h.n_steps == 23
    assert len(h.elbo) == len(h.loss) == len(h.learning_rate) == math.ceil(23 / 5)
    assert all(math.isfinite(v) for v in h.elbo)
    assert not h.stopped_early
    assert model.elbo_ == pytest.approx(h.elbo[-1] - np.log(model.x_scale_).sum())


def test_early_stopping(tiny_data, fast_params):
    model = fit_fast(tiny_data, fast_params, max_steps=200, n_iter_no_change=1, tol=1e9)
    assert model.history_.stopped_early
    # the first epoch improves on -inf, the second cannot improve by 1e9 nats
    assert len(model.history_.elbo) == 2
    assert model.n_steps_ == 10 < 200


@pytest.mark.parametrize("schedule", ["constant", "cosine", "plateau"])
@pytest.mark.parametrize("objective", ["elbo", "reweighted", "annealed"])
def test_objectives_and_schedules_train(tiny_data, fast_params, objective, schedule):
    model = fit_fast(tiny_data, fast_params, objective=objective, lr_schedule=schedule, max_steps=10)
    assert model.n_steps_ == 10
    assert np.isfinite(model.transform(tiny_data.x, tiny_data.u)).all()


def test_cosine_schedule_decays_learning_rate(tiny_data, fast_params):
    model = fit_fast(tiny_data, fast_params, lr_schedule="cosine", max_steps=30)
    lrs = model.history_.learning_rate
    assert lrs[-1] < lrs[0] <= model.learning_rate


@pytest.mark.parametrize("kwargs", [dict(prior="laplace"), dict(prior_net="table"), dict(decoder_var=0.1),
                                    dict(standardize=False), dict(activation="lrelu")])
def test_model_variants_fit(tiny_data, fast_params, kwargs):
    model = fit_fast(tiny_data, fast_params, max_steps=10, **kwargs)
    assert np.isfinite(model.transform(tiny_data.x, tiny_data.u)).all()
    assert math.isfinite(model.score(tiny_data.x, tiny_data.u))


def test_bernoulli_decoder_on_binary_data(fast_params):
    data = nica.make_nonstationary(2, 6, n_segments=5, n_per_segment=40, discrete=True, random_state=0)
    model = IVAE(2, **{**fast_params, "max_steps": 10}, decoder="bernoulli", random_state=0).fit(data.x, data.u)
    x_hat = model.inverse_transform(model.transform(data.x, data.u))
    assert x_hat.shape == data.x.shape
    assert np.all((x_hat >= 0) & (x_hat <= 1))  # probabilities, not standardised values


def test_standardize_stores_feature_statistics(fitted_ivae, tiny_data):
    np.testing.assert_allclose(fitted_ivae.x_mean_, tiny_data.x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted_ivae.x_scale_, tiny_data.x.std(0), rtol=1e-5)


# ---------------------------------------------------------------- VAE baseline
def test_vae_ignores_u(fitted_vae, tiny_data):
    x = tiny_data.x
    z = fitted_vae.transform(x)
    assert z.shape == (len(x), 3)
    np.testing.assert_array_equal(z, fitted_vae.transform(x, tiny_data.u))
    np.testing.assert_array_equal(z, fitted_vae.transform(x, np.zeros(len(x))))
    assert fitted_vae.config_.conditional is False
    assert isinstance(fitted_vae, IVAE)


def test_vae_fit_with_u_equals_fit_without(tiny_data, fast_params):
    a = VAE(3, **fast_params, random_state=1).fit(tiny_data.x, tiny_data.u)
    b = VAE(3, **fast_params, random_state=1).fit(tiny_data.x)
    np.testing.assert_array_equal(a.transform(tiny_data.x), b.transform(tiny_data.x))


def test_vae_does_not_warn(tiny_data, fast_params):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        VAE(3, **{**fast_params, "max_steps": 2}).fit(tiny_data.x)


def test_ivae_requires_u(tiny_data):
    with pytest.raises(ValueError, match="u is required"):
        IVAE(3).fit(tiny_data.x)


def test_the_likelihood_requires_u_for_ivae(fitted_ivae, tiny_data):
    # transform does not (its encoder q(z | x) never reads u): tests/test_predict_u.py
    with pytest.raises(ValueError, match="u is required"):
        fitted_ivae.score_samples(tiny_data.x)


def test_onehot_u_with_unused_columns(tiny_data, fast_params):
    # regression: a one-hot u whose layout has a column no row uses (a class absent from this
    # data) used to be rejected by fit itself ("one-hot u has 11 columns but ... 10 labels")
    labels = np.where(tiny_data.u == 3, 4, tiny_data.u)  # column 3 unused
    u = np.eye(11)[labels]  # and column 10 too
    model = IVAE(3, **{**fast_params, "max_steps": 5}, random_state=0).fit(tiny_data.x, u)
    assert model.aux_encoder_.dim == 11
    z = model.transform(tiny_data.x, u)
    assert z.shape == (500, 3)
    # the columns are the labels: integer labels index the same columns
    np.testing.assert_array_equal(z, model.transform(tiny_data.x, labels))


def test_failed_refit_leaves_the_fitted_model_intact(tiny_data, fast_params):
    model = fit_fast(tiny_data, fast_params)
    before = model.transform(tiny_data.x, tiny_data.u)
    model.set_params(decoder_var=-1.0)  # invalid: detected while building the new network
    with pytest.raises(ValueError, match="decoder variance"):
        model.fit(3 * tiny_data.x + 1, (tiny_data.u + 1) % 10)
    np.testing.assert_array_equal(model.transform(tiny_data.x, tiny_data.u), before)


def test_inference_in_chunks_matches_one_pass(fitted_ivae, tiny_data, monkeypatch):
    x, u = tiny_data.x, tiny_data.u
    z = fitted_ivae.transform(x, u)
    x_hat = fitted_ivae.inverse_transform(z)
    monkeypatch.setattr(nica.base.estimator, "INFERENCE_CHUNK", 7)
    np.testing.assert_allclose(fitted_ivae.transform(x, u), z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted_ivae.inverse_transform(z), x_hat, rtol=1e-6, atol=1e-6)
    assert fitted_ivae.sample_posterior(x, u, n_samples=2, random_state=0).shape == (2, 500, 3)
    assert fitted_ivae.score_samples(x, u).shape == (500,)


def test_constant_feature_warns_and_still_fits(tiny_data, fast_params):
    x = np.column_stack([tiny_data.x, np.full(len(tiny_data.x), 2.5)])
    with pytest.warns(UserWarning, match=r"constant column\(s\) \[3\]"):
        model = IVAE(3, **{**fast_params, "max_steps": 5}, standardize=True, random_state=0).fit(x, tiny_data.u)
    assert np.isfinite(model.transform(x, tiny_data.u)).all()
    assert model.x_scale_[3] == 1.0


def test_defaults_follow_the_shape(tiny_data, fast_params):
    """n = d: per-feature z-scores, q(z | x), one encoder net, a table prior, cosine;
    n < d: the authors' recipe (raw X, q(z | x, u), two encoder nets, MLP prior, plateau)."""
    x = np.column_stack([tiny_data.x, 3.0 * tiny_data.x[:, :2]]).astype(np.float32)
    params = {**fast_params, "max_steps": 2}
    params.pop("hidden_dim"), params.pop("n_layers")
    square = IVAE(3, **params, random_state=0).fit(tiny_data.x, tiny_data.u)
    np.testing.assert_allclose(square.x_scale_, tiny_data.x.std(0), rtol=1e-5)
    c = square.config_
    assert (c.encoder_sees_u, c.shared_encoder, c.prior_net) == (False, True, "table")
    assert square._train_config(3).lr_schedule == "cosine" and IVAE(3)._train_config(3).max_steps == 10_000
    tall = IVAE(3, **params, random_state=0).fit(x, tiny_data.u)
    np.testing.assert_array_equal(tall.x_scale_, np.ones(5)) and np.testing.assert_array_equal(tall.x_mean_, 0)
    c = tall.config_
    assert (c.encoder_sees_u, c.shared_encoder, c.prior_net) == (True, False, "mlp")
    assert IVAE(3)._train_config(5).max_steps == 12_500 and IVAE(3)._train_config(5).lr_schedule == "plateau"
    pinned = IVAE(3, **params, standardize=True, encoder_sees_u=False, random_state=0).fit(x, tiny_data.u)
    np.testing.assert_allclose(pinned.x_scale_, x.std(0), rtol=1e-5)
    assert not pinned.config_.encoder_sees_u
    glob = IVAE(3, **params, standardize="global", random_state=0).fit(x, tiny_data.u)
    np.testing.assert_allclose(glob.x_scale_, np.full(5, np.sqrt(np.mean(x.std(0, dtype=np.float64) ** 2))),
                               rtol=1e-5)
    for bad in (dict(standardize="yes"), dict(encoder_sees_u="maybe"), dict(shared_encoder=None)):
        with pytest.raises(ValueError, match="must be True, False"):
            IVAE(3, **params, **bad).fit(x, tiny_data.u)


def test_tall_default_is_the_authors_setting():
    """With fewer latents than features (and >= 10 features, where the automatic width
    reaches the authors' 100) the default fit is the authors' preset, setting for setting."""
    data = nica.make_nonstationary(2, 10, n_segments=6, n_per_segment=20, random_state=0)
    aux = nica._validation.AuxEncoder("auto").fit(data.u, len(data.u))
    default, authors = IVAE(2), IVAE.from_preset("authors", 2)
    assert default._model_config(10, aux) == authors._model_config(10, aux)
    assert default._train_config(10) == authors._train_config(10)
    assert default._standardization(nica.datasets.streaming.column_stats(data.x, "X"))[1].tolist() == [1.0] * 10


@pytest.mark.parametrize("n_features, width", [(3, 50), (7, 70), (20, 100)])
def test_auto_hidden_width_grows_with_the_observed_dimension(n_features, width, fast_params):
    data = nica.make_nonstationary(3, n_features, n_segments=10, n_per_segment=20, random_state=0)
    params = {**fast_params, "hidden_dim": "auto", "max_steps": 1}
    model = IVAE(3, **params, random_state=0).fit(data.x, data.u)
    assert model.config_.hidden_dim == width
    assert model.module_.decoder.net.net[0].out_features == width


def test_a_diverging_refit_leaves_the_previous_fit_intact(tiny_data, fast_params, monkeypatch):
    model = fit_fast(tiny_data, fast_params)
    before = model.transform(tiny_data.x, tiny_data.u)
    mean_before = model.x_mean_.copy()

    def diverge(*args, **kwargs):
        raise FloatingPointError("the training loss became nan")

    monkeypatch.setattr(nica.base.estimator, "train", diverge)
    with pytest.raises(FloatingPointError):
        model.fit(tiny_data.x * 3 + 1, tiny_data.u)
    np.testing.assert_array_equal(model.x_mean_, mean_before)
    np.testing.assert_array_equal(model.transform(tiny_data.x, tiny_data.u), before)


# ---------------------------------------------------------------- restarts
@pytest.fixture(scope="module")
def restarted(tiny_data, fast_params):
    return IVAE(3, **fast_params, n_restarts=4, random_state=0).fit(tiny_data.x, tiny_data.u)


def test_restarts_attributes(restarted, tiny_data):
    m = restarted
    assert m.restart_scores_.shape == m.restart_elbo_.shape == (4,)
    assert m.selected_restart_ == int(np.argmax(m.restart_scores_))
    agreement = m.restart_agreement_
    assert agreement.shape == (4, 4)
    np.testing.assert_allclose(agreement, agreement.T)
    np.testing.assert_allclose(np.diag(agreement), 1.0)
    assert np.all((agreement >= 0) & (agreement <= 1 + 1e-9))
    # the agreement score is the mean MCC with the other restarts
    np.testing.assert_allclose(m.restart_scores_, (agreement.sum(1) - 1) / 3)
    assert m.elbo_ == m.restart_elbo_[m.selected_restart_]
    assert m.config_.n_models == 1


def test_transform_is_the_selected_restart(restarted, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    every = restarted.transform_restarts(x, u)
    assert every.shape == (4, len(x), 3)
    np.testing.assert_allclose(restarted.transform(x, u), every[restarted.selected_restart_], rtol=1e-5, atol=1e-6)
    # the restarts are different initialisations, not copies
    assert not np.allclose(every[0], every[1])


@pytest.mark.parametrize("selection", ["elbo", "first"])
def test_other_selection_rules(tiny_data, fast_params, selection):
    m = IVAE(3, **fast_params, n_restarts=3, selection=selection, random_state=0).fit(tiny_data.x, tiny_data.u)
    expected = int(np.argmax(m.restart_elbo_)) if selection == "elbo" else 0
    assert m.selected_restart_ == expected


def test_restarts_are_deterministic(tiny_data, fast_params, restarted):
    again = IVAE(3, **fast_params, n_restarts=4, random_state=0).fit(tiny_data.x, tiny_data.u)
    np.testing.assert_array_equal(again.restart_elbo_, restarted.restart_elbo_)
    np.testing.assert_array_equal(again.transform(tiny_data.x, tiny_data.u),
                                  restarted.transform(tiny_data.x, tiny_data.u))


@pytest.mark.parametrize("bad", [{"n_restarts": 0}, {"n_restarts": 2.5}, {"n_restarts": True},
                                 {"selection": "oracle"}])
def test_bad_restart_settings(tiny_data, fast_params, bad):
    with pytest.raises(ValueError, match="n_restarts|selection"):
        IVAE(3, **{**fast_params, **bad}).fit(tiny_data.x, tiny_data.u)


def test_restarts_survive_save_and_load(restarted, tmp_path, tiny_data):
    loaded = nica.load(restarted.save(tmp_path / "m"))
    assert loaded.selected_restart_ == restarted.selected_restart_
    np.testing.assert_array_equal(loaded.restart_scores_, restarted.restart_scores_)
    np.testing.assert_array_equal(loaded.restart_agreement_, restarted.restart_agreement_)
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  restarted.transform(tiny_data.x, tiny_data.u))
    # every restart is saved with the model (format 3): tests/test_data_paths.py
    np.testing.assert_array_equal(loaded.transform_restarts(tiny_data.x, tiny_data.u),
                                  restarted.transform_restarts(tiny_data.x, tiny_data.u))
