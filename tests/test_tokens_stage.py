"""The tokens stage in real Beam pipelines, with a tiny VQ model saved by diffusers and CLIP's BPE:
every written sample's codes are the model's codes for the written image and its ids decode to the
.txt caption; token rows follow the shard's keys through the whole-run cuts and a resume;
``altcap tokenize`` over finished shards writes the same files byte for byte, resumes shard by
shard, and refuses a folder that other tokenizers made."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from pipeline.cli import main
from pipeline.shard_step import run_steps
from pipeline.tokenize import tokenize
from pipeline.tokens_step import TokensStep, vq_preprocess
from tokens.config import TokensConfig
from tokens.image_codes import ImageTokenizer
from tokens.text_ids import CLIP, TextTokenizer

from pipeline_helpers import IN_MEMORY, local_config, reasons, shard_rows, tar_samples
from test_clip_stage import CAPTIONS, clip_settings, photo_jpegs, run_with, tiny_model  # noqa: F401
from test_tokens import tiny_vq

SIZE, LENGTH = 64, 10
LONG = "a very long caption about a photo that goes on and on past the length"  # cut to fit
TEXTS = CAPTIONS[:-1] + [LONG]


@pytest.fixture(scope="module")
def vq(tmp_path_factory):
    return tiny_vq(tmp_path_factory.mktemp("vq"), 4, 64)


def token_settings(vq: str, *more: str) -> list[str]:
    return ["tokens.enabled=true", *token_model(vq), *more]


def token_model(vq: str) -> list[str]:
    return [f"tokens.image_model={vq}", f"tokens.image_size={SIZE}", f"tokens.text_length={LENGTH}",
            "tokens.device=cpu", "tokens.precision=fp32", "tokens.batch_size=3"]


def token_files(out) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((out / "tokens").glob("*.npy"))}


def token_rows(out) -> list:
    return [row for path in sorted((out / "tokens").glob("*.npy")) for row in np.load(path, mmap_mode="r")]


def assert_rows_follow_the_shards(out) -> None:
    for parquet in sorted((out / "shards").glob("*.parquet")):
        rows = np.load(out / "tokens" / f"{parquet.stem}.npy")
        assert rows["key"].tolist() == pq.read_table(parquet).column("key").to_pylist()


def test_codes_and_ids_of_every_written_sample(tmp_path, vq):
    stats = run_with(tmp_path, "run", photo_jpegs(), TEXTS, *token_settings(vq))
    entry = next(e for e in stats["funnel"] if e["stage"] == "tokens")
    assert (entry["in"], entry["passed"], entry["rejected"]) == (8, 8, 0)
    out = tmp_path / "run"
    rows = token_rows(out)
    samples = tar_samples(out)
    assert {str(row["key"]) for row in rows} == set(samples) and len(rows) == 8
    assert rows[0]["image_codes"].dtype == np.uint16 and rows[0]["image_codes"].shape == (64,)  # 8x8 codes
    assert rows[0]["text_ids"].dtype == np.uint16 and rows[0]["text_ids"].shape == (LENGTH,)

    # the codes are the model's own for the written image, resized and cropped as the step does
    tokenizer = ImageTokenizer(vq, image_size=SIZE)
    images = [Image.open(io.BytesIO(samples[str(row["key"])]["jpg"])).convert("RGB") for row in rows]
    expected = tokenizer.encode_pixels(torch.stack([vq_preprocess(SIZE)(image) for image in images]))
    assert np.array_equal(np.stack([row["image_codes"] for row in rows]), expected.numpy())

    # the ids decode to the .txt caption; the one cut to fit is counted and decodes to its start
    text = TextTokenizer(CLIP)
    for row in rows:
        caption = samples[str(row["key"])]["txt"].decode()
        decoded = text.decode(row["text_ids"][:row["text_length"]])
        assert decoded == caption if caption != LONG else LONG.startswith(decoded) and len(decoded) < len(LONG)
    assert stats["tokens"]["captions_truncated"] == 1 and stats["tokens"]["precision"] == "fp32"
    assert "Tokens: 8x8 codes of 64 from" in (out / "report.html").read_text()

    manifest = json.loads((out / "tokens" / "tokenizers.json").read_text())
    assert manifest["image"]["sha256"] == tokenizer.files.sha256 == stats["tokens"]["sha256"]
    image, text_spec = manifest["image"], manifest["text"]
    assert (image["grid"], image["codebook_size"], text_spec["length"]) == (8, 64, LENGTH)
    assert manifest["text"]["sha256"] == text.sha256 and manifest["text"]["vocab_size"] == 49408


def test_token_rows_follow_the_keys_through_every_whole_run_cut_and_a_resume(tmp_path, vq, tiny_model):  # noqa: F811
    images = photo_jpegs()
    images[5] = images[1]  # a duplicate image: dedup drops one
    texts = ["Albert Einstein beside a rocket", *TEXTS[1:]]  # the run's only physicist: the concept cut drops it
    settings = [*token_settings(vq), *clip_settings(tiny_model, "clip.min_score=-1", "clip.top_fraction=0.8"),
                "hypernymize.enabled=true", "hypernymize.spacy_model=off", "hypernymize.min_concept_mentions=2",
                "shards.samples_per_shard=3"]
    stats, again = run_with(tmp_path, "cut", images, texts, *settings, times=2)
    out = tmp_path / "cut"
    cut = [reasons(stats, stage) for stage in ("concepts", "clip_top", "image_dedup")]
    assert [sum(found.values()) for found in cut] == [1, 1, 1] and cut[2] == {"duplicate_image": 1}
    kept = {row["key"] for row in shard_rows(out)}
    assert {str(row["key"]) for row in token_rows(out)} == kept and len(kept) == stats["samples"]
    assert_rows_follow_the_shards(out)
    assert again["funnel"] == stats["funnel"]
    assert {str(row["key"]) for row in token_rows(out)} == kept


def test_tokenize_writes_the_same_files_resumes_and_refuses_other_tokenizers(tmp_path, vq, capsys):
    run_with(tmp_path, "with", photo_jpegs(), TEXTS, *token_settings(vq), "shards.samples_per_shard=3")
    run_with(tmp_path, "later", photo_jpegs(), TEXTS, "shards.samples_per_shard=3")
    later = tmp_path / "later"
    assert not (later / "tokens").exists()
    config = local_config("tokens.enabled=true", *token_model(vq))
    found = tokenize(str(later), config, beam_args=IN_MEMORY)
    expected = token_files(tmp_path / "with")
    assert len(expected) >= 2 and token_files(later) == expected  # byte for byte
    assert (found["shards_written"], found["samples"], found["captions_truncated"]) == (len(expected), 8, 1)
    assert ((later / "tokens" / "tokenizers.json").read_text()
            == (tmp_path / "with" / "tokens" / "tokenizers.json").read_text())

    again = tokenize(str(later), config, beam_args=IN_MEMORY)
    assert (again["shards_written"], again["shards_skipped"]) == (0, len(expected))
    first = sorted(expected)[0]
    (later / "tokens" / first).unlink()  # a job killed before this shard
    resumed = tokenize(str(later), config, beam_args=IN_MEMORY)
    assert (resumed["shards_written"], resumed["shards_skipped"]) == (1, len(expected) - 1)
    assert token_files(later) == expected

    other = tiny_vq(tmp_path / "other-vq", 4, 32)  # another codebook
    code = main(["tokenize", str(later), *sum((["--set", s] for s in token_model(other)), []), *IN_MEMORY])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "tokenizers.json names other tokenizers" in err
    assert "image.codebook_size 64 -> 32" in err and token_files(later) == expected


def test_a_bpe_trained_on_the_run_and_a_picture_of_the_tokens(tmp_path, vq, capsys):
    run_with(tmp_path, "run", photo_jpegs(), TEXTS, *token_settings(vq))
    out = tmp_path / "run"
    assert main(["tokenizer", "train", str(out), "--vocab", "300"]) == 0
    assert f"--set tokens.text_tokenizer={out}/tokenizer" in capsys.readouterr().out
    bpe = TextTokenizer(str(out / "tokenizer"))
    assert 258 < bpe.vocab_size <= 300  # 256 bytes, 2 specials, and the merges 8 captions hold
    encoded = bpe.encode(TEXTS, 40)
    assert [bpe.decode(row) for row in encoded.ids] == TEXTS  # byte-level: lossless

    # other text ids in the same folder are refused
    code = main(["tokenize", str(out), "--set", f"tokens.text_tokenizer={out}/tokenizer",
                 *sum((["--set", s] for s in token_model(vq)[1:]), [f"--set=tokens.image_model={vq}"]), *IN_MEMORY])
    assert code == 2 and "text.sha256" in capsys.readouterr().err

    keys = [str(row["key"]) for row in token_rows(out)][:2]
    assert main(["tokens", "show", str(out), "--key", keys[0], "--key", keys[1], "--png", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out.splitlines()
    samples = tar_samples(out)
    assert [line.split("\t") for line in printed[:2]] == [[key, samples[key]["txt"].decode()] for key in keys]
    picture = Image.open(tmp_path / "s.png")
    assert picture.width == 2 * SIZE + 3 * 8 and picture.height > 2 * SIZE
    assert main(["tokens", "show", str(out), "--key", "nope"]) == 2


def test_an_image_the_model_cannot_read_costs_its_record_not_the_batch(vq):
    step = TokensStep(TokensConfig(enabled=True, image_model=vq, image_size=SIZE, text_length=LENGTH, device="cpu",
                                   precision="fp32"))
    good = photo_jpegs()[:2]
    batch = [{"key": "a", "caption": "a photo", "image_bytes": good[0]},
             {"key": "b", "caption": "cut short", "image_bytes": good[1][:200]},
             {"key": "c", "caption": "another photo", "image_bytes": good[1]}]
    out = list(run_steps([step], batch, None, 0))
    assert [o["key"] for o in out] == ["a", "b", "c"]
    assert (out[1]["stage"], out[1]["reason"]) == ("tokens", "internal_error") and "tokens" not in out[1]
    expected = ImageTokenizer(vq, image_size=SIZE).encode_pixels(
        torch.stack([vq_preprocess(SIZE)(Image.open(io.BytesIO(blob)).convert("RGB")) for blob in good]))
    assert np.array_equal(np.stack([out[0]["tokens"][2], out[2]["tokens"][2]]), expected.numpy())
