"""Linear attention: the parallel, cumulative-sum and recurrent forms agree with each other and
with the O(N^2) kernelised formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from attention_oracles import max_diff, out_and_grads, rand_qkv
from hypothesis import given, settings
from hypothesis import strategies as st

from shiyan.attention.linear import (
    elu_feature_map,
    kernel_attention_naive,
    linear_attention,
    linear_attention_init_state,
    linear_attention_recurrent,
    linear_attention_state,
    linear_attention_step,
)


def test_elu_feature_map_is_elu_plus_one_and_positive():
    x = torch.linspace(-30, 5, 101, dtype=torch.float64)
    phi = elu_feature_map(x)
    torch.testing.assert_close(phi, torch.where(x > 0, x + 1, torch.exp(x)))
    assert bool((phi > 0).all())


def test_naive_kernel_formula_by_hand():
    """A 1-head, 2-key case worked out with the definition."""
    q = torch.tensor([[[[0.5, -1.0]]]], dtype=torch.float64)
    k = torch.tensor([[[[1.0, 0.0], [-2.0, 3.0]]]], dtype=torch.float64)
    v = torch.tensor([[[[1.0], [4.0]]]], dtype=torch.float64)
    phi = lambda x: torch.where(x > 0, x + 1, torch.exp(x))  # noqa: E731
    a = [float(phi(q[0, 0, 0]) @ phi(k[0, 0, j])) for j in range(2)]
    expected = (a[0] * 1.0 + a[1] * 4.0) / (a[0] + a[1] + 1e-6)
    assert float(kernel_attention_naive(q, k, v)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("form", ["chunked", "cumsum"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k", "chunk"), [(30, 30, 7), (30, 30, 64), (12, 40, 5), (40, 12, 5), (1, 9, 4)])
def test_parallel_and_cumsum_forms_match_naive(n_q, n_k, chunk, causal, form):
    q, k, v = rand_qkv(2, 3, n_q, n_k, 8, 5)
    g = torch.randn(2, 3, n_q, 5, dtype=torch.float64)
    ours = out_and_grads(linear_attention, q, k, v, g, causal=causal, chunk_size=chunk, causal_form=form)
    ref = out_and_grads(kernel_attention_naive, q, k, v, g, causal=causal)
    assert max_diff(ours, ref) < 1e-12


def test_recurrent_form_matches_cumsum_form():
    q, k, v = rand_qkv(2, 2, 25, 25, 6, 4)
    g = torch.randn(2, 2, 25, 4, dtype=torch.float64)
    rec = out_and_grads(linear_attention_recurrent, q, k, v, g)
    par = out_and_grads(linear_attention, q, k, v, g, causal=True, chunk_size=8)
    assert max_diff(rec, par) < 1e-12


def test_bad_causal_form_is_named():
    q, k, v = rand_qkv(1, 1, 4, 4, 2, requires_grad=False)
    with pytest.raises(ValueError, match="causal_form"):
        linear_attention(q, k, v, causal=True, causal_form="scan")


def test_recurrent_with_a_prompt_state_matches_bottom_right_causal():
    q, k, v = rand_qkv(1, 2, 7, 20, 6, requires_grad=False)
    state = linear_attention_state(k[:, :, :13], v[:, :, :13])
    rec = linear_attention_recurrent(q, k[:, :, 13:], v[:, :, 13:], state=state)
    assert max_diff([rec], [linear_attention(q, k, v, causal=True)]) < 1e-12


def test_step_function_generates_like_the_parallel_form():
    q, k, v = rand_qkv(2, 2, 10, 10, 6, 3, requires_grad=False)
    state = linear_attention_init_state(2, 2, 6, 3, dtype=torch.float64)
    outs = []
    for t in range(10):
        out_t, state = linear_attention_step(state, q[:, :, t], k[:, :, t], v[:, :, t])
        outs.append(out_t)
    assert max_diff([torch.stack(outs, dim=2)], [kernel_attention_naive(q, k, v, causal=True)]) < 1e-12
    # the final state is the sum over all keys, the non-causal summary
    full = linear_attention_state(k, v)
    assert max_diff([state.s, state.z], [full.s, full.z]) < 1e-12


def test_last_causal_row_equals_non_causal_row():
    q, k, v = rand_qkv(1, 2, 16, 16, 8, requires_grad=False)
    causal = linear_attention(q, k, v, causal=True)
    full = linear_attention(q, k, v)
    assert max_diff([causal[:, :, -1]], [full[:, :, -1]]) < 1e-12


@pytest.mark.parametrize("causal", [False, True])
def test_key_padding_mask(causal):
    q, k, v = rand_qkv(2, 2, 14, 14, 6)
    keep = torch.ones(2, 1, 1, 14, dtype=torch.bool)
    keep[0, ..., 10:] = False
    keep[1, ..., :3] = False
    g = torch.randn(2, 2, 14, 6, dtype=torch.float64)
    ours = out_and_grads(linear_attention, q, k, v, g, causal=causal, mask=keep, chunk_size=4)
    ref = out_and_grads(kernel_attention_naive, q, k, v, g, causal=causal, mask=keep)
    assert max_diff(ours, ref) < 1e-12
    # dropping the keys outright gives the same result for the first sequence (non-causal)
    if not causal:
        short = linear_attention(q[:1], k[:1, :, :10], v[:1, :, :10])
        assert max_diff([ours[0][:1]], [short]) < 1e-12
    if causal:
        rec = linear_attention_recurrent(q, k, v, mask=keep)
        assert max_diff([rec], [ours[0]]) < 1e-12


def test_pluggable_feature_map_with_another_dimension():
    def phi(x):  # d -> 2d, non-negative
        return torch.cat([F.relu(x), F.relu(-x)], dim=-1) + 0.1

    q, k, v = rand_qkv(1, 2, 12, 15, 4, 3)
    g = torch.randn(1, 2, 12, 3, dtype=torch.float64)
    for causal in (False, True):
        ours = out_and_grads(linear_attention, q, k, v, g, causal=causal, feature_map=phi, chunk_size=4)
        ref = out_and_grads(kernel_attention_naive, q, k, v, g, causal=causal, feature_map=phi)
        assert max_diff(ours, ref) < 1e-12
    rec = linear_attention_recurrent(
        q[:, :, :, :],
        k[:, :, 3:],
        v[:, :, 3:],
        feature_map=phi,
        state=linear_attention_state(k[:, :, :3], v[:, :, :3], feature_map=phi),
    )
    assert max_diff([rec], [kernel_attention_naive(q, k, v, causal=True, feature_map=phi)]) < 1e-12


def test_scale_multiplies_queries_before_the_feature_map():
    q, k, v = rand_qkv(1, 1, 6, 6, 4, requires_grad=False)
    assert max_diff([linear_attention(q, k, v, scale=0.5)], [linear_attention(q * 0.5, k, v)]) < 1e-15


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    extra_keys=st.integers(0, 10),
    d=st.integers(1, 9),
    d_v=st.integers(1, 6),
    chunk=st.integers(1, 50),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_three_forms_agree(n, extra_keys, d, d_v, chunk, seed):
    q, k, v = rand_qkv(1, 2, n, n + extra_keys, d, d_v, seed=seed, requires_grad=False)
    naive = kernel_attention_naive(q, k, v, causal=True)
    cumsum = linear_attention(q, k, v, causal=True, chunk_size=chunk, causal_form="cumsum")
    chunked = linear_attention(q, k, v, causal=True, chunk_size=chunk)
    state = linear_attention_state(k[:, :, :extra_keys], v[:, :, :extra_keys]) if extra_keys else None
    rec = linear_attention_recurrent(q, k[:, :, extra_keys:], v[:, :, extra_keys:], state=state)
    assert max_diff([cumsum, chunked, rec], [naive, naive, naive]) < 1e-11
    assert max_diff([linear_attention(q, k, v)], [kernel_attention_naive(q, k, v)]) < 1e-11
