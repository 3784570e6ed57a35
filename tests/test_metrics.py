"""MCC (Hungarian-matched absolute correlations) and weak MCC (CCA) (REFERENCE §4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nica import mean_corr_coef, weak_mean_corr_coef
from nica.metrics import MCCResult, correlation_matrix


def brute_force_mcc(s: np.ndarray, z: np.ndarray) -> float:
    """Best mean |Pearson r| over every one-to-one assignment of sources to latents."""
    n, m = s.shape[1], z.shape[1]
    c = np.corrcoef(s.T, z.T)[:n, n:]
    return max(np.mean([abs(c[i, p[i]]) for i in range(n)]) for p in itertools.permutations(range(m), n))


def test_permuted_sign_flipped_copy_scores_one(rng):
    s = rng.normal(size=(500, 4))
    perm = np.array([2, 0, 3, 1])
    signs = np.array([1.0, -1.0, -1.0, 1.0])
    z = s[:, perm] * signs * np.array([3.0, 0.2, 1.0, 7.0]) + 5.0
    assert mean_corr_coef(s, z) == pytest.approx(1.0, abs=1e-12)


def test_details_give_inverse_permutation_and_signed_correlations(rng):
    s = rng.normal(size=(500, 4))
    perm = np.array([2, 0, 3, 1])  # latent j holds source perm[j]
    signs = np.array([1.0, -1.0, -1.0, 1.0])  # sign of latent j
    z = s[:, perm] * signs
    res = mean_corr_coef(s, z, return_details=True)
    assert isinstance(res, MCCResult)
    assert res.score == pytest.approx(1.0, abs=1e-12)
    # source i is matched to the latent that holds it: the inverse of perm
    np.testing.assert_array_equal(res.permutation, np.argsort(perm))
    np.testing.assert_array_equal(perm[res.permutation], np.arange(4))
    # signed correlation of source i with its latent is that latent's sign
    np.testing.assert_allclose(res.correlations, signs[res.permutation], atol=1e-12)
    assert res.matrix.shape == (4, 4)
    np.testing.assert_allclose(res.matrix, np.corrcoef(s.T, z.T)[:4, 4:], atol=1e-12)


def test_extra_latents_are_left_unmatched(rng):
    s = rng.normal(size=(300, 2))
    noise = rng.normal(size=(300, 3))
    z = np.column_stack([noise[:, 0], -s[:, 1], noise[:, 1], s[:, 0], noise[:, 2]])
    res = mean_corr_coef(s, z, return_details=True)
    np.testing.assert_array_equal(res.permutation, [3, 1])
    assert res.score == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("transform", [np.exp, lambda v: v**3, lambda v: -np.arctan(3 * v)])
def test_spearman_is_one_for_monotone_transforms(rng, transform):
    s = rng.normal(size=(1000, 3))
    z = transform(s[:, [1, 2, 0]])
    assert mean_corr_coef(s, z, "spearman") == pytest.approx(1.0, abs=1e-12)
    assert mean_corr_coef(s, z, "pearson") < 0.99


def test_independent_noise_scores_low(rng):
    s = rng.normal(size=(5000, 3))
    z = rng.normal(size=(5000, 3))
    # |r| of independent samples is about 1/sqrt(N) = 0.014; the maximum over matchings a bit more
    assert mean_corr_coef(s, z) < 0.05
    assert mean_corr_coef(s, z, "spearman") < 0.05


def test_matches_brute_force_on_random_correlated_case(rng):
    s = rng.normal(size=(200, 4))
    z = s @ rng.normal(size=(4, 4)) + 0.5 * rng.normal(size=(200, 4))
    assert mean_corr_coef(s, z) == pytest.approx(brute_force_mcc(s, z), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_rectangular(seed):
    r = np.random.default_rng(seed)
    s = r.normal(size=(60, 3))
    z = np.column_stack([s, r.normal(size=(60, 2))]) @ r.normal(size=(5, 5))
    assert mean_corr_coef(s, z) == pytest.approx(brute_force_mcc(s, z), abs=1e-12)


def test_constant_latent_correlates_zero(rng):
    s = rng.normal(size=(100, 2))
    z = np.column_stack([s[:, 0], np.full(100, 3.0)])
    c = correlation_matrix(s, z)
    np.testing.assert_allclose(c[:, 1], 0.0, atol=1e-12)
    assert mean_corr_coef(s, z) == pytest.approx(0.5 + 0.5 * abs(c[1, 1]), abs=1e-12)


def test_one_dimensional_inputs(rng):
    s = rng.normal(size=200)
    assert mean_corr_coef(s, -2 * s) == pytest.approx(1.0)


# ---------------------------------------------------------------- weak MCC
def test_weak_mcc_one_for_linear_mixing_where_mcc_is_not(rng):
    s = rng.uniform(-1, 1, size=(2000, 4))
    a = np.array([[1.0, 0.8, 0.0, 0.3], [0.5, 1.0, 0.6, 0.0], [0.0, 0.4, 1.0, 0.7], [0.9, 0.0, 0.2, 1.0]])
    assert abs(np.linalg.det(a)) > 0.1
    z = s @ a
    assert weak_mean_corr_coef(s, z) == pytest.approx(1.0, abs=1e-9)
    assert mean_corr_coef(s, z) < 0.85


def test_weak_mcc_of_independent_noise_is_low(rng):
    s = rng.normal(size=(5000, 2))
    z = rng.normal(size=(5000, 2))
    assert weak_mean_corr_coef(s, z) < 0.06


def test_weak_mcc_is_at_least_mcc(rng):
    s = rng.normal(size=(500, 3))
    z = np.tanh(s @ rng.normal(size=(3, 3))) + 0.3 * rng.normal(size=(500, 3))
    assert weak_mean_corr_coef(s, z) >= mean_corr_coef(s, z) - 1e-12


def test_weak_mcc_counts_constant_sources_as_zero(rng):
    # regression: rank-deficient inputs used to give NaN (all constant) or an inflated score
    s = np.column_stack([rng.normal(size=200), np.full(200, 2.0)])
    z = np.column_stack([-s[:, 0], rng.normal(size=200)])
    assert weak_mean_corr_coef(s, z) == pytest.approx(0.5, abs=1e-9)
    assert mean_corr_coef(s, z) == pytest.approx(0.5, abs=1e-9)
    assert weak_mean_corr_coef(np.zeros((10, 2)), np.zeros((10, 2))) == 0.0


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("func", [mean_corr_coef, weak_mean_corr_coef])
def test_mismatched_rows_raise(func, rng):
    with pytest.raises(ValueError, match="same number of rows"):
        func(rng.normal(size=(10, 2)), rng.normal(size=(11, 2)))


@pytest.mark.parametrize("func", [mean_corr_coef, weak_mean_corr_coef])
def test_fewer_latents_than_sources_raise(func, rng):
    with pytest.raises(ValueError, match="fewer than"):
        func(rng.normal(size=(10, 3)), rng.normal(size=(10, 2)))


def test_unknown_method_raises(rng):
    with pytest.raises(ValueError, match="method"):
        mean_corr_coef(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), "kendall")


def test_nan_raises(rng):
    z = rng.normal(size=(10, 2))
    z[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mean_corr_coef(rng.normal(size=(10, 2)), z)


# ---------------------------------------------------------------- properties
# values on a coarse grid keep columns either exactly constant or far from constant, so the
# properties are not at the mercy of cancellation in nearly-constant columns
grid_values = st.integers(-50, 50).map(lambda v: v / 4.0)


@st.composite
def sources_and_latents(draw):
    n_rows = draw(st.integers(3, 30))
    n = draw(st.integers(1, 4))
    m = draw(st.integers(n, 5))
    s = draw(hnp.arrays(np.float64, (n_rows, n), elements=grid_values))
    z = draw(hnp.arrays(np.float64, (n_rows, m), elements=grid_values))
    return s, z


@settings(max_examples=60, deadline=None)
@given(sources_and_latents(), st.sampled_from(["pearson", "spearman"]))
def test_property_mcc_in_unit_interval(sz, method):
    s, z = sz
    score = mean_corr_coef(s, z, method)
    assert 0.0 <= score <= 1.0
    weak = weak_mean_corr_coef(s, z)
    assert 0.0 <= weak <= 1.0


@settings(max_examples=60, deadline=None)
@given(sources_and_latents(), st.randoms(use_true_random=False),
       st.lists(st.sampled_from([-10.0, -2.0, -0.5, 0.25, 1.0, 3.0]), min_size=5, max_size=5))
def test_property_invariant_to_permutation_and_scaling(sz, random, factors):
    s, z = sz
    perm = list(range(z.shape[1]))
    random.shuffle(perm)
    z2 = z[:, perm] * np.array(factors[: z.shape[1]])
    for method in ("pearson", "spearman"):
        assert mean_corr_coef(s, z2, method) == pytest.approx(mean_corr_coef(s, z, method), abs=1e-9)
    assert weak_mean_corr_coef(s, z2) == pytest.approx(weak_mean_corr_coef(s, z), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(sources_and_latents())
def test_property_symmetric_when_square(sz):
    s, z = sz
    z = z[:, : s.shape[1]]
    assert mean_corr_coef(s, z) == pytest.approx(mean_corr_coef(z, s), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(3, 40), st.integers(1, 4)),
                  elements=st.floats(-100, 100, allow_subnormal=False)),
       st.floats(0.01, 100))
def test_property_rescaled_copy_scores_at_most_one(s, factor):
    # rounding must not push a correlation of an exact copy above 1
    for method in ("pearson", "spearman"):
        assert 0.0 <= mean_corr_coef(s, s * factor, method) <= 1.0
    assert np.all(np.abs(correlation_matrix(s, -s * factor)) <= 1.0)
