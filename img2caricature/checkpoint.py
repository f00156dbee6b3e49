"""Checkpoint files: state dicts and plain values only, written atomically, read with
`weights_only=True` so that a checkpoint from the internet cannot run code."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from img2caricature.atomic import replacing
from img2caricature.errors import UserError


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write to a temporary file beside `path`, fsync, then rename into place."""
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on a raw pickle's protocol: the error below says it all
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated zip, a file that is not a checkpoint
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(loaded, dict):  # every checkpoint here is a table; a bare tensor or list is not one
        raise UserError(f"{path} holds a {type(loaded).__name__}, not a checkpoint of img2caricature")
    return loaded


def rng_state() -> dict[str, Any]:
    """The RNG state a resumed run needs to continue as if it was never stopped."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype("uint32"), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
