"""Device choice, seeding and logging: the few things every command sets up the same way."""

from __future__ import annotations

import logging
import os
import random

from img2caricature.errors import UserError

log = logging.getLogger("img2caricature")


def pick_device(name: str = "auto"):
    """`auto` -> CUDA when present, else CPU. Asking for CUDA without one is a user error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s" if not debug else "%(levelname)s %(name)s: %(message)s",
    )


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
