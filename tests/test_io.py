"""File helpers and explicit randomness: atomic writes, readers, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from nica._random import as_generator, draw_seed
from nica.datasets.io import DataFileError, atomic_write, read_array, save_array, save_npz
from nica.plotting import plot_recovery


def test_atomic_write_refuses_to_replace_and_keeps_the_original(tmp_path):
    target = tmp_path / "z.npy"
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        atomic_write(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"user data"


def test_atomic_write_leaves_no_partial_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.npy"

    def half_then_fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_save_and_read_round_trip_for_each_format(tmp_path, rng):
    a = rng.normal(size=(7, 3))
    save_array(tmp_path / "a.npy", a)
    save_array(tmp_path / "a.csv", a)
    save_npz(tmp_path / "a.npz", x=a)
    np.testing.assert_array_equal(read_array(tmp_path / "a.npy"), a)
    np.testing.assert_allclose(read_array(tmp_path / "a.csv"), a)
    np.testing.assert_array_equal(read_array(tmp_path / "a.npz", "x"), a)
    with pytest.raises(FileExistsError):
        save_array(tmp_path / "a.npy", a)
    save_array(tmp_path / "a.npy", 2 * a, overwrite=True)
    np.testing.assert_array_equal(read_array(tmp_path / "a.npy"), 2 * a)


def test_csv_with_a_header_row_and_unsupported_suffixes(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n")
    np.testing.assert_array_equal(read_array(tmp_path / "h.csv"), [[1, 2], [3, 4]])
    with pytest.raises(DataFileError, match="unsupported output type"):
        save_array(tmp_path / "a.txt", np.zeros(2))
    (tmp_path / "a.txt").write_text("1")
    with pytest.raises(DataFileError, match="unsupported file type"):
        read_array(tmp_path / "a.txt")
    with pytest.raises(DataFileError, match="must end in .npz"):
        save_npz(tmp_path / "b.npy", x=np.zeros(2))


def test_seeds_are_explicit():
    assert draw_seed(5) == 5
    assert draw_seed(np.random.default_rng(0)) == draw_seed(np.random.default_rng(0))
    g = np.random.default_rng(1)
    assert as_generator(g) is g
    with pytest.raises(TypeError, match="random_state"):
        as_generator("seed")


def test_plot_recovery_writes_a_png(tmp_path, rng):
    s = rng.normal(size=(200, 2))
    path = plot_recovery(s, {"model": s[:, ::-1] + 0.1 * rng.normal(size=(200, 2))}, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_written_files_and_model_folders_get_the_umask_default_permissions(tmp_path):
    """Atomic writes go through private temporary files; what lands must be readable as an
    ordinary file would be (0644 / 0755 under the usual umask)."""
    import os
    import stat

    import nica
    from nica.training.checkpoint import Checkpointing

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == 0o644
        data = nica.make_nonstationary(2, 2, 4, 10, random_state=0)
        model = nica.IVAE(2, max_steps=2, random_state=0).fit(data.x, data.u)
        model.save(tmp_path / "model")
        assert stat.S_IMODE(os.stat(tmp_path / "model").st_mode) == 0o755
        checkpointing = Checkpointing(tmp_path / "ck", 1, fingerprint="f")
        checkpointing.save({"step": 1})
        assert stat.S_IMODE(os.stat(checkpointing.path).st_mode) == 0o644
        os.umask(0o077)
        atomic_write(tmp_path / "b.bin", lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o600
    finally:
        os.umask(old)
