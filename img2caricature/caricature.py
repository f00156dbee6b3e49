"""Photo in, emoji out: the inference path behind `img2car caricature`.

Face finding is passed in (`find_crops`), so the core stays independent of the
preprocessing package; the CLI hands it the same detector and crop that made the
training data.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from img2caricature import dataset
from img2caricature.errors import UserError
from img2caricature.images import IMAGE_EXTENSIONS, ImageError, list_images, read_image
from img2caricature.translate import load_translator, upscale

DEFAULT_MODEL = "default.pt"


def default_model_path() -> Path:
    return Path(str(resources.files("img2caricature") / "models" / DEFAULT_MODEL))


def load_model(path: str | Path | None, device: torch.device) -> nn.Module:
    if path is None:
        path = default_model_path()
        if not path.is_file():
            raise UserError("no default model ships with this install yet: pass --model PATH "
                            "(a dtn.pt from `img2car train-dtn`)")
    return load_translator(path, map_location=device).to(device)


def collect_inputs(args: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Photos named directly or inside folders; problems as (input, reason). Inside folders,
    this command's own outputs (`*.emoji.png`) are not photos: a second run skips them."""
    photos, problems = [], []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = [p for p in list_images(path) if not is_own_output(p)]
            if not found:
                problems.append((arg, f"no images in this folder ({', '.join(sorted(IMAGE_EXTENSIONS))})"))
            photos.extend(found)
        elif path.exists():
            photos.append(path)
        else:
            problems.append((arg, "no such file"))
    seen: set[Path] = set()
    unique = [p for p in photos if not (p.resolve() in seen or seen.add(p.resolve()))]  # named twice: once
    return unique, problems


_OWN_OUTPUT = re.compile(r"\.(emoji|avatar)(-\d+)?\.png$", re.IGNORECASE)  # caricature's and avatar's


def is_own_output(path: Path) -> bool:
    return bool(_OWN_OUTPUT.search(path.name))


@dataclass
class Outputs:
    """Where each emoji (or avatar: `label`) goes: beside the photo, or into a folder / file given by -o.

    Never onto an input, and never two photos onto one file: a name already taken in this
    run (x.jpg and x.png both want x.emoji.png) gets the photo's extension (x.png.emoji.png),
    then a number. Earlier runs' outputs are replaced, so a rerun writes the same files."""
    out: Path | None
    single: bool
    inputs: list[Path] = field(default_factory=list)
    label: str = "emoji"
    _taken: set[Path] = field(default_factory=set, init=False)
    _bases: dict[Path, Path] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._taken = {_key(p) for p in self.inputs}
        if self._single_file() and _key(self.out) in self._taken:
            raise UserError(f"-o {self.out} is an input photo: its {self.label} would replace it; choose another name")

    def _single_file(self) -> bool:
        return self.single and self.out is not None and self.out.suffix.lower() == ".png"

    def path_for(self, photo: Path, face: int) -> Path:
        base = self._bases.get(photo) or self._reserve(photo)
        if face == 0:
            return base
        path = base.with_name(f"{base.name[:-len('.png')]}-{face}.png")  # x.emoji.png -> x.emoji-1.png
        if _key(path) in self._taken:
            raise ImageError("would overwrite an input", str(path))
        return path

    def _reserve(self, photo: Path) -> Path:
        for path in self._candidates(photo):
            if _key(path) not in self._taken:
                self._taken.add(_key(path))
                self._bases[photo] = path
                return path
        raise AssertionError("unreachable: the candidates never end")

    def _candidates(self, photo: Path) -> Iterator[Path]:
        if self._single_file():
            yield self.out
        folder = photo.parent if self.out is None or self._single_file() else self.out
        ext = photo.suffix.lstrip(".").lower()
        yield folder / f"{photo.stem}.{self.label}.png"
        yield folder / f"{photo.stem}.{ext}.{self.label}.png"
        for n in itertools.count(2):
            yield folder / f"{photo.stem}.{ext}.{n}.{self.label}.png"


def _key(path: Path) -> Path:
    return path.resolve()  # follows links: a link to a photo is that photo


@torch.no_grad()
def caricature_crops(model: nn.Module, crops: list[np.ndarray], size: int, side_by_side: bool,
                     device: torch.device) -> list[np.ndarray]:
    """152x152 RGB crops -> emoji images (size x size, or 2*size wide with the crop beside)."""
    faces = dataset.to_float(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)).to(device)
    emoji = upscale(model(faces), size)
    if side_by_side:
        emoji = torch.cat([upscale(faces, size), emoji], dim=3)
    return list(dataset.to_uint8(emoji).permute(0, 2, 3, 1).cpu().numpy())


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, compress_level=1)  # 10x faster than the default, ~20% larger


def caricature_photo(photo: Path, model: nn.Module, find_crops: Callable[[np.ndarray], list[np.ndarray]],
                     outputs: Outputs, size: int, side_by_side: bool, device: torch.device) -> list[Path]:
    """One photo -> its emoji files. Raises ImageError (with a reason) for a bad photo."""
    rgb = read_image(photo)
    crops = find_crops(rgb)
    written = []
    for i, image in enumerate(caricature_crops(model, crops, size, side_by_side, device)):
        path = outputs.path_for(photo, i)
        save_png(image, path)
        written.append(path)
    return written
