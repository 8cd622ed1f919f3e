"""The oracle itself against F.scaled_dot_product_attention (PyTorch's math/flash CPU kernels)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from attention_oracles import max_diff, out_and_grads, rand_qkv

from shiyan.attention import causal_mask, masked_softmax, naive_attention


@pytest.mark.parametrize(("n_q", "n_k"), [(16, 16), (9, 23), (23, 9)])
def test_matches_sdpa_without_mask(n_q, n_k):
    q, k, v = rand_qkv(2, 3, n_q, n_k, 8, 5)
    g = torch.randn(2, 3, n_q, 5, dtype=torch.float64)
    ours = out_and_grads(naive_attention, q, k, v, g)
    ref = out_and_grads(F.scaled_dot_product_attention, q, k, v, g)
    assert max_diff(ours, ref) < 1e-12


def test_causal_square_is_sdpa_is_causal():
    q, k, v = rand_qkv(2, 2, 19, 19, 8)
    g = torch.randn(2, 2, 19, 8, dtype=torch.float64)
    ours = out_and_grads(naive_attention, q, k, v, g, causal=True)
    ref = out_and_grads(F.scaled_dot_product_attention, q, k, v, g, is_causal=True)
    assert max_diff(ours, ref) < 1e-12


@pytest.mark.parametrize(("n_q", "n_k"), [(5, 12), (12, 12)])
def test_causal_is_bottom_right_like_causal_lower_right(n_q, n_k):
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = rand_qkv(1, 2, n_q, n_k, 8, requires_grad=False)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(n_q, n_k))
    assert max_diff([naive_attention(q, k, v, causal=True)], [ref]) < 1e-12


def test_causal_mask_by_hand():
    expected = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)  # 2 queries = the last 2 positions
    assert torch.equal(causal_mask(2, 4), expected)
    assert torch.equal(causal_mask(3, 3), torch.ones(3, 3, dtype=torch.bool).tril())


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_masks_match_sdpa(kind):
    q, k, v = rand_qkv(2, 2, 11, 13, 8)
    gen = torch.Generator().manual_seed(0)
    keep = torch.rand(2, 1, 11, 13, generator=gen) > 0.4
    mask = keep if kind == "bool" else torch.randn(2, 1, 11, 13, generator=gen, dtype=torch.float64)
    g = torch.randn(2, 2, 11, 8, dtype=torch.float64)
    ours = out_and_grads(naive_attention, q, k, v, g, mask=mask, scale=0.7)
    ref = out_and_grads(F.scaled_dot_product_attention, q, k, v, g, attn_mask=mask, scale=0.7)
    assert max_diff(ours, ref) < 1e-12


def test_masked_softmax_empty_rows_are_zero_with_finite_gradient():
    s = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]], requires_grad=True)
    p = masked_softmax(s)
    torch.testing.assert_close(p[0], torch.softmax(s[0].detach(), -1))
    assert torch.equal(p[1].detach(), torch.zeros(3))
    p.sum().backward()
    assert bool(torch.isfinite(s.grad).all())
