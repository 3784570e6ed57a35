"""FlatAdam and the learning-rate schedules against torch's own implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nica.training.optim import FlatAdam, LearningRateSchedule, polar_factor


def _twin_modules(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    b.load_state_dict(a.state_dict())
    return a, b


def _loss(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (module(x) ** 2).sum() + module(x).sin().sum()


def test_flat_adam_follows_torch_adam_step_for_step():
    ours_module, torch_module = _twin_modules(0)
    ours = FlatAdam(ours_module.parameters(), lr=3e-2)
    reference = torch.optim.Adam(torch_module.parameters(), lr=3e-2, foreach=False)
    generator = torch.Generator().manual_seed(1)
    for step in range(60):
        x = torch.randn(16, 3, generator=generator)
        for module, opt in ((ours_module, ours), (torch_module, reference)):
            opt.zero_grad()
            _loss(module, x).backward()
            opt.step()
        if step == 30:  # a schedule changes the step size between steps
            ours.lr = reference.param_groups[0]["lr"] = 1e-2
    for p, q in zip(ours_module.parameters(), torch_module.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_parameters_are_views_of_the_buffer_until_released():
    module, _ = _twin_modules(2)
    before = [p.detach().clone() for p in module.parameters()]
    opt = FlatAdam(module.parameters(), lr=1e-3)
    assert all(p.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr() for p in module.parameters())
    for p, q in zip(module.parameters(), before, strict=True):
        assert torch.equal(p, q)
    opt.release()
    pointers = {p.untyped_storage().data_ptr() for p in module.parameters()}
    assert len(pointers) == len(before) and opt.flat.untyped_storage().data_ptr() not in pointers


def test_state_dict_round_trip_continues_identically():
    module_a, module_b = _twin_modules(3)
    opt_a, opt_b = FlatAdam(module_a.parameters(), lr=1e-2), FlatAdam(module_b.parameters(), lr=5.0)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(4))
    for _ in range(5):
        opt_a.zero_grad()
        _loss(module_a, x).backward()
        opt_a.step()
    module_b.load_state_dict(module_a.state_dict())
    opt_b.load_state_dict(opt_a.state_dict())
    for module, opt in ((module_a, opt_a), (module_b, opt_b)):
        opt.zero_grad()
        _loss(module, x).backward()
        opt.step()
    for p, q in zip(module_a.parameters(), module_b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_missing_gradients_count_as_zero():
    module, _ = _twin_modules(5)
    opt = FlatAdam(module.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in module.parameters()]
    opt.step()  # no backward: nothing moves
    for p, q in zip(module.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_no_trainable_parameters_is_an_error():
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters"):
        FlatAdam(frozen.parameters(), lr=1e-2)


def test_mixed_dtypes_are_an_error():
    module = torch.nn.Linear(2, 2)
    module.bias.data = module.bias.data.double()
    with pytest.raises(ValueError, match="one dtype"):
        FlatAdam(module.parameters(), lr=1e-2)


class _MatrixModel(torch.nn.Module):
    """A batch of two square 4 x 4 matrices and a bias: a tiny flow-like model."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.bias = torch.nn.Parameter(torch.randn(4, generator=generator))
        self.weight = torch.nn.Parameter(torch.eye(4) + 0.3 * torch.randn(2, 4, 4, generator=generator))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x @ self.weight[0].T + self.bias) @ self.weight[1].T
        return (h**2).sum() - torch.linalg.slogdet(self.weight)[1].sum()


def test_polar_factor_is_the_nearest_orthogonal_matrix():
    m = torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q = polar_factor(m)
    torch.testing.assert_close(q @ q.transpose(-1, -2), torch.eye(5, dtype=torch.float64).expand(3, 5, 5))
    # m = Q P with P symmetric positive definite (the polar decomposition)
    p = q.transpose(-1, -2) @ m
    torch.testing.assert_close(p, p.transpose(-1, -2))
    assert bool((torch.linalg.eigvalsh(p) > 0).all())


def test_matrix_steps_have_every_singular_value_equal_to_their_step_size():
    model = _MatrixModel(0)
    opt = FlatAdam(model.parameters(), lr=0.01, matrices=[model.weight], matrix_lr_ratio=3.0)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        before = model.weight.detach().clone()
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
        singular = torch.linalg.svdvals(model.weight.detach() - before)
        torch.testing.assert_close(singular, torch.full_like(singular, 0.03), rtol=1e-4, atol=1e-6)


def test_the_other_parameters_still_take_adams_steps():
    model = _MatrixModel(2)
    bias = torch.nn.Parameter(model.bias.detach().clone())
    opt = FlatAdam(model.parameters(), lr=0.05, matrices=[model.weight])
    reference = torch.optim.Adam([bias], lr=0.05, foreach=False)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(3))
    for _ in range(10):
        opt.zero_grad()
        model.loss(x).backward()
        bias.grad = model.bias.grad.clone()  # the gradient the model saw, for torch's Adam
        opt.step()
        reference.step()
        torch.testing.assert_close(model.bias.detach(), bias.detach(), rtol=1e-6, atol=1e-7)


