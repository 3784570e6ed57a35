"""Data-parallel training under torchrun (two CPU processes, gloo backend)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
import torch.distributed as dist
import nica
data = nica.make_nonstationary(3, n_segments=10, n_per_segment=50, random_state=0)
model = nica.IVAE(3, hidden_dim=16, n_layers=2, batch_size=25, max_steps=60, device="cpu",
                  random_state=3, checkpoint_dir=sys.argv[1] + "/ck", checkpoint_every=20)
model.fit(data.x, data.u)
rank, size = dist.get_rank(), dist.get_world_size()
np.save(f"{sys.argv[1]}/z{rank}.npy", model.transform(data.x, data.u))
np.save(f"{sys.argv[1]}/elbo{rank}.npy", np.array(model.history_.elbo))
with open(f"{sys.argv[1]}/info{rank}.txt", "w") as fh:  # a file each: two prints can interleave
    fh.write(f"world {size} steps {model.n_steps_}")
"""


FLOW_SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
import torch.distributed as dist
import nica
from nica.datasets.streaming import open_array
data = nica.make_nonstationary(3, 5, n_segments=10, n_per_segment=60, random_state=0)
x = open_array(sys.argv[2])  # every process streams its rows from the same memory-mapped file
model = nica.IFlow(3, n_restarts=2, batch_size=30, max_steps=40, device="cpu", random_state=3,
                   checkpoint_dir=sys.argv[1] + "/ck", checkpoint_every=20)
model.fit(x, data.u)
rank, size = dist.get_rank(), dist.get_world_size()
np.save(f"{sys.argv[1]}/z{rank}.npy", model.transform(x))
np.save(f"{sys.argv[1]}/ll{rank}.npy", np.array(model.history_.elbo + [model.log_likelihood_]))
with open(f"{sys.argv[1]}/info{rank}.txt", "w") as fh:
    fh.write(f"world {size} steps {model.n_steps_}")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(tmp_path, script_text: str, *args: str) -> None:
    script = tmp_path / "fit.py"
    script.write_text(script_text)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         str(free_port()), str(script), str(tmp_path), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_process_ddp_fit_keeps_replicas_identical(tmp_path):
    run_two_processes(tmp_path, SCRIPT)
    for rank in (0, 1):
        assert (tmp_path / f"info{rank}.txt").read_text() == "world 2 steps 60"
    z0, z1 = np.load(tmp_path / "z0.npy"), np.load(tmp_path / "z1.npy")
    # DDP averaged the gradients: both replicas hold the same model
    np.testing.assert_array_equal(z0, z1)
    assert np.isfinite(z0).all() and z0.std(0).min() > 0
    # every replica saw the same epoch means (averaged over processes) and training improved them
    elbo0, elbo1 = np.load(tmp_path / "elbo0.npy"), np.load(tmp_path / "elbo1.npy")
    np.testing.assert_array_equal(elbo0, elbo1)
    assert elbo0[-1] > elbo0[0]
    # only rank 0 wrote the checkpoint
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["checkpoint.pt"]


def test_two_process_ddp_flow_fit_from_disk_keeps_replicas_identical(tmp_path):
    import nica

    data = nica.make_nonstationary(3, 5, n_segments=10, n_per_segment=60, random_state=0)
    np.save(tmp_path / "x.npy", data.x)
    run_two_processes(tmp_path, FLOW_SCRIPT, str(tmp_path / "x.npy"))
    for rank in (0, 1):
        assert (tmp_path / f"info{rank}.txt").read_text() == "world 2 steps 40"
    z0, z1 = np.load(tmp_path / "z0.npy"), np.load(tmp_path / "z1.npy")
    np.testing.assert_array_equal(z0, z1)  # DDP averaged the gradients: one model on both
    assert np.isfinite(z0).all() and z0.std(0).min() > 0
    ll0, ll1 = np.load(tmp_path / "ll0.npy"), np.load(tmp_path / "ll1.npy")
    np.testing.assert_array_equal(ll0, ll1)
    assert ll0[-2] > ll0[0]  # the epochs' mean log-likelihood rose
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["checkpoint.pt"]
