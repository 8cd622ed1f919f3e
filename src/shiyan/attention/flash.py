r"""FlashAttention: exact attention in tiles, with an online softmax and no $N \times N$ matrix.

Dao et al., "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness" (2022)
and Dao, "FlashAttention-2" (2023), whose loop order we follow.

**Forward** (FA-2, Algorithm 1). Split the queries into blocks $Q_i$ of ``block_q`` rows and the
keys/values into blocks $K_j, V_j$ of ``block_k`` rows. For one query block keep, per row, the
running maximum $m$, the running normaliser $\ell$ and the unnormalised output $\tilde O$, and
visit the key blocks in order:

$$S_i^{(j)} = \tau\, Q_i K_j^\top,\qquad
m^{(j)} = \max\!\big(m^{(j-1)}, \operatorname{rowmax} S_i^{(j)}\big),\qquad
\tilde P^{(j)} = e^{S_i^{(j)} - m^{(j)}},$$

$$\ell^{(j)} = e^{m^{(j-1)} - m^{(j)}}\,\ell^{(j-1)} + \operatorname{rowsum}\tilde P^{(j)},\qquad
\tilde O^{(j)} = e^{m^{(j-1)} - m^{(j)}}\,\tilde O^{(j-1)} + \tilde P^{(j)} V_j .$$

At the end $O_i = \tilde O / \ell$ and the log-sum-exp $L_i = m + \log \ell$ is saved: it is all
the softmax statistics the backward pass needs. $\tau$ is ``scale`` ($1/\sqrt d$ by default).

**Backward** (FA-2, Algorithm 2). Nothing of size $N^2$ was stored, so every tile is recomputed:
with $D = \operatorname{rowsum}(dO \odot O)$, for each key block $j$ (outer loop) and query block
$i$ (inner loop)

$$P_{ij} = e^{\tau Q_i K_j^\top - L_i},\quad dV_j \mathrel{+}= P_{ij}^\top dO_i,\quad
dP_{ij} = dO_i V_j^\top,\quad dS_{ij} = P_{ij} \odot (dP_{ij} - D_i),$$

$$dQ_i \mathrel{+}= \tau\, dS_{ij} K_j,\qquad dK_j \mathrel{+}= \tau\, dS_{ij}^\top Q_i .$$

So the memory beyond the inputs and outputs is $O(N)$ (the vectors $m, \ell, L, D$ and one
``block_q`` $\times$ ``block_k`` tile per batch element and head), against $O(N^2)$ for
:func:`shiyan.attention.naive_attention`.

**Causal** masks are aligned bottom-right (see :mod:`shiyan.attention.naive`): query $i$ sees key
$j \le i + N_k - N_q$. Key blocks entirely above that diagonal are never visited (forward) and
query blocks entirely below-left of a key block are skipped (backward); only tiles that the
diagonal crosses are masked element-wise, from their row and column indices.

Implementation notes and differences from the paper:

* The CPU path is PyTorch: one batched matrix product per tile over all ``batch * heads``; the
  tile buffers are allocated once and reused (``out=`` and in-place ops), because on CPU a fresh
  multi-megabyte allocation per tile costs page faults. Default tiles are large (256 x 512)
  since each tile is a Python-level step.
* ``float16``/``bfloat16`` inputs are computed in ``float32`` (the paper keeps $m, \ell, \tilde O$
  in fp32 too) and the output is cast back.
* A user ``mask`` is a dense ``(..., seq_q, seq_k)`` tensor by definition; it is only sliced per
  tile (never expanded or copied whole). No gradient flows to it.
* No dropout.
* Dispatch: on CUDA tensors :func:`flash_attention` calls the Triton kernels of
  :mod:`shiyan.attention.flash_triton` (forward and backward) when ``triton`` imports and the
  call is one they handle (no ``mask`` tensor; float16, bfloat16 or float32; head dimension up to
  256). Every other call, and every CPU tensor, takes the tiled PyTorch path below.
"""

from __future__ import annotations

import functools
import importlib
import math
from numbers import Integral
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from shiyan.attention.naive import check_attention_args, default_scale

__all__ = ["DEFAULT_BLOCK_K", "DEFAULT_BLOCK_Q", "flash_attention", "flash_attention_forward"]

