"""The DALL-E-style transformer: one decoder over a caption's BPE ids and its image's VQ codes, written like
nanoGPT's model.py (https://github.com/karpathy/nanoGPT) and shaped like DALL-E's prior (Ramesh et al. 2021,
"Zero-Shot Text-to-Image Generation", section 2.2 and appendix B.1), with dense causal attention where DALL-E
has sparse row, column and convolutional masks.

The sequence is [caption: text_length ids ; start-of-image ; the image codes but the last], text_length + grid**2
positions. The output at caption position i predicts caption id i + 1; the output at the start-of-image predicts
image code 0 and the output at image code j - 1 predicts code j, row by row.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn import functional as F

from tokens.text_ids import PAD_ID


@dataclass
class ModelConfig:
    text_vocab: int  # tokenizers.json text.vocab_size
    text_length: int  # text.length: ids per caption, padded
    image_vocab: int  # image.codebook_size
    image_grid: int  # image.grid: an image is image_grid**2 codes, row by row
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = False  # True: bias in Linears and LayerNorms, like GPT-2. False: a bit better and faster
    text_loss_weight: float = 1 / 8  # DALL-E weighs the caption's loss 1/8 and the image's 7/8 (section 2.2)
    image_loss_weight: float = 7 / 8

    @property
    def image_length(self) -> int:
        return self.image_grid ** 2

    @property
    def sequence_length(self) -> int:
        return self.text_length + self.image_length


# GPT-2's shapes; the vocabularies come from the token files
SIZES = {"tiny": dict(n_layer=2, n_head=2, n_embd=64), "124M": dict(n_layer=12, n_head=12, n_embd=768),
         "350M": dict(n_layer=24, n_head=16, n_embd=1024), "1.3B": dict(n_layer=24, n_head=32, n_embd=2048)}

# bf16 dense peak FLOP/s of the SXM parts, matched in torch.cuda.get_device_name
PEAK_FLOPS = {"A100": 312e12, "H100": 989e12, "H200": 989e12}


class Loss(NamedTuple):
    loss: torch.Tensor  # text_loss_weight * text_loss + image_loss_weight * image_loss: what training minimises
    text_loss: torch.Tensor  # mean cross-entropy over the caption ids after the first, padding left out
    image_loss: torch.Tensor  # mean cross-entropy over the image codes


class KVCache:
    """One layer's keys and values for generation: filled by the prompt from empty, then by one position a step."""

    def __init__(self, size: int):
        self.size, self.length, self.keys, self.values = size, 0, None, None

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is None:
            shape = (k.size(0), k.size(1), self.size, k.size(3))
            self.keys, self.values = k.new_empty(shape), v.new_empty(shape)
        end = self.length + k.size(2)
        self.keys[:, :, self.length:end], self.values[:, :, self.length:end] = k, v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class CausalSelfAttention(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
                   for t in self.c_attn(x).split(self.n_embd, dim=2))
        if cache is not None:
            k, v = cache.extend(k, v)
        # T > 1: a whole sequence or a prompt, causal; T == 1: one new position, which sees every key so far
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0, is_causal=T > 1)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class DalleTransformer(nn.Module):

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.text_embedding = nn.Embedding(config.text_vocab, C)  # also the text head (tied)
        # DALL-E learns a padding token for each caption position, used where the caption has ended (section 2.2)
        self.text_padding = nn.Embedding(config.text_length, C)
        self.text_position = nn.Embedding(config.text_length, C)
        self.image_embedding = nn.Embedding(config.image_vocab, C)  # also the image head (tied)
        self.image_row = nn.Embedding(config.image_grid, C)  # DALL-E: row and column embeddings (appendix B.1)
        self.image_column = nn.Embedding(config.image_grid, C)
        self.start_of_image = nn.Parameter(torch.zeros(C))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.apply(self._init_weights)
        nn.init.normal_(self.start_of_image, mean=0.0, std=0.02)
        # GPT-2's scaled init of the residual projections
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameters in the model. The non-embedding count (default) leaves out, as nanoGPT does, the lookups
        no matmul uses: positions, padding tokens and the start-of-image vector. The token embeddings stay in:
        they are the heads' weights too."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            lookups = (self.text_padding, self.text_position, self.image_row, self.image_column)
            n -= sum(m.weight.numel() for m in lookups) + self.start_of_image.numel()
        return n

    def flops_per_token(self) -> float:
        """Training FLOPs (forward and backward) per token by nanoGPT's estimate, from PaLM's appendix B:
        6N + 12 * n_layer * n_head * head_size * T, T the sequence length. N counts the weights a position
        multiplies: the blocks', and of the heads the text head's at the text_length - 1 positions that predict
        caption ids and the image head's at the grid**2 that predict codes, averaged over T. nanoGPT's N, all of
        num_parameters(), would put both heads on every position: for "124M" with the default tokens (49,408
        CLIP ids, 16,384 codes, 128 + 32x32 positions) that is 135.5M instead of 100.3M, 29% more FLOPs."""
        c = self.config
        T = c.sequence_length
        heads = ((c.text_length - 1) * c.text_vocab + c.image_length * c.image_vocab) * c.n_embd / T
        N = self.num_parameters() - (c.text_vocab + c.image_vocab) * c.n_embd + heads
        return 6 * N + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * T

    def embed_text(self, text_ids: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(self.config.text_length, device=text_ids.device)
        real = (positions < text_lengths[:, None])[..., None]
        tokens = torch.where(real, self.text_embedding(text_ids), self.text_padding(positions))
        return tokens + self.text_position(positions)

    def embed_image(self, codes: torch.Tensor, first: int) -> torch.Tensor:
        """The image inputs from image position ``first`` on: at position 0 the start-of-image vector, at position
        j code j - 1 (``codes`` are those codes). So each input carries the row and column of the code its output
        predicts."""
        vectors = self.image_embedding(codes)
        if first == 0:
            vectors = torch.cat([self.start_of_image.expand(codes.size(0), 1, -1), vectors], dim=1)
        positions = torch.arange(first, first + vectors.size(1), device=codes.device)
        grid = self.config.image_grid
        return vectors + self.image_row(positions // grid) + self.image_column(positions % grid)

    def transform(self, x: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        x = self.drop(x)
        for block, cache in zip(self.blocks, caches or [None] * len(self.blocks)):
            x = block(x, cache)
        return self.ln_f(x)

    def forward(self, text_ids: torch.Tensor, text_lengths: torch.Tensor, image_codes: torch.Tensor) -> Loss:
        """The loss of (B, text_length) caption ids, of which the first ``text_lengths`` are the caption's, and
        (B, grid**2) image codes. Each part's cross-entropy is the mean over its targets in the batch, as DALL-E
        normalises by the number of tokens of each kind (section 2.2)."""
        c = self.config
        L, N = c.text_length, c.image_length
        assert text_ids.size(1) == L and image_codes.size(1) == N, \
            f"expected {L} text ids and {N} image codes, got {text_ids.size(1)} and {image_codes.size(1)}"
        x = self.transform(torch.cat([self.embed_text(text_ids, text_lengths),
                                      self.embed_image(image_codes[:, :-1], 0)], dim=1))
        padded = torch.arange(1, L, device=text_ids.device) >= text_lengths[:, None]
        targets = text_ids[:, 1:].masked_fill(padded, -1)
        text_logits = F.linear(x[:, :L - 1], self.text_embedding.weight)
        text_sum = F.cross_entropy(text_logits.flatten(0, 1), targets.flatten(), ignore_index=-1, reduction="sum")
        text_loss = text_sum / (~padded).sum().clamp(min=1)
        image_logits = F.linear(x[:, L:], self.image_embedding.weight)
        image_loss = F.cross_entropy(image_logits.flatten(0, 1), image_codes.flatten())
        return Loss(c.text_loss_weight * text_loss + c.image_loss_weight * image_loss, text_loss, image_loss)

    @torch.no_grad()
    def generate(self, text_ids: torch.Tensor, text_lengths: torch.Tensor, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, guidance: float = 1.0,
                 generator: torch.Generator | list[torch.Generator] | None = None, prefix: torch.Tensor | None = None,
                 use_cache: bool = True) -> torch.Tensor:
        """Draw (B, grid**2) image codes for the captions, one code at a time (see ``sample_next``). ``generator``
        is one for the batch, or a list of one per row: then a row's codes depend on its caption and generator
        only, whatever else is in the batch. ``prefix``, (B, P) codes, is how each image starts, e.g. its first
        P / grid rows (DALL-E's image completion): only the codes after them are drawn. With ``guidance`` != 1
        each step also runs the empty caption and samples from uncond + guidance * (cond - uncond) (classifier-free
        guidance, Ho & Salimans 2022), one draw per row. With ``use_cache`` the caption, start-of-image and prefix
        run once and then one position a step; without, every step runs the whole prefix again. Call model.eval()
        first."""
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        B, N = text_ids.size(0), self.config.image_length
        if isinstance(generator, (list, tuple)) and len(generator) != B:
            raise ValueError(f"{len(generator)} generators for {B} captions: give one, or one per caption")
        codes = text_ids.new_empty(B, 0) if prefix is None else prefix.to(text_ids.device, torch.int64)
        if codes.size(0) != B or codes.size(1) > N:
            raise ValueError(f"prefix must be ({B}, at most {N}) codes, got {tuple(codes.shape)}")
        if guidance != 1:
            empty_ids, empty_lengths = unconditional(text_ids, text_lengths)
            text_ids, text_lengths = torch.cat([text_ids, empty_ids]), torch.cat([text_lengths, empty_lengths])
            codes = codes.repeat(2, 1)
        prompt = self.embed_text(text_ids, text_lengths)
        caches = [KVCache(self.config.sequence_length) for _ in self.blocks] if use_cache else None
        first = codes.size(1)
        for j in range(first, N):
            if use_cache and j > first:
                x = self.embed_image(codes[:, -1:], j)
            else:
                x = torch.cat([prompt, self.embed_image(codes, 0)], dim=1)
            logits = F.linear(self.transform(x, caches)[:, -1], self.image_embedding.weight)
            if guidance != 1:
                cond, uncond = logits.chunk(2)
                logits = uncond + guidance * (cond - uncond)
            code = sample_next(logits, temperature, top_k, top_p, generator)
            codes = torch.cat([codes, code.repeat(codes.size(0) // B)[:, None]], dim=1)
        return codes[:B]


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
    """One id per row of (B, V) ``logits``: scaled by 1 / temperature, cut to the top_k most likely, then to the
    fewest whose probability reaches top_p (nucleus sampling, Holtzman et al. 2020). Temperature 0 takes the
    argmax. ``generator``: one for all rows, or a list with each row's own."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    if top_p is not None:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        beyond = probs.cumsum(dim=-1) - probs >= top_p  # the more likely ids already reach top_p
        logits = logits.masked_fill(beyond.scatter(-1, order, beyond), float("-inf"))
    probs = logits.softmax(dim=-1)
    if isinstance(generator, (list, tuple)):
        return torch.cat([torch.multinomial(row[None], 1, generator=g)[0] for row, g in zip(probs, generator)])
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def unconditional(text_ids: torch.Tensor, text_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The empty caption for every sample (PAD ids, length 0): caption dropout trains on it, classifier-free
    guidance samples against it."""
    return torch.full_like(text_ids, PAD_ID), torch.zeros_like(text_lengths)


def mfu(flops_per_second: float, device: torch.device) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the device's bf16 dense peak (PEAK_FLOPS). None where the
    ratio would mean nothing: not a CUDA device, a device not in PEAK_FLOPS, no FLOP/s, or more than the peak
    (then the estimate is wrong, not the device)."""
    if device.type != "cuda" or not flops_per_second > 0:
        return None
    name = torch.cuda.get_device_name(device)
    peak = next((flops for part, flops in PEAK_FLOPS.items() if part in name), None)
    if peak is None or flops_per_second > peak:
        return None
    return flops_per_second / peak
