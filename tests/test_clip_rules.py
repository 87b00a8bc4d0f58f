"""The CLIP cuts as pure functions: LAION's absolute cut and DataComp's top fraction, whose
two-pass selection (histogram of bins, then the one bin) must find exactly the k-th best score."""

from __future__ import annotations

import numpy as np
import pytest

from filters.clip_rules import (
    TOP_REASON,
    bin_counts,
    check_clip_score,
    check_top_fraction,
    default_min_score,
    keep_count,
    locate_top_cut,
    score_bins,
    top_cut,
)


def test_laion_cuts_per_model():
    assert default_min_score("ViT-B-32", "openai") == 0.28
    assert default_min_score("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k") == 0.26
    assert default_min_score("ViT-L-14", "datacomp_xl_s13b_b90k") is None
    assert check_clip_score(0.2799, 0.28)[0] == "low_clip_score"
    assert check_clip_score(0.28, 0.28) is None
    assert check_clip_score(-0.9, None) is None


def test_bins_sort_like_the_scores_they_hold():
    rng = np.random.default_rng(0)
    # a stable sort keeps -0.0 before 0.0 (they compare equal; numpy's SIMD sorts may swap them)
    scores = np.sort(np.concatenate([rng.uniform(-1, 1, 5000), [-1.0, -0.0, 0.0, 1e-30, -1e-30, 1.0]]),
                     kind="stable").astype(np.float32)
    bins = score_bins(scores)
    assert np.all(np.diff(bins.astype(np.int64)) >= 0)
    assert len(np.unique(bins)) > 1000  # fine enough that the second pass holds few scores


@pytest.mark.parametrize("fraction, total, keep", [(0.3, 10, 3), (0.3, 11, 4), (1.0, 7, 7), (0.5, 0, 0),
                                                   (0.001, 5, 1), (0.7, 100, 70)])
def test_keep_count_rounds_up_but_not_past_float_noise(fraction, total, keep):
    assert keep_count(fraction, total) == keep


@pytest.mark.parametrize("seed", range(6))
def test_the_cut_is_exactly_the_kth_best_score(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 20000))
    scores = rng.normal(0.3, 0.05 if seed % 2 else 0.0005, n).astype(np.float32)  # odd seeds: dense bins
    if seed == 4:
        scores = np.round(scores, 2)  # many ties
    fraction = float(rng.uniform(0.01, 1.0))
    k = keep_count(fraction, n)
    cut = top_cut(scores, fraction)
    assert cut == np.sort(scores)[::-1][k - 1]
    kept = scores >= np.float32(cut)
    assert kept.sum() >= k and (scores > np.float32(cut)).sum() < k
    if len(np.unique(scores)) == n:
        assert kept.sum() == k


def test_histograms_of_parts_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    parts = [rng.normal(0.25, 0.03, size).astype(np.float32) for size in (0, 10, 3000, 777)]
    merged = sum((bin_counts(part) for part in parts), start=bin_counts([]))
    assert merged == bin_counts(np.concatenate(parts))
    where = locate_top_cut(merged, 0.3)
    assert where.total == 3787 and where.keep == 1137 and 1 <= where.rank_in_bin <= merged[where.bin]


def test_no_scores_no_cut():
    assert locate_top_cut({}, 0.3) is None
    assert top_cut(np.zeros(0, np.float32), 0.3) is None


def test_ties_at_the_cut_are_kept():
    cut = top_cut([0.1, 0.2, 0.2, 0.2, 0.4], 0.4)  # 2 to keep: 0.4 and one 0.2
    assert cut == np.float32(0.2)
    assert check_top_fraction(0.2, cut, 0.4) is None
    reason, detail = check_top_fraction(0.1, cut, 0.4)
    assert reason == TOP_REASON and "top 0.4" in detail
    assert check_top_fraction(-1.0, None, 0.4) is None
