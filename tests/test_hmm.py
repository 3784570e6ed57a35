"""The hidden Markov chain of the switching model: forward algorithm, forward-backward and
Viterbi against brute-force enumeration of every regime path on tiny chains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nica.temporal import hmm


def _chain(seed: int, n: int = 3, t: int = 4, k: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emission = torch.randn(n, t, k, generator=g, dtype=torch.float64) * 2
    initial = torch.log_softmax(torch.randn(k, generator=g, dtype=torch.float64), -1)
    transition = torch.log_softmax(torch.randn(k, k, generator=g, dtype=torch.float64), -1)
    return emission, initial, transition


def _paths(emission, initial, transition):
    """log p(path, e) of every path of every sequence: ``(N, K**T)`` and the paths."""
    n, t, k = emission.shape
    paths = list(itertools.product(range(k), repeat=t))
    scores = torch.zeros(n, len(paths), dtype=emission.dtype)
    for j, path in enumerate(paths):
        score = initial[path[0]] + emission[:, 0, path[0]]
        for step in range(1, t):
            score = score + transition[path[step - 1], path[step]] + emission[:, step, path[step]]
        scores[:, j] = score
    return scores, paths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_forward_algorithm_is_the_sum_over_every_regime_path(seed):
    emission, initial, transition = _chain(seed)
    scores, _ = _paths(emission, initial, transition)
    torch.testing.assert_close(hmm.log_likelihood(emission, initial, transition), torch.logsumexp(scores, 1))


@pytest.mark.parametrize("seed", [0, 3])
def test_forward_backward_posteriors_match_enumeration(seed):
    emission, initial, transition = _chain(seed, t=5, k=2)
    scores, paths = _paths(emission, initial, transition)
    weights = torch.softmax(scores, 1)
    n, t, k = emission.shape
    expected = torch.zeros(n, t, k, dtype=emission.dtype)
    for j, path in enumerate(paths):
        for step, regime in enumerate(path):
            expected[:, step, regime] += weights[:, j]
    proba, total = hmm.posteriors(emission, initial, transition)
    torch.testing.assert_close(proba, expected)
    torch.testing.assert_close(total, torch.logsumexp(scores, 1))
    torch.testing.assert_close(proba.sum(-1), torch.ones(n, t, dtype=emission.dtype))


def test_viterbi_finds_the_most_probable_path():
    emission, initial, transition = _chain(4, t=5, k=3)
    scores, paths = _paths(emission, initial, transition)
    best = scores.argmax(1)
    expected = torch.tensor([paths[int(j)] for j in best])
    assert torch.equal(hmm.viterbi(emission, initial, transition), expected)


def test_long_series_neither_underflow_nor_overflow():
    emission = torch.full((1, 5_000, 2), -300.0, dtype=torch.float64)
    initial = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    transition = torch.log(torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64))
    total = hmm.log_likelihood(emission, initial, transition)
    assert torch.isfinite(total).all()
    np.testing.assert_allclose(float(total), -300.0 * 5_000, rtol=1e-12)


def test_the_likelihood_is_differentiable_in_every_input():
    emission, initial, transition = _chain(5)
    emission.requires_grad_(True)
    logits = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    hmm.log_likelihood(emission, initial, torch.log_softmax(logits + transition, -1)).sum().backward()
    assert torch.isfinite(emission.grad).all() and logits.grad.abs().sum() > 0
    # d log p / d emission_t(k) is the posterior of regime k at step t
    proba, _ = hmm.posteriors(emission.detach(), initial, torch.log_softmax(logits.detach() + transition, -1))
    torch.testing.assert_close(emission.grad, proba)


def test_mismatched_shapes_are_refused_by_name():
    emission, initial, transition = _chain(0)
    with pytest.raises(ValueError, match="log_transition"):
        hmm.log_likelihood(emission, initial, transition[:2])
    with pytest.raises(ValueError, match=r"\(N, T, K\)"):
        hmm.log_likelihood(emission[0], initial, transition)
