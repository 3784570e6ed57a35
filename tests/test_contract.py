"""The contract every registered estimator keeps, checked on each one (as scikit-learn's
``parametrize_with_checks``): fit, transform, score, save and load, determinism, bad input
refused before training, exact resume, divergence, restarts, clone and the parameter
protocol, and its place in the registry.

The estimators are read from the registry (:mod:`nica.base.registry`), so a new one is
checked without an edit here; ``tests/contract_toy.py`` is such an estimator, added with
its own class and module and one registration, and checked like the built-in ones. Each
runs at a tiny size (a few steps on a few hundred rows), with every parameter below that
it has (:data:`FAST`).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.base import clone

sys.path.insert(0, str(Path(__file__).parent))  # the toy's module, beside this one
import contract_toy  # noqa: E402  (its import is its registration)
import nica  # noqa: E402
import nica.base.estimator as skeleton
from nica.base import NotFittedError
from nica.base.registry import estimator_types, models
from nica.training import TrainingDivergedError, checkpoint

#: the small settings every check runs with, for the estimators that have the parameter
FAST = {"max_steps": 6, "hidden_dim": 8, "n_layers": 2, "batch_size": 64, "device": "cpu", "n_flows": 1,
        "n_bins": 2, "flow_hidden": 8, "transition_hidden": 8, "transition_layers": 2, "n_restarts": 2,
        "checkpoint_every": 2, "verbose": False}
#: latents, features
N, D = 3, 3
#: every registered estimator, by saved name (the toy of tests/contract_toy.py among them)
ESTIMATORS = sorted(estimator_types())


def _cls(name: str) -> type:
    return estimator_types()[name].cls


def make(name: str, **overrides) -> object:
    cls = _cls(name)
    params = {k: v for k, v in FAST.items() if k in cls._param_names()}
    return cls(N, **{"random_state": 0, **params, **overrides})


@pytest.fixture(scope="module")
def table():
    data = nica.make_nonstationary(N, n_segments=8, n_per_segment=40, random_state=0)
    return data.x, data.u


@pytest.fixture(scope="module")
def series():
    data = nica.make_temporal(N, lags=1, n_domains=3, n_per_domain=80, random_state=0)
    return data.x, data.u


def data_for(name: str, table, series):
    return series if getattr(_cls(name), "input_kind", "table") == "series" else table


def fitted(name: str, table, series, **overrides):
    x, u = data_for(name, table, series)
    return make(name, **overrides).fit(x, u), x, u


def assert_same_latents(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()  # the same computation on the same machine: bit for bit


# ---------------------------------------------------------------- the checks
@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_sets_the_shared_fitted_state(name, table, series):
    est = make(name)
    x, u = data_for(name, table, series)
    assert est.fit(x, u) is est
    for attribute in ("module_", "restarts_module_", "config_", "history_", "selected_restart_", "restart_scores_",
                      "restart_agreement_", "aux_encoder_", "feature_names_in_", "seed_", "device_",
                      "n_features_in_", "n_steps_", "fit_time_", "score_"):
        assert hasattr(est, attribute), attribute
    assert est.n_features_in_ == D and est.n_steps_ == FAST["max_steps"] and est.seed_ == 0
    assert np.isfinite(est.score_) and isinstance(est.score_name, str) and est.score_name
    assert str(est.score_) in est.describe_score() or f"{est.score_:.3f}" in est.describe_score()
    assert len(est.history_.score) >= 1 and est.history_.elbo is est.history_.score


@pytest.mark.parametrize("name", ESTIMATORS)
def test_transform_score_and_determinism(name, table, series):
    est, x, u = fitted(name, table, series)
    z = est.transform(x, u)
    assert z.shape == (len(x), N) and np.isfinite(z).all()
    assert np.isfinite(est.score(x, u))
    again, _, _ = fitted(name, table, series)
    assert_same_latents(again.transform(x, u), z)
    assert again.history_.score == est.history_.score
    assert_same_latents(make(name).fit_transform(x, u), z)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_save_and_load_give_the_same_model(name, table, series, tmp_path):
    est, x, u = fitted(name, table, series)
    path = est.save(tmp_path / "model")
    loaded = nica.load(path)
    assert type(loaded) is type(est) and repr(loaded) == repr(est)
    assert_same_latents(loaded.transform(x, u), est.transform(x, u))
    assert loaded.score(x, u) == est.score(x, u) and loaded.score_ == est.score_
    assert loaded.selected_restart_ == est.selected_restart_
    info = nica.persistence.model_info(path)
    assert info["estimator"] == estimator_types()[name].name
    assert {"score_name", "final_score", "score"} <= set(info["training"])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_bad_input_is_refused_before_training(name, table, series, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("training started although the input was invalid")

    monkeypatch.setattr(skeleton, "train", forbidden)
    x, u = data_for(name, table, series)
    bad_x = x.copy()
    bad_x[3, 1] = np.nan
    cases = [(bad_x, u, "NaN"), (x, u, None)]
    for X, U, match in cases[:1]:
        est = make(name)
        with pytest.raises(ValueError, match=match):
            est.fit(X, U)
        assert not hasattr(est, "module_")
    too_many = _cls(name)(N + 1, **{k: v for k, v in FAST.items() if k in _cls(name)._param_names()})
    with pytest.raises(ValueError, match="exceeds"):
        too_many.fit(x, u)
    if getattr(_cls(name), "uses_u", True):
        with pytest.raises(ValueError):
            make(name).fit(x, u[:-7])
    with pytest.raises(ValueError, match="n_restarts"):
        make(name, n_restarts=0).fit(x, u)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_resume_reaches_the_uninterrupted_fit(name, table, series, tmp_path, monkeypatch):
    x, u = data_for(name, table, series)
    whole = make(name, checkpoint_dir=tmp_path / "whole").fit(x, u)

    class Killed(Exception):
        pass

    real_save = checkpoint.Checkpointing.save

    def killed_after_the_first(self, state):
        real_save(self, state)
        raise Killed

    interrupted = make(name, checkpoint_dir=tmp_path / "part")
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.Checkpointing, "save", killed_after_the_first)
        with pytest.raises(Killed):
            interrupted.fit(x, u)
    interrupted.fit(x, u, resume=True)
    assert interrupted.history_.score == whole.history_.score
    assert_same_latents(interrupted.transform(x, u), whole.transform(x, u))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_divergence_leaves_the_last_good_model_fitted(name, table, series, monkeypatch):
    x, u = data_for(name, table, series)
    reference = make(name).fit(x, u)
    real_train = skeleton.train

    def diverging(*args, **kwargs):
        history = real_train(*args, **kwargs)
        raise TrainingDivergedError("the training loss was non-finite", history)

    monkeypatch.setattr(skeleton, "train", diverging)
    est = make(name)
    with pytest.raises(TrainingDivergedError):
        est.fit(x, u)
    assert_same_latents(est.transform(x, u), reference.transform(x, u))
    assert est.score_ == reference.score_


@pytest.mark.parametrize("name", ESTIMATORS)
def test_restarts_and_their_choice(name, table, series):
    est, x, u = fitted(name, table, series, n_restarts=2, selection="agreement")
    assert est.restart_scores_.shape == (2,) and est.restart_agreement_.shape == (2, 2)
    assert est.selected_restart_ == int(np.argmax(est.restart_scores_))
    assert est.restarts_module_.n_models == 2 and est.module_.n_models == 1
    first, _, _ = fitted(name, table, series, n_restarts=2, selection="first")
    assert first.selected_restart_ == 0
    single, _, _ = fitted(name, table, series, n_restarts=1)
    assert single.restart_agreement_ is None and single.selected_restart_ == 0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_and_the_parameter_protocol(name, table, series):
    est, x, u = fitted(name, table, series)
    params = est.get_params()
    assert list(params) == _cls(name)._param_names()
    copy = clone(est)
    assert type(copy) is type(est) and repr(copy) == repr(est) and not hasattr(copy, "module_")
    assert repr(type(est)(**params)) == repr(est)
    copy.set_params(max_steps=3)
    assert copy.max_steps == 3 and est.max_steps == FAST["max_steps"]
    with pytest.raises(ValueError, match="unknown parameter"):
        copy.set_params(no_such_parameter=1)
    signature = inspect.signature(type(est).__init__)
    assert not any(p.kind in (p.VAR_POSITIONAL,) for p in signature.parameters.values())


@pytest.mark.parametrize("name", ESTIMATORS)
def test_an_unfitted_estimator_says_so(name, table, series, tmp_path):
    x, u = data_for(name, table, series)
    est = make(name)
    with pytest.raises(NotFittedError):
        est.transform(x, u)
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "model")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_registered_for_load_and_offered_by_its_model_name(name):
    registered = estimator_types()[name]
    assert registered.save_format is not None and nica.persistence.registered_type(name) is registered
    if registered.model is not None:
        assert nica.MODELS[registered.model] is registered.cls
        assert nica.model_choice.make_model(registered.model, N).__class__ is registered.cls
    if registered.unmixing:
        from nica.causal.nonsens import UNMIXINGS

        assert UNMIXINGS[registered.model] is registered.cls


def test_every_built_in_model_is_checked():
    names = {t.model for t in estimator_types().values()}
    assert {"ivae", "vae", "beta-vae", "beta-tcvae", "flow", "latent-causal", "tcl", "temporal", "switching",
            "toy-linear-ica"} <= names
    assert set(models()) == names - {None}


# ---------------------------------------------------------------- the toy, end to end
def test_the_toy_is_one_registration_away_from_every_entry_point(table, tmp_path):
    """fit_model, nica fit --model, nica transform / info, a sweep and load all take the toy,
    which only registered itself (tests/contract_toy.py)."""
    x, u = table
    assert type(nica.fit_model(x, u, N, model="toy-linear-ica", max_steps=5)) is contract_toy.ToyLinearICA
    np.savez(tmp_path / "d.npz", x=x, u=u)
    runner = CliRunner()
    from nica.cli import main

    fit = runner.invoke(main, ["fit", str(tmp_path / "d.npz"), "--model", "toy-linear-ica", "--n-components", "3",
                               "--max-steps", "5", "--restarts", "2", "--out", str(tmp_path / "m"), "--quiet"])
    assert fit.exit_code == 0, fit.output
    assert "model toy-linear-ica" in fit.output and "kept by log-likelihood" in fit.output
    refused = runner.invoke(main, ["fit", str(tmp_path / "d.npz"), "--model", "toy-linear-ica", "--n-components",
                                   "3", "--prior", "laplace", "--out", str(tmp_path / "m2")])
    assert refused.exit_code == 1 and "--prior applies to --model ivae" in refused.output
    out = runner.invoke(main, ["transform", str(tmp_path / "m"), str(tmp_path / "d.npz"), "--out",
                               str(tmp_path / "z.npy")])
    assert out.exit_code == 0 and np.load(tmp_path / "z.npy").shape == (len(x), N)
    assert "ToyLinearICA" in runner.invoke(main, ["info", str(tmp_path / "m")]).output

    from nica.sweep import SweepConfig

    config = SweepConfig.from_dict({
        "data": {"n_sources": N, "n_segments": 5, "n_per_segment": 40, "seeds": [1]},
        "model": {"estimator": "toy-linear-ica", "seeds": [0], "max_steps": 3}, "grid": {"learning_rate": [0.1]},
    })
    assert config.estimator == "ToyLinearICA" and config.check() == []
    assert type(config.estimator_for({})) is contract_toy.ToyLinearICA


def test_the_trainer_never_sees_a_module_it_does_not_know(table):
    """The skeleton trains any LatentModule: the toy's has no fused loss and no objective."""
    est, x, u = fitted("ToyLinearICA", table, None)
    assert est.restarts_module_.fused_loss() is None
    assert est.restarts_module_.training_loss_kwargs(0, 10) == {}
    assert isinstance(est.restarts_module_, torch.nn.Module)
