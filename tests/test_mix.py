"""``altcap mix`` and the trainer on its manifest: what the manifest records, what it refuses, each
batch's share of every source, a mixed stream's seeded order and exact resume, and a training run
on real token files that resumes exactly and records the manifest in its checkpoint."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil

import numpy as np
import pytest
import torch

from dataset.layout import TOKENIZERS_FILE, TOKENS
from dataset.side_arrays import write_side
from synth.mix import MixError, mix_arguments, read, run_mix
from tokens.manifest import TokenizerMismatch
from trainer.data import MixedStream, TokenStream
from trainer.train import TrainConfigError, load_train_config, train

from test_trainer import settings, token_folder  # noqa: F401 (token_folder: real token files, a fixture)
from test_trainer_data import VAL, file_rows, held_out, ids
from test_trainer_data import manifest as tokenizers
from test_trainer_data import token_folder as rows_folder

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def mix(output, *sources: str) -> int:
    """``altcap mix SOURCES --output OUTPUT``, its arguments parsed as the command's."""
    parser = argparse.ArgumentParser()
    mix_arguments(parser)
    return run_mix(parser.parse_args([*sources, "--output", str(output)]))


@pytest.fixture
def real_and_synth(tmp_path) -> list[str]:
    """Two folders of one tokenizer's rows, 179 and 51 (text_ids[0] is the row's id: 1000 and up in synth)."""
    return [rows_folder(tmp_path, "real", [31, 47, 23, 40, 38]),
            rows_folder(tmp_path, "synth", [29, 22], first_id=1000)]


def test_the_manifest_records_each_folder_with_its_share_rows_and_token_files(real_and_synth, tmp_path, capsys,
                                                                              monkeypatch):
    real, synth = real_and_synth
    monkeypatch.chdir(tmp_path)
    assert mix("mix.json", "real=4", "synth") == 0  # relative folders, a weight of 1 when none is given
    written = json.loads((tmp_path / "mix.json").read_text())
    digests = [source["tokens_sha"] for source in written["sources"]]
    assert written == {"version": 1, "tokenizers": tokenizers(), "sources": [
        {"folder": real, "weight": 0.8, "files": 5, "samples": 179, "tokens_sha": digests[0]},
        {"folder": synth, "weight": 0.2, "files": 2, "samples": 51, "tokens_sha": digests[1]}]}
    assert all(len(digest) == 64 for digest in digests) and digests[0] != digests[1]
    assert read("mix.json") == written
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f" 80.0% of the rows from 179 samples (1.03x as often as in a plain list): {real}",
                     f" 20.0% of the rows from 51 samples (0.90x as often as in a plain list): {synth}",
                     "wrote mix.json: train on it with --set data=mix.json"]


