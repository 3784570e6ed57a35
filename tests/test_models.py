"""Priors, decoders, objectives and the iVAE module against hand computation (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Laplace, Normal

from nica.models import (
    AUTHORS_WEIGHTS,
    ELBO_WEIGHTS,
    MLP,
    BernoulliDecoder,
    GaussianDecoder,
    GaussianEncoder,
    GaussianPrior,
    IVAEConfig,
    IVAEModule,
    LaplacePrior,
    ObjectiveWeights,
    PriorParams,
    XTanh,
)
from nica.models.networks import LOGVAR_MAX, LOGVAR_MIN, StackedLinear, bounded_logvar
from nica.models.objectives import (
    decomposed_objective,
    gaussian_log_density_matrix,
    mws_log_densities,
    objective_weights,
)

NET = dict(hidden_dim=8, n_layers=2)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def posterior_and_prior(gen, batch=6, n=3):
    mean, logvar = randn(gen, batch, n), 0.5 * randn(gen, batch, n)
    prior = PriorParams(loc=randn(gen, batch, n), log_scale=0.5 * randn(gen, batch, n))
    return mean, logvar, prior


# ---------------------------------------------------------------- priors
def test_gaussian_kl_closed_form(gen):
    mean, logvar, p = posterior_and_prior(gen)
    kl = GaussianPrior(3, 2, **NET).kl_from_gaussian(mean, logvar, p)
    m, v = mean.numpy(), np.exp(logvar.numpy())
    mu, w = p.loc.numpy(), np.exp(p.log_scale.numpy())
    by_hand = (0.5 * (np.log(w / v) + (v + (m - mu) ** 2) / w - 1.0)).sum(-1)
    assert kl.shape == (6,)
    np.testing.assert_allclose(kl.numpy(), by_hand, rtol=1e-12)
    reference = torch.distributions.kl_divergence(
        Normal(mean, torch.exp(0.5 * logvar)), Normal(p.loc, torch.exp(0.5 * p.log_scale))
    ).sum(-1)
    torch.testing.assert_close(kl, reference, rtol=1e-12, atol=1e-12)


def test_gaussian_kl_is_zero_for_identical_distributions(gen):
    mean, logvar = randn(gen, 4, 3), randn(gen, 4, 3)
    kl = GaussianPrior(3, 2, **NET).kl_from_gaussian(mean, logvar, PriorParams(mean, logvar))
    torch.testing.assert_close(kl, torch.zeros(4, dtype=torch.float64))


def monte_carlo_kl(prior, q: Normal, p: PriorParams, gen, n_draws=200_000):
    z = q.mean + q.stddev * randn(gen, n_draws, *q.mean.shape)
    diff = (q.log_prob(z) - prior.log_prob(z, p)).sum(-1)  # (n_draws, batch)
    return diff.mean(0), diff.std(0) / math.sqrt(n_draws)


@pytest.mark.parametrize("prior_cls", [GaussianPrior, LaplacePrior])
def test_kl_matches_monte_carlo(prior_cls, gen):
    mean, logvar, p = posterior_and_prior(gen, batch=4)
    prior = prior_cls(3, 2, **NET)
    kl = prior.kl_from_gaussian(mean, logvar, p)
    mc, se = monte_carlo_kl(prior, Normal(mean, torch.exp(0.5 * logvar)), p, gen)
    assert torch.all((kl - mc).abs() < 5 * se + 1e-3), (kl, mc, se)


def test_laplace_kl_when_posterior_mean_sits_on_prior_location(gen):
    # delta = 0 is the folded normal's special case: E|z - mu| = s sqrt(2 / pi)
    logvar = 0.3 * randn(gen, 2, 3)
    loc = randn(gen, 2, 3)
    p = PriorParams(loc=loc, log_scale=0.2 * randn(gen, 2, 3))
    kl = LaplacePrior(3, 2, **NET).kl_from_gaussian(loc, logvar, p)
    s, b = np.exp(0.5 * logvar.numpy()), np.exp(p.log_scale.numpy())
    by_hand = (-0.5 * np.log(2 * np.pi * np.e * s**2) + np.log(2 * b) + s * np.sqrt(2 / np.pi) / b).sum(-1)
    np.testing.assert_allclose(kl.numpy(), by_hand, rtol=1e-12)


def test_prior_log_probs_match_torch_distributions(gen):
    z = randn(gen, 5, 3)
    p = PriorParams(loc=randn(gen, 5, 3), log_scale=0.5 * randn(gen, 5, 3))
    gauss = GaussianPrior(3, 2, **NET).log_prob(z, p)
    torch.testing.assert_close(gauss, Normal(p.loc, torch.exp(0.5 * p.log_scale)).log_prob(z))
    lap = LaplacePrior(3, 2, **NET).log_prob(z, p)
    torch.testing.assert_close(lap, Laplace(p.loc, torch.exp(p.log_scale)).log_prob(z))


@pytest.mark.parametrize("prior_cls", [GaussianPrior, LaplacePrior])
@pytest.mark.parametrize("aux_net", ["mlp", "table"])
def test_prior_mean_false_gives_zero_loc(prior_cls, aux_net):
    prior = prior_cls(3, 4, learn_mean=False, learn_scale=True, aux_net=aux_net, **NET).double()
    u = torch.eye(4, dtype=torch.float64)
    params = prior(u)
    assert params.loc.shape == params.log_scale.shape == (1, 4, 3)  # (models, batch, latent)
    assert torch.all(params.loc == 0)
    # the scale does depend on u
    assert not torch.allclose(params.log_scale[0, 0], params.log_scale[0, 1])
    assert prior.n_statistics() == 1


def test_prior_scale_false_gives_unit_scale():
    prior = GaussianPrior(2, 3, learn_mean=True, learn_scale=False, **NET).double()
    params = prior(torch.eye(3, dtype=torch.float64))
    assert torch.all(params.log_scale == 0)
    assert not torch.allclose(params.loc[0, 0], params.loc[0, 1])


def test_mean_and_scale_both_depend_on_u():
    prior = GaussianPrior(2, 3, **NET).double()
    params = prior(torch.eye(3, dtype=torch.float64))
    assert not torch.allclose(params.loc[0, 0], params.loc[0, 2])
    assert not torch.allclose(params.log_scale[0, 0], params.log_scale[0, 2])
    assert prior.n_statistics() == 2


@pytest.mark.parametrize("prior_cls", [GaussianPrior, LaplacePrior])
def test_unconditional_prior_ignores_u(prior_cls, gen):
    prior = prior_cls(3, 4, conditional=False, **NET).double()
    a, b = prior(randn(gen, 5, 4)), prior(100 * randn(gen, 5, 4))
    torch.testing.assert_close(a.loc, b.loc)
    torch.testing.assert_close(a.log_scale, b.log_scale)
    # a fixed standard prior: zero location, unit scale
    assert torch.all(a.loc == 0) and torch.all(a.log_scale == 0)
    assert prior.n_statistics() == 0
    assert list(prior.parameters()) == []


def test_table_prior_is_one_row_per_label():
    prior = GaussianPrior(2, 3, aux_net="table", **NET).double()
    u = torch.eye(3, dtype=torch.float64)
    out = torch.cat([prior(u).loc, prior(u).log_scale], dim=-1)
    torch.testing.assert_close(out, prior.net.weight.mT)  # weight: (models, out, labels)


def test_unknown_prior_net_raises():
    with pytest.raises(ValueError, match="prior network"):
        GaussianPrior(2, 3, aux_net="rbf")


# ---------------------------------------------------------------- decoders
@pytest.mark.parametrize("variance", [0.3, "learned"])
def test_gaussian_decoder_log_prob(variance, gen):
    dec = GaussianDecoder(3, 4, variance=variance, **NET).double()
    if variance == "learned":
        with torch.no_grad():
            dec.logvar.copy_(torch.tensor([[[-1.0, 0.0, 0.5, -2.0]]], dtype=torch.float64))
    z, x = randn(gen, 7, 3), randn(gen, 7, 4)
    std = torch.exp(0.5 * dec.logvar)
    expected = Normal(dec.net(z), std).log_prob(x).sum(-1)
    got = dec.log_prob(x, z)
    assert got.shape == (1, 7)  # (models, batch)
    torch.testing.assert_close(got, expected)
    if variance != "learned":
        torch.testing.assert_close(std, torch.full((1, 1, 4), math.sqrt(0.3), dtype=torch.float64))
    torch.testing.assert_close(dec.mean(z), dec.net(z))


def test_gaussian_decoder_fixed_variance_is_not_trained():
    fixed = GaussianDecoder(2, 3, variance=0.1, **NET)
    learned = GaussianDecoder(2, 3, variance="learned", **NET)
    assert not any(p is fixed.logvar for p in fixed.parameters())
    assert any(p is learned.logvar for p in learned.parameters())
    torch.testing.assert_close(learned.logvar, torch.full((1, 1, 3), math.log(0.1)))


@pytest.mark.parametrize("variance", [0.0, -1.0, "big"])
def test_gaussian_decoder_bad_variance_raises(variance):
    with pytest.raises(ValueError, match="variance"):
        GaussianDecoder(2, 3, variance=variance, **NET)


def test_bernoulli_decoder_log_prob(gen):
    dec = BernoulliDecoder(3, 5, **NET).double()
    z = randn(gen, 8, 3)
    x = (torch.rand(8, 5, generator=gen, dtype=torch.float64) < 0.5).double()
    logits = dec.net(z)
    torch.testing.assert_close(dec.log_prob(x, z), Bernoulli(logits=logits).log_prob(x).sum(-1))
    torch.testing.assert_close(dec.mean(z), torch.sigmoid(logits))


# ---------------------------------------------------------------- objectives
def decomposition_inputs(gen, m=16, n=3):
    mean, logvar = randn(gen, m, n), 0.5 * randn(gen, m, n)
    z = mean + torch.exp(0.5 * logvar) * randn(gen, m, n)
    log_px, log_pz = randn(gen, m), randn(gen, m)
    log_qz_x = Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    return log_px, log_qz_x, log_pz, z, mean, logvar


def test_decomposition_with_unit_weights_is_the_elbo_estimate(gen):
    log_px, log_qz_x, log_pz, z, mean, logvar = decomposition_inputs(gen)
    got = decomposed_objective(log_px, log_qz_x, log_pz, z, mean, logvar, 1000, ELBO_WEIGHTS)
    torch.testing.assert_close(got, log_px - log_qz_x + log_pz, rtol=0, atol=1e-12)


def brute_force_terms(log_px, log_qz_x, log_pz, z, mean, logvar, n_data):
    """The four beta-TCVAE terms with minibatch-weighted sampling, by explicit loops."""
    m, n = z.shape
    z, mean, var = z.numpy(), mean.numpy(), np.exp(logvar.numpy())
    dens = np.empty((m, m, n))
    for i in range(m):
        for j in range(m):
            dens[i, j] = np.exp(-0.5 * (z[i] - mean[j]) ** 2 / var[j]) / np.sqrt(2 * np.pi * var[j])
    log_qz = np.log(dens.prod(-1).sum(1) / (m * n_data))
    log_qz_marginals = np.log(dens.sum(1) / (m * n_data)).sum(-1)
    return (
        log_px.numpy(),
        -(log_qz_x.numpy() - log_qz),
        -(log_qz - log_qz_marginals),
        -(log_qz_marginals - log_pz.numpy()),
    )


@pytest.mark.parametrize("term", range(4))
def test_each_decomposition_term_matches_brute_force(term, gen):
    inputs = decomposition_inputs(gen, m=6, n=2)
    weights = ObjectiveWeights(*[1.0 if k == term else 0.0 for k in range(4)])
    got = decomposed_objective(*inputs, 500, weights)
    expected = brute_force_terms(*inputs, 500)[term]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_gaussian_log_density_matrix(gen):
    z, mean, logvar = randn(gen, 4, 2), randn(gen, 5, 2), randn(gen, 5, 2)
    mat = gaussian_log_density_matrix(z, mean, logvar)
    assert mat.shape == (4, 5, 2)
    # log N(z_i | mean_j, var_j) up to an additive constant (callers may add it after reducing)
    exact = Normal(mean.unsqueeze(0), torch.exp(0.5 * logvar).unsqueeze(0)).log_prob(z.unsqueeze(1))
    offset = mat - exact
    torch.testing.assert_close(offset, torch.full_like(offset, offset[0, 0, 0].item()))


def explicit_mws_log_densities(z, mean, logvar):
    """Reference for mws_log_densities: torch.logsumexp on the explicit pairwise tensor."""
    pairwise = gaussian_log_density_matrix(z, mean, logvar)  # (..., M, M, n)
    return torch.logsumexp(pairwise.sum(-1), -1), torch.logsumexp(pairwise, -2)


def mws_inputs(gen, shape, logvar=None):
    """(z, mean, logvar) with z drawn from N(mean, exp(logvar)). A number ``logvar`` gives
    every component that log-variance, with the means a few standard deviations apart so
    that several components still contribute to each z."""
    if logvar is None:
        mean, logvar = randn(gen, *shape), 0.5 * randn(gen, *shape)
    else:
        mean = 3 * math.exp(0.5 * logvar) * randn(gen, *shape)
        logvar = torch.full(shape, logvar, dtype=torch.float64)
    z = mean + torch.exp(0.5 * logvar) * randn(gen, *shape)
    return [t.requires_grad_() for t in (z, mean, logvar)]


MWS_CASES = [((9, 3), None), ((3, 7, 2), None), ((2, 2, 5, 3), None), ((3, 6, 2), -10.0)]


@pytest.mark.parametrize(("shape", "logvar"), MWS_CASES)
def test_mws_log_densities_match_explicit_logsumexp(shape, logvar, gen):
    inputs = mws_inputs(gen, shape, logvar)
    ours, reference = mws_log_densities(*inputs), explicit_mws_log_densities(*inputs)
    assert ours[0].shape == shape[:-1] and ours[1].shape == shape
    upstream = [randn(gen, *r.shape) for r in reference]  # generic gradients from above
    for got, expected in zip(ours, reference):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(sum((o * g).sum() for o, g in zip(ours, upstream)), inputs)
    expected = torch.autograd.grad(sum((r * g).sum() for r, g in zip(reference, upstream)), inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    if logvar is not None:  # with tiny variances the gradients are large, but finite
        assert all(torch.isfinite(g).all() for g in grads) and grads[0].abs().max() > 10


@pytest.mark.parametrize(("shape", "logvar"), MWS_CASES)
def test_mws_log_densities_gradcheck(shape, logvar, gen):
    assert torch.autograd.gradcheck(mws_log_densities, tuple(mws_inputs(gen, shape, logvar)))


def test_mws_log_densities_float32_matches_float64(gen):
    """In float32, as accurate as the explicit tensor, across the whole logvar range."""
    shape = (2, 64, 5)
    mean = randn(gen, *shape)
    logvar = LOGVAR_MIN + (LOGVAR_MAX - LOGVAR_MIN) * torch.rand(shape, generator=gen, dtype=torch.float64)
    z = mean + torch.exp(0.5 * logvar) * randn(gen, *shape)
    exact = explicit_mws_log_densities(z, mean, logvar)
    low = [t.float() for t in (z, mean, logvar)]
    for ours, explicit, want in zip(mws_log_densities(*low), explicit_mws_log_densities(*low), exact):
        err, explicit_err = (ours.double() - want).abs().max(), (explicit.double() - want).abs().max()
        assert err <= 2 * explicit_err + 1e-6


def test_objective_weights_schedule():
    w = AUTHORS_WEIGHTS
    total, frac = 1000, 0.6
    horizon = frac * total
    assert objective_weights("elbo", 0, total, w, frac) == ELBO_WEIGHTS
    assert objective_weights("reweighted", 999, total, w, frac) == w
    assert objective_weights("annealed", 0, total, w, frac) == w
    assert objective_weights("annealed", int(horizon), total, w, frac) == ELBO_WEIGHTS
    assert objective_weights("annealed", total, total, w, frac) == ELBO_WEIGHTS
    half = objective_weights("annealed", int(horizon / 2), total, w, frac)
    assert half.reconstruction == pytest.approx((100.0 + 1.0) / 2)
    assert half.dimension_kl == pytest.approx((10.0 + 1.0) / 2)
    assert half.total_correlation == pytest.approx(0.5)
    # monotone in between
    recs = [objective_weights("annealed", s, total, w, frac).reconstruction for s in range(0, 700, 50)]
    assert all(a >= b for a, b in zip(recs, recs[1:]))
    with pytest.raises(ValueError, match="objective"):
        objective_weights("beta", 0, total, w, frac)


def test_interpolate_clips_t():
    a, b = ObjectiveWeights(2, 2, 2, 2), ObjectiveWeights(0, 0, 0, 0)
    assert a.interpolate(b, -1.0) == a
    assert a.interpolate(b, 5.0) == b
    assert a.interpolate(b, 0.25) == ObjectiveWeights(1.5, 1.5, 1.5, 1.5)


# ---------------------------------------------------------------- the module
def tiny_module(**overrides) -> IVAEModule:
    torch.manual_seed(0)
    cfg = IVAEConfig(x_dim=4, aux_dim=3, n_latent=2, hidden_dim=8, n_layers=2, **overrides)
    return IVAEModule(cfg).double()


def batch(gen, m=10):
    x = randn(gen, m, 4)
    u = torch.eye(3, dtype=torch.float64)[torch.arange(m) % 3]
    return x, u


@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
def test_module_loss_elbo_weights(prior, gen):
    module = tiny_module(prior=prior)
    x, u = batch(gen)
    out = module.loss(x, u, n_data=100, weights=ELBO_WEIGHTS, generator=torch.Generator().manual_seed(3))
    assert out.elbo.shape == out.reconstruction.shape == out.kl.shape == (1, 10)
    assert out.loss.shape == (1,)  # one loss per stacked model
    assert torch.equal(out.loss, -out.elbo.mean(-1))
    assert torch.equal(out.elbo, out.reconstruction - out.kl)
    # the terms are the decoder's log-likelihood at a reparameterised sample and the analytic KL
    mean, logvar = module.inference(x, u)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=torch.Generator().manual_seed(3),
                                                      dtype=torch.float64)
    torch.testing.assert_close(out.reconstruction, module.decoder.log_prob(x, z))
    torch.testing.assert_close(out.kl, module.prior.kl_from_gaussian(mean, logvar, module.prior_params(u)))
    assert torch.all(out.kl >= 0)  # an exact KL divergence
    # the ELBO has a gradient; the reported terms do not
    assert out.loss.requires_grad and not out.elbo.requires_grad


def test_module_loss_reweighted_is_the_decomposition(gen):
    module = tiny_module()
    x, u = batch(gen)
    out = module.loss(x, u, n_data=100, weights=AUTHORS_WEIGHTS, generator=torch.Generator().manual_seed(4))
    mean, logvar = module.inference(x, u)
    z = module.reparameterize(mean, logvar, torch.Generator().manual_seed(4))
    log_px = module.decoder.log_prob(x, z)
    log_qz_x = Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    log_pz = module.prior.log_prob(z, module.prior_params(u)).sum(-1)
    expected = decomposed_objective(log_px, log_qz_x, log_pz, z, mean, logvar, 100, AUTHORS_WEIGHTS)
    torch.testing.assert_close(out.loss, -expected.mean(-1))
    # the reported ELBO is still the plain one
    torch.testing.assert_close(out.elbo, out.reconstruction - out.kl)
    assert not torch.allclose(out.loss, -out.elbo.mean(-1))


def test_module_elbo_method_matches_loss(gen):
    module = tiny_module()
    x, u = batch(gen)
    out = module.loss(x, u, n_data=10, generator=torch.Generator().manual_seed(5))
    elbo = module.elbo(x, u, n_samples=1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(elbo, out.elbo)


def test_unconditional_module_ignores_u(gen):
    module = tiny_module(conditional=False)
    x, u = batch(gen)
    mean_a, logvar_a = module.inference(x, u)
    mean_b, logvar_b = module.inference(x, u.flip(0))
    torch.testing.assert_close(mean_a, mean_b)
    torch.testing.assert_close(logvar_a, logvar_b)


def test_encoder_uses_u_when_conditional(gen):
    enc = GaussianEncoder(4, 3, 2, **NET).double()
    x = randn(gen, 3, 4)
    u = torch.eye(3, dtype=torch.float64)
    mean_a, _ = enc(x, u)
    mean_b, _ = enc(x, u.flip(0))
    assert not torch.allclose(mean_a, mean_b)


@pytest.mark.parametrize("field, value, match", [("prior", "cauchy", "prior"), ("decoder", "poisson", "decoder"),
                                                 ("activation", "swish42", "activation")])
def test_module_rejects_unknown_components(field, value, match):
    with pytest.raises(ValueError, match=match):
        IVAEModule(IVAEConfig(x_dim=2, aux_dim=2, n_latent=2, **{field: value}))


# ---------------------------------------------------------------- building blocks
def test_xtanh_and_mlp_shapes():
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(XTanh(0.1)(x), torch.tanh(x) + 0.1 * x)
    mlp = MLP(3, 5, hidden_dim=7, n_layers=3)
    assert mlp(torch.zeros(4, 3)).shape == (1, 4, 5)
    assert sum(isinstance(m, StackedLinear) for m in mlp.modules()) == 3
    single = MLP(3, 5, n_layers=1)
    assert [type(m) for m in single.net] == [StackedLinear]
    stacked = MLP(3, 5, hidden_dim=7, n_models=4)
    assert stacked(torch.zeros(4, 3)).shape == stacked(torch.zeros(4, 4, 3)).shape == (4, 4, 5)
    with pytest.raises(ValueError, match="n_layers"):
        MLP(3, 5, n_layers=0)


def test_bounded_logvar():
    raw = torch.tensor([-100.0, 0.0, 100.0])
    torch.testing.assert_close(bounded_logvar(raw), torch.tensor([LOGVAR_MIN, 0.0, LOGVAR_MAX]))


# ---------------------------------------------------------------- stacked models (restarts)
def test_stacked_linear_is_k_independent_linear_maps(gen):
    layer = StackedLinear(3, 2, n_models=4).double()
    x = randn(gen, 5, 3)
    out = layer(x)
    for k in range(4):
        expected = torch.nn.functional.linear(x, layer.weight[k], layer.bias[k, 0])
        torch.testing.assert_close(out[k], expected)
    # nn.Linear's initialisation range U(-1/sqrt(in), 1/sqrt(in))
    assert layer.weight.abs().max() <= 1 / math.sqrt(3)
    with pytest.raises(ValueError, match="n_models"):
        StackedLinear(3, 2, n_models=0)


@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
def test_stacked_models_train_independently(prior, gen):
    """Each stacked model's loss depends on its own parameters only, and select(k) is model k."""
    module = tiny_module(prior=prior, n_models=3, prior_net="table")
    x, u = batch(gen)
    out = module.loss(x, u, n_data=100, weights=AUTHORS_WEIGHTS, generator=torch.Generator().manual_seed(1))
    assert out.loss.shape == (3,) and out.elbo.shape == (3, 10)
    # the gradient of model 1's loss is zero on every other model's slice
    grads = torch.autograd.grad(out.loss[1], list(module.parameters()), allow_unused=True)
    for g in grads:
        if g is not None:
            assert torch.all(g[[0, 2]] == 0) and g.shape[0] == 3
    for k in range(3):
        single = module.select(k)
        assert single.config.n_models == 1
        torch.testing.assert_close(single.inference(x, u)[0][0], module.inference(x, u)[0][k])
        torch.testing.assert_close(single.generative(x[:, :2])[0], module.generative(x[:, :2])[k])
    with pytest.raises(IndexError):
        module.select(3)


def test_stacked_decomposition_equals_per_model_decomposition(gen):
    m, n, k = 12, 3, 2
    mean, logvar = randn(gen, k, m, n), 0.5 * randn(gen, k, m, n)
    z = mean + torch.exp(0.5 * logvar) * randn(gen, k, m, n)
    log_px, log_qz_x, log_pz = randn(gen, k, m), randn(gen, k, m), randn(gen, k, m)
    stacked = decomposed_objective(log_px, log_qz_x, log_pz, z, mean, logvar, 500, AUTHORS_WEIGHTS)
    for i in range(k):
        single = decomposed_objective(log_px[i], log_qz_x[i], log_pz[i], z[i], mean[i], logvar[i], 500,
                                      AUTHORS_WEIGHTS)
        torch.testing.assert_close(stacked[i], single)
