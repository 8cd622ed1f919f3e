r"""Scaled dot-product attention written the obvious way: the oracle for every other variant.

Vaswani et al. (2017), eq. (1):

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}} + M\right) V$$

with queries $Q \in \mathbb{R}^{N_q \times d}$, keys $K \in \mathbb{R}^{N_k \times d}$, values
$V \in \mathbb{R}^{N_k \times d_v}$ (per batch element and head) and a mask $M$ that is $0$ where a
query may look at a key and $-\infty$ where it may not.

The interface shared by the whole :mod:`shiyan.attention` package::

    f(q, k, v, *, causal=False, mask=None, scale=None) -> out
    q: (batch, heads, seq_q, d)   k: (batch, heads, seq_k, d)   v: (batch, heads, seq_k, d_v)
    out: (batch, heads, seq_q, d_v)

Conventions (the same in every variant):

* ``scale`` multiplies $QK^\top$; ``None`` means $1/\sqrt{d}$.
* ``mask`` broadcasts to ``(batch, heads, seq_q, seq_k)``. A boolean mask is ``True`` where the
  query may attend (the convention of :func:`torch.nn.functional.scaled_dot_product_attention`);
  a floating mask is *added* to the scores ($M$ above; ``-inf`` forbids a pair).
* ``causal=True`` aligns the causal mask to the **bottom right**: query $i$ sees key $j$ iff
  $j \le i + N_k - N_q$. With $N_q = N_k$ this is the usual lower triangle and equals SDPA's
  ``is_causal=True`` (which aligns top-left, so the two differ when $N_q \ne N_k$). Bottom-right
  is what decoding with a KV cache needs: the $N_q$ new queries are the *last* $N_q$ positions,
  so a single new query sees the whole cache. It is SDPA's
  ``torch.nn.attention.bias.causal_lower_right``. ``causal`` and ``mask`` may be combined (both
  apply).
* A query row that may attend to no key at all (fully masked, or $i + N_k - N_q < 0$) outputs
  zeros and receives zero gradient, as SDPA does on CPU, rather than the $0/0$ of a plain
  softmax.

:func:`check_attention_args` holds the argument checks every variant runs: wrong shapes, mixed
dtypes or devices, non-finite inputs and bad scales raise a ``ValueError`` or ``TypeError`` that
names the offending argument.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

__all__ = [
    "causal_mask",
    "check_attention_args",
    "default_scale",
    "masked_softmax",
    "naive_attention",
]


def check_attention_args(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    scale: float | None = None,
    check_finite: bool | None = None,
) -> None:
    """Raise ``TypeError``/``ValueError`` naming the argument when ``q, k, v, mask, scale`` do not
    fit the shared attention interface (see the module docstring).

    ``check_finite`` scans ``q, k, v`` (and a floating ``mask``) for NaN; the default ``None``
    scans CPU tensors only, because on an accelerator the scan would force a device sync on every
    call. The scan is $O(N d)$, negligible next to attention's $O(N^2 d)$.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
        if t.dim() != 4:
            dims = {
                "q": "(batch, heads, seq_q, d)",
                "k": "(batch, heads, seq_k, d)",
                "v": "(batch, heads, seq_k, d_v)",
            }[name]
            raise ValueError(f"{name} must have 4 dimensions {dims}; got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got dtype {t.dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but q has dtype {q.dtype}; cast them to one dtype")
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device} but q is on {q.device}")
        if t.shape[:2] != q.shape[:2]:
            raise ValueError(
                f"{name} has (batch, heads) = {tuple(t.shape[:2])} but q has {tuple(q.shape[:2])}; they must be equal"
            )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k has head dimension d = {k.shape[-1]} but q has d = {q.shape[-1]}; they must be equal")
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"v has seq_k = {v.shape[2]} but k has seq_k = {k.shape[2]}; they must be equal")
    for name, t, axis, what in (("q", q, 2, "seq_q"), ("k", k, 2, "seq_k"), ("q", q, 3, "d"), ("v", v, 3, "d_v")):
        if t.shape[axis] == 0:
            raise ValueError(f"{name} has {what} = 0 (shape {tuple(t.shape)}); it must be at least 1")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, Real) or not math.isfinite(float(scale)):
            raise ValueError(f"scale must be a finite real number or None; got {scale!r}")
    if check_finite is None:
        check_finite = q.device.type == "cpu"
    if check_finite:
        for name, t in (("q", q), ("k", k), ("v", v)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
    if mask is not None:
        _check_mask(mask, q, k, check_finite)


def _check_mask(mask: Tensor, q: Tensor, k: Tensor, check_finite: bool) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None; got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"mask must be boolean (True = attend) or floating (added to the scores); got dtype {mask.dtype}"
        )
    if mask.device != q.device:
        raise ValueError(f"mask is on {mask.device} but q is on {q.device}")
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    try:
        if mask.dim() > 4 or torch.broadcast_shapes(mask.shape, target) != torch.Size(target):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to (batch, heads, seq_q, seq_k) = {target}"
        ) from None
    if check_finite and mask.is_floating_point():
        if bool(torch.isnan(mask).any()) or bool((mask == math.inf).any()):
            raise ValueError("mask contains NaN or +inf; use -inf (or False in a boolean mask) to forbid a pair")


def default_scale(q: Tensor) -> float:
    r"""$1/\sqrt{d}$ for queries ``q`` of shape ``(..., d)``."""
    return 1.0 / math.sqrt(q.shape[-1])


def causal_mask(n_q: int, n_k: int, device: torch.device | str | None = None) -> Tensor:
    r"""Bottom-right causal mask, ``(n_q, n_k)`` boolean: ``True`` iff $j \le i + n_k - n_q$."""
    i = torch.arange(n_q, device=device)[:, None]  # (n_q, 1)
    j = torch.arange(n_k, device=device)[None, :]  # (1, n_k)
    return j <= i + (n_k - n_q)  # (n_q, n_k)


def masked_softmax(s: Tensor, dim: int = -1) -> Tensor:
    r"""$\mathrm{softmax}(s)$ along ``dim`` where a row of all $-\infty$ gives zeros (not NaN).

    $p_j = e^{s_j - m} / \sum_{j'} e^{s_{j'} - m}$ with $m = \max_j s_j$ (replaced by 0 when the
    row is empty, so that $e^{-\infty - m} = 0$ and the denominator 0 is replaced by 1).
    """
    m = s.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(s - m)
    z = e.sum(dim=dim, keepdim=True)
    return e / torch.where(z > 0, z, torch.ones_like(z))


def naive_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    r"""$\mathrm{softmax}(Q K^\top \cdot \mathrm{scale} + M) V$, materialising the full
    ``(batch, heads, seq_q, seq_k)`` score matrix: $O(N_q N_k)$ memory. The oracle.

    Shapes and the meaning of ``causal``, ``mask`` and ``scale`` are in the module docstring.
    """
    check_attention_args(q, k, v, mask=mask, scale=scale)
    scale = default_scale(q) if scale is None else float(scale)
    s = (q @ k.transpose(-2, -1)) * scale  # (B, H, Nq, Nk)
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[2], k.shape[2], device=q.device), -math.inf)
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else s + mask.to(s.dtype)
    p = masked_softmax(s, dim=-1)  # (B, H, Nq, Nk)
    return p @ v  # (B, H, Nq, d_v)
