"""Model files load without executing code (DESIGN.md, "Safe by default"; issue 18).

For every loader users get (CLIP weights through open_clip: a ``local-dir:`` folder, an ``hf-hub:``
model from the Hugging Face cache, a checkpoint file; diffusers VQ models, local and from the hub
cache; the trainer's checkpoint and token files; the Wikidata KB; numpy side files) a file in the
form that loader reads carries a pickle whose ``__reduce__`` creates a marker file. The real loader
must refuse it without running it: the marker never appears. A control shows each crafted file does
create the marker when loaded the unsafe way. A second test asks for the loader's own error, the
one its callers turn into one clear line (not torch's or safetensors' error, whose advice is to
load with ``weights_only=False``).
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch

from dataset.layout import TOKENS
from dataset.side_arrays import load_side
from filters.clip_config import ClipConfig
from filters.clip_model import CONFIG_FILE, ClipModelError, load_clip
from hypernymize.wikidata_kb import KbError, WikidataKb, build_kb
from tokens import TokenizerError
from tokens.image_codes import ImageTokenizer
from tokens.manifest import manifest_path
from tokens.random_vq import save_random_vq
from trainer.data import TokenStream
from trainer.sample import load_model
from trainer.train import TrainConfigError, load_checkpoint

pytestmark = pytest.mark.timeout(120)

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
SMALLEST_BUILTIN_CLIP = "ViT-S-32"  # 63 M parameters, built in well under a second
COMMIT = "0" * 40  # the revision the hand-made Hugging Face cache entries claim


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint could do, done harmlessly."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def torch_checkpoint(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """A ``torch.save`` zip checkpoint (.pt, .bin, .pth) whose pickle runs the payload."""
    torch.save({"state_dict": {"weight": Payload(marker)}}, path)
    return path


def raw_pickle(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """A bare pickle, as old checkpoints and hand-made "weights" are."""
    path.write_bytes(pickle.dumps({"weight": Payload(marker)}, protocol=2))  # torch's legacy protocol
    return path


def object_npy(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """A .npy of an object array: numpy stores the objects as a pickle after the header."""
    np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    return path


@pytest.mark.parametrize(("craft", "unsafe_load"), [
    (torch_checkpoint, lambda path: torch.load(path, weights_only=False)),
    (raw_pickle, lambda path: pickle.loads(path.read_bytes())),
    (object_npy, lambda path: np.load(path, allow_pickle=True)),
], ids=["torch-checkpoint", "raw-pickle", "object-npy"])
def test_each_crafted_file_runs_its_payload_when_loaded_unsafely(tmp_path, craft, unsafe_load):
    marker = tmp_path / "marker"
    unsafe_load(craft(tmp_path / "crafted.npy", marker))
    assert marker.exists()


# --- the loaders: each case crafts its files and returns the call that loads them ----------------


@dataclass
class Case:
    id: str
    load: Callable  # (tmp_path, marker, monkeypatch) -> a call that loads the crafted files
    error: type  # the loader's own error
    match: str  # what that error's message says


def hugging_face_cache(tmp_path: pathlib.Path, monkeypatch, repo: str) -> pathlib.Path:
    """An offline Hugging Face cache holding ``repo`` at COMMIT; returns the snapshot folder."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    entry = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(COMMIT)
    snapshot = entry / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    return snapshot


def clip_config_file(folder: pathlib.Path) -> None:
    (folder / CONFIG_FILE).write_text(json.dumps({"model_cfg": TINY_CLIP, "preprocess_cfg": {}}))


def clip_local_dir(weights_name: str, craft) -> Callable:
    def load(tmp_path, marker, monkeypatch):
        folder = tmp_path / "clip"
        folder.mkdir()
        clip_config_file(folder)
        craft(folder / weights_name, marker)
        return lambda: load_clip(ClipConfig(model=f"local-dir:{folder}", device="cpu", precision="fp32"))
    return load


def clip_hf_hub(tmp_path, marker, monkeypatch):
    snapshot = hugging_face_cache(tmp_path, monkeypatch, "attacker/clip")
    clip_config_file(snapshot)
    torch_checkpoint(snapshot / "open_clip_pytorch_model.bin", marker)  # no safetensors to prefer
    return lambda: load_clip(ClipConfig(model="hf-hub:attacker/clip", device="cpu", precision="fp32"))


def clip_pretrained_file(name: str, craft) -> Callable:
    def load(tmp_path, marker, monkeypatch):
        weights = craft(tmp_path / name, marker)
        return lambda: load_clip(ClipConfig(model=SMALLEST_BUILTIN_CLIP, pretrained=str(weights), device="cpu",
                                            precision="fp32"))
    return load


