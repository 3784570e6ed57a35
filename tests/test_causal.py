"""nica.causal: the HSIC test, the simulation, the ordering, NonSENS and ``nica causal``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from nica.causal import NonSENS, adjust_pvalues, causal_order, hsic_matrix, hsic_test, make_causal
from nica.causal.hsic import MIN_GROUP_ROWS, rows_to_test
from nica.cli import main
from nica.metrics import mean_corr_coef


def segmented(rng, n_segments, n_per_segment, d=2, mean=False):
    """Independent Laplace columns with per-segment scales (and means): ``(N, d)``, u."""
    u = np.repeat(np.arange(n_segments), n_per_segment)
    scales = rng.uniform(0.5, 3.0, (n_segments, d))
    means = rng.uniform(-5, 5, (n_segments, d)) if mean else np.zeros((n_segments, d))
    return rng.laplace(size=(len(u), d)) * scales[u] + means[u], u


# ---------------------------------------------------------------- HSIC
def test_hsic_pvalues_are_uniform_under_independence():
    rng = np.random.default_rng(0)
    p = np.array([hsic_test(rng.laplace(size=150), rng.standard_t(3, size=150), random_state=i).pvalue
                  for i in range(200)])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.01 <= np.mean(p < 0.05) <= 0.10


def test_hsic_given_u_is_calibrated_where_pooling_is_not():
    """Segment-wise means make independent (given u) disturbances dependent when pooled."""
    rng = np.random.default_rng(1)
    given, pooled = [], []
    for i in range(100):
        s, u = segmented(rng, 12, 40, mean=True)
        given.append(hsic_test(s[:, 0], s[:, 1], groups=u, random_state=i).pvalue)
        pooled.append(hsic_test(s[:, 0], s[:, 1], random_state=i).pvalue)
    given, pooled = np.array(given), np.array(pooled)
    assert stats.kstest(given, "uniform").pvalue > 0.01
    assert 0.0 <= np.mean(given < 0.05) <= 0.12
    assert np.mean(pooled < 0.05) > 0.3


@pytest.mark.parametrize("groups", [False, True])
def test_hsic_has_power_under_dependence(groups):
    rng = np.random.default_rng(2)
    s, u = segmented(rng, 10, 40)
    y = np.sign(s[:, 0]) * np.abs(s[:, 0]) ** 0.5 + s[:, 1]  # nonlinear, partly masked by noise
    result = hsic_test(s[:, 0], y, groups=u if groups else None, random_state=0)
    assert result.pvalue < 1e-4 and result.log_pvalue < np.log(1e-4)
    assert 0 < result.normalized <= 1


def test_hsic_gamma_agrees_with_permutation():
    rng = np.random.default_rng(3)
    s, u = segmented(rng, 6, 80)
    for strength in (0.0, 0.15, 0.3):
        y = s[:, 1] + strength * s[:, 0] ** 2
        for groups in (None, u):
            gamma = hsic_test(s[:, 0], y, groups=groups, random_state=0).pvalue
            perm = hsic_test(s[:, 0], y, groups=groups, method="permutation", n_permutations=400,
                             random_state=0).pvalue
            assert abs(gamma - perm) < 0.08, (strength, groups is None, gamma, perm)


def test_hsic_agrees_with_hyppo():
    pytest.importorskip("hyppo")
    rng = np.random.default_rng(4)
    for strength in (0.0, 0.2, 0.4):
        a = rng.laplace(size=120)
        b = rng.laplace(size=120) + strength * a ** 2
        ours = hsic_test(a, b, method="permutation", n_permutations=1000, random_state=0)
        theirs = hsic_test(a, b, method="permutation", n_permutations=1000, backend="hyppo", random_state=0)
        assert abs(ours.pvalue - theirs.pvalue) < 0.05, (strength, ours, theirs)
        assert ours.normalized == pytest.approx(theirs.normalized)
        gamma = hsic_test(a, b, random_state=0).pvalue
        assert abs(gamma - theirs.pvalue) < 0.08, (strength, gamma, theirs)


def test_gamma_log_survival_is_finite_and_continuous_in_the_far_tail():
    from nica.causal.hsic import gamma_logsf

    assert gamma_logsf(50.0, 3.0, 2.0) == pytest.approx(stats.gamma.logsf(50.0, 3.0, scale=2.0))
    # where scipy's value is still finite the expansion matches it; beyond, it goes on falling
    assert gamma_logsf(800.0, 3.0, 2.0) == pytest.approx(-388.71, abs=0.01)
    far = [gamma_logsf(x, 3.0, 2.0) for x in (3e3, 1e4, 1e5)]
    assert np.all(np.isfinite(far)) and far[0] > far[1] > far[2]


def test_hsic_matrix_tests_every_pair_on_the_same_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))
    z = np.column_stack([x[:, 2] ** 2, rng.normal(size=300)])
    t = hsic_matrix(x, z, max_samples=200, random_state=0)
    assert t.pvalue.shape == (3, 2) and t.n_samples == 200
    assert t.pvalue[2, 0] < 1e-6
    assert t.pvalue[[0, 1], 0].min() > 1e-3 and t.pvalue[:, 1].min() > 1e-3
    again = hsic_matrix(x, z, max_samples=200, random_state=0)
    np.testing.assert_array_equal(t.pvalue, again.pvalue)


def test_rows_to_test_subsample_and_errors():
    u = np.repeat(np.arange(4), 50)
    rows = rows_to_test(200, u, max_samples=40, random_state=0)
    assert [len(r) for r in rows] == [20] * 4  # 40 / sqrt(4) rows of each segment
    assert all(set(u[r]) == {g} for g, r in enumerate(rows))
    assert [len(r) for r in rows_to_test(200, None, 40, 0)] == [40]
    short = np.r_[np.zeros(100), np.ones(MIN_GROUP_ROWS - 1)]
    with pytest.raises(ValueError, match=rf"segment 1.0 has {MIN_GROUP_ROWS - 1} rows"):
        rows_to_test(len(short), short)
    with pytest.raises(ValueError, match="at least 20 rows"):
        hsic_test(np.arange(10.0), np.arange(10.0))
    with pytest.raises(ValueError, match="unknown HSIC method"):
        hsic_test(np.arange(30.0), np.arange(30.0), method="exact")
    with pytest.raises(ValueError, match="rows but y has"):
        hsic_test(np.arange(30.0), np.arange(31.0))


# ---------------------------------------------------------------- corrections and ordering
def test_adjust_pvalues():
    p = np.array([[0.01, 0.04], [0.03, 0.5]])
    np.testing.assert_allclose(adjust_pvalues(p), [[0.04, 0.16], [0.12, 1.0]])
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [[0.04, 0.09], [0.09, 0.5]])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_pvalues(p, "fdr")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        adjust_pvalues(np.array([1.5]))


def pattern(order, disturbance, dependent_p=1e-20, independent_p=0.5):
    """The p-values of a complete DAG with this order and matching of components."""
    d = len(order)
    p = np.full((d, d), independent_p)
    position = {v: k for k, v in enumerate(order)}
    for i in range(d):
        for k in range(d):
            if position[k] <= position[i]:  # x_i depends on its own and its ancestors' disturbances
                p[i, disturbance[k]] = dependent_p
    return p


@pytest.mark.parametrize("order, disturbance", [([0, 1], [0, 1]), ([1, 0], [0, 1]), ([0, 1], [1, 0]),
                                                ([2, 0, 3, 1], [1, 3, 0, 2])])
def test_causal_order_reads_a_triangular_pattern(order, disturbance):
    p = pattern(order, disturbance)
    result = causal_order(np.log(p), adjust_pvalues(p))
    assert result.order.tolist() == order
    assert result.disturbance.tolist() == disturbance
    assert result.decided
    position = {v: k for k, v in enumerate(order)}
    expected = np.array([[position[i] < position[k] for k in range(len(order))] for i in range(len(order))])
    np.testing.assert_array_equal(result.ancestors, expected)
    if len(order) == 2:
        assert result.direction == tuple(order)


def test_causal_order_is_undecided_when_the_tests_disagree():
    p = pattern([0, 1], [0, 1])
    p[0, 1] = 1e-6  # the cause depends on the effect's disturbance too
    result = causal_order(np.log(p), adjust_pvalues(p))
    assert not result.decided and result.direction is None
    assert result.order.tolist() == [0, 1]  # still the most likely order
    independent = np.array([[1e-9, 0.4], [0.6, 1e-9]])  # each depends on its own only: no edge
    result = causal_order(np.log(independent), adjust_pvalues(independent))
    assert result.decided and result.direction is None
    with pytest.raises(ValueError, match="square"):
        causal_order(np.zeros((2, 3)), np.zeros((2, 3)))


# ---------------------------------------------------------------- the simulation
def test_make_causal_shapes_order_and_triangular_mixing():
    data = make_causal(4, n_segments=6, n_per_segment=20, n_layers=3, random_state=7)
    assert data.x.shape == data.s.shape == (120, 4) and data.u.shape == (120,)
    assert sorted(data.order.tolist()) == [0, 1, 2, 3]
    assert all(np.allclose(np.tril(a, -1), 0) for a in data.mixing)
    # x_k moves with the disturbances of x_k and its ancestors only
    for j in range(4):
        moved = data.s.astype(np.float64).copy()
        moved[:, j] += 0.5
        unmixed = _remix(data, moved)
        changed = np.abs(unmixed - _remix(data, data.s.astype(np.float64))).max(0) > 1e-9
        assert changed[j] and not (changed & ~data.ancestors[j] & (np.arange(4) != j)).any()
    np.testing.assert_allclose(_remix(data, data.s.astype(np.float64)), data.x, rtol=1e-4, atol=1e-4)
    again = make_causal(4, n_segments=6, n_per_segment=20, n_layers=3, random_state=7)
    np.testing.assert_array_equal(again.x, data.x)


def _remix(data, s):
    """x from disturbances in the data's column order, through its mixing."""
    from nica.datasets.nonstationary import NonstationaryData

    causal = s[:, data.order]  # causal order
    mixer = NonstationaryData(x=np.empty(0), s=causal, u=data.u, means=data.means, scales=data.scales,
                              mixing=data.mixing, activation="lrelu", slope=0.2)
    x = mixer.mix(causal)
    out = np.empty_like(x)
    out[:, data.order] = x
    return out


