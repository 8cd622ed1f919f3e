r"""FlashAttention-2 as Triton kernels: the forward pass and the backward pass, for CUDA tensors.

The same algorithm as the tiled PyTorch version in :mod:`shiyan.attention.flash` (Dao 2023,
Algorithms 1 and 2), but each tile lives in on-chip memory (registers / shared memory) of one
Triton program instead of being a PyTorch tensor in main memory.

**Forward** (:func:`_fwd_kernel`, one program per query block $Q_i$ of ``BLOCK_M`` rows and per
(batch, head)). With the scale folded into base 2, $\sigma = \tau \log_2 e$, the program keeps
$m, \ell \in \mathbb{R}^{B_M}$ and $\tilde O \in \mathbb{R}^{B_M \times d_v}$ in registers and
visits the key blocks $K_j, V_j$ of ``BLOCK_N`` rows:

$$S = \sigma\, Q_i K_j^\top,\quad m' = \max(m, \operatorname{rowmax} S),\quad
\tilde P = 2^{S - m'},\quad \ell \leftarrow 2^{m - m'}\ell + \operatorname{rowsum}\tilde P,\quad
\tilde O \leftarrow 2^{m - m'}\tilde O + \tilde P V_j .$$

It writes $O_i = \tilde O/\ell$ and the base-2 log-sum-exp $L^{(2)}_i = m + \log_2 \ell$
(natural $L = L^{(2)} \ln 2$). $2^x$ is one hardware instruction; $e^x$ is $2^{x \log_2 e}$ anyway.

**Backward**, with $D_i = \operatorname{rowsum}(dO_i \odot O_i)$ computed first and
$P_{ij} = 2^{\sigma Q_i K_j^\top - L^{(2)}_i}$ recomputed tile by tile:

* :func:`_bwd_dkdv_kernel`, one program per key block $j$, loops over the query blocks $i$:
  $dV_j \mathrel{+}= P_{ij}^\top dO_i$, $dS_{ij} = P_{ij} \odot (dO_i V_j^\top - D_i)$,
  $dK_j \mathrel{+}= \tau\, dS_{ij}^\top Q_i$;
* :func:`_bwd_dq_kernel`, one program per query block $i$, loops over the key blocks $j$:
  $dQ_i \mathrel{+}= \tau\, dS_{ij} K_j$.

Splitting $dQ$ from $dK, dV$ recomputes $S$ once more but needs no atomic additions, so the
result is deterministic. Working in the transposed layout ($S^\top = K_j Q_i^\top$) in the
$dK, dV$ kernel gives the products $P^\top dO$ and $dS^\top Q$ without transposing tiles.

**Masks.** Causal is bottom-right aligned as everywhere in :mod:`shiyan.attention`: query $i$
sees key $j$ iff $j \le i + N_k - N_q$. Key blocks entirely to the right of a query block's
diagonal are never loaded; element-wise masking (the diagonal, and the ragged last block when
$N$ is not a multiple of the block) is applied only in the loop iterations that need it
(``MASKED`` is a compile-time flag, so the interior tiles carry no masking code). Rows that see no
key output zeros and get zero gradients, as in the PyTorch path. An arbitrary ``mask`` tensor is
not supported by these kernels: :func:`shiyan.attention.flash_attention` then takes the PyTorch
path (see :func:`supports`).

**Precision.** ``float16``/``bfloat16`` inputs go to the tensor cores as they are and are
accumulated in ``float32``; ``float32`` inputs use IEEE ``float32`` products (no TF32), so the
results match the fp32 reference to ~1e-5.

The kernels also run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1`` set before
``triton`` is first imported), which is how the tests check them on a machine without a GPU.
Importing this module needs ``triton``; :mod:`shiyan.attention` itself imports it lazily, only for
CUDA tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from shiyan.attention.naive import check_attention_args, default_scale

__all__ = ["MAX_HEAD_DIM", "SUPPORTED_DTYPES", "flash_attention_triton", "flash_attention_triton_forward", "supports"]

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_HEAD_DIM = 256
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


# -- forward --------------------------------------------------------------------------------------------


@triton.jit
def _fwd_tiles(
    acc,
    m_i,
    l_i,
    q,
    k_ptrs,
    v_ptrs,
    rows,
    cols0,
    d_k,
    d_v,
    lo,
    hi,
    stride_kn,
    stride_vn,
    n_k,
    offset,
    qk_scale,
    CAUSAL: tl.constexpr,
    MASKED: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Key blocks ``[lo, hi)`` of one query block: the online-softmax update of (acc, m, l)."""
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + cols0  # (BN,) key indices
        if MASKED:
            k_t = tl.load(k_ptrs + start_n * stride_kn, mask=(cols[None, :] < n_k) & d_k[:, None], other=0.0)
            v = tl.load(v_ptrs + start_n * stride_vn, mask=(cols[:, None] < n_k) & d_v[None, :], other=0.0)
        else:
            k_t = tl.load(k_ptrs + start_n * stride_kn, mask=d_k[:, None], other=0.0)  # (BD, BN) = K_j^T
            v = tl.load(v_ptrs + start_n * stride_vn, mask=d_v[None, :], other=0.0)  # (BN, BDV)
        s = tl.dot(q, k_t, input_precision=PRECISION) * qk_scale  # S = sigma Q_i K_j^T, (BM, BN)
        if MASKED:
            keep = cols[None, :] < n_k
            if CAUSAL:
                keep = keep & (cols[None, :] <= rows[:, None] + offset)
            s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # (BM,)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with no key yet
        p = tl.math.exp2(s - m_safe[:, None])  # P~ = 2^(S - m'), (BM, BN)
        alpha = tl.math.exp2(m_i - m_safe)  # 2^(m - m'), rescales the old statistics
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)  # (BM, BDV)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _fwd_kernel(
    Q,
    K,
    V,
    O,
    LSE,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_ob,
    stride_oh,
    stride_on,
    stride_od,
    n_heads,
    n_q,
    n_k,
    head_dim,
    head_dim_v,
    qk_scale,
    CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // n_heads
    h = pid_bh % n_heads
    offset = n_k - n_q  # query i sees keys j <= i + offset (causal)
    start_m = pid_m * BLOCK_M
    rows = start_m + tl.arange(0, BLOCK_M)  # (BM,)
    cols0 = tl.arange(0, BLOCK_N)  # (BN,)
    dk = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    d_k = dk < head_dim
    d_v = dv < head_dim_v

    q_ptrs = Q + b * stride_qb + h * stride_qh + rows[:, None] * stride_qn + dk[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=(rows[:, None] < n_q) & d_k[None, :], other=0.0)  # (BM, BD)
    k_ptrs = K + b * stride_kb + h * stride_kh + cols0[None, :] * stride_kn + dk[:, None] * stride_kd  # K^T
    v_ptrs = V + b * stride_vb + h * stride_vh + cols0[:, None] * stride_vn + dv[None, :] * stride_vd

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)  # running max (base 2)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)  # running normaliser
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)  # unnormalised output

    # [0, full_hi): key blocks every row of this query block sees whole; [full_hi, hi): the rest
    if CAUSAL:
        hi = tl.minimum(n_k, start_m + BLOCK_M + offset)  # last row sees keys < start_m + BM + offset
        hi = tl.maximum(hi, 0)
        full_hi = tl.minimum(n_k, start_m + offset + 1)  # first row sees keys < start_m + offset + 1
        full_hi = tl.maximum(full_hi, 0) // BLOCK_N * BLOCK_N
    else:
        hi = n_k
        full_hi = n_k // BLOCK_N * BLOCK_N
    acc, m_i, l_i = _fwd_tiles(
        acc, m_i, l_i, q, k_ptrs, v_ptrs, rows, cols0, d_k, d_v, 0, full_hi, stride_kn, stride_vn,
        n_k, offset, qk_scale, CAUSAL, False, BLOCK_N, PRECISION,
    )  # fmt: skip
    acc, m_i, l_i = _fwd_tiles(
        acc, m_i, l_i, q, k_ptrs, v_ptrs, rows, cols0, d_k, d_v, full_hi, hi, stride_kn, stride_vn,
        n_k, offset, qk_scale, CAUSAL, True, BLOCK_N, PRECISION,
    )  # fmt: skip

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]  # O = O~ / l (rows with no key: 0)
    lse2 = tl.where(l_i == 0.0, float("-inf"), m_i + tl.math.log2(l_safe))  # L2 = m + log2 l
    o_ptrs = O + b * stride_ob + h * stride_oh + rows[:, None] * stride_on + dv[None, :] * stride_od
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(rows[:, None] < n_q) & d_v[None, :])
    tl.store(LSE + pid_bh * n_q + rows, lse2, mask=rows < n_q)


