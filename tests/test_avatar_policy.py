"""From e's scores to an avatar's traits: colours read from the pixels, gender-typical
choices, rare accessories drawn at a calibrated rate, and the f-constancy search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from img2caricature.avatar import appearance
from img2caricature.avatar.policy import (GenderProbe, TraitPolicy, calibrate, choose, full_indices, read_policy,
                                          refine)
from img2caricature.avatar.space import ParamSpace

SPACE = ParamSpace(names=["top", "skin_color", "hair_color", "facial_hair", "accessory", "clothing"],
                   values=[["bob", "caesar", "frida"], ["pale", "light", "brown", "black", "yellow"],
                           ["black", "brown", "blonde", "auburn"], ["none", "beard_medium", "moustache_fancy"],
                           ["none", "round"], ["shirt", "hoodie"]],
                   traits=["top", "skin_color", "hair_color", "facial_hair", "accessory"], fixed={"clothing": 0})
POLICY = TraitPolicy(never={"top": ["frida"], "skin_color": ["yellow"]},
                     by_gender={"female": {"top": ["bob"], "facial_hair": ["none"]},
                                "male": {"top": ["caesar"]}},
                     rates={"facial_hair": 0.5, "accessory": 0.25}, appearance=False)


def logits_for(rows: list[dict[str, list[float]]]) -> list[torch.Tensor]:
    """One (B, n) logit tensor per trait from per-photo score lists (missing: zeros)."""
    return [torch.tensor([r.get(t, [0.0] * len(SPACE.values[SPACE.names.index(t)])) for r in rows])
            for t in SPACE.traits]


def crop(skin: tuple[int, int, int], hair: tuple[int, int, int], size: int = 152) -> np.ndarray:
    """A Haar-framed face crop, schematically: hair across the top, skin below."""
    img = np.full((size, size, 3), skin, np.uint8)
    img[:round(0.2 * size)] = hair
    return img


# ---- colours from the pixels -----------------------------------------------------------

def test_skin_tone_follows_lightness_and_skips_cartoon_colours():
    tones = [appearance.read_appearance(crop(c, (20, 15, 10))).skin_color
             for c in [(250, 225, 205), (205, 160, 130), (170, 115, 80), (110, 70, 45), (60, 40, 30)]]
    assert tones == ["pale", "light", "brown", "dark_brown", "black"]
    lightness = [appearance.read_appearance(crop(c, (20, 15, 10))).skin_lightness
                 for c in [(250, 225, 205), (60, 40, 30)]]
    assert lightness[0] > 85 > 30 > lightness[1]


@pytest.mark.parametrize("hair, expected", [((25, 18, 15), "black"), ((140, 95, 60), "brown"),
                                            ((230, 200, 120), "blonde_golden"), ((200, 70, 20), "red"), ((150, 40, 10), "auburn"),
                                            ((140, 140, 140), "silver_gray")])
def test_hair_colour_is_read_above_the_forehead(hair, expected):
    assert appearance.read_appearance(crop((225, 180, 150), hair)).hair_color == expected


def test_no_hair_to_read_when_skin_or_a_blue_wall_fills_the_band():
    assert appearance.read_appearance(crop((225, 180, 150), (225, 180, 150))).hair_color is None
    assert appearance.read_appearance(crop((225, 180, 150), (40, 90, 200))).hair_color is None
    assert appearance.read_appearance(crop((225, 180, 150), (0, 0, 0))).hair_color is None   # black padding


# ---- the policy -------------------------------------------------------------------------

def test_gender_restricts_choices_and_never_values_are_never_drawn():
    # e prefers frida (never), then the other gender's style, and a beard on everyone
    rows = [{"top": [1.0, 2.0, 9.0], "facial_hair": [0.0, 5.0, 0.0]},
            {"top": [2.0, 1.0, 9.0], "facial_hair": [0.0, 5.0, 0.0]}]
    policy = TraitPolicy(**{**POLICY.to_dict(), "thresholds": {}})
    woman, man = choose(SPACE, logits_for(rows), policy, ["female", "male"], None)
    assert woman["top"] == "bob" and woman["facial_hair"] == "none"
    assert man["top"] == "caesar" and man["facial_hair"] == "beard_medium"
    nobody = choose(SPACE, logits_for(rows), policy, [None, None], None)
    assert [t["top"] for t in nobody] == ["caesar", "bob"]   # frida stays out without a gender too


def test_rare_traits_are_drawn_only_below_the_calibrated_threshold():
    # four men whose p(none) for facial hair falls from high to low: rate 0.5 -> two get one
    none_scores = [4.0, 2.0, 0.0, -2.0]
    rows = [{"facial_hair": [s, 0.0, 0.0]} for s in none_scores]
    logits = logits_for(rows)
    thresholds = calibrate(SPACE, logits, POLICY, ["male"] * 4)
    policy = TraitPolicy(**{**POLICY.to_dict(), "thresholds": thresholds})
    drawn = [t["facial_hair"] != "none" for t in choose(SPACE, logits, policy, ["male"] * 4, None)]
    assert drawn == [False, False, True, True]
    # women cannot have facial hair, so they do not count towards the men's rate
    with_women = calibrate(SPACE, logits_for(rows + [{"facial_hair": [9.0, 0.0, 0.0]}] * 4), POLICY,
                           ["male"] * 4 + ["female"] * 4)
    assert with_women["facial_hair"] == pytest.approx(thresholds["facial_hair"])


def test_appearance_overrides_colours_when_on():
    rows = [{"skin_color": [9.0, 0, 0, 0, 0], "hair_color": [0, 0, 9.0, 0]}]
    dark = crop((60, 40, 30), (8, 6, 5))
    off = choose(SPACE, logits_for(rows), POLICY, [None], [dark])[0]
    on = choose(SPACE, logits_for(rows), TraitPolicy(**{**POLICY.to_dict(), "appearance": True}), [None], [dark])[0]
    assert (off["skin_color"], off["hair_color"]) == ("pale", "blonde")
    assert (on["skin_color"], on["hair_color"]) == ("black", "black")


def test_refine_picks_the_value_the_imitator_puts_nearest_to_f_and_keeps_gated_traits_off():
    # an imitator that "renders" each code as the code itself, so f-constancy = matching a code
    class CodeIsFeature(torch.nn.Module):
        def forward(self, codes):
            return codes

    start = {"top": "bob", "skin_color": "light", "hair_color": "black", "facial_hair": "none",
             "accessory": "round"}
    target = dict(start, top="caesar", facial_hair="beard_medium", accessory="none")
    f_photo = SPACE.one_hot(torch.tensor([full_indices(SPACE, target)]))[0]
    policy = TraitPolicy(**{**POLICY.to_dict(), "search": ["top", "facial_hair", "accessory"],
                            "thresholds": {"facial_hair": 0.5, "accessory": 0.5}})
    out = refine(SPACE, [start], f_photo[None], CodeIsFeature(), policy, [None])[0]
    assert out["top"] == "caesar"
    assert out["facial_hair"] == "none"         # off stays off: the search never adds a beard
    assert out["accessory"] == "round"          # on stays on, though f would rather have none
    assert refine(SPACE, [start], f_photo[None], CodeIsFeature(), policy, ["female"])[0]["top"] == "bob"


def test_gender_probe_reads_a_linear_direction():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    genders = ["male" if v > 0 else "female" for v in x[:, 3].tolist()]
    probe = GenderProbe.fit(x, genders)
    again = GenderProbe.from_dict(probe.to_dict())
    assert np.mean(np.array(again.predict(x)) == np.array(genders)) > 0.95


def test_the_packaged_policy_names_only_values_the_engine_has():
    import python_avatars as pa  # noqa: F401  (the engine the names belong to)
    from crawlers.avatar_space import parse_query

    policy = read_policy()
    for trait, values in [*policy.never.items(),
                          *[kv for by in policy.by_gender.values() for kv in by.items()]]:
        for value in values:
            parse_query({trait: [value]})   # raises on a name the avatar server does not know
    assert set(policy.rates) <= {"accessory", "facial_hair"} and all(0 < r < 1 for r in policy.rates.values())
