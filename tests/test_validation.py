"""Bad input is rejected with a clear message before any training starts."""

from __future__ import annotations

import numpy as np
import pytest

import nica.estimator
from nica import IVAE, VAE
from nica._validation import AuxEncoder, check_observations


@pytest.fixture
def no_training(monkeypatch):
    """Make any call to the trainer fail loudly: errors must come before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started although the input was invalid")

    monkeypatch.setattr(nica.estimator, "train", forbidden)


@pytest.fixture
def xu(tiny_data):
    return tiny_data.x.copy(), tiny_data.u.copy()


# ---------------------------------------------------------------- X at fit time
@pytest.mark.parametrize(
    "make_x, error, match",
    [
        (lambda x: x[:, 0], ValueError, "2-D"),
        (lambda x: x[:, :, None], ValueError, "2-D"),
        (lambda x: np.where(np.arange(len(x))[:, None] == 7, np.nan, x), ValueError, "NaN or infinite.*row 7"),
        (lambda x: np.where(np.arange(len(x))[:, None] == 3, np.inf, x), ValueError, "NaN or infinite.*row 3"),
        (lambda x: x.astype(str), TypeError, "must hold numbers"),
        (lambda x: x.astype(object), TypeError, "must hold numbers"),
        (lambda x: x + 1j, TypeError, "real-valued"),
        (lambda x: x[:1], ValueError, "at least 2 samples"),
    ],
    ids=["1d", "3d", "nan", "inf", "strings", "object", "complex", "one-row"],
)
def test_bad_x_at_fit(no_training, xu, make_x, error, match):
    x, u = xu
    bad = make_x(x)
    with pytest.raises(error, match=match):
        IVAE(3).fit(bad, u[: len(bad)])


def test_ragged_x(no_training):
    with pytest.raises(ValueError, match="X could not be converted to an array"):
        IVAE(1).fit([[1.0, 2.0], [3.0]], [0, 1])


# ---------------------------------------------------------------- u at fit time
def test_u_length_mismatch(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="X has 500 rows but u has 499"):
        IVAE(3).fit(x, u[:-1])


def test_u_with_nan(no_training, xu):
    x, u = xu
    u = u.astype(float)
    u[10] = np.nan
    with pytest.raises(ValueError, match="u contains NaN"):
        IVAE(3).fit(x, u)


def test_non_integer_float_u_when_categorical(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="non-integer"):
        IVAE(3, u_type="categorical").fit(x, u + 0.5)


def test_single_label_u(no_training, xu):
    x, _ = xu
    with pytest.raises(ValueError, match="single label"):
        IVAE(3).fit(x, np.zeros(len(x), int))


def test_constant_continuous_u(no_training, xu):
    x, _ = xu
    u = np.column_stack([np.linspace(0, 1, len(x)), np.ones(len(x))])
    with pytest.raises(ValueError, match=r"constant column\(s\) \[1\]"):
        IVAE(3).fit(x, u)


def test_3d_u(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="u must be 1-D"):
        IVAE(3).fit(x, u[:, None, None])


def test_2d_categorical_u_must_be_onehot(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="one-hot"):
        IVAE(3, u_type="categorical").fit(x, np.column_stack([u, u]).astype(float) / 3)


def test_bad_u_type(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="u_type"):
        IVAE(3, u_type="ordinal").fit(x, u)


# ---------------------------------------------------------------- hyperparameters
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_components=4), "n_components=4 exceeds the 3 features"),
        (dict(n_components=0), "n_components must be a positive integer"),
        (dict(n_components=-1), "n_components must be a positive integer"),
        (dict(n_components=2.0), "n_components must be a positive integer"),
        (dict(objective="bogus"), "objective must be one of"),
        (dict(lr_schedule="step"), "lr_schedule must be one of"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(batch_size=32.5), "batch_size must be a positive integer"),
        (dict(max_steps=0), "max_steps must be a positive integer"),
        (dict(learning_rate=0.0), "learning_rate must be > 0"),
        (dict(learning_rate=-1e-3), "learning_rate must be > 0"),
        (dict(n_iter_no_change=0), "n_iter_no_change"),
        (dict(objective_weights=(1.0, 2.0)), "objective_weights needs 4 numbers"),
        (dict(prior="cauchy"), "unknown prior 'cauchy'"),
        (dict(decoder="poisson"), "unknown decoder 'poisson'"),
        (dict(decoder_var=-0.1), "decoder variance"),
        (dict(prior_net="rbf"), "prior network"),
        (dict(activation="swish42"), "unknown activation"),
        (dict(hidden_dim="wide"), "hidden_dim must be a positive integer or 'auto'"),
        (dict(hidden_dim=0), "hidden_dim must be a positive integer or 'auto'"),
        (dict(device="tpu9"), "device .tpu9. is not a valid torch device"),
    ],
)
def test_bad_hyperparameters(no_training, xu, kwargs, match):
    x, u = xu
    params = {"n_components": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        IVAE(**params).fit(x, u)


def test_numpy_integer_hyperparameters_are_accepted(xu, fast_params):
    # values taken from numpy arrays (e.g. a sweep over np.arange) are ordinary integers
    x, u = xu
    params = {**fast_params, "batch_size": np.int64(100), "max_steps": np.int64(3)}
    model = IVAE(np.int64(3), **params, random_state=np.int64(0)).fit(x, u)
    assert model.n_steps_ == 3


def test_bernoulli_decoder_needs_binary_x(no_training, xu):
    x, u = xu
    with pytest.raises(ValueError, match="binary X"):
        IVAE(3, decoder="bernoulli").fit(x, u)


def test_bad_random_state(no_training, xu):
    x, u = xu
    with pytest.raises(TypeError, match="random_state"):
        IVAE(3, random_state="seed").fit(x, u)


def test_vae_validates_x_too(no_training, xu):
    x, _ = xu
    with pytest.raises(ValueError, match="2-D"):
        VAE(3).fit(x[:, 0])


# ---------------------------------------------------------------- at transform time
def test_unknown_label_at_transform(fitted_ivae, tiny_data):
    u = tiny_data.u.copy()
    u[:3] = 42
    with pytest.raises(ValueError, match=r"not seen at fit time: \[42\]"):
        fitted_ivae.transform(tiny_data.x, u)


def test_onehot_wrong_width_at_transform(fitted_ivae, tiny_data):
    u = np.eye(11)[tiny_data.u]
    with pytest.raises(ValueError, match="one-hot u has 11 columns but the model knows 10 labels"):
        fitted_ivae.transform(tiny_data.x, u)


def test_continuous_u_for_categorical_model(fitted_ivae, tiny_data):
    with pytest.raises(ValueError, match="categorical"):
        fitted_ivae.transform(tiny_data.x, np.random.default_rng(0).normal(size=(len(tiny_data.x), 2)))
    with pytest.raises(ValueError, match="non-integer"):
        fitted_ivae.transform(tiny_data.x, tiny_data.u + 0.25)


def test_wrong_number_of_features_at_transform(fitted_ivae, tiny_data):
    x = np.column_stack([tiny_data.x, tiny_data.x[:, 0]])
    with pytest.raises(ValueError, match="X has 4 features but the model was fitted with 3"):
        fitted_ivae.transform(x, tiny_data.u)
    with pytest.raises(ValueError, match="4 features"):
        fitted_ivae.score(x, tiny_data.u)


def test_u_length_mismatch_at_transform(fitted_ivae, tiny_data):
    with pytest.raises(ValueError, match="rows"):
        fitted_ivae.transform(tiny_data.x, tiny_data.u[:10])


def test_nan_at_transform(fitted_ivae, tiny_data):
    x = tiny_data.x.copy()
    x[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted_ivae.transform(x, tiny_data.u)


def test_inverse_transform_checks_z(fitted_ivae):
    with pytest.raises(ValueError, match="Z has 2 columns but the model has 3 components"):
        fitted_ivae.inverse_transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="Z"):
        fitted_ivae.inverse_transform(np.zeros(3))


# ---------------------------------------------------------------- helpers directly
def test_check_observations_returns_float32():
    arr = check_observations([[1, 2], [3, 4]])
    assert arr.dtype == np.float32 and arr.shape == (2, 2)
    assert check_observations(np.array([[True], [False]])).dtype == np.float32


def test_aux_encoder_string_labels_sorted():
    enc = AuxEncoder().fit(np.array(["b", "a", "c", "a"]), 4)
    assert enc.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(enc.transform(np.array(["c", "a"])), [[0, 0, 1], [1, 0, 0]])


def test_aux_encoder_continuous_standardises():
    u = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    enc = AuxEncoder().fit(u, 3)
    out = enc.transform(u)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(0), 1.0, rtol=1e-6)


def test_onehot_u_using_a_single_column_is_rejected(no_training, xu):
    x, _ = xu
    u = np.zeros((len(x), 4))
    u[:, 2] = 1
    with pytest.raises(ValueError, match="single label"):
        IVAE(3).fit(x, u)