# -- backward -------------------------------------------------------------------------------------------


@triton.jit
def _bwd_dkdv_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DK,
    DV,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_dob,
    stride_doh,
    stride_don,
    stride_dod,
    stride_dkb,
    stride_dkh,
    stride_dkn,
    stride_dkd,
    stride_dvb,
    stride_dvh,
    stride_dvn,
    stride_dvd,
    n_heads,
    n_q,
    n_k,
    head_dim,
    head_dim_v,
    scale,
    qk_scale,
    CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // n_heads
    h = pid_bh % n_heads
    offset = n_k - n_q
    start_n = pid_n * BLOCK_N
    cols = start_n + tl.arange(0, BLOCK_N)  # (BN,) this program's keys
    rows0 = tl.arange(0, BLOCK_M)
    dk_ = tl.arange(0, BLOCK_D)
    dv_ = tl.arange(0, BLOCK_DV)
    d_k = dk_ < head_dim
    d_v = dv_ < head_dim_v
    col_ok = cols < n_k

    k = tl.load(
        K + b * stride_kb + h * stride_kh + cols[:, None] * stride_kn + dk_[None, :] * stride_kd,
        mask=col_ok[:, None] & d_k[None, :],
        other=0.0,
    )  # (BN, BD)
    v = tl.load(
        V + b * stride_vb + h * stride_vh + cols[:, None] * stride_vn + dv_[None, :] * stride_vd,
        mask=col_ok[:, None] & d_v[None, :],
        other=0.0,
    )  # (BN, BDV)
    q_ptrs = Q + b * stride_qb + h * stride_qh + rows0[None, :] * stride_qn + dk_[:, None] * stride_qd  # Q^T
    do_ptrs = DO + b * stride_dob + h * stride_doh + rows0[:, None] * stride_don + dv_[None, :] * stride_dod
    dk_acc = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv_acc = tl.zeros([BLOCK_N, BLOCK_DV], dtype=tl.float32)

    lo = 0
    if CAUSAL:  # queries i with i + offset < start_n see none of these keys
        lo = tl.maximum(start_n - offset, 0) // BLOCK_M * BLOCK_M
    for start_m in range(lo, n_q, BLOCK_M):
        rows = start_m + rows0  # (BM,)
        row_ok = rows < n_q
        q_t = tl.load(q_ptrs + start_m * stride_qn, mask=d_k[:, None] & row_ok[None, :], other=0.0)  # (BD, BM)
        do = tl.load(do_ptrs + start_m * stride_don, mask=row_ok[:, None] & d_v[None, :], other=0.0)  # (BM, BDV)
        lse2 = tl.load(LSE + pid_bh * n_q + rows, mask=row_ok, other=0.0)
        lse2 = tl.where(lse2 == float("-inf"), 0.0, lse2)  # rows with no key: P is 0 there anyway
        delta = tl.load(DELTA + pid_bh * n_q + rows, mask=row_ok, other=0.0)  # D_i
        s_t = tl.dot(k, q_t, input_precision=PRECISION) * qk_scale  # S^T = sigma K_j Q_i^T, (BN, BM)
        keep = col_ok[:, None] & row_ok[None, :]
        if CAUSAL:
            keep = keep & (cols[:, None] <= rows[None, :] + offset)
        p_t = tl.where(keep, tl.math.exp2(s_t - lse2[None, :]), 0.0)  # P^T, (BN, BM)
        dv_acc += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)  # dV_j += P^T dO_i
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)  # dP^T = V_j dO_i^T, (BN, BM)
        ds_t = p_t * (dp_t - delta[None, :])  # dS^T = P^T * (dP^T - D)
        dk_acc += tl.dot(ds_t.to(q_t.dtype), tl.trans(q_t), input_precision=PRECISION)  # dK_j += dS^T Q_i
    dk_acc = dk_acc * scale
    tl.store(
        DK + b * stride_dkb + h * stride_dkh + cols[:, None] * stride_dkn + dk_[None, :] * stride_dkd,
        dk_acc.to(DK.dtype.element_ty),
        mask=col_ok[:, None] & d_k[None, :],
    )
    tl.store(
        DV + b * stride_dvb + h * stride_dvh + cols[:, None] * stride_dvn + dv_[None, :] * stride_dvd,
        dv_acc.to(DV.dtype.element_ty),
        mask=col_ok[:, None] & d_v[None, :],
    )


