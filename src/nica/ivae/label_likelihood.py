"""The iVAE's likelihood of new data under each fitted label (for ``predict_u``), and what its
encoder is given when u is unknown."""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def ivae_label_log_likelihood(module: Any, x: torch.Tensor, n_labels: int, *, n_samples: int = 10,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """ELBO(x, u = k) of an iVAE module (a single model) for every one-hot label k, up to a
    term constant in k: ``(batch, n_labels)``; x ``(batch, x_dim)`` standardised.

    With an encoder q(z | x) that does not see u, the reconstruction term is the same for
    every label and is left out: what remains is -KL(q(z | x) || p(z | u = k)), exact.
    With an encoder q(z | x, u) the reconstruction term averages ``n_samples`` draws, the
    same noise for every label (common random numbers).
    """
    sees_u = module.config.conditional and module.config.encoder_sees_u
    eye = torch.eye(n_labels, device=x.device, dtype=x.dtype)
    if not sees_u:
        mean, logvar = module.inference(x, x.new_zeros((len(x), 0)))
    else:
        eps = torch.randn((n_samples, 1, len(x), module.config.n_latent), generator=generator,
                          device=x.device, dtype=x.dtype)
    scores = []
    for k in range(n_labels):
        u_k = eye[k].expand(len(x), n_labels)
        reconstruction = 0.0
        if sees_u:
            mean, logvar = module.inference(x, u_k)
            z = mean + torch.exp(0.5 * logvar) * eps  # (n_samples, 1, batch, n)
            reconstruction = torch.stack([module.decoder.log_prob(x, zs) for zs in z]).mean(0)
        kl = module.prior.kl_from_gaussian(mean, logvar, module.prior_params(u_k))
        scores.append((reconstruction - kl)[0])
    return torch.stack(scores, dim=-1)


def encoder_input_without_u(config: Any, n_samples: int) -> torch.Tensor:
    """What an iVAE encoder (of :class:`nica.models.IVAEConfig` ``config``) is given when u is
    unknown: ``(n_samples, 0)``, or an error naming the option for an encoder q(z | x, u)."""
    if config.conditional and config.encoder_sees_u:
        raise ValueError(
            "u is required: this model's encoder q(z | x, u) sees u (encoder_sees_u=True, "
            "CLI --encoder-sees-u or --preset authors). Pass u, or refit with "
            "encoder_sees_u=False (CLI --encoder-ignores-u) for latents of new data without u; "
            "predict_u(X) tells which fitted label each row most likely has"
        )
    return torch.zeros((n_samples, 0))


__all__ = ["encoder_input_without_u", "ivae_label_log_likelihood"]
