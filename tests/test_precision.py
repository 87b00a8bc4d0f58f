"""Precision auto (filters/precision.py): the fastest precision within the bound, from work of real,
different cost; the cache in a private XDG_CACHE_HOME; the VQ tokenizer's calibration on a tiny
VQModel (tokens/vq_precision.py)."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time

import numpy as np
import pytest
import torch

from filters import precision
from filters.precision import Calibration, cache_path, calibrate, check_photos, machine_id
from tokens import vq_precision
from tokens.image_codes import ImageTokenizer

from test_tokens import SIZE, tiny_vq

CPU = torch.device("cpu")
EXACT = np.linspace(0, 1, 8)
WITHIN_001 = (lambda exact, found: float(np.abs(found - exact).max()), lambda gap: gap <= 0.01)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class Work:
    """Per precision: how long one run of the check set takes (really: it sleeps) and what it
    outputs. Counts the models readied and the runs."""

    def __init__(self, seconds: dict[str, float], errors: dict[str, float] | None = None):
        self.seconds, self.errors = seconds, errors or {}
        self.prepared: list[str] = []
        self.runs = 0

    def prepare(self, name: str):
        self.prepared.append(name)

        def run():
            self.runs += 1
            time.sleep(self.seconds[name])
            return EXACT + self.errors.get(name, 0.0)
        return run

    def calibrate(self, model: str = "model", candidates=("bf16", "int8")) -> Calibration:
        return calibrate("test", model, CPU, candidates, len(EXACT), self.prepare, *WITHIN_001)


def test_the_fastest_precision_within_the_bound_wins():
    work = Work({"fp32": 0.02, "bf16": 0.002, "int8": 0.008}, errors={"bf16": 0.004, "int8": 0.001})
    found = work.calibrate()
    assert found.precision == "bf16"
    assert found.rates["bf16"] > found.rates["int8"] > found.rates["fp32"]
    assert found.agreement == pytest.approx({"fp32": 0.0, "bf16": 0.004, "int8": 0.001})
    assert work.prepared == ["fp32", "bf16", "int8"]  # fp32 first: the reference


def test_a_fast_precision_outside_the_bound_is_refused():
    work = Work({"fp32": 0.02, "bf16": 0.002, "int8": 0.01}, errors={"bf16": 0.5, "int8": 0.009})
    found = work.calibrate()
    assert found.precision == "int8" and found.rates["bf16"] > found.rates["int8"]
    assert found.agreement["bf16"] == pytest.approx(0.5)


def test_fp32_stays_when_nothing_is_faster_or_within_the_bound():
    assert Work({"fp32": 0.005, "bf16": 0.01, "int8": 0.02}).calibrate().precision == "fp32"
    assert Work({"fp32": 0.02, "bf16": 0.002, "int8": 0.002}, errors={"bf16": 1, "int8": 1}).calibrate().precision \
        == "fp32"


def test_a_precision_that_cannot_run_is_not_chosen():
    work = Work({"fp32": 0.02, "bf16": 0.002})
    failing = work.prepare

    def prepare(name: str):
        if name == "int8":
            raise NotImplementedError("no int8 kernels here")
        return failing(name)
    work.prepare = prepare
    found = work.calibrate()
    assert found.precision == "bf16"
    assert found.rates["int8"] == 0 and math.isnan(found.agreement["int8"])


def test_a_second_call_finds_the_cache_and_measures_nothing():
    first = Work({"fp32": 0.02, "bf16": 0.002, "int8": 0.008})
    chosen = first.calibrate()
    assert os.path.dirname(cache_path()) == os.path.join(os.environ["XDG_CACHE_HOME"], "altcap")
    second = Work({"fp32": 0.002, "bf16": 0.02, "int8": 0.02})  # would choose fp32 if it measured
    assert second.calibrate() == chosen and second.prepared == [] and second.runs == 0
    assert second.calibrate(candidates=("bf16",)).precision == "bf16"  # fewer candidates: still cached
    assert second.prepared == []
    assert second.calibrate(model="another").precision == "fp32" and second.prepared == ["fp32", "bf16", "int8"]
    cache = json.loads(open(cache_path()).read())
    assert [key.split(" | ")[:2] for key in cache] == [["test", "another"], ["test", "model"]]


def test_a_new_candidate_is_measured():
    Work({"fp32": 0.02, "bf16": 0.002}).calibrate(candidates=("bf16",))
    work = Work({"fp32": 0.02, "bf16": 0.004, "int8": 0.002})
    assert work.calibrate().precision == "int8" and work.prepared == ["fp32", "bf16", "int8"]


@pytest.mark.parametrize("damage", ["torn", "not json", "a list", "entry malformed"])
def test_a_damaged_cache_is_measured_again(caplog, damage):
    Work({"fp32": 0.02, "bf16": 0.002, "int8": 0.008}).calibrate()
    text = open(cache_path()).read()
    key = next(iter(json.loads(text)))
    damaged = {"torn": text[:len(text) // 2], "not json": "\0\0\0", "a list": "[1, 2]",
               "entry malformed": json.dumps({key: {"rates": {"fp32": "fast"}}})}[damage]
    with open(cache_path(), "w") as handle:
        handle.write(damaged)
    again = Work({"fp32": 0.002, "bf16": 0.02, "int8": 0.02})
    with caplog.at_level(logging.WARNING, "altcap"):
        assert again.calibrate().precision == "fp32"
    assert again.prepared == ["fp32", "bf16", "int8"]
    assert ("unreadable" in caplog.text) == (damage in ("torn", "not json"))
    assert json.loads(open(cache_path()).read())[key]["rates"]["fp32"] > 0  # whole again


def test_concurrent_writers_never_leave_a_torn_file(caplog):
    def write(n: int):
        for i in range(15):
            precision._store(f"writer {n} entry {i}", {"rates": {"fp32": 1.0}, "agreement": {"fp32": 0.0}})

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    with caplog.at_level(logging.WARNING, "altcap"):
        for thread in writers:
            thread.start()
        while any(thread.is_alive() for thread in writers):
            assert isinstance(precision._read_cache(), dict)
        for thread in writers:
            thread.join()
    assert caplog.text == ""  # never unreadable, never failed to write
    assert os.listdir(os.path.dirname(cache_path())) == ["precision.json"]  # no temporary file left


def test_machine_id_names_the_processor_count_and_torch():
    found = machine_id(CPU)
    assert found.startswith("cpu: ") and f" x{os.cpu_count()}," in found and found.endswith(torch.__version__)
    assert machine_id(CPU) == found


def test_check_photos_are_fixed_rgb_squares():
    photos = check_photos(48, n=10)
    assert [(p.mode, p.size) for p in photos] == [("RGB", (48, 48))] * 10
    arrays = [np.asarray(p) for p in photos]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, [np.asarray(p) for p in check_photos(48, n=10)]))
    assert not np.array_equal(arrays[0], arrays[8])  # the ninth is a tighter crop of the first


@pytest.fixture
def tokenizer(tmp_path):
    return ImageTokenizer(tiny_vq(tmp_path / "vq", 4, 64), image_size=SIZE)


def check_codes(tokenizer: ImageTokenizer) -> torch.Tensor:
    return tokenizer.encode(torch.from_numpy(np.stack([np.asarray(p) for p in check_photos(SIZE)])))


def test_vq_auto_keeps_the_codes_and_records_the_agreement(tokenizer):
    exact = check_codes(tokenizer)
    found = vq_precision.auto_precision(tokenizer)
    assert found.precision in ("fp32", "bf16") and tokenizer.precision == found.precision
    assert set(found.rates) == set(found.agreement) == {"fp32", "bf16"}
    assert found.agreement["fp32"] == 1.0 and found.agreement[found.precision] >= vq_precision.CODE_AGREEMENT
    assert vq_precision.code_agreement(exact, check_codes(tokenizer)) >= vq_precision.CODE_AGREEMENT
    [(key, entry)] = json.loads(open(cache_path()).read()).items()
    assert key.startswith(f"vq | {tokenizer.files.sha256} at {SIZE} px | cpu: ")
    assert entry["agreement"] == found.agreement


def test_vq_auto_measures_once(tokenizer, monkeypatch):
    measured = []
    measure = precision._measure
    monkeypatch.setattr(precision, "_measure", lambda *args: measured.append(1) or measure(*args))
    first = vq_precision.auto_precision(tokenizer)
    again = ImageTokenizer(tokenizer.files.folder, image_size=SIZE)
    assert vq_precision.auto_precision(again) == first and again.precision == first.precision and measured == [1]


def test_vq_fp32_weights_come_back_exact_after_the_trials(tokenizer, monkeypatch):
    original = {name: tensor.clone() for name, tensor in tokenizer.model.state_dict().items()}
    exact = check_codes(tokenizer)
    monkeypatch.setattr(vq_precision, "CODE_AGREEMENT", 1.01)  # no bf16 code set can pass: fp32 stays
    assert vq_precision.auto_precision(tokenizer).precision == "fp32" == tokenizer.precision
    restored = tokenizer.model.state_dict()
    assert all(torch.equal(original[name], restored[name]) for name in original)
    assert torch.equal(check_codes(tokenizer), exact)
