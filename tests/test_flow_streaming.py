"""The identifiable flow on arrays on disk (memory-mapped .npy, HDF5, zarr): streamed
statistics and principal components, mini-batches read from disk, chunked inference."""

from __future__ import annotations

import numpy as np
import pytest

import nica
from nica import IFlow
from nica.datasets import streaming
from nica.datasets.streaming import column_stats, is_binary, open_array
from nica.flows.projection import InputProjection, ProjectedRows

FAST = dict(max_steps=60, batch_size=64, n_restarts=2, device="cpu", random_state=0)


def write(tmp_path, x, fmt):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if fmt == "npy":
        np.save(tmp_path / "x.npy", x)
        return open_array(tmp_path / "x.npy")
    if fmt == "hdf5":
        h5py = pytest.importorskip("h5py")
        with h5py.File(tmp_path / "x.h5", "w") as fh:
            fh.create_dataset("x", data=x, chunks=(64, x.shape[1]))
        return open_array(tmp_path / "x.h5")
    zarr = pytest.importorskip("zarr")
    arr = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, dtype="float32",
                          chunks=(64, x.shape[1]))
    arr[:] = x
    return open_array(tmp_path / "x.zarr")


@pytest.fixture(scope="module")
def tall():
    """3 sources in 6 observations: the flow sees the top 3 principal components."""
    return nica.make_nonstationary(3, 6, n_segments=8, n_per_segment=100, random_state=3)


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "zarr"])
def test_streamed_flow_fit_matches_the_in_memory_fit(tmp_path, tiny_data, tall, fmt):
    for i, data in enumerate((tiny_data, tall)):
        (tmp_path / str(i)).mkdir()
        x_disk = write(tmp_path / str(i), data.x, fmt)
        memory = IFlow(3, **FAST).fit(data.x, data.u)
        disk = IFlow(3, **FAST).fit(x_disk, data.u)
        # the moments of one streamed pass give the same projection up to float rounding ...
        np.testing.assert_allclose(disk.x_mean_, memory.x_mean_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(disk.x_scale_, memory.x_scale_, rtol=1e-5)
        if memory.components_ is not None:
            np.testing.assert_allclose(np.abs(disk.components_), np.abs(memory.components_), atol=1e-5)
        # ... so the same batches train the same model
        z_disk = disk.transform(x_disk)
        np.testing.assert_allclose(z_disk, memory.transform(data.x), atol=2e-3)
        np.testing.assert_allclose(disk.log_likelihood_, memory.log_likelihood_, atol=1e-3)
        # inference on out-of-core X equals inference on the same rows in memory
        np.testing.assert_array_equal(z_disk, disk.transform(np.asarray(x_disk)))
        np.testing.assert_allclose(disk.score_samples(x_disk, data.u), disk.score_samples(data.x, data.u),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(disk.predict_proba_u(x_disk), disk.predict_proba_u(data.x), atol=1e-6)


def test_streamed_fit_reads_a_batch_at_a_time_and_inference_a_chunk(tmp_path, tall, monkeypatch):
    import nica.flows._fitting as flow_estimator

    x_disk = write(tmp_path, tall.x, "npy")
    reads, blocks = [], []
    original_read, original_apply = ProjectedRows.read, InputProjection.apply

    def spy_read(self, rows):
        reads.append(len(rows))
        return original_read(self, rows)

    def spy_apply(self, x):
        blocks.append(len(x))
        return original_apply(self, x)

    monkeypatch.setattr(ProjectedRows, "read", spy_read)
    monkeypatch.setattr(InputProjection, "apply", spy_apply)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 100)
    monkeypatch.setattr(flow_estimator, "INFERENCE_CHUNK", 128)
    model = IFlow(3, **FAST).fit(x_disk, tall.u)
    # training: one mini-batch per step, then the selection sample of the restarts
    assert reads.count(FAST["batch_size"]) == FAST["max_steps"] and len(reads) == FAST["max_steps"] + 1
    # the final log-likelihood, transform and score: blocks of at most the inference chunk
    blocks.clear()
    model.transform(x_disk)
    model.score(x_disk, tall.u)
    assert blocks and max(blocks) <= 128


def test_streamed_moments_and_principal_components(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1000, 5)) @ rng.normal(size=(5, 5)) + 1e4).astype(np.float32)  # a large offset
    stats = column_stats(write(tmp_path, x, "npy"), chunk_rows=128, covariance=True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats.mean, x64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x64.T, bias=True), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(stats.std, x64.std(0), rtol=1e-8)
    streamed, memory = InputProjection.from_stats(stats, 2), InputProjection.fit(x, 2)
    np.testing.assert_allclose(np.abs(streamed.components), np.abs(memory.components), atol=1e-6)
    np.testing.assert_allclose(streamed.noise_variance, memory.noise_variance, rtol=1e-6)
    with pytest.raises(ValueError, match="covariance"):
        InputProjection.from_stats(column_stats(x), 2)


