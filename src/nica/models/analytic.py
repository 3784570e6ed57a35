"""Hand-derived gradients of the iVAE's training loss, for the estimator's default model.

Why: a training step of the default model (5 -> 5, hidden width 50, batch 64) is bound by
per-operation overhead, not arithmetic. Through autograd it runs 293 aten operations
(128 forward, 165 backward: transposes, detaches, one multiplication per chain-rule
factor) plus the engine's bookkeeping for each. :class:`AnalyticLoss` computes the same
loss and writes the same gradients into each parameter's ``.grad`` with 159 aten
operations (131 that are not views) and no graph: the forward pass keeps the few
tensors the backward needs (layer inputs, the derivative of each hidden activation, the
two softmaxes of the minibatch-weighted estimate) and the backward is written out, with
the constant upstream gradients of the weighted objective folded into single scalars.

It covers the configurations the estimator and its unconditional baselines train by
default (:func:`analytic_support` says why any other falls back to autograd):
Gaussian prior whose parameters are a table over u (or absent: plain VAE), one encoder
network with a mean and a log-variance head that does not see u, Gaussian decoder with a
fixed or learned variance, xtanh hidden layers, the plain ELBO or the reweighted
decomposition, any number K of stacked restarts. ``tests/test_analytic.py`` checks
values and gradients against autograd on :meth:`IVAEModule.loss` for each of these.

Shapes: K stacked models, M rows in the mini-batch, n latents, d observed features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nica.models.base import LossOutput
from nica.models.decoders import GaussianDecoder
from nica.models.networks import LOGVAR_MAX, LOGVAR_MIN, StackedLinear, XTanh
from nica.models.objectives import ELBO_WEIGHTS, ObjectiveWeights, mws_backward, mws_forward
from nica.models.priors import GaussianPrior

LOG_2PI = math.log(2 * math.pi)
#: from this many elements on, tanh is computed through the logistic function: torch's
#: CPU tanh kernel costs about 3x its sigmoid (4 vs 1.3 ns an element on an AVX2 core),
#: which outweighs the two extra operations (measured break-even near 10,000 elements,
#: i.e. four stacked restarts of a width-50 layer at batch 64); the two agree to 2e-7.
LOGISTIC_TANH_MIN_SIZE = 10_000


Layer = tuple[nn.Parameter, nn.Parameter]  # weight (K, out, in), bias (K, 1, out)


def _mlp_layers(mlp: nn.Module) -> tuple[list[Layer], float] | None:
    """(weight, bias) of each linear layer of an :class:`nica.models.networks.MLP` and its
    xtanh slope, or None when a hidden activation is not xtanh (or slopes differ).
    The parameters are held directly: ``nn.Module`` attribute lookups cost microseconds."""
    modules = list(mlp.net)
    layers, activations = modules[0::2], modules[1::2]
    if not all(isinstance(layer, StackedLinear) for layer in layers):
        return None
    if not all(isinstance(a, XTanh) for a in activations):
        return None
    slopes = {a.slope for a in activations}
    if len(slopes) > 1:
        return None
    return [(layer.weight, layer.bias) for layer in layers], (slopes.pop() if slopes else 0.0)


def analytic_support(module: nn.Module) -> str | None:
    """None if :class:`AnalyticLoss` covers ``module``, else the reason it does not."""
    c = getattr(module, "config", None)
    if not all(hasattr(c, name) for name in ("prior", "prior_net", "shared_encoder", "decoder")) \
            or not hasattr(module, "encoder"):
        return "not an IVAEModule"
    if c.prior != "gaussian" or not isinstance(module.prior, GaussianPrior):
        return f"prior {c.prior!r} (only the Gaussian prior)"
    if module.prior.net is not None and c.prior_net != "table":
        return f"prior network {c.prior_net!r} (only the table)"
    if not c.shared_encoder:
        return "two encoder networks (only the shared encoder)"
    if module.encoder.use_aux:
        return "an encoder that sees u"
    if not isinstance(module.decoder, GaussianDecoder):
        return f"decoder {c.decoder!r} (only the Gaussian decoder)"
    if _mlp_layers(module.encoder.net) is None or _mlp_layers(module.decoder.net) is None:
        return f"activation {c.activation!r} (only xtanh)"
    return None


def _mlp_forward(
    layers: list[Layer], h: torch.Tensor, slope: float, n_models: int
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Output ``(K, M, out)``, each layer's input ``(K, M, in)`` and each hidden
    activation's derivative ``(K, M, hidden)``; h is ``(M, in)`` or ``(K, M, in)``."""
    if h.dim() == 2:
        h = h.expand(n_models, *h.shape)
    inputs, derivatives = [], []
    last = len(layers) - 1
    one_plus_slope = h.new_full((), 1.0 + slope)
    for i, (weight, bias) in enumerate(layers):
        inputs.append(h)
        a = torch.baddbmm(bias, h, weight.mT)
        if i == last:
            return a, inputs, derivatives
        if a.numel() >= LOGISTIC_TANH_MIN_SIZE:  # tanh(a) = 2 sigmoid(2a) - 1
            t = torch.sigmoid(2.0 * a).mul_(2.0).sub_(1.0)
        else:
            t = torch.tanh(a)
        h = torch.add(t, a, alpha=slope)
        # d xtanh / da = 1 + slope - tanh(a)^2
        derivatives.append(torch.addcmul(one_plus_slope, t, t, value=-1))
    raise AssertionError("unreachable")


