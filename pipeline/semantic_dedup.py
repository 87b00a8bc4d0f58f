"""SemDeDup (Abbas et al. 2023) over the run's CLIP image embeddings, the last whole-run pass.

Only embeddings move, never images: a deterministic sample of them (keys whose hash falls under
``dedup.semantic_sample / samples``) is gathered to fit spherical k-means once; every embedding then
goes to its nearest centroid, and within each cluster ``filters.semdedup.semantic_duplicates`` picks
the samples to drop. Each shard holding one is rewritten without it; its dropped embeddings are kept
beside the pass's reject file (``rejects/semantic-NNNNN.npy``), so a resumed pass sees the same
embeddings and makes the same clusters. A cut over the run: not ``monotone``.
"""

from __future__ import annotations

import math

import apache_beam as beam
import numpy as np

from dataset import fileio
from dataset.layout import EMBEDDINGS, pass_rejects, shard_paths
from dataset.side_arrays import load_side, side_array, write_side
from filters.semdedup import fit_centroids, nearest_centroid, semantic_duplicates
from pipeline.whole_run_pass import WholeRunPass, drop_named, write_summary

SEED = 0
KEY_SPACE = 16 ** 8  # a sample is in the k-means sample when int(key[:8], 16) / KEY_SPACE < the rate


def dropped_embeddings(out_dir: str, prefix: str, shard_id: int) -> str:
    """Where the pass keeps the embeddings of the samples it dropped from a shard."""
    return pass_rejects(out_dir, prefix, shard_id).removesuffix(".parquet") + ".npy"


def shard_vectors(out_dir: str, prefix: str, shard_id: int) -> tuple[list[str], np.ndarray]:
    """(keys, image embeddings as float32) of every sample of a shard that reached the pass."""
    arrays = [load_side(path) for path in (shard_paths(out_dir, shard_id)[EMBEDDINGS.folder],
                                           dropped_embeddings(out_dir, prefix, shard_id)) if fileio.exists(path)]
    if len(arrays) == 2:  # a rewrite killed after the pass kept its drops: they are in both files
        arrays[1] = arrays[1][~np.isin(arrays[1]["key"], arrays[0]["key"])]
    if not arrays:
        return [], np.zeros((0, 0), np.float32)
    keys = [str(key) for array in arrays for key in array["key"]]
    return keys, np.concatenate([array["image_embedding"] for array in arrays]).astype(np.float32)


def keep_dropped(out_dir: str, prefix: str, shard_id: int, drops: set[str]) -> None:
    """Add the embedding rows of ``drops`` to the pass's own file, before they leave the shard."""
    rows = load_side(shard_paths(out_dir, shard_id)[EMBEDDINGS.folder])
    path = dropped_embeddings(out_dir, prefix, shard_id)
    kept_before = load_side(path) if fileio.exists(path) else None
    fresh = rows[np.isin(rows["key"], list(drops))]
    if kept_before is not None:
        fresh = fresh[~np.isin(fresh["key"], kept_before["key"])]
    if len(fresh):
        both = fresh if kept_before is None else np.concatenate([kept_before.astype(fresh.dtype), fresh])
        write_side(path, side_array(EMBEDDINGS, [(str(row["key"]), row["image_embedding"], row["text_embedding"])
                                                 for row in both]))


class SemanticDedup(WholeRunPass):
    """Drops the samples whose image embedding is within ``1 - dedup.semantic_eps`` cosine of one kept
    in its k-means cluster."""

    stage = "semantic_dedup"
    reason = "semantic_duplicate"
    rejects = "semantic"
    summary_file = "semantic_dedup.json"
    leaves = ("rejects/semantic-*.npy",)

    @classmethod
    def enabled(cls, config) -> bool:
        return config.dedup.semantic_eps is not None

    def expand(self, shard_samples):
        out_dir, cut, reason, prefix = self.out_dir, self.cutter(), self.reason, self.rejects
        dedup, summary_file = self.config.dedup, self.summary_file

        def vectors(shard_id):
            return shard_vectors(out_dir, prefix, shard_id)

        def sampled(item, total):
            keys, x = vectors(item[0])
            rate = dedup.semantic_sample / max(total, 1)
            return [(key, row.astype(np.float16)) for key, row in zip(keys, x) if int(key[:8], 16) / KEY_SPACE < rate]

        def fit(rows, total):
            if not rows:
                return None
            rows = sorted(rows, key=lambda row: row[0])  # the same sample in the same order on every runner
            clusters = dedup.semantic_clusters or max(1, round(math.sqrt(total)))
            return fit_centroids(np.stack([row for _, row in rows]), clusters, SEED)

        def assigned(item, centroids):
            keys, x = vectors(item[0])
            if centroids is None or not keys:
                return []
            return [(int(c), (key, item[0], row)) for key, c, row in zip(keys, nearest_centroid(x, centroids), x)]

        def losers_in(item, centroids):
            cluster, members = item[0], sorted(item[1], key=lambda member: member[0])
            shard_of = {key: shard_id for key, shard_id, _ in members}
            found = semantic_duplicates([key for key, _, _ in members], np.stack([row for _, _, row in members]),
                                        centroids[cluster], dedup.semantic_eps)
            return [(shard_of[dropped], (dropped, kept, cosine)) for dropped, kept, cosine in found]

        def summarise(found, total, centroids):
            clusters = 0 if centroids is None else len(centroids)
            write_summary(out_dir, summary_file, {"eps": dedup.semantic_eps, "samples": total, "clusters": clusters,
                                                  "duplicates": found})
            return found

        total = (shard_samples | "SamplesIn" >> beam.Map(lambda item: item[1])
                 | "CountSamples" >> beam.CombineGlobally(sum))
        centroids = (shard_samples
                     | "SampleEmbeddings" >> beam.FlatMap(sampled, total=beam.pvalue.AsSingleton(total))
                     | "GatherSample" >> beam.combiners.ToList()
                     | "FitKMeans" >> beam.Map(fit, total=beam.pvalue.AsSingleton(total)))
        losers = (shard_samples
                  | "NearestCentroid" >> beam.FlatMap(assigned, centroids=beam.pvalue.AsSingleton(centroids))
                  | "GroupByCluster" >> beam.GroupByKey()
                  | "DuplicatesInCluster" >> beam.FlatMap(losers_in, centroids=beam.pvalue.AsSingleton(centroids)))
        _ = (losers | "CountDuplicates" >> beam.combiners.Count.Globally()
             | "WriteSummary" >> beam.Map(summarise, total=beam.pvalue.AsSingleton(total),
                                          centroids=beam.pvalue.AsSingleton(centroids)))

        def visit(item):
            shard_id, grouped = item
            details = {dropped: f"cosine {cosine:.4f} to {kept}" for dropped, kept, cosine in grouped["losers"]}
            if details:
                keep_dropped(out_dir, prefix, shard_id, set(details))
            check = drop_named(out_dir, shard_id, rejects=prefix, reason=reason, details=details)
            return shard_id, cut(shard_id, sum(grouped["samples"]), check)

        return ({"samples": shard_samples, "losers": losers}
                | "JoinLosers" >> beam.CoGroupByKey()
                | "RewriteShards" >> beam.Map(visit))
