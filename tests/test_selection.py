"""Restart selection rules (nica.training.selection)."""

from __future__ import annotations

import numpy as np
import pytest

from nica.training.selection import agreement_matrix, agreement_scores, restart_scores


def test_agreement_finds_the_consensus_restart():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(500, 3))
    good = [truth[:, perm] * sign + 0.05 * rng.normal(size=(500, 3))
            for perm, sign in [([0, 1, 2], 1), ([2, 0, 1], -1), ([1, 2, 0], 1)]]
    spurious = truth @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # a rotation: no longer component-wise
    latents = np.stack(good + [spurious])
    agreement = agreement_matrix(latents)
    np.testing.assert_allclose(agreement, agreement.T)
    np.testing.assert_allclose(np.diag(agreement), 1.0)
    assert agreement[0, 1] > 0.99  # permutation and sign do not matter
    scores = agreement_scores(agreement)
    assert np.argmin(scores) == 3
    chosen, _ = restart_scores("agreement", model_elbo=np.zeros(4), latents=lambda: latents)
    assert np.argmax(chosen) in (0, 1, 2)


def test_elbo_and_first_rules():
    latents = np.random.default_rng(1).normal(size=(3, 50, 2))
    scores, agreement = restart_scores("elbo", model_elbo=np.array([-3.0, -1.0, -2.0]), latents=lambda: latents)
    assert np.argmax(scores) == 1 and agreement.shape == (3, 3)
    scores, _ = restart_scores("first", model_elbo=np.array([-3.0, -1.0, -2.0]), latents=lambda: latents)
    assert np.argmax(scores) == 0


def test_single_restart_needs_no_latents():
    def never():
        raise AssertionError("latents are not needed for one restart")

    scores, agreement = restart_scores("agreement", model_elbo=np.array([-1.0]), latents=never)
    assert scores.tolist() == [1.0] and agreement is None
    with pytest.raises(ValueError, match="selection"):
        restart_scores("oracle", model_elbo=np.array([-1.0]), latents=never)