DEFAULT_BLOCK_Q = 256
DEFAULT_BLOCK_K = 512
_NEG_INF = -math.inf


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block_q: int = DEFAULT_BLOCK_Q,
    block_k: int = DEFAULT_BLOCK_K,
) -> Tensor:
    r"""Exact softmax attention computed tile by tile (FlashAttention-2), differentiable.

    Same interface and result as :func:`shiyan.attention.naive_attention` (shapes
    ``q (B, H, N_q, d)``, ``k (B, H, N_k, d)``, ``v (B, H, N_k, d_v)`` -> ``(B, H, N_q, d_v)``;
    bottom-right ``causal``; boolean or additive ``mask``; ``scale`` defaults to $1/\sqrt d$),
    but the largest intermediate is one ``block_q`` x ``block_k`` tile per batch element and
    head, in the forward and in the backward pass.

    On CUDA the Triton kernels (:mod:`shiyan.attention.flash_triton`) run when ``triton`` imports
    and they support the call (no ``mask``; fp16/bf16/fp32; $d \le 256$); ``block_q``/``block_k``
    then do not apply (the kernels choose their own tiles). Otherwise, and on CPU, the tiled
    PyTorch implementation runs.
    """
    check_attention_args(q, k, v, mask=mask, scale=scale)
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if isinstance(b, bool) or not isinstance(b, Integral) or b < 1:
            raise ValueError(f"{name} must be a positive integer; got {b!r}")
    if mask is not None and mask.requires_grad:
        raise ValueError("mask requires grad, but flash_attention does not differentiate the mask; detach it")
    tau = default_scale(q) if scale is None else float(scale)
    triton_module = _triton_module() if q.is_cuda else None
    if triton_module is not None and triton_module.supports(q, k, v, mask):
        return triton_module.flash_attention_triton(q, k, v, causal=causal, scale=tau)
    return _FlashAttention.apply(q, k, v, mask, bool(causal), tau, int(block_q), int(block_k))


@functools.cache
def _triton_module() -> ModuleType | None:
    """:mod:`shiyan.attention.flash_triton` when it and ``triton`` import, else ``None`` (then the
    tiled PyTorch path runs, also on CUDA)."""
    try:
        return importlib.import_module("shiyan.attention.flash_triton")
    except ModuleNotFoundError as e:
        if e.name == "triton" or (e.name or "").startswith("triton."):
            return None
        raise


def flash_attention_forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block_q: int = DEFAULT_BLOCK_Q,
    block_k: int = DEFAULT_BLOCK_K,
) -> tuple[Tensor, Tensor]:
    r"""The forward pass alone: ``(out, lse)`` with ``lse`` the log-sum-exp
    $L_i = \log \sum_j e^{\tau q_i \cdot k_j + M_{ij}}$ of shape ``(B, H, N_q)`` ($-\infty$ on rows
    that see no key). No autograd graph is recorded."""
    check_attention_args(q, k, v, mask=mask, scale=scale)
    tau = default_scale(q) if scale is None else float(scale)
    with torch.no_grad():
        out, lse = _forward(q, k, v, mask, causal, tau, block_q, block_k)
    return out, lse


# -- the tiled PyTorch implementation ---------------------------------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _as_rows(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``(B, H, N, d)`` -> contiguous ``(B*H, N, d)`` in the compute dtype."""
    b, h, n, d = x.shape
    return x.reshape(b * h, n, d).to(dtype).contiguous()


def _tile_view(buffer: Tensor, rows: int, cols: int) -> Tensor:
    """A contiguous ``(BH, rows, cols)`` view at the start of a ``(BH, block_q, block_k)`` buffer."""
    bh = buffer.shape[0]
    return buffer.view(-1)[: bh * rows * cols].view(bh, rows, cols)