@triton.jit
def _bwd_dq_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DQ,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_dob,
    stride_doh,
    stride_don,
    stride_dod,
    stride_dqb,
    stride_dqh,
    stride_dqn,
    stride_dqd,
    n_heads,
    n_q,
    n_k,
    head_dim,
    head_dim_v,
    scale,
    qk_scale,
    CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // n_heads
    h = pid_bh % n_heads
    offset = n_k - n_q
    start_m = pid_m * BLOCK_M
    rows = start_m + tl.arange(0, BLOCK_M)
    cols0 = tl.arange(0, BLOCK_N)
    dk_ = tl.arange(0, BLOCK_D)
    dv_ = tl.arange(0, BLOCK_DV)
    d_k = dk_ < head_dim
    d_v = dv_ < head_dim_v
    row_ok = rows < n_q

    q = tl.load(
        Q + b * stride_qb + h * stride_qh + rows[:, None] * stride_qn + dk_[None, :] * stride_qd,
        mask=row_ok[:, None] & d_k[None, :],
        other=0.0,
    )  # (BM, BD)
    do = tl.load(
        DO + b * stride_dob + h * stride_doh + rows[:, None] * stride_don + dv_[None, :] * stride_dod,
        mask=row_ok[:, None] & d_v[None, :],
        other=0.0,
    )  # (BM, BDV)
    lse2 = tl.load(LSE + pid_bh * n_q + rows, mask=row_ok, other=0.0)
    lse2 = tl.where(lse2 == float("-inf"), 0.0, lse2)
    delta = tl.load(DELTA + pid_bh * n_q + rows, mask=row_ok, other=0.0)
    k_ptrs = K + b * stride_kb + h * stride_kh + cols0[:, None] * stride_kn + dk_[None, :] * stride_kd  # (BN, BD)
    v_ptrs = V + b * stride_vb + h * stride_vh + cols0[None, :] * stride_vn + dv_[:, None] * stride_vd  # V^T
    dq_acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    if CAUSAL:
        hi = tl.maximum(tl.minimum(n_k, start_m + BLOCK_M + offset), 0)
    else:
        hi = n_k
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + cols0
        col_ok = cols < n_k
        k = tl.load(k_ptrs + start_n * stride_kn, mask=col_ok[:, None] & d_k[None, :], other=0.0)  # (BN, BD)
        v_t = tl.load(v_ptrs + start_n * stride_vn, mask=d_v[:, None] & col_ok[None, :], other=0.0)  # (BDV, BN)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale  # (BM, BN)
        keep = row_ok[:, None] & col_ok[None, :]
        if CAUSAL:
            keep = keep & (cols[None, :] <= rows[:, None] + offset)
        p = tl.where(keep, tl.math.exp2(s - lse2[:, None]), 0.0)  # P = 2^(S - L2)
        dp = tl.dot(do, v_t, input_precision=PRECISION)  # dP = dO_i V_j^T, (BM, BN)
        ds = p * (dp - delta[:, None])  # dS = P * (dP - D)
        dq_acc += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)  # dQ_i += dS K_j
    dq_acc = dq_acc * scale
    tl.store(
        DQ + b * stride_dqb + h * stride_dqh + rows[:, None] * stride_dqn + dk_[None, :] * stride_dqd,
        dq_acc.to(DQ.dtype.element_ty),
        mask=row_ok[:, None] & d_k[None, :],
    )


