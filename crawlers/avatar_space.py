"""The avatar server's parameter space: python-avatars' parts and colours, by name.

Each parameter maps lower-case names (the enum member names, e.g. `short_flat`,
`prescription_1`, `dark_brown`) to python-avatars values. `top` holds hair styles and
hats together, as in python-avatars. Parts with no value are called `none`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import python_avatars as pa


@dataclass(frozen=True)
class Param:
    name: str
    values: dict[str, enum.Enum]   # value name -> python-avatars value
    default: str


def _names(kind: type[enum.Enum], skip: tuple[str, ...] = ()) -> dict[str, enum.Enum]:
    return {m.name.lower(): m for m in kind if m.name.lower() not in skip}


def _top() -> dict[str, enum.Enum]:
    values = _names(pa.HairType)
    for name, member in _names(pa.HatType).items():
        values.setdefault(name, member)  # HairType.HAT and HatType.HAT share a name; the hair one wins
    return values


# custom_text is left out: it draws text, which needs system fonts and is not a face trait.
PARAMS: dict[str, Param] = {p.name: p for p in [
    Param("top", _top(), "short_flat"),
    Param("hat_color", _names(pa.ClothingColor), "heather"),
    Param("hair_color", _names(pa.HairColor), "brown"),
    Param("facial_hair", _names(pa.FacialHairType), "none"),
    Param("facial_hair_color", _names(pa.HairColor), "brown"),
    Param("skin_color", _names(pa.SkinColor), "light"),
    Param("eyes", _names(pa.EyeType), "default"),
    Param("eyebrows", _names(pa.EyebrowType), "default"),
    Param("nose", _names(pa.NoseType), "default"),
    Param("mouth", _names(pa.MouthType), "default"),
    Param("accessory", _names(pa.AccessoryType), "none"),
    Param("clothing", _names(pa.ClothingType), "shirt_crew_neck"),
    Param("clothing_color", _names(pa.ClothingColor), "heather"),
    Param("shirt_graphic", _names(pa.ClothingGraphic, skip=("custom_text",)), "none"),
]}

SIZE_DEFAULT, SIZE_MIN, SIZE_MAX = 152, 16, 1024
_SIZE = re.compile(r"[0-9]{1,6}")


class BadParameter(ValueError):
    """A request the server refuses with 400; `allowed` tells the client what would work."""

    def __init__(self, message: str, allowed: list[str] | dict | None = None):
        super().__init__(message)
        self.allowed = allowed


def describe() -> dict:
    """The parameter space as JSON-able data (what `GET /params` returns)."""
    return {
        "params": {p.name: {"values": list(p.values), "default": p.default} for p in PARAMS.values()},
        "size": {"default": SIZE_DEFAULT, "min": SIZE_MIN, "max": SIZE_MAX},
    }


def parse_query(query: dict[str, list[str]]) -> tuple[dict[str, str], int]:
    """Query parameters (name -> every value given) -> (full choice with defaults, size).

    Raises BadParameter for unknown names, unknown values, repeated names or a bad size.
    """
    choice = {p.name: p.default for p in PARAMS.values()}
    size = SIZE_DEFAULT
    for name, given in query.items():
        if len(given) != 1:
            raise BadParameter(f"parameter '{name}' is given {len(given)} times")
        value = given[0]
        if name == "size":
            # ASCII digits only, and few: str.isdigit takes "²" (int() doesn't) and int() refuses 5000 digits
            if not _SIZE.fullmatch(value) or not SIZE_MIN <= int(value) <= SIZE_MAX:
                raise BadParameter(f"size must be an integer from {SIZE_MIN} to {SIZE_MAX}, got '{value}'",
                                   {"min": SIZE_MIN, "max": SIZE_MAX})
            size = int(value)
        elif name not in PARAMS:
            raise BadParameter(f"unknown parameter '{name}'", sorted([*PARAMS, "size"]))
        elif value not in PARAMS[name].values:
            raise BadParameter(f"unknown value '{value}' for '{name}'", list(PARAMS[name].values))
        else:
            choice[name] = value
    return choice, size
