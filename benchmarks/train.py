"""Training speed of the DALL-E-style transformer (``trainer/model.py``) in tokens per second and MFU,
per model size and per attention path: PyTorch's SDPA backends chosen with
``torch.nn.attention.sdpa_kernel`` (flash, efficient = memory-efficient, math), each against the math
path, the reference.

A step is what ``trainer/train.py`` runs: forward under the run's autocast (bf16 on GPUs that have it,
else fp16 with loss scaling; fp32 on CPU), backward, gradient clipping at 1.0, AdamW (fused on CUDA,
weight decay on matrices only). The batches are random tokens in the shapes of a token folder (by
default the README's: 128 text ids of CLIP's 49,408, a 32x32 grid of 16,384 codes, so 1,152 positions a
sample). Each path warms up, then ``--steps`` steps are timed (with a CUDA synchronize before reading the
clock). MFU is trainer.model.mfu: FLOPs per token (``flops_per_token``) x tokens/s over the device's bf16
peak; n/a on CPU and on GPUs without a peak in PEAK_FLOPS. A path the device cannot run (no kernel for
the device, dtype or shape; out of memory) is skipped and the table says why. The script exits
non-zero when a size measured no path.

    .venv/bin/python benchmarks/train.py [--sizes tiny,124M] [--attention flash,efficient,math]
                                         [--batch N] [--steps N] [--warmup N] [--compile]
                                         [--device auto] [--dtype auto] [--text-length 128]
                                         [--grid 32] [--codebook 16384] [--text-vocab 49408]

Defaults: on CPU sizes tiny,124M, batch 1, 2 timed steps after 1 warm-up (a couple of minutes on 2
cores); on CUDA sizes 124M,350M, batch 8, 20 steps after 5.

The GPU run for the issue, on one H200 (the ~350M config, bf16; target MFU >= 40% with flash attention):

    python benchmarks/train.py --sizes 350M --batch 8 --steps 50 --attention flash,math
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from trainer.model import SIZES, DalleTransformer, ModelConfig, mfu
from trainer.train import Run, TrainConfig, optimizer_for, start

PATHS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
         "math": SDPBackend.MATH}
REFERENCE = "math"
TARGET_MFU = 0.40  # the ~350M config with bf16 and flash attention on an H200


def random_batches(config: ModelConfig, batch: int, count: int, device: torch.device, seed: int):
    """``count`` batches of random caption ids (lengths 1..text_length) and image codes."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        text_ids = torch.randint(0, config.text_vocab, (batch, config.text_length), generator=generator)
        text_lengths = torch.randint(1, config.text_length + 1, (batch,), generator=generator)
        codes = torch.randint(0, config.image_vocab, (batch, config.image_length), generator=generator)
        batches.append([t.to(device) for t in (text_ids, text_lengths, codes)])
    return batches


