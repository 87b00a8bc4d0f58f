"""An open_clip model ready to score image-text pairs, loaded the way open_clip users name models:

- a built-in architecture and pretrained tag: ``ViT-B-32`` + ``openai`` (weights are
  downloaded and cached by open_clip), or the architecture and a checkpoint file;
- ``hf-hub:org/repo``: config and weights from the Hugging Face Hub;
- ``local-dir:/folder``: ``open_clip_config.json`` and weights in a folder, which is what
  ``export_local_dir`` writes (for offline workers, fine-tuned models, and the tests' tiny models).

When a pretrained tag's weights cannot be fetched (no network), the model loads randomly
initialised and ``LoadedClip.weights`` is None with the reason in ``problem``: scores then have
the right format and no meaning, and the stage must not filter on them.

Precision ``auto`` is measured, once per machine and model (``filters/precision.py``): the fastest
of fp32, bf16 (fp16 on a GPU without bf16) and, on a CPU, int8 whose scores stay within 0.01 of
fp32's. CPU flags do not tell: on a 2-core Xeon with AVX512-BF16, ViT-B-32 once scored 14.6
pairs/s in fp32 and 9.6 in bf16 on a busy machine, and 15.9 and 59.6 on a quiet one.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import pickle
import socket
import warnings
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import torch

from filters.clip_config import PRECISIONS, ClipConfig
from filters.precision import Calibration, calibrate, check_photos

HF_HUB, LOCAL_DIR = "hf-hub:", "local-dir:"
CONFIG_FILE, WEIGHTS_FILE = "open_clip_config.json", "open_clip_model.safetensors"
SCORE_BOUND = 0.01  # a precision other than fp32 keeps every score within this of fp32's
# What precision auto scores, all images against all captions: check_photos' first eight (256 px, as
# the shard step hands images over) and captions of them.
CHECK_SIZE = 256
CHECK_CAPTIONS = ("an astronaut in a white suit", "a cup of coffee on a saucer", "a cat lying on a sofa",
                  "a rocket on a launch pad", "stained cells under a microscope", "galaxies in deep space",
                  "the back of a human eye", "a black and white photo of a camera man")


class ClipModelError(RuntimeError):
    """The model cannot be built: unknown name, missing config, unreadable weights."""


@dataclass
class LoadedClip:
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]  # PIL image -> (3, H, W) tensor
    tokenizer: Callable[[list[str]], torch.Tensor]  # texts -> (n, context_length) token ids
    device: torch.device
    precision: str  # fp32, bf16, fp16 (weights and images in that type) or int8; auto's choice
    weights: str | None  # where the weights came from (tag, file, hub id, folder); None: random
    problem: str = ""  # why there are no weights


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def resolve_precision(setting: str, device: torch.device) -> str:
    """The setting, checked against the device; "auto" stays "auto" (``load_clip`` measures it)."""
    if setting not in PRECISIONS:
        raise ClipModelError(f"clip precision {setting!r}: use one of {', '.join(PRECISIONS)}")
    if setting == "int8" and device.type != "cpu":
        raise ClipModelError("clip precision int8 is a CPU path; use bf16 or fp16 on a GPU")
    return setting


def auto_candidates(device: torch.device) -> tuple[str, ...]:
    """What precision auto tries besides fp32."""
    if device.type == "cuda":
        return ("bf16",) if torch.cuda.is_bf16_supported() else ("fp16",)
    return ("bf16", "int8") if device.type == "cpu" else ()


def _with_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    if precision == "int8":
        with warnings.catch_warnings():  # deprecated for torchao, still in the pinned torch 2.14
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
            quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        for module in quantized.modules():  # open_clip asks int8 layers for the type they had
            if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
                module.int8_original_dtype = torch.float32
        return quantized
    if precision in ("bf16", "fp16"):
        return model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
    return model


def _has_weights(folder: str) -> bool:
    """Whether a local-dir folder holds a checkpoint open_clip would load (it picks which)."""
    return any(n.endswith((".safetensors", ".bin", ".pth")) for n in os.listdir(folder))


def check_clip_model(clip: ClipConfig) -> tuple[torch.device, str]:
    """The cheap checks of ``load_clip`` (no model built): names, files, precision. Returns the
    device and precision the model will use, "auto" while ``load_clip`` has not measured it."""
    import open_clip

    device = resolve_device(clip.device)
    precision = resolve_precision(clip.precision, device)
    name, pretrained = clip.model, clip.pretrained
    if name.startswith(LOCAL_DIR):
        folder = name[len(LOCAL_DIR):]
        if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
            raise ClipModelError(f"{name}: no {CONFIG_FILE} in {folder}")
    elif not name.startswith(HF_HUB):
        if name not in open_clip.list_models():
            raise ClipModelError(f"unknown open_clip model {name!r} (open_clip.list_models() has the names)")
        if pretrained and os.path.sep in pretrained and not os.path.isfile(pretrained):
            raise ClipModelError(f"clip pretrained weights file not found: {pretrained}")
    return device, precision


@contextlib.contextmanager
def _hub_cache_only_when_offline():
    """huggingface_hub retries a connection that fails five times with backoff, 23 s a file and two
    files a model (measured: the demo's CLIP took 46 s more in each process offline). Where the hub's
    host name does not resolve, ask its local cache only."""
    import huggingface_hub.constants as hub

    try:
        socket.getaddrinfo(urlsplit(hub.ENDPOINT).hostname, 443)
        offline = False
    except OSError:
        offline = not hub.HF_HUB_OFFLINE
    if offline:
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if offline:
            hub.HF_HUB_OFFLINE = False


class _FromOpenClip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}open_clip{os.sep}" not in record.pathname


@contextlib.contextmanager
def _open_clip_quiet():
    """open_clip logs on the root logger why weights did not load ("Failed to download weights",
    as an ERROR); ``LoadedClip.problem`` says it once in the run's own words instead (and a worker's
    ERROR would reach the terminal as a Beam worker error)."""
    quiet = _FromOpenClip()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


@contextlib.contextmanager
def _open_clip_errors(name: str):
    try:
        yield
    except pickle.UnpicklingError as err:  # torch.load(weights_only=True) met code in a pickle
        raise ClipModelError(f"cannot load CLIP model {name!r}: its weights are a pickle that would run "
                             f"code, refused ({err.__class__.__name__}); use .safetensors weights") from None
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        raise ClipModelError(f"cannot load CLIP model {name!r}: {err}") from err


def load_clip(clip: ClipConfig) -> LoadedClip:
    """The model in eval mode on its device, with its preprocessing and tokenizer."""
    import open_clip

    device, precision = check_clip_model(clip)
    name, pretrained = clip.model, clip.pretrained
    weights: str | None = None
    problem = ""
    with torch.random.fork_rng(devices=[]), _open_clip_errors(name), _open_clip_quiet():
        torch.manual_seed(0)  # a model without weights scores the same in every worker and run
        if name.startswith(LOCAL_DIR):
            folder = name[len(LOCAL_DIR):]
            weights = folder if _has_weights(folder) else None
            problem = "" if weights else f"no weights file in {folder}"
            model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
        elif name.startswith(HF_HUB):
            model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
            weights = name
        else:
            try:
                with _hub_cache_only_when_offline():
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        name, pretrained=pretrained or None, device=device)
                weights = pretrained or None
                problem = "" if pretrained else "no pretrained weights named"
            except (OSError, RuntimeError) as err:  # offline, or a tag open_clip cannot fetch
                model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
                reason = str(err).split(". ")[0][:300]  # open_clip's first sentence names the file
                problem = f"weights {name}/{pretrained} unavailable ({type(err).__name__}: {reason})"
        tokenizer = open_clip.get_tokenizer(name)
    model = model.eval()
    if precision == "auto":
        identity = f"{name} {pretrained}" if pretrained and not name.startswith((LOCAL_DIR, HF_HUB)) else name
        identity += "" if weights else " (random weights)"  # how far int8 and bf16 stray depends on them
        precision = calibrate_clip(identity, model, preprocess, tokenizer, device).precision
    model = _with_precision(model, precision)
    return LoadedClip(model, preprocess, tokenizer, device, precision, weights, problem)


def calibrate_clip(identity: str, model: torch.nn.Module, preprocess: Callable, tokenizer: Callable,
                   device: torch.device) -> Calibration:
    """Which precision scores fastest on this machine with every score within ``SCORE_BOUND`` of
    fp32's (``model`` in fp32, kept as it is; cached by ``identity`` and machine)."""
    from filters.clip_score import PIXEL_TYPES

    @functools.cache  # only when measuring
    def check_inputs() -> tuple[torch.Tensor, torch.Tensor]:
        photos = check_photos(CHECK_SIZE, len(CHECK_CAPTIONS))
        return torch.stack([preprocess(photo) for photo in photos]), tokenizer(list(CHECK_CAPTIONS))

    def prepare(precision: str) -> Callable[[], np.ndarray]:
        # bf16 and fp16 cast in place: a copy; dynamic quantization copies by itself
        original = model if precision in ("fp32", "int8") else copy.deepcopy(model)
        candidate = _with_precision(original, precision)
        pixels, tokens = check_inputs()
        images, texts = pixels.to(device, PIXEL_TYPES[precision]), tokens.to(device)

        def scores() -> np.ndarray:
            with torch.inference_mode():
                image = candidate.encode_image(images, normalize=True).float()
                text = candidate.encode_text(texts, normalize=True).float()
                return (image @ text.T).cpu().numpy()
        return scores

    return calibrate("clip", identity, device, auto_candidates(device), len(CHECK_CAPTIONS), prepare,
                     lambda exact, found: float(np.abs(found - exact).max()), lambda gap: gap <= SCORE_BOUND)


def export_local_dir(model: torch.nn.Module, model_cfg: dict, folder: str,
                     preprocess_cfg: dict | None = None) -> str:
    """Write ``model`` as an open_clip ``local-dir:`` folder (config + safetensors weights) and
    return the model name that loads it."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}
    with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=1)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(folder, WEIGHTS_FILE))
    return LOCAL_DIR + os.path.abspath(folder)
