"""``altcap tokens show``: what the trainer will see, for a person. Each chosen sample's codes are
decoded back to an image and set beside the original (cropped as the VQ model saw it), with its
text ids decoded back to a caption, in one PNG."""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from dataset import fileio
from dataset.layout import TOKENS, shard_ids, shard_paths
from dataset.reader import read_shard
from dataset.side_arrays import load_side
from tokens import TokenizerError
from tokens.manifest import manifest_path, tokenizers_of

MARGIN, LINE = 8, 16


def load_tokenizers(out_dir: str) -> tuple:
    """The tokenizers a folder's tokenizers.json names."""
    path = manifest_path(out_dir)
    if not fileio.exists(path):
        raise TokenizerError(f"{out_dir} has no {TOKENS.folder}/ with tokenizers.json: run `altcap tokenize {out_dir}`")
    return tokenizers_of(json.loads(fileio.read_bytes(path)))


def chosen(out_dir: str, keys: list[str], first: int):
    """(key, text ids, text length, codes, original image bytes) of the samples asked for, in shard order."""
    wanted = set(keys)
    for shard_id in shard_ids(out_dir):
        path = shard_paths(out_dir, shard_id)[TOKENS.folder]
        if not fileio.exists(path):
            continue
        rows = {str(row["key"]): row for row in load_side(path)}
        picked = [key for key in rows if key in wanted] if keys else list(rows)[:first]
        if not picked:
            continue
        for sample in read_shard(out_dir, shard_id):
            if sample["key"] in picked:
                row = rows[sample["key"]]
                yield sample["key"], row["text_ids"], int(row["text_length"]), row["image_codes"], sample["image"]
        first -= len(picked)
        wanted -= set(picked)
        if (keys and not wanted) or (not keys and first <= 0):
            return


def show_tokens(out_dir: str, *, keys: list[str] = (), first: int = 4, png: str | None = None):
    """Write the PNG; returns (its path, [(key, decoded caption)])."""
    image_tokenizer, text_tokenizer = load_tokenizers(out_dir)
    samples = list(chosen(out_dir, list(keys), first))
    missing = set(keys) - {sample[0] for sample in samples}
    if missing or not samples:
        raise TokenizerError(f"no tokens for {', '.join(sorted(missing)) or 'any sample'} in {out_dir}")
    size = image_tokenizer.geometry.image_size
    codes = torch.from_numpy(np.stack([sample[3] for sample in samples]).astype(np.int64))
    rebuilt = image_tokenizer.decode(codes).numpy()
    captions = [text_tokenizer.decode(ids[:length]) for _, ids, length, _, _ in samples]
    font = ImageFont.load_default(size=13)
    wrapped = [textwrap.wrap(caption, 2 * size // 7) or [""] for caption in captions]
    height = sum(size + MARGIN + LINE * len(lines) + MARGIN for lines in wrapped)
    sheet = Image.new("RGB", (2 * size + 3 * MARGIN, height + MARGIN), "white")
    draw, top = ImageDraw.Draw(sheet), MARGIN
    for (key, _, _, _, original), picture, lines in zip(samples, rebuilt, wrapped):
        cropped = ImageOps.fit(Image.open(io.BytesIO(original)).convert("RGB"), (size, size), Image.BICUBIC)
        sheet.paste(cropped, (MARGIN, top))
        sheet.paste(Image.fromarray(picture), (2 * MARGIN + size, top))
        for n, line in enumerate(lines):
            draw.text((MARGIN, top + size + 4 + n * LINE), line, fill="black", font=font)
        top += size + MARGIN + LINE * len(lines) + MARGIN
    target = png or (fileio.join(out_dir, TOKENS.folder, "show.png") if not fileio.is_remote(out_dir) else "show.png")
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    fileio.write_bytes(target, buffer.getvalue())
    return target, [(sample[0], caption) for sample, caption in zip(samples, captions)]