def test_wide_chunks_are_bounded_in_bytes(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 8 * 1000)
    assert streaming.chunk_rows_for(10) == 100 and streaming.chunk_rows_for(5000) == 1
    assert streaming.chunk_rows_for(1, chunk_rows=7) == 7


def test_binary_out_of_core_data_are_recognised(tmp_path):
    np.save(tmp_path / "b.npy", (np.arange(40).reshape(20, 2) % 3 == 0).astype(np.float32))
    np.save(tmp_path / "r.npy", np.linspace(0, 1, 40, dtype=np.float32).reshape(20, 2))
    assert is_binary(open_array(tmp_path / "b.npy"), chunk_rows=3)
    assert not is_binary(open_array(tmp_path / "r.npy"), chunk_rows=3)


def test_bad_out_of_core_input_is_refused_before_training(tmp_path, tiny_data):
    x = tiny_data.x.copy()
    x[77, 2] = np.inf
    with pytest.raises(ValueError, match=r"first at row 77"):
        IFlow(3, **FAST).fit(write(tmp_path, x, "npy"), tiny_data.u)
    model = IFlow(3, **FAST).fit(tiny_data.x, tiny_data.u)
    np.save(tmp_path / "wide.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="4 features but the model was fitted with 3"):
        model.transform(open_array(tmp_path / "wide.npy"))
    with pytest.raises(ValueError, match="first at row 77"):
        model.transform(open_array(tmp_path / "x.npy"))
    np.save(tmp_path / "good.npy", tiny_data.x)
    with pytest.raises(ValueError, match="u has"):
        IFlow(3, **FAST).fit(open_array(tmp_path / "good.npy"), tiny_data.u[:10])


def test_early_stopping_on_held_out_rows(tmp_path, tiny_data, monkeypatch):
    import nica.flows._fitting as flow_estimator
    from nica.training.trainer import Validation

    rule = Validation(lambda: 0.0, every=1, patience=2, tol=0.1)
    assert not rule.should_stop([1.0, 2.0, 2.05])  # two evaluations needed before the rule can fire
    assert rule.should_stop([1.0, 2.0, 2.05, 2.1]) and not rule.should_stop([1.0, 2.0, 2.05, 2.2])

    monkeypatch.setattr(flow_estimator, "VALIDATION_EVERY", 5)
    x_disk = write(tmp_path, tiny_data.x, "npy")
    reads = []
    original_read = ProjectedRows.read
    monkeypatch.setattr(ProjectedRows, "read", lambda self, rows: reads.append(rows.copy()) or original_read(self, rows))
    params = {**FAST, "max_steps": 200, "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 2}
    # a gain of 1e3 nats is never reached: the fit stops after 3 evaluations
    model = IFlow(3, **{**params, "tol": 1e3}).fit(x_disk, tiny_data.u)
    assert model.history_.stopped_early and model.n_steps_ == 15 and len(model.history_.validation) == 3
    held, trained = reads[0], np.concatenate(reads[1:-1])  # the held-out rows are read first, once
    assert len(held) == 0.2 * len(tiny_data.x) and not np.isin(trained, held).any()
    # in memory: the same split and the same decisions
    same = IFlow(3, **{**params, "tol": 1e3}).fit(tiny_data.x, tiny_data.u)
    np.testing.assert_allclose(same.history_.validation, model.history_.validation, rtol=1e-4)
    with pytest.raises(ValueError, match="validation_fraction"):
        IFlow(3, **{**params, "validation_fraction": 1.5}).fit(tiny_data.x, tiny_data.u)


class Interrupt(BaseException):
    """Raised inside training, as a kill would stop it."""


@pytest.mark.parametrize("stop", [2, 5, 9])
def test_a_streamed_early_stopped_fit_resumes_to_the_uninterrupted_fit(tmp_path, tiny_data, monkeypatch, stop):
    import nica.flows._fitting as flow_estimator
    from nica.flows.module import IFlowModule

    monkeypatch.setattr(flow_estimator, "VALIDATION_EVERY", 3)
    x_disk = write(tmp_path, tiny_data.x, "npy")
    params = {**FAST, "max_steps": 60, "early_stopping": True, "n_iter_no_change": 2, "tol": 1e3,
              "checkpoint_every": 4}
    full = IFlow(3, **params, checkpoint_dir=tmp_path / "full").fit(x_disk, tiny_data.u)
    calls = {"n": 0}
    loss = IFlowModule.loss

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == stop:
            raise Interrupt
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(IFlowModule, "loss", interrupted)
    with pytest.raises(Interrupt):
        IFlow(3, **params, checkpoint_dir=tmp_path / "cut").fit(x_disk, tiny_data.u)
    monkeypatch.setattr(IFlowModule, "loss", loss)
    resumed = IFlow(3, **params, checkpoint_dir=tmp_path / "cut").fit(x_disk, tiny_data.u, resume=True)
    assert full.history_.stopped_early and resumed.n_steps_ == full.n_steps_ == 9
    assert resumed.history_.validation == full.history_.validation
    np.testing.assert_array_equal(resumed.transform(x_disk), full.transform(x_disk))


def test_restarts_pruned_to_the_most_likely_one(tmp_path, tiny_data):
    params = {**FAST, "n_restarts": 3, "max_steps": 50, "prune_after": 20}
    model = IFlow(3, **params).fit(tiny_data.x, tiny_data.u)
    assert model.restarts_module_.config.n_models == 3 and model.module_.config.n_models == 1
    assert model.n_steps_ == 50 and any("pruned" in e["event"] for e in model.history_.events)
    # kept by the training likelihood when they were compared; only its final likelihood exists
    assert model.selected_restart_ == int(np.argmax(model.restart_scores_))
    ll = model.restart_log_likelihood_
    assert np.isfinite(ll[model.selected_restart_]) and np.isnan(np.delete(ll, model.selected_restart_)).all()
    np.testing.assert_allclose(model.log_likelihood_, model.score(tiny_data.x, tiny_data.u), rtol=1e-5)
    model.save(tmp_path / "m")
    loaded = nica.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.transform(tiny_data.x), model.transform(tiny_data.x))
    # "auto": no pruning up to 10 latents, beyond it after 5,000 steps of a larger budget
    assert IFlow(10)._prune_after(10, 10_000) is None and IFlow(20)._prune_after(20, 40_000) == 3_000
    assert IFlow(10)._max_steps(10) == 10_000 and IFlow(20)._max_steps(20) == 40_000
    assert IFlow(3, prune_after=80)._prune_after(3, 50) is None
    aux = nica._validation.AuxEncoder().fit(np.arange(50) % 25, 50)
    assert IFlow(10)._config(aux).n_models == 4 and IFlow(11)._config(aux).n_models == 16


@pytest.mark.parametrize("stop", [7, 20, 23, 41])
def test_a_pruned_fit_resumes_in_either_phase_to_the_uninterrupted_fit(tmp_path, tiny_data, monkeypatch, stop):
    from nica.flows.module import IFlowModule

    params = {**FAST, "n_restarts": 3, "max_steps": 50, "prune_after": 20, "checkpoint_every": 6}
    full = IFlow(3, **params, checkpoint_dir=tmp_path / "full").fit(tiny_data.x, tiny_data.u)
    calls = {"n": 0}
    loss = IFlowModule.loss

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == stop:
            raise Interrupt
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(IFlowModule, "loss", interrupted)
    with pytest.raises(Interrupt):
        IFlow(3, **params, checkpoint_dir=tmp_path / "cut").fit(tiny_data.x, tiny_data.u)
    monkeypatch.setattr(IFlowModule, "loss", loss)
    resumed = IFlow(3, **params, checkpoint_dir=tmp_path / "cut").fit(tiny_data.x, tiny_data.u, resume=True)
    np.testing.assert_array_equal(resumed.transform(tiny_data.x), full.transform(tiny_data.x))
    assert resumed.selected_restart_ == full.selected_restart_ and resumed.history_.elbo == full.history_.elbo
