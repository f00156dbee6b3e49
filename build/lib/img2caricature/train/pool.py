"""CycleGAN's history of generated images (Shrivastava et al. 2017): D is shown a mix of
this step's fakes and older ones, so it does not chase only the generator's latest output."""

from __future__ import annotations

import torch


class ImagePool:
    """Holds up to `capacity` past fakes. `query(fakes)` returns as many images: while the
    pool fills, the fakes themselves (and they are stored); then, per image, with
    probability 1/2 a stored image (replaced by the new one), else the new image.

    Draws from the global torch RNG, and `state_dict` carries the stored images, so a
    resumed run sees the same pool as one never stopped."""

    def __init__(self, capacity: int = 50):
        self.capacity = capacity
        self.images: list[torch.Tensor] = []

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.capacity <= 0:
            return fakes.detach()
        out = []
        for image in fakes.detach():
            if len(self.images) < self.capacity:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": torch.stack(self.images).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.images = [image.to(device) for image in state["images"]]
