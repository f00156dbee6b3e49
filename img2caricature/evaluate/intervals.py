"""How sure a figure is. The held-out set samples people, not photos: one person's photos
succeed or fail together, so an interval that resamples photos would be too narrow. These
resample people (with all their photos) and report the percentile interval."""

from __future__ import annotations

from typing import Callable

import numpy as np


def person_bootstrap(values: np.ndarray, people: np.ndarray, n_resamples: int = 4000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Interval for the mean of `values` (one per photo; `people[i]` is photo i's person) when the
    people are drawn again with replacement, each bringing all their photos."""
    values, people = np.asarray(values, dtype=float), np.asarray(people)
    if len(values) == 0:
        return float("nan"), float("nan")
    _, person = np.unique(people, return_inverse=True)
    sums = np.bincount(person, weights=values)
    counts = np.bincount(person).astype(float)
    drawn = np.random.default_rng(seed).integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[drawn].sum(1) / counts[drawn].sum(1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def statistic_interval(statistic: Callable[[np.ndarray], float], people: np.ndarray, n_resamples: int = 1000,
                       level: float = 0.95, seed: int = 0) -> list[float]:
    """Interval for a statistic of the photos that is no mean (a rank correlation): it is
    computed on the photos of people drawn again with replacement, each bringing all their
    photos; `statistic(indices)` reads the photos at those indices (repeats included)."""
    _, person = np.unique(np.asarray(people), return_inverse=True)
    photos_of = [np.flatnonzero(person == k) for k in range(person.max() + 1)]
    rng = np.random.default_rng(seed)
    values = [statistic(np.concatenate([photos_of[k] for k in rng.integers(0, len(photos_of), len(photos_of))]))
              for _ in range(n_resamples)]
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]   # a draw where the statistic is undefined (one person's photos only)
    if len(values) == 0:
        return [float("nan"), float("nan")]
    tail = (1 - level) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return [float(lo), float(hi)]


def top1_interval(ranks: np.ndarray, people: np.ndarray, **kw) -> list[float]:
    return list(person_bootstrap(np.asarray(ranks) <= 1, people, **kw))


def paired_difference(values: np.ndarray, baseline: np.ndarray, people: np.ndarray, **kw) -> dict:
    """mean(values) - mean(baseline) over the same photos, with its interval: paired (the same
    people are drawn for both), so what the two share does not widen it."""
    diff = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    return {"difference": float(diff.mean()), "interval": list(person_bootstrap(diff, people, **kw))}


def top1_difference(ranks: np.ndarray, baseline_ranks: np.ndarray, people: np.ndarray, **kw) -> dict:
    """top-1 of one model minus a baseline's over the same queries (paired_difference)."""
    return paired_difference(np.asarray(ranks) <= 1, np.asarray(baseline_ranks) <= 1, people, **kw)


def retrieval_intervals(by_model: dict[str, dict]) -> dict[str, dict]:
    """`by_model`: one ruler's identity_retrieval result per model, over the same queries. Returns,
    per model, its top-1 interval and (after the first model) its top-1 minus the first's."""
    first = next(iter(by_model.values()), None)
    out: dict[str, dict] = {}
    for i, (name, r) in enumerate(by_model.items()):
        out[name] = {"top1_interval": top1_interval(r["ranks"], r["query_people"])}
        if i > 0 and r["query_people"] == first["query_people"]:
            out[name]["top1_vs_first"] = top1_difference(r["ranks"], first["ranks"], r["query_people"])
    return out
