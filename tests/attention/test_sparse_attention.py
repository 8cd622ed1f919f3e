"""Sparse attention computed block-sparsely equals naive attention with the pattern's dense mask,
forward and backward; the patterns themselves match their definitions written as loops."""

from __future__ import annotations

import math

import pytest
import torch
from attention_oracles import LargestTensor, max_diff, out_and_grads, rand_qkv
from hypothesis import given, settings
from hypothesis import strategies as st

from shiyan.attention import naive_attention
from shiyan.attention.sparse import (
    computed_scores,
    fixed_attention,
    local_attention,
    pattern_mask,
    sparse_attention,
    strided_attention,
)

PATTERNS = [
    ("local", {"window": 5}),
    ("local", {"window": 1}),
    ("strided", {"stride": 4}),
    ("strided", {"stride": 7}),
    ("fixed", {"stride": 6, "summary": 2}),
    ("fixed", {"stride": 5, "summary": 5}),
]


def loop_mask(kind: str, n: int, causal: bool, window=None, stride=None, summary=1) -> torch.Tensor:
    """The patterns of Child et al. (2019) as written in the paper, one pair at a time."""
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            if kind == "local":
                ok = abs(i - j) < window
            elif kind == "strided":  # A1: the previous `stride` positions (and i itself); A2: every stride-th
                ok = (i - stride <= j <= i) or (causal is False and i <= j <= i + stride) or (i - j) % stride == 0
            else:  # A1: same block of `stride`; A2: the last `summary` positions of each block
                ok = i // stride == j // stride or j % stride >= stride - summary
            m[i, j] = ok and (j <= i or not causal)
    return m


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("kind", "kw"), PATTERNS)
def test_pattern_mask_matches_the_definition(kind, kw, causal):
    assert torch.equal(pattern_mask(kind, 23, causal=causal, **kw), loop_mask(kind, 23, causal, **kw))


@pytest.mark.parametrize("block", [1, 4, 16, 100])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k"), [(37, 37), (20, 45), (45, 20)])
@pytest.mark.parametrize(("kind", "kw"), PATTERNS)
def test_block_sparse_equals_naive_with_pattern_mask(kind, kw, n_q, n_k, causal, block):
    q, k, v = rand_qkv(2, 2, n_q, n_k, 8, 5, seed=n_q + 7 * n_k + block)
    g = torch.randn(2, 2, n_q, 5, dtype=torch.float64)
    ours = out_and_grads(sparse_attention, q, k, v, g, causal=causal, pattern=kind, block=block, **kw)
    mask = pattern_mask(kind, n_q, n_k, causal=causal, **kw)
    ref = out_and_grads(naive_attention, q, k, v, g, mask=mask)
    assert max_diff(ours, ref) < 1e-12


def test_named_wrappers():
    q, k, v = rand_qkv(1, 2, 30, 30, 8, requires_grad=False)
    pairs = [
        (local_attention(q, k, v, window=4, causal=True), dict(pattern="local", window=4)),
        (strided_attention(q, k, v, stride=5, causal=True), dict(pattern="strided", stride=5)),
        (fixed_attention(q, k, v, stride=6, summary=2, causal=True), dict(pattern="fixed", stride=6, summary=2)),
    ]
    for out, kw in pairs:
        assert max_diff([out], [sparse_attention(q, k, v, causal=True, **kw)]) == 0.0


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_extra_mask_restricts_the_pattern(kind):
    q, k, v = rand_qkv(2, 2, 26, 26, 8)
    gen = torch.Generator().manual_seed(2)
    keep = torch.rand(2, 1, 26, 26, generator=gen) > 0.3
    if kind == "bool":
        mask = keep
    else:
        mask = torch.randn(2, 1, 26, 26, generator=gen, dtype=torch.float64).masked_fill(~keep, -math.inf)
    pat = pattern_mask("strided", 26, stride=5, causal=True)
    g = torch.randn(2, 2, 26, 8, dtype=torch.float64)
    ours = out_and_grads(sparse_attention, q, k, v, g, causal=True, mask=mask, pattern="strided", stride=5, block=8)
    combined = pat & keep if kind == "bool" else mask.masked_fill(~pat, -math.inf)
    ref = out_and_grads(naive_attention, q, k, v, g, mask=combined)
    assert max_diff(ours, ref) < 1e-12


@pytest.mark.parametrize(
    ("kind", "kw"), [("local", {"window": 64}), ("strided", {"stride": 64}), ("fixed", {"stride": 64, "summary": 4})]
)
def test_work_is_close_to_the_pattern_size_not_dense(kind, kw):
    n = 4096
    nnz = int(pattern_mask(kind, n, causal=True, **kw).sum())
    work = computed_scores(kind, n, causal=True, block=64, **kw)
    assert nnz <= work <= 3 * nnz
    assert work < n * n / 8


def test_no_dense_matrix_in_forward_or_backward():
    b, h, n, d = 1, 2, 1024, 8
    q, k, v = rand_qkv(b, h, n, n, d, dtype=torch.float32)
    with LargestTensor() as probe:
        sparse_attention(q, k, v, causal=True, pattern="strided", stride=32, block=32).sum().backward()
    assert probe.largest <= 4 * b * h * n * n / 16  # the widest gathered tile: 1024 x 64 of 1024 x 1024


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["local", "strided", "fixed"]),
    n_q=st.integers(1, 50),
    n_k=st.integers(1, 50),
    param=st.integers(1, 12),
    summary=st.integers(1, 12),
    block=st.integers(1, 20),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_patterns_equal_naive(kind, n_q, n_k, param, summary, block, causal, seed):
    kw = {"window": param} if kind == "local" else {"stride": param}
    if kind == "fixed":
        kw["summary"] = min(summary, param)
    q, k, v = rand_qkv(1, 2, n_q, n_k, 4, 3, seed=seed)
    g = torch.randn(1, 2, n_q, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ours = out_and_grads(sparse_attention, q, k, v, g, causal=causal, pattern=kind, block=block, **kw)
    ref = out_and_grads(naive_attention, q, k, v, g, mask=pattern_mask(kind, n_q, n_k, causal=causal, **kw))
    assert max_diff(ours, ref) < 1e-12
