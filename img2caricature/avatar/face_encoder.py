"""The face encoder f of an avatar model, found by a name that travels in its snapshot.

    default           the f inside the shipped DTN (img2caricature/models/default.pt; since
                      2026-12-03 dlib's ResNet in float16, before it a compact f), copied
                      into the avatar model, so a model keeps the f it learned with
    dlib-resnet-v1    dlib's face ResNet in pure PyTorch (nets/dlib_resnet.py), and any other
                      pretrained encoder `--encoder` takes by name (nets/encoder.py)
    PATH              an encoder.pt (`img2car pretrain-encoder`) or a dtn.pt (its f)

Every f takes face crops in [-1, 1] at any size (it crops and resizes for itself), gives
(B, d) from `encode`, and is frozen. A snapshot records f by name plus a fingerprint of its
weights, so a model is never run with an f other than the one it learned; an f that is a
file (default, PATH) travels inside the snapshot instead, in float16.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from img2caricature import checkpoint
from img2caricature.errors import UserError
from img2caricature.registry import upgrade

DEFAULT = "default"


def named() -> list[str]:
    from img2caricature.registry import named_encoders

    return [DEFAULT, *named_encoders()]


def _frozen(f: nn.Module) -> nn.Module:
    f.eval()
    f.requires_grad_(False)
    return f


def encoder_snapshot_of(spec: str) -> dict | None:
    """The encoder snapshot an avatar model embeds for this f: the shipped DTN's f (that file
    may be replaced by a newer DTN with another f), an encoder.pt, or a dtn.pt's f. None for
    a pretrained name, whose weights come from an installed package."""
    from img2caricature.registry import named_encoders

    if spec in named_encoders():
        return None
    if spec == DEFAULT:
        from img2caricature.caricature import default_model_path

        if not default_model_path().is_file():
            raise UserError("f 'default' needs the DTN shipped in the package (img2caricature/models/default.pt)")
        spec = str(default_model_path())
    elif not Path(spec).is_file():
        raise UserError(f"unknown face encoder '{spec}': name one of {', '.join(named())}, or an encoder.pt path")
    snap = upgrade(checkpoint.load(spec))
    if snap.get("kind") == "encoder":
        return snap
    if snap.get("kind") == "dtn":
        return snap["encoder"]
    raise UserError(f"{spec} is neither an encoder.pt nor a dtn.pt, and not one of the named f: "
                    f"{', '.join(named())}")


def half_weights(snapshot: dict) -> dict:
    """An encoder snapshot with float16 weights: half the bytes in a shipped model, and f's
    output moves by less than e can notice (the training run uses the rounded f too)."""
    snapshot = upgrade(snapshot)
    state = {k: v.half() if v.is_floating_point() else v for k, v in snapshot["state_dicts"]["encoder"].items()}
    return {**snapshot, "state_dicts": {"encoder": state}}


def load_face_encoder(spec: str, embedded: dict | None = None) -> nn.Module:
    """f by name or path (or from an `embedded` encoder snapshot)."""
    from img2caricature.registry import encoder_from_snapshot, load_encoder_snapshot, named_encoders

    if embedded is None and spec in named_encoders():
        embedded = load_encoder_snapshot(spec)
    snapshot = upgrade(embedded if embedded is not None else encoder_snapshot_of(spec))
    state = {k: v.float() if v.is_floating_point() else v for k, v in snapshot["state_dicts"]["encoder"].items()}
    return _frozen(encoder_from_snapshot({**snapshot, "state_dicts": {"encoder": state}}))


def fingerprint(f: nn.Module) -> str:
    """A short hash of f's weights: the same name must mean the same network."""
    h = hashlib.sha256()
    for name, tensor in sorted(f.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().half().numpy().tobytes())  # blind to float16 rounding
    return h.hexdigest()[:16]


def f_record(spec: str) -> dict:
    """What a snapshot stores about its f (train with `f_from_record` of it, so that the run
    uses exactly the f the snapshot will carry)."""
    embedded = encoder_snapshot_of(spec)
    if embedded is not None:
        embedded = half_weights(embedded)
    f = load_face_encoder(spec, embedded)
    return {"name": spec if embedded is None or spec == DEFAULT else Path(spec).name,
            "fingerprint": fingerprint(f), "embedded": embedded, "dim": int(encode_dim(f))}


def f_from_record(record: dict) -> nn.Module:
    f = load_face_encoder(record["name"], record.get("embedded"))
    if record.get("embedded") is None and fingerprint(f) != record["fingerprint"]:
        raise UserError(f"this avatar model was trained with another f than the '{record['name']}' "
                        "installed now: retrain it with `img2car train-avatar`")
    return f


@torch.no_grad()
def encode_dim(f: nn.Module) -> int:
    return int(getattr(f, "dim", 0) or f.encode(torch.zeros(1, 3, 152, 152)).shape[1])
