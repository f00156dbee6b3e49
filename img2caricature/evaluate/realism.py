"""Do the emoji look real? A classifier two-sample test on images, and KID on features."""

from __future__ import annotations

import numpy as np
import torch

from img2caricature.evaluate.classifier import ClassifierConfig, accuracy, fit_classifier, predict


def c2st(generated: torch.Tensor, real: torch.Tensor, cfg: ClassifierConfig,
         device: torch.device | None = None) -> dict[str, float]:
    """Accuracy of a fresh classifier telling `generated` (label 1) from `real` (label 0) on
    held-out halves; both sets are cut to the smaller size so chance is exactly 50%."""
    rng = np.random.default_rng(cfg.seed)
    n = min(len(generated), len(real))
    if n < 4:
        return {"accuracy": float("nan"), "n_train": 0, "n_test": 0, "test_per_side": 0}
    gen = generated[torch.from_numpy(rng.permutation(len(generated))[:n])]
    ref = real[torch.from_numpy(rng.permutation(len(real))[:n])]
    half = n // 2
    x_train = torch.cat([gen[:half], ref[:half]])
    y_train = torch.cat([torch.ones(half), torch.zeros(half)]).long()
    x_test = torch.cat([gen[half:], ref[half:]])
    y_test = np.concatenate([np.ones(n - half), np.zeros(n - half)]).astype(np.int64)
    model = fit_classifier(x_train, y_train, cfg, device=device, desc="two-sample test")
    return {"accuracy": accuracy(predict(model, x_test, cfg.size, device), y_test)["accuracy"],
            "n_train": 2 * half, "n_test": 2 * (n - half), "test_per_side": n - half}


def _polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with the polynomial kernel: within-set sums leave out the diagonal."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kid(generated: torch.Tensor, real: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> dict[str, float]:
    """KID: MMD^2 averaged over random subsets of both feature sets (as Binkowski et al. do)."""
    generated, real = generated.double(), real.double()
    size = min(subset_size, len(generated), len(real))
    if size < 2:
        return {"kid": float("nan"), "kid_std": float("nan"), "subset_size": size}
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(generated[rng.choice(len(generated), size, replace=False)],
                            real[rng.choice(len(real), size, replace=False)]) for _ in range(subsets)]
    return {"kid": float(np.mean(values)), "kid_std": float(np.std(values)), "subset_size": size}
