"""The DALL-E-style transformer (trainer/model.py): loss rules, causality, generation with and without the KV
cache, FLOPs and MFU, and that a tiny model learns. Real torch, tiny configs, CPU, fp32."""

import math

import pytest
import torch
from torch.nn import functional as F

from trainer.model import (
    PEAK_FLOPS,
    SIZES,
    DalleTransformer,
    ModelConfig,
    mfu,
    sample_next,
    unconditional,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine a second one slows a step 50-fold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = dict(text_vocab=50, text_length=6, image_vocab=32, image_grid=3, n_layer=2, n_head=2, n_embd=32)


def tiny_model(seed=0, spread=None) -> DalleTransformer:
    """A tiny model in eval mode; with ``spread``, every weight redrawn with that std, so that its predictions,
    unlike a fresh model's near-uniform ones, differ between positions and captions."""
    torch.manual_seed(seed)
    model = DalleTransformer(ModelConfig(**TINY)).eval()
    if spread:
        for p in model.parameters():
            torch.nn.init.normal_(p, std=spread)
    return model


def batch(seed=1, lengths=(3, 6, 0, 1)):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    text = torch.randint(1, TINY["text_vocab"], (len(lengths), TINY["text_length"]), generator=generator)
    text = text.masked_fill(torch.arange(TINY["text_length"]) >= lengths[:, None], 0)
    codes = torch.randint(0, TINY["image_vocab"], (len(lengths), TINY["image_grid"] ** 2), generator=generator)
    return text, lengths, codes


def hidden_states(model, *inputs) -> torch.Tensor:
    """The final LayerNorm's output (B, T, C) of a forward pass: what the heads read at every position."""
    seen = []
    handle = model.ln_f.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        model(*inputs)
    handle.remove()
    return seen[0]


def image_logits(model, text, lengths, codes) -> torch.Tensor:
    """(B, N, image_vocab): the logits each image position's output gives its code."""
    return F.linear(hidden_states(model, text, lengths, codes)[:, model.config.text_length:],
                    model.image_embedding.weight)


def test_loss_ignores_padded_text_targets():
    model = tiny_model()
    text, lengths, codes = batch()
    with torch.no_grad():
        before = model(text, lengths, codes)
        garbage = torch.where(torch.arange(6) >= lengths[:, None], torch.randint(1, 50, text.shape), text)
        assert not torch.equal(garbage, text)
        assert all(torch.equal(a, b) for a, b in zip(model(garbage, lengths, codes), before))  # bit for bit
        real = text.clone()
        real[1, 4] = (real[1, 4] + 1) % 50  # a caption id, not padding
        assert model(real, lengths, codes).text_loss != before.text_loss


def test_text_loss_is_the_mean_over_real_targets_and_weighted_one_eighth():
    model = tiny_model()
    text, lengths, codes = batch(lengths=(3, 5))
    with torch.no_grad():
        both = model(text, lengths, codes)
        first, second = (model(text[[i]], lengths[[i]], codes[[i]]) for i in (0, 1))
    # 2 targets in the first caption (ids 1, 2), 4 in the second: a mean over the batch's 6 targets
    assert torch.allclose(both.text_loss, (2 * first.text_loss + 4 * second.text_loss) / 6, atol=1e-6)
    assert torch.allclose(both.image_loss, (first.image_loss + second.image_loss) / 2, atol=1e-6)
    assert torch.allclose(both.loss, both.text_loss / 8 + 7 * both.image_loss / 8, atol=1e-6)


def test_captions_without_targets_give_zero_text_loss():
    model = tiny_model()
    text, lengths, codes = batch(lengths=(0, 1, 0, 1))  # nothing to predict after the first id
    loss = model(text, lengths, codes)
    assert loss.text_loss == 0 and math.isfinite(loss.loss.item())
    loss.loss.backward()  # still a graph, so DDP sees every parameter


def test_image_code_changes_nothing_before_it():
    model = tiny_model()
    text, lengths, codes = batch()
    L, j = TINY["text_length"], 4
    changed = codes.clone()
    changed[:, j] = (changed[:, j] + 1) % TINY["image_vocab"]
    before, after = hidden_states(model, text, lengths, codes), hidden_states(model, text, lengths, changed)
    # code j is the input at position L + 1 + j: outputs up to L + j (those predicting codes 0..j) stay as they were
    assert torch.allclose(before[:, :L + j + 1], after[:, :L + j + 1], atol=1e-6, rtol=0)
    assert not torch.allclose(before[:, L + j + 1:], after[:, L + j + 1:], atol=1e-4, rtol=0)
    per_code = [F.cross_entropy(image_logits(model, text, lengths, c).transpose(1, 2), codes, reduction="none")
                for c in (codes, changed)]  # both scored against the original codes
    assert torch.allclose(per_code[0][:, :j + 1], per_code[1][:, :j + 1], atol=1e-6, rtol=0)


def test_caption_id_changes_nothing_before_it():
    model = tiny_model()
    text, lengths, codes = batch()
    changed = text.clone()
    changed[1, 3] = (changed[1, 3] + 1) % 50
    before, after = hidden_states(model, text, lengths, codes), hidden_states(model, changed, lengths, codes)
    assert torch.equal(before[0], after[0])  # other samples untouched
    assert torch.allclose(before[1, :3], after[1, :3], atol=1e-6, rtol=0)
    assert not torch.allclose(before[1, 3:], after[1, 3:], atol=1e-4, rtol=0)


SAMPLING = [dict(temperature=0), dict(temperature=1.0), dict(temperature=0.8, top_k=5),
            dict(temperature=1.2, top_p=0.9), dict(temperature=1.0, top_k=10, top_p=0.8)]


def generators(per_row: bool, seed: int = 7, rows: int = 4):
    """One generator for the batch, or one per row."""
    if per_row:
        return [torch.Generator().manual_seed(seed + i) for i in range(rows)]
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("prefix_rows", [0, 1])
@pytest.mark.parametrize("per_row", [False, True], ids=["one_generator", "per_row_generators"])
@pytest.mark.parametrize("guidance", [1.0, 3.0])
@pytest.mark.parametrize("sampling", SAMPLING, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_kv_cache_generates_the_same_codes(sampling, guidance, per_row, prefix_rows):
    model = tiny_model(spread=0.1)
    text, lengths, codes = batch()
    prefix = codes[:, :prefix_rows * TINY["image_grid"]]
    drawn = [model.generate(text, lengths, guidance=guidance, use_cache=cache, generator=generators(per_row),
                            prefix=prefix, **sampling) for cache in (True, False)]
    assert drawn[0].shape == (4, 9) and drawn[0].dtype == torch.int64
    assert torch.equal(drawn[0], drawn[1])
    assert torch.equal(drawn[0][:, :prefix.size(1)], prefix)
    assert drawn[0].min() >= 0 and drawn[0].max() < TINY["image_vocab"]


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_a_row_with_its_own_generator_draws_the_same_codes_in_any_batch(guidance):
    model = tiny_model(spread=0.1)
    text, lengths, codes = batch()
    prefix = codes[:, :3]
    together = model.generate(text, lengths, guidance=guidance, generator=generators(True), prefix=prefix)
    for i in range(4):
        alone = model.generate(text[[i]], lengths[[i]], guidance=guidance, prefix=prefix[[i]],
                               generator=[torch.Generator().manual_seed(7 + i)])
        assert torch.equal(alone[0], together[i])
    flipped = model.generate(text.flip(0), lengths.flip(0), guidance=guidance, prefix=prefix.flip(0),
                             generator=generators(True)[::-1])
    assert torch.equal(flipped, together.flip(0))
    same_caption = model.generate(text[[0, 0]], lengths[[0, 0]], guidance=guidance, generator=generators(True, rows=2))
    assert not torch.equal(same_caption[0], same_caption[1])  # another seed, another image


def test_generators_and_prefix_must_fit_the_batch():
    model = tiny_model()
    text, lengths, codes = batch()
    with pytest.raises(ValueError, match="3 generators for 4 captions"):
        model.generate(text, lengths, generator=generators(True, rows=3))
    with pytest.raises(ValueError, match="prefix must be"):
        model.generate(text, lengths, prefix=codes[:2, :3])
    whole = model.generate(text, lengths, prefix=codes)  # nothing left to draw
    assert torch.equal(whole, codes)


def test_greedy_generation_is_the_forward_pass_argmax():
    """Generation and training see the same sequence: each greedy code is the argmax the training forward pass
    gives its position, with and without guidance."""
    model = tiny_model(spread=0.3)
    text, lengths, _ = batch()
    codes = model.generate(text, lengths, temperature=0)
    assert torch.equal(image_logits(model, text, lengths, codes).argmax(-1), codes)
    assert len(codes.unique()) > 3
    guided = model.generate(text, lengths, temperature=0, guidance=3.0)
    cond = image_logits(model, text, lengths, guided)
    uncond = image_logits(model, *unconditional(text, lengths), guided)
    assert torch.equal((uncond + 3.0 * (cond - uncond)).argmax(-1), guided)
    assert not torch.equal(guided, codes)  # guidance changed something
    given = batch()[2][:, :4]  # the first row and one code: each drawn code follows them, as in training
    completed = model.generate(text, lengths, temperature=0, guidance=3.0, prefix=given)
    cond = image_logits(model, text, lengths, completed)
    uncond = image_logits(model, *unconditional(text, lengths), completed)
    assert torch.equal(completed[:, :4], given)
    assert torch.equal((uncond + 3.0 * (cond - uncond)).argmax(-1)[:, 4:], completed[:, 4:])


def test_top_k_one_is_greedy():
    model = tiny_model()
    text, lengths, _ = batch()
    greedy = model.generate(text, lengths, temperature=0)
    assert torch.equal(model.generate(text, lengths, top_k=1, generator=torch.Generator().manual_seed(3)), greedy)
    logits = torch.randn(64, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_next(logits, 1.0, top_k=1), logits.argmax(-1))


def test_top_p_keeps_the_nucleus():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log().repeat(2000, 1)
    drawn = sample_next(logits, top_p=0.7, generator=torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3
    assert set(sample_next(logits, top_p=0.3, generator=torch.Generator().manual_seed(0)).tolist()) == {0}
    assert set(sample_next(logits, generator=torch.Generator().manual_seed(0)).tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="top_p"):
        tiny_model().generate(*batch()[:2], top_p=0)


def test_unconditional_is_the_empty_caption():
    text, lengths, _ = batch()
    ids, empty = unconditional(text, lengths)
    assert torch.equal(ids, torch.zeros_like(text)) and torch.equal(empty, torch.zeros_like(lengths))


def test_parameters_and_flops_by_hand():
    model = tiny_model()
    C, L, N, Vt, Vi, layers = 32, 6, 9, 50, 32, 2
    block = 2 * C + 3 * C * C + C * C + 4 * C * C + 4 * C * C  # 2 LayerNorms (no bias), qkv, proj, MLP = 12352
    lookups = 2 * L * C + 2 * 3 * C + C  # text padding + positions, rows + columns, start-of-image = 608
    assert model.num_parameters() == layers * block + C + Vt * C + Vi * C == 27360  # + final LayerNorm, embeddings
    assert model.num_parameters(non_embedding=False) == 27360 + lookups == 27968
    T = L + N  # 15
    heads = ((L - 1) * Vt + N * Vi) * C / T  # text head at 5 positions, image head at 9: 17216 / 15
    dense = 27360 - (Vt + Vi) * C + heads  # 24736 + 1147.73 = 25883.73
    attention = 12 * layers * 2 * 16 * T  # 12 * n_layer * n_head * head_size * T = 11520
    assert model.flops_per_token() == pytest.approx(6 * dense + attention) == pytest.approx(166822.4)


def test_124m_is_gpt2_small_with_our_vocabularies():
    """GPT-2 small's 124M is 85M in the blocks plus a 50,257 x 768 embedding; ours has the same blocks and the
    default tokens' vocabularies (49,408 CLIP ids, 16,384 MoVQ codes), so 135.5M."""
    with torch.device("meta"):
        model = DalleTransformer(ModelConfig(text_vocab=49408, text_length=128, image_vocab=16384, image_grid=32,
                                             **SIZES["124M"]))
    blocks = 12 * (2 * 768 + 12 * 768 * 768)
    assert blocks == 84_953_088
    assert model.num_parameters() == blocks + 768 + (49408 + 16384) * 768 == 135_482_112
    assert 120e6 < model.num_parameters() < 140e6


def test_mfu(monkeypatch):
    assert mfu(1e12, torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    cuda = torch.device("cuda", 0)
    assert mfu(494.5e12, cuda) == pytest.approx(0.5)  # half of 989e12
    assert mfu(0.0, cuda) is None and mfu(-1.0, cuda) is None and mfu(float("nan"), cuda) is None
    assert mfu(2 * PEAK_FLOPS["H100"], cuda) is None  # past the peak: the estimate is wrong
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    assert mfu(156e12, cuda) == pytest.approx(0.5)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA GeForce RTX 4090")
    assert mfu(1e12, cuda) is None
    # flops_per_token * tokens/s, as train.py reports it: 166822.4 FLOPs x 1e9 tokens/s on an H200
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert mfu(tiny_model().flops_per_token() * 1e9, cuda) == pytest.approx(166822.4e9 / 989e12)


def test_state_dict_has_no_shared_tensors(tmp_path):
    """The heads are the embeddings (tied), yet safetensors, which refuses shared tensors, saves the weights."""
    from safetensors.torch import load_file, save_file

    model = tiny_model()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    again = tiny_model(seed=1)
    again.load_state_dict(load_file(tmp_path / "model.safetensors"))
    text, lengths, codes = batch()
    assert torch.equal(again(text, lengths, codes).loss, model(text, lengths, codes).loss)


def test_tiny_model_memorises_a_batch():
    model = tiny_model().train()
    text, lengths, codes = batch(lengths=(3, 6, 2, 5, 6, 4, 1, 6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = model(text, lengths, codes)
        optimizer.zero_grad()
        loss.loss.backward()
        optimizer.step()
        losses.append(loss.loss.item())
    assert losses[0] == pytest.approx(math.log(32), rel=0.05)  # near uniform at init
    assert losses[-1] < 0.1 * losses[0]  # about 0.003 after 100 steps
