r"""Sparse attention: each query attends to a fixed pattern of keys, computed block-sparsely.

Child, Gray, Radford, Sutskever, "Generating Long Sequences with Sparse Transformers" (2019),
plus the plain sliding window. A pattern is a set $A_i$ of keys for every query $i$; attention is
the softmax over $A_i$ only,

$$\mathrm{out}_i = \sum_{j \in A_i} \frac{e^{\tau q_i \cdot k_j}}{\sum_{j' \in A_i} e^{\tau q_i \cdot k_{j'}}}\, v_j .$$

With query position $p$ and key position $j$ (see "alignment" below), $\delta = p - j$, window
$w$, stride $\ell$ and $c$ summary positions:

* **local** -- $A_p = \{ j : |\delta| < w \}$, a sliding window ($w$ keys when causal);
* **strided** (§4.1, "strided attention") -- $A_p = \{ j : |\delta| < \ell \} \cup
  \{ j : \delta \equiv 0 \pmod \ell \}$: the previous $\ell$ positions plus every $\ell$-th one
  (the paper's two heads merged into one pattern); with $\ell \approx \sqrt N$ each query sees
  $O(\sqrt N)$ keys;
* **fixed** (§4.1, "fixed attention") -- $A_p = \{ j : \lfloor j/\ell \rfloor = \lfloor p/\ell
  \rfloor \} \cup \{ j : j \bmod \ell \ge \ell - c \}$: the own block of $\ell$ positions plus
  the last $c$ positions of every block, which act as summaries;

and with ``causal=True`` every pattern keeps only $\delta \ge 0$. :func:`pattern_mask` returns
the dense boolean $(N_q, N_k)$ mask of a pattern, for tests and pictures.

**Block-sparse computation.** :func:`sparse_attention` never forms the $N_q \times N_k$ score
matrix. A pattern is split into disjoint *parts*, each laid out so that the keys one block of
``block`` queries needs form a short contiguous run of key blocks:

* local, and the "previous $\ell$" part of strided: positions in their natural order, a band
  of key blocks around the diagonal;
* the "every $\ell$-th" part of strided: queries and keys **reordered by residue** $p \bmod \ell$
  (then by position), which turns the stripes into dense blocks on the diagonal (one group per
  residue); we exclude $\delta = 0$ there because the local part already has it;
* fixed: the own block in natural order, and the summary keys gathered into a compact list
  (excluding the query's own block, which the first part covers).

For each query block only its run of key blocks is gathered, the scores of those tiles are
computed and masked element-wise by the pattern predicate, and each part returns its output and
log-sum-exp $L$. Parts are merged exactly as FlashAttention merges tiles:
$\mathrm{out} = \sum_r e^{L_r - L}\,\mathrm{out}_r$ with $L = \log \sum_r e^{L_r}$. Work and
memory are $O(N \cdot \text{keys per query})$ up to the padding of ragged runs; the backward
pass is autograd through these gathered tiles (still no $N \times N$ tensor).
:func:`computed_scores` counts the score entries evaluated, to compare with the pattern's size.

Conventions of the shared interface (:mod:`shiyan.attention.naive`): a ``mask`` (boolean or
additive) further restricts the pattern and is gathered tile by tile; ``scale`` defaults to
$1/\sqrt d$. **Alignment**: query row $i$ sits at position $p = i + N_k - N_q$ (bottom-right, as
for ``causal`` everywhere in the package), so with $N_q = N_k$ simply $p = i$. A row whose
pattern is empty outputs zeros.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from numbers import Integral
from typing import Literal

import torch
from torch import Tensor

from shiyan.attention.naive import check_attention_args, default_scale

__all__ = [
    "PATTERNS",
    "SparsePattern",
    "computed_scores",
    "fixed_attention",
    "local_attention",
    "pattern_mask",
    "sparse_attention",
    "strided_attention",
]

PatternKind = Literal["local", "strided", "fixed"]
PATTERNS: tuple[str, ...] = ("local", "strided", "fixed")
_NEG_INF = -math.inf


@dataclasses.dataclass(frozen=True)
class SparsePattern:
    """A validated sparse pattern: ``kind`` with its ``window`` (local) or ``stride`` and
    ``summary`` (strided, fixed), and whether it is ``causal``."""

    kind: str
    window: int | None = None
    stride: int | None = None
    summary: int = 1
    causal: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}; got {self.kind!r}")
        if self.kind == "local":
            _positive_int("window", self.window)
            if self.stride is not None:
                raise ValueError("stride applies to the strided and fixed patterns, not to pattern='local'")
        else:
            _positive_int("stride", self.stride)
            if self.window is not None:
                raise ValueError(f"window applies to pattern='local', not to pattern={self.kind!r}")
        _positive_int("summary", self.summary)
        if self.kind == "fixed" and self.summary > self.stride:
            raise ValueError(f"summary must be at most stride = {self.stride}; got {self.summary}")

    def allows(self, p: Tensor, j: Tensor) -> Tensor:
        r"""The pattern predicate: ``True`` where query position ``p`` may attend key position
        ``j`` (tensors broadcast)."""
        delta = p - j
        if self.kind == "local":
            ok = delta.abs() < self.window
        elif self.kind == "strided":
            ok = (delta.abs() < self.stride) | (torch.remainder(delta, self.stride) == 0)
        else:
            same_block = torch.div(p, self.stride, rounding_mode="floor") == torch.div(
                j, self.stride, rounding_mode="floor"
            )
            ok = same_block | (torch.remainder(j, self.stride) >= self.stride - self.summary)
        return ok & (delta >= 0) if self.causal else ok


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def pattern_mask(
    kind: str,
    n_q: int,
    n_k: int | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    summary: int = 1,
    causal: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """The dense ``(n_q, n_k)`` boolean mask of a pattern (``True`` = attend), with query row
    ``i`` at position ``i + n_k - n_q``. ``O(n_q n_k)`` memory: for tests and figures only."""
    n_k = n_q if n_k is None else n_k
    _positive_int("n_q", n_q)
    _positive_int("n_k", n_k)
    pat = SparsePattern(kind, window, stride, summary, bool(causal))
    p = torch.arange(n_q, device=device)[:, None] + (n_k - n_q)  # (n_q, 1)
    j = torch.arange(n_k, device=device)[None, :]  # (1, n_k)
    return pat.allows(p, j)  # (n_q, n_k)


# -- the parts of a pattern, each laid out as contiguous runs of key blocks -------------------------------


@dataclasses.dataclass(frozen=True)
class _Part:
    """One disjoint piece of a pattern. Query rows are taken in the order ``q_order`` and grouped
    into blocks; block ``b`` needs the key slots ``[lo[b], hi[b])`` of ``k_order``."""

    q_order: Tensor  # (N_q,) query row indices in this part's order
    k_order: Tensor  # (M,) key indices in this part's order (M <= N_k)
    lo: Tensor  # (n_blocks,) first key slot each query block needs
    hi: Tensor  # (n_blocks,) one past its last key slot
    allows: Callable[[Tensor, Tensor], Tensor]  # (p, j) -> bool, this part's share of the pattern


def _block_ends(order: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """First and last entries of ``order`` in each block of ``block`` consecutive entries."""
    n = order.numel()
    starts = torch.arange(0, n, block, device=order.device)  # (n_blocks,)
    ends = torch.clamp(starts + block, max=n) - 1
    return order[starts], order[ends]


def _parts(pat: SparsePattern, n_q: int, n_k: int, block: int, device: torch.device) -> list[_Part]:
    offset = n_k - n_q
    rows = torch.arange(n_q, device=device)  # natural query order
    keys = torch.arange(n_k, device=device)
    first, last = _block_ends(rows, block)
    p0, p1 = first + offset, last + offset  # positions of the first/last query of each block
    causal = pat.causal

    def clamp(x: Tensor) -> Tensor:
        return x.clamp(0, n_k)

    if pat.kind == "local":
        w = pat.window
        hi = p1 + 1 if causal else p1 + w
        return [_Part(rows, keys, clamp(p0 - w + 1), clamp(hi), pat.allows)]

    ell = pat.stride
    if pat.kind == "strided":
        near = SparsePattern("local", window=ell, causal=causal)
        hi = p1 + 1 if causal else p1 + ell
        parts = [_Part(rows, keys, clamp(p0 - ell + 1), clamp(hi), near.allows)]

        def every_ell(p: Tensor, j: Tensor) -> Tensor:
            delta = p - j
            ok = (torch.remainder(delta, ell) == 0) & (delta != 0)  # delta = 0 belongs to `near`
            return ok & (delta > 0) if causal else ok

        # reorder queries and keys by residue mod ell (stable: positions stay sorted in a group)
        q_res = torch.remainder(rows + offset, ell)
        k_res = torch.remainder(keys, ell)
        q_order = torch.argsort(q_res, stable=True)
        k_order = torch.argsort(k_res, stable=True)
        counts = torch.bincount(k_res, minlength=ell)  # keys per residue group
        starts = torch.cumsum(counts, 0) - counts  # first slot of each group in k_order
        first, last = _block_ends(q_order, block)
        r_first, r_last = q_res[first], q_res[last]
        p_last = last + offset
        if causal:  # keys of the last query's group strictly before it: j = r + ell t < p_last
            n_before = torch.div(p_last - r_last, ell, rounding_mode="floor")
            hi = starts[r_last] + torch.minimum(n_before.clamp(min=0), counts[r_last])
        else:
            hi = starts[r_last] + counts[r_last]
        parts.append(_Part(q_order, k_order, starts[r_first], hi, every_ell))
        return parts

    # fixed
    c = pat.summary

    def own_block(p: Tensor, j: Tensor) -> Tensor:
        ok = torch.div(p, ell, rounding_mode="floor") == torch.div(j, ell, rounding_mode="floor")
        return ok & (p >= j) if causal else ok

    def summaries(p: Tensor, j: Tensor) -> Tensor:  # summary keys outside the own block
        ok = torch.div(p, ell, rounding_mode="floor") != torch.div(j, ell, rounding_mode="floor")
        return ok & (p >= j) if causal else ok

    b0 = torch.div(p0, ell, rounding_mode="floor") * ell  # start of the first query's block
    b1 = (torch.div(p1, ell, rounding_mode="floor") + 1) * ell  # end of the last query's block
    parts = [_Part(rows, keys, clamp(b0), clamp(p1 + 1 if causal else b1), own_block)]
    summary_keys = keys[torch.remainder(keys, ell) >= ell - c]  # (M,) ascending
    m = summary_keys.numel()
    if m:
        lo = torch.zeros_like(p0)
        # causal: only summaries of blocks before the last query's block; else all of them
        hi = torch.searchsorted(summary_keys, b1 - ell) if causal else torch.full_like(p0, m)
        parts.append(_Part(rows, summary_keys, lo, hi, summaries))
    return parts


def _key_slots(part: _Part, block: int) -> tuple[Tensor, Tensor]:
    """For each query block, the key slots of its run of key blocks: ``(n_blocks, R)`` slot
    indices (clamped into range) and whether each is real (inside the run and the key list)."""
    m = part.k_order.numel()
    blk_lo = torch.div(part.lo, block, rounding_mode="floor")  # (n_blocks,)
    blk_hi = torch.div(part.hi + block - 1, block, rounding_mode="floor")
    count = torch.where(part.hi > part.lo, blk_hi - blk_lo, torch.zeros_like(blk_lo))
    width = int(count.max()) if count.numel() else 0  # key blocks in the longest run
    j = torch.arange(width, device=count.device)
    slot = (blk_lo[:, None, None] + j[None, :, None]) * block + torch.arange(block, device=count.device)
    real = (j[None, :, None] < count[:, None, None]) & (slot < m)  # (n_blocks, width, block)
    n_blocks = part.lo.numel()
    return slot.clamp(max=max(m - 1, 0)).reshape(n_blocks, -1), real.reshape(n_blocks, -1)


def _softmax_lse(s: Tensor) -> tuple[Tensor, Tensor]:
    """Row softmax and log-sum-exp of ``s (..., R)``; all-``-inf`` rows give zeros and ``-inf``
    (with finite gradients)."""
    m = s.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(s - m)
    z = e.sum(dim=-1, keepdim=True)
    seen = z > 0
    z = torch.where(seen, z, torch.ones_like(z))
    lse = torch.where(seen, m + torch.log(z), torch.full_like(z, _NEG_INF))
    return e / z, lse[..., 0]


def _part_attention(
    q: Tensor, k: Tensor, v: Tensor, part: _Part, scale: float, block: int, mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Attention restricted to one part: ``out (B, H, N_q, d_v)`` and ``lse (B, H, N_q)`` in the
    natural query order."""
    b, h, n_q, _ = q.shape
    n_k = k.shape[2]
    n_blocks = part.lo.numel()
    slot, real = _key_slots(part, block)  # (n_blocks, R)
    if slot.shape[1] == 0:  # no query of this part sees any key
        return q.new_zeros(b, h, n_q, v.shape[3]), q.new_full((b, h, n_q), _NEG_INF)
    pad = n_blocks * block - n_q
    q_rows = torch.cat([part.q_order, part.q_order[-1:].expand(pad)]).view(n_blocks, block)  # (n_blocks, block)
    q_real = (torch.arange(n_blocks * block, device=q.device) < n_q).view(n_blocks, block)
    k_rows = part.k_order[slot]  # (n_blocks, R) key indices
    p = q_rows + (n_k - n_q)  # query positions
    ok = part.allows(p[:, :, None], k_rows[:, None, :]) & real[:, None, :] & q_real[:, :, None]  # (n_blocks, block, R)

    q_g = q[:, :, q_rows]  # (B, H, n_blocks, block, d)
    k_g = k[:, :, k_rows]  # (B, H, n_blocks, R, d): only the key blocks each query block needs
    v_g = v[:, :, k_rows]  # (B, H, n_blocks, R, d_v)
    s = (q_g @ k_g.transpose(-2, -1)) * scale  # (B, H, n_blocks, block, R)
    s = s.masked_fill(~ok, _NEG_INF)
    if mask is not None:
        m = mask.expand(b, h, n_q, n_k)[:, :, q_rows[:, :, None], k_rows[:, None, :]]  # (B, H, n_blocks, block, R)
        s = s.masked_fill(~m, _NEG_INF) if m.dtype == torch.bool else s + m.to(s.dtype)
    prob, lse = _softmax_lse(s)
    out = prob @ v_g  # (B, H, n_blocks, block, d_v)
    out = out.reshape(b, h, n_blocks * block, -1)[:, :, :n_q]  # (B, H, N_q, d_v), this part's order
    lse = lse.reshape(b, h, n_blocks * block)[:, :, :n_q]
    inverse = torch.argsort(part.q_order)  # back to the natural order
    return out[:, :, inverse], lse[:, :, inverse]


