"""The whole-run passes, in the order they run (the contract: ``pipeline.whole_run_pass``).

The concept cut counts hypernyms first; the CLIP top fraction then cuts among the captions that
stay; a synthetic run keeps the best of each prompt's generations among those (``altcap synth``);
exact, perceptual and semantic image dedup run next, so they never keep a copy that a cut drops; a
person's rejections (``altcap review``) last, standing whatever the passes before decide.
The funnel's order, what each pass re-reads on a resume, the reject and summary files and
what ``--overwrite`` deletes all follow this list. Adding a pass: its module and one entry here."""

from __future__ import annotations

from pipeline.best_of import BestOfPrompt
from pipeline.clip_top import TopFractionCut
from pipeline.concept_cut import ConceptFrequencyCut
from pipeline.human_review import HumanReview
from pipeline.image_dedup import ImageDedup
from pipeline.near_dedup import NearDuplicates
from pipeline.semantic_dedup import SemanticDedup
from pipeline.shard_retry import RetryFailed

PASSES = (
    ConceptFrequencyCut,
    TopFractionCut,
    BestOfPrompt,
    ImageDedup,
    NearDuplicates,
    SemanticDedup,
    HumanReview,
)


def apply_passes(shard_samples, config, out_dir: str):
    """The enabled passes applied in order to (shard id, samples) pairs."""
    for index, each in enumerate(PASSES):
        if each.enabled(config):
            rereads = tuple(later.rejects for later in PASSES[index:])
            shard_samples = shard_samples | each.stage >> each(config, out_dir, rereads)
    return shard_samples


def retry_failed(config) -> RetryFailed:
    """What ``--retry-failed`` runs again beside the failed records: the samples the enabled passes
    dropped, when one of them is not monotone (``pipeline.shard_retry``)."""
    enabled = [each for each in PASSES if each.enabled(config)]
    return RetryFailed(tuple(each.rejects for each in enabled), not all(each.monotone for each in enabled))
