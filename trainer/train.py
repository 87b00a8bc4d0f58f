"""Train the DALL-E-style transformer (``trainer/model.py``) on altcap's token files.

One process (CPU or one GPU):
    altcap train --config train.yaml [--set key=value ...]
Data parallel on one node or many (DDP; ``parallel: fsdp`` shards weights and optimizer state):
    torchrun --standalone --nproc_per_node=8 -m trainer.train --config train.yaml
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 --nproc_per_node=8 -m trainer.train ...

Every setting is a field of ``TrainConfig`` below; ``--config`` is a YAML mapping of them and ``--set``
overrides one. ``data`` names output folders (read as one), or one mix manifest (``altcap mix``,
synth/mix.py: every batch draws each folder's weight's share of rows). ``out_dir/checkpoint/``
holds the weights (safetensors), ``model.json`` (the model's shape, the tokenizers that made its
data, the mix manifest) and ``state.pt`` (optimizer, step, each rank's data position;
``torch.load(weights_only=True)``). A run whose ``out_dir`` holds a checkpoint continues
from it exactly: the learning rate is a function of the step, and every step seeds its own
randomness (dropout, caption dropout) from (seed, step, rank), so nothing else needs saving.
``out_dir/log.jsonl`` has a line per logged step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import yaml

from synth.mix import MixError, is_manifest
from synth.mix import read as read_mix
from trainer.data import MixedStream, TokenStream, token_folders_spec
from trainer.model import SIZES, DalleTransformer, ModelConfig, mfu, unconditional


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # output folders of altcap runs with tokens/, or a mix manifest
    out_dir: str = "train-out"
    size: str = "tiny"  # one of trainer.model.SIZES: tiny, 124M, 350M, 1.3B
    dropout: float = 0.0
    batch_size: int = 16  # samples per rank and micro-step
    grad_accum: int = 1  # micro-steps per optimizer step
    max_steps: int = 1000
    lr: float = 3e-4  # peak, after a linear warm-up; then cosine down to min_lr at max_steps
    min_lr: float = 3e-5
    warmup: int = 100
    weight_decay: float = 0.1  # on matrices only (nanoGPT's groups)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0: off
    caption_dropout: float = 0.1  # share of samples trained with the empty caption (for guidance)
    val_per_mille: int = 10  # rows held out for the validation loss, by key
    eval_every: int = 250
    eval_batches: int = 20
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"  # auto: cuda:LOCAL_RANK when present, else cpu
    dtype: str = "auto"  # auto: bf16 autocast on GPUs that have it (else fp16 with loss scaling), fp32 on CPU
    compile: bool = False  # torch.compile the model
    parallel: str = "ddp"  # ddp | fsdp (with torchrun)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainConfigError(ValueError):
    """A training setting that cannot work; the message names it."""


def load_train_config(path: str | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then the YAML mapping at ``path``, then each ``key=value``."""
    values = {}
    if path:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
        if not isinstance(values, dict):
            raise TrainConfigError(f"{path}: expected a mapping of settings")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise TrainConfigError(f"--set {item!r}: expected key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for key, value in values.items():
        if key not in types:
            raise TrainConfigError(f"unknown training setting {key!r} (known: {', '.join(types)})")
        if types[key] == "list[str]" and isinstance(value, str):
            values[key] = [part.strip() for part in value.split(",") if part.strip()]
        elif types[key] == "float" and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif types[key] != "list[str]" and type(value).__name__ != types[key]:
            raise TrainConfigError(f"{key}: expected {types[key]}, got {value!r}")
    config = TrainConfig(**values)
    if not config.data:
        raise TrainConfigError("data: name at least one altcap output folder with tokens/")
    if config.size not in SIZES:
        raise TrainConfigError(f"size {config.size!r}: one of {', '.join(SIZES)}")
    if config.parallel not in ("ddp", "fsdp"):
        raise TrainConfigError(f"parallel {config.parallel!r}: ddp or fsdp")
    if config.dtype not in ("auto", *DTYPES):
        raise TrainConfigError(f"dtype {config.dtype!r}: auto, {', '.join(DTYPES)}")
    return config


def training_data(config: TrainConfig) -> tuple[list[str], list[float] | None, dict | None]:
    """The folders to read, their weights (None: read as one, as listed) and the mix manifest when
    ``data`` names one, checked against its folders (synth.mix.read)."""
    if not any(map(is_manifest, config.data)):
        return config.data, None, None
    if len(config.data) > 1:
        raise TrainConfigError(f"data: a mix manifest stands alone ({', '.join(config.data)}): name every folder "
                               "in it (altcap mix)")
    try:
        manifest = read_mix(config.data[0])
    except MixError as err:
        raise TrainConfigError(str(err)) from None
    return [s["folder"] for s in manifest["sources"]], [s["weight"] for s in manifest["sources"]], manifest


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``max_steps`` (nanoGPT's schedule)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.max_steps - config.warmup))
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def optimizer_for(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (weights, embeddings) and none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             fused=device.type == "cuda")


@dataclass
class Run:
    """Where this process trains: its rank among how many, its device and the autocast type."""
    rank: int
    world_size: int
    device: torch.device
    dtype: torch.dtype

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def start(config: TrainConfig) -> Run:
    """Join the process group when torchrun started us (RANK in the environment)."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if config.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if "RANK" in os.environ:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if config.dtype == "auto":
        dtype = torch.float32 if device.type != "cuda" else (
            torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    else:
        dtype = DTYPES[config.dtype]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Run(rank, world_size, device, dtype)


def distribute(model: DalleTransformer, config: TrainConfig, run: Run) -> torch.nn.Module:
    """The model as this process trains it: wrapped for DDP or sharded with FSDP when there are ranks."""
    if run.world_size == 1:
        return model
    if config.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=run.dtype, reduce_dtype=torch.float32)
        for block in model.blocks:
            fully_shard(block, mp_policy=policy)
        return fully_shard(model, mp_policy=policy)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[run.device.index] if run.device.type == "cuda" else None)


def checkpoint_dir(config: TrainConfig) -> str:
    return os.path.join(config.out_dir, "checkpoint")


def save_checkpoint(config: TrainConfig, run: Run, model, optimizer, step: int, stream: TokenStream | MixedStream,
                    model_config: ModelConfig, spec: dict, manifest: dict | None) -> None:
    """Write ``out_dir/checkpoint`` whole or not at all (a new folder renamed into place)."""
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=full)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=full)
    data_states = [None] * run.world_size
    if run.world_size > 1:
        dist.all_gather_object(data_states, stream.state())
    else:
        data_states = [stream.state()]
    if not run.main:
        return
    final = checkpoint_dir(config)
    fresh = final + ".new"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh)
    save_file({name: tensor.contiguous() for name, tensor in weights.items()}, os.path.join(fresh, "model.safetensors"))
    with open(os.path.join(fresh, "model.json"), "w", encoding="utf-8") as handle:
        json.dump({"model": dataclasses.asdict(model_config), "tokenizers": spec, "step": step,
                   "train": dataclasses.asdict(config), "mix": manifest}, handle, indent=1)
    torch.save({"step": step, "optimizer": optimizer_state, "data": data_states, "world_size": run.world_size},
               os.path.join(fresh, "state.pt"))
    old = final + ".old"
    if os.path.isdir(final):
        os.replace(final, old)
    os.replace(fresh, final)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(config: TrainConfig) -> str | None:
    """The checkpoint to resume from: the folder, or the previous one when a save was cut short."""
    for folder in (checkpoint_dir(config), checkpoint_dir(config) + ".old"):
        if os.path.isfile(os.path.join(folder, "state.pt")):
            return folder
    return None


def load_checkpoint(folder: str, model, optimizer, stream: TokenStream | MixedStream, run: Run) -> int:
    """Restore weights, optimizer and this rank's data position; returns the step to continue at."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    try:
        state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise TrainConfigError(f"{folder}/state.pt holds more than tensors and numbers (a pickle that would run "
                               f"code): refused, {err.__class__.__name__}") from None
    if state["world_size"] != run.world_size:
        raise TrainConfigError(f"{folder} was written by {state['world_size']} rank(s), this run has "
                               f"{run.world_size}: resume with as many, or train into another out_dir")
    full = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, load_file(os.path.join(folder, "model.safetensors")), options=full)
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state["optimizer"], options=full)
    try:
        stream.load_state(state["data"][run.rank])
    except ValueError as err:
        raise TrainConfigError(f"{folder} was trained on other data than data names now ({err}): resume with the "
                               "same data, or train into another out_dir") from None
    return int(state["step"])


