"""An open_clip model ready to score image-text pairs, loaded the way open_clip users name models:

- a built-in architecture and pretrained tag: ``ViT-B-32`` + ``openai`` (weights are
  downloaded and cached by open_clip), or the architecture and a checkpoint file;
- ``hf-hub:org/repo``: config and weights from the Hugging Face Hub;
- ``local-dir:/folder``: ``open_clip_config.json`` and weights in a folder, which is what
  ``export_local_dir`` writes (for offline workers, fine-tuned models, and the tests' tiny models).

When a pretrained tag's weights cannot be fetched (no network), the model loads randomly
initialised and ``LoadedClip.weights`` is None with the reason in ``problem``: scores then have
the right format and no meaning, and the stage must not filter on them.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

from filters.clip_config import PRECISIONS, ClipConfig

HF_HUB, LOCAL_DIR = "hf-hub:", "local-dir:"
CONFIG_FILE, WEIGHTS_FILE = "open_clip_config.json", "open_clip_model.safetensors"


class ClipModelError(RuntimeError):
    """The model cannot be built: unknown name, missing config, unreadable weights."""


@dataclass
class LoadedClip:
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]  # PIL image -> (3, H, W) tensor
    tokenizer: Callable[[list[str]], torch.Tensor]  # texts -> (n, context_length) token ids
    device: torch.device
    precision: str  # fp32, bf16, fp16 (weights and images in that type) or int8
    weights: str | None  # where the weights came from (tag, file, hub id, folder); None: random
    problem: str = ""  # why there are no weights


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): then a bf16 model runs
    ~4x faster than fp32 (ViT-B-32 on this project's 2-core EPYC); emulated bf16 is slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str, device: torch.device) -> str:
    if setting not in PRECISIONS:
        raise ClipModelError(f"clip precision {setting!r}: use one of {', '.join(PRECISIONS)}")
    if setting == "int8" and device.type != "cpu":
        raise ClipModelError("clip precision int8 is a CPU path; use bf16 or fp16 on a GPU")
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


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
    device and precision the model will use."""
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
def _open_clip_errors(name: str):
    try:
        yield
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        raise ClipModelError(f"cannot load CLIP model {name!r}: {err}") from err


def load_clip(clip: ClipConfig) -> LoadedClip:
    """The model in eval mode on its device, with its preprocessing and tokenizer."""
    import open_clip

    device, precision = check_clip_model(clip)
    name, pretrained = clip.model, clip.pretrained
    weights: str | None = None
    problem = ""
    with torch.random.fork_rng(devices=[]), _open_clip_errors(name):
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
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=pretrained or None, device=device)
                weights = pretrained or None
                problem = "" if pretrained else "no pretrained weights named"
            except (OSError, RuntimeError) as err:  # offline, or a tag open_clip cannot fetch
                model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
                reason = str(err).split(". ")[0][:300]  # open_clip's first sentence names the file
                problem = f"weights {name}/{pretrained} unavailable ({type(err).__name__}: {reason})"
        tokenizer = open_clip.get_tokenizer(name)
    model = _with_precision(model.eval(), precision)
    return LoadedClip(model, preprocess, tokenizer, device, precision, weights, problem)


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
