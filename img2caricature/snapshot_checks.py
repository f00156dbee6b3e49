"""Is a snapshot what it claims to be? Checked before any network is built from it.

A checkpoint from the internet (or a damaged one) must fail as one line, not as a
KeyError, a `size mismatch`, a math domain error or a 70 TB allocation. So, for each
kind of snapshot (registry.py's schema, after `registry.upgrade`):

1. its parts are there and its config reads (unknown keys and wrong types are refused by
   `config.from_dict`), with every size inside sane bounds (the tables below);
2. the network the config describes is built on PyTorch's meta device (shapes only, no
   memory) and must not be absurdly large;
3. the snapshot's state dict must have exactly that network's keys, shapes and dtypes.

The checks are tables: KINDS by snapshot kind, ENCODER_BOUNDS by encoder architecture. An
architecture without a row (a plugin's) is still built through `registry.ENCODERS` and its
weights held against it (steps 2 and 3).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from img2caricature.config import from_dict
from img2caricature.errors import UserError

MAX_PARAMETERS = 500_000_000  # 2 GB of float32: far above any model of this project
MAX_LIST = 64                 # longest list in a config (widths): a longer one is damage, not a model

Bounds = dict[str, tuple[float, float]]   # config field -> (min, max), for numbers and lists of numbers

_WIDTHS = (1, 8192)
_FRAMING: Bounds = {"input_size": (8, 1024), "crop_fraction": (0.05, 1.0), "crop_shift": (-0.5, 0.5)}
ENCODER_BOUNDS: dict[str, Bounds] = {
    "compact": {**_FRAMING, "widths": _WIDTHS, "embedding_dim": (1, 65536), "num_classes": (0, 1_000_000)},
    "inception-resnet-v1": {**_FRAMING, "input_size": (32, 1024), "num_classes": (0, 1_000_000)},
    "dlib-resnet-v1": {**_FRAMING, "input_size": (32, 1024), "embedding_dim": (1, 65536)},
}


def check_snapshot(snapshot: Any, where: str) -> dict:
    """The snapshot in registry.py's schema, checked; or a one-line UserError. Kinds without a
    row in KINDS pass through (the registry says what it cannot rebuild)."""
    from img2caricature import registry

    snapshot = _table(snapshot, where, "a model snapshot")
    try:
        snapshot = registry.upgrade(snapshot)
    except (KeyError, TypeError, AttributeError, ValueError):
        raise UserError(f"{where} is not a complete snapshot (damaged, or from another program)") from None
    kind = snapshot.get("kind")
    check = KINDS.get(kind) if isinstance(kind, str) else None
    if check is not None:
        check(snapshot, where)
    return snapshot


# ---- per kind ---------------------------------------------------------------------------

def _encoder(snapshot: dict, where: str) -> int:
    """Checks an encoder snapshot; returns its feature size."""
    from img2caricature import registry

    config = _part(_part(snapshot, "config", where), "encoder", f"{where}: config")
    arch = snapshot.get("arch") or config.get("arch", "compact")
    if not isinstance(arch, str) or arch not in registry.ENCODERS:
        raise UserError(f"{where}: encoder {str(arch)!r:.40} is not known to this install "
                        f"(known: {', '.join(sorted(registry.ENCODERS))})")
    if arch in ENCODER_BOUNDS:
        from img2caricature.nets.encoder import EncoderConfig

        _bounded(from_dict(EncoderConfig, config, source=f"{where}: encoder config"), ENCODER_BOUNDS[arch],
                 where, "encoder config")
    net = _held_against(snapshot, "encoder", lambda: registry.ENCODERS[arch].build(config), where)
    return int(net.dim)


def _dtn(snapshot: dict, where: str) -> None:
    from img2caricature.nets.dtn import Generator, GeneratorConfig

    cfg = _config(snapshot, "generator", GeneratorConfig, where,
                  {"input_dim": (1, 65536), "output_size": (8, 1024), "widths": _WIDTHS})
    _held_against(snapshot, "generator", lambda: Generator(cfg), where)
    encoder = _table(_part(snapshot, "encoder", where, table=False), f"{where}: its 'encoder'", "an encoder snapshot")
    if encoder.get("kind") != "encoder":
        raise UserError(f"{where}: its 'encoder' holds {str(encoder.get('kind'))!r:.40}, not an encoder snapshot")
    dim = _encoder(encoder, f"{where}: its encoder")
    if "colour" in _part(snapshot, "state_dicts", where):   # the colour code beside f(x) (nets/colour_code.py)
        from img2caricature.nets.colour_code import ColourCode, ColourCodeConfig

        colour_cfg = _config(snapshot, "colour", ColourCodeConfig, where, {"knots": (2, 1024)})
        dim += _held_against(snapshot, "colour", lambda: ColourCode(colour_cfg), where).dim
    if "encoder2" in snapshot:   # g reads a second f's representation too (DTNConfig.g_reads_f2)
        encoder2 = _table(snapshot["encoder2"], f"{where}: its 'encoder2'", "an encoder snapshot")
        dim += _encoder(encoder2, f"{where}: its encoder2")
    if dim != cfg.input_dim:
        raise UserError(f"{where}: its encoder gives {dim}-d features but its generator takes {cfg.input_dim}")


def _cyclegan(snapshot: dict, where: str) -> None:
    from img2caricature.nets.cyclegan import ResnetGenerator, ResnetGeneratorConfig

    cfg = _config(snapshot, "generator", ResnetGeneratorConfig, where,
                  {"size": (8, 2048), "ngf": (1, 1024), "n_down": (0, 6), "n_blocks": (0, 64)})
    _held_against(snapshot, "generator", lambda: ResnetGenerator(cfg), where)


KINDS: dict[str, Callable[[dict, str], object]] = {"encoder": _encoder, "dtn": _dtn, "cyclegan": _cyclegan}


# ---- the steps --------------------------------------------------------------------------

def _table(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where} holds a {type(value).__name__}, not {what}")
    return value


def _part(snapshot: dict, key: str, where: str, table: bool = True) -> Any:
    if key not in snapshot:
        raise UserError(f"{where} has no {key!r}: not a complete snapshot (damaged, or from another program)")
    return _table(snapshot[key], f"{where}: {key!r}", "a table") if table else snapshot[key]


def _config(snapshot: dict, net: str, cls: type, where: str, bounds: Bounds):
    config = _part(_part(snapshot, "config", where), net, f"{where}: config")
    return _bounded(from_dict(cls, config, source=f"{where}: {net} config"), bounds, where, f"{net} config")


def _bounded(cfg, bounds: Bounds, where: str, what: str):
    """`cfg` with every bounded number inside its range, and no absurdly long list."""
    for name, value in vars(cfg).items():
        if isinstance(value, (list, tuple)) and not 0 < len(value) <= MAX_LIST:
            raise UserError(f"{where}: {what} {name} has {len(value)} entries")
        if name not in bounds:
            continue
        lo, hi = bounds[name]
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (int, float)) and not lo <= v <= hi:  # `not`: NaN is outside too
                raise UserError(f"{where}: {what} {name} = {value!r} is outside the sane range {lo:g}..{hi:g}")
    return cfg


def _held_against(snapshot: dict, net: str, build: Callable[[], nn.Module], where: str) -> nn.Module:
    """Build the configured network on the meta device and hold the snapshot's weights against it."""
    try:
        with torch.device("meta"):
            module = build()
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    except (ValueError, ArithmeticError, RuntimeError, TypeError, IndexError, KeyError) as err:
        raise UserError(f"{where}: its {net} config describes no valid network ({err})") from None
    expected = module.state_dict()
    n = sum(t.numel() for t in expected.values())
    if n > MAX_PARAMETERS:
        raise UserError(f"{where}: its {net} config describes a network of {n:,} parameters, "
                        f"more than the {MAX_PARAMETERS:,} any model here has")
    state = _part(_part(snapshot, "state_dicts", where), net, f"{where}: state_dicts")
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {str(extra[0])!r:.60}"
        raise UserError(f"{where}: its {net} weights {what} ({len(missing)} missing, {len(extra)} unexpected): "
                        "they don't belong to its config")
    for name, want in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor):
            raise UserError(f"{where}: {net} weight {name} is a {type(got).__name__}, not a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise UserError(f"{where}: {net} weight {name} is {_shape(got)} but its config needs {_shape(want)}")
        if got.is_floating_point() != want.is_floating_point():
            raise UserError(f"{where}: {net} weight {name} holds {got.dtype}, not {want.dtype}")
    return module


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "a scalar"
