"""Training in several processes: who this process is, and the few things the processes agree on.

``torchrun`` starts the processes and sets RANK, WORLD_SIZE and LOCAL_RANK; torch.distributed
carries the messages (gloo on CPU, NCCL on GPU) and DistributedDataParallel averages the
gradients during the backward pass. This module only joins them up. A process started without
torchrun is a team of one, for which every method here does nothing.

What the processes share, beyond gradients: the loss of each update (so that a non-finite
loss or an out-of-memory piece skips the update everywhere), and after every batch whether to
stop and how much of the time budget is used, as the first process (rank 0, the leader, the
only one that validates and writes) sees it.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Team:
    rank: int = 0  # this process, 0 to size - 1
    size: int = 1  # processes training together, on every machine
    local_rank: int = 0  # this process on its machine: the GPU it takes

    @property
    def leader(self) -> bool:
        return self.rank == 0

    @classmethod
    def join(cls, device: torch.device) -> Team:
        """The team torchrun started this process in, its process group set up; one process alone
        without torchrun. ``device`` is the kind of device the run asked for."""
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            return cls()
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, device: torch.device) -> torch.device:
        """Each process on a machine takes a GPU of its own: cuda:LOCAL_RANK."""
        if device.type != "cuda" or self.size == 1:
            return device
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step calls: ``model`` itself, or DistributedDataParallel around
        it, which starts every process from the leader's weights and averages the gradients. The
        models' buffers (the position table, the output list) are constants that every process
        builds alike, so they are not broadcast before every forward: that collective would hang
        the out-of-memory recovery (nmt.learner), where the process that failed runs one forward
        more than the others."""
        return model if self.size == 1 else DistributedDataParallel(model, broadcast_buffers=False)

    def accumulating(self, trainee: nn.Module):
        """Around a backward pass whose gradients are not to be averaged yet: all but the last
        piece of an update add up locally, and the last one's backward averages the sum."""
        return trainee.no_sync() if isinstance(trainee, DistributedDataParallel) else contextlib.nullcontext()

    def sum(self, values: Tensor) -> Tensor:
        """``values`` added up over every process (in place, and returned)."""
        if self.size > 1:
            dist.all_reduce(values)
        return values

    def from_leader(self, values: Tensor) -> Tensor:
        """The leader's ``values`` on every process (in place, and returned)."""
        if self.size > 1:
            dist.broadcast(values, src=0)
        return values

    def object_from_leader(self, value: Any) -> Any:
        """The leader's ``value`` (plain data) on every process; the others pass None."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def leave(self, *, together: bool) -> None:
        """``together`` (every process ends here, done or stopped): wait for all of them first. A
        process that tore its group down while the leader still validated and saved sometimes
        died in gloo's teardown (SIGABRT, about one run in five on a 2-core CPU). After an error
        the others may never come, so then each leaves alone."""
        if self.size > 1 and dist.is_initialized():
            if together:
                dist.barrier()
            # The learner and its callbacks refer to each other, so DistributedDataParallel (and
            # the process group its reducer holds) would otherwise live until the interpreter
            # shuts down, and a gloo group destroyed then can abort the process (SIGABRT).
            gc.collect()
            dist.destroy_process_group()
