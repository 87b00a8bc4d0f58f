"""``altcap review OUT_DIR --reject KEY ...``: a person's rejections applied to a finished output
folder, without Beam, as ``pipeline.human_review``'s pass applies them in a run.

The decisions go to review.json first, so a killed review, a resume of the run or a retry applies
them too; then each shard holding a decided sample is rewritten without it (into
rejects/review-NNNNN.parquet); then written.json is tallied again from the folder's files, the
funnel's ``review`` stage (last) counts every sample a person rejected, the funnel is checked again
and report.html written again. Each step is idempotent: the same command again finishes what a
killed one began, and a key already rejected by a person is left as it is.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from dataset import fileio, tally
from dataset.inspect import reject_files
from dataset.layout import PRE_REJECTS, REJECTS, shard_ids, shard_paths
from dataset.reader import column_if_any, read_parquet
from filters.settings import ConfigError
from pipeline.config import config_from_dict
from pipeline.funnel import AccountingError, check_funnel
from pipeline.human_review import REASON, STAGE, read_decisions, shard_check, write_decisions
from pipeline.human_review import REJECTS as REVIEW_REJECTS
from pipeline.report import write_report
from pipeline.semantic_dedup import SemanticDedup
from pipeline.steps import SHARD_STEPS
from pipeline.whole_run_pass import drop_failing
from pipeline.written import REJECT_PREFIXES

READERS = 16  # files read at once: the folder may be on an object store


def keys_given(keys: list[str], files: list[str]) -> list[str]:
    """The keys of ``--reject`` and of each ``--reject-file`` (one per line, the first word, as ``altcap
    ls`` and the report show them; blank lines and # comments skipped; - is standard input), once each."""
    found = list(keys)
    for name in files:
        try:
            with (open(0, encoding="utf-8", closefd=False) if name == "-" else open(name, encoding="utf-8")) as lines:
                found += [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]
        except OSError as err:
            raise ConfigError(f"cannot read {name}: {err.strerror}") from None
    return list(dict.fromkeys(found))


def _finished_stats(out_dir: str) -> dict:
    if not fileio.is_remote(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"{out_dir}: no such folder")
    path = fileio.join(out_dir, "stats.json")
    if not fileio.exists(path):
        raise ConfigError(f"{out_dir} holds no finished run (no stats.json)")
    return json.loads(fileio.read_bytes(path))


def _shards_of_samples(out_dir: str, pool: ThreadPoolExecutor) -> dict[str, int]:
    """key -> shard of every sample in the folder's finished shards (their parquet key columns)."""
    ids = shard_ids(out_dir)
    columns = pool.map(lambda shard_id: column_if_any(shard_paths(out_dir, shard_id)["parquet"], "key"), ids)
    return {key: shard_id for shard_id, keys in zip(ids, columns) for key in keys}


def _rejects_of(out_dir: str, keys: set[str]) -> dict[str, tuple[str, str]]:
    """key -> (stage, reason) of those of ``keys`` that the folder holds as rejects."""
    found = {}
    for path in reject_files(out_dir):
        table = read_parquet(path, ["key", "stage", "reason"]).to_pylist()
        found.update({row["key"]: (row["stage"], row["reason"]) for row in table if row["key"] in keys})
    return found


def tally_folder(out_dir: str, pool: ThreadPoolExecutor) -> dict:
    """written.json as the run's job tallies it (``pipeline.written``), from the folder's files."""
    summed = {step.stage: tuple(step.summed) for step in SHARD_STEPS}
    parts = list(pool.map(lambda shard_id: tally.shard(out_dir, shard_id, REJECT_PREFIXES, summed), shard_ids(out_dir)))
    pre = fileio.match(fileio.join(out_dir, REJECTS, PRE_REJECTS, "*.parquet"))
    parts += pool.map(lambda path: tally.reject_file(path, out_dir), pre)
    total = tally.empty()
    for part in parts:
        tally.add(total, part, summed)
    return total


def with_review(funnel: list[dict], rejected: int) -> list[dict]:
    """The funnel with its last stage the review that counts ``rejected`` samples (all a person
    rejected, less what review stages before later ones counted: ``altcap score`` after a review),
    as a resume of the run counts it."""
    before = funnel[:-1] if funnel and funnel[-1]["stage"] == STAGE else funnel
    now = rejected - sum(entry["rejected"] for entry in before if entry["stage"] == STAGE)
    entering = before[-1]["passed"] if before else now
    return before + [{"stage": STAGE, "in": entering, "passed": entering - now, "rejected": now,
                      "reasons": {REASON: now} if now else {}}]


def _human_rejects(out_dir: str) -> int:
    return sum(read_parquet(path, ["key"]).num_rows
               for path in fileio.match(fileio.join(out_dir, REJECTS, f"{REVIEW_REJECTS}-*.parquet")))


def _unknown(out_dir: str, keys: list[str]) -> tuple[list[str], list[str]]:
    """(the keys a person rejected before, a sentence on each other key): keys the folder holds
    as no sample."""
    rejects = _rejects_of(out_dir, set(keys)) if keys else {}
    already, problems = [], []
    for key in keys:
        if rejects.get(key) == (STAGE, REASON):
            already.append(key)
        elif key in rejects:
            problems.append(f"{key} is a reject already (stage {rejects[key][0]}, reason {rejects[key][1]})")
        else:
            problems.append(f"{key} is no sample or reject of {out_dir}")
    return already, problems


def review(out_dir: str, keys: list[str], note: str = "") -> dict:
    """Reject the samples ``keys`` of a finished folder for ``human_review`` with ``note``; returns
    what moved, the keys rejected before, the samples left, the report's path and the stats."""
    if not keys:
        raise ConfigError("altcap review: no key given (--reject KEY ... or --reject-file FILE)")
    stats = _finished_stats(out_dir)
    with ThreadPoolExecutor(READERS) as pool:
        where = _shards_of_samples(out_dir, pool)
        already, problems = _unknown(out_dir, [key for key in keys if key not in where])
        if problems:
            raise ConfigError(f"nothing rejected: {'; '.join(problems)}")
        decisions = read_decisions(out_dir) or {}
        if any(key not in decisions for key in keys):  # recorded first: what follows may be killed
            decisions = {**{key: note for key in keys}, **decisions}
            write_decisions(out_dir, decisions)
        moving = {key: shard_id for key, shard_id in where.items() if key in decisions}
        semantic = SemanticDedup.enabled(config_from_dict(stats["config"]))
        for shard_id in sorted(set(moving.values())):
            check = shard_check(out_dir, shard_id, decisions, semantic)
            drop_failing(out_dir, shard_id, check, stage=STAGE, rejects=REVIEW_REJECTS)
        written = tally_folder(out_dir, pool)
    stats["funnel"] = with_review(stats["funnel"], _human_rejects(out_dir))
    stats.update(samples=written["samples"], shards=written["shards"], rejects=written["rejects"])
    problems = check_funnel(stats["funnel"], samples_written=stats["samples"], rejects_written=stats["rejects"])
    stats["check"] = {"ok": not problems, "problems": problems}
    tally.write(out_dir, written)
    fileio.write_bytes(fileio.join(out_dir, "stats.json"), json.dumps(stats, indent=1, ensure_ascii=False).encode())
    report = write_report(out_dir, stats, written)
    if problems:
        raise AccountingError("records do not add up: " + "; ".join(problems))
    return {"moved": len(moving), "already": already, "samples": stats["samples"], "report": report, "stats": stats}
