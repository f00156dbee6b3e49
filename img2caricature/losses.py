"""Losses as plain functions returning `(loss, dict of its parts)`: detached tensors, which
become floats only when logged (no host sync per step).

DTN (Taigman et al. 2017), with s = source (faces) and t = target (emoji):
    L_D     = CE(D(g(f(s))), FROM_SOURCE) + CE(D(g(f(t))), FROM_TARGET) + CE(D(t), REAL_TARGET)
    L_GANG  = CE(D(g(f(s))), REAL_TARGET) + CE(D(g(f(t))), REAL_TARGET)
    L_CONST = d(f(s), f(g(f(s))))
    L_TID   = d2(t, g(f(t)))
    L_TV    = total variation of generated images
CycleGAN's least-squares GAN loss lives here too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from img2caricature.nets.dtn import FROM_SOURCE, FROM_TARGET, REAL_TARGET


def _ce(logits: torch.Tensor, cls: int) -> torch.Tensor:
    return F.cross_entropy(logits.float(), torch.full((logits.shape[0],), cls, device=logits.device))


def dtn_discriminator_loss(logits_from_source: torch.Tensor, logits_from_target: torch.Tensor,
                           logits_real: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = {
        "D/from_source": _ce(logits_from_source, FROM_SOURCE),
        "D/from_target": _ce(logits_from_target, FROM_TARGET),
        "D/real": _ce(logits_real, REAL_TARGET),
    }
    loss = sum(parts.values())
    return loss, {k: v.detach() for k, v in {"L_D": loss, **parts}.items()}


def dtn_gang_loss(logits_from_source: torch.Tensor, logits_from_target: torch.Tensor) -> torch.Tensor:
    """Both kinds of generated emoji should pass as real target samples."""
    return _ce(logits_from_source, REAL_TARGET) + _ce(logits_from_target, REAL_TARGET)


def representation_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """d in L_CONST: mean squared error, or 1 - cosine similarity."""
    if kind == "cosine":
        return (1 - F.cosine_similarity(a.float(), b.float(), dim=1)).mean()
    return F.mse_loss(a.float(), b.float())


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (smoothness prior)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(logits.float(), torch.full_like(logits.float(), 1.0 if real else 0.0))


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor, real_class: int = REAL_TARGET) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared gradient norm of D's real-class log-probability
    at real images, averaged over the batch. `real` must require grad and be what D saw."""
    log_p = F.log_softmax(logits_real.float(), dim=1)[:, real_class].sum()
    (grad,) = torch.autograd.grad(log_p, real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()