@pytest.fixture
def refused(tmp_path, real_and_synth) -> str:
    """Folders the refusals need beside real and synth: other tokenizers, no tokens, no rows, a pickle."""
    rows_folder(tmp_path, "other", [10], first_id=2000, grid=4)
    os.makedirs(tmp_path / "empty")
    os.makedirs(tmp_path / "rowless" / TOKENS.folder)
    (tmp_path / "rowless" / TOKENS.folder / TOKENIZERS_FILE).write_text(json.dumps(tokenizers()))
    shutil.copytree(tmp_path / "rowless", tmp_path / "pickled")
    np.save(tmp_path / "pickled" / TOKENS.folder / "00000.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return str(tmp_path)


@pytest.mark.parametrize("sources, output, message", [
    (["real", "nowhere=1"], "mix.json", "nowhere: no such folder"),
    (["real", "empty"], "mix.json", "has no tokens (altcap tokenize"),
    (["real", "rowless"], "mix.json", "rowless has no token rows (tokens/*.npy): altcap tokenize"),
    (["real", "pickled"], "mix.json", "00000.npy is not a token file (Array can't be memory-mapped"),
    (["real", "other"], "mix.json", "holds tokens of other tokenizers than"),
    (["real", "synth=0"], "mix.json", "synth=0: a weight must be a number above 0"),
    (["real", "synth=-0.5"], "mix.json", "synth=-0.5: a weight must be a number above 0"),
    (["real", "synth=nan"], "mix.json", "synth=nan: a weight must be a number above 0"),
    (["real", "synth=inf"], "mix.json", "synth=inf: a weight must be a number above 0"),
    (["real", "synth=lots"], "mix.json", "synth=lots: the weight after = must be a number"),
    (["real", "synth", "real/=2"], "mix.json", "real/ is named twice"),
    (["real", "synth"], "mix.yaml", "--output mix.yaml: the name must end in .json"),
])
def test_a_mix_that_cannot_work_is_refused_in_one_line(refused, monkeypatch, capsys, sources, output, message):
    monkeypatch.chdir(refused)
    assert mix(output, *sources) == 2
    error = capsys.readouterr().err
    assert error.startswith("altcap mix: error: ") and message in error and error.count("\n") == 1, error
    assert not os.path.exists(output)
    if "other" in sources:
        assert "image.grid 2 -> 4" in error


def test_a_folder_changed_since_the_mix_is_refused(real_and_synth, tmp_path):
    real, synth = real_and_synth
    path = str(tmp_path / "mix.json")

    def changed(step) -> str:
        assert mix(path, f"{real}=3", synth) == 0
        step()
        with pytest.raises((MixError, TokenizerMismatch)) as refusal:
            read(path)
        return str(refusal.value)

    shard = os.path.join(synth, TOKENS.folder, "00001.npy")
    rows = np.load(shard)

    def new_images():  # the same keys and sizes (another synth run with the same prompts): other codes
        redrawn = rows.copy()
        redrawn["image_codes"][-1] = (redrawn["image_codes"][-1] + 1) % 64
        write_side(shard, redrawn)

    def one_more_shard():
        more = rows_folder(tmp_path / "more", "synth", [10], first_id=3000)
        shutil.copy(os.path.join(more, TOKENS.folder, "00000.npy"), os.path.join(synth, TOKENS.folder, "00002.npy"))

    assert changed(new_images) == (f"{synth} changed since {path} was written (2 token files, 51 samples then; "
                                   "2, 51 now): run altcap mix again")
    assert "(2 token files, 51 samples then; 2, 50 now)" in changed(lambda: write_side(shard, rows[1:]))  # reviewed
    assert "(2 token files, 50 samples then; 3, 60 now)" in changed(one_more_shard)
    retokenized = {**tokenizers(), "text": {**tokenizers()["text"], "sha256": "ef" * 32}}

    def retokenize(*folders):
        for folder in folders:
            with open(os.path.join(folder, TOKENS.folder, TOKENIZERS_FILE), "w") as handle:
                json.dump(retokenized, handle)

    assert f"{synth} holds tokens of other tokenizers than {real}" in changed(lambda: retokenize(synth))
    retokenize(real)
    with pytest.raises(TokenizerMismatch) as refusal:
        read(path)
    assert str(refusal.value) == (f"{path}: its folders now hold tokens of other tokenizers (text.sha256 "
                                  f"'{'cd' * 32}' -> '{'ef' * 32}'): run altcap mix again")
    assert f"{path}: {real} is gone" in changed(lambda: shutil.rmtree(real))

    for text, message in (("{", "not a mix manifest (Expecting"), ('{"version": 2}', "not a version 1 mix manifest"),
                          ('{"version": 1, "sources": [{"folder": "a", "weight": -1}], "tokenizers": {}}',
                           "not a version 1 mix manifest")):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(MixError, match=re.escape(message)):
            read(str(tmp_path / "bad.json"))
    with pytest.raises(MixError, match="no such mix manifest"):
        read(str(tmp_path / "none.json"))


def test_the_trainer_refuses_a_stale_manifest_and_one_beside_folders(real_and_synth, tmp_path):
    real, synth = real_and_synth
    path = str(tmp_path / "mix.json")
    assert mix(path, real, synth) == 0
    shard = os.path.join(real, TOKENS.folder, "00000.npy")
    write_side(shard, np.load(shard)[1:])
    with pytest.raises(TrainConfigError, match=f"{real} changed since {path} was written"):
        train(load_train_config(None, [f"data={path}", f"out_dir={tmp_path / 'out'}"]))
    with pytest.raises(TrainConfigError, match="a mix manifest stands alone"):
        train(load_train_config(None, [f"data={path},{synth}", f"out_dir={tmp_path / 'out'}"]))


def test_every_batch_draws_each_source_its_share(tmp_path, real_and_synth):
    real, synth = real_and_synth
    rows = file_rows(real_and_synth)
    source = {row_id: int(row_id >= 1000) for row_id in rows}
    stream = MixedStream(real_and_synth, [0.7, 0.3], 16, val_per_mille=VAL, mix=2)
    taken, synth_order = np.zeros(2), []
    for n in range(1, 301):  # 4,800 rows: synth's train rows about 30 times over, real's about 20
        batch = ids(next(stream))
        taken += np.bincount([source[row_id] for row_id in batch], minlength=2)
        assert np.abs(taken - np.array([0.7, 0.3]) * 16 * n).max() < 1  # its share to within a row, every batch
        synth_order += [row_id for row_id in batch if source[row_id]]
    train_synth = sorted(set(file_rows([synth])) - held_out(rows))
    epochs = [sorted(synth_order[i:i + len(train_synth)]) for i in range(0, len(synth_order), len(train_synth))]
    assert len(epochs) > 25 and all(epoch == train_synth for epoch in epochs[:-1])  # each epoch its rows once

    third = rows_folder(tmp_path, "third", [60], first_id=5000)
    weights = np.array([0.5, 0.3, 0.2])
    stream = MixedStream([*real_and_synth, third], list(weights * 10), 7, val_per_mille=VAL, mix=2)  # normalised
    taken = np.zeros(3)
    for n in range(1, 501):
        taken += np.bincount([0 if row_id < 1000 else 1 if row_id < 5000 else 2 for row_id in ids(next(stream))],
                             minlength=3)
        assert np.abs(taken - weights * 7 * n).max() < 1.5


@pytest.mark.parametrize("rank, world_size", [(0, 1), (1, 2)])
def test_a_mixed_stream_follows_its_seed_and_resumes_exactly(real_and_synth, rank, world_size):
    options = dict(rank=rank, world_size=world_size, val_per_mille=VAL, mix=2)

    def stream(seed: int = 3) -> MixedStream:
        return MixedStream(real_and_synth, [0.75, 0.25], 9, seed=seed, **options)

    reference = stream()
    expected = [ids(next(reference)) for _ in range(60)]  # 135 synth rows: its epochs repeat
    assert reference.state()["sources"][1]["epoch"] >= 2
    again, other = stream(), stream(seed=4)
    assert [ids(next(again)) for _ in range(60)] == expected and [ids(next(other)) for _ in range(60)] != expected
    for stop in (1, 7, 23, 41):
        first = stream()
        for _ in range(stop):
            next(first)
        resumed = stream()
        resumed.load_state(json.loads(json.dumps(first.state())))
        assert [ids(next(resumed)) for _ in range(60 - stop)] == expected[stop:]

    with pytest.raises(ValueError, match="another mix"):
        MixedStream(real_and_synth, [0.5, 0.5], 9, seed=3, **options).load_state(reference.state())
    with pytest.raises(ValueError, match="not of a list of folders"):
        TokenStream(real_and_synth, 9, **options).load_state(reference.state())
    with pytest.raises(ValueError, match="not of a mix"):
        stream().load_state(TokenStream(real_and_synth, 9, **options).state())


@pytest.fixture(scope="module")
def synth_folder(token_folder, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """Real token files of the same tokenizers standing in for altcap synth's output: token_folder's rows
    under other keys, with other images (the code grids mirrored)."""
    out = tmp_path_factory.mktemp("synth") / "run"
    os.makedirs(out / TOKENS.folder)
    for path in sorted((token_folder / TOKENS.folder).glob("*.npy")):
        rows = np.load(path)
        rows["key"] = [hashlib.sha1(f"synth/{key}".encode()).hexdigest()[:20] for key in rows["key"]]
        rows["image_codes"] = rows["image_codes"][:, ::-1]
        write_side(str(out / TOKENS.folder / path.name), rows)
    shutil.copy(token_folder / TOKENS.folder / TOKENIZERS_FILE, out / TOKENS.folder / TOKENIZERS_FILE)
    return out


def test_the_trainer_trains_on_a_manifest_resumes_exactly_and_records_it(token_folder, synth_folder,  # noqa: F811
                                                                         tmp_path):
    path = tmp_path / "mix.json"
    assert mix(path, f"{token_folder}=0.8", f"{synth_folder}=0.2") == 0
    straight = train(settings(path, tmp_path / "straight", "max_steps=6", "batch_size=8"))
    interrupted = settings(path, tmp_path / "resumed", "max_steps=6", "batch_size=8")
    first_part = train(interrupted, stop_after=4)
    second_part = train(interrupted)
    assert len(straight) == 6 and all(map(math.isfinite, straight))
    np.testing.assert_allclose(first_part + second_part, straight, rtol=1e-5)  # CPU fp32: same to rounding

    checkpoint = tmp_path / "straight" / "checkpoint"
    meta = json.loads((checkpoint / "model.json").read_text())
    assert meta["mix"] == json.loads(path.read_text()) and meta["train"]["data"] == [str(path)]
    sources = torch.load(checkpoint / "state.pt", weights_only=True)["data"][0]["sources"]
    assert [source["folder"] for source in sources] == [str(token_folder), str(synth_folder)]
    assert abs(sources[0]["taken"] - 0.8 * 6 * 8) < 1 and sources[0]["taken"] + sources[1]["taken"] == 6 * 8
    log = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6 and log[-1]["val_loss"] is not None  # the held-out rows of both folders

    with pytest.raises(TrainConfigError, match="was trained on other data than data names now"):
        train(settings(token_folder, tmp_path / "straight", "max_steps=8", "batch_size=8"))
