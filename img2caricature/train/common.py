"""Small helpers the trainers share: sub-configs, mixed precision, a GAN's optimisers and a
frozen discriminator for the generator's step. (Batches and inference in
chunks are img2caricature.batches, augmentation img2caricature.augment, sample grids
img2caricature.grids: evaluation uses them too.)"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, TypeVar

import torch
from torch import nn

from img2caricature.batches import downscale, map_batches, random_batch  # noqa: F401  (callers from before the move)
from img2caricature.train import distributed
from img2caricature.train.precision import CpuBf16, cpu_has_bf16, use_cpu_bf16  # noqa: F401

T = TypeVar("T")


def sub_config(cls: type[T], flat: Any, **extra: Any) -> T:
    """Build dataclass `cls` from the same-named fields of a flat config."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dataclasses.asdict(flat).items() if k in names}
    return cls(**{**values, **extra})


def autocast(device: torch.device, cpu_bf16: CpuBf16 = False):
    """fp16 autocast on CUDA (with a GradScaler); on the CPU bfloat16 where `cpu_bf16` says so
    (true, or "auto" and measured faster: see precision.py; no scaler needed, bfloat16 has
    float32's range), else plain float32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if use_cpu_bf16(cpu_bf16):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda")


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """`module` (DDP unwrapped) with no parameter gradients: a generator's step needs gradients
    through D to the generator, never D's own, and computing them costs a third of D's backward."""
    module = distributed.unwrap(module)
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


@dataclass
class GANOptimizers:
    """A GAN's two Adam optimisers and grad scalers, and their part of the training state."""
    g: torch.optim.Optimizer
    d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler

    @classmethod
    def adam(cls, g_params: Iterable[nn.Parameter], d_params: Iterable[nn.Parameter], lr_g: float, lr_d: float,
             betas: tuple[float, float], device: torch.device) -> "GANOptimizers":
        return cls(torch.optim.Adam(g_params, lr=lr_g, betas=betas), torch.optim.Adam(d_params, lr=lr_d, betas=betas),
                   grad_scaler(device), grad_scaler(device))

    def state(self) -> dict[str, Any]:
        return {"scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state(self, extra: dict[str, Any]) -> None:
        self.scaler_g.load_state_dict(extra["scaler_g"])
        self.scaler_d.load_state_dict(extra["scaler_d"])


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """zero_grad, (scaled) backward, step: the end of every training step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def detached(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A step's losses for logging: tensors cut from the graph (floats only when logged)."""
    return {k: v.detach() for k, v in losses.items()}
