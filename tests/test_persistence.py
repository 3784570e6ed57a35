"""Saving and loading fitted estimators (JSON config + safetensors weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nica
from nica import IVAE, VAE
from nica.persistence import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE


@pytest.fixture
def saved(fitted_ivae, tmp_path):
    return fitted_ivae.save(tmp_path / "model")


def test_round_trip_outputs_identical(fitted_ivae, saved, tiny_data):
    x, u = tiny_data.x, tiny_data.u
    loaded = nica.load(saved)
    assert type(loaded) is IVAE
    z = fitted_ivae.transform(x, u)
    np.testing.assert_array_equal(loaded.transform(x, u), z)
    np.testing.assert_array_equal(loaded.inverse_transform(z), fitted_ivae.inverse_transform(z))
    assert loaded.score(x, u) == fitted_ivae.score(x, u)
    np.testing.assert_array_equal(loaded.sample_posterior(x, u, n_samples=2, random_state=3),
                                  fitted_ivae.sample_posterior(x, u, n_samples=2, random_state=3))


def test_round_trip_params_and_attributes(fitted_ivae, saved):
    loaded = nica.load(saved)
    assert loaded.get_params() == fitted_ivae.get_params()
    assert loaded.config_ == fitted_ivae.config_
    assert loaded.n_features_in_ == fitted_ivae.n_features_in_
    assert loaded.n_steps_ == fitted_ivae.n_steps_
    assert loaded.seed_ == fitted_ivae.seed_
    assert loaded.elbo_ == fitted_ivae.elbo_
    assert vars(loaded.history_) == vars(fitted_ivae.history_)
    assert loaded.aux_encoder_.to_dict() == fitted_ivae.aux_encoder_.to_dict()
    np.testing.assert_array_equal(loaded.x_mean_, fitted_ivae.x_mean_)
    np.testing.assert_array_equal(loaded.x_scale_, fitted_ivae.x_scale_)
    assert not loaded.module_.training  # inference mode


def test_saved_directory_layout(saved):
    assert sorted(p.name for p in saved.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    config = json.loads((saved / CONFIG_FILE).read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["estimator"] == "IVAE"
    # no temporary directories are left beside the model
    assert [p.name for p in saved.parent.iterdir()] == ["model"]


def test_loaded_model_can_be_saved_again(saved, tmp_path, tiny_data):
    loaded = nica.load(saved)
    again = nica.load(loaded.save(tmp_path / "again"))
    np.testing.assert_array_equal(again.transform(tiny_data.x, tiny_data.u),
                                  loaded.transform(tiny_data.x, tiny_data.u))


def test_string_label_model_round_trip(tmp_path, tiny_data, fast_params):
    u = np.array([f"seg{k:02d}" for k in tiny_data.u])
    model = IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, u)
    loaded = nica.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, u), model.transform(tiny_data.x, u))
    with pytest.raises(ValueError, match="not seen at fit time"):
        loaded.transform(tiny_data.x[:2], np.array(["seg99", "seg00"]))


def test_continuous_u_model_round_trip(tmp_path, tiny_data, fast_params):
    u = np.column_stack([np.linspace(0, 1, 500), np.sin(np.arange(500))])
    model = IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, u)
    loaded = nica.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, u), model.transform(tiny_data.x, u))


def test_generator_random_state_and_numpy_scalars_are_saved(tmp_path, tiny_data, fast_params):
    params = {**fast_params, "hidden_dim": np.int64(8), "learning_rate": np.float64(0.01)}
    model = IVAE(np.int64(3), **params, random_state=np.random.default_rng(0)).fit(tiny_data.x, tiny_data.u)
    loaded = nica.load(model.save(tmp_path / "m"))
    assert loaded.random_state is None
    assert loaded.seed_ == model.seed_
    assert loaded.n_components == 3 and loaded.hidden_dim == 8
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  model.transform(tiny_data.x, tiny_data.u))


def test_vae_stays_vae(fitted_vae, tmp_path, tiny_data):
    loaded = nica.load(fitted_vae.save(tmp_path / "vae"))
    assert type(loaded) is VAE
    assert loaded.config_.conditional is False
    np.testing.assert_array_equal(loaded.transform(tiny_data.x), fitted_vae.transform(tiny_data.x))


# ---------------------------------------------------------------- overwriting
def test_save_refuses_existing_directory(fitted_ivae, saved):
    before = (saved / WEIGHTS_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted_ivae.save(saved)
    assert (saved / WEIGHTS_FILE).read_bytes() == before


def test_save_overwrite_replaces(saved, tiny_data, fast_params):
    other = IVAE(3, **fast_params, random_state=99).fit(tiny_data.x, tiny_data.u)
    other.save(saved, overwrite=True)
    loaded = nica.load(saved)
    assert loaded.seed_ == 99
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  other.transform(tiny_data.x, tiny_data.u))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_overwrite_refuses_a_directory_that_is_not_a_model(fitted_ivae, tmp_path):
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not a saved nica model"):
        fitted_ivae.save(precious, overwrite=True)
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_save_creates_parent_directories(fitted_ivae, tmp_path):
    path = fitted_ivae.save(tmp_path / "a" / "b" / "model")
    assert (path / CONFIG_FILE).is_file()


# ---------------------------------------------------------------- broken directories
def test_load_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        nica.load(tmp_path / "nothing")


def test_load_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=CONFIG_FILE):
        nica.load(tmp_path / "empty")


def test_load_corrupt_config(saved):
    (saved / CONFIG_FILE).write_text('{"format_version": 1, "estim')
    with pytest.raises(ValueError, match="corrupt"):
        nica.load(saved)


@pytest.mark.parametrize("content", ["[1, 2, 3]", '"a string"', "null"])
def test_load_config_that_is_not_an_object(saved, content):
    (saved / CONFIG_FILE).write_text(content)
    with pytest.raises(ValueError, match="not a valid nica model"):
        nica.load(saved)


@pytest.mark.parametrize("key", ["estimator", "params", "module", "aux", "x_mean", "history", "seed"])
def test_load_config_missing_a_key(saved, key):
    config = json.loads((saved / CONFIG_FILE).read_text())
    del config[key]
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a valid nica model"):
        nica.load(saved)


def test_load_future_format_version(saved):
    config = json.loads((saved / CONFIG_FILE).read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"format {FORMAT_VERSION + 1}.*upgrade nica"):
        nica.load(saved)


def test_load_missing_format_version(saved):
    config = json.loads((saved / CONFIG_FILE).read_text())
    del config["format_version"]
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format None"):
        nica.load(saved)


def test_load_unknown_estimator(saved):
    config = json.loads((saved / CONFIG_FILE).read_text())
    config["estimator"] = "TCL"
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a valid nica model"):
        nica.load(saved)


def test_load_truncated_weights(saved):
    weights = saved / WEIGHTS_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=WEIGHTS_FILE):
        nica.load(saved)


def test_load_garbage_weights(saved):
    (saved / WEIGHTS_FILE).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError):
        nica.load(saved)


def test_load_missing_weights(saved):
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises((ValueError, FileNotFoundError), match=WEIGHTS_FILE):
        nica.load(saved)


def test_load_weights_of_another_architecture(saved, tmp_path, tiny_data, fast_params):
    other = IVAE(3, **{**fast_params, "hidden_dim": 9, "max_steps": 2}, random_state=0).fit(tiny_data.x, tiny_data.u)
    other_dir = other.save(tmp_path / "other")
    (saved / WEIGHTS_FILE).write_bytes((other_dir / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match="not a valid nica model"):
        nica.load(saved)


# ---------------------------------------------------------------- models saved elsewhere
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("version", range(1, FORMAT_VERSION + 1))
def test_committed_fixture_model_reproduces_its_latents(version):
    # a tiny model saved in each model format so far; see tests/fixtures/make_saved_model.py
    model = nica.load(FIXTURES / f"saved_model_v{version}")
    with np.load(FIXTURES / f"saved_model_v{version}_data.npz") as f:
        x, u, z = f["x"], f["u"], f["z"]
    assert type(model) is IVAE and model.n_components == 2 and model.n_features_in_ == 3
    # another torch or CPU may round differently in the last bits, never more
    np.testing.assert_allclose(model.transform(x, u), z, rtol=1e-5, atol=1e-6)
    if version >= 3:  # the restarts are kept with the model
        restarts = model.transform_restarts(x, u)
        assert restarts.shape == (2, len(x), 2)
        np.testing.assert_allclose(restarts[model.selected_restart_], z, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, estimator", [("iflow", "IFlow"), ("iflow_pca", "IFlow"),
                                             ("temporal", "TemporalIVAE")])
def test_committed_fixtures_of_other_estimators_reproduce_their_latents(name, estimator):
    # saved by the nica of their day; see tests/fixtures/make_saved_estimators.py
    model = nica.load(FIXTURES / f"saved_{name}_v3")
    with np.load(FIXTURES / f"saved_{name}_v3_data.npz") as f:
        x, u, z = f["x"], f["u"], f["z"]
    assert type(model).__name__ == estimator and model.n_components == 2
    np.testing.assert_allclose(model.transform(x), z, rtol=1e-5, atol=1e-6)
    assert np.isfinite(model.score(x, u))


def test_committed_switching_fixture_of_format_3_loads_with_one_restart_and_score_in_x_units():
    # saved before the skeleton (format 3: no restarts' record, the history under "elbo",
    # score_ in the units of the flow's standardised input); see make_saved_estimators.py
    path = FIXTURES / "saved_switching_v3"
    model = nica.load(path)
    with np.load(FIXTURES / "saved_switching_v3_data.npz") as f:
        x, z = f["x"], f["z"]
    assert type(model).__name__ == "SwitchingTemporalFlow" and model.n_regimes_ == 2
    np.testing.assert_allclose(model.transform(x), z, rtol=1e-5, atol=1e-6)
    assert model.selected_restart_ == 0 and model.restart_score_.shape == (1,)
    assert model.score_ == pytest.approx(model.history_.score[-1] - model.projection_.log_jacobian())
    assert nica.persistence.model_info(path)["restarts"] == {"n_restarts": 1, "selected": 0}


def _rewrite_weights(path, convert):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path / WEIGHTS_FILE))
    save_file({k: convert(v) for k, v in state.items()}, str(path / WEIGHTS_FILE))


def test_float64_weights_load_with_identical_outputs(fitted_ivae, saved, tiny_data):
    import torch

    _rewrite_weights(saved, lambda t: t.to(torch.float64))
    loaded = nica.load(saved)
    assert all(p.dtype == torch.float32 for p in loaded.module_.parameters())
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  fitted_ivae.transform(tiny_data.x, tiny_data.u))


def test_model_fitted_on_cuda_loads_on_cpu(fitted_ivae, saved, tiny_data, monkeypatch):
    import safetensors.torch

    config = json.loads((saved / CONFIG_FILE).read_text())
    config["params"]["device"] = "cuda"
    config["fitted_device"] = "cuda:0"
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    seen = {}
    real_load_file = safetensors.torch.load_file

    def spy(path, device="cpu"):
        seen["device"] = device
        return real_load_file(path, device=device)

    monkeypatch.setattr(nica.persistence, "load_file", spy)
    loaded = nica.load(saved)
    assert seen["device"] == "cpu"  # tensors are read onto the CPU, wherever they were saved from
    assert loaded.device_.type == "cpu" and loaded.device == "cuda"
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  fitted_ivae.transform(tiny_data.x, tiny_data.u))


def test_load_refuses_non_finite_weights(saved):
    import torch

    _rewrite_weights(saved, lambda t: torch.full_like(t, float("nan")))
    with pytest.raises(ValueError, match="corrupt: tensor.*NaN"):
        nica.load(saved)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(x_mean=c["x_mean"][:-1]), "x_mean and x_scale must hold 3 values"),
    (lambda c: c.update(x_scale=[0.0] * len(c["x_scale"])), "x_scale > 0"),
])
def test_load_refuses_inconsistent_standardisation(saved, change, match):
    config = json.loads((saved / CONFIG_FILE).read_text())
    change(config)
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        nica.load(saved)


def test_load_bad_device(saved):
    with pytest.raises(ValueError, match="device 'tpu9'"):
        nica.load(saved, device="tpu9")


def test_load_a_file_instead_of_a_directory(saved):
    with pytest.raises(FileNotFoundError, match="expected a directory"):
        nica.load(saved / CONFIG_FILE)


def test_model_info(fitted_ivae, saved):
    from nica.persistence import model_info

    info = model_info(saved)
    assert info["estimator"] == "IVAE" and info["format_version"] == FORMAT_VERSION
    assert info["nica_version"] == nica.__version__ and info["torch_version"]
    assert info["seed"] == fitted_ivae.seed_ and info["params"]["max_steps"] == 200
    assert info["data"] == {"n_features": 3, "n_components": 3, "feature_names": None,
                            "u": {"kind": "categorical", "n_labels": 10, "labels": list(range(10))}}
    assert info["model"] == {"prior": "gaussian", "selection_rule": "agreement", "unused_params": []}
    training = info["training"]
    assert training["n_steps"] == 200 and training["n_epochs"] == len(fitted_ivae.history_.elbo)
    assert training["final_elbo"] == pytest.approx(fitted_ivae.elbo_)
    assert training["elbo"][-1] == pytest.approx(fitted_ivae.elbo_)
    assert training["stopped_early"] is False
    json.dumps(info)  # JSON-ready


def test_format_1_models_load(fitted_ivae, saved, tiny_data):
    """Format 1 stored unstacked tensors and no restart record: converted on load."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(saved / WEIGHTS_FILE))
    save_file({k: v.reshape(v.shape[2:]) if k.endswith("logvar") else v[0].reshape(-1) if k.endswith("bias")
               else v[0] for k, v in state.items()}, str(saved / WEIGHTS_FILE))
    config = json.loads((saved / CONFIG_FILE).read_text())
    config["format_version"] = 1
    del config["restarts"], config["module"]["n_models"]
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    loaded = nica.load(saved)
    np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                  fitted_ivae.transform(tiny_data.x, tiny_data.u))
    assert loaded.selected_restart_ == 0
    assert loaded.elbo_ == pytest.approx(fitted_ivae.elbo_)