# -- launch ---------------------------------------------------------------------------------------------


def supports(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> bool:
    """Whether these kernels handle the call: no ``mask`` tensor, a dtype in
    :data:`SUPPORTED_DTYPES` and head dimensions up to :data:`MAX_HEAD_DIM`."""
    return (
        mask is None
        and q.dtype in SUPPORTED_DTYPES
        and max(q.shape[-1], v.shape[-1]) <= MAX_HEAD_DIM
        and q.shape[2] > 0
        and k.shape[2] > 0
    )


def _pow2(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _config(
    q: Tensor, v: Tensor, block_m: int | None, block_n: int | None, backward: bool, tune: dict | None = None
) -> dict:
    """Tile sizes and launch options, chosen by head dimension and dtype; ``block_m``/``block_n``
    and ``tune`` (any of ``BLOCK_M, BLOCK_N, num_warps, num_stages``) override them."""
    d = max(q.shape[-1], v.shape[-1])
    if q.dtype == torch.float32:  # 4-byte tiles: smaller blocks to fit registers / shared memory
        bm, bn, warps, stages = 64, 32, 4, 2
    elif backward:
        bm, bn, warps, stages = 64, 64, 4 if d <= 64 else 8, 2
    else:
        bm, bn, warps, stages = 128, 64, 4 if d <= 64 else 8, 3
    if d > 128:
        bm, bn, warps, stages = min(bm, 64), min(bn, 32), 8, 2
    cfg = {"BLOCK_M": block_m or bm, "BLOCK_N": block_n or bn, "num_warps": warps, "num_stages": stages}
    return cfg | (tune or {})


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool,
    scale: float,
    block_m: int | None,
    block_n: int | None,
    tune: dict | None = None,
) -> tuple[Tensor, Tensor]:
    """Launch the forward kernel: ``out (B, H, Nq, dv)`` in q's dtype and the base-2 log-sum-exp
    ``lse2 (B, H, Nq)`` in float32."""
    b, h, n_q, d = q.shape
    n_k, d_v = k.shape[2], v.shape[3]
    out = torch.empty(b, h, n_q, d_v, dtype=q.dtype, device=q.device)
    lse2 = torch.empty(b, h, n_q, dtype=torch.float32, device=q.device)
    cfg = _config(q, v, block_m, block_n, backward=False, tune=tune)
    grid = (triton.cdiv(n_q, cfg["BLOCK_M"]), b * h)
    _fwd_kernel[grid](
        q, k, v, out, lse2,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        h, n_q, n_k, d, d_v, scale * _LOG2E,
        CAUSAL=causal, BLOCK_D=_pow2(d), BLOCK_DV=_pow2(d_v), PRECISION=_precision(q.dtype), **cfg,
    )  # fmt: skip
    return out, lse2


def _backward(
    do: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse2: Tensor,
    causal: bool,
    scale: float,
    block_m: int | None,
    block_n: int | None,
    tune: dict | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    b, h, n_q, d = q.shape
    n_k, d_v = k.shape[2], v.shape[3]
    delta = (do.float() * out.float()).sum(dim=-1).contiguous()  # D = rowsum(dO * O), (B, H, Nq)
    dq = torch.empty_like(q)
    dk = torch.empty_like(k)
    dv = torch.empty_like(v)
    cfg = _config(q, v, block_m, block_n, backward=True, tune=tune)
    common = {"CAUSAL": causal, "BLOCK_D": _pow2(d), "BLOCK_DV": _pow2(d_v), "PRECISION": _precision(q.dtype), **cfg}
    _bwd_dkdv_kernel[(triton.cdiv(n_k, cfg["BLOCK_N"]), b * h)](
        q, k, v, do, lse2, delta, dk, dv,
        *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dk.stride(), *dv.stride(),
        h, n_q, n_k, d, d_v, scale, scale * _LOG2E, **common,
    )  # fmt: skip
    _bwd_dq_kernel[(triton.cdiv(n_q, cfg["BLOCK_M"]), b * h)](
        q, k, v, do, lse2, delta, dq,
        *q.stride(), *k.stride(), *v.stride(), *do.stride(), *dq.stride(),
        h, n_q, n_k, d, d_v, scale, scale * _LOG2E, **common,
    )  # fmt: skip
    return dq, dk, dv


class _FlashTriton(torch.autograd.Function):
    """Autograd wrapper of the kernels: saves ``q, k, v, out`` and the log-sum-exp."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        causal: bool,
        scale: float,
        block_m: int | None,
        block_n: int | None,
    ) -> Tensor:
        out, lse2 = _forward(q, k, v, causal, scale, block_m, block_n)
        ctx.save_for_backward(q, k, v, out, lse2)
        ctx.causal, ctx.scale, ctx.block_m, ctx.block_n = causal, scale, block_m, block_n
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, do: Tensor):
        q, k, v, out, lse2 = ctx.saved_tensors
        dq, dk, dv = _backward(do, q, k, v, out, lse2, ctx.causal, ctx.scale, ctx.block_m, ctx.block_n)
        return dq, dk, dv, None, None, None, None


def _check(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float | None, block_m, block_n) -> float:
    check_attention_args(q, k, v, mask=mask, scale=scale)
    if mask is not None:
        raise ValueError("mask is not supported by the Triton kernels; use shiyan.attention.flash_attention")
    if q.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"q has dtype {q.dtype}; the Triton kernels take float16, bfloat16 or float32")
    if max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM:
        raise ValueError(f"head dimensions d = {q.shape[-1]}, d_v = {v.shape[-1]} exceed {MAX_HEAD_DIM}")
    for name, blk in (("block_m", block_m), ("block_n", block_n)):
        if blk is not None and (isinstance(blk, bool) or not isinstance(blk, int) or blk < 16 or blk & (blk - 1)):
            raise ValueError(f"{name} must be None or a power of two >= 16; got {blk!r}")
    return default_scale(q) if scale is None else float(scale)


def flash_attention_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> Tensor:
    r"""FlashAttention-2 forward and backward in Triton, differentiable; the shared interface
    (``q (B, H, N_q, d)``, ``k (B, H, N_k, d)``, ``v (B, H, N_k, d_v)`` -> ``(B, H, N_q, d_v)``,
    bottom-right ``causal``, ``scale`` default $1/\sqrt d$). ``mask`` must be ``None``.

    ``block_m``/``block_n`` override the tile sizes (powers of two >= 16). Inputs may be strided
    views (e.g. heads split by ``transpose``); nothing is copied.
    """
    tau = _check(q, k, v, mask, scale, block_m, block_n)
    return _FlashTriton.apply(q, k, v, bool(causal), tau, block_m, block_n)


def flash_attention_triton_forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The forward kernel alone: ``(out, lse)`` with the natural-log log-sum-exp ``lse (B, H, N_q)``
    ($-\\infty$ on rows that see no key), as :func:`shiyan.attention.flash_attention_forward`."""
    tau = _check(q, k, v, None, scale, block_m, block_n)
    with torch.no_grad():
        out, lse2 = _forward(q, k, v, bool(causal), tau, block_m, block_n)
    return out, lse2 * _LN2