def _mask_tile(
    s: Tensor,
    mask4: Tensor | None,
    causal: bool,
    offset: int,
    q0: int,
    q1: int,
    k0: int,
    k1: int,
) -> None:
    """Apply the causal mask (only where the diagonal crosses the tile) and the user mask to the
    score tile ``s`` (BH, q1-q0, k1-k0), in place."""
    bh = s.shape[0]
    if causal and k1 - 1 > q0 + offset:  # some (i, j) in the tile has j > i + offset
        i = torch.arange(q0, q1, device=s.device)[:, None]  # (bq, 1)
        j = torch.arange(k0, k1, device=s.device)[None, :]  # (1, bk)
        s.masked_fill_(j > i + offset, _NEG_INF)
    if mask4 is not None:
        m = mask4[:, :, q0:q1, k0:k1].reshape(bh, q1 - q0, k1 - k0)  # (BH, bq, bk), copies one tile
        if m.dtype == torch.bool:
            s.masked_fill_(~m, _NEG_INF)
        else:
            s.add_(m.to(s.dtype))


def _forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    causal: bool,
    scale: float,
    block_q: int,
    block_k: int,
) -> tuple[Tensor, Tensor]:
    """Tiled forward; returns ``out (B, H, Nq, dv)`` in q's dtype and ``lse (B, H, Nq)`` in the
    compute dtype."""
    b, h, n_q, _ = q.shape
    n_k, d_v = k.shape[2], v.shape[3]
    bh, offset = b * h, n_k - n_q
    cdt = _compute_dtype(q.dtype)
    qs = _as_rows(q, cdt) * scale  # (BH, Nq, d): tau Q (a new tensor; q is never written), so S = (tau Q) K^T
    k3 = _as_rows(k, cdt)  # (BH, Nk, d)
    v3 = _as_rows(v, cdt)  # (BH, Nk, dv)
    mask4 = None if mask is None else mask.expand(b, h, n_q, n_k)  # a view, no copy
    bq, bk = min(block_q, n_q), min(block_k, n_k)
    out = torch.empty(bh, n_q, d_v, dtype=cdt, device=q.device)  # (BH, Nq, dv)
    lse = torch.empty(bh, n_q, dtype=cdt, device=q.device)  # (BH, Nq)
    s_buf = torch.empty(bh, bq, bk, dtype=cdt, device=q.device)  # the only tile-sized buffer
    for q0 in range(0, n_q, bq):
        q1 = min(q0 + bq, n_q)
        q_i = qs[:, q0:q1]  # (BH, bq, d)
        m = torch.full((bh, q1 - q0), _NEG_INF, dtype=cdt, device=q.device)  # running max
        ell = torch.zeros(bh, q1 - q0, dtype=cdt, device=q.device)  # running normaliser
        acc = out[:, q0:q1].zero_()  # (BH, bq, dv): unnormalised output, written in place
        k_end = min(n_k, q1 + offset) if causal else n_k  # keys j <= (q1 - 1) + offset
        for k0 in range(0, max(k_end, 0), bk):
            k1 = min(k0 + bk, n_k)
            s = _tile_view(s_buf, q1 - q0, k1 - k0)  # (BH, bq, bk)
            torch.bmm(q_i, k3[:, k0:k1].transpose(1, 2), out=s)  # S = tau Q_i K_j^T
            _mask_tile(s, mask4, causal, offset, q0, q1, k0, k1)
            m_new = torch.maximum(m, s.amax(dim=-1))  # (BH, bq)
            m_safe = m_new.masked_fill(m_new == _NEG_INF, 0.0)  # rows with no key yet: use 0
            p = s.sub_(m_safe[..., None]).exp_()  # P~ = exp(S - m), in place
            alpha = torch.exp(m - m_safe)  # (BH, bq): rescales the old statistics
            ell.mul_(alpha).add_(p.sum(dim=-1))
            acc.mul_(alpha[..., None]).baddbmm_(p, v3[:, k0:k1])  # O~ = alpha O~ + P~ V_j
            m = m_new
        acc.div_(ell.masked_fill(ell == 0, 1.0)[..., None])  # O = O~ / l  (rows with no key: 0)
        lse[:, q0:q1] = m + torch.log(ell)  # L = m + log l  (-inf on rows with no key)
    return out.view(b, h, n_q, d_v).to(q.dtype), lse.view(b, h, n_q)


