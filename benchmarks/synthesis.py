"""Generation speed for ``altcap synth`` in images per second, per generator: altcap's generator
(``synth.generators``: per-image seeds, PNG-ready PIL images) beside the raw model call on the same
weights and batch, and with CLIP ranking (the pipeline's ``ClipStep`` scoring each image against its
prompt) after it.

"raw" is the model alone: ``DalleTransformer.generate`` with one generator for the batch and a
batched VQ decode for the bundled model; the diffusers pipeline called once on the batch with one
generator. The ratio raw / altcap is what per-image seeds (an image depends on its prompt and seed,
not on its batch) cost. The weights are random (``synth.tiny_models``: no package ships text-to-image
weights; speed does not depend on them); CLIP is a random ViT-B-32 unless ``--clip-pretrained``.

    .venv/bin/python benchmarks/synthesis.py [--n 32] [--batch 8] [--device auto] [--altcap-size tiny]
                                         [--image-size 64] [--sd-sample 8] [--steps 4]

On a GPU: ``--altcap-size 124M --image-size 256 --sd-sample 64 --steps 30`` (a real-size bundled model,
32x32 codes; a 512 px Stable Diffusion-shaped UNet is not built here: pass ``--diffusers FOLDER``).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from filters.clip_config import ClipConfig
from filters.clip_model import resolve_device
from pipeline.clip_step import ClipStep
from pipeline.generate_step import png_bytes
from synth.generators import load_generator
from synth.tiny_models import save_random_checkpoint, save_tiny_stable_diffusion

PROMPTS = ["a dalmatian on a beach", "a frisbee in the snow", "a red barn in a field", "a cup of coffee on a table"]


def timed(work, repeat: int = 1) -> float:
    """Seconds of the fastest of ``repeat`` runs, after one warm-up."""
    work()
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def raw_altcap(generator, prompts: list[str]):
    """The bundled model's own batched call: one generator for the batch, one batched decode."""
    from trainer.sample import caption_ids, pictures_of

    def work():
        for start in range(0, len(prompts), generator.batch_size):
            ids, lengths = caption_ids(generator.text_tokenizer, prompts[start:start + generator.batch_size],
                                       generator.model.config.text_length, generator.device)
            codes = generator.model.generate(ids, lengths, guidance=generator.guidance,
                                             generator=torch.Generator(generator.device).manual_seed(start))
            pictures_of(generator.image_tokenizer, codes.cpu())
    return work


def raw_diffusers(generator, prompts: list[str]):
    """The pipeline called once per batch with one generator."""
    def work():
        for start in range(0, len(prompts), generator.batch_size):
            generator.pipeline(prompt=prompts[start:start + generator.batch_size],
                               generator=torch.Generator(generator.device).manual_seed(start), **generator.call)
    return work


def ranked(generator, clip: ClipStep, prompts: list[str], seeds: list[int]):
    """altcap's generator, then CLIP scoring of every image against its prompt, as a synthetic run does."""
    def work():
        images = generator.generate(prompts, seeds)
        outcomes = [{"key": str(n), "caption": prompt, "image_bytes": png_bytes(image)}
                    for n, (prompt, image) in enumerate(zip(prompts, images))]
        clip(outcomes)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=32, help="images per measurement")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--altcap-size", default="tiny", help="trainer.model.SIZES: tiny, 124M, 350M, 1.3B")
    parser.add_argument("--image-size", type=int, default=64, help="the bundled model's images (f8: /8 codes a side)")
    parser.add_argument("--sd-sample", type=int, default=8, help="latent side of the tiny diffusers pipeline (x4 px)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the diffusers pipeline")
    parser.add_argument("--diffusers", metavar="FOLDER", help="a diffusers pipeline folder instead of the tiny one")
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--clip-pretrained", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    prompts = [PROMPTS[n % len(PROMPTS)] for n in range(args.n)]
    seeds = list(range(args.n))
    clip = ClipStep(ClipConfig(enabled=True, model=args.clip_model, pretrained=args.clip_pretrained, device=device,
                               batch_size=args.batch, min_score=-1.0))
    with tempfile.TemporaryDirectory() as folder:
        generators = {
            f"altcap {args.altcap_size} {args.image_size}px": (load_generator(
                "altcap:" + save_random_checkpoint(f"{folder}/altcap", size=args.altcap_size,
                                                   image_size=args.image_size),
                batch_size=args.batch, device=device), raw_altcap),
            f"diffusers {'folder' if args.diffusers else f'tiny {4 * args.sd_sample}px'} {args.steps} steps": (
                load_generator("diffusers:" + (args.diffusers or save_tiny_stable_diffusion(
                    f"{folder}/sd", sample_size=args.sd_sample)), batch_size=args.batch, steps=args.steps,
                    device=device), raw_diffusers),
        }
        print(f"{args.n} images, batch {args.batch}, on {device} ({torch.get_num_threads()} CPU threads); "
              f"CLIP {args.clip_model} ({args.clip_pretrained or 'random weights'})\n")
        print(f"{'generator':<34} {'raw img/s':>10} {'altcap img/s':>13} {'raw/altcap':>11} {'+CLIP img/s':>12}")
        for name, (generator, raw) in generators.items():
            raw_s = timed(raw(generator, prompts))
            ours_s = timed(lambda: generator.generate(prompts, seeds))
            ranked_s = timed(ranked(generator, clip, prompts, seeds))
            print(f"{name:<34} {args.n / raw_s:>10.1f} {args.n / ours_s:>13.1f} {ours_s / raw_s:>10.2f}x "
                  f"{args.n / ranked_s:>12.1f}")


if __name__ == "__main__":
    main()
