"""How an avatar model turns e's scores for a photo into the avatar's traits.

e learns the engine's parameters from f(render) and carries that over to f(photo); on its
own (argmax of every trait) it drew beards and sunglasses on a third of the women and
orange skin on a fifth of everyone. What a person would keep needs more than e's argmax:

- values a photo's avatar never takes: joke expressions, cartoon skin colours, hair the
  engine draws in a fixed colour (`never`);
- values by gender presentation, read by a linear probe on f trained on labelled photos:
  long or short hair styles, no facial hair on women (`by_gender`);
- rare accessories drawn only when e is sure: glasses and facial hair are drawn when e's
  probability of "none" falls below a threshold calibrated on the training photos, so
  that they are drawn about as often as people have them (`rates`);
- skin tone and hair colour read from the photo's pixels (`appearance.py`), which f does
  not see;
- then, the paper's f-constancy by search (`refine`): trait by trait, the allowed value
  whose avatar f would see closest to the photo, as the imitator predicts f(render).

The policy (lists and rates) is a packaged TOML (`configs/traits/avatar.toml`); the
calibrated thresholds and the probe travel inside the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from img2caricature.avatar.appearance import read_appearance
from img2caricature.avatar.space import ParamSpace
from img2caricature.config import find_config, tomllib
from img2caricature.errors import UserError
from img2caricature.probe import LinearProbe, linear_logits

GENDERS = ("female", "male")


@dataclass
class TraitPolicy:
    never: dict[str, list[str]] = field(default_factory=dict)        # trait -> values never drawn
    by_gender: dict[str, dict[str, list[str]]] = field(default_factory=dict)   # gender -> trait -> allowed
    rates: dict[str, float] = field(default_factory=dict)            # trait -> share of photos drawn with it
    appearance: bool = True                                          # skin and hair colour from the pixels
    search: list[str] = field(default_factory=list)                  # traits set by f-constancy search (`refine`)
    thresholds: dict[str, float] = field(default_factory=dict)       # trait -> max p("none") to draw it (calibrated)

    @classmethod
    def from_dict(cls, d: dict, source: str = "trait policy") -> "TraitPolicy":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{source}: unknown key '{unknown[0]}' (known keys: {', '.join(sorted(known))})")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def read_policy(spec: str | Path | None = None) -> TraitPolicy:
    """A trait policy by packaged name (`avatar`, the default) or TOML path."""
    path = find_config(spec or "avatar", "traits")
    return TraitPolicy.from_dict(tomllib.loads(path.read_text()), str(spec or "configs/traits/avatar.toml"))


def allowed_mask(space: ParamSpace, trait: str, policy: TraitPolicy, gender: str | None) -> torch.Tensor:
    """(n_values,) bool: the values of this trait a photo's avatar may take."""
    values = space.values[space.names.index(trait)]
    allowed = torch.tensor([v not in policy.never.get(trait, []) for v in values])
    only = policy.by_gender.get(gender or "", {}).get(trait)
    if only is not None:
        allowed &= torch.tensor([v in only for v in values])
    return allowed if allowed.any() else torch.ones(len(values), dtype=torch.bool)


def p_none(logits: torch.Tensor, values: list[str]) -> torch.Tensor:
    return logits.float().softmax(1)[:, values.index("none")]


def calibrate(space: ParamSpace, logits: list[torch.Tensor], policy: TraitPolicy,
              genders: list[str | None]) -> dict[str, float]:
    """For each rate-limited trait, the p("none") below which about `rate` of these photos
    (the training photos) get a value other than none, counting only the photos whose
    gender allows one (facial hair: the rate among men)."""
    out = {}
    for trait, rate in policy.rates.items():
        if trait not in space.traits:
            continue
        values = space.values[space.names.index(trait)]
        can = np.array([allowed_mask(space, trait, policy, g).sum().item() > 1 for g in genders])
        p = p_none(logits[space.traits.index(trait)], values).numpy()[can]
        if len(p):
            out[trait] = float(np.quantile(p, rate))
    return out


