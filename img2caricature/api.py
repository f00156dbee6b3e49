"""img2caricature from Python: load a model once, then photo in, PIL emoji out.

    import img2caricature
    model = img2caricature.load()                  # the shipped model (or load("runs/dtn/dtn.pt"))
    emoji = model("examples/astronaut.jpg")        # path, bytes, PIL image or RGB array -> PIL image
    emojis = model(photo, all_faces=True)          # a list: one emoji per face, largest first

The same face finding and translation as `img2car caricature` (this module only adapts
inputs and outputs), and the same errors: `ImageError` for a photo that cannot be used
(`.reason` is the short key the CLI prints: "not an image", "no face", ...), `UserError`
for a model that cannot be loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from img2caricature.images import ImageError, decode, from_pil

Photo = Union[str, Path, bytes, Image.Image, np.ndarray]
FACE_SIZE = 152  # the crop side every model was trained on


def _face_finder(detect: bool, all_faces: bool, min_face: int):
    # The CLI's own finder, so both always frame faces the same way.
    from preprocessing.finder import crop_finder

    return crop_finder(all_faces=all_faces, min_face=min_face, no_detect=not detect)


def to_rgb(photo: Photo) -> np.ndarray:
    """Any accepted photo -> uint8 RGB array (H, W, 3), read as the CLI reads files."""
    if isinstance(photo, (str, Path, bytes, bytearray)):
        return decode(bytes(photo) if isinstance(photo, bytearray) else photo)
    if isinstance(photo, Image.Image):
        try:
            photo.load()
            return from_pil(photo)
        except (OSError, SyntaxError, ValueError) as err:  # a lazily opened, damaged file
            raise ImageError("corrupt", str(err)[:80]) from None
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim not in (2, 3) or (photo.ndim == 3 and photo.shape[2] not in (1, 3, 4)):
            raise ImageError("not an image", f"expected a uint8 array (H, W, 3), got {photo.dtype} {photo.shape}")
        return from_pil(Image.fromarray(photo.squeeze(2) if photo.ndim == 3 and photo.shape[2] == 1 else photo))
    raise TypeError(f"expected a path, bytes, a PIL image or a numpy array, not {type(photo).__name__}")


class Caricaturist:
    """A loaded photo->emoji model. Calls are independent and may come from several threads."""

    def __init__(self, model, device):
        self.model, self.device = model, device

    def faces(self, photo: Photo, *, all_faces: bool = False, detect: bool = True,
              min_face: int = 24) -> list[Image.Image]:
        """The face crops (152x152) the emoji are drawn from: the largest, or every face."""
        rgb = to_rgb(photo)
        try:
            crops = _face_finder(detect, all_faces, min_face)(rgb)
        except ImageError as err:  # the CLI's reason, with the hint in this API's terms
            raise ImageError(err.reason, "detect=False takes the whole photo as the face") from None
        return [Image.fromarray(c) for c in crops]

    def draw(self, faces: list[Image.Image], *, size: int = 256, side_by_side: bool = False) -> list[Image.Image]:
        """Face crops (as `faces` returns them) -> their emoji, `size` pixels square
        (twice as wide with the crop beside it when `side_by_side`)."""
        from img2caricature.caricature import caricature_crops

        if not 8 <= size <= 4096:
            raise ValueError(f"size must be between 8 and 4096, got {size}")
        crops = [np.asarray(f.convert("RGB").resize((FACE_SIZE, FACE_SIZE))) for f in faces]
        if not crops:
            return []
        return [Image.fromarray(e) for e in caricature_crops(self.model, crops, size, side_by_side, self.device)]

    def __call__(self, photo: Photo, *, all_faces: bool = False, detect: bool = True, min_face: int = 24,
                 size: int = 256, side_by_side: bool = False) -> Image.Image | list[Image.Image]:
        """The emoji of the photo's largest face, or with `all_faces` a list, one per face.
        `detect=False` takes the whole photo (centre square) as the face."""
        emoji = self.draw(self.faces(photo, all_faces=all_faces, detect=detect, min_face=min_face),
                          size=size, side_by_side=side_by_side)
        return emoji if all_faces else emoji[0]

    def warm_up(self) -> None:
        """One pass over a blank picture, so the first real caller does not wait for lazy loading."""
        blank = np.full((320, 320, 3), 127, np.uint8)
        try:
            self.faces(blank)
        except ImageError:
            pass  # no face, as expected: the detector is loaded now
        self.draw(self.faces(blank, detect=False))


def load(model: str | Path | None = None, device: str = "auto") -> Caricaturist:
    """Load a model once: the one shipped in the package, or a dtn.pt / cyclegan.pt snapshot.
    `device`: "auto" (CUDA when present, else CPU), "cpu" or "cuda[:N]"."""
    from img2caricature.caricature import load_model
    from img2caricature.runtime import pick_device

    torch_device = pick_device(device)
    return Caricaturist(load_model(model, torch_device), torch_device)


def load_avatar(model: str | Path | None = None, device: str = "cpu"):
    """Load an avatar model once (the shipped one by default): a callable from a face crop
    (as `Caricaturist.faces` returns it, or an RGB array) to {"params": every parameter of
    the avatar engine, by name, "svg": its drawing}; the params are what `img2car avatar
    --params` re-renders."""
    from crawlers.avatar_render import full_choice, to_svg
    from img2caricature.avatar.model import load_avatar_model
    from img2caricature.runtime import pick_device

    avatar_model = load_avatar_model(model, pick_device(device))

    def make(face) -> dict:
        crop = np.asarray(Image.fromarray(np.asarray(face)).convert("RGB").resize((FACE_SIZE, FACE_SIZE)))
        choice = full_choice(avatar_model.traits([crop])[0])
        return {"params": choice, "svg": to_svg(choice, 256)}
    return make
