"""The models apart from the downloads, in real Beam pipelines with a tiny offline CLIP and VQ:
``altcap score`` over a folder made without CLIP writes what CLIP inside the run writes (shards,
embeddings, tokens left for the kept samples, clip rejects, the funnel's clip stages), is idempotent
and finishes a shard killed half-way; ``pools.model_pass`` runs the model steps as their own pass
and writes what the fused shard step writes; the ``pools`` resource hints sit on the transforms
that run the models, and only there."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from crawl.serve import Route
from pipeline import score as score_job
from pipeline import tokenize as tokenize_job
from pipeline.cli import main
from pipeline.clip_step import ClipStep
from pipeline.model_pass import pass_over_shard, pending
from pipeline.run import OutputFolderError, build

from pipeline_helpers import (
    HOST,
    IN_MEMORY,
    PERMISSIVE,
    local_config,
    reject_rows,
    run_local,
    serve,
    shard_rows,
    stats_of,
)
from test_clip_stage import CAPTIONS, clip_settings, photo_jpegs, tiny_model  # noqa: F401
from test_tokens_stage import token_settings, vq  # noqa: F401

LABELS = ["astronaut", "coffee", "cat", "rocket", "camera", "cell", "square", "sofa"]
NAMED = ["Albert Einstein as an astronaut in a white suit", *CAPTIONS[1:]]  # a rewrite, and "a rocket": too few words
HYPERNYMIZE = ["hypernymize.enabled=true", "hypernymize.spacy_model=off"]
HINTS = ["pools.accelerator=type:nvidia-l4;count:1;install-nvidia-driver", "pools.min_ram=16GB"]
SHARD = 1  # a shard where CLIP keeps some samples and drops some
HINTED = {"beam:resources:accelerator:v1": b"type:nvidia-l4;count:1;install-nvidia-driver",
          "beam:resources:min_ram_bytes:v1": b"16000000000"}


def folder_files(out) -> dict[str, bytes]:
    """The shards' tar and parquet files and side files by path (the stats hold timings; which file
    holds a reject differs)."""
    return {str(path.relative_to(out)): path.read_bytes() for folder in ("shards", "embeddings", "tokens")
            for path in sorted((out / folder).glob("*")) if path.is_file() and not path.name.endswith("_stats.json")}


def rows_of(out, *stages: str) -> list[dict]:
    return sorted((row for row in reject_rows(out) if not stages or row["stage"] in stages), key=lambda r: r["key"])


def reject_files(out, prefix: str) -> set[str]:
    return {path.name for path in (out / "rejects").glob(f"{prefix}-*")}


def shard_stats(out) -> dict[str, dict]:
    return {path.name: {k: v for k, v in json.loads(path.read_text()).items() if k != "elapsed_s"}
            for path in sorted((out / "shards").glob("*_stats.json"))}


def listing(path, captions: list[str]):
    path.write_text("".join(f"{caption}\thttp://{HOST}/{n}.jpg\n" for n, caption in enumerate(captions)))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, vq):  # noqa: F811
    """The runs compared, from the same listings (a sample's source names its listing)."""
    root = tmp_path_factory.mktemp("score")
    (root / "labels.txt").write_text("\n".join(LABELS))
    clip = clip_settings(tiny_model, "clip.min_score=-0.2", "clip.grounding=true", "clip.grounding_top_k=4",
                         f"clip.grounding_vocabulary={root / 'labels.txt'}", "clip.top_fraction=0.5")
    common = [*PERMISSIVE, *token_settings(vq), "tokens.batch_size=1", "shards.samples_per_shard=3"]  # one image
    # a batch: the VQ codes each alike, whichever samples CLIP kept
    models = [*clip, *common, *HYPERNYMIZE]
    photos, named = listing(root / "photos.tsv", CAPTIONS), listing(root / "named.tsv", NAMED)
    with serve({f"/{n}.jpg": Route(data) for n, data in enumerate(photo_jpegs())}) as site:
        fused = run_local([photos], root / "fused", *clip, *common, site.connect_to)
        run_local([photos], root / "later", *common, site.connect_to)
        in_shards = run_local([named], root / "in-shards", *models, site.connect_to)
        apart = run_local([named], root / "apart", *models, "pools.model_pass=true", *HINTS, site.connect_to)
    shutil.copytree(root / "later", root / "unscored")
    scored = score_job.score(str(root / "later"), local_config(*clip), beam_args=IN_MEMORY)
    return SimpleNamespace(root=root, clip=clip, common=common, fused=fused, scored=scored, in_shards=in_shards,
                           apart=apart)


def test_score_writes_what_clip_in_the_run_writes(runs):
    fused, later = runs.root / "fused", runs.root / "later"
    shards = sorted(path.stem for path in (later / "shards").glob("*.tar"))
    assert len(shards) >= 2 and (runs.scored["shards_scored"], runs.scored["shards_skipped"]) == (len(shards), 0)
    kept = [row["key"] for row in shard_rows(fused)]
    assert 0 < len(kept) < len(CAPTIONS) and [row["key"] for row in shard_rows(later)] == kept
    assert folder_files(later) == folder_files(fused)  # tars, parquets, embeddings, tokens: byte for byte
    dropped = rows_of(fused, "clip", "clip_top")
    assert {(row["stage"], row["reason"]) for row in dropped} == {
        ("clip", "low_clip_score"), ("clip", "ungrounded"), ("clip_top", "below_top_fraction")}
    assert rows_of(later, "clip", "clip_top") == dropped
    assert reject_files(later, "clip") == {f"clip-{shard}.parquet" for shard in shards}

    stats, before = runs.scored["stats"], stats_of(runs.root / "unscored")
    assert stats == stats_of(later) and stats["check"] == {"ok": True, "problems": []}
    by_stage = {entry["stage"]: entry for entry in runs.fused["funnel"]}
    assert stats["funnel"] == before["funnel"] + [by_stage["clip"], by_stage["clip_top"]]  # after the run's stages
    assert (stats["samples"], stats["rejects"]) == (runs.fused["samples"], runs.fused["rejects"])
    assert (stats["clip"], stats["clip_top"]) == (runs.fused["clip"], runs.fused["clip_top"])
    assert stats["config"]["clip"] == runs.fused["config"]["clip"]
    assert [(s["samples"], s["clip"], s["stages"]["clip"]) for s in shard_stats(later).values()] == [
        (s["samples"], s["clip"], s["stages"]["clip"]) for s in shard_stats(fused).values()]
    assert "the top 0.5 kept" in (later / "report.html").read_text()


def test_score_again_skips_every_shard_and_a_killed_shard_finishes_alike(runs, tmp_path, capsys):
    later, unscored = runs.root / "later", runs.root / "unscored"
    files, rejects = folder_files(later), rows_of(later)
    assert main(["score", str(later), *sum((["--set", s] for s in runs.clip), []), *IN_MEMORY]) == 0
    shards = len(list((later / "shards").glob("*.tar")))
    assert f"0 shard(s) scored, {shards} already done" in capsys.readouterr().out
    assert folder_files(later) == files and rows_of(later) == rejects and stats_of(later) == runs.scored["stats"]

    # one shard, Beam-free: scored whole, and killed before and after its commit (the pending stats)
    step = ClipStep.build(local_config(*runs.clip))
    whole, before_commit, after_commit = (tmp_path / name for name in ("whole", "before", "after"))
    for out in (whole, before_commit, after_commit):
        shutil.copytree(unscored, out)
    assert pass_over_shard(str(whole), SHARD, [step], "clip")[1]
    expected = folder_files(whole)
    name = f"{SHARD:05d}"
    assert pq.read_metadata(whole / "shards" / f"{name}.parquet").num_rows and rows_of(whole, "clip")  # kept, dropped
    for out in (before_commit, after_commit):  # written before the commit: pending tar, parquet, embeddings, rejects
        (out / pending(f"shards/{name}.tar")).write_bytes(expected[f"shards/{name}.tar"])
        for path in (f"shards/{name}.parquet", f"embeddings/{name}.npy", f"rejects/clip-{name}.parquet"):
            (out / path).parent.mkdir(exist_ok=True)
            shutil.copy(whole / path, out / path)
    shutil.copy(whole / "shards" / f"{name}_stats.json", after_commit / pending(f"shards/{name}_stats.json"))
    for out in (before_commit, after_commit):
        assert folder_files(out) != expected
        assert pass_over_shard(str(out), SHARD, [step], "clip")[1]
        assert folder_files(out) == expected and rows_of(out) == rows_of(whole)
        assert shard_stats(out) == shard_stats(whole) and not list(out.rglob("*.pending"))
    assert pass_over_shard(str(whole), SHARD, [step], "clip")[1] is False


def test_score_refuses_what_it_cannot_finish(runs, tmp_path, capsys):
    settings = sum((["--set", s] for s in runs.clip), [])
    assert main(["score", str(runs.root / "fused"), *settings, *IN_MEMORY]) == 2
    assert "was scored in its run (clip.enabled)" in capsys.readouterr().err
    assert main(["score", str(runs.root / "later"), *settings, "--set", "clip.min_score=0.1", *IN_MEMORY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings (clip.min_score -0.2 -> 0.1)" in err
    assert main(["score", str(tmp_path), *settings, *IN_MEMORY]) == 2
    assert "holds no finished shards" in capsys.readouterr().err
    with pytest.raises(OutputFolderError, match="clip.enabled"):  # the run's own settings no longer describe it
        run_local([runs.root / "photos.tsv"], runs.root / "later", *runs.common)


def test_the_model_pass_writes_what_the_fused_shard_step_writes(runs):
    in_shards, apart = runs.root / "in-shards", runs.root / "apart"
    assert folder_files(apart) == folder_files(in_shards)
    assert rows_of(apart) == rows_of(in_shards)
    stages = {row["stage"] for row in rows_of(in_shards)}
    assert {"clip", "hypernymize", "clip_top"} <= stages  # every model step and a whole-run cut dropped some
    assert reject_files(apart, "models") == {f"models-{path.stem}.parquet" for path in (apart / "shards").glob("*.tar")}
    assert shard_stats(apart) == shard_stats(in_shards)
    for name in ("funnel", "samples", "rejects", "check", "clip", "hypernymize", "tokens", "clip_top"):
        assert runs.apart[name] == runs.in_shards[name], name
    assert any("Physicist" in row["caption_hypernymized"] for row in shard_rows(apart))


def hints_by_transform(pipeline: beam.Pipeline) -> dict[str, dict]:
    proto = pipeline.to_runner_api()
    environments = proto.components.environments
    return {t.unique_name: dict(environments[t.environment_id].resource_hints)
            for t in proto.components.transforms.values() if t.environment_id}


def test_the_resource_hints_sit_on_the_model_transforms_only(tmp_path, tiny_model, vq):  # noqa: F811
    models = [*clip_settings(tiny_model), *token_settings(vq), *HINTS]
    items = [("tsv", str(tmp_path / "list.tsv"))]
    apart, fused, scoring, tokenizing = (beam.Pipeline() for _ in range(4))
    build(apart, items, local_config(*models, "pools.model_pass=true"), str(tmp_path))
    build(fused, items, local_config(*models), str(tmp_path))
    score_job.build(scoring, [0, 1], local_config(*models, "clip.top_fraction=0.5"), str(tmp_path))
    tokenize_job.build(tokenizing, [0, 1], local_config(*models), str(tmp_path))

    found = hints_by_transform(apart)
    hinted = {name for name, hints in found.items() if hints}
    assert hinted == {"ModelPass/ModelSteps"} and found["ModelPass/ModelSteps"] == HINTED
    assert not found["BuildShards"]
    assert {name for name, hints in hints_by_transform(fused).items() if hints} == {"BuildShards"}
    assert {name for name, hints in hints_by_transform(scoring).items() if hints} == {"Score/ModelSteps"}
    assert hints_by_transform(tokenizing)["Tokenize"] == HINTED
    plain = beam.Pipeline()
    build(plain, items, local_config(*clip_settings(tiny_model)), str(tmp_path))
    assert not any(hints_by_transform(plain).values())  # no pools settings: no hints
