"""FlashAttention (CPU tiled path) against naive attention and F.scaled_dot_product_attention,
forward and backward."""

from __future__ import annotations

import math

import pytest
import torch
from attention_oracles import LargestTensor, max_diff, out_and_grads, rand_qkv, sdpa
from hypothesis import given, settings
from hypothesis import strategies as st

from shiyan.attention import flash_attention, flash_attention_forward, naive_attention

# (n_q, n_k, block_q, block_k): equal lengths, odd sizes that are no multiple of the block, a
# longer key sequence (decoding-like), a longer query sequence, a single query, blocks larger
# than the sequence.
SHAPES = [
    (64, 64, 16, 32),
    (37, 37, 8, 16),
    (50, 50, 7, 13),
    (20, 45, 8, 8),
    (45, 20, 16, 8),
    (1, 33, 4, 8),
    (29, 31, 256, 512),
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k", "bq", "bk"), SHAPES)
def test_equals_naive_float64(n_q, n_k, bq, bk, causal):
    q, k, v = rand_qkv(2, 3, n_q, n_k, 16, 8, seed=n_q * 100 + n_k)
    g = torch.randn(2, 3, n_q, 8, dtype=torch.float64)
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal, block_q=bq, block_k=bk)
    ref = out_and_grads(naive_attention, q, k, v, g, causal=causal)
    assert max_diff(ours, ref) < 1e-12


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k", "bq", "bk"), SHAPES)
def test_equals_sdpa_float32(n_q, n_k, bq, bk, causal):
    q, k, v = rand_qkv(2, 2, n_q, n_k, 32, 24, dtype=torch.float32, seed=n_q + n_k)
    g = torch.randn(2, 2, n_q, 24)
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal, block_q=bq, block_k=bk)
    ref = out_and_grads(sdpa, q, k, v, g, causal=causal)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_causal_square_matches_sdpa_is_causal():
    """With N_q = N_k our bottom-right causal mask is SDPA's is_causal (top-left) mask."""
    q, k, v = rand_qkv(1, 2, 70, 70, 16, dtype=torch.float32, requires_grad=False)
    out = flash_attention(q, k, v, causal=True, block_q=16, block_k=32)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_causal_rectangular_matches_sdpa_lower_right():
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = rand_qkv(1, 2, 24, 70, 16, dtype=torch.float32, requires_grad=False)
    out = flash_attention(q, k, v, causal=True, block_q=8, block_k=16)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(24, 70))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_masks(kind, causal):
    b, h, n_q, n_k = 2, 3, 33, 40
    q, k, v = rand_qkv(b, h, n_q, n_k, 16, seed=5)
    gen = torch.Generator().manual_seed(1)
    keep = torch.rand(b, 1, n_q, n_k, generator=gen) > 0.3  # broadcast over heads
    keep[0, 0, 3] = False  # a fully masked row
    if kind == "bool":
        mask = keep
    else:
        mask = torch.randn(b, 1, n_q, n_k, generator=gen, dtype=torch.float64).masked_fill(~keep, -math.inf)
    g = torch.randn(b, h, n_q, 16, dtype=torch.float64)
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal, mask=mask, block_q=8, block_k=16)
    assert max_diff(ours, out_and_grads(naive_attention, q, k, v, g, causal=causal, mask=mask)) < 1e-12
    assert max_diff(ours, out_and_grads(sdpa, q, k, v, g, causal=causal, mask=mask)) < 1e-12
    assert torch.equal(ours[0][0, :, 3], torch.zeros_like(ours[0][0, :, 3]))  # fully masked row -> zeros


def test_mask_of_shape_seq_q_by_seq_k_broadcasts():
    q, k, v = rand_qkv(2, 2, 17, 19, 8, requires_grad=False)
    mask = torch.rand(17, 19, generator=torch.Generator().manual_seed(0)) > 0.5
    ours = flash_attention(q, k, v, mask=mask, block_q=4, block_k=8)
    assert max_diff([ours], [sdpa(q, k, v, mask=mask)]) < 1e-12


def test_queries_that_see_no_key_output_zero_and_get_zero_gradient():
    """Causal with N_q > N_k: the first N_q - N_k queries see no key (bottom-right alignment)."""
    q, k, v = rand_qkv(1, 2, 12, 5, 8, seed=3)
    out = flash_attention(q, k, v, causal=True, block_q=4, block_k=2)
    out.sum().backward()
    assert torch.equal(out[:, :, :7], torch.zeros_like(out[:, :, :7]))
    assert torch.equal(q.grad[:, :, :7], torch.zeros_like(q.grad[:, :, :7]))
    assert bool(torch.isfinite(k.grad).all() and torch.isfinite(v.grad).all())


