"""Face-representation figures as plain functions of embeddings and labels.

Used by encoder pretraining (verification on unseen identities) and `img2car evaluate`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties half."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    sorted_scores = np.concatenate([pos, neg])[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def verification_pairs(labels: np.ndarray, max_pairs: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Balanced same/different pairs (i, j) among images with these identity labels."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    same = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] == labels[j]]
    same = np.array(same, dtype=np.int64).reshape(-1, 2)
    if len(same) > max_pairs // 2:
        same = same[rng.choice(len(same), max_pairs // 2, replace=False)]
    diff = []
    while len(diff) < len(same):
        i, j = rng.integers(0, len(labels), 2)
        if labels[i] != labels[j]:
            diff.append((i, j))
    pairs = np.concatenate([same, np.array(diff, dtype=np.int64).reshape(-1, 2)])
    is_same = np.concatenate([np.ones(len(same), bool), np.zeros(len(diff), bool)])
    return pairs, is_same


def verification(embeddings: torch.Tensor, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Same person or not from cosine similarity: accuracy (threshold chosen on one half of
    the pairs, measured on the other, both ways) and ROC AUC."""
    pairs, is_same = verification_pairs(labels, seed=seed)
    e = F.normalize(embeddings.float(), dim=1)
    scores = (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1).numpy()
    folds = np.random.default_rng(seed).permutation(len(pairs)) % 2
    accs = []
    for k in (0, 1):
        fit, test = folds != k, folds == k
        candidates = np.unique(scores[fit])
        best = max(candidates, key=lambda t: ((scores[fit] >= t) == is_same[fit]).mean())
        accs.append(((scores[test] >= best) == is_same[test]).mean())
    return {"verification_acc": float(np.mean(accs)), "roc_auc": roc_auc(scores, is_same)}


def retrieval_top1(embeddings: torch.Tensor, labels: np.ndarray) -> float:
    """Leave-one-out nearest neighbour: share of images whose closest other image is the same person."""
    sim = cosine_similarity_matrix(embeddings, embeddings)
    sim.fill_diagonal_(-2)
    nearest = sim.argmax(1).numpy()
    labels = np.asarray(labels)
    return float((labels[nearest] == labels).mean())