def test_make_causal_mean_modulation_and_errors():
    data = make_causal(2, n_segments=5, n_per_segment=2000, modulation="mean", random_state=0)
    seg_means = np.array([data.s[data.u == g].mean(0) for g in range(5)])
    np.testing.assert_allclose(seg_means, data.means, atol=0.35)  # sd of a mean <= 3 / sqrt(2000)
    assert np.ptp(data.means) > 1
    assert make_causal(3, n_segments=2, n_per_segment=5, random_state=0).means.max() == 0
    with pytest.raises(ValueError, match="at least 2 variables"):
        make_causal(1)
    with pytest.raises(ValueError, match="unknown modulation"):
        make_causal(2, modulation="both")
    with pytest.raises(ValueError, match="direction is defined for 2"):
        make_causal(3, n_segments=2, n_per_segment=5, random_state=0).direction


# ---------------------------------------------------------------- NonSENS
class Oracle:
    """An 'unmixing' that returns the true disturbances, shuffled and transformed component-wise."""

    def __init__(self, s, permutation):
        self.s, self.permutation = s, permutation
        self.n_components = s.shape[1]

    def fit(self, x, u):
        self.fit_time_, self.n_steps_ = 0.0, 0
        return self

    def transform(self, x, u=None):
        z = self.s[:, self.permutation]
        return np.sign(z) * np.abs(z) ** 1.5  # a monotone transform: identifiable only up to it