def to_device(batch, run: Run):
    return [tensor.to(run.device, non_blocking=True) for tensor in batch]


def drop_captions(text_ids, text_lengths, share: float, generator: torch.Generator):
    """Caption dropout: ``share`` of the samples get the empty caption, so the model also learns
    the unconditional image distribution that classifier-free guidance needs."""
    dropped = torch.rand(len(text_ids), generator=generator) < share
    if not dropped.any():
        return text_ids, text_lengths
    empty_ids, empty_lengths = unconditional(text_ids, text_lengths)
    mask = dropped.to(text_ids.device)
    return (torch.where(mask[:, None], empty_ids, text_ids), torch.where(mask, empty_lengths, text_lengths))


@torch.no_grad()
def validation_loss(model, config: TrainConfig, run: Run, folders: list[str]) -> float | None:
    """The mean loss over up to ``eval_batches`` batches of the folders' held-out rows (a mix's too:
    unweighted, in file order), over all ranks."""
    stream = TokenStream(folders, config.batch_size, rank=run.rank, world_size=run.world_size,
                         seed=config.seed, split="val", val_per_mille=config.val_per_mille)
    batches = [batch for _, batch in zip(range(config.eval_batches), stream)]
    count = torch.tensor(len(batches), device=run.device)
    if run.world_size > 1:  # every rank runs as many forwards (with FSDP each is a collective)
        dist.all_reduce(count, op=dist.ReduceOp.MIN)
    model.eval()
    total = torch.zeros((), device=run.device)
    for batch in batches[:int(count)]:
        with run.autocast():
            total += model(*to_device(batch, run)).loss.float()
    if run.world_size > 1:
        dist.all_reduce(total, op=dist.ReduceOp.AVG)
    model.train()
    return float(total / count) if count else None


