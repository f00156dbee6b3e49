"""A linear probe: logistic regression on standardised features. It adds no capacity of its
own, so what it reads (gender, say) is what the features already hold. Used by the avatar
model (gender presentation from f) and by its evaluation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class LinearProbe:
    """Logistic regression on standardised features (a probe: it adds no capacity of its own)."""

    def __init__(self, features: torch.Tensor, labels: np.ndarray, weight_decay: float = 1e-2, steps: int = 200):
        x = features.float()
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mean) / self.std
        y = torch.as_tensor(labels, dtype=torch.float32)
        self.w = torch.zeros(x.shape[1], requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.LBFGS([self.w, self.b], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(x @ self.w + self.b, y) + weight_decay * (self.w ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)

    def state(self) -> dict[str, torch.Tensor]:
        """What a fitted probe is, to save: `from_state` rebuilds it without refitting."""
        return {"mean": self.mean, "std": self.std, "w": self.w.detach(), "b": self.b.detach()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "LinearProbe":
        probe = cls.__new__(cls)
        probe.mean, probe.std, probe.w, probe.b = (state[k] for k in ("mean", "std", "w", "b"))
        return probe

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> np.ndarray:
        return (linear_logits(features, self.mean, self.std, self.w, self.b) > 0).numpy()


def linear_logits(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, w: torch.Tensor,
                  b: torch.Tensor) -> torch.Tensor:
    """A fitted probe's logits: the standardised features, weighted."""
    return ((features.float() - mean) / std) @ w + b
