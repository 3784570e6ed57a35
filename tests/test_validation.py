"""Bad input is rejected with a clear message before any training starts."""

from __future__ import annotations

import numpy as np
import pytest

import nica.base.estimator
from nica import IVAE, VAE
from nica._validation import AuxEncoder, check_observations


@pytest.fixture
def no_training(monkeypatch):
    """Make any call to the trainer fail loudly: errors must come before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started although the input was invalid")

    monkeypatch.setattr(nica.base.estimator, "train", forbidden)


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


# ---------------------------------------------------------------- more X checks
def test_x_too_large_for_float32(no_training, xu):
    x, u = xu
    x = x.astype(np.float64)
    x[4, 1] = 1e300
    with pytest.raises(ValueError, match=r"X contains 1 values too large for float32.*row 4.*rescale"):
        IVAE(3).fit(x, u)


@pytest.mark.parametrize("shape", [(0, 3), (5, 0), (0, 0)])
def test_empty_x(no_training, shape):
    with pytest.raises(ValueError, match=r"X needs at least 2 samples and 1 feature, got shape"):
        IVAE(1).fit(np.zeros(shape), np.arange(shape[0]) % 2)


def test_empty_x_at_transform(fitted_ivae):
    with pytest.raises(ValueError, match=r"at least 1 sample and 1 feature, got shape \(0, 3\)"):
        fitted_ivae.transform(np.zeros((0, 3)), np.zeros(0, int))


def test_datetime_x(no_training, xu):
    x, u = xu
    with pytest.raises(TypeError, match="X must hold numbers, got dtype datetime64"):
        IVAE(1).fit(np.full((len(x), 1), np.datetime64("2020-01-01")), u)


def test_sparse_x_is_densified(fitted_ivae, tiny_data):
    import scipy.sparse as sp

    z = fitted_ivae.transform(sp.csr_matrix(tiny_data.x), tiny_data.u)
    np.testing.assert_array_equal(z, fitted_ivae.transform(tiny_data.x, tiny_data.u))


# ---------------------------------------------------------------- more u checks
@pytest.mark.parametrize(
    "make_u, error, match",
    [
        (lambda u: u + 0j, TypeError, "u must be real-valued"),
        (lambda u: np.full(len(u), np.datetime64("2020-01-01")), TypeError, "u must hold labels or numbers.*datetime"),
        (lambda u: np.array([None] + list(u[1:]), dtype=object), ValueError, "u has 1 missing value.*position 0"),
        (lambda u: np.array(["a"] + list(u[1:]), dtype=object), TypeError, r"u mixes value types \(int64, str\)"),
        (lambda u: u[:0], ValueError, "u is empty"),
        (lambda u: "segment", TypeError, "u='segment' is a column name, but X is a ndarray"),
        (lambda u: [[1, 2], [3]] * (len(u) // 2), ValueError, "u could not be converted"),
    ],
    ids=["complex", "datetime", "none", "mixed", "empty", "name-without-table", "ragged"],
)
def test_bad_u_types(no_training, xu, make_u, error, match):
    x, u = xu
    with pytest.raises(error, match=match):
        IVAE(3).fit(x, make_u(u))


def test_object_and_bytes_labels_are_read_as_text(xu, fast_params):
    x, u = xu
    as_objects = np.array([f"s{k}" for k in u], dtype=object)
    as_bytes = np.array([f"s{k}".encode() for k in u])
    a = AuxEncoder().fit(as_objects, len(x))
    b = AuxEncoder().fit(as_bytes, len(x))
    assert a.classes == b.classes == [f"s{k}" for k in range(10)]
    np.testing.assert_array_equal(a.transform(as_bytes), b.transform(as_objects))


def test_many_integer_labels_ask_for_continuous_u(no_training, xu):
    x, _ = xu
    with pytest.raises(ValueError, match=r"500 distinct labels for 500 rows.*u_type='continuous'.*"
                                         r"u_type='categorical'"):
        IVAE(3).fit(x, np.arange(len(x)))


def test_many_text_labels_look_like_an_identifier(no_training, xu):
    x, _ = xu
    with pytest.raises(ValueError, match="identifier"):
        IVAE(3).fit(x, np.array([f"cell{i}" for i in range(len(x))]))


def test_many_labels_asked_for_explicitly_only_warn(xu):
    x, _ = xu
    u = np.arange(len(x), dtype=float)  # 500 distinct integral floats
    with pytest.warns(UserWarning, match="500 distinct labels"):
        enc = AuxEncoder("categorical").fit(u, len(x))
    assert enc.n_values == 500


def test_up_to_ten_labels_are_fine_on_few_rows():
    enc = AuxEncoder().fit(np.arange(12) % 10, 12)
    assert enc.n_values == 10


def test_continuous_model_given_text_labels(tiny_data, fast_params):
    u = np.linspace(0, 1, len(tiny_data.x))
    model = IVAE(3, **{**fast_params, "max_steps": 2}, random_state=0).fit(tiny_data.x, u)
    with pytest.raises(TypeError, match="u holds text labels.*fitted with continuous u; pass numbers"):
        model.transform(tiny_data.x, np.array(["a"] * len(tiny_data.x)))


def test_categorical_model_given_fractional_u_names_its_labels(fitted_ivae, tiny_data):
    with pytest.raises(ValueError, match=r"non-integer.*fitted with categorical u, labels \[0, 1, 2"):
        fitted_ivae.transform(tiny_data.x, tiny_data.u + 0.5)


@pytest.mark.parametrize("method", ["sample_posterior", "score_samples"])
def test_boolean_n_samples_is_rejected(fitted_ivae, tiny_data, method):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        getattr(fitted_ivae, method)(tiny_data.x, tiny_data.u, n_samples=True)


# ---------------------------------------------------------------- metrics' inputs
@pytest.mark.parametrize(
    "s, z, error, match",
    [
        (np.array([["a", "b"]] * 5), np.zeros((5, 2)), TypeError, "s must hold numbers"),
        (np.zeros((5, 2)), np.ones((5, 2)) + 1j, TypeError, "z must be real-valued"),
        (np.zeros((5, 0)), np.zeros((5, 2)), ValueError, r"s needs at least 2 samples and 1 feature"),
        (np.zeros((1, 2)), np.zeros((1, 2)), ValueError, "at least 2 samples"),
        (np.zeros((5, 2, 1)), np.zeros((5, 2)), ValueError, "s must be 2-D"),
        (np.zeros((5, 2)), np.array([[0.0, np.inf]] * 5), ValueError, "z contains 5 NaN or infinite"),
        (np.zeros((5, 2)), np.zeros((6, 2)), ValueError, "same number of rows.*same order"),
    ],
)
@pytest.mark.parametrize("func", ["mean_corr_coef", "weak_mean_corr_coef"])
def test_metric_inputs(func, s, z, error, match):
    import nica

    with pytest.raises(error, match=match):
        getattr(nica, func)(s, z)


def test_metrics_accept_dataframes(rng):
    pd = pytest.importorskip("pandas")
    import nica

    s = rng.normal(size=(50, 2))
    assert nica.mean_corr_coef(pd.DataFrame(s), -s) == pytest.approx(1.0)


# ---------------------------------------------------------------- make_nonstationary
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_sources=True), "n_sources must be a positive integer"),
        (dict(slope=0.0), "slope must be a number > 0"),
        (dict(slope=float("nan")), "slope"),
        (dict(noise_std=float("nan")), "noise_std must be a finite number"),
        (dict(scale_bounds=(1.0,)), r"scale_bounds must be a pair \(low, high\)"),
        (dict(scale_bounds=(1.0, float("inf"))), "scale_bounds must hold two finite numbers"),
        (dict(mean_bounds=(2.0, -2.0)), "mean_bounds must satisfy low <= high"),
        (dict(dtype=np.int32), "dtype must be a floating-point type"),
        (dict(dtype="nonsense"), "dtype must be a floating-point type"),
    ],
)
def test_make_nonstationary_arguments(kwargs, match):
    from nica import make_nonstationary

    with pytest.raises(ValueError, match=match):
        make_nonstationary(**{"n_sources": 2, "n_segments": 2, "n_per_segment": 5, **kwargs})
