"""Intervals that resample people, not photos (evaluate/intervals.py)."""

import numpy as np
import pytest

from img2caricature.evaluate.intervals import person_bootstrap, retrieval_intervals, top1_difference


def test_a_persons_photos_move_together():
    # two people, 100 photos each: one always found, one never. Resampling photos would call the
    # mean 0.5 +- 0.07; with two people drawn again, any share from 0 to 1 is possible.
    people = np.repeat([0, 1], 100)
    values = np.repeat([1.0, 0.0], 100)
    lo, hi = person_bootstrap(values, people)
    assert lo == 0.0 and hi == 1.0
    # many people, each with a steady figure: the interval narrows around the mean
    people = np.repeat(np.arange(200), 3)
    values = np.repeat(np.random.default_rng(0).random(200) < 0.3, 3).astype(float)
    lo, hi = person_bootstrap(values, people)
    assert lo < values.mean() < hi and hi - lo < 0.15


def test_the_difference_is_paired():
    # model b finds every query a finds, and one more of each of 10 people: b is surely better,
    # although each model's own top-1 over 20 people is uncertain by more than the gain
    rng = np.random.default_rng(1)
    people = np.repeat(np.arange(20), 5)
    a = np.where(rng.random(100) < 0.4, 1.0, 7.0)
    b = a.copy()
    for person in range(10):
        missed = np.flatnonzero((people == person) & (a > 1))
        b[missed[:1]] = 1.0
    gained = int((b <= 1).sum() - (a <= 1).sum())
    d = top1_difference(b, a, people)
    assert d["difference"] == pytest.approx(gained / 100)
    assert 0 < d["interval"][0] <= d["difference"] <= d["interval"][1]
    own_a, own_b = person_bootstrap(a <= 1, people), person_bootstrap(b <= 1, people)
    assert own_b[0] < own_a[1]   # unpaired, the two intervals overlap


def test_retrieval_intervals_compare_with_the_first_model():
    people = [0, 0, 1, 1]
    by_model = {"old": {"ranks": [1, 2, 1, 3], "query_people": people},
                "new": {"ranks": [1, 1, 1, 1], "query_people": people}}
    out = retrieval_intervals(by_model)
    assert "top1_vs_first" not in out["old"]
    assert out["new"]["top1_vs_first"]["difference"] == pytest.approx(0.5)
    assert out["new"]["top1_interval"] == [1.0, 1.0]


def test_a_statistic_that_is_no_mean_resamples_people_too():
    from img2caricature.evaluate.avatar_metrics import spearman
    from img2caricature.evaluate.intervals import statistic_interval

    # 6 people, 40 photos each, every photo of a person read alike: the emoji keep the order of
    # 4 people, and the 2 lightest get the darkest emoji. Resampling photos would pin the
    # correlation down; drawing 6 people again can give a perfect one, or a poor one.
    people = np.repeat(np.arange(6), 40)
    photo = np.repeat([1.0, 2, 3, 4, 5, 6], 40)
    emoji = np.repeat([1.0, 2, 3, 4, 0.5, -1.0], 40)
    lo, hi = statistic_interval(lambda i: spearman(photo[i], emoji[i]), people)
    whole = spearman(photo, emoji)
    assert lo < whole < hi and hi == pytest.approx(1.0) and hi - lo > 0.5
    # one person per photo and many of them: the interval is narrow around the figure
    rng = np.random.default_rng(0)
    x = rng.random(400)
    y = x + 0.3 * rng.random(400)
    lo, hi = statistic_interval(lambda i: spearman(x[i], y[i]), np.arange(400))
    assert lo < spearman(x, y) < hi and hi - lo < 0.05
