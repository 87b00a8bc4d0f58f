"""Tokens stage speed in images per second: altcap's ``TokensStep`` (VQ image codes and caption ids)
against the raw batched encoder forward of the same model, with and without the stage's prefetch,
and the text tokenizers alone in captions per second.

"raw encoder" is ``ImageTokenizer.encode_pixels`` on pixel tensors made beforehand on the device:
the ceiling for any VQ tokenizing step. "stage" is ``run_steps([TokensStep], ...)`` on records as
the shard step hands them over (JPEG bytes and captions): it pays decoding and resizing (prepared
one batch ahead on a helper thread), the codes' copy to the host and the caption ids. "no
prefetch" runs the same step with nothing prepared ahead, as ``run_steps`` does for a step
without ``prepare``. Images are scikit-image's CC0 photos, cut into differently sized crops, then
resized to 256 px as the shard step does; captions are the labelled clean captions under
tests/data/text. The raw encoder is fed the pixels the pil decoder makes from the same JPEG
bytes, so "stage = raw" (the share of the stage's codes equal to the raw forward's) is 1.00 with
the pil decoder; the torch decoder's resize differs by a pixel level here and there.
For bf16/fp16 (or what ``auto`` picks), "vs fp32" is the share of codes equal to those of a
separately loaded fp32 copy of the model on the same pixels. The weights are random (offline
machines; speed does not depend on them; the codebook is spread like the encoder's latents), so
that share says little about a trained model's. The three runs take turns, best of ``--repeats``.
A second table times the image input alone (decode, resize, batch) per decoder: on a GPU it is what
must keep up with the model; a third the text tokenizers alone (CLIP's BPE, and a byte-level BPE
trained with ``tokens.text_ids.train_bpe`` on the captions).

Configs (a diffusers VQModel built with random weights, saved once with ``save_pretrained`` as
safetensors into a temporary folder and loaded through ``TokensStep`` / ``ImageTokenizer``):
- ``small``: a CPU-sized f8 model (MoVQ's layout, 1.2M encoder parameters), 16384 codes, at 128
  px: some 20-35 images/s on 2 CPU cores.
- ``movq``: Kandinsky 2.2's MoVQ geometry (kandinsky-2-2-decoder/movq/config.json), f8, 16384
  codes, 32x32 codes at 256 px: for a GPU, with ``--n 4096`` or more.
- ``amused``: aMUSEd's VQ geometry (diffusers' scripts/convert_amused.py), f16, 8192 codes, 16x16
  codes at 256 px; built with force_upcast as its checkpoint is taken to set (tokens/image_codes.py),
  so it runs in fp32 whatever the precision.
(Not ``benchmarks/tokenize.py``: a script's folder comes first on sys.path, and a ``tokenize.py``
there stands in for the standard library's, which numpy and torch import, in every benchmark.)

    .venv/bin/python benchmarks/tokenization.py [--config small|movq|amused] [--n 64] [--batch 32]
                                            [--image-size PX] [--device auto] [--precision fp32]
                                            [--decoder auto] [--repeats 3]
    # on a GPU:
    .venv/bin/python benchmarks/tokenization.py --config movq --n 4096 --batch 64 --precision auto
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps
from skimage import data as photos

from filters.clip_images import ImageBatcher, decode_pil
from filters.record import is_rejected, sample_batches
from pipeline.shard_step import run_steps
from pipeline.tokens_step import TokensStep, vq_preprocess
from tokens import TokenizerError
from tokens.config import TokensConfig
from tokens.image_codes import ImageTokenizer
from tokens.text_ids import TextTokenizer, train_bpe

ROOT = Path(__file__).resolve().parent.parent
CAPTIONS = ROOT / "tests/data/text/clean_captions.txt"
TARGET_STAGE = 0.90
TEXT_CAPTIONS = 2048  # captions per text-tokenizer timing, at least

DOWN, ATTN_DOWN = "DownEncoderBlock2D", "AttnDownEncoderBlock2D"
UP, ATTN_UP = "UpDecoderBlock2D", "AttnUpDecoderBlock2D"
CONFIGS = {  # name -> (default image size, VQModel arguments)
    "small": (128, dict(block_out_channels=(32, 64, 64, 128), down_block_types=(DOWN,) * 3 + (ATTN_DOWN,),
                        up_block_types=(ATTN_UP,) + (UP,) * 3, layers_per_block=1, latent_channels=4,
                        vq_embed_dim=4, num_vq_embeddings=16384, norm_num_groups=32, norm_type="spatial")),
    "movq": (256, dict(block_out_channels=(128, 256, 256, 512), down_block_types=(DOWN,) * 3 + (ATTN_DOWN,),
                       up_block_types=(ATTN_UP,) + (UP,) * 3, layers_per_block=2, latent_channels=4,
                       vq_embed_dim=4, num_vq_embeddings=16384, norm_num_groups=32, norm_type="spatial",
                       sample_size=32, scaling_factor=0.18215)),
    "amused": (256, dict(block_out_channels=(128, 256, 256, 512, 768), down_block_types=(DOWN,) * 5,
                         up_block_types=(UP,) * 5, layers_per_block=2, latent_channels=64,
                         num_vq_embeddings=8192, norm_num_groups=32, sample_size=32,
                         mid_block_add_attention=False, lookup_from_codebook=True, force_upcast=True)),
}


def save_model(name: str, folder: str, pixels: torch.Tensor) -> str:
    """The config's VQModel with random weights (seed 0), saved as safetensors into ``folder``. The
    codebook is drawn from the spread of the encoder's latents on ``pixels``: diffusers initialises
    it within +-1/codebook size, where every latent's nearest entry is a near tie (in bf16, all of
    them tie and every code is 0), which no trained codebook is."""
    from diffusers import VQModel

    torch.manual_seed(0)
    model = VQModel(in_channels=3, out_channels=3, act_fn="silu", **CONFIGS[name][1]).eval()
    with torch.no_grad():
        latents = model.encode(pixels).latents.permute(0, 2, 3, 1).reshape(-1, model.config.vq_embed_dim
                                                                            or model.config.latent_channels)
        codebook = model.quantize.embedding.weight
        codebook.copy_(torch.randn_like(codebook) * latents.std(0) + latents.mean(0))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def inputs(n: int) -> tuple[list[bytes], list[str]]:
    """``n`` JPEGs as the shard step hands them over (256 px, centre crop, q95) and ``n`` captions.
    Crops repeat every 70 images: the photos are made once each."""
    sources = [photos.astronaut(), photos.coffee(), photos.chelsea(), photos.rocket(), photos.immunohistochemistry()]
    made: dict[int, bytes] = {}
    blobs = []
    for i in range(n):
        if i % 70 not in made:
            array = sources[i % len(sources)]
            h, w = array.shape[:2]
            cut = 0.6 + 0.4 * ((i * 7) % 10) / 10
            top, left = int(h * (1 - cut) * (i % 7) / 6), int(w * (1 - cut) * (i % 7) / 6)
            image = ImageOps.fit(Image.fromarray(array[top:top + int(h * cut), left:left + int(w * cut)]), (256, 256))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=95)
            made[i % 70] = buffer.getvalue()
        blobs.append(made[i % 70])
    captions = caption_lines()
    return blobs, [captions[i % len(captions)] for i in range(n)]


def caption_lines() -> list[str]:
    captions = [line for line in CAPTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not captions:
        raise SystemExit(f"no captions in {CAPTIONS}: nothing to measure")
    return captions


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(works: dict[str, Callable[[int], object]], n: int, warm: int, repeats: int,
          device: torch.device) -> tuple[dict[str, float], dict[str, object]]:
    """Items per second over ``n`` items for each of ``works``: the best of ``repeats`` runs, after a
    warm-up run on the first ``warm`` items; and what each work's last run returned. The works
    take turns in each round, so that a load that comes and goes on the machine does not fall on
    one of them only."""
    for work in works.values():
        work(min(warm, n))
    synchronize(device)
    best, last = dict.fromkeys(works, float("inf")), {}
    for _ in range(repeats):
        for name, work in works.items():
            started = time.perf_counter()
            last[name] = work(n)
            synchronize(device)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: n / seconds for name, seconds in best.items()}, last


def encode_all(tokenizer: ImageTokenizer, pixels: torch.Tensor, batch: int) -> Callable[[int], torch.Tensor]:
    def run(m: int) -> torch.Tensor:
        return torch.cat([tokenizer.encode_pixels(pixels[start:min(start + batch, m)])
                          for start in range(0, m, batch)])
    return run


def with_prefetch(step: TokensStep, records: list[dict]) -> Callable[[int], list[dict]]:
    def run(m: int) -> list[dict]:
        return list(run_steps([step], (dict(record) for record in records[:m]), None, 0))
    return run


def without_prefetch(step: TokensStep, records: list[dict]) -> Callable[[int], list[dict]]:
    """What ``run_steps`` does for a batch step without ``prepare``: decode, then encode, in turn."""
    def run(m: int) -> list[dict]:
        return [outcome for batch in sample_batches((dict(record) for record in records[:m]), step.batch_size)
                for outcome in step(batch)]
    return run


def stage_codes(outcomes: list[dict], n: int) -> np.ndarray:
    tokenized = [outcome for outcome in outcomes if not is_rejected(outcome) and "tokens" in outcome]
    if len(outcomes) != n or len(tokenized) != n:
        reasons = sorted({f"{o.get('reason')}: {o.get('detail', '')[:200]}" for o in outcomes if is_rejected(o)})
        raise SystemExit(f"the stage tokenized {len(tokenized)} of {n} images: " + ("; ".join(reasons) or "no reason"))
    return np.stack([outcome["tokens"][2] for outcome in tokenized]).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=None, help="default: the config's (small 128, else 256)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    parser.add_argument("--decoder", default="auto", choices=["auto", "pil", "torch"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.n <= 0 or args.batch <= 0 or args.repeats <= 0:
        raise SystemExit("--n, --batch and --repeats must be > 0: nothing to measure")
    size = args.image_size or CONFIGS[args.config][0]
    blobs, captions = inputs(args.n)
    records = [{"key": f"{i:06d}", "caption": caption, "image_bytes": blob, "image_ext": "jpg"}
               for i, (blob, caption) in enumerate(zip(blobs, captions))]
    warm = 2 * args.batch

    # the pixels the pil decoder makes from the same bytes (the raw forward's input)
    preprocess, distinct = vq_preprocess(size), {}
    for blob in blobs:
        if id(blob) not in distinct:
            distinct[id(blob)] = preprocess(decode_pil(blob))
    with tempfile.TemporaryDirectory(prefix="altcap-vq-") as scratch:
        folder = save_model(args.config, f"{scratch}/vq", torch.stack(list(distinct.values())[:8]))
        settings = TokensConfig(enabled=True, image_model=folder, image_size=size, device=args.device,
                                precision=args.precision, batch_size=args.batch, decoder=args.decoder)
        try:
            step = TokensStep(settings)
        except TokenizerError as err:
            raise SystemExit(str(err)) from None
        tokenizer = step.image  # the raw forward runs the stage's own model
        device, geometry = tokenizer.device, tokenizer.geometry
        params = sum(p.numel() for p in tokenizer.model.encoder.parameters()) + \
            sum(p.numel() for p in tokenizer.model.quant_conv.parameters())
        print(f"{args.config}: f{geometry.factor}, {geometry.codebook_size} codes, {geometry.grid}x{geometry.grid} "
              f"codes at {size} px, encoder {params / 1e6:.1f}M params, weights=random")
        print(f"n={args.n} batch={args.batch} device={device} precision={tokenizer.precision} "
              f"(asked {args.precision}) threads={torch.get_num_threads()} decoder={step.batcher.decoder}")

        pixels = torch.stack([distinct[id(blob)] for blob in blobs]).to(device)
        raw = encode_all(tokenizer, pixels, args.batch)
        rates, last = timed({"raw": raw, "stage": with_prefetch(step, records),
                             "serial": without_prefetch(step, records)}, args.n, warm, args.repeats, device)
        raw_rate, stage_rate, serial_rate = rates["raw"], rates["stage"], rates["serial"]
        raw_codes = last["raw"].cpu().numpy()
        codes = stage_codes(last["stage"], args.n)
        stage_codes(last["serial"], args.n)
        same = float((codes == raw_codes).mean())

        agreement = "-"
        if tokenizer.precision != "fp32":  # a fresh fp32 copy: casting the step's model back would round it
            reference = ImageTokenizer(folder, image_size=size, device=str(device), precision="fp32")
            exact = encode_all(reference, pixels, args.batch)(args.n).cpu().numpy()
            agreement = f"{float((raw_codes == exact).mean()):.4f}"
            del reference
        print(f"\n{'raw encoder img/s':>18} {'stage img/s':>12} {'stage/raw':>10} {'no prefetch img/s':>18} "
              f"{'prefetch gain':>14} {'stage = raw':>12} {'vs fp32':>8}")
        print(f"{raw_rate:>18.1f} {stage_rate:>12.1f} {stage_rate / raw_rate:>10.2f} {serial_rate:>18.1f} "
              f"{stage_rate / serial_rate:>13.2f}x {same:>12.4f} {agreement:>8}")

        print(f"\n{'image input':<12} {'images/s':>9}   (decode + resize to {size} + batch on {device})")
        for decoder in ("pil", "torch"):
            batcher = ImageBatcher(vq_preprocess(size), device, torch.float32, decoder)

            def prepare(m: int, batcher=batcher) -> None:
                for start in range(0, m, args.batch):
                    batcher(blobs[start:min(start + args.batch, m)])
            print(f"{decoder:<12} {timed({decoder: prepare}, args.n, warm, args.repeats, device)[0][decoder]:>9.1f}")
            batcher.pool.shutdown()

        corpus = caption_lines()
        texts = [corpus[i % len(corpus)] for i in range(max(args.n, TEXT_CAPTIONS))]
        bpe = train_bpe(corpus, f"{scratch}/bpe")
        print(f"\n{'text ids':<24} {'captions/s':>11}   ({len(texts)} captions, {settings.text_length} ids each)")
        for label, text in (("clip", TextTokenizer("clip")), ("", TextTokenizer(str(Path(bpe).parent)))):
            label = label or f"byte-level BPE ({text.vocab_size} ids)"

            def encode(m: int, text=text) -> None:
                text.encode(texts[:m], settings.text_length)
            rate = timed({label: encode}, len(texts), len(texts), args.repeats, torch.device("cpu"))[0][label]
            print(f"{label:<24} {rate:>11.0f}")
    print(f"\ntarget: the stage >= {TARGET_STAGE:.0%} of the raw encoder forward (stage/raw >= {TARGET_STAGE:.2f})")


if __name__ == "__main__":
    main()
