"""Single process, or one process per device under `torchrun` (DDP; gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from img2caricature.runtime import pick_device


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str = "auto") -> Dist:
    """Joins the process group when launched by torchrun, else a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, pick_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), world, device)


def wrap(module: nn.Module, d: Dist) -> nn.Module:
    """DDP around a trainable module when there is more than one process."""
    if d.world == 1:
        return module
    if any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module) if d.device.type == "cuda" else module
    return nn.parallel.DistributedDataParallel(module, device_ids=[d.device] if d.device.type == "cuda" else None)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
