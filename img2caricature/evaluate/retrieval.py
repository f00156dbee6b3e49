"""Identity retrieval from emoji: the DTN paper's protocol, scaled down (see definitions.py)."""

from __future__ import annotations

import numpy as np
import torch

from img2caricature.metrics import cosine_similarity_matrix


def identity_retrieval(queries: torch.Tensor, photos: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """queries[i]: the representation of the emoji made from photo i; photos[i]: of photo i;
    labels[i]: its person. Photo i itself is left out of query i's gallery."""
    labels = np.asarray(labels)
    sim = cosine_similarity_matrix(queries, photos).double().numpy()
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    own = np.eye(n, dtype=bool)
    same &= ~own
    has_other = same.any(1)
    if not has_other.any():
        return {"median_rank": float("nan"), "top1": float("nan"), "top5": float("nan"), "queries": 0, "gallery": n - 1}
    best_same = np.where(same, sim, -np.inf).max(1, keepdims=True)
    others = ~same & ~own
    # ties count half, so that a ruler that cannot tell anyone apart is not scored as perfect
    rank = 1 + ((sim > best_same) & others).sum(1) + 0.5 * ((sim == best_same) & others).sum(1)
    rank = rank[has_other]
    # per query, for intervals (intervals.py): its rank and its person
    return {"median_rank": float(np.median(rank)), "top1": float((rank <= 1).mean()),
            "top5": float((rank <= 5).mean()), "queries": int(has_other.sum()), "gallery": n - 1,
            "ranks": rank.tolist(), "query_people": labels[has_other].tolist()}


def chance_retrieval(labels: np.ndarray) -> dict[str, float]:
    """top-1 and top-5 of a ruler that scores at random, over the same queries: a query whose
    person has m other photos among n other people's ranks <= R with probability
    1 - C(n, R) / C(n + m, R) (no R of the others all come first)."""
    from math import comb

    labels = np.asarray(labels)
    counts = {l: int((labels == l).sum()) for l in np.unique(labels)}
    probs: dict[int, list[float]] = {1: [], 5: []}
    for l in labels:
        m, n = counts[l] - 1, len(labels) - counts[l]
        if m == 0:
            continue
        for r in probs:
            probs[r].append(1 - comb(n, r) / comb(n + m, r) if n + m >= r else 1.0)
    return {f"top{r}": float(np.mean(p)) if p else float("nan") for r, p in probs.items()}
