"""Properties of the input checks, the conversions and the metrics, over generated inputs.

Hypothesis draws the inputs (derandomised by the profile in conftest.py); examples are
few and small, so the whole file runs in seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nica import mean_corr_coef, weak_mean_corr_coef
from nica._validation import AuxEncoder, check_observations, check_same_length
from nica.datasets.io import load_dataset
from nica.datasets.tabular import Table, to_array

FAST = settings(max_examples=40, deadline=None)

# values on a coarse grid keep columns either exactly constant or far from constant, so
# correlation properties are not at the mercy of cancellation in nearly-constant columns
grid = st.integers(-50, 50).map(lambda v: v / 4.0)
finite32 = st.floats(-1e30, 1e30, allow_nan=False, allow_subnormal=False)
shapes = st.tuples(st.integers(2, 20), st.integers(1, 5))


def matrices(elements=grid, rows=(3, 30), cols=(1, 4)):
    return hnp.arrays(np.float64, st.tuples(st.integers(*rows), st.integers(*cols)), elements=elements)


def non_constant(a: np.ndarray) -> bool:
    return bool(np.all(a.std(0) > 0))


# ---------------------------------------------------------------- check_observations
@FAST
@given(hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_]), shapes,
                  elements=None).filter(lambda a: a.dtype.kind != "f" or np.all(np.isfinite(a))))
def test_valid_arrays_come_back_as_float32_unchanged(arr):
    assume(arr.dtype.kind != "f" or np.all(np.abs(arr) < 1e38))
    out = check_observations(arr)
    assert out.dtype == np.float32 and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr.astype(np.float32))


@FAST
@given(matrices(finite32, rows=(2, 20)), st.data())
def test_one_bad_value_is_found_and_its_row_named(arr, data):
    row = data.draw(st.integers(0, arr.shape[0] - 1))
    col = data.draw(st.integers(0, arr.shape[1] - 1))
    arr[row, col] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=rf"X contains 1 NaN or infinite values \(first at row {row}, column {col}; "
                                         r"0-based\)"):
        check_observations(arr)


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), elements=grid))
def test_anything_but_2d_is_rejected_unless_1d_is_allowed(arr):
    if arr.ndim == 2:
        return
    if arr.ndim == 1 and arr.shape[0] >= 2:
        assert check_observations(arr, "s", allow_1d=True).shape == (arr.shape[0], 1)
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\)"):
        check_observations(arr)


@FAST
@given(st.integers(0, 30), st.integers(0, 30))
def test_check_same_length_raises_exactly_when_lengths_differ(n_a, n_b):
    if n_a == n_b:
        check_same_length(np.zeros(n_a), np.zeros(n_b), "X", "u")
    else:
        with pytest.raises(ValueError, match=f"X has {n_a} rows but u has {n_b}"):
            check_same_length(np.zeros(n_a), np.zeros(n_b), "X", "u")


# ---------------------------------------------------------------- AuxEncoder
label_sets = st.one_of(
    st.lists(st.integers(-5, 5), min_size=2, max_size=40),
    st.lists(st.sampled_from(["a", "b", "ctrl", "drug", "é"]), min_size=2, max_size=40),
    st.lists(st.booleans(), min_size=2, max_size=40),
)


@FAST
@given(label_sets, st.randoms(use_true_random=False))
def test_categorical_round_trip(labels, random):
    u = np.array(labels)
    assume(len(np.unique(u)) >= 2)
    enc = AuxEncoder().fit(u, len(u))
    onehot = enc.transform(u)
    assert onehot.shape == (len(u), len(np.unique(u))) and np.all(onehot.sum(1) == 1)
    decoded = np.array(enc.classes, dtype=object)[onehot.argmax(1)]
    assert decoded.tolist() == u.tolist()
    # the saved form encodes identically, and encoding commutes with reordering the rows
    again = AuxEncoder(**enc.to_dict())
    order = list(range(len(u)))
    random.shuffle(order)
    np.testing.assert_array_equal(again.transform(u[order]), onehot[order])


@FAST
@given(st.integers(2, 6), st.data())
def test_onehot_rows_encode_like_their_labels(n_labels, data):
    labels = np.array(data.draw(st.permutations(range(n_labels))) +
                      data.draw(st.lists(st.integers(0, n_labels - 1), max_size=20)))
    by_labels = AuxEncoder().fit(labels, len(labels))
    by_onehot = AuxEncoder().fit(np.eye(n_labels)[labels], len(labels))
    np.testing.assert_array_equal(by_onehot.transform(np.eye(n_labels)[labels]), by_labels.transform(labels))


@FAST
@given(matrices(st.floats(-1e3, 1e3, allow_subnormal=False), rows=(3, 40), cols=(1, 3)),
       st.floats(0.1, 10), st.floats(-100, 100))
def test_continuous_u_is_standardised_and_affine_invariant(u, a, b):
    assume(np.all(u.std(0) > 1e-3 * (1 + np.abs(u).max())))
    enc = AuxEncoder("continuous").fit(u, len(u))
    out = enc.transform(u)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(0), 1.0, rtol=1e-4)
    shifted = AuxEncoder("continuous").fit(a * u + b, len(u)).transform(a * u + b)
    np.testing.assert_allclose(shifted, out, atol=1e-3)
    np.testing.assert_array_equal(AuxEncoder(**enc.to_dict()).transform(u), out)


# ---------------------------------------------------------------- tables
column_names = st.lists(st.text("abcxyz_", min_size=1, max_size=6), min_size=1, max_size=5, unique=True)


@FAST
@given(column_names, st.data())
def test_dataframe_and_csv_give_the_same_array(names, data):
    pd = pytest.importorskip("pandas")
    values = data.draw(hnp.arrays(np.float64, (data.draw(st.integers(1, 15)), len(names)),
                                  elements=st.floats(-1e12, 1e12, allow_subnormal=False)))
    frame = pd.DataFrame(values, columns=names)
    np.testing.assert_array_equal(to_array(frame), values)
    lost = (values != 0) & (np.abs(values) < np.finfo(np.float32).tiny)
    if lost.any():  # values float32 would flush to zero are refused, by their row and column
        with pytest.raises(ValueError, match="too small for float32"):
            check_observations(frame, min_samples=1)
    else:
        np.testing.assert_array_equal(check_observations(frame, min_samples=1), values.astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        path.write_text(",".join(names) + "\n" + "".join(",".join(map(repr, row)) + "\n" for row in values.tolist()))
        np.testing.assert_array_equal(load_dataset(path).x, values)  # repr round-trips exactly


@FAST
@given(column_names, st.data())
def test_columns_chosen_by_name_or_by_index_agree(names, data):
    table = Table(names, [np.arange(3.0) + i for i in range(len(names))], "t")
    chosen = data.draw(st.lists(st.sampled_from(range(len(names))), min_size=1, unique=True))
    by_name = table.select([names[i] for i in chosen], "cols")
    by_index = table.select(",".join(map(str, chosen)), "cols")  # names hold no digits
    negative = table.select([i - len(names) for i in chosen], "cols")
    assert by_name == by_index == negative == chosen


# ---------------------------------------------------------------- metrics
@st.composite
def sources_and_latents(draw, square: bool = False):
    n_rows = draw(st.integers(4, 30))
    n = draw(st.integers(1, 4))
    m = n if square else draw(st.integers(n, 5))
    s = draw(hnp.arrays(np.float64, (n_rows, n), elements=grid))
    z = draw(hnp.arrays(np.float64, (n_rows, m), elements=grid))
    return s, z


@FAST
@given(sources_and_latents(), st.sampled_from(["pearson", "spearman"]), st.data())
def test_mcc_ignores_permutations_and_sign_flips_and_stays_in_unit_interval(sz, method, data):
    s, z = sz
    perm = data.draw(st.permutations(range(z.shape[1])))
    signs = np.array(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=z.shape[1], max_size=z.shape[1])))
    score = mean_corr_coef(s, z, method)
    assert 0.0 <= score <= 1.0
    assert mean_corr_coef(s, z[:, perm] * signs, method) == pytest.approx(score, abs=1e-12)


@FAST
@given(matrices(), st.sampled_from(["pearson", "spearman"]))
def test_mcc_of_sources_with_themselves_is_one(s, method):
    assume(non_constant(s))
    assert mean_corr_coef(s, s, method) == pytest.approx(1.0, abs=1e-12)


monotone = st.sampled_from([lambda v: v**3 + v, np.arctan, lambda v: np.exp(v / 10), lambda v: -v])


@FAST
@given(sources_and_latents(), st.lists(monotone, min_size=5, max_size=5))
def test_spearman_mcc_ignores_monotone_transforms_of_each_latent(sz, functions):
    s, z = sz
    warped = np.column_stack([functions[j](z[:, j]) for j in range(z.shape[1])])
    assert mean_corr_coef(s, warped, "spearman") == pytest.approx(mean_corr_coef(s, z, "spearman"), abs=1e-12)


def _well_conditioned(a: np.ndarray) -> bool:
    centred = a - a.mean(0)
    sv = np.linalg.svd(centred, compute_uv=False)
    return bool(sv.min() > 1e-3 * sv.max() and sv.max() > 0)


@FAST
@given(sources_and_latents(), st.integers(0, 2**16))
def test_weak_mcc_ignores_invertible_linear_maps(sz, seed):
    s, z = sz
    assume(z.shape[0] > z.shape[1] + 1 and _well_conditioned(s) and _well_conditioned(z))
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(z.shape[1], z.shape[1])))
    a = q * rng.uniform(0.5, 2.0, size=z.shape[1])
    assert weak_mean_corr_coef(s, z @ a + 3.0) == pytest.approx(weak_mean_corr_coef(s, z), abs=1e-8)
    assert weak_mean_corr_coef(s, s @ np.eye(s.shape[1])[::-1]) == pytest.approx(1.0, abs=1e-9)


@FAST
@given(sources_and_latents())
def test_weak_mcc_bounds_mcc_when_columns_are_uncorrelated(sz):
    # with uncorrelated columns in s and in z, the matched correlations are entries of the
    # matrix whose singular values are the canonical correlations (von Neumann's trace
    # inequality); with correlated columns weak MCC can fall below MCC
    s, z = sz
    assume(s.shape[0] > z.shape[1] + 1 and _well_conditioned(s) and _well_conditioned(z))
    s_white = np.linalg.qr(s - s.mean(0))[0]
    z_white = np.linalg.qr(z - z.mean(0))[0]
    mcc, weak = mean_corr_coef(s_white, z_white), weak_mean_corr_coef(s_white, z_white)
    assert 0.0 <= mcc <= weak + 1e-9 <= 1.0 + 1e-9


@FAST
@given(sources_and_latents(), st.sampled_from([1e-300, 1e-30, 1e30, 1e300]))
def test_metrics_are_scale_free_even_at_extreme_magnitudes(sz, scale):
    # huge (or tiny) but finite values must not overflow (underflow) into a score of 0
    s, z = sz
    assert mean_corr_coef(s * scale, z) == pytest.approx(mean_corr_coef(s, z), abs=1e-9)
    assert weak_mean_corr_coef(s, z * scale) == pytest.approx(weak_mean_corr_coef(s, z), abs=1e-7)


def test_weak_mcc_can_fall_below_mcc_with_correlated_columns(rng):
    # two near-copies of one signal in s and in z: MCC matches them, CCA finds one shared
    # direction and two unrelated noise directions
    a = rng.normal(size=2000)
    s = np.column_stack([a, a + 0.05 * rng.normal(size=2000)])
    z = np.column_stack([a, a + 0.05 * rng.normal(size=2000)])
    assert mean_corr_coef(s, z) > 0.99 and weak_mean_corr_coef(s, z) < 0.6
