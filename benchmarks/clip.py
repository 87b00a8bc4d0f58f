"""CLIP scoring speed in image-caption pairs per second (both towers): altcap's CLIP stage against
the raw batched model forward, and the fast CPU paths (bf16, int8) against fp32 on the same
weights, with the largest score difference.

"raw forward" is open_clip's ``encode_image`` + ``encode_text`` on tensors made beforehand: the
ceiling for any CLIP filter. "stage" is the pipeline's ``ClipStep`` on samples as the shard step
hands them over (JPEG bytes and captions): it pays decoding, preprocessing, tokenising, the cut
and the float16 embeddings. Images are scikit-image's CC0 photos, cut into differently sized
crops, then resized to 256 px as the shard step does; captions are the labelled clean captions
under tests/data/text.
A last table times the image input alone (decode, resize, batch; ``filters/clip_images.py``) per
decoder: on a GPU it is what must keep up with the model.
Without ``--pretrained`` the weights are random (offline machines; speed does not depend on them),
saved once as a ``local-dir:`` folder so that every precision loads the same ones.

    .venv/bin/python benchmarks/clip.py [--model ViT-B-32] [--pretrained TAG] [--n 128] [--batch 32]
                                        [--device auto] [--decoder auto]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image, ImageOps
from skimage import data as photos

from filters.clip_config import ClipConfig
from filters.clip_images import ImageBatcher
from filters.clip_model import export_local_dir
from filters.clip_score import PIXEL_TYPES
from pipeline.clip_step import ClipStep

ROOT = Path(__file__).resolve().parent.parent
CAPTIONS = ROOT / "tests/data/text/clean_captions.txt"
TARGET_STAGE, TARGET_FAST = 0.90, 2.0


def inputs(n: int) -> tuple[list[Image.Image], list[str]]:
    sources = [photos.astronaut(), photos.coffee(), photos.chelsea(), photos.rocket(), photos.immunohistochemistry()]
    images = []
    for i in range(n):
        array = sources[i % len(sources)]
        h, w = array.shape[:2]
        cut = 0.6 + 0.4 * ((i * 7) % 10) / 10
        # what the shard step hands over: resized images (resize.image_size 256, center crop)
        images.append(ImageOps.fit(Image.fromarray(array[: int(h * cut), : int(w * cut)]), (256, 256)))
    captions = CAPTIONS.read_text(encoding="utf-8").splitlines()
    return images, [captions[i % len(captions)] for i in range(n)]


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def timed(work, repeats: int) -> float:
    """Best wall seconds of ``repeats`` runs (after one warm-up run)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def raw_forward(loaded, images, texts, batch: int):
    pixels = torch.stack([loaded.preprocess(im) for im in images]).to(loaded.device, PIXEL_TYPES[loaded.precision])
    tokens = loaded.tokenizer(texts).to(loaded.device)

    def run():
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                loaded.model.encode_image(pixels[start:start + batch], normalize=True)
                loaded.model.encode_text(tokens[start:start + batch], normalize=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--decoder", default="auto", choices=["auto", "pil", "torch"])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images, texts = inputs(args.n)
    spec = ClipConfig(model=args.model, pretrained=args.pretrained, device=args.device)
    if args.pretrained is None:  # one set of random weights for every precision
        torch.manual_seed(0)
        folder = tempfile.mkdtemp(prefix="altcap-clip-")
        name = export_local_dir(open_clip.create_model(args.model), open_clip.get_model_config(args.model), folder)
        spec = ClipConfig(model=name, pretrained=None, device=args.device)
    precisions = ["fp32", "bf16", "int8"] if spec.device in ("auto", "cpu") and not torch.cuda.is_available() \
        else ["fp32", "bf16", "fp16"]
    print(f"{args.model} weights={args.pretrained or 'random'} n={args.n} batch={args.batch} "
          f"threads={torch.get_num_threads()} decoder={args.decoder}")
    print(f"{'precision':<10} {'raw forward pairs/s':>20} {'stage pairs/s':>14} {'stage/raw':>10} "
          f"{'vs fp32':>8} {'max |score - fp32|':>19}")
    samples = [{"key": str(i), "caption": text, "image_bytes": jpeg_bytes(image)}
               for i, (image, text) in enumerate(zip(images, texts))]
    reference, fp32_rate = None, None
    for precision in precisions:
        step = ClipStep(ClipConfig(enabled=True, model=spec.model, pretrained=spec.pretrained,
                                   device=spec.device, precision=precision, batch_size=args.batch,
                                   decoder=args.decoder, min_score=-1))
        loaded = step.scorer.loaded  # the raw forward runs the stage's own model
        raw_rate = args.n / timed(raw_forward(loaded, images, texts, args.batch), args.repeats)

        def stage():
            return [scored for start in range(0, args.n, args.batch)
                    for scored in step([dict(s) for s in samples[start:start + args.batch]])]
        stage_rate = args.n / timed(stage, args.repeats)
        scores = np.array([s["clip_score"] for s in stage()])
        if reference is None:
            reference, fp32_rate = scores, stage_rate
        diff = float(np.abs(scores - reference).max())
        print(f"{precision:<10} {raw_rate:>20.1f} {stage_rate:>14.1f} {stage_rate / raw_rate:>10.2f} "
              f"{stage_rate / fp32_rate:>7.2f}x {diff:>19.4f}")
    print(f"\n{'image input':<12} {'images/s':>9}   (decode + resize + batch on {loaded.device})")
    blobs = [sample["image_bytes"] for sample in samples]
    for decoder in ("pil", "torch"):
        batcher = ImageBatcher(loaded.preprocess, loaded.device, torch.float32, decoder)

        def prepare():
            for start in range(0, args.n, args.batch):
                batcher(blobs[start:start + args.batch])
            if loaded.device.type == "cuda":
                torch.cuda.synchronize()
        print(f"{decoder:<12} {args.n / timed(prepare, args.repeats):>9.1f}")
    print(f"targets: the stage >= {TARGET_STAGE:.0%} of the raw forward; a fast CPU path >= {TARGET_FAST:.0f}x "
          "fp32 with scores within 0.01")


if __name__ == "__main__":
    main()
