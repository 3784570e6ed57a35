"""A hidden Markov chain over K regimes, in log space and batched over sequences.

Given per-step log-emissions log p(e_t | c_t = k) of N sequences ``(N, T, K)``, an
initial distribution pi and a transition matrix A (each row a distribution over the next
regime), the forward algorithm gives the exact marginal log-likelihood

    log p(e_1..T) = log sum_{c_1..T} pi_{c_1} p(e_1 | c_1) prod_t A_{c_{t-1} c_t} p(e_t | c_t),

in O(T K^2) instead of the K^T terms of the sum, and forward-backward gives the posterior
of each step's regime; Viterbi the most probable path. Everything works on log
probabilities (logsumexp), so long series neither underflow nor overflow, and is
differentiable (torch autograd) for training by maximum likelihood.
"""

from __future__ import annotations

import torch


def _check(log_emission: torch.Tensor, log_initial: torch.Tensor, log_transition: torch.Tensor) -> None:
    if log_emission.dim() != 3:
        raise ValueError(f"log_emission must be (N, T, K), got shape {tuple(log_emission.shape)}")
    k = log_emission.shape[-1]
    if log_initial.shape != (k,) or log_transition.shape != (k, k):
        raise ValueError(f"for K={k} regimes, log_initial must be ({k},) and log_transition ({k}, {k}); got "
                         f"{tuple(log_initial.shape)} and {tuple(log_transition.shape)}")


def forward_log_alpha(log_emission: torch.Tensor, log_initial: torch.Tensor,
                      log_transition: torch.Tensor) -> torch.Tensor:
    """log alpha_t(k) = log p(e_1..t, c_t = k): ``(N, T, K)``."""
    _check(log_emission, log_initial, log_transition)
    alpha = [log_initial + log_emission[:, 0]]
    for t in range(1, log_emission.shape[1]):
        alpha.append(torch.logsumexp(alpha[-1][:, :, None] + log_transition, dim=1) + log_emission[:, t])
    return torch.stack(alpha, dim=1)


def log_likelihood(log_emission: torch.Tensor, log_initial: torch.Tensor,
                   log_transition: torch.Tensor) -> torch.Tensor:
    """The exact log p(e_1..T) of each sequence, summed over regime paths: ``(N,)``."""
    _check(log_emission, log_initial, log_transition)
    alpha = log_initial + log_emission[:, 0]
    for t in range(1, log_emission.shape[1]):
        alpha = torch.logsumexp(alpha[:, :, None] + log_transition, dim=1) + log_emission[:, t]
    return torch.logsumexp(alpha, dim=-1)


def posteriors(log_emission: torch.Tensor, log_initial: torch.Tensor,
               log_transition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-backward: p(c_t = k | e_1..T) ``(N, T, K)`` and log p(e_1..T) ``(N,)``."""
    log_alpha = forward_log_alpha(log_emission, log_initial, log_transition)
    n_steps = log_emission.shape[1]
    beta = [torch.zeros_like(log_alpha[:, 0])]
    for t in range(n_steps - 1, 0, -1):
        beta.append(torch.logsumexp(log_transition + (log_emission[:, t] + beta[-1])[:, None, :], dim=2))
    log_beta = torch.stack(beta[::-1], dim=1)
    log_joint = log_alpha + log_beta
    total = torch.logsumexp(log_alpha[:, -1], dim=-1)
    return torch.exp(log_joint - total[:, None, None]), total


def viterbi(log_emission: torch.Tensor, log_initial: torch.Tensor, log_transition: torch.Tensor) -> torch.Tensor:
    """The most probable regime path of each sequence: ``(N, T)`` integers."""
    _check(log_emission, log_initial, log_transition)
    score = log_initial + log_emission[:, 0]
    back = []
    for t in range(1, log_emission.shape[1]):
        candidates = score[:, :, None] + log_transition  # (N, from, to)
        score, best = candidates.max(dim=1)
        score = score + log_emission[:, t]
        back.append(best)
    path = [score.argmax(dim=-1)]
    for best in reversed(back):
        path.append(best.gather(1, path[-1][:, None])[:, 0])
    return torch.stack(path[::-1], dim=1)


__all__ = ["forward_log_alpha", "log_likelihood", "posteriors", "viterbi"]
