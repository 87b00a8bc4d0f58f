"""Which CLIP scores pass.

- The absolute cut: LAION-5B's (Schuhmann et al. 2022, section 3.2: cosine similarity with OpenAI's
  ViT-B/32 >= 0.28 for English, >= 0.26 with multilingual CLIP).
- The top fraction of a run: DataComp's CLIP-score filter keeps the best 30% of the pool (Gadre et
  al. 2023). The cut is the score of the k-th best sample, k = ceil(fraction x samples), found
  exactly in two passes that each keep little memory: a histogram of the scores in order-preserving
  bins, then the scores of the one bin that holds the k-th best. Ties at the cut are all kept.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

REASON = "low_clip_score"
TOP_REASON = "below_top_fraction"
# Bins are the top 20 bits of a float32's order key: ~1.2e-4 wide for scores in [0.25, 0.5), so
# the second pass holds ~1e-4 of the run's scores, and a histogram has at most 2^20 entries.
BIN_SHIFT = 12


def default_min_score(model: str, pretrained: str | None) -> float | None:
    """LAION-5B's cut where it was measured for this model, else None (no cut)."""
    if model == "ViT-B-32" and pretrained == "openai":
        return 0.28
    if "xlm-roberta" in model or "multilingual" in model.lower():
        return 0.26
    return None


def check_clip_score(score: float, min_score: float | None) -> tuple[str, str] | None:
    """``None`` when the pair passes, else (reason, detail)."""
    if min_score is not None and score < min_score:
        return REASON, f"{score:.4f} < {min_score}"
    return None


def score_bins(scores) -> np.ndarray:
    """The bin of each score (as float32); bins sort like the scores they hold."""
    bits = np.asarray(scores, np.float32).view(np.uint32)
    keys = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
    return keys >> np.uint32(BIN_SHIFT)


def bin_counts(scores) -> Counter:
    """How many scores fall in each bin: the first pass."""
    bins, counts = np.unique(score_bins(scores), return_counts=True)
    return Counter(dict(zip(bins.tolist(), counts.tolist())))


def keep_count(fraction: float, total: int) -> int:
    """How many samples the top ``fraction`` of ``total`` keeps (0.3 of 10 is 3, not 4)."""
    return min(total, math.ceil(round(fraction * total, 9)))


@dataclass(frozen=True)
class TopCutBin:
    """Where the k-th best score lies: its bin, and its rank within that bin (1 = the bin's best)."""
    fraction: float
    total: int
    keep: int
    bin: int
    rank_in_bin: int


def locate_top_cut(histogram: dict[int, int], fraction: float) -> TopCutBin | None:
    """The bin that holds the k-th best score; None when there are no scores."""
    total = sum(histogram.values())
    keep = keep_count(fraction, total)
    if keep == 0:
        return None
    above = 0
    for bin_id in sorted(histogram, reverse=True):
        if above + histogram[bin_id] >= keep:
            return TopCutBin(fraction, total, keep, bin_id, keep - above)
        above += histogram[bin_id]
    raise AssertionError("unreachable: keep <= total")


def exact_top_cut(scores_in_bin, where: TopCutBin) -> float:
    """The k-th best score, from the scores of its bin: the second pass."""
    ordered = np.sort(np.asarray(scores_in_bin, np.float32))[::-1]
    return float(ordered[where.rank_in_bin - 1])


def top_cut(scores, fraction: float) -> float | None:
    """The cut for one in-memory array of scores (both passes at once)."""
    where = locate_top_cut(bin_counts(scores), fraction)
    if where is None:
        return None
    scores = np.asarray(scores, np.float32)
    return exact_top_cut(scores[score_bins(scores) == where.bin], where)


def check_top_fraction(score: float, cut: float | None, fraction: float) -> tuple[str, str] | None:
    """``None`` when the pair is in the top fraction (its float32 score >= the cut)."""
    if cut is not None and np.float32(score) < np.float32(cut):
        return TOP_REASON, f"{score:.4f} < {cut:.4f}, the top {fraction:g} cut"
    return None
