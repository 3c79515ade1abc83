"""DDP set-up under ``torchrun``: which process this is, and averaging across processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly one-process) DDP job."""

    rank: int = 0
    replicas: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.replicas > 1


def init_from_environment() -> Process:
    """Returns this process's place, starting the process group when launched by ``torchrun``.

    ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the backend is NCCL when CUDA is
    present and gloo otherwise. Without them this is a single process and nothing is started.
    """
    replicas = int(os.environ.get("WORLD_SIZE", "1"))
    if replicas == 1:
        return Process()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    return Process(rank, replicas, local_rank)


def sum_across_processes(values: torch.Tensor, process: Process) -> torch.Tensor:
    """Returns ``values`` summed over all processes (itself when there is one)."""
    if process.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
