"""Contact sheets for `--report DIR`: a random sample of kept crops, and rejected photos
with the detections drawn and the reason written under each, a row per reason.

Samples are reservoirs with a fixed seed over the ordered outcomes, so a rerun draws
the same sheets. Only the sampled rejected photos are read again (in this process).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from img2caricature.images import ImageError, read_image
from preprocessing.worker import Outcome


class Reservoir:
    """A uniform sample of at most `k` items from a stream (Algorithm R)."""

    def __init__(self, k: int, rng: random.Random):
        self.k, self.rng, self.items, self.seen = k, rng, [], 0

    def offer(self, item: object) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = item


def reason(outcome: Outcome, kept: bool) -> str:
    if outcome.status == "unreadable":
        return f"unreadable: {outcome.reason}"
    if outcome.status == "failed":
        return f"failed: {outcome.reason.split(':')[0]}"
    if outcome.status == "ok":
        return "kept" if kept else "too few for identity"
    return outcome.status


@dataclass
class ContactSheets:
    """Pass `observe` to `pipeline.preprocess`, then `write(folder)`."""

    kept_count: int = 64
    per_reason: int = 8
    seed: int = 0
    rng: random.Random = field(init=False)
    kept: Reservoir = field(init=False)
    rejected: dict[str, Reservoir] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.kept = Reservoir(self.kept_count, self.rng)
        self.rejected = defaultdict(lambda: Reservoir(self.per_reason, self.rng))

    def observe(self, outcome: Outcome, kept: bool) -> None:
        why = reason(outcome, kept)
        if why == "kept":
            self.kept.offer((outcome.crop, outcome.photo.source))
        else:
            # The crop is not needed for a rejected photo; don't hold it in memory.
            self.rejected[why].offer(Outcome(outcome.photo, outcome.status, outcome.reason, outcome.boxes))

    def write(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "kept.png", folder / "rejected.png"]
        kept_sheet([crop for crop, _ in self.kept.items]).save(paths[0])
        rows = {why: [o for o in r.items] for why, r in sorted(self.rejected.items())}
        rejected_sheet(rows).save(paths[1])
        return paths


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def kept_sheet(crops: list[np.ndarray], columns: int = 8, pad: int = 2) -> Image.Image:
    """Crops in a grid with a thin white border."""
    if not crops:
        return _message("no faces kept")
    size = crops[0].shape[0]
    rows = (len(crops) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (size + pad) + pad, rows * (size + pad) + pad), "white")
    for i, crop in enumerate(crops):
        sheet.paste(Image.fromarray(crop), (pad + (i % columns) * (size + pad), pad + (i // columns) * (size + pad)))
    return sheet


def _tile(outcome: Outcome, why: str, size: int, font: ImageFont.ImageFont) -> Image.Image:
    tile = Image.new("RGB", (size, size + 20), "black")
    try:
        photo = Image.fromarray(read_image(outcome.photo.path))
    except ImageError:
        photo = None
    draw = ImageDraw.Draw(tile)
    if photo is not None:
        scale = size / max(photo.size)
        thumb = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))))
        ox, oy = (size - thumb.width) // 2, (size - thumb.height) // 2
        tile.paste(thumb, (ox, oy))
        for b in outcome.boxes:  # what the detector saw: explains "several" and "too small"
            draw.rectangle([ox + b.x * scale, oy + b.y * scale, ox + (b.x + b.w) * scale, oy + (b.y + b.h) * scale],
                           outline=(255, 40, 40), width=2)
    else:
        draw.rectangle([0, 0, size, size], fill=(60, 60, 60))
    draw.text((4, size + 3), why, fill="white", font=font)
    draw.text((4, 4), Path(outcome.photo.source).name[:28], fill="yellow", font=font, stroke_width=1, stroke_fill="black")
    return tile


def rejected_sheet(rows: dict[str, list[Outcome]], size: int = 180, pad: int = 3) -> Image.Image:
    """A row per rejection reason: the photo, the detections in red, the reason below."""
    rows = {why: items for why, items in rows.items() if items}
    if not rows:
        return _message("nothing rejected")
    font = _font(13)
    columns = max(len(items) for items in rows.values())
    th = size + 20
    sheet = Image.new("RGB", (columns * (size + pad) + pad, len(rows) * (th + pad) + pad), "white")
    for r, (why, items) in enumerate(rows.items()):
        for c, o in enumerate(items):
            sheet.paste(_tile(o, why, size, font), (pad + c * (size + pad), pad + r * (th + pad)))
    return sheet


def _message(text: str) -> Image.Image:
    image = Image.new("RGB", (320, 40), "white")
    ImageDraw.Draw(image).text((8, 12), text, fill="black", font=_font(14))
    return image