def test_custom_scale():
    q, k, v = rand_qkv(1, 2, 30, 30, 16, dtype=torch.float32, seed=4)
    g = torch.randn(1, 2, 30, 16)
    ours = out_and_grads(flash_attention, q, k, v, g, scale=0.3, causal=True, block_q=8, block_k=8)
    ref = out_and_grads(sdpa, q, k, v, g, scale=0.3, causal=True)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_log_sum_exp_is_saved():
    q, k, v = rand_qkv(2, 2, 21, 26, 8, requires_grad=False)
    out, lse = flash_attention_forward(q, k, v, causal=True, block_q=8, block_k=8)
    s = (q @ k.transpose(-2, -1)) / math.sqrt(8)
    s = s.masked_fill(torch.ones(21, 26, dtype=torch.bool).tril(26 - 21).logical_not(), -math.inf)
    torch.testing.assert_close(lse, torch.logsumexp(s, dim=-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(out, naive_attention(q, k, v, causal=True), rtol=0, atol=1e-12)


def test_inputs_are_not_modified():
    q, k, v = rand_qkv(1, 2, 20, 20, 8)
    copies = [t.detach().clone() for t in (q, k, v)]
    flash_attention(q, k, v, causal=True, block_q=8, block_k=8).sum().backward()
    assert all(torch.equal(t.detach(), c) for t, c in zip((q, k, v), copies, strict=True))


def test_low_precision_inputs_are_computed_in_float32():
    q, k, v = rand_qkv(1, 2, 40, 40, 16, dtype=torch.bfloat16, requires_grad=False)
    out = flash_attention(q, k, v, causal=True, block_q=16, block_k=16)
    assert out.dtype == torch.bfloat16
    ref = naive_attention(q.float(), k.float(), v.float(), causal=True)
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


def test_no_score_matrix_is_materialised():
    """Forward and backward: no tensor larger than a few tiles or the (N, d) inputs exists."""
    b, h, n, d, bq, bk = 1, 2, 256, 8, 16, 32
    q, k, v = rand_qkv(b, h, n, n, d, dtype=torch.float32)
    with LargestTensor() as probe:
        flash_attention(q, k, v, causal=True, block_q=bq, block_k=bk).sum().backward()
    budget = 4 * b * h * max(bq * bk, n * d)  # bytes of one tile or one (N, d) tensor, all heads
    assert probe.largest <= budget < 4 * b * h * n * n // 8
    with LargestTensor() as naive_probe:  # the probe does see a naive N x N matrix
        naive_attention(q, k, v, causal=True).sum().backward()
    assert naive_probe.largest >= 4 * b * h * n * n


def test_causal_skips_blocks_above_the_diagonal():
    n, blk = 128, 16  # 8 x 8 tiles; causal visits the 36 on or below the diagonal
    q, k, v = rand_qkv(1, 1, n, n, 8, requires_grad=False)
    for causal, tiles in ((False, 64), (True, 36)):
        with LargestTensor() as probe:
            flash_attention(q, k, v, causal=causal, block_q=blk, block_k=blk)
        assert probe.calls.get("bmm", 0) == tiles


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 2),
    h=st.integers(1, 3),
    n_q=st.integers(1, 70),
    n_k=st.integers(1, 70),
    d=st.integers(1, 20),
    d_v=st.integers(1, 12),
    bq=st.integers(1, 40),
    bk=st.integers(1, 40),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_sdpa(b, h, n_q, n_k, d, d_v, bq, bk, causal, seed):
    q, k, v = rand_qkv(b, h, n_q, n_k, d, d_v, dtype=torch.float32, seed=seed)
    g = torch.randn(b, h, n_q, d_v, generator=torch.Generator().manual_seed(seed))
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal, block_q=bq, block_k=bk)
    ref = out_and_grads(sdpa, q, k, v, g, causal=causal)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=2e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("causal", [False, True])
def test_cuda_matches_sdpa(causal):
    q, k, v = (t.detach().cuda().requires_grad_() for t in rand_qkv(2, 4, 300, 300, 64, dtype=torch.float32))
    g = torch.randn(2, 4, 300, 64, device="cuda")
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal)
    ref = out_and_grads(sdpa, q, k, v, g, causal=causal)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)
