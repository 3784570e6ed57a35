"""The hand-derived gradients of nica.models.analytic against autograd on IVAEModule.loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nica
from nica.models.analytic import AnalyticLoss, analytic_support
from nica.models.ivae import IVAEConfig, IVAEModule
from nica.models.objectives import AUTHORS_WEIGHTS, ELBO_WEIGHTS, beta_tcvae_weights, beta_vae_weights

N_DATA = 1000


def _module(**overrides) -> IVAEModule:
    config = dict(x_dim=4, aux_dim=6, n_latent=3, prior_net="table", hidden_dim=7)
    config.update(overrides)
    torch.manual_seed(0)
    return IVAEModule(IVAEConfig(**config)).double()


def _batch(module: IVAEModule, m: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(m, module.config.x_dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, module.config.aux_dim, (m,), generator=g)
    return x, torch.nn.functional.one_hot(labels, module.config.aux_dim).double()


def _autograd(module, x, u, weights):
    module.zero_grad(set_to_none=True)
    out = module.loss(x, u, n_data=N_DATA, weights=weights, generator=torch.Generator().manual_seed(5))
    out.loss.sum().backward()
    return out, {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


def _analytic(module, x, u, weights):
    module.zero_grad(set_to_none=True)
    out = AnalyticLoss(module)(x, u, n_data=N_DATA, weights=weights, generator=torch.Generator().manual_seed(5))
    return out, {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


CONFIGS = {
    "default": {},
    "stacked": dict(n_models=3),
    "learned prior mean": dict(prior_mean=True, n_models=2),
    "mean only": dict(prior_mean=True, prior_scale=False),
    "plain VAE": dict(conditional=False),
    "learned decoder variance": dict(decoder_var="learned", n_models=2),
    "two layers": dict(n_layers=2),
    "one layer": dict(n_layers=1),
}
WEIGHTS = {
    "elbo": ELBO_WEIGHTS,
    "authors": AUTHORS_WEIGHTS,
    "beta-vae": beta_vae_weights(4.0),
    "beta-tcvae": beta_tcvae_weights(6.0),
}


@pytest.mark.parametrize("weights_name", sorted(WEIGHTS))
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_values_and_gradients_match_autograd(config_name, weights_name):
    module = _module(**CONFIGS[config_name])
    assert analytic_support(module) is None
    x, u = _batch(module)
    weights = WEIGHTS[weights_name]
    expected, expected_grads = _autograd(module, x, u, weights)
    got, got_grads = _analytic(module, x, u, weights)
    for field in ("loss", "elbo", "reconstruction", "kl"):
        torch.testing.assert_close(getattr(got, field), getattr(expected, field).detach(), rtol=1e-9, atol=1e-9)
    assert set(got_grads) == set(expected_grads)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-8, atol=1e-10, msg=name)


def test_clamped_log_variances_pass_no_gradient():
    module = _module(decoder_var="learned")
    with torch.no_grad():  # push the encoder's log-variance head and the decoder variance past the bounds
        module.encoder.net.net[-1].bias[..., 3:] += torch.tensor([40.0, -40.0, 0.0], dtype=torch.float64)
        module.decoder.logvar.fill_(-20.0)
        module.prior.net.weight[:, 0] = 30.0
    x, u = _batch(module)
    for weights in (ELBO_WEIGHTS, AUTHORS_WEIGHTS):
        _, expected = _autograd(module, x, u, weights)
        _, got = _analytic(module, x, u, weights)
        for name, grad in expected.items():
            torch.testing.assert_close(got[name], grad, rtol=1e-8, atol=1e-10, msg=name)
        assert torch.all(got["decoder.logvar"] == 0)


def test_float32_gradients_match_autograd_closely():
    module = _module(n_models=2).float()
    x, u = (t.float() for t in _batch(module, m=64))
    _, expected = _autograd(module, x, u, AUTHORS_WEIGHTS)
    _, got = _analytic(module, x, u, AUTHORS_WEIGHTS)
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (dict(prior="laplace"), "prior"),
        (dict(prior_net="mlp"), "prior network"),
        (dict(shared_encoder=False), "two encoder networks"),
        (dict(encoder_sees_u=True), "sees u"),
        (dict(decoder="bernoulli"), "decoder"),
        (dict(activation="lrelu"), "activation"),
    ],
)
def test_unsupported_models_are_named(overrides, reason):
    module = _module(**overrides)
    assert reason in analytic_support(module)
    with pytest.raises(ValueError, match=reason):
        AnalyticLoss(module)


def _count_calls(monkeypatch, cls, name):
    calls = {"n": 0}
    original = getattr(cls, name)

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_estimator_trains_the_default_model_through_the_analytic_path(tiny_data, fast_params, monkeypatch):
    analytic = _count_calls(monkeypatch, AnalyticLoss, "__call__")
    autograd = _count_calls(monkeypatch, IVAEModule, "loss")
    params = {**fast_params, "max_steps": 40}
    fast = nica.IVAE(3, **params, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert (analytic["n"], autograd["n"]) == (40, 0)
    slow = nica.IVAE(3, **params, analytic_gradients=False, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert (analytic["n"], autograd["n"]) == (40, 40)
    # same noise and batches, same gradients up to float32 rounding: the fits agree
    np.testing.assert_allclose(fast.transform(tiny_data.x, tiny_data.u), slow.transform(tiny_data.x, tiny_data.u),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fast.history_.elbo, slow.history_.elbo, rtol=1e-4)


def test_models_it_does_not_cover_train_through_autograd(tiny_data, fast_params, monkeypatch):
    analytic = _count_calls(monkeypatch, AnalyticLoss, "__call__")
    nica.IVAE(3, **{**fast_params, "max_steps": 10}, encoder_sees_u=True, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert analytic["n"] == 0


def test_tanh_through_the_logistic_function_for_large_layers(monkeypatch):
    import nica.models.analytic as analytic

    module = _module(n_models=3)
    x, u = _batch(module)
    _, expected = _autograd(module, x, u, AUTHORS_WEIGHTS)
    monkeypatch.setattr(analytic, "LOGISTIC_TANH_MIN_SIZE", 1)
    _, got = _analytic(module, x, u, AUTHORS_WEIGHTS)
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-8, atol=1e-10, msg=name)
