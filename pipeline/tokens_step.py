"""Pre-tokenization inside a shard, the last step: each sample's written image as VQ codes and its
final caption (the .txt) as fixed-length text ids, into the shard's ``tokens`` side file, for the
trainer. Images are decoded and resized on a helper thread one batch ahead while the model encodes
(on CUDA with nvjpeg, as the CLIP step does). Beam-free; torch and the models load when it is built.
``altcap tokenize`` runs the same step over finished shards (``pipeline.tokenize``)."""

from __future__ import annotations

from typing import ClassVar

from dataset.layout import TOKENS
from dataset.writer import final_caption
from filters.record import is_rejected
from pipeline.shard_step import ShardStep, internal_error
from tokens.config import TokensConfig


def vq_preprocess(size: int):
    """PIL image -> (3, size, size) pixels in [-1, 1]: the shorter side resized to ``size`` (bicubic),
    the centre cropped square, as DALL-E and dalle-mini prepared their images."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True), T.CenterCrop(size),
                      T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])


class TokensStep(ShardStep):
    stage = "tokens"
    reasons = ("internal_error",)
    settings: ClassVar[dict] = {"tokens": TokensConfig}
    side_file = TOKENS
    summed = ("captions_truncated",)

    @classmethod
    def enabled(cls, config) -> bool:
        return config.tokens.enabled

    @classmethod
    def preflight(cls, config) -> None:
        from tokens.manifest import manifest_of

        manifest_of(config.tokens)  # a missing or pickled model fails here; a hub model is fetched once
        if config.tokens.precision == "auto":
            cls(config.tokens)  # measures the precision once, in the launcher; workers find it cached

    @classmethod
    def claim(cls, config, out_dir: str) -> None:
        from tokens.manifest import claim, manifest_of

        claim(out_dir, manifest_of(config.tokens))

    @classmethod
    def resolved(cls, config) -> dict[str, str]:
        from tokens.manifest import manifest_of

        found = manifest_of(config.tokens)
        image, text = found["image"], found["text"]
        return {"tokens.image_model": f"{image['revision'] or 'folder'} sha256:{image['sha256']}",
                "tokens.text_tokenizer": f"sha256:{text['sha256']}"}

    def __init__(self, tokens: TokensConfig):
        import torch

        from filters.clip_images import ImageBatcher
        from filters.clip_model import resolve_device
        from tokens.image_codes import ImageTokenizer
        from tokens.manifest import code_dtype
        from tokens.text_ids import TextTokenizer

        device = resolve_device(tokens.device)
        fixed = "fp32" if tokens.precision == "auto" else tokens.precision
        self.image = ImageTokenizer(tokens.image_model, image_size=tokens.image_size, revision=tokens.image_revision,
                                    device=str(device), precision=fixed)
        agreement = None
        if tokens.precision == "auto":
            from tokens.vq_precision import auto_precision

            agreement = auto_precision(self.image).agreement[self.image.precision]
        self.text = TextTokenizer(tokens.text_tokenizer)
        self.length = tokens.text_length
        self.code_dtype = code_dtype(self.image.geometry.codebook_size)
        self.batch_size = tokens.batch_size
        self.batcher = ImageBatcher(vq_preprocess(tokens.image_size), device, torch.float32, tokens.decoder)
        files, geometry = self.image.files, self.image.geometry
        self.info = {"image_model": files.model, "revision": files.revision, "sha256": files.sha256,
                     "grid": geometry.grid, "codebook_size": geometry.codebook_size,
                     "text_tokenizer": self.text.name, "text_length": self.length, "device": str(device),
                     "precision": self.image.precision, "code_agreement": agreement,
                     "decoder": self.batcher.decoder, "captions_truncated": 0}

    def prepare(self, batch: list[dict]) -> tuple:
        """The batch's CPU work, done on a helper thread while the model encodes the batch before:
        (pixels of the samples that decode, {position among the samples: error} of those that do
        not, the text ids of every sample)."""
        live = [outcome for outcome in batch if not is_rejected(outcome)]
        text = self.text.encode([final_caption(outcome) for outcome in live], self.length)
        blobs = [outcome["image_bytes"] for outcome in live]
        try:
            return self.batcher(blobs), {}, text
        except Exception:  # the image step decoded every one: find the odd one out, one at a time
            decoded, failed = [], {}
            for n, blob in enumerate(blobs):
                try:
                    decoded.append(self.batcher([blob]))
                except Exception as err:
                    failed[n] = err
            import torch

            return (torch.cat(decoded) if decoded else None), failed, text

    def __call__(self, outcomes: list[dict], prepared=None) -> list[dict]:
        pixels, failed, text = prepared if prepared is not None else self.prepare(outcomes)
        at = [i for i, outcome in enumerate(outcomes) if not is_rejected(outcome)]
        for n, err in failed.items():
            outcomes[at[n]] = internal_error(outcomes[at[n]], self.stage, err)
        rows = [(n, i) for n, i in enumerate(at) if n not in failed]
        if not rows:
            return outcomes
        codes = self.image.encode_pixels(pixels).cpu().numpy().astype(self.code_dtype)
        for code_row, (n, i) in enumerate(rows):
            outcomes[i][TOKENS.field] = (text.ids[n], text.lengths[n], codes[code_row])
            self.info["captions_truncated"] += int(text.truncated[n])
        return outcomes