def chain(seed, n_segments=12, n_per_segment=200):
    """x0 -> x1 -> x2, additive nonlinear SEM with nonstationary Laplace disturbances; columns
    shuffled to (x2, x0, x1)."""
    rng = np.random.default_rng(seed)
    s, u = segmented(rng, n_segments, n_per_segment, d=3)
    x0 = s[:, 0]
    x1 = x0 + 0.5 * np.tanh(2 * x0) + s[:, 1]
    x2 = 0.8 * x1 + 0.5 * np.tanh(x1) + s[:, 2]
    columns = [2, 0, 1]
    return np.column_stack([x0, x1, x2])[:, columns], s[:, columns], u


def test_nonsens_orders_a_seeded_chain_from_its_disturbances():
    x, s, u = chain(0)
    model = NonSENS(Oracle(s, [1, 2, 0]), random_state=0).fit(x, u)
    assert model.order_.tolist() == [1, 2, 0]  # x0, x1, x2 in the shuffled columns
    assert model.decided_ and model.direction_ is None
    assert model.disturbance_.tolist() == [2, 0, 1]  # component j of the oracle is column perm[j]
    np.testing.assert_allclose(np.abs(stats.spearmanr(model.transform(x, u), s).statistic[:3, 3:]).diagonal(), 1.0)
    assert model.ancestors_[1, 0] and model.ancestors_[2, 0] and not model.ancestors_[0, 1]