def choose(space: ParamSpace, logits: list[torch.Tensor], policy: TraitPolicy, genders: list[str | None],
           crops: list[np.ndarray] | None) -> list[dict[str, str]]:
    """One {trait: value} per photo from e's logits (one (B, n_i) tensor per trait)."""
    out = []
    for b, gender in enumerate(genders):
        traits = {}
        for trait, l in zip(space.traits, logits):
            values = space.values[space.names.index(trait)]
            scores = l[b].float().clone()
            scores[~allowed_mask(space, trait, policy, gender)] = -float("inf")
            if trait in policy.thresholds and "none" in values:
                if p_none(l[b:b + 1], values).item() >= policy.thresholds[trait]:
                    traits[trait] = "none"
                    continue
                scores[values.index("none")] = -float("inf")
                if torch.isinf(scores).all():
                    traits[trait] = "none"
                    continue
            traits[trait] = values[int(scores.argmax())]
        if policy.appearance and crops is not None:
            seen = read_appearance(crops[b])
            for trait, value in (("skin_color", seen.skin_color), ("hair_color", seen.hair_color),
                                 ("facial_hair_color", seen.hair_color)):
                if trait in traits and value is not None and value in space.values[space.names.index(trait)]:
                    traits[trait] = value
        out.append(traits)
    return out


@dataclass
class GenderProbe:
    """A linear probe on f (logistic regression on standardised features), as tensors."""
    mean: torch.Tensor
    std: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor
    classes: list[str]

    @classmethod
    def fit(cls, features: torch.Tensor, genders: list[str]) -> "GenderProbe":
        classes = sorted(set(genders))
        if classes != list(GENDERS):
            raise UserError(f"gender labels must be {' and '.join(GENDERS)}, not {', '.join(classes)}")
        probe = LinearProbe(features, np.array([classes.index(g) for g in genders]))
        return cls(probe.mean, probe.std, probe.w.detach(), probe.b.detach(), classes)

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> list[str]:
        logits = linear_logits(features, self.mean, self.std, self.w, self.b)
        return [self.classes[int(v)] for v in (logits > 0).tolist()]

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "w": self.w, "b": self.b, "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> "GenderProbe":
        return cls(d["mean"].float(), d["std"].float(), d["w"].float(), d["b"].float(), list(d["classes"]))


def full_indices(space: ParamSpace, traits: dict[str, str]) -> list[int]:
    """Every parameter's value index: the traits as given, the rest at the model's fixed values."""
    return [space.values[i].index(traits[name]) if name in traits else space.fixed[name]
            for i, name in enumerate(space.names)]


@torch.no_grad()
def refine(space: ParamSpace, chosen: list[dict[str, str]], f_photos: torch.Tensor, imitator: torch.nn.Module,
           policy: TraitPolicy, genders: list[str | None], sweeps: int = 2) -> list[dict[str, str]]:
    """f-constancy by search: trait by trait, the allowed value whose avatar the imitator says
    f would see closest (cosine) to the photo's f, the other traits held. Colours read from the
    pixels stay, and glasses and facial hair stay off where the policy left them off."""
    out = []
    for traits, f_x, gender in zip(chosen, f_photos, genders):
        traits = dict(traits)
        for _ in range(sweeps):
            for trait in policy.search:
                if trait not in traits or (trait in policy.thresholds and traits[trait] == "none"):
                    continue
                values = space.values[space.names.index(trait)]
                allowed = allowed_mask(space, trait, policy, gender)
                if trait in policy.thresholds:
                    allowed[values.index("none")] = False
                options = [v for v, ok in zip(values, allowed.tolist()) if ok]
                if len(options) < 2:
                    continue
                rows = torch.tensor([full_indices(space, {**traits, trait: v}) for v in options])
                drawn = imitator(space.one_hot(rows))
                sims = torch.nn.functional.cosine_similarity(drawn, f_x[None].float(), dim=1)
                traits[trait] = options[int(sims.argmax())]
        out.append(traits)
    return out
