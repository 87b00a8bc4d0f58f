"""Two revisions of altcap side by side on the same inputs: the outputs must be the same.

    .venv/bin/python benchmarks/same_output.py [--base REV] [--keep DIR]

Checks out ``--base`` (default: HEAD) into a temporary git worktree and runs it and this working
tree, each in its own process, on two cases:

- ``demo``: ``altcap demo`` (a WARC of two gallery pages, CLIP without weights, hypernymization);
- ``books``: the real ``books.toscrape.warc`` from ../shared/realdata, its images served on
  127.0.0.1 under their own host name, with a tiny CLIP model that has weights (the cut, the top
  fraction and embeddings), hypernymization with the concept cut, and image dedup.

Compared: every file under ``shards/``, ``embeddings/``, ``tokens/`` and ``rejects/`` by name; tars byte for byte;
parquet files row for row (the rejects Beam writes before the shards, whose file names vary, as
one sorted list); each shard's funnel; ``stats.json``'s funnel and totals; the whole-run passes'
summaries (as JSON). A model without weights scores at random and its init was not seeded before this
script was written, so where a shard says its CLIP model had no weights, ``clip_score`` and the
embeddings are left out of the comparison. Exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))
BOOKS_WARC = REALDATA / "warc" / "node-warc" / "books.toscrape.warc"
BOOKS_HOST = "books.toscrape.com"
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
BOOKS_SETTINGS = [
    "download.allow_private_addresses=true", "download.retries=0", "download.timeout=5", "download.host_rps=0",
    "text.preset=laion", "text.min_chars=0", "text.max_repeats=0",
    "image.formats=jpeg,png,webp,gif", "image.min_side=1", "image.max_aspect_ratio=1000",
    "shards.samples_per_shard=6",
    "clip.enabled=true", "clip.device=cpu", "clip.precision=fp32", "clip.batch_size=4",
    "clip.min_score=-0.5", "clip.top_fraction=0.5",
    "hypernymize.enabled=true", "hypernymize.spacy_model=off", "hypernymize.reject_unresolved=false",
    "hypernymize.min_concept_mentions=2",
]
RANDOM_FIELDS = ("clip_score",)  # what a model without weights makes up


def tiny_clip(folder: Path) -> str:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return f"local-dir:{folder}"


def books_routes() -> dict:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    from crawl.serve import Route

    routes = {}
    with open(BOOKS_WARC, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if (record.http_content_type or "").startswith("image/"):
                url = record.headers.get("WARC-Target-URI")
                routes["/" + url.split("/", 3)[3]] = Route(record.reader.read(), content_type="image/jpeg")
    return routes


def altcap(tree: Path, *args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"altcap {args[0]} in {tree} ended with {done.returncode}:\n{done.stderr[-3000:]}")


def run_cases(tree: Path, work: Path, name: str, clip_model: str, port: int | None) -> list[str]:
    """Each case runs in ``work/run/CASE`` (records name their input files, and the demo writes its
    WARC into its output folder), then moves to ``work/NAME/CASE``."""
    cases = {"demo": ["demo"]}
    if port is not None:
        settings = BOOKS_SETTINGS + [f"clip.model={clip_model}",
                                     f'download.connect_to=["{BOOKS_HOST}:80:127.0.0.1:{port}"]']
        cases["books"] = ["run", "--input", str(BOOKS_WARC), *[a for s in settings for a in ("--set", s)]]
    for case, args in cases.items():
        altcap(tree, *args, "--output", str(work / "run" / case))
        (work / name).mkdir(exist_ok=True)
        (work / "run" / case).rename(work / name / case)
    return list(cases)


# --- comparison ----------------------------------------------------------------------------------

def random_scores(out: Path) -> bool:
    """Whether the run's CLIP model had no weights (its scores are noise)."""
    for path in (out / "shards").glob("*_stats.json"):
        clip = json.loads(path.read_text()).get("clip")
        if clip and not clip["filtering"]:
            return True
    return False


def masked(row: dict, mask: bool) -> dict:
    return {k: (None if mask and k in RANDOM_FIELDS else v) for k, v in row.items()}


def parquet_rows(path: Path, mask: bool) -> list[dict]:
    return [masked(row, mask) for row in pq.read_table(path).to_pylist()]