def _merge(results: list[tuple[Tensor, Tensor]]) -> Tensor:
    r"""$\mathrm{out} = \sum_r e^{L_r - L} \mathrm{out}_r$, $L = \log\sum_r e^{L_r}$ (zeros where every
    $L_r = -\infty$)."""
    if len(results) == 1:
        return results[0][0]
    lse = torch.stack([lse for _, lse in results])  # (parts, B, H, N_q)
    m = lse.amax(dim=0)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    w = torch.exp(lse - m)  # (parts, B, H, N_q)
    z = w.sum(dim=0)
    z = torch.where(z > 0, z, torch.ones_like(z))
    out = sum(w_r[..., None] * out_r for w_r, (out_r, _) in zip(w, results, strict=True))
    return out / z[..., None]


def sparse_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    pattern: str = "local",
    window: int | None = None,
    stride: int | None = None,
    summary: int = 1,
    block: int = 64,
) -> Tensor:
    """Softmax attention over a sparse ``pattern`` ("local" with ``window``; "strided" with
    ``stride``; "fixed" with ``stride`` and ``summary``), computed block-sparsely in query blocks
    of ``block`` rows. Equal to :func:`shiyan.attention.naive_attention` with
    ``mask = pattern_mask(...)`` (and the optional extra ``mask``), without the dense matrix."""
    check_attention_args(q, k, v, mask=mask, scale=scale)
    _positive_int("block", block)
    pat = SparsePattern(pattern, window, stride, summary, bool(causal))
    tau = default_scale(q) if scale is None else float(scale)
    parts = _parts(pat, q.shape[2], k.shape[2], int(block), q.device)
    return _merge([_part_attention(q, k, v, part, tau, int(block), mask) for part in parts])


