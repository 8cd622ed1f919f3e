"""GAU and FLASH: the chunked mixed attention against its dense full-matrix formulation (forward and
backward), the GAU attention against a per-position loop, causality, recurrent decoding against the
parallel form, and the LM integration (cached generation equals full recomputation)."""

from __future__ import annotations

import math

import pytest
import torch

from shiyan.nn.gau import (
    FLASH,
    GatedAttentionUnit,
    gau_attention,
    gau_block,
    mixed_chunk_attention,
    mixed_chunk_attention_naive,
    relative_position_bias,
    squared_relu,
)
from shiyan.nn.lm import LMConfig, TransformerLM


def _randn(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _inputs(B=2, N=13, s=5, e=7, c=4, seed=0):
    qq, kq, ql, kl = (_randn(B, N, s, seed=seed + i) for i in range(4))
    v = _randn(B, N, e, seed=seed + 4)
    table = _randn(2 * c - 1, seed=seed + 5)
    return [t.requires_grad_() for t in (qq, kq, ql, kl, v, table)]


def test_relative_position_bias_indexes_clipped_offsets():
    table = torch.arange(7.0)  # b_{-3..3} = 0..6
    b = relative_position_bias(table, 4, 6, q_start=2)
    for i in range(4):
        for j in range(6):
            assert b[i, j] == min(max(2 + i - j, -3), 3) + 3


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("N", "c"), [(13, 4), (16, 4), (3, 8), (12, 1), (9, 9)])
def test_chunked_equals_dense_forward_and_backward(causal, N, c):
    args = _inputs(N=N, c=c)
    kw = dict(chunk_size=c, causal=causal, length_scale=None if not causal else 32)
    out = mixed_chunk_attention(*args, **kw)
    ref = mixed_chunk_attention_naive(*args, **kw)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    w = _randn(*out.shape, seed=99)
    grads = torch.autograd.grad((out * w).sum(), args)
    grads_ref = torch.autograd.grad((ref * w).sum(), args)
    for g, gr in zip(grads, grads_ref):
        torch.testing.assert_close(g, gr, atol=1e-10, rtol=1e-9)


def test_dense_oracle_matches_hand_written_loop():
    """The dense formulation itself, checked entry by entry against the equations."""
    qq, kq, ql, kl, v, table = (t.detach() for t in _inputs(B=1, N=7, s=3, e=2, c=3))
    c, n, s = 3, 10, 3
    out = mixed_chunk_attention_naive(qq, kq, ql, kl, v, table, chunk_size=c, causal=True, length_scale=n)
    for i in range(7):
        acc = torch.zeros(2, dtype=torch.float64)
        for j in range(i + 1):
            if j // c == i // c:
                score = qq[0, i] @ kq[0, j] / math.sqrt(s) + table[i - j + c - 1]
                acc += torch.relu(score) ** 2 / c * v[0, j]
            else:
                acc += (ql[0, i] @ kl[0, j]) / n * v[0, j]
        torch.testing.assert_close(out[0, i], acc)


def test_gau_attention_equals_per_query_loop():
    q, k = _randn(2, 9, 4, seed=1), _randn(2, 9, 4, seed=2)
    v, table = _randn(2, 9, 3, seed=3), _randn(7, seed=4)  # offsets clipped at ±3
    out = gau_attention(q, k, v, table, causal=True, length_scale=20)
    for b in range(2):
        for i in range(9):
            j = torch.arange(i + 1)
            scores = q[b, i] @ k[b, : i + 1].T / 2.0 + table[(i - j).clamp(-3, 3) + 3]
            torch.testing.assert_close(out[b, i], squared_relu(scores) / 20 @ v[b, : i + 1])
    full = gau_attention(q, k, v, table, causal=False)  # n = N = 9
    bias = relative_position_bias(table, 9, 9)
    torch.testing.assert_close(full, squared_relu(q @ k.transpose(1, 2) / 2.0 + bias) / 9 @ v)


def _flash(**kw) -> FLASH:
    torch.manual_seed(0)  # not used: weights come from the generator
    unit = FLASH(12, chunk_size=4, s=6, length_scale=40, generator=torch.Generator().manual_seed(5), **kw).double()
    with torch.no_grad():  # move γ, β and the bias away from their neutral initial values
        for p in (unit.gamma, unit.beta, unit.rel_bias):
            p.copy_(_randn(*p.shape, seed=p.numel()))
    return unit


def _gau(**kw) -> GatedAttentionUnit:
    unit = GatedAttentionUnit(
        12, s=6, length_scale=40, max_distance=5, generator=torch.Generator().manual_seed(6), **kw
    )
    unit = unit.double()
    with torch.no_grad():
        for p in (unit.gamma, unit.beta, unit.rel_bias):
            p.copy_(_randn(*p.shape, seed=p.numel()))
    return unit


