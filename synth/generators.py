"""The image generators of ``altcap synth``: one RGB image per (prompt, seed), the same image for the same
pair whatever else is in the batch, so that a seed recorded with an image makes it again.

    altcap:CHECKPOINT          the bundled trainer's model (trainer/): codes drawn with classifier-free
                               guidance, decoded by the VQ model its data was tokenized with
    diffusers:FOLDER_OR_ID     any diffusers text-to-image pipeline (a Stable Diffusion checkpoint, ...)

Weights load from safetensors only: a pickle can run code when it loads. ``checkpoint_sha256`` is over the
weight files, so a changed checkpoint shows in an image's provenance. A seed makes the same image on the same
kind of device: CPU and CUDA draw other random numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re

import numpy as np
import torch
from PIL import Image

from filters.clip_model import resolve_device
from tokens.image_codes import DTYPES

SPECS = "altcap:CHECKPOINT_FOLDER or diffusers:FOLDER_OR_HUB_ID"
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
HUB_ID = r"[\w.-]+/[\w.-]+"  # org/name
CHECKPOINT_WEIGHTS = ["model.safetensors"]  # what `altcap train` writes into OUT_DIR/checkpoint


class GeneratorError(ValueError):
    """A generator that cannot load or run as asked: one line that says why."""


def sha256_of(folder: str, files: list[str]) -> str:
    """sha256 over the files' bytes, in the order of their paths relative to ``folder``."""
    digest = hashlib.sha256()
    for name in sorted(files):
        with open(os.path.join(folder, name), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def torch_generators(seeds: list[int], device: torch.device) -> list[torch.Generator]:
    """One generator per image: an image depends on its own seed only."""
    return [torch.Generator(device).manual_seed(seed) for seed in seeds]


class Generator:
    """``generate(prompts, seeds)``: one image per (prompt, seed), made ``batch_size`` at a time."""

    def __init__(self, spec: str, checkpoint_sha256: str, guidance: float, batch_size: int, device: torch.device,
                 settings: dict):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise GeneratorError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.spec, self.checkpoint_sha256, self.guidance = spec, checkpoint_sha256, guidance
        self.batch_size, self.device = batch_size, device
        # what decides an image besides its prompt, seed and the weights: for provenance
        self.settings = {"guidance": guidance, **settings, "device": device.type}

    def generate(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        check_requests(prompts, seeds)
        images = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            images += self.draw(prompts[start:end], seeds[start:end])
        return images

    def draw(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        """One batch's images."""
        raise NotImplementedError


def check_requests(prompts: list[str], seeds: list[int]) -> None:
    if len(prompts) != len(seeds):
        raise GeneratorError(f"{len(prompts)} prompts and {len(seeds)} seeds: give one seed per prompt")
    if not all(isinstance(prompt, str) for prompt in prompts):
        raise GeneratorError("prompts must be strings")
    if not all(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2 ** 63 for seed in seeds):
        raise GeneratorError("seeds must be integers in [0, 2**63)")


class AltcapGenerator(Generator):
    """The bundled trainer's model: image codes drawn one at a time (top-k, top-p, temperature, classifier-free
    guidance), decoded by the VQ model the checkpoint's tokens were made with. ``complete`` makes variations of
    real images: their first rows of codes kept, the rest drawn."""

    def __init__(self, checkpoint: str, *, guidance: float = 3.0, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, batch_size: int = 16, device: str = "auto"):
        from tokens.manifest import tokenizers_of
        from trainer.sample import load_model

        check_checkpoint(checkpoint)
        if top_p is not None and not 0 < top_p <= 1:
            raise GeneratorError(f"top_p must be in (0, 1], got {top_p}")
        where = resolve_device(device)
        try:
            self.model, manifest = load_model(checkpoint, where)
            self.image_tokenizer, self.text_tokenizer = tokenizers_of(manifest, device=str(where))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise GeneratorError(f"altcap:{checkpoint}: cannot load: {one_line(err)}") from None
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.grid = self.model.config.image_grid
        super().__init__(f"altcap:{checkpoint}", sha256_of(checkpoint, CHECKPOINT_WEIGHTS), guidance,
                         batch_size, where, {"temperature": temperature, "top_k": top_k, "top_p": top_p})

    def draw(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        return self.pictures(self.codes(prompts, seeds))

    def codes(self, prompts: list[str] | None, seeds: list[int], prefix: np.ndarray | None = None) -> np.ndarray:
        """(n, grid * grid) codes, one image per (prompt, seed), each starting with its row of ``prefix`` when
        given. No prompts: the empty caption (what caption dropout trained on), without guidance."""
        from trainer.model import unconditional
        from trainer.sample import caption_ids

        captions = prompts if prompts is not None else [""] * len(seeds)
        check_requests(captions, seeds)
        drawn = []
        for start in range(0, len(seeds), self.batch_size):
            end = start + self.batch_size
            ids, lengths = caption_ids(self.text_tokenizer, captions[start:end], self.model.config.text_length,
                                       self.device)
            if prompts is None:
                ids, lengths = unconditional(ids, lengths)
            given = None if prefix is None else torch.from_numpy(prefix[start:end].astype(np.int64)).to(self.device)
            drawn.append(self.model.generate(
                ids, lengths, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                guidance=self.guidance if prompts is not None else 1.0,
                generator=torch_generators(seeds[start:end], self.device), prefix=given).cpu().numpy())
        return np.concatenate(drawn) if drawn else np.zeros((0, self.grid ** 2), np.int64)

    def complete(self, codes: np.ndarray, keep_rows: int, seeds: list[int],
                 prompts: list[str] | None = None) -> list[Image.Image]:
        """Variations of images given as (n, grid * grid) codes: the first ``keep_rows`` rows of each kept, the
        rest drawn, for its caption in ``prompts`` or, without, for the empty caption."""
        return self.pictures(self.completed_codes(codes, keep_rows, seeds, prompts))

    def completed_codes(self, codes: np.ndarray, keep_rows: int, seeds: list[int],
                        prompts: list[str] | None = None) -> np.ndarray:
        codes = np.asarray(codes)
        codebook = self.image_tokenizer.geometry.codebook_size
        if codes.ndim != 2 or codes.shape[1] != self.grid ** 2:
            raise GeneratorError(f"codes must be (n, {self.grid ** 2}): this model's images are {self.grid}x{self.grid}"
                                 f" codes, got {codes.shape}")
        if codes.size and not (codes.min() >= 0 and codes.max() < codebook):
            raise GeneratorError(f"codes must be in [0, {codebook}): not this model's VQ codes")
        if not isinstance(keep_rows, int) or not 0 <= keep_rows <= self.grid:
            raise GeneratorError(f"keep_rows must be an integer in [0, {self.grid}], got {keep_rows!r}")
        if len(codes) != len(seeds) or (prompts is not None and len(prompts) != len(seeds)):
            counted = "" if prompts is None else f", {len(prompts)} prompts"
            raise GeneratorError(f"{len(codes)} images, {len(seeds)} seeds{counted}: give one of each per image")
        return self.codes(prompts, seeds, prefix=codes[:, :keep_rows * self.grid])

    def pictures(self, codes: np.ndarray) -> list[Image.Image]:
        """The decoded images, one at a time: the VQ decoder's convolutions sum in another order for another batch
        size (measured on a CPU: 30 of 294,912 values one level off, batch 8 against 1), and an image must not
        depend on its batch. Decoding is a small part of the time; drawing the codes one by one is most of it."""
        from trainer.sample import pictures_of

        return [pictures_of(self.image_tokenizer, torch.from_numpy(row[None]))[0] for row in codes]


class DiffusersGenerator(Generator):
    """Any diffusers text-to-image pipeline, from a folder ``save_pretrained`` wrote or a hub id (the hub's cache
    only when HF_HUB_OFFLINE is set). Runs in fp32 on the CPU; on CUDA in bf16, or fp16 where bf16 is missing
    (``precision`` overrides). No safety checker is loaded: altcap's safety step scores the images."""

    def __init__(self, model: str, *, guidance: float = 7.5, steps: int = 30, batch_size: int = 4,
                 device: str = "auto", height: int | None = None, width: int | None = None, precision: str = "auto"):
        from diffusers import DiffusionPipeline

        if precision not in ("auto", *DTYPES):
            raise GeneratorError(f"precision {precision!r}: use auto or one of {', '.join(DTYPES)}")
        if not isinstance(steps, int) or steps < 1:
            raise GeneratorError(f"steps must be a positive integer, got {steps!r}")
        where = resolve_device(device)
        self.folder = local_pipeline(model)
        index = pipeline_index(self.folder)
        refuse_pickles(self.folder, index)
        self.dtype = DTYPES[precision] if precision != "auto" else auto_dtype(where)
        no_checker = {"safety_checker": None, "requires_safety_checker": False} if "safety_checker" in index else {}
        try:
            with progress_bars_off():
                self.pipeline = DiffusionPipeline.from_pretrained(self.folder, use_safetensors=True,
                                                                  dtype=self.dtype, low_cpu_mem_usage=False,
                                                                  **no_checker).to(where)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as err:
            raise GeneratorError(f"diffusers:{model}: cannot load: {one_line(err)}") from None
        self.pipeline.set_progress_bar_config(disable=True)
        accepted = inspect.signature(self.pipeline.__call__).parameters
        if not {"prompt", "generator", "num_inference_steps"} <= set(accepted):
            raise GeneratorError(f"diffusers:{model}: {type(self.pipeline).__name__} is not a text-to-image pipeline "
                                 "(its call takes no prompt, generator and num_inference_steps)")
        self.call = {"num_inference_steps": steps, "output_type": "pil"}
        if "guidance_scale" in accepted:
            self.call["guidance_scale"] = guidance
        self.call.update({name: size for name, size in (("height", height), ("width", width)) if size is not None})
        super().__init__(f"diffusers:{model}", sha256_of(self.folder, pipeline_weights(self.folder, index)), guidance,
                         batch_size, where,
                         {"steps": steps, "height": height, "width": width, "precision": str(self.dtype),
                          "pipeline": type(self.pipeline).__name__,
                          "scheduler": type(getattr(self.pipeline, "scheduler", None)).__name__})

    def draw(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        out = self.pipeline(prompt=prompts, generator=torch_generators(seeds, self.device), **self.call)
        return [image.convert("RGB") for image in out.images]


def local_pipeline(model: str) -> str:
    """The pipeline's folder: a folder as it is, a hub id as its snapshot in the Hugging Face cache (downloaded
    once, safetensors only; with HF_HUB_OFFLINE it must be cached already)."""
    if os.path.isdir(model):
        return model
    if not re.fullmatch(HUB_ID, model):
        raise GeneratorError(f"diffusers:{model}: no such folder, and not a hub id (org/name)")
    import huggingface_hub.constants as hub
    from diffusers import DiffusionPipeline

    try:
        with progress_bars_off():
            return DiffusionPipeline.download(model, use_safetensors=True, local_files_only=hub.HF_HUB_OFFLINE)
    except Exception as err:  # offline, unknown repo, no safetensors: huggingface_hub and diffusers have many kinds
        offline = " (HF_HUB_OFFLINE is set: the hub's cache only)" if hub.HF_HUB_OFFLINE else ""
        raise GeneratorError(f"diffusers:{model}: cannot fetch{offline}: {one_line(err)}") from None


def pipeline_index(folder: str) -> dict:
    """model_index.json's components (name -> [library, class]) and settings."""
    path = os.path.join(folder, "model_index.json")
    try:
        with open(path, encoding="utf-8") as handle:
            index = json.load(handle)
    except (OSError, ValueError) as err:
        raise GeneratorError(f"{folder}: no readable model_index.json, not a diffusers pipeline folder "
                             f"(save_pretrained writes one): {one_line(err)}") from None
    return {name: value for name, value in index.items() if not name.startswith("_")}


def pipeline_weights(folder: str, index: dict) -> list[str]:
    """The safetensors files of the pipeline's components, as paths relative to ``folder``."""
    return [os.path.join(part, name) for part in index if os.path.isdir(os.path.join(folder, part))
            for name in os.listdir(os.path.join(folder, part)) if name.endswith(".safetensors")]


def refuse_pickles(folder: str, index: dict) -> None:
    """A component whose weights are pickles only: refused before diffusers looks at it."""
    for part in sorted(index):
        where = os.path.join(folder, part)
        names = sorted(os.listdir(where)) if os.path.isdir(where) else []
        pickled = [name for name in names if name.endswith(PICKLES)]
        if pickled and not any(name.endswith(".safetensors") for name in names):
            raise GeneratorError(f"{where} has pickled weights ({pickled[0]}) and no .safetensors: altcap loads model "
                                 "files only without executing code; convert once with DiffusionPipeline."
                                 "from_pretrained(FOLDER).save_pretrained(OUT, safe_serialization=True)")


def check_checkpoint(checkpoint: str) -> None:
    if not all(os.path.isfile(os.path.join(checkpoint, name)) for name in ("model.json", *CHECKPOINT_WEIGHTS)):
        raise GeneratorError(f"altcap:{checkpoint}: no model.json and model.safetensors there; name the "
                             "checkpoint folder `altcap train` writes (OUT_DIR/checkpoint)")


def auto_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def progress_bars_off():
    """diffusers and transformers draw loading bars on stderr; a run says what it loads in its own words."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    states = [(library, library.is_progress_bar_enabled()) for library in (diffusers_logging, transformers_logging)]
    for library, _ in states:
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, enabled in states:
            if enabled:
                library.enable_progress_bar()


def one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:400]}"


GENERATORS = {"altcap": AltcapGenerator, "diffusers": DiffusersGenerator}


def parse_spec(spec: str) -> tuple[str, str]:
    """(kind, target) of ``altcap:CHECKPOINT_FOLDER`` or ``diffusers:FOLDER_OR_HUB_ID``."""
    kind, colon, target = (spec or "").partition(":")
    if not colon or kind not in GENERATORS or not target:
        raise GeneratorError(f"generator {spec!r}: use {SPECS}")
    return kind, target


def options_of(kind: str) -> list[str]:
    return [name for name, p in inspect.signature(GENERATORS[kind]).parameters.items() if p.kind == p.KEYWORD_ONLY]


def load_generator(spec: str, **options) -> Generator:
    """The generator ``spec`` names. ``options`` go to its class: one set to None keeps the class's default, one
    only the other kind takes (``steps`` for altcap) is left out, a name neither takes is refused."""
    kind, target = parse_spec(spec)
    accepted = options_of(kind)
    unknown = sorted(set(options) - {name for other in GENERATORS for name in options_of(other)})
    if unknown:
        raise GeneratorError(f"no generator takes the option {', '.join(unknown)} ({kind} takes {', '.join(accepted)})")
    return GENERATORS[kind](target, **{name: value for name, value in options.items()
                                       if name in accepted and value is not None})


def check_generator(spec: str) -> None:
    """The cheap checks of ``load_generator``, nothing loaded or fetched: the spec's form and the files it names
    (a hub id is checked when it loads)."""
    kind, target = parse_spec(spec)
    if kind == "altcap":
        check_checkpoint(target)
    elif os.path.isdir(target):
        refuse_pickles(target, pipeline_index(target))
    elif not re.fullmatch(HUB_ID, target):
        raise GeneratorError(f"diffusers:{target}: no such folder, and not a hub id (org/name)")


def weights_sha256(spec: str) -> str:
    """The ``checkpoint_sha256`` of the generator ``spec`` names, without loading it: sha256 over its weight files
    in the order of their relative paths. A hub id is fetched first (the hub's cache only with HF_HUB_OFFLINE)."""
    kind, target = parse_spec(spec)
    if kind == "altcap":
        check_checkpoint(target)
        return sha256_of(target, CHECKPOINT_WEIGHTS)
    folder = local_pipeline(target)
    return sha256_of(folder, pipeline_weights(folder, pipeline_index(folder)))
