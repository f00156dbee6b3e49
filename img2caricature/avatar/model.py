"""A trained avatar model as one callable: face crops -> the avatar's traits, by name.

`avatar.pt` holds the parameter encoder e, the parameter space it speaks and the name (and
fingerprint) of its face encoder f; the imitator is only needed for training, so it is not
in here, which keeps the shipped model small.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from img2caricature import checkpoint, dataset
from img2caricature.avatar.face_encoder import f_from_record
from img2caricature.avatar.policy import GenderProbe, TraitPolicy, choose, refine
from img2caricature.avatar.space import ParamSpace
from img2caricature.config import from_dict
from img2caricature.errors import UserError
from img2caricature.nets.avatar import ImitatorConfig, ParamEncoder, ParamEncoderConfig, build_imitator

DEFAULT_AVATAR_MODEL = "avatar.pt"


def default_avatar_model_path() -> Path:
    return Path(str(resources.files("img2caricature") / "models" / DEFAULT_AVATAR_MODEL))


@dataclass
class AvatarModel:
    f: nn.Module
    e: ParamEncoder
    space: ParamSpace
    policy: TraitPolicy | None = None    # None: e's most likely value of every trait (the paper's way)
    gender: GenderProbe | None = None
    imitator: nn.Module | None = None    # c: parameters -> f(render), for the policy's search

    @torch.no_grad()
    def trait_indices(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) crops in [-1, 1] -> (B, T) the most likely value of each trait."""
        logits = self.e(self.f.encode(crops))
        return torch.stack([l.argmax(1) for l in logits], 1)

    @torch.no_grad()
    def traits(self, crops: list[np.ndarray], device: torch.device | str = "cpu") -> list[dict[str, str]]:
        """uint8 RGB crops (H, W, 3) -> one {trait: value} per crop."""
        x = dataset.to_float(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)).to(device)
        if self.policy is None:
            return [self.space.choice(row) for row in self.trait_indices(x).cpu().tolist()]
        features = self.f.encode(x)
        logits = [l.cpu() for l in self.e(features)]
        genders = self.gender.predict(features.cpu()) if self.gender is not None else [None] * len(crops)
        chosen = choose(self.space, logits, self.policy, genders, crops)
        if self.imitator is None or not self.policy.search:
            return chosen
        return refine(self.space, chosen, features.cpu(), self.imitator, self.policy, genders)

    def to(self, device: torch.device | str) -> "AvatarModel":
        self.f.to(device)
        self.e.to(device)
        return self


def avatar_model_from_snapshot(snapshot: dict) -> AvatarModel:
    if snapshot.get("kind") != "avatar":
        raise UserError(f"checkpoint holds {snapshot.get('kind') or 'no model kind'}, not an avatar model "
                        "(avatar.pt from `img2car train-avatar`)")
    e = ParamEncoder(from_dict(ParamEncoderConfig, snapshot["encoder_config"], "avatar checkpoint"))
    e.load_state_dict(snapshot["encoder"])
    e.eval()
    e.requires_grad_(False)
    policy = TraitPolicy.from_dict(snapshot["policy"]) if snapshot.get("policy") else None
    gender = GenderProbe.from_dict(snapshot["gender_probe"]) if snapshot.get("gender_probe") else None
    imitator = None
    if snapshot.get("imitator"):
        imitator = build_imitator(from_dict(ImitatorConfig, snapshot["imitator"]["config"], "avatar checkpoint"))
        imitator.load_state_dict({k: v.float() for k, v in snapshot["imitator"]["state_dict"].items()})
        imitator.eval().requires_grad_(False)
    return AvatarModel(f_from_record(snapshot["f"]), e, ParamSpace.from_dict(snapshot["space"]), policy, gender,
                       imitator)


def load_avatar_model(path: str | Path | None, device: torch.device | str = "cpu") -> AvatarModel:
    if path is None:
        path = default_avatar_model_path()
        if not path.is_file():
            raise UserError("no default avatar model ships with this install: pass --model PATH "
                            "(an avatar.pt from `img2car train-avatar`)")
    return avatar_model_from_snapshot(checkpoint.load(path, map_location=device)).to(device)
