"""Every causal variant leaks nothing from the future: changing the inputs after position t leaves
the outputs up to t bit-for-bit unchanged, and a loss on those outputs has exactly zero gradient
with respect to the future inputs."""

from __future__ import annotations

import functools

import pytest
import torch
from attention_oracles import rand_qkv

from shiyan.attention import flash_attention, naive_attention
from shiyan.attention.linear import linear_attention, linear_attention_recurrent
from shiyan.attention.sparse import sparse_attention

VARIANTS = {
    "naive": naive_attention,
    "flash_small_tiles": functools.partial(flash_attention, block_q=4, block_k=8),
    "flash_odd_tiles": functools.partial(flash_attention, block_q=7, block_k=5),
    "flash_default_tiles": flash_attention,
    "linear_cumsum": functools.partial(linear_attention, chunk_size=6),
    "linear_recurrent": linear_attention_recurrent,
    "sparse_local": functools.partial(sparse_attention, pattern="local", window=5, block=4),
    "sparse_strided": functools.partial(sparse_attention, pattern="strided", stride=4, block=4),
    "sparse_fixed": functools.partial(sparse_attention, pattern="fixed", stride=6, summary=2, block=8),
}
RECTANGULAR = [name for name in VARIANTS if name != "linear_recurrent"]  # recurrent needs N_q = N_k


def _perturb_future(x: torch.Tensor, first: int, seed: int) -> torch.Tensor:
    y = x.detach().clone()
    y[:, :, first:] = torch.randn(y[:, :, first:].shape, dtype=y.dtype, generator=torch.Generator().manual_seed(seed))
    return y


@pytest.mark.parametrize("t", [0, 9, 21, 38])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_outputs_up_to_t_ignore_the_future(name, t):
    f = VARIANTS[name]
    n = 40
    q, k, v = rand_qkv(2, 2, n, n, 8, 6, dtype=torch.float32, requires_grad=False)
    out = f(q, k, v, causal=True)
    q2, k2, v2 = (_perturb_future(x, t + 1, seed) for seed, x in enumerate((q, k, v)))
    out2 = f(q2, k2, v2, causal=True)
    assert torch.equal(out[:, :, : t + 1], out2[:, :, : t + 1])
    assert not torch.equal(out[:, :, t + 1 :], out2[:, :, t + 1 :])  # the perturbation did reach later rows


@pytest.mark.parametrize("name", RECTANGULAR)
def test_rectangular_bottom_right_alignment_ignores_the_future(name):
    f = VARIANTS[name]
    n_q, n_k, t = 12, 30, 5  # query row i sits at position i + 18
    q, k, v = rand_qkv(1, 2, n_q, n_k, 8, dtype=torch.float32, requires_grad=False)
    out = f(q, k, v, causal=True)
    q2 = _perturb_future(q, t + 1, 0)
    k2, v2 = (_perturb_future(x, t + 1 + n_k - n_q, s) for s, x in ((1, k), (2, v)))
    assert torch.equal(out[:, :, : t + 1], f(q2, k2, v2, causal=True)[:, :, : t + 1])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_no_gradient_flows_from_the_future(name):
    f = VARIANTS[name]
    n, t = 30, 13
    q, k, v = rand_qkv(1, 2, n, n, 8, dtype=torch.float32)
    out = f(q, k, v, causal=True)
    out[:, :, : t + 1].pow(2).sum().backward()
    for x in (q, k, v):
        assert torch.equal(x.grad[:, :, t + 1 :], torch.zeros_like(x.grad[:, :, t + 1 :]))
        assert x.grad[:, :, : t + 1].abs().sum() > 0