class Progress:
    """The progress line and log.jsonl: loss, tokens/s, MFU (None where the device's peak is not
    known), ETA."""

    def __init__(self, config: TrainConfig, run: Run, flops_per_token: float, tokens_per_step: int, first: int):
        self.config, self.run = config, run
        self.flops_per_token, self.tokens_per_step = flops_per_token, tokens_per_step
        self.first, self.since, self.last_step = first, time.perf_counter(), first
        self.log = open(os.path.join(config.out_dir, "log.jsonl"), "a", encoding="utf-8") if run.main else None

    def step(self, step: int, losses, lr: float, val: float | None = None) -> None:
        now = time.perf_counter()
        steps = step + 1 - self.last_step
        tokens_per_s = steps * self.tokens_per_step / max(now - self.since, 1e-9)
        per_device = self.flops_per_token * tokens_per_s / self.run.world_size
        utilisation = mfu(per_device, self.run.device)
        eta = (self.config.max_steps - step - 1) * (now - self.since) / steps
        self.since, self.last_step = now, step + 1
        if not self.run.main:
            return
        loss, text, image = (float(x) for x in losses)
        entry = {"step": step + 1, "loss": loss, "text_loss": text, "image_loss": image, "lr": lr,
                 "tokens_per_s": round(tokens_per_s, 1), "mfu": utilisation, "val_loss": val}
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
        shown = f"{utilisation:.1%}" if utilisation is not None else f"n/a ({self.run.device.type})"
        extra = f" | val {val:.4f}" if val is not None else ""
        print(f"step {step + 1}/{self.config.max_steps} | loss {loss:.4f} (text {text:.3f}, image {image:.3f}){extra}"
              f" | lr {lr:.2e} | {tokens_per_s:,.0f} tokens/s | MFU {shown} | ETA {eta / 60:.1f} min", flush=True)