def tar_members(path: Path, mask: bool) -> list[tuple[str, bytes]]:
    members = []
    with tarfile.open(path) as tar:
        for member in tar:
            data = tar.extractfile(member).read()
            if mask and member.name.endswith(".json"):
                data = json.dumps(masked(json.loads(data), mask), ensure_ascii=False).encode()
            members.append((member.name, data))
    return members


def compare(base: Path, new: Path) -> tuple[int, list[str]]:
    """(files compared, differences) between two output folders."""
    mask = random_scores(base) or random_scores(new)
    differences = []

    def files(out: Path) -> set[str]:
        found = {str(p.relative_to(out)) for sub in ("shards", "embeddings", "tokens", "rejects")
                 if (out / sub).exists() for p in (out / sub).rglob("*") if p.is_file()}
        return {name for name in found if not name.startswith("rejects/pre/")}

    names = files(base)
    if names != files(new):
        differences.append(f"files only in base: {sorted(names - files(new))}; "
                           f"only in new: {sorted(files(new) - names)}")
    for name in sorted(names & files(new)):
        a, b = base / name, new / name
        if name.endswith(".tar"):
            same = a.read_bytes() == b.read_bytes() if not mask else tar_members(a, mask) == tar_members(b, mask)
        elif name.startswith("embeddings/") and mask:
            same = np.array_equal(np.load(a)["key"], np.load(b)["key"])
        elif name.endswith(".parquet"):
            same = parquet_rows(a, mask) == parquet_rows(b, mask)
        elif name.endswith("_stats.json"):
            fields = ("shard", "keys_digest", "records", "samples", "stages")
            same = [json.loads(a.read_text())[f] for f in fields] == [json.loads(b.read_text())[f] for f in fields]
        else:
            same = a.read_bytes() == b.read_bytes()
        if not same:
            differences.append(f"{name} differs")

    def early_rejects(out: Path) -> list:
        rows = [parquet_rows(p, mask) for p in sorted((out / "rejects" / "pre").glob("*.parquet"))]
        return sorted((json.dumps(r, sort_keys=True, default=str) for part in rows for r in part))

    if early_rejects(base) != early_rejects(new):
        differences.append("rejects/pre/ rows differ")
    stats = [json.loads((out / "stats.json").read_text()) for out in (base, new)]
    for field in ("funnel", "samples", "shards", "rejects"):
        if stats[0][field] != stats[1][field]:
            differences.append(f"stats.json {field}: {stats[0][field]} != {stats[1][field]}")
    for summary in ("concepts.json", "clip_top.json"):
        found = [json.loads((out / summary).read_text()) if (out / summary).exists() else None for out in (base, new)]
        if found[0] != found[1]:
            differences.append(f"{summary} differs")
    return len(names) + 1, differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the revision to compare with (default HEAD)")
    parser.add_argument("--keep", metavar="DIR", help="keep both outputs in this folder")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="altcap-same-"))
    base_tree = work / "base-tree"
    for old in (base_tree, work / "base", work / "new", work / "run"):
        shutil.rmtree(old, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(base_tree), args.base], cwd=ROOT, check=True)
    try:
        clip_model = tiny_clip(work / "tiny-clip")
        if not BOOKS_WARC.exists():
            print(f"{BOOKS_WARC} not found: comparing the demo only")
        from crawl.serve import LocalServer

        with LocalServer(books_routes() if BOOKS_WARC.exists() else {}) as server:
            port = server.port if BOOKS_WARC.exists() else None
            for name, tree in (("base", base_tree), ("new", ROOT)):
                print(f"running {name} ({tree}) ...", flush=True)
                cases = run_cases(tree, work, name, clip_model, port)
        failed = False
        print(f"\n{'case':<8}{'files':>7}  result (base {args.base} vs the working tree)")
        for case in cases:
            compared, differences = compare(work / "base" / case, work / "new" / case)
            stats = json.loads((work / "new" / case / "stats.json").read_text())
            funnel = ", ".join(f"{e['stage']} {e['in']}/{e['passed']}/{e['rejected']}" for e in stats["funnel"])
            print(f"{case:<8}{compared:>7}  {'identical' if not differences else 'DIFFERENT'}"
                  f"{' (clip_score left out: no weights)' if random_scores(work / 'new' / case) else ''}")
            print(f"{'':<17}{stats['samples']} samples, {stats['rejects']} rejects; in/passed/rejected: {funnel}")
            for difference in differences:
                print(f"{'':<17}- {difference}")
            failed |= bool(differences)
        return 1 if failed else 0
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
