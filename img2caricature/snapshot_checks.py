"""Is a snapshot what it claims to be? Checked before any network is built from it.

A checkpoint from the internet (or a damaged one) must fail as one line, not as a
KeyError, a `size mismatch`, a math domain error or a 70 TB allocation. So, for each
kind of snapshot:

1. its parts are there and its config reads (unknown keys and wrong types are refused by
   `config.from_dict`), with every size inside sane bounds (the tables below);
2. the network the config describes is built on PyTorch's meta device (shapes only, no
   memory) and must not be absurdly large;
3. the snapshot's state dict must have exactly that network's keys, shapes and dtypes.

The checks are tables keyed by snapshot kind and by encoder architecture: a new kind or
architecture adds a row. An architecture without a row gets steps 2 and 3 only, and may
leave its weights out (a pretrained encoder whose weights ship elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from img2caricature.config import from_dict
from img2caricature.errors import UserError

MAX_PARAMETERS = 500_000_000  # 2 GB of float32: far above any model of this project


@dataclass(frozen=True)
class Bounds:
    """Sane values of a config's fields: name -> (min, max), for numbers and lists of numbers."""
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    weights_required: bool = True


# ---- the tables -----------------------------------------------------------------------

_WIDTHS = (1, 8192)

ENCODER_ARCHS: dict[str, Bounds] = {
    "compact": Bounds({"widths": _WIDTHS, "embedding_dim": (1, 65536), "input_size": (8, 1024),
                       "num_classes": (0, 1_000_000), "crop_fraction": (0.05, 1.0)}),
    "inception-resnet-v1": Bounds({"input_size": (32, 1024), "num_classes": (0, 1_000_000),
                                   "crop_fraction": (0.05, 1.0)}),
}


def _dtn(snapshot: dict, where: str) -> None:
    from img2caricature.nets.dtn import Generator, GeneratorConfig

    cfg = config_of(snapshot, "generator_config", GeneratorConfig, where,
                    Bounds({"input_dim": (1, 65536), "output_size": (8, 1024), "widths": _WIDTHS}))
    state_of(snapshot, "generator", lambda: Generator(cfg), where)
    encoder = part(snapshot, "encoder", where)
    dim = check_encoder(encoder, f"{where}: its encoder")
    if dim is not None and dim != cfg.input_dim:
        raise UserError(f"{where}: its encoder gives {dim}-d features but its generator takes {cfg.input_dim}")


def _cyclegan(snapshot: dict, where: str) -> None:
    from img2caricature.nets.cyclegan import ResnetGenerator, ResnetGeneratorConfig

    cfg = config_of(snapshot, "generator_config", ResnetGeneratorConfig, where,
                    Bounds({"size": (8, 2048), "ngf": (1, 1024), "n_down": (0, 6), "n_blocks": (0, 64)}))
    state_of(snapshot, "generator", lambda: ResnetGenerator(cfg), where)


TRANSLATORS: dict[str, Callable[[dict, str], None]] = {"dtn": _dtn, "cyclegan": _cyclegan}


# ---- entry points ---------------------------------------------------------------------

def check_translator(snapshot: Any, where: str) -> None:
    """A photo->emoji snapshot (dtn.pt, cyclegan.pt), or UserError."""
    snapshot = _mapping(snapshot, where, "a model snapshot")
    kind = snapshot.get("kind")
    check = TRANSLATORS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise UserError(f"{where} holds {kind if isinstance(kind, str) else 'no model kind'}, "
                        f"not a photo->emoji model ({' or '.join(TRANSLATORS)})")
    check(snapshot, where)


def check_encoder(snapshot: Any, where: str) -> int | None:
    """An encoder snapshot (encoder.pt, or a DTN's f), or UserError. Returns its feature size."""
    from img2caricature.nets.encoder import Encoder, EncoderConfig

    snapshot = _mapping(snapshot, where, "an encoder snapshot")
    if snapshot.get("kind", "encoder") != "encoder":
        raise UserError(f"{where} holds {snapshot.get('kind')!s:.40}, not an encoder")
    raw = part(snapshot, "config", where)
    arch = raw.get("arch", EncoderConfig.arch)
    bounds = ENCODER_ARCHS.get(arch, Bounds(weights_required=False)) if isinstance(arch, str) else Bounds()
    cfg = config_of(snapshot, "config", EncoderConfig, where, bounds)
    if cfg.arch != "compact":
        cfg.pretrained = ""  # as encoder_from_snapshot: weights come from the snapshot, never a download
    if "state_dict" not in snapshot and not bounds.weights_required:
        return None
    net = state_of(snapshot, "state_dict", lambda: Encoder(cfg), where)
    return net.dim


# ---- the steps ------------------------------------------------------------------------

def part(snapshot: dict, key: str, where: str) -> dict:
    if key not in snapshot:
        raise UserError(f"{where} has no {key!r}: not a complete snapshot (damaged, or from another program)")
    return _mapping(snapshot[key], f"{where}: {key!r}", "a table")


def config_of(snapshot: dict, key: str, cls: type, where: str, bounds: Bounds):
    """The dataclass config under `key`, types checked, numbers inside `bounds`."""
    cfg = from_dict(cls, part(snapshot, key, where), source=f"{where}: {key}")
    for name, (lo, hi) in bounds.limits.items():
        value = getattr(cfg, name, None)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (int, float)) and not lo <= v <= hi:
                raise UserError(f"{where}: {key} {name} = {value!r} is outside the sane range {lo:g}..{hi:g}")
        if isinstance(value, (list, tuple)) and not value:
            raise UserError(f"{where}: {key} {name} is empty")
    return cfg


def state_of(snapshot: dict, key: str, build: Callable[[], nn.Module], where: str) -> nn.Module:
    """Build the configured network on the meta device and hold the state dict against it."""
    try:
        with torch.device("meta"):
            net = build()
    except (ValueError, ArithmeticError, RuntimeError, TypeError, IndexError) as err:
        raise UserError(f"{where}: its config describes no valid network ({err})") from None
    expected = net.state_dict()
    n = sum(t.numel() for t in expected.values())
    if n > MAX_PARAMETERS:
        raise UserError(f"{where}: its config describes a network of {n:,} parameters, "
                        f"more than the {MAX_PARAMETERS:,} any model here has")
    state = part(snapshot, key, where)
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {str(extra[0])!r:.60}"
        raise UserError(f"{where}: its {key} {what} ({len(missing)} missing, {len(extra)} unexpected): "
                        "the weights don't belong to its config")
    for name, want in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor):
            raise UserError(f"{where}: {key} {name} is a {type(got).__name__}, not a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise UserError(f"{where}: {key} {name} is {_shape(got)} but its config needs {_shape(want)}")
        if got.is_floating_point() != want.is_floating_point():
            raise UserError(f"{where}: {key} {name} holds {got.dtype}, not {want.dtype}")
    return net


def _mapping(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where} holds a {type(value).__name__}, not {what}")
    return value


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "a scalar"