def train(config: TrainConfig, stop_after: int | None = None) -> list[float]:
    """Train to ``max_steps`` (from the checkpoint in ``out_dir`` when there is one), or for
    ``stop_after`` steps and a checkpoint (a job with a time limit); returns each step's loss."""
    run = start(config)
    try:
        losses = _train(config, run, stop_after)
        if dist.is_initialized():
            dist.barrier()  # no rank tears down gloo while another still writes the checkpoint (SIGABRT)
        return losses
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, run: Run, stop_after: int | None) -> list[float]:
    folders, weights, manifest = training_data(config)
    spec = token_folders_spec(folders)
    model_config = ModelConfig(text_vocab=spec["text"]["vocab_size"], text_length=spec["text"]["length"],
                               image_vocab=spec["image"]["codebook_size"], image_grid=spec["image"]["grid"],
                               dropout=config.dropout, **SIZES[config.size])
    torch.manual_seed(config.seed)  # every rank builds the same initial weights
    model = DalleTransformer(model_config).to(run.device)
    flops_per_token = model.flops_per_token()
    trained = distribute(model, config, run)
    optimizer = optimizer_for(trained, config, run.device)
    where = dict(rank=run.rank, world_size=run.world_size, seed=config.seed, val_per_mille=config.val_per_mille)
    stream = TokenStream(folders, config.batch_size, split="train", **where) if weights is None else \
        MixedStream(folders, weights, config.batch_size, **where)
    os.makedirs(config.out_dir, exist_ok=True)
    found = find_checkpoint(config)
    first = load_checkpoint(found, trained, optimizer, stream, run) if found else 0
    if run.main:
        print(f"{'resuming at step ' + str(first) + ' from ' + found if found else 'training from scratch'}: "
              f"{config.size} ({model.num_parameters() / 1e6:.1f}M parameters) on {run.world_size} x {run.device} "
              f"in {str(run.dtype).removeprefix('torch.')}; checkpoints in {checkpoint_dir(config)}, "
              f"log in {os.path.join(config.out_dir, 'log.jsonl')}", flush=True)
    forward = torch.compile(trained) if config.compile else trained
    scaler = torch.amp.GradScaler(enabled=run.dtype == torch.float16)
    sequence = model_config.text_length + model_config.image_grid ** 2
    progress = Progress(config, run, flops_per_token, config.batch_size * config.grad_accum * run.world_size * sequence,
                        first)
    losses = []
    last = config.max_steps if stop_after is None else min(config.max_steps, first + stop_after)
    for step in range(first, last):
        torch.manual_seed(config.seed * 1_000_003 + step * run.world_size + run.rank)  # dropout: same on resume
        captions = torch.Generator().manual_seed(config.seed * 7_919 + step * run.world_size + run.rank)
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        totals = torch.zeros(3, device=run.device)
        for micro in range(config.grad_accum):
            text_ids, text_lengths, codes = to_device(next(stream), run)
            text_ids, text_lengths = drop_captions(text_ids, text_lengths, config.caption_dropout, captions)
            syncing = run.world_size == 1 or config.parallel != "ddp" or micro == config.grad_accum - 1
            with nullcontext() if syncing else trained.no_sync():
                with run.autocast():
                    loss = forward(text_ids, text_lengths, codes)
                scaler.scale(loss.loss / config.grad_accum).backward()
            totals += torch.stack([part.detach().float() for part in loss]) / config.grad_accum
        if config.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trained.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if run.world_size > 1:
            dist.all_reduce(totals, op=dist.ReduceOp.AVG)
        losses.append(float(totals[0]))
        done = step + 1
        evaluate = done % config.eval_every == 0 or done == config.max_steps
        val = validation_loss(trained, config, run, folders) if evaluate else None
        if done % config.log_every == 0 or val is not None:
            progress.step(step, totals.tolist(), lr, val)
        if done % config.checkpoint_every == 0 or done == last:
            save_checkpoint(config, run, trained, optimizer, done, stream, model_config, spec, manifest)
    return losses


def main(argv: list[str] | None = None) -> int:
    import argparse

    from trainer.commands import run_train, train_arguments

    parser = argparse.ArgumentParser(prog="python -m trainer.train", description=__doc__.split("\n\n")[0])
    train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