def vq_folder(tmp_path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """A real VQ model folder as ``save_pretrained(safe_serialization=False)`` writes it (config.json and
    diffusion_pytorch_model.bin), its weights replaced by the payload."""
    folder = pathlib.Path(save_random_vq(tmp_path / "vq", blocks=2, codes=16, safe=False))
    torch_checkpoint(folder / "diffusion_pytorch_model.bin", marker)
    return folder


def vq_pickle_only(tmp_path, marker, monkeypatch):
    folder = vq_folder(tmp_path, marker)
    return lambda: ImageTokenizer(str(folder), image_size=64)


def vq_pickle_beside_other_safetensors(tmp_path, marker, monkeypatch):
    from safetensors.torch import save_file

    folder = vq_folder(tmp_path, marker)
    save_file({"unrelated": torch.zeros(1)}, str(folder / "unrelated.safetensors"))
    return lambda: ImageTokenizer(str(folder), image_size=64)


def vq_pickle_named_safetensors(tmp_path, marker, monkeypatch):
    folder = vq_folder(tmp_path, marker)
    os.replace(folder / "diffusion_pytorch_model.bin", folder / "diffusion_pytorch_model.safetensors")
    return lambda: ImageTokenizer(str(folder), image_size=64)


def vq_hub(tmp_path, marker, monkeypatch):
    folder = vq_folder(tmp_path, marker)
    snapshot = hugging_face_cache(tmp_path, monkeypatch, "attacker/vq")
    for name in os.listdir(folder):
        shutil.copy(folder / name, snapshot / name)
    return lambda: ImageTokenizer("attacker/vq", image_size=64)


def trainer_state(tmp_path, marker, monkeypatch):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    torch_checkpoint(folder / "state.pt", marker)
    # state.pt is read first: the model, optimizer, stream and run are not reached
    return lambda: load_checkpoint(str(folder), None, None, None, None)


def trainer_sample_weights(tmp_path, marker, monkeypatch):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(
        {"model": {"text_vocab": 16, "text_length": 4, "image_vocab": 16, "image_grid": 2}, "tokenizers": {}}))
    torch_checkpoint(folder / "model.safetensors", marker)
    return lambda: load_model(str(folder), torch.device("cpu"))


def token_file(craft) -> Callable:
    def load(tmp_path, marker, monkeypatch):
        folder = tmp_path / "run"
        (folder / TOKENS.folder).mkdir(parents=True)
        pathlib.Path(manifest_path(str(folder))).write_text("{}")
        craft(folder / TOKENS.folder / "00000.npy", marker)
        return lambda: next(TokenStream([str(folder)], batch_size=2))
    return load


def side_file(craft) -> Callable:
    def load(tmp_path, marker, monkeypatch):
        path = craft(tmp_path / "00000.npy", marker)
        return lambda: load_side(str(path))
    return load


def kb_array(craft) -> Callable:
    def load(tmp_path, marker, monkeypatch):
        dump = tmp_path / "dump.json"
        entity = {"type": "item", "id": "Q5", "labels": {"en": {"language": "en", "value": "human"}},
                  "claims": {}, "sitelinks": {}}
        dump.write_text(f"[\n{json.dumps(entity)}\n]\n")
        folder = tmp_path / "kb"
        build_kb(str(dump), str(folder))
        craft(folder / "hashes.npy", marker)
        return lambda: WikidataKb(str(folder))
    return load


PICKLE_NAMED = r"pickle|Python objects|Object arrays"
CASES = [
    Case("clip-local-dir-torch-checkpoint", clip_local_dir("open_clip_pytorch_model.bin", torch_checkpoint),
         ClipModelError, "local-dir:"),
    Case("clip-local-dir-raw-pickle", clip_local_dir("pytorch_model.bin", raw_pickle),
         ClipModelError, "local-dir:"),
    Case("clip-hf-hub-cache", clip_hf_hub, ClipModelError, "hf-hub:attacker/clip"),
    Case("clip-pretrained-file", clip_pretrained_file("weights.pt", torch_checkpoint),
         ClipModelError, SMALLEST_BUILTIN_CLIP),
    Case("clip-pretrained-object-npy", clip_pretrained_file("weights.npy", object_npy),
         ClipModelError, "allow_pickle=False"),
    Case("vq-pickle-only", vq_pickle_only, TokenizerError, "no .safetensors weights"),
    Case("vq-pickle-beside-other-safetensors", vq_pickle_beside_other_safetensors, TokenizerError,
         "no file named diffusion_pytorch_model.safetensors"),
    Case("vq-pickle-named-safetensors", vq_pickle_named_safetensors, TokenizerError, "Unable to load weights"),
    Case("vq-hub-cache", vq_hub, TokenizerError, "no .safetensors weights"),
    Case("trainer-state", trainer_state, TrainConfigError, "state.pt"),
    Case("trainer-sample-weights", trainer_sample_weights, OSError, "model.safetensors"),
    Case("trainer-token-file-object-npy", token_file(object_npy), ValueError, PICKLE_NAMED),
    Case("trainer-token-file-raw-pickle", token_file(raw_pickle), ValueError, PICKLE_NAMED),
    Case("side-file-object-npy", side_file(object_npy), ValueError, PICKLE_NAMED),
    Case("side-file-raw-pickle", side_file(raw_pickle), ValueError, PICKLE_NAMED),
    Case("kb-object-npy", kb_array(object_npy), KbError, "cannot load the Wikidata KB"),
    Case("kb-raw-pickle", kb_array(raw_pickle), KbError, "cannot load the Wikidata KB"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_loader_never_runs_the_pickle(tmp_path, monkeypatch, case):
    marker = tmp_path / "marker"
    load = case.load(tmp_path, marker, monkeypatch)
    with pytest.raises(Exception):  # noqa: B017 - which error is the next test's question
        load()
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_loader_refuses_with_its_own_clear_error(tmp_path, monkeypatch, case):
    marker = tmp_path / "marker"
    load = case.load(tmp_path, marker, monkeypatch)
    with pytest.raises(case.error, match=case.match):
        load()
    assert not marker.exists()