def _backward(
    do: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: Tensor | None,
    causal: bool,
    scale: float,
    block_q: int,
    block_k: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Tiled backward (FA-2 order: key blocks outside, query blocks inside)."""
    b, h, n_q, d = q.shape
    n_k, d_v = k.shape[2], v.shape[3]
    bh, offset = b * h, n_k - n_q
    cdt = _compute_dtype(q.dtype)
    qs = _as_rows(q, cdt) * scale  # (BH, Nq, d): tau Q
    k3 = _as_rows(k, cdt)  # (BH, Nk, d)
    v3 = _as_rows(v, cdt)  # (BH, Nk, dv)
    do3 = _as_rows(do, cdt)  # (BH, Nq, dv)
    big_d = (do3 * _as_rows(out, cdt)).sum(dim=-1)  # D = rowsum(dO * O), (BH, Nq)
    lse3 = lse.reshape(bh, n_q)
    lse3 = lse3.masked_fill(lse3 == _NEG_INF, 0.0)  # rows with no key: their scores are all -inf anyway
    mask4 = None if mask is None else mask.expand(b, h, n_q, n_k)
    bq, bk = min(block_q, n_q), min(block_k, n_k)
    dq = torch.zeros(bh, n_q, d, dtype=cdt, device=q.device)  # (BH, Nq, d)
    dk = torch.empty(bh, n_k, d, dtype=cdt, device=q.device)  # (BH, Nk, d)
    dv = torch.empty(bh, n_k, d_v, dtype=cdt, device=q.device)  # (BH, Nk, dv)
    s_buf = torch.empty(bh, bq, bk, dtype=cdt, device=q.device)
    dp_buf = torch.empty(bh, bq, bk, dtype=cdt, device=q.device)
    for k0 in range(0, n_k, bk):
        k1 = min(k0 + bk, n_k)
        k_j, v_j = k3[:, k0:k1], v3[:, k0:k1]  # (BH, bk, d), (BH, bk, dv)
        dk_j = dk[:, k0:k1].zero_()  # accumulated in place
        dv_j = dv[:, k0:k1].zero_()
        # causal: query rows i with i + offset < k0 see nothing of this key block
        q_first = max(0, k0 - offset) if causal else 0
        for q0 in range((q_first // bq) * bq, n_q, bq):
            q1 = min(q0 + bq, n_q)
            q_i, do_i = qs[:, q0:q1], do3[:, q0:q1]  # (BH, bq, d), (BH, bq, dv)
            s = _tile_view(s_buf, q1 - q0, k1 - k0)  # (BH, bq, bk)
            torch.bmm(q_i, k_j.transpose(1, 2), out=s)  # S = tau Q_i K_j^T
            _mask_tile(s, mask4, causal, offset, q0, q1, k0, k1)
            p = s.sub_(lse3[:, q0:q1, None]).exp_()  # P = exp(S - L)
            dv_j.baddbmm_(p.transpose(1, 2), do_i)  # dV_j += P^T dO_i
            dp = _tile_view(dp_buf, q1 - q0, k1 - k0)
            torch.bmm(do_i, v_j.transpose(1, 2), out=dp)  # dP = dO_i V_j^T
            ds = dp.sub_(big_d[:, q0:q1, None]).mul_(p)  # dS = P * (dP - D)
            dq[:, q0:q1].baddbmm_(ds, k_j, alpha=scale)  # dQ_i += tau dS K_j
            dk_j.baddbmm_(ds.transpose(1, 2), q_i)  # dK_j += dS^T (tau Q_i)
    return (
        dq.view(b, h, n_q, d).to(q.dtype),
        dk.view(b, h, n_k, d).to(k.dtype),
        dv.view(b, h, n_k, d_v).to(v.dtype),
    )


class _FlashAttention(torch.autograd.Function):
    """Autograd wrapper: saves ``q, k, v, out`` and the log-sum-exp, never a score matrix."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        causal: bool,
        scale: float,
        block_q: int,
        block_k: int,
    ) -> Tensor:
        out, lse = _forward(q, k, v, mask, causal, scale, block_q, block_k)
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.causal, ctx.scale, ctx.block_q, ctx.block_k = causal, scale, block_q, block_k
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, do: Tensor):
        q, k, v, out, lse, mask = ctx.saved_tensors
        dq, dk, dv = _backward(do, q, k, v, out, lse, mask, ctx.causal, ctx.scale, ctx.block_q, ctx.block_k)
        return dq, dk, dv, None, None, None, None, None