def _mlp_backward(
    layers: list[Layer],
    inputs: list[torch.Tensor],
    derivatives: list[torch.Tensor],
    grad_out: torch.Tensor,
    grads: dict[nn.Parameter, torch.Tensor],
    input_grad: bool,
) -> torch.Tensor | None:
    """Store weight and bias gradients in ``grads``; return the input's gradient if asked."""
    g = grad_out
    for i in range(len(layers) - 1, -1, -1):
        weight, bias = layers[i]
        grads[weight] = torch.bmm(g.mT, inputs[i])
        grads[bias] = g.sum(-2, keepdim=True)
        if i == 0 and not input_grad:
            return None
        g = torch.bmm(g, weight)
        if i > 0:
            g.mul_(derivatives[i - 1])
    return g


def _in_range(raw: torch.Tensor, clamped: torch.Tensor) -> torch.Tensor:
    """Where :func:`nica.models.networks.bounded_logvar` passes gradients: clamp's rule
    (inside the bounds, bounds included) is where clamping left the value unchanged."""
    return raw == clamped


class AnalyticLoss:
    """:meth:`nica.models.IVAEModule.loss` with gradients written out instead of recorded.

    Calling it returns the same :class:`LossOutput` as ``module.loss`` (without a graph)
    and sets every parameter's ``.grad`` to the gradient of ``loss.sum()``, i.e. what
    ``module.loss(...).loss.sum().backward()`` would leave there from zeroed gradients.
    The reparameterisation noise is drawn from ``generator`` exactly as ``module.loss``
    draws it, so both paths see the same noise.
    """

    def __init__(self, module: nn.Module) -> None:
        reason = analytic_support(module)
        if reason is not None:
            raise ValueError(f"analytic gradients do not cover this model: {reason}")
        self.module = module
        self.n_models = module.config.n_models
        self.n_latent = module.config.n_latent
        self.encoder_layers, self.encoder_slope = _mlp_layers(module.encoder.net)
        self.decoder_layers, self.decoder_slope = _mlp_layers(module.decoder.net)
        self.prior_table = module.prior.net.weight if module.prior.net is not None else None
        self.learn_mean, self.learn_scale = module.prior.learn_mean, module.prior.learn_scale
        self.raw_decoder_logvar = module.decoder.logvar  # (K, 1, d): a parameter or a buffer
        self.decoder_logvar = self.raw_decoder_logvar if isinstance(self.raw_decoder_logvar, nn.Parameter) else None

    def __call__(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_data: int,
        weights: ObjectiveWeights = ELBO_WEIGHTS,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """x ``(M, d)``, u ``(M, aux_dim)``; returns the loss and fills the ``.grad`` fields."""
        if torch.is_grad_enabled():  # the trainer calls it with grad mode already off
            with torch.no_grad():
                return self._loss_and_gradients(x, u, n_data, weights, generator)
        return self._loss_and_gradients(x, u, n_data, weights, generator)

    def _loss_and_gradients(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        n_data: int,
        weights: ObjectiveWeights,
        generator: torch.Generator | None,
    ) -> LossOutput:
        k, n = self.n_models, self.n_latent
        m = x.shape[0]
        grads: dict[nn.Parameter, torch.Tensor] = {}

        # q(z | x): one network, mean and raw log-variance heads; z by reparameterisation
        out, enc_inputs, enc_derivs = _mlp_forward(self.encoder_layers, x, self.encoder_slope, k)
        mean, raw_logvar = out.split(n, dim=-1)
        logvar = raw_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        std = torch.exp(0.5 * logvar)
        z = mean + std * eps

        # p(z | u): a table (a linear map of u) for the location and/or log-variance
        loc, prior_logvar = None, mean.new_zeros(())
        u_k = None
        if self.prior_table is not None:
            u_k = u.expand(k, *u.shape)
            raw_prior = torch.bmm(u_k, self.prior_table.mT)
            if self.learn_mean and self.learn_scale:
                loc, raw_scale = raw_prior.chunk(2, dim=-1)
                prior_logvar = raw_scale.clamp(LOGVAR_MIN, LOGVAR_MAX)
            elif self.learn_mean:
                loc = raw_prior
            else:
                raw_scale = raw_prior
                prior_logvar = raw_scale.clamp(LOGVAR_MIN, LOGVAR_MAX)
        prior_precision = torch.exp(-prior_logvar)

        # p(x | z): Gaussian around the decoder's output
        fx, dec_inputs, dec_derivs = _mlp_forward(self.decoder_layers, z, self.decoder_slope, k)
        raw_dec_logvar = self.raw_decoder_logvar
        dec_logvar = raw_dec_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        dec_precision = torch.exp(-dec_logvar)
        residual = x - fx
        scaled_residual = residual * dec_precision  # d log p(x|z) / d f
        sq_residual = residual * scaled_residual
        log_px = -0.5 * (sq_residual.sum(-1) + (LOG_2PI + dec_logvar).sum(-1))

        # analytic KL(q(z|x) || p(z|u)) for the ELBO
        dmean = mean if loc is None else mean - loc
        scaled_dmean = dmean * prior_precision
        ratio = torch.exp(logvar - prior_logvar)
        kl_terms = torch.addcmul(ratio - logvar + prior_logvar, dmean, scaled_dmean)
        kl = kl_terms.sum(-1).sub_(n).mul_(0.5)
        elbo = log_px - kl

        upstream = -1.0 / m  # d loss.sum() / d objective, for every sample
        grad_prior_logvar = grad_loc = None
        if weights == ELBO_WEIGHTS:
            objective = elbo
            g_px, g_kl = upstream, -upstream
            grad_z = None
            grad_mean = scaled_dmean * g_kl
            grad_logvar = (ratio - 1.0).mul_(0.5 * g_kl)
            if self.prior_table is not None:
                grad_prior_logvar = (1.0 - ratio - dmean * scaled_dmean).mul_(0.5 * g_kl)
                grad_loc = -grad_mean
        else:
            w = weights
            # log q(z|x) = -(n log 2pi + sum(logvar + eps^2)) / 2
            sum_qz_x = torch.addcmul(logvar, eps, eps).sum(-1)
            zloc = z if loc is None else z - loc
            scaled_zloc = zloc * prior_precision
            sq_zloc = zloc * scaled_zloc
            sum_pz = (sq_zloc + prior_logvar).sum(-1)  # log p(z|u) = -(n log 2pi + this) / 2
            log_joint, log_marginals, saved = mws_forward(z, mean, logvar)
            sum_marginals = log_marginals.sum(-1)
            # log q(z) = log_joint - c_joint, sum_k log q(z_k) = sum_marginals - c_marg
            log_norm = math.log(m * n_data)
            c_joint = log_norm + 0.5 * n * LOG_2PI
            c_marg = n * (log_norm + 0.5 * LOG_2PI)
            # a log p(x|z) - b (log q(z|x) - log q(z)) - c (log q(z) - sum log q(z_k))
            #   - e (sum log q(z_k) - log p(z|u)), collected term by term
            a, b, c, e = w.reconstruction, w.mutual_info, w.total_correlation, w.dimension_kl
            constant = (b - e) * 0.5 * n * LOG_2PI - (b - c) * c_joint - (c - e) * c_marg
            objective = torch.add(log_px * a, sum_qz_x, alpha=0.5 * b)
            objective.add_(log_joint, alpha=b - c).add_(sum_marginals, alpha=c - e)
            objective.add_(sum_pz, alpha=-0.5 * e).add_(constant)
            g_px = w.reconstruction * upstream
            g_qz_x = -w.mutual_info * upstream
            g_qz = (w.mutual_info - w.total_correlation) * upstream
            g_marginals = (w.total_correlation - w.dimension_kl) * upstream
            g_pz = w.dimension_kl * upstream
            grad_z, grad_mean, grad_logvar = mws_backward(saved, g_qz, g_marginals)
            grad_z = grad_z.add(scaled_zloc, alpha=-g_pz)
            # log q(z|x) = -(log 2pi + logvar + eps^2) / 2 summed: its total derivative on
            # logvar is -1/2 (the eps^2 term does not move with mean or logvar)
            grad_logvar = grad_logvar + (-0.5 * g_qz_x)
            if self.prior_table is not None:
                grad_prior_logvar = (sq_zloc - 1.0).mul_(0.5 * g_pz)
                grad_loc = scaled_zloc * g_pz

        # decoder: its parameters, its learned variance, and the gradient reaching z
        grad_dec_z = _mlp_backward(
            self.decoder_layers, dec_inputs, dec_derivs, scaled_residual * g_px, grads, input_grad=True
        )
        grad_z = grad_dec_z if grad_z is None else grad_z.add_(grad_dec_z)
        if self.decoder_logvar is not None:
            per_feature = (m - sq_residual.sum(-2, keepdim=True)).mul_(-0.5 * g_px)
            grads[self.decoder_logvar] = per_feature.mul_(_in_range(raw_dec_logvar, dec_logvar))

        # z = mean + exp(logvar / 2) eps, then the clamp, then the encoder
        grad_mean = grad_mean + grad_z
        grad_logvar = torch.addcmul(grad_logvar, grad_z, std * eps, value=0.5)
        grad_logvar.mul_(_in_range(raw_logvar, logvar))
        _mlp_backward(
            self.encoder_layers, enc_inputs, enc_derivs, torch.cat((grad_mean, grad_logvar), -1), grads,
            input_grad=False,
        )

        # prior table: raw parameters = u @ table^T
        if self.prior_table is not None:
            heads = []
            if self.learn_mean:
                heads.append(grad_loc)
            if self.learn_scale:
                heads.append(grad_prior_logvar.mul_(_in_range(raw_scale, prior_logvar)))
            grad_raw = heads[0] if len(heads) == 1 else torch.cat(heads, -1)
            grads[self.prior_table] = torch.bmm(grad_raw.mT, u_k)

        for parameter, grad in grads.items():
            parameter.grad = grad
        return LossOutput(-objective.mean(-1), elbo, log_px, kl)


__all__ = ["AnalyticLoss", "analytic_support"]