def local_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block: int = 64,
) -> Tensor:
    """Sliding-window attention: query position ``p`` sees keys ``j`` with ``|p - j| < window``."""
    return sparse_attention(q, k, v, causal=causal, mask=mask, scale=scale, pattern="local", window=window, block=block)


def strided_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    stride: int,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block: int = 64,
) -> Tensor:
    """Sparse Transformer strided pattern: the previous ``stride`` positions and every
    ``stride``-th one."""
    return sparse_attention(
        q, k, v, causal=causal, mask=mask, scale=scale, pattern="strided", stride=stride, block=block
    )


def fixed_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    stride: int,
    summary: int = 1,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block: int = 64,
) -> Tensor:
    """Sparse Transformer fixed pattern: the own block of ``stride`` positions and the last
    ``summary`` positions of every block."""
    return sparse_attention(
        q, k, v, causal=causal, mask=mask, scale=scale, pattern="fixed", stride=stride, summary=summary, block=block
    )


def computed_scores(
    pattern: str,
    n_q: int,
    n_k: int | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    summary: int = 1,
    causal: bool = False,
    block: int = 64,
) -> int:
    """How many query-key scores :func:`sparse_attention` evaluates per batch element and head
    (gathered tiles, padding included): compare with ``pattern_mask(...).sum()`` (the pattern's
    size) and ``n_q * n_k`` (dense attention)."""
    n_k = n_q if n_k is None else n_k
    _positive_int("n_q", n_q)
    _positive_int("n_k", n_k)
    _positive_int("block", block)
    pat = SparsePattern(pattern, window, stride, summary, bool(causal))
    total = 0
    for part in _parts(pat, n_q, n_k, block, torch.device("cpu")):
        slot, _ = _key_slots(part, block)
        total += slot.numel() * block
    return total