@pytest.mark.numerics
def test_nonsens_with_the_ivae_unmixes_tests_and_orders():
    """The iVAE path end to end: the unmixing is an IVAE, its disturbances are tested
    against every variable and an order comes out, the same for the same seed.

    Which order comes out is NOT asserted: with the iVAE these pairs are a near coin flip
    (right for 16 of 24 seeded fits: data seeds 11-13 x model seeds 0-7, 3,000 steps; the
    benchmark's 6/10 and 7/10, docs/results.md), so one seed's direction flips with the
    float rounding of the CPU (issue 20). The direction is asserted for the flow, the
    default, whose margin holds on any CPU (below)."""
    data = make_causal(2, n_segments=20, n_per_segment=150, n_layers=1, random_state=11)
    fits = [NonSENS("ivae", unmixing_params={"max_steps": 300}, device="cpu", random_state=0).fit(data.x, data.u)
            for _ in range(2)]
    model = fits[0]
    assert type(model.unmixing_).__name__ == "IVAE"
    assert sorted(model.order_.tolist()) == [0, 1] and isinstance(model.decided_, (bool, np.bool_))
    assert model.pvalues_.shape == (2, 2) and np.all((model.pvalues_ >= 0) & (model.pvalues_ <= 1))
    assert model.transform(data.x, data.u).shape == (len(data.x), 2)
    assert fits[1].order_.tolist() == model.order_.tolist()
    np.testing.assert_array_equal(fits[1].pvalues_, model.pvalues_)


@pytest.mark.numerics
def test_nonsens_direction_of_seeded_pairs_with_the_flow_its_default():
    # Margin: right on both pairs for model seeds 0-7 too (stand-ins for other CPUs, issue 20),
    # MCC 0.976-0.997 against the 0.9 asked
    for seed, modulation in ((11, "variance"), (12, "mean")):
        data = make_causal(2, n_segments=20, n_per_segment=150, n_layers=2, modulation=modulation,
                           random_state=seed)
        model = NonSENS(unmixing_params={"max_steps": 1000}, device="cpu", random_state=seed)
        model.fit(data.x, data.u)
        assert type(model.unmixing_).__name__ == "IFlow"
        assert tuple(model.order_) == data.direction, (seed, model.summary())
        assert mean_corr_coef(data.s, model.transform(data.x, data.u)) > 0.9, seed


