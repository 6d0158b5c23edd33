"""Process groups under ``torchrun``: who this process is, and the few collectives gdbm needs.

``torchrun --nproc-per-node N -m gdbm fit|backmap ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`from_environment` joins them
into one process group (gloo on CPU, nccl on CUDA). Without those variables gdbm runs as one
process and none of this does anything.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    """This process's place among the processes of a run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs, outputs and progress bars."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """``name`` (cpu, cuda) as this process's device: each rank on a node takes its own GPU."""
        device = torch.device(name)
        if device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, device: torch.device) -> DistributedDataParallel:
        """``module`` in DDP with its buffers (constants) never re-broadcast after the start."""
        ids = [device.index] if device.type == "cuda" else None
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(
            DistributedDataParallel).parameters else {"broadcast_buffers": False})  # renamed in torch 2.13
        return DistributedDataParallel(module, device_ids=ids, **no_sync)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each number averaged over the ranks that report it (a rank's batch may lack a term)."""
        if not self.enabled:
            return values
        names: list[list[str]] = [[] for _ in range(self.world_size)]
        dist.all_gather_object(names, sorted(values))
        keys = sorted(set().union(*names))
        t = torch.tensor([[values.get(k, 0.0), float(k in values)] for k in keys], dtype=torch.float64)  # [n, 2]
        if dist.get_backend() == "nccl":
            t = t.to(torch.device("cuda", self.local_rank))
        dist.all_reduce(t)
        return {k: total / count for k, (total, count) in zip(keys, t.tolist())}

    def close(self) -> None:
        """Leave the process group together (a rank that leaves alone can hang rank 0's exit)."""
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def in_torchrun() -> bool:
    """True when started by ``torchrun`` (or another launcher setting ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_environment(device: str = "cpu", join: bool = True) -> Distributed:
    """This process's rank under ``torchrun`` (one process otherwise); with ``join``, also join the
    process group (gloo for CPU, nccl for CUDA): needed for collectives, not for sharing out files."""
    if not in_torchrun():
        return Distributed()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if join and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo")
    return Distributed(rank, world, local)
