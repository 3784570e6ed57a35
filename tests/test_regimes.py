"""Regimes: the Langevin generator on a multi-well landscape (its drift, each regime's
stationarity, metastability) and the regime-accuracy metric."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nica.datasets.regimes import make_regimes
from nica.metrics import matched_accuracy, regime_accuracy


@pytest.fixture(scope="module")
def landscape():
    return make_regimes(3, n_steps=12_000, random_state=4)


def test_the_drift_is_minus_d_grad_e_plus_the_divergence_of_d(landscape):
    z = np.random.default_rng(0).normal(size=(6, 3))
    h = 1e-6
    grad = np.stack([(_energy(landscape, z + h * e) - _energy(landscape, z - h * e)) / (2 * h) for e in np.eye(3)], -1)
    np.testing.assert_allclose(landscape.energy_gradient(z), grad, atol=1e-6)
    divergence = np.stack([(landscape.diffusion_at(z + h * e)[:, i] - landscape.diffusion_at(z - h * e)[:, i]) / (2 * h)
                           for i, e in enumerate(np.eye(3))], -1)
    np.testing.assert_allclose(landscape.drift(z), -landscape.diffusion_at(z) * grad + divergence, atol=1e-6)


def _energy(data, z):
    diff = (z[..., None, :] - data.centers) / data.widths
    log_n = np.log(data.weights) - np.log(data.widths).sum(-1) - 0.5 * (diff ** 2).sum(-1) - 1.5 * np.log(2 * np.pi)
    return -np.log(np.exp(log_n).sum(-1))


def test_every_regime_is_visited_often_and_stays_a_while(landscape):
    regimes = landscape.regimes
    occupancy = np.bincount(regimes, minlength=4) / len(regimes)
    assert occupancy.min() > 0.1  # equal weights: each well about a quarter of the time
    switches = np.count_nonzero(np.diff(regimes))
    assert 20 < switches < len(regimes) / 5  # hops between wells, but stays in one for a while


def test_each_regime_is_stationary(landscape):
    """The latents within a regime have the same distribution in both halves of the series,
    near their well's centre and width."""
    for k in range(4):
        first, second = (s[r == k] for s, r in zip(np.array_split(landscape.s, 2), np.array_split(landscape.regimes, 2)))
        assert len(first) > 300 and len(second) > 300
        scale = landscape.widths[k]
        np.testing.assert_allclose(first.mean(0), second.mean(0), atol=0.4 * scale.max())
        np.testing.assert_allclose(first.std(0), second.std(0), rtol=0.3)
        np.testing.assert_allclose(np.concatenate([first, second]).mean(0), landscape.centers[k], atol=scale.max())


def test_the_mixing_and_the_split_share_the_system(landscape):
    np.testing.assert_allclose(landscape.mix(landscape.s_test), landscape.x_test, rtol=1e-4, atol=1e-4)
    assert landscape.x_test.shape == (6000, 3)
    np.testing.assert_array_equal(landscape.regime(landscape.s_test), landscape.regimes_test)
    a, b = make_regimes(2, n_steps=100, random_state=1), make_regimes(2, n_steps=100, random_state=1)
    np.testing.assert_array_equal(a.x, b.x)


def test_the_monotone_nonlinearity_is_increasing(landscape):
    a, b, o = landscape.monotone
    z = np.linspace(-5, 5, 1001)[:, None]
    h = z + a * np.tanh(b * (z - o))
    assert (np.diff(h, axis=0) > 0).all()


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_wells=1), "n_wells must be >= 2"),
    (dict(n_obs=1), "n_obs (1) must be >= n_sources"),
    (dict(dt=0.5), "dt=0.5 is too large"),
    (dict(width_bounds=(0.5, 0.1)), "width_bounds must satisfy"),
    (dict(separation=0), "separation must be a number > 0"),
])
def test_generator_arguments_are_checked(kwargs, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make_regimes(2, n_steps=50, **kwargs)


# ---------------------------------------------------------------- the metric
def test_matched_accuracy_ignores_the_names_of_the_clusters():
    true = np.array([0, 0, 1, 1, 2, 2])
    assert matched_accuracy(true, np.array([5, 5, 3, 3, 9, 9])) == 1.0
    assert matched_accuracy(true, np.array([5, 5, 3, 3, 3, 3])) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="true has 6 labels but predicted has 2"):
        matched_accuracy(true, [0, 1])


def test_regime_accuracy_reads_regimes_off_latents(landscape):
    s, regimes = landscape.s_test, landscape.regimes_test
    assert regime_accuracy(regimes, s) > 0.9
    noise = np.random.default_rng(0).normal(size=s.shape)
    assert regime_accuracy(regimes, noise) < 0.5
    assert regime_accuracy(regimes, s, clustering="kmeans") > 0.7
    with pytest.raises(ValueError, match="z has 5 rows but regimes has"):
        regime_accuracy(regimes, s[:5])
