"""``altcap synth``: a dataset of images generated on purpose, made by the same pipeline as any run.

The prompt file is expanded (``synth.prompts``) into the output folder's ``input/prompts.jsonl``;
the run reads it as its input (``synth.records``: N records a prompt, each with its seed), the
generate step draws the images (``pipeline.generate_step``), and the image, CLIP and later steps
run as on web images: CLIP scores each generation against its prompt and drops those under
``--min-score``; with classes, a generation whose class is not CLIP's first label among the run's
classes is dropped (``class_not_visible``: the classes are written to ``input/labels.txt``); the
``best_of`` pass keeps the best K of each prompt's N. The output is a run folder like any other:
shards, rejects with reasons, funnel, stats.json and report, with the provenance in the parquet.
Variations (``--from-dataset``) read a finished folder's samples and their code grids instead of
prompts: each shard of it is an input item, each sample gets N completions of its first rows.
"""

from __future__ import annotations

import io
import json

from dataset import fileio
from dataset.layout import TOKENS, shard_ids, shard_paths
from pipeline.config import Config, load_config
from pipeline.run import OutputFolderError, run
from synth.prompts import Prompt, load_prompts
from synth.records import PROMPTS_FILE, write_prompts

INPUT = "input"
LABELS_FILE = "labels.txt"


def synth_settings(generator: str, *, per_prompt: int, keep: int, min_score: float | None, seed: int,
                   labels_file: str | None) -> list[str]:
    """The settings a synthetic run starts from; the user's own come after them and win."""
    settings = [f"synth.generator={generator}", f"synth.per_prompt={per_prompt}", f"synth.keep={keep}",
                f"synth.seed={seed}", "clip.enabled=true", "dedup.url=none",
                "image.formats=png"]  # what the generate step hands the image step (lossless; then encoded as set)
    if min_score is not None:
        settings.append(f"clip.min_score={min_score}")
    if labels_file:  # the zero-shot check: the class must be CLIP's first label among the run's classes
        settings += ["clip.grounding=true", f"clip.grounding_vocabulary={labels_file}", "clip.grounding_top_k=1"]
    return settings


def _write_once(path: str, data: bytes, overwrite: bool) -> None:
    """``data`` at ``path``; a folder made from other prompts is refused unless ``overwrite``."""
    if fileio.exists(path) and fileio.read_bytes(path) != data and not overwrite:
        raise OutputFolderError(f"{path} holds other prompts than these: a synthetic run resumes only with "
                                "the same prompts and settings (use another --output, or --overwrite)")
    fileio.write_bytes(path, data)


def synth_config(prompts: list[Prompt], out_dir: str, generator: str, *, per_prompt: int, keep: int,
                 min_score: float | None, seed: int, config_file: str | None, overrides: list[str],
                 overwrite: bool) -> tuple[str, Config]:
    """The expanded prompts and classes written into ``out_dir/input``; the run's input item and config."""
    folder = fileio.join(out_dir, INPUT)
    fileio.ensure_dir(folder)
    stream = io.BytesIO()
    write_prompts(stream, prompts)
    prompts_path = fileio.join(folder, PROMPTS_FILE)
    _write_once(prompts_path, stream.getvalue(), overwrite)
    labels = sorted({prompt.label.lower() for prompt in prompts if prompt.label})
    labels_path = fileio.join(folder, LABELS_FILE) if labels else None
    if labels_path:
        _write_once(labels_path, "".join(f"{label}\n" for label in labels).encode("utf-8"), overwrite)
    settings = synth_settings(generator, per_prompt=per_prompt, keep=keep, min_score=min_score, seed=seed,
                              labels_file=labels_path)
    return prompts_path, load_config(config_file, [*settings, *overrides])


def synth(prompts_file: str, out_dir: str, generator: str, *, per_prompt: int = 4, keep: int = 0,
          min_score: float | None = None, slots: dict[str, str] | None = None, cap: int | None = None,
          seed: int = 0, config_file: str | None = None, overrides: list[str] = (), overwrite: bool = False,
          beam_args: list[str] = ()) -> dict:
    """Generate, rank and write a synthetic dataset; returns the stats written to stats.json."""
    prompts = load_prompts(prompts_file, slots=slots, cap=cap, seed=seed)
    path, config = synth_config(prompts, out_dir, generator, per_prompt=per_prompt, keep=keep, min_score=min_score,
                                seed=seed, config_file=config_file, overrides=list(overrides), overwrite=overwrite)
    return run([], out_dir, config, beam_args=list(beam_args), items=[("prompts", path)], overwrite=overwrite)


def variations(source_dir: str, out_dir: str, generator: str, *, keep_rows: int, per_sample: int = 4,
               keep: int = 0, min_score: float | None = None, seed: int = 0, config_file: str | None = None,
               overrides: list[str] = (), overwrite: bool = False, beam_args: list[str] = ()) -> dict:
    """Variations of the samples of ``source_dir`` that have tokens: their first ``keep_rows`` rows of
    codes kept, the rest drawn by the bundled model; returns the stats written to stats.json."""
    items = [("variations", shard_paths(source_dir, shard_id)["parquet"]) for shard_id in shard_ids(source_dir)
             if fileio.exists(shard_paths(source_dir, shard_id)[TOKENS.folder])]
    if not items:
        raise OutputFolderError(f"{source_dir} has no finished shard with tokens: variations complete the code "
                                f"grids of its samples (altcap tokenize {source_dir} makes them)")
    _check_same_tokenizers(source_dir, generator)
    settings = synth_settings(generator, per_prompt=per_sample, keep=keep, min_score=min_score, seed=seed,
                              labels_file=None)
    config = load_config(config_file, [*settings, f"synth.keep_rows={keep_rows}", *overrides])
    return run([], out_dir, config, beam_args=list(beam_args), items=items, overwrite=overwrite)


def _check_same_tokenizers(source_dir: str, generator: str) -> None:
    """The model completes codes of its own VQ model only: the folder's tokens must be made alike."""
    from tokens.manifest import differences, manifest_path

    checkpoint = fileio.join(generator.partition(":")[2], "model.json")
    if not (generator.startswith("altcap:") and fileio.exists(checkpoint)):
        return  # the config check and the generator's own refuse these, in one line each
    wanted = json.loads(fileio.read_bytes(checkpoint))["tokenizers"]
    changed = differences(json.loads(fileio.read_bytes(manifest_path(source_dir))), wanted)
    if changed:
        raise OutputFolderError(f"{source_dir}'s tokens were made with other tokenizers than {generator} was trained "
                                f"on ({'; '.join(changed)}): its codes mean nothing to the model")
