"""Models by name, and the one snapshot schema they are saved in.

Encoders (f): a name -> how to rebuild the network from its snapshot config, and, for a
published frozen f, how to make it ready by name (`img2car train-dtn --encoder NAME`, no
pretraining run). An encoder module has `cfg` (a dataclass whose `arch` is its name here),
`dim`, and `encode(images in [-1, 1], any size) -> (B, dim)`.

Translators (photo -> emoji): a snapshot kind -> how to rebuild the callable from it.

Registering one is one line, here or in a plugin module:

    register_encoder("my-f", build=my_f_from_config, pretrained=load_my_f)
    register_translator("my-kind", my_translator_from_snapshot)

A snapshot (schema 2) holds plain values and state dicts only:
    kind         "encoder", "dtn", "cyclegan", ...: the entry that rebuilds it
    schema       2
    config       {net name: its config as a dict}
    state_dicts  {net name: its state dict}
    split        the held-out split's record (file, hashes of its parts), or None
    + plain extras: step, data paths, held-out lists; a DTN's `encoder` is f's own snapshot
Snapshots written before the schema (the shipped default.pt among them) read through `upgrade`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from img2caricature.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

SCHEMA = 2


@dataclass(frozen=True)
class EncoderKind:
    build: Callable[[dict[str, Any]], "nn.Module"]              # the network from its config; weights come after
    pretrained: Callable[[], "nn.Module"] | None = None        # a ready, frozen f, named by a string


def _encoder(config: dict[str, Any]) -> "nn.Module":
    from img2caricature.config import from_dict
    from img2caricature.nets.encoder import Encoder, EncoderConfig

    cfg = from_dict(EncoderConfig, config, source="encoder checkpoint")
    cfg.pretrained = ""  # the weights come from the snapshot, never from a download
    return Encoder(cfg)


def _dlib() -> "nn.Module":
    from img2caricature.nets.encoder import dlib_encoder

    return dlib_encoder()


def _dtn(snapshot: dict[str, Any]) -> "nn.Module":
    from img2caricature.translate import dtn_translator

    return dtn_translator(snapshot)


def _cyclegan(snapshot: dict[str, Any]) -> "nn.Module":
    from img2caricature.nets.cyclegan import translator_from_cyclegan_snapshot

    return translator_from_cyclegan_snapshot(snapshot)


ENCODERS: dict[str, EncoderKind] = {
    "compact": EncoderKind(_encoder),
    "inception-resnet-v1": EncoderKind(_encoder),
    "dlib-resnet-v1": EncoderKind(_encoder, pretrained=_dlib),   # dlib's face ResNet, read from its .dat file
}
TRANSLATORS: dict[str, Callable[[dict[str, Any]], "nn.Module"]] = {
    "dtn": _dtn,
    "cyclegan": _cyclegan,
}


def register_encoder(name: str, build: Callable[[dict[str, Any]], "nn.Module"],
                     pretrained: Callable[[], "nn.Module"] | None = None) -> None:
    ENCODERS[name] = EncoderKind(build, pretrained)


def register_translator(kind: str, from_snapshot: Callable[[dict[str, Any]], "nn.Module"]) -> None:
    TRANSLATORS[kind] = from_snapshot


def named_encoders() -> list[str]:
    """Encoders usable by name alone (published, frozen)."""
    return sorted(n for n, e in ENCODERS.items() if e.pretrained is not None)


# -- the snapshot schema ---------------------------------------------------------------------

def state_dict(module: "nn.Module") -> dict[str, "torch.Tensor"]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def snapshot(kind: str, nets: dict[str, "nn.Module"], split: dict[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
    """A snapshot of `nets` (each with a dataclass `cfg`): kind, schema, configs, state dicts, split."""
    return {"kind": kind, "schema": SCHEMA,
            "config": {name: dataclasses.asdict(net.cfg) for name, net in nets.items()},
            "state_dicts": {name: state_dict(net) for name, net in nets.items()},
            "split": split, **extra}


def upgrade(snap: dict[str, Any]) -> dict[str, Any]:
    """Any snapshot -> schema 2. Before the schema: an encoder kept `config` / `state_dict`, a
    translator `generator_config` / `generator` (and a DTN its f under `encoder`)."""
    if not isinstance(snap, dict):
        raise UserError("the checkpoint holds no model snapshot")
    if snap.get("schema", 1) >= SCHEMA:
        return snap
    snap = dict(snap)
    if snap.get("kind") == "encoder" and "state_dict" in snap:
        snap["config"] = {"encoder": snap.pop("config")}
        snap["state_dicts"] = {"encoder": snap.pop("state_dict")}
    elif "generator" in snap:
        snap["config"] = {"generator": snap.pop("generator_config")}
        snap["state_dicts"] = {"generator": snap.pop("generator")}
    if isinstance(snap.get("encoder"), dict):
        snap["encoder"] = upgrade(snap["encoder"])
    snap.setdefault("split", None)
    snap["schema"] = SCHEMA
    return snap


def load_snapshot(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    from img2caricature import checkpoint
    from img2caricature.snapshot_checks import check_snapshot

    return check_snapshot(checkpoint.load(path, map_location), str(path))  # upgraded, schema and sizes checked


def frozen(module: "nn.Module") -> "nn.Module":
    """Eval mode, no gradients: a loaded model is used, never trained further."""
    module.eval()
    module.requires_grad_(False)
    return module


def _load_weights(net: "nn.Module", snap: dict[str, Any], name: str) -> "nn.Module":
    net.load_state_dict(snap["state_dicts"][name])
    return frozen(net)


# -- encoders ----------------------------------------------------------------------------------

def encoder_arch(snap: dict[str, Any]) -> str:
    snap = upgrade(snap)
    return snap.get("arch") or snap["config"]["encoder"].get("arch", "compact")


def encoder_from_snapshot(snap: dict[str, Any]) -> "nn.Module":
    from img2caricature.snapshot_checks import check_snapshot

    snap = check_snapshot(snap, "the encoder snapshot")  # before anything is built
    if snap.get("kind") != "encoder":
        raise UserError(f"the snapshot holds {snap.get('kind') or 'no model kind'}, not an encoder")
    arch = encoder_arch(snap)
    if arch not in ENCODERS:
        raise UserError(f"encoder '{arch}' is not known to this install (known: {', '.join(sorted(ENCODERS))})")
    return _load_weights(ENCODERS[arch].build(snap["config"]["encoder"]), snap, "encoder")


def encoder_snapshot(encoder: "nn.Module", split: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return snapshot("encoder", {"encoder": encoder}, split=split, arch=encoder.cfg.arch, **extra)


def pretrained_encoder(name: str) -> "nn.Module":
    entry = ENCODERS.get(name)
    if entry is None or entry.pretrained is None:
        named = ", ".join(named_encoders()) or "none in this install"
        raise UserError(f"'{name}' is neither an encoder file nor a published encoder (by name: {named})")
    return frozen(entry.pretrained())


def load_encoder_snapshot(name_or_path: str | Path) -> dict[str, Any]:
    """An encoder snapshot from a file (`img2car pretrain-encoder`'s encoder.pt), or made from a
    published f named by a string."""
    path = Path(name_or_path)
    if path.is_file():
        from img2caricature import checkpoint
        from img2caricature.snapshot_checks import check_snapshot

        raw = checkpoint.load(path)
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind != "encoder":   # the kind first: the most useful thing to say about a wrong file
            raise UserError(f"{path} is not an encoder checkpoint (it holds {kind or 'something else'})")
        return check_snapshot(raw, str(path))
    if str(name_or_path) in ENCODERS and ENCODERS[str(name_or_path)].pretrained is not None:
        return encoder_snapshot(pretrained_encoder(str(name_or_path)), pretrained=str(name_or_path))
    if path.suffix == ".pt" or len(path.parts) > 1:
        raise UserError(f"checkpoint not found: {path}")
    pretrained_encoder(str(name_or_path))  # raises: the names it knows
    raise AssertionError("unreachable")


# -- translators -----------------------------------------------------------------------------

def translator_from_snapshot(snap: dict[str, Any]) -> "nn.Module":
    from img2caricature.snapshot_checks import check_snapshot

    kind = snap.get("kind") if isinstance(snap, dict) else None
    if kind not in TRANSLATORS:   # the kind first: the most useful thing to say about a wrong file
        raise UserError(f"checkpoint holds {kind or 'no model kind'}, not a photo->emoji model "
                        f"({' or '.join(sorted(TRANSLATORS))})")
    snap = check_snapshot(snap, "the model snapshot")  # before anything is built
    return frozen(TRANSLATORS[kind](snap))
