"""The synthetic benchmark generator (REFERENCE §3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nica import make_nonstationary
from nica.datasets.nonstationary import condition_threshold


def per_segment(values: np.ndarray, u: np.ndarray, stat) -> np.ndarray:
    """(n_segments, n_cols) statistic of each segment's rows."""
    return np.stack([stat(values[u == k], axis=0) for k in np.unique(u)])


# ---------------------------------------------------------------- shapes and labels
@pytest.mark.parametrize("n_sources, n_obs", [(2, 2), (3, 3), (2, 5), (3, 7)])
def test_shapes(n_sources, n_obs):
    data = make_nonstationary(n_sources, n_obs, n_segments=4, n_per_segment=6, random_state=1)
    n = 4 * 6
    assert data.x.shape == (n, n_obs)
    assert data.s.shape == (n, n_sources)
    assert data.u.shape == (n,)
    assert data.means.shape == data.scales.shape == (4, n_sources)
    assert data.u_onehot.shape == (n, 4)
    np.testing.assert_array_equal(data.u_onehot.argmax(1), data.u)


def test_n_obs_defaults_to_n_sources():
    data = make_nonstationary(3, n_segments=2, n_per_segment=5, random_state=0)
    assert data.x.shape == (10, 3)


def test_labels_are_segment_major():
    data = make_nonstationary(2, n_segments=5, n_per_segment=7, random_state=0)
    np.testing.assert_array_equal(data.u, np.repeat(np.arange(5), 7))
    assert np.issubdtype(data.u.dtype, np.integer)


# ---------------------------------------------------------------- source statistics
def test_segment_std_matches_scales_centered():
    data = make_nonstationary(3, n_segments=3, n_per_segment=5000, random_state=2)
    std = per_segment(data.s.astype(np.float64), data.u, np.std)
    np.testing.assert_allclose(std, data.scales, rtol=0.06)
    mean = per_segment(data.s.astype(np.float64), data.u, np.mean)
    # centered sources: zero means, empirical means within a few standard errors of 0
    np.testing.assert_array_equal(data.means, 0.0)
    assert np.all(np.abs(mean) < 5 * data.scales / np.sqrt(5000))


def test_segment_mean_and_std_uncentered():
    data = make_nonstationary(3, n_segments=3, n_per_segment=5000, uncentered=True, random_state=3)
    s = data.s.astype(np.float64)
    mean = per_segment(s, data.u, np.mean)
    std = per_segment(s, data.u, np.std)
    assert np.all(np.abs(mean - data.means) < 5 * data.scales / np.sqrt(5000))
    np.testing.assert_allclose(std, data.scales, rtol=0.06)
    # the means really are shifted: not all close to zero
    assert np.abs(data.means).max() > 1.0


def test_scales_and_means_within_bounds():
    data = make_nonstationary(5, n_segments=200, n_per_segment=1, uncentered=True, random_state=4)
    assert data.scales.min() >= 0.5 and data.scales.max() <= 3.0
    assert data.means.min() >= -5.0 and data.means.max() <= 5.0
    # and they fill the ranges rather than sitting at one value
    assert data.scales.max() - data.scales.min() > 2.0
    assert data.means.max() - data.means.min() > 8.0


@pytest.mark.parametrize(
    "base_noise, excess_kurtosis",
    [("gauss", 0.0), ("laplace", 3.0), ("hypsecant", 2.0)],
)
def test_base_noise_unit_variance_and_family(base_noise, excess_kurtosis):
    # scale_bounds (1, 1) makes s the base noise itself
    data = make_nonstationary(2, n_segments=2, n_per_segment=40_000, base_noise=base_noise,
                              scale_bounds=(1.0, 1.0), random_state=5)
    e = data.s.astype(np.float64).ravel()
    assert abs(e.mean()) < 0.02
    assert e.var() == pytest.approx(1.0, abs=0.04)
    assert stats.kurtosis(e) == pytest.approx(excess_kurtosis, abs=0.5)


# ---------------------------------------------------------------- mixing
@pytest.mark.parametrize("n_sources, n_obs", [(3, 3), (2, 4)])
def test_mixing_matrices_unit_columns_and_well_conditioned(n_sources, n_obs):
    data = make_nonstationary(n_sources, n_obs, n_segments=2, n_per_segment=5,
                              repeat_matrix=False, random_state=6)
    assert len(data.mixing) == 3
    assert data.mixing[0].shape == (n_sources, n_obs)
    for a in data.mixing[1:]:
        assert a.shape == (n_obs, n_obs)
    rng = np.random.default_rng(99)
    for a in data.mixing:
        np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, rtol=1e-10)
        assert np.all(np.abs(a) <= 1.0)
        # an independent estimate of the 25th percentile, with a little slack for its noise
        threshold = condition_threshold(a.shape[0], a.shape[1], rng)
        assert np.linalg.cond(a) <= 1.05 * threshold
        # and clearly better than a typical (median) random matrix
        assert np.linalg.cond(a) < condition_threshold(a.shape[0], a.shape[1], rng, q=50.0)


