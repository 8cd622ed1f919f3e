"""The shared Transformer LM against torch.nn.TransformerEncoder (copied weights), its KV cache
against full recomputation, and causality."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shiyan.nn.lm import LMConfig, TransformerLM, apply_rope, causal_mask, rope_angles


def make_lm(**kw) -> TransformerLM:
    cfg = LMConfig(**{"vocab_size": 23, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 40, **kw})
    return TransformerLM(cfg, generator=torch.Generator().manual_seed(0)).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_matches_torch_transformer_encoder_with_copied_weights(norm_first):
    lm = make_lm(norm_position="pre" if norm_first else "post")
    cfg = lm.cfg
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
    )
    ref = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False).eval()
    with torch.no_grad():
        for mine, theirs in zip(lm.blocks, ref.layers):
            theirs.self_attn.in_proj_weight.copy_(mine.attn.qkv.weight)
            theirs.self_attn.in_proj_bias.copy_(mine.attn.qkv.bias)
            theirs.self_attn.out_proj.weight.copy_(mine.attn.out.weight)
            theirs.self_attn.out_proj.bias.copy_(mine.attn.out.bias)
            theirs.linear1.weight.copy_(mine.ffn.w1.weight)
            theirs.linear1.bias.copy_(mine.ffn.w1.bias)
            theirs.linear2.weight.copy_(mine.ffn.w2.weight)
            theirs.linear2.bias.copy_(mine.ffn.w2.bias)
            for a, b in ((mine.norm1, theirs.norm1), (mine.norm2, theirs.norm2)):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    idx = torch.randint(0, cfg.vocab_size, (3, 17), generator=torch.Generator().manual_seed(1))
    x = lm.embed(idx) + lm.pos_embed(torch.arange(17))
    mask = nn.Transformer.generate_square_subsequent_mask(17)
    h = ref(x, mask=mask, is_causal=True)
    expected = lm.head(lm.final_norm(h))
    torch.testing.assert_close(lm(idx), expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("ffn", ["mlp", "swiglu"])
def test_kv_cache_generation_equals_full_recomputation(positions, ffn):
    lm = make_lm(positions=positions, ffn=ffn, norm="rmsnorm" if ffn == "swiglu" else "layernorm")
    prompt = torch.randint(0, 23, (2, 5), generator=torch.Generator().manual_seed(2))
    greedy_cached = lm.generate(prompt, 20, temperature=0, use_cache=True)
    greedy_full = lm.generate(prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(greedy_cached, greedy_full)
    sampled = [
        lm.generate(prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(3), use_cache=c)
        for c in (True, False)
    ]
    assert torch.equal(*sampled)
    # logits of a multi-token chunk appended to a cached prefix equal the full forward
    cache = lm.new_cache(2)
    seq = greedy_full
    lm(seq[:, :9], cache=cache)
    chunk = lm(seq[:, 9:14], cache=cache, start=9)
    torch.testing.assert_close(chunk, lm(seq[:, :14])[:, 9:14], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_no_information_flows_from_the_future(positions):
    lm = make_lm(positions=positions)
    idx = torch.randint(0, 23, (1, 12), generator=torch.Generator().manual_seed(4))
    changed = idx.clone()
    changed[0, 7] = (changed[0, 7] + 1) % 23
    a, b = lm(idx), lm(changed)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_rope_scores_depend_only_on_offset():
    cos, sin = rope_angles(50, 8)
    q = torch.randn(1, 1, 1, 8, dtype=torch.float32)
    k = torch.randn(1, 1, 1, 8, dtype=torch.float32)

    def score(tq: int, tk: int) -> torch.Tensor:
        qr = apply_rope(q, cos[tq : tq + 1], sin[tq : tq + 1])
        kr = apply_rope(k, cos[tk : tk + 1], sin[tk : tk + 1])
        return (qr * kr).sum()

    torch.testing.assert_close(score(10, 3), score(37, 30), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(score(5, 5), (q * k).sum(), atol=1e-5, rtol=1e-5)


def test_mask_and_bad_input():
    assert causal_mask(2, 3).tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    lm = make_lm()
    with pytest.raises(ValueError, match="idx must be an integer tensor"):
        lm(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="max_seq_len"):
        lm(torch.zeros(1, 41, dtype=torch.long))
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        LMConfig(vocab_size=5, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        lm.generate(torch.zeros(1, 3, dtype=torch.long), 40)


def test_tied_embeddings_and_parameter_count():
    lm = make_lm()
    assert lm.head.weight is lm.embed.weight
    assert lm.num_parameters() == sum(p.numel() for p in lm.parameters())
