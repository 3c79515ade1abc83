"""DDP set-up under ``torchrun``: which process this is, and averaging across processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pdekit.devices import default_device


@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly one-process) DDP job.

    Args:
        rank: this process's rank among all processes (``RANK``).
        replicas: the number of processes (``WORLD_SIZE``).
        local_rank: its rank on this node (``LOCAL_RANK``), which picks its GPU.
    """

    rank: int = 0
    replicas: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.replicas > 1


def init_from_environment() -> Process:
    """Returns this process's place, starting the process group when launched by ``torchrun``.

    ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the backend is NCCL on the
    process's default device when that is a GPU (``pdekit.devices.default_device(local_rank)``, which
    becomes the current CUDA device) and gloo otherwise. Without them this is a single process and
    nothing is started. A rank started by torchrun's agent exits when the agent dies (a SIGKILL of
    ``torchrun`` otherwise leaves its ranks training on, orphaned; measured): a watchdog thread
    checks that its parent is still the agent (``pdekit.online.workers.exit_with_parent``).

    Returns:
        The ``Process``.
    """
    replicas = int(os.environ.get("WORLD_SIZE", "1"))
    if replicas == 1:
        return Process()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if "TORCHELASTIC_RUN_ID" in os.environ and not dist.is_initialized():  # started by torchrun's agent, our parent
        from pdekit.online.workers import exit_with_parent  # here: training sits above online only for this watchdog

        exit_with_parent(os.getppid(), death_signal=False)
    if not dist.is_initialized():
        device = default_device(local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Process(rank, replicas, local_rank)


def sum_across_processes(values: torch.Tensor, process: Process) -> torch.Tensor:
    """Returns ``values`` summed over all processes (itself when there is one)."""
    if process.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(process: Process) -> None:
    """Waits until every process has reached this point (nothing to wait for in one process)."""
    if process.distributed:
        dist.barrier()
