"""Shared helpers for the attention tests: random inputs, the SDPA reference with this package's
conventions, gradients, and a dispatch mode that records the largest tensor an operation makes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from shiyan.attention import causal_mask


def rand_qkv(
    b: int,
    h: int,
    n_q: int,
    n_k: int,
    d: int,
    d_v: int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    requires_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d_v = d if d_v is None else d_v
    q = torch.randn(b, h, n_q, d, generator=g, dtype=dtype)
    k = torch.randn(b, h, n_k, d, generator=g, dtype=dtype)
    v = torch.randn(b, h, n_k, d_v, generator=g, dtype=dtype)
    return tuple(t.requires_grad_(requires_grad) for t in (q, k, v))


def sdpa(q, k, v, *, causal=False, mask=None, scale=None):
    """F.scaled_dot_product_attention with this package's conventions: a bottom-right causal mask
    (``is_causal`` itself when N_q == N_k and no other mask), combinable with ``mask``."""
    n_q, n_k = q.shape[2], k.shape[2]
    if causal and mask is None and n_q == n_k:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    if causal:
        c = causal_mask(n_q, n_k)
        if mask is None:
            mask = c
        elif mask.dtype == torch.bool:
            mask = mask & c
        else:
            mask = mask.masked_fill(~c, float("-inf"))
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def out_and_grads(fn, q, k, v, g, **kwargs):
    """``fn``'s output and the gradients of ``<out, g>`` with respect to ``q, k, v``."""
    out = fn(q, k, v, **kwargs)
    return (out, *torch.autograd.grad(out, (q, k, v), g))


def max_diff(xs, ys) -> float:
    return max(float((x - y).detach().abs().max()) for x, y in zip(xs, ys, strict=True))


class LargestTensor(TorchDispatchMode):
    """Records the size in bytes of the largest storage behind any tensor an operation returns
    (autograd's backward included; a broadcast view counts as the small storage it views) and how
    often each operation ran."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.calls: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.untyped_storage().nbytes())
        return out