def test_matrix_momentum_is_part_of_the_state():
    model_a, model_b = _MatrixModel(4), _MatrixModel(4)
    opt_a = FlatAdam(model_a.parameters(), lr=0.01, matrices=[model_a.weight])
    opt_b = FlatAdam(model_b.parameters(), lr=0.01, matrices=[model_b.weight])
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(5))
    for _ in range(4):
        opt_a.zero_grad()
        model_a.loss(x).backward()
        opt_a.step()
    state = opt_a.state_dict()
    assert state["momentum"].abs().sum() > 0
    model_b.load_state_dict(model_a.state_dict())
    opt_b.load_state_dict(state)
    for model, opt in ((model_a, opt_a), (model_b, opt_b)):
        for _ in range(3):
            opt.zero_grad()
            model.loss(x).backward()
            opt.step()
    torch.testing.assert_close(model_a.weight, model_b.weight, rtol=0, atol=0)
    plain = FlatAdam(_MatrixModel(4).parameters(), lr=0.01)
    with pytest.raises(ValueError, match="another split"):
        plain.load_state_dict(state)


def test_bad_matrices_are_refused():
    model = _MatrixModel(6)
    with pytest.raises(ValueError, match="square"):
        FlatAdam(model.parameters(), lr=0.01, matrices=[model.bias])
    stranger = torch.nn.Parameter(torch.eye(3))
    with pytest.raises(ValueError, match="one of params"):
        FlatAdam(model.parameters(), lr=0.01, matrices=[stranger])


def test_a_non_finite_matrix_gradient_makes_the_matrix_non_finite():
    model = _MatrixModel(7)
    opt = FlatAdam(model.parameters(), lr=0.01, matrices=[model.weight])
    opt.zero_grad()
    model.loss(torch.randn(8, 4)).backward()
    model.weight.grad[0, 0, 0] = float("nan")
    opt.step()  # no LinAlgError from the SVD: the trainer's roll-back sees a non-finite matrix
    assert not bool(torch.isfinite(model.weight).all())


def test_cosine_schedule_matches_lambda_lr_and_ends_at_one_percent():
    module, twin = _twin_modules(6)
    opt = FlatAdam(module.parameters(), lr=0.1)
    schedule = LearningRateSchedule(opt, "cosine", max_steps=40)
    reference_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    reference = torch.optim.lr_scheduler.LambdaLR(
        reference_opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, 40) / 40)))
    for _ in range(40):
        schedule.after_step()
        reference_opt.step()  # no gradients: a no-op that keeps torch's call order
        reference.step()
        assert opt.lr == pytest.approx(reference_opt.param_groups[0]["lr"], rel=1e-12)
    assert opt.lr == pytest.approx(0.001)


def test_plateau_schedule_matches_reduce_lr_on_plateau():
    module, twin = _twin_modules(7)
    opt = FlatAdam(module.parameters(), lr=0.1)
    schedule = LearningRateSchedule(opt, "plateau", max_steps=100, factor=0.1, patience=0)
    reference_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(reference_opt, factor=0.1, patience=0)
    losses = [5.0, 4.0, 4.0, 3.0, -1.0, -1.00001, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0, -2.0]
    for loss in losses:
        schedule.after_epoch(loss)
        reference.step(loss)
        assert opt.lr == pytest.approx(reference_opt.param_groups[0]["lr"], rel=1e-12)
    assert opt.lr < 0.1 / 10 * 1.0001  # lowered at least once (torch's rule: relative to |best|)


def test_scaling_lowers_every_future_cosine_step():
    module, _ = _twin_modules(8)
    opt = FlatAdam(module.parameters(), lr=0.1)
    schedule = LearningRateSchedule(opt, "cosine", max_steps=10)
    schedule.after_step()
    before = opt.lr
    assert schedule.scale(0.5) == pytest.approx(before / 2)
    schedule.after_step()
    assert opt.lr == pytest.approx(0.05 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 2 / 10))))


@pytest.mark.slow  # torch.compile takes most of a minute on 2 cores
def test_compiled_training_matches_eager_training(tiny_data, fast_params):
    import nica

    params = {**fast_params, "max_steps": 40}
    eager = nica.IVAE(3, **params, random_state=0).fit(tiny_data.x, tiny_data.u)
    compiled = nica.IVAE(3, **params, compile=True, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert compiled.get_params()["compile"] is True
    # same model and batches; the compiled kernels may round differently
    np.testing.assert_allclose(compiled.transform(tiny_data.x, tiny_data.u),
                               eager.transform(tiny_data.x, tiny_data.u), atol=2e-3)
