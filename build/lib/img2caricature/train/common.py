"""Small helpers the trainers share: sub-configs, batches from RAM, mixed precision, inference in chunks."""

from __future__ import annotations

import dataclasses
import functools
from contextlib import nullcontext
from typing import Any, Callable, TypeVar

import torch
import torch.nn.functional as F

T = TypeVar("T")


def sub_config(cls: type[T], flat: Any, **extra: Any) -> T:
    """Build dataclass `cls` from the same-named fields of a flat config."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dataclasses.asdict(flat).items() if k in names}
    return cls(**{**values, **extra})


@functools.cache  # asked by autocast() at every step; the answer never changes
def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX512-BF16 / AMX); without it
    bfloat16 is emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, cpu_bf16: bool = False):
    """fp16 autocast on CUDA (with a GradScaler); on the CPU bfloat16 when asked for and
    native (no scaler needed: bfloat16 has float32's range), else plain float32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if cpu_bf16 and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda")


def random_batch(indices: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Indices of a random batch (global torch RNG, so a resumed run draws the same batches)."""
    return indices[torch.randint(len(indices), (batch_size,))]


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256,
                device: torch.device | None = None) -> torch.Tensor:
    """Apply `fn` to `x` in chunks (moving each to `device`), results concatenated on the CPU."""
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        out.append(fn(chunk.to(device) if device is not None else chunk).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def downscale(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images to size x size by area averaging (how emoji meet a 64x64 generator)."""
    from img2caricature import dataset

    return dataset.to_uint8(F.interpolate(dataset.to_float(images_u8), size=size, mode="area"))
