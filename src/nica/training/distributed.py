"""Data-parallel training across processes with torch's own DDP, launched by ``torchrun``.

    torchrun --nproc_per_node 4 -m nica.cli fit data.npz --n-components 5 --out model

Under torchrun (``WORLD_SIZE`` > 1) a fit joins the process group (NCCL on GPUs, one GPU
per process by ``LOCAL_RANK``; gloo on CPUs). Every process holds the same model, draws
the same permutation and takes its own slice of each global batch of
``batch_size x world_size`` rows; DDP averages the gradients, so the replicas stay
identical. Only rank 0 writes checkpoints and outputs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    """True inside a multi-process ``torchrun`` launch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; the device this process trains on."""
    if not launched_by_torchrun() or not dist.is_available():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_true(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process (so all take the same branch)."""
    if rank_and_size()[1] == 1:
        return flag
    value = torch.tensor(1.0 if flag else 0.0, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over processes (itself outside a process group)."""
    if rank_and_size()[1] == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / rank_and_size()[1]