def test_nonsens_summary_and_json_record():
    x, s, u = chain(1)
    model = NonSENS(Oracle(s, [0, 1, 2]), random_state=0).fit(x, u)
    record = model.to_dict(["c", "a", "b"])
    assert record["order"] == [1, 2, 0] and record["order_names"] == ["a", "b", "c"]
    assert np.array(record["pvalues"]).shape == (3, 3) and record["decided"] is True
    json.dumps(record)
    text = model.summary(["c", "a", "b"])
    assert "a -> b -> c" in text and "support" in text


@pytest.mark.parametrize("make, fragment", [
    (lambda x, u: (x[:, :1], u), "at least 2 variables"),
    (lambda x, u: (x, u[:-5]), "X has 2400 rows but u has 2395"),
    (lambda x, u: (x, u.astype(float) + np.linspace(0, 0.5, len(u))), "segment labels"),
    (lambda x, u: (x, np.r_[u[:-1], 99]), "segment 99 has 1 rows"),
])
def test_nonsens_rejects_bad_input_before_fitting(make, fragment):
    x, s, u = chain(2)
    x, u = make(x[:, :2], u)
    oracle = Oracle(s[:, :2], [0, 1])
    with pytest.raises(ValueError, match=fragment):
        NonSENS(oracle).fit(x, u)
    assert not hasattr(oracle, "fit_time_")  # nothing was fitted


@pytest.mark.parametrize("params, fragment", [
    (dict(unmixing="pca"), "unknown unmixing"), (dict(unmixing="iflow"), "choose one of .*'flow'"),
    (dict(alpha=1.5), "alpha"),
    (dict(correction="fdr"), "unknown correction"), (dict(test="exact"), "unknown HSIC method"),
    (dict(max_test_samples=5), "max_samples"),
    (dict(unmixing="tcl", unmixing_params={"n_layers": 2}, hsic_backend="hyppo"), "pooled"),
])
def test_nonsens_rejects_bad_parameters(params, fragment):
    x, _, u = chain(3, n_segments=4, n_per_segment=50)
    with pytest.raises(ValueError, match=fragment):
        NonSENS(**params).fit(x, u)


# ---------------------------------------------------------------- the command
def test_cli_causal_prints_the_order_and_json(tmp_path):
    data = make_causal(2, n_segments=8, n_per_segment=60, n_layers=1, random_state=5)
    path = tmp_path / "data.npz"
    np.savez(path, x=data.x, u=data.u)
    fast = ["--max-steps", "30", "--device", "cpu", "--test-samples", "100"]
    runner = CliRunner()
    result = runner.invoke(main, ["causal", str(path), *fast, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert sorted(record["order"]) == [0, 1] and np.array(record["pvalues"]).shape == (2, 2)
    result = runner.invoke(main, ["causal", str(path), *fast, "--names", "rain,wet", "--method", "tcl", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "causal order (causes first):" in result.output and "rain" in result.output
    result = runner.invoke(main, ["causal", str(path), *fast, "--method", "ivae", "--prior-mean", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["order"]) == [0, 1]


@pytest.mark.parametrize("args, fragment", [
    (["--names", "a,b,c"], "--names gives 3 names"),
    (["--method", "tcl", "--prior-mean"], "--prior-mean applies to --method flow or ivae"),
])
def test_cli_causal_bad_input_is_one_line(tmp_path, args, fragment):
    data = make_causal(2, n_segments=4, n_per_segment=30, random_state=0)
    path = tmp_path / "data.npz"
    np.savez(path, x=data.x, u=data.u)
    result = CliRunner().invoke(main, ["causal", str(path), "--max-steps", "5", *args])
    assert result.exit_code == 1 and f"Error: {fragment}" in result.output, result.output
    np.savez(path, x=data.x[:, :1], u=data.u)
    result = CliRunner().invoke(main, ["causal", str(path), "--max-steps", "5"])
    assert result.exit_code == 1 and "at least 2 variables" in result.output