@pytest.mark.parametrize("estimator", ["IVAE", "IFlow"])
def test_weights_of_another_model_are_refused_by_name(tmp_path, tiny_data, estimator):
    """Weights that do not fit the saved configuration (another latent dimension) raise
    a ValueError saying so, for every save format (one shared loader)."""
    cls = getattr(nica, estimator)
    fit = lambda n: cls(n, max_steps=5, random_state=0, device="cpu").fit(tiny_data.x, tiny_data.u)  # noqa: E731
    first, other = fit(3).save(tmp_path / "a"), fit(2).save(tmp_path / "b")
    (first / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    # fewer weights than the configuration's network: refused before it is built
    with pytest.raises(ValueError, match="describes a network of .* parameters but weights.safetensors holds"
                                         "|do not fit the saved configuration"):
        nica.load(first)
    # more weights than it, of other shapes: refused by the loader, naming the mismatch
    first, other = fit(2).save(tmp_path / "c"), fit(3).save(tmp_path / "d")
    (first / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match="describes a network of .* parameters but weights.safetensors holds"
                                         "|do not fit the saved configuration"):
        nica.load(first)


def test_aux_encoder_describes_u():
    from nica._validation import AuxEncoder

    labels = AuxEncoder().fit(np.array(["a", "b", "a"]), 3).describe()
    assert labels == {"kind": "categorical", "n_labels": 2, "labels": ["a", "b"]}
    assert AuxEncoder().fit(np.linspace(0, 1, 50)[:, None] * [1, 2], 50).describe() == {"kind": "continuous", "dim": 2}