def cannot_run(path: str, config: ModelConfig, batch: int, run: Run) -> str | None:
    """Why SDPA cannot run ``path`` here for the model's attention shape and dtype (forward and backward), or
    None when it can. PyTorch says why a fused kernel does not fit in warnings; without one, its error."""
    shape = (batch, config.n_head, config.sequence_length, config.n_embd // config.n_head)
    dtype = torch.float32 if run.dtype == torch.float32 else run.dtype
    q, k, v = (torch.randn(shape, device=run.device, dtype=dtype, requires_grad=True) for _ in range(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with sdpa_kernel(PATHS[path]):
                F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
        except torch.OutOfMemoryError:
            return f"out of memory at batch {batch}"
        except RuntimeError as err:
            said = [str(w.message).strip().split("\n")[0] for w in caught
                    if "attention" in str(w.message).lower() or "kernel" in str(w.message).lower()]
            error = str(err).strip().split("\n")[0].split(". ")[0]
            return f"no {path} kernel for {run.device.type} {str(dtype).removeprefix('torch.')}" \
                   f" head size {shape[-1]}: {'; '.join(said) if said else error}"
        finally:
            del q, k, v
    return None


def measure(model: DalleTransformer, path: str, batches, run: Run, warmup: int, steps: int,
            compile: bool) -> float:
    """Seconds for ``steps`` training steps on ``path`` after ``warmup`` ones."""
    config = TrainConfig(device=str(run.device))
    optimizer = optimizer_for(model, config, run.device)
    scaler = torch.amp.GradScaler(enabled=run.dtype == torch.float16)
    if compile:
        torch._dynamo.reset()  # trace again under this path's backend
    forward = torch.compile(model) if compile else model

    def step(i: int) -> None:
        with run.autocast():
            loss = forward(*batches[i % len(batches)])
        scaler.scale(loss.loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def synchronize() -> None:
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)

    try:
        with sdpa_kernel(PATHS[path]):
            for i in range(warmup):
                step(i)
            synchronize()
            started = time.perf_counter()
            for i in range(steps):
                step(warmup + i)
            synchronize()
            return time.perf_counter() - started
    finally:
        optimizer.zero_grad(set_to_none=True)  # no gradients held into the next path


def shown_mfu(flops_per_second: float, run: Run) -> str:
    utilisation = mfu(flops_per_second, run.device)
    if utilisation is not None:
        return f"{utilisation:.1%}"
    return f"n/a ({run.device.type})" if run.device.type != "cuda" else "n/a"


def parse_list(raw: str, known, what: str) -> list[str]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(f"--{what} {raw!r}: expected a comma-separated list of {', '.join(known)}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated trainer.model.SIZES "
                        "(default: tiny,124M on CPU; 124M,350M on CUDA)")
    parser.add_argument("--attention", default=",".join(PATHS), help="comma-separated SDPA paths")
    parser.add_argument("--batch", type=int, default=None, help="samples a step (default: 1 on CPU, 8 on CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 2 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 on CPU, "
                        "5 on CUDA; with --compile at least 2)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (per path)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--text-length", type=int, default=128)
    parser.add_argument("--grid", type=int, default=32)
    parser.add_argument("--codebook", type=int, default=16384)
    parser.add_argument("--text-vocab", type=int, default=49408)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()

    run = start(TrainConfig(device=args.device, dtype=args.dtype))
    cuda = run.device.type == "cuda"
    sizes = parse_list(args.sizes or ("124M,350M" if cuda else "tiny,124M"), SIZES, "sizes")
    paths = parse_list(args.attention, PATHS, "attention")
    batch = args.batch if args.batch is not None else (8 if cuda else 1)
    steps = args.steps if args.steps is not None else (20 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    if args.compile:
        warmup = max(warmup, 2)
    if batch <= 0 or steps <= 0 or warmup < 0:
        raise SystemExit("--batch and --steps must be > 0 and --warmup >= 0: nothing to measure")
    if min(args.text_length, args.grid, args.codebook, args.text_vocab) <= 1:
        raise SystemExit("--text-length, --grid, --codebook and --text-vocab must be > 1")

    shape = dict(text_vocab=args.text_vocab, text_length=args.text_length, image_vocab=args.codebook,
                 image_grid=args.grid)
    sequence = args.text_length + args.grid ** 2
    device_name = torch.cuda.get_device_name(run.device) if cuda else f"cpu, {torch.get_num_threads()} threads"
    print(f"{device_name}: {str(run.dtype).removeprefix('torch.')}{' autocast' if run.dtype != torch.float32 else ''}"
          f"{', compiled' if args.compile else ''}; {sequence} tokens a sample (text {args.text_length}, "
          f"grid {args.grid}x{args.grid}), vocab {args.text_vocab} + {args.codebook}; "
          f"{warmup} warm-up + {steps} timed steps; torch {torch.__version__}")
    print(f"{'size':<6} {'params (M)':>10} {'attention':<10} {'batch':>5} {'tokens/s':>10} {'MFU':>10} "
          f"{'vs ' + REFERENCE:>8}")
    empty = []
    for size in sizes:
        torch.manual_seed(args.seed)
        config = ModelConfig(**shape, **SIZES[size])
        model = DalleTransformer(config).to(run.device)
        model.train()
        params = model.num_parameters() / 1e6
        batches = random_batches(config, batch, min(steps + warmup, 4), run.device, args.seed)
        rates: dict[str, float] = {}
        rows = []
        for path in paths:
            reason = cannot_run(path, config, batch, run)
            if reason is None:
                try:
                    seconds = measure(model, path, batches, run, warmup, steps, args.compile)
                    rates[path] = steps * batch * sequence / seconds
                except torch.OutOfMemoryError:
                    reason = f"out of memory at batch {batch}"
                except RuntimeError as err:
                    reason = str(err).strip().split("\n")[0][:160]
                if cuda:
                    torch.cuda.empty_cache()
            rows.append((path, reason))
        reference = rates.get(REFERENCE)
        for path, reason in rows:
            head = f"{size:<6} {params:>10.1f} {path:<10} {batch:>5}"
            if reason is not None:
                print(f"{head} skipped: {reason}")
                continue
            rate = rates[path]
            ratio = f"{rate / reference:.2f}x" if reference else "n/a"
            print(f"{head} {rate:>10,.0f} {shown_mfu(model.flops_per_token() * rate, run):>10} {ratio:>8}")
        if not rates:
            empty.append(size)
        del model, batches
        if cuda:
            torch.cuda.empty_cache()
    if REFERENCE not in paths:
        print(f"(no {REFERENCE} path in --attention: no ratios)")
    print(f"target: MFU >= {TARGET_MFU:.0%} for 350M with bf16 and flash attention on an H200")
    if empty:
        print(f"nothing measured for {', '.join(empty)}: every attention path was skipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