def test_repeat_matrix_reuses_one_matrix_square():
    data = make_nonstationary(3, n_segments=2, n_per_segment=5, n_layers=4, random_state=7)
    assert len(data.mixing) == 4
    for a in data.mixing[1:]:
        np.testing.assert_array_equal(a, data.mixing[0])


def test_repeat_matrix_non_square_reuses_the_square_one():
    data = make_nonstationary(2, 4, n_segments=2, n_per_segment=5, n_layers=3, random_state=7)
    assert data.mixing[0].shape == (2, 4)
    np.testing.assert_array_equal(data.mixing[1], data.mixing[2])


def test_fresh_matrices_differ_per_layer():
    data = make_nonstationary(3, n_segments=2, n_per_segment=5, n_layers=3,
                              repeat_matrix=False, random_state=7)
    a, b, c = data.mixing
    assert not np.allclose(a, b) and not np.allclose(b, c) and not np.allclose(a, c)


@pytest.mark.parametrize("activation", ["xtanh", "lrelu", "none"])
def test_mix_reproduces_x_without_noise(activation):
    data = make_nonstationary(3, 5, n_segments=3, n_per_segment=20, activation=activation,
                              random_state=8)
    np.testing.assert_allclose(data.mix(data.s), data.x, rtol=1e-4, atol=1e-4)


def test_mix_is_the_stated_mlp():
    data = make_nonstationary(2, n_segments=2, n_per_segment=10, n_layers=3, random_state=9)
    a = data.mixing[0]
    s = data.s.astype(np.float64)
    xtanh = lambda h: np.tanh(h) + 0.1 * h  # noqa: E731
    expected = xtanh(xtanh(s @ a) @ a) @ a
    np.testing.assert_allclose(data.mix(s), expected, rtol=1e-12)
    np.testing.assert_allclose(data.x, expected, rtol=1e-4, atol=1e-5)


def test_noise_std_adds_noise_of_that_std():
    data = make_nonstationary(2, 3, n_segments=4, n_per_segment=5000, noise_std=0.3, random_state=10)
    residual = data.x.astype(np.float64) - data.mix(data.s)
    assert residual.std() == pytest.approx(0.3, rel=0.03)
    assert abs(residual.mean()) < 0.01
    # the noise is independent across observed dimensions
    assert np.abs(np.corrcoef(residual.T)[np.triu_indices(3, 1)]).max() < 0.05


def test_discrete_gives_binary_observations():
    data = make_nonstationary(2, 6, n_segments=3, n_per_segment=300, discrete=True, random_state=11)
    assert set(np.unique(data.x)) == {0.0, 1.0}
    # Bernoulli(sigmoid(mix(s))): empirical frequency follows the probabilities
    p = 1.0 / (1.0 + np.exp(-data.mix(data.s)))
    assert abs(data.x.mean() - p.mean()) < 0.03


# ---------------------------------------------------------------- randomness
def test_same_seed_identical_data():
    a = make_nonstationary(3, 4, n_segments=3, n_per_segment=10, uncentered=True, random_state=42)
    b = make_nonstationary(3, 4, n_segments=3, n_per_segment=10, uncentered=True, random_state=42)
    for name in ("x", "s", "u", "means", "scales"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for ma, mb in zip(a.mixing, b.mixing):
        np.testing.assert_array_equal(ma, mb)


def test_different_seed_different_data():
    a = make_nonstationary(3, n_segments=3, n_per_segment=10, random_state=1)
    b = make_nonstationary(3, n_segments=3, n_per_segment=10, random_state=2)
    assert not np.allclose(a.x, b.x)
    assert not np.allclose(a.scales, b.scales)
    assert not np.allclose(a.mixing[0], b.mixing[0])


def test_generator_as_random_state():
    a = make_nonstationary(2, n_segments=2, n_per_segment=5, random_state=np.random.default_rng(3))
    b = make_nonstationary(2, n_segments=2, n_per_segment=5, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a.x, b.x)


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_sources=3, n_obs=2), "n_obs"),
        (dict(base_noise="cauchy"), "base_noise"),
        (dict(noise_std=-0.1), "noise_std"),
        (dict(n_sources=0), "n_sources"),
        (dict(n_segments=0), "n_segments"),
        (dict(n_per_segment=2.5), "n_per_segment"),
        (dict(n_layers=0), "n_layers"),
        (dict(activation="sigmoid"), "activation"),
        (dict(scale_bounds=(0.0, 1.0)), "scale_bounds"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    kwargs = {"n_sources": 2, "n_segments": 2, "n_per_segment": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_nonstationary(**kwargs)
