"""Fitting from arrays on disk (memory-mapped .npy, HDF5, zarr) through streamed mini-batches."""

from __future__ import annotations

import numpy as np
import pytest

from nica import IVAE
from nica.datasets import streaming
from nica.datasets.streaming import RowSource, column_stats, is_out_of_core, open_array

PARAMS = dict(hidden_dim=16, n_layers=2, batch_size=50, max_steps=40, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def in_memory(tiny_data):
    return IVAE(3, **PARAMS).fit(tiny_data.x, tiny_data.u)


def write(tmp_path, x, fmt):
    x = x.astype(np.float32)
    if fmt == "npy":
        np.save(tmp_path / "x.npy", x)
        return open_array(tmp_path / "x.npy")
    if fmt == "hdf5":
        h5py = pytest.importorskip("h5py")
        with h5py.File(tmp_path / "x.h5", "w") as fh:
            fh.create_dataset("x", data=x, chunks=(64, x.shape[1]))
        return open_array(tmp_path / "x.h5")
    zarr = pytest.importorskip("zarr")
    arr = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, dtype="float32", chunks=(64, x.shape[1]))
    arr[:] = x
    return open_array(tmp_path / "x.zarr")


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "zarr"])
def test_fit_from_disk_matches_in_memory_fit(tmp_path, tiny_data, in_memory, fmt):
    x_disk = write(tmp_path, tiny_data.x, fmt)
    assert is_out_of_core(x_disk)
    model = IVAE(3, **PARAMS).fit(x_disk, tiny_data.u)
    # same batches and noise; only the float rounding of the column statistics differs
    np.testing.assert_allclose(model.x_mean_, in_memory.x_mean_, rtol=1e-5, atol=1e-6)
    z_disk = model.transform(x_disk, tiny_data.u)
    np.testing.assert_allclose(z_disk, in_memory.transform(tiny_data.x, tiny_data.u), atol=2e-3)
    np.testing.assert_array_equal(z_disk, model.transform(np.asarray(x_disk), tiny_data.u))


def test_fit_reads_no_more_than_a_batch_at_a_time(tmp_path, tiny_data, monkeypatch):
    x_disk = write(tmp_path, tiny_data.x, "npy")
    sizes = []
    original = RowSource.read

    def spy(self, rows):
        sizes.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(RowSource, "read", spy)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 100)
    IVAE(3, **{**PARAMS, "n_restarts": 2}).fit(x_disk, tiny_data.u)
    assert sizes and max(sizes[:-1]) == PARAMS["batch_size"]  # the last read is the selection sample
    assert sum(s == PARAMS["batch_size"] for s in sizes) == PARAMS["max_steps"]


def test_gather_keeps_the_requested_order(tmp_path):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    source = RowSource(write(tmp_path, x, "npy"), np.zeros(2), np.ones(2), "cpu")
    rows = np.array([7, 2, 2, 9, 0])
    np.testing.assert_array_equal(source.read(rows), x[rows])


def test_column_stats_match_numpy(tmp_path):
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4)).astype(np.float32)
    stats = column_stats(write(tmp_path, x, "npy"), chunk_rows=128)
    np.testing.assert_allclose(stats.mean, x.astype(np.float64).mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats.std, x.astype(np.float64).std(0), rtol=1e-6)


def test_non_finite_rows_on_disk_are_reported_before_training(tmp_path, tiny_data):
    x = tiny_data.x.copy()
    x[123, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values \\(first at row 123\\)"):
        IVAE(3, **PARAMS).fit(write(tmp_path, x, "npy"), tiny_data.u)


def test_bad_arrays_on_disk(tmp_path, tiny_data):
    np.save(tmp_path / "three_d.npy", np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        IVAE(2, **PARAMS).fit(open_array(tmp_path / "three_d.npy"), np.arange(4))
    with pytest.raises(FileNotFoundError):
        open_array(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="reads .npy"):
        open_array(tmp_path / "x.csv") if (tmp_path / "x.csv").write_text("1") else None
    with pytest.raises(ValueError, match="u has"):
        IVAE(3, **PARAMS).fit(write(tmp_path, tiny_data.x, "npy"), tiny_data.u[:10])


def test_one_hot_rows_equal_the_dense_encoding_rows():
    import torch

    from nica._validation import AuxEncoder

    labels = np.array(["b", "a", "c", "a", "b", "c", "c"])
    aux = AuxEncoder().fit(labels, len(labels))
    dense = aux.transform(labels)
    rows = streaming.OneHotRows(aux.label_index(labels), aux.dim)
    assert rows.shape == dense.shape and len(rows) == len(labels)
    idx = torch.tensor([6, 0, 3, 3])
    np.testing.assert_array_equal(rows[idx].numpy(), dense[[6, 0, 3, 3]])
    np.testing.assert_array_equal(rows[2:5].numpy(), dense[2:5])
    assert rows[idx].dtype == torch.float32 and rows.to("cpu").device.type == "cpu"


def test_label_index_names_unseen_labels_and_refuses_continuous_u():
    from nica._validation import AuxEncoder

    aux = AuxEncoder().fit(np.array([1, 2, 3, 1, 2, 3]), 6)
    np.testing.assert_array_equal(aux.label_index(np.array([3, 1, 1, 2])), [2, 0, 0, 1])
    with pytest.raises(ValueError, match=r"not seen at fit time: \[7\]"):
        aux.label_index(np.array([1, 7, 2]))
    continuous = AuxEncoder("continuous").fit(np.linspace(0, 1, 6), 6)
    with pytest.raises(ValueError, match="categorical u only"):
        continuous.label_index(np.linspace(0, 1, 6))
