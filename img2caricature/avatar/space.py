"""An avatar engine's parameter space as the avatar model sees it: named parameters, each a
list of named values, of which some (the face's traits) the model sets.

A crawl stores each avatar's parameters as value indices (`params`, one column per name)
with the names and value lists in the file's attributes; a `ParamSpace` turns those
indices into one-hot codes for the imitator and into `{name: value}` choices for the
avatar server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import torch
import torch.nn.functional as F

from img2caricature import dataset
from img2caricature.errors import UserError


@dataclass
class ParamSpace:
    names: list[str]
    values: list[list[str]]           # values[i]: the names of parameter i's values, by index
    traits: list[str]                 # the parameters the model sets; the others keep `fixed`
    fixed: dict[str, int]             # non-trait parameter -> the index it is held at

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.values]

    @property
    def code_dim(self) -> int:
        return sum(self.sizes)

    @property
    def trait_index(self) -> list[int]:
        return [self.names.index(t) for t in self.traits]

    def one_hot(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, K) value indices -> (B, code_dim) concatenated one-hot codes (the imitator's input)."""
        return torch.cat([F.one_hot(indices[:, i].long(), n).float() for i, n in enumerate(self.sizes)], 1)

    def code(self, trait_codes: list[torch.Tensor]) -> torch.Tensor:
        """The imitator's input from one (relaxed) code per trait, the fixed parameters filled in."""
        batch = trait_codes[0].shape[0]
        parts = []
        for name, n in zip(self.names, self.sizes):
            if name in self.traits:
                parts.append(trait_codes[self.traits.index(name)])
            else:
                parts.append(F.one_hot(torch.full((batch,), self.fixed[name], device=trait_codes[0].device), n)
                             .to(trait_codes[0].dtype))
        return torch.cat(parts, 1)

    def choice(self, trait_indices: list[int]) -> dict[str, str]:
        """One avatar's traits, by name (what goes into NAME.avatar.json)."""
        return {t: self.values[self.names.index(t)][int(v)] for t, v in zip(self.traits, trait_indices)}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ParamSpace":
        return cls(list(d["names"]), [list(v) for v in d["values"]], list(d["traits"]),
                   {k: int(v) for k, v in d["fixed"].items()})


def read_space(path: str | Path, traits: list[str] | None = None) -> ParamSpace:
    """The space of a crawled emoji dataset. `traits`: the parameters to learn (default: every
    parameter the crawl varied); the others are held at the crawl's most common value."""
    info = dataset.info(path, "emoji")
    with h5py.File(path, "r") as f:
        values_json = f.attrs.get("param_values")
    if not info.names or values_json is None:
        raise UserError(f"{path} holds no avatar parameters: crawl one with `img2car crawl` "
                        "(e.g. --source avatar-faces)")
    values = json.loads(str(values_json))
    params = dataset.read_column(path, "params", "emoji")
    if traits is None:
        traits = [n for n, v in zip(info.names, values) if len(v) > 1]
    unknown = [t for t in traits if t not in info.names]
    if unknown:
        raise UserError(f"trait '{unknown[0]}' is not a parameter of {path} ({', '.join(info.names)})")
    fixed = {n: int(torch.from_numpy(params[:, i]).long().bincount().argmax()) if len(params) else 0
             for i, n in enumerate(info.names) if n not in traits}
    return ParamSpace(list(info.names), values, list(traits), fixed)