def test_flash_module_equals_naive_with_parameter_gradients():
    unit = _flash()
    x = _randn(3, 11, 12, seed=7)
    out, ref = unit(x), unit.forward_naive(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    g = torch.autograd.grad(out.square().sum(), list(unit.parameters()))
    g_ref = torch.autograd.grad(ref.square().sum(), list(unit.parameters()))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("make", [_flash, _gau], ids=["flash", "gau"])
def test_changing_the_future_never_changes_the_past(make):
    unit = make()
    x = _randn(2, 15, 12, seed=8)
    for t in (0, 3, 4, 9, 14):  # chunk starts, ends and middles (c = 4)
        x2 = x.clone()
        x2[:, t] += _randn(2, 12, seed=t)
        a, b = unit(x), unit(x2)
        assert torch.equal(a[:, :t], b[:, :t])
        assert not torch.allclose(a[:, t:], b[:, t:])
    grad = torch.autograd.grad(unit(x.requires_grad_())[:, 6].sum(), x)[0]
    assert grad[:, 7:].abs().max() == 0 and grad[:, 6].abs().max() > 0


@pytest.mark.parametrize("make", [_flash, _gau], ids=["flash", "gau"])
def test_recurrent_decoding_equals_parallel(make):
    unit = make()
    x = _randn(2, 14, 12, seed=9)
    state = unit.init_state(2, dtype=torch.float64)
    steps = []
    for t in range(14):
        y, state = unit.step(x[:, t], state)
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), unit(x), atol=1e-12, rtol=1e-10)
    assert state.position == 14


def test_non_causal_flash_sees_everything_and_equals_naive():
    unit = _flash(causal=False)
    x = _randn(2, 10, 12, seed=10)
    torch.testing.assert_close(unit(x), unit.forward_naive(x), atol=1e-12, rtol=1e-10)
    x2 = x.clone()
    x2[:, -1] += 1
    assert not torch.allclose(unit(x)[:, 0], unit(x2)[:, 0])
    with pytest.raises(ValueError, match="causal"):
        unit.step(x[:, 0], unit.init_state(2, dtype=torch.float64))


def test_shapes_and_errors():
    unit = FLASH(8, chunk_size=4, s=4)
    assert unit(torch.randn(2, 9, 8)).shape == (2, 9, 8)
    assert unit.e == 16 and unit.rel_bias.numel() == 7
    with pytest.raises(ValueError, match="length_scale"):
        unit.step(torch.randn(2, 8), unit.init_state(2))
    with pytest.raises(ValueError, match="d_model"):
        unit(torch.randn(2, 9, 7))
    with pytest.raises(ValueError, match="chunk_size"):
        FLASH(8, chunk_size=0)
    with pytest.raises(ValueError, match="expansion"):
        GatedAttentionUnit(8, expansion=0)
    with pytest.raises(ValueError, match="length_scale"):
        GatedAttentionUnit(8, length_scale=-2)
    q = torch.randn(1, 5, 3)
    with pytest.raises(ValueError, match="NaN"):
        gau_attention(q, q, torch.full((1, 5, 2), float("nan")), torch.zeros(3))
    with pytest.raises(ValueError, match="k"):
        gau_attention(q, torch.randn(1, 4, 3), torch.randn(1, 5, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="table"):
        relative_position_bias(torch.zeros(4), 2, 2)
    with pytest.raises(ValueError, match="kind"):
        gau_block("mamba")


@pytest.mark.parametrize("kind", ["gau", "flash"])
def test_lm_with_gau_blocks_generates_like_full_recomputation(kind):
    cfg = LMConfig(vocab_size=19, d_model=16, n_layers=2, max_seq_len=30)
    lm = TransformerLM(cfg, block=gau_block(kind, s=8, chunk_size=4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for blk in lm.blocks:
            blk.attn.rel_bias.copy_(torch.randn(blk.attn.rel_bias.shape, generator=torch.Generator().manual_seed(1)))
    lm.eval()
    prompt = torch.randint(0, 19, (2, 6), generator=torch.Generator().manual_seed(2))
    cached = lm.generate(prompt, 15, temperature=0, use_cache=True)
    full = lm.generate(prompt, 15, temperature=0, use_cache=False)
    assert torch.equal(cached, full)
    cache = lm.new_cache(2)
    lm(full[:, :9], cache=cache)
    torch.testing.assert_close(lm(full[:, 9:13], cache=cache, start=9), lm(full[:, :13])[:, 9:13], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="continue"):
        lm(full[:, 2:4], cache=cache, start=2)
    assert sum(p.numel() for p in lm.blocks[0].parameters()) > 0
    with pytest.raises(ValueError, match="rope"):
        TransformerLM(LMConfig(vocab_size=19, d_model=16, positions="rope"), block=gau_block(kind))(prompt)
