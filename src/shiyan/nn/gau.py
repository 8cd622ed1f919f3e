r"""The Gated Attention Unit (GAU) and FLASH's mixed chunk attention.

Hua, Dai, Liu, Le, "Transformer Quality in Linear Time" (ICML 2022).

**GAU.** One layer replaces both the attention and the feed-forward block of a Transformer. From
the (normalised) input $X \in \mathbb R^{N \times d}$, with $\phi = \mathrm{SiLU}$, an expanded width
$e$ (default $2d$) and a small shared width $s$ (default 128):

$$U = \phi(XW_u),\quad V = \phi(XW_v) \in \mathbb R^{N\times e},\qquad Z = \phi(XW_z) \in \mathbb R^{N\times s},$$

$$Q = Z \odot \gamma_q + \beta_q,\qquad K = Z \odot \gamma_k + \beta_k \quad\text{(cheap per-dimension scale and offset)},$$

$$A = \frac1n\,\mathrm{relu}^2\!\Big(\frac{QK^\top}{\sqrt s} + B\Big),\qquad O = \big(U \odot AV\big)\,W_o,$$

with one head, $B_{ij} = b_{i-j}$ a learned relative-position bias (offsets clipped to
$\pm$``max_distance``) and, when causal, $A_{ij} = 0$ for $j > i$. The paper divides by the
sequence length $n$; a causal model that must decode one token at a time cannot know the final
length, so ``length_scale`` fixes $n$ (the LM passes its ``max_seq_len``; ``None`` uses the
actual $N$, as the paper does for bidirectional models).

**FLASH** (mixed chunk attention). Cut the sequence into $G = \lceil N/c \rceil$ chunks of $c$
positions and give $Z$ four scale/offset pairs: $Q^{\text{quad}}, K^{\text{quad}}$ and
$Q^{\text{lin}}, K^{\text{lin}}$. For chunk $g$ (rows $H_g$ of a matrix $H$):

$$\hat V^{\text{quad}}_g = \frac1c\,\mathrm{relu}^2\!\Big(\frac{Q^{\text{quad}}_g K^{\text{quad}\top}_g}{\sqrt s} + B\Big) V_g
\quad\text{(quadratic, inside the chunk; causal mask inside it)},$$

$$\hat V^{\text{lin}}_g = \frac1n\,Q^{\text{lin}}_g \sum_{h < g} K^{\text{lin}\top}_h V_h
\quad\text{(linear, across chunks; all } h \text{, own chunk included, when not causal)},$$

$$O = \big(U \odot (\hat V^{\text{quad}} + \hat V^{\text{lin}})\big)\,W_o .$$

The causal sum over previous chunks is an exclusive cumulative sum of the $G$ matrices
$K^{\text{lin}\top}_h V_h \in \mathbb R^{s\times e}$, so the cost is $O(Nc\,e + N s e)$: linear in
$N$ for a fixed chunk size. The sum starts at the *previous* chunk on purpose: the current chunk
is covered by the quadratic term, whose causal mask stops a position from seeing later positions
of its own chunk (summing the current chunk's $K^\top V$ would leak the future).

**Decoding.** Both units run as recurrences (:meth:`GatedAttentionUnit.step`,
:meth:`FLASH.step`): GAU keeps every past key and value (like a KV cache); FLASH keeps the
running $\sum_{h<g} K^{\text{lin}\top}_h V_h$ ($s \times e$) plus the keys and values of the
current chunk ($\le c$ rows), folding the chunk into the sum when it is complete. The tests check
that this gives the parallel form's outputs token for token.

:func:`mixed_chunk_attention_naive` writes the same FLASH equations with full $N\times N$ matrices
(a block-diagonal masked quadratic matrix plus a masked linear one): the oracle of the chunked code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiyan.nn.init import linear
from shiyan.nn.norms import LayerNorm, RMSNorm

__all__ = [
    "FLASH",
    "FlashState",
    "GAUBlock",
    "GAUState",
    "GatedAttentionUnit",
    "gau_attention",
    "gau_block",
    "mixed_chunk_attention",
    "mixed_chunk_attention_naive",
    "relative_position_bias",
    "squared_relu",
]


def squared_relu(x: Tensor) -> Tensor:
    r"""$\mathrm{relu}^2(x) = \max(x, 0)^2$ (So et al. 2021), the GAU's score non-linearity."""
    return torch.relu(x).square()


def relative_position_bias(table: Tensor, n_q: int, n_k: int, q_start: int = 0, k_start: int = 0) -> Tensor:
    r"""$B_{ij} = b_{\mathrm{clip}(i-j, -m, m)}$ for query positions ``q_start + i`` and key positions
    ``k_start + j``; ``table`` holds $b_{-m}, \dots, b_m$ (length $2m+1$). Returns (n_q, n_k)."""
    if table.dim() != 1 or table.numel() % 2 == 0:
        raise ValueError(f"table must be 1-D of odd length 2m+1; got shape {tuple(table.shape)}")
    m = (table.numel() - 1) // 2
    i = torch.arange(q_start, q_start + n_q, device=table.device)[:, None]
    j = torch.arange(k_start, k_start + n_k, device=table.device)[None, :]
    return table[(i - j).clamp(-m, m) + m]  # (n_q, n_k)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, names: tuple[str, str, str] = ("q", "k", "v")) -> None:
    for name, t in zip(names, (q, k, v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a tensor; got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"{name} must be (batch, seq, dim); got shape {tuple(t.shape)}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    if q.shape != k.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape; got {tuple(q.shape)}, {tuple(k.shape)}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"{names[2]} must be (batch, seq, e) with batch and seq of {names[0]}; got {tuple(v.shape)}")


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return value


def gau_attention(
    q: Tensor, k: Tensor, v: Tensor, table: Tensor, *, causal: bool = True, length_scale: int | None = None
) -> Tensor:
    r"""GAU's single-head attention $A V$ with $A = \mathrm{relu}^2(QK^\top/\sqrt s + B)/n$.

    Args:
        q, k: (B, N, s); v: (B, N, e).
        table: relative-position bias $b_{-m..m}$ (see :func:`relative_position_bias`).
        causal: zero $A_{ij}$ for $j > i$.
        length_scale: $n$; ``None`` uses $N$.
    Returns (B, N, e).
    """
    _check_qkv(q, k, v)
    n_seq, s = q.shape[1], q.shape[2]
    n = n_seq if length_scale is None else _positive("length_scale", length_scale)
    bias = relative_position_bias(table, n_seq, n_seq)  # (N, N)
    a = squared_relu(q @ k.transpose(1, 2) / math.sqrt(s) + bias) / n  # (B, N, N)
    if causal:
        a = a.masked_fill(~torch.ones(n_seq, n_seq, dtype=torch.bool, device=q.device).tril(), 0.0)
    return a @ v  # (B, N, e)


def _pad_to_chunks(x: Tensor, chunk: int) -> Tensor:
    """(B, N, f) -> (B, G, c, f), zero rows appended so that c divides the length."""
    B, N, f = x.shape
    pad = -N % chunk
    return F.pad(x, (0, 0, 0, pad)).view(B, (N + pad) // chunk, chunk, f)


def mixed_chunk_attention(
    q_quad: Tensor,
    k_quad: Tensor,
    q_lin: Tensor,
    k_lin: Tensor,
    v: Tensor,
    table: Tensor,
    *,
    chunk_size: int,
    causal: bool = True,
    length_scale: int | None = None,
) -> Tensor:
    r"""FLASH's $\hat V^{\text{quad}} + \hat V^{\text{lin}}$ (module docstring) in $O(N c)$.

    Args:
        q_quad, k_quad, q_lin, k_lin: (B, N, s); v: (B, N, e).
        table: relative-position bias inside a chunk, length $2m+1$ (offsets beyond $m$ clipped).
        chunk_size: $c$; $N$ need not be a multiple of it (the last chunk is zero-padded: padded
            values are zero, so padded keys add nothing).
        causal: quadratic part masked inside the chunk, linear part over previous chunks only.
        length_scale: $n$ of the linear part; ``None`` uses $N$.
    Returns (B, N, e).
    """
    _check_qkv(q_quad, k_quad, v, ("q_quad", "k_quad", "v"))
    _check_qkv(q_lin, k_lin, v, ("q_lin", "k_lin", "v"))
    c = _positive("chunk_size", chunk_size)
    B, N, s = q_quad.shape
    n = N if length_scale is None else _positive("length_scale", length_scale)
    qq, kq, ql, kl, vv = (_pad_to_chunks(t, c) for t in (q_quad, k_quad, q_lin, k_lin, v))  # (B, G, c, ·)
    bias = relative_position_bias(table, c, c)  # (c, c)
    a = squared_relu(qq @ kq.transpose(-1, -2) / math.sqrt(s) + bias) / c  # (B, G, c, c)
    if causal:
        a = a.masked_fill(~torch.ones(c, c, dtype=torch.bool, device=a.device).tril(), 0.0)
    quad = a @ vv  # (B, G, c, e)
    kv = kl.transpose(-1, -2) @ vv  # (B, G, s, e): K_h^T V_h of every chunk
    if causal:  # exclusive prefix sum: chunk g sees chunks h < g
        kv = torch.cat([torch.zeros_like(kv[:, :1]), kv[:, :-1].cumsum(dim=1)], dim=1)  # (B, G, s, e)
    else:
        kv = kv.sum(dim=1, keepdim=True)  # (B, 1, s, e)
    lin = ql @ kv / n  # (B, G, c, e)
    return (quad + lin).flatten(1, 2)[:, :N]  # (B, N, e)


def mixed_chunk_attention_naive(
    q_quad: Tensor,
    k_quad: Tensor,
    q_lin: Tensor,
    k_lin: Tensor,
    v: Tensor,
    table: Tensor,
    *,
    chunk_size: int,
    causal: bool = True,
    length_scale: int | None = None,
) -> Tensor:
    r"""The oracle of :func:`mixed_chunk_attention`: the same equations with full $N\times N$ matrices,

    $$M = \frac1c\,\mathrm{relu}^2\!\Big(\frac{Q^{\text{quad}}K^{\text{quad}\top}}{\sqrt s} + B\Big) \odot \mathbb 1[g(i) = g(j),\ j \le i]
      + \frac1n\,Q^{\text{lin}}K^{\text{lin}\top} \odot \mathbb 1[g(j) < g(i)],\qquad \text{output } MV,$$

    with $g(i) = \lfloor i/c \rfloor$; without ``causal`` the masks are $\mathbb 1[g(i) = g(j)]$ and $1$
    (the paper's bidirectional linear term sums every chunk, the query's own included).
    $B$ uses offsets measured inside the chunk, which for positions of one chunk equal $i - j$."""
    _check_qkv(q_quad, k_quad, v, ("q_quad", "k_quad", "v"))
    _check_qkv(q_lin, k_lin, v, ("q_lin", "k_lin", "v"))
    c = _positive("chunk_size", chunk_size)
    N, s = q_quad.shape[1], q_quad.shape[2]
    n = N if length_scale is None else _positive("length_scale", length_scale)
    pos = torch.arange(N, device=v.device)
    g = pos // c
    same = g[:, None] == g[None, :]  # (N, N)
    before = g[None, :] < g[:, None]  # key chunk earlier than query chunk
    if causal:
        same = same & (pos[None, :] <= pos[:, None])
    else:
        before = torch.ones_like(same)
    quad = squared_relu(q_quad @ k_quad.transpose(1, 2) / math.sqrt(s) + relative_position_bias(table, N, N)) / c
    lin = q_lin @ k_lin.transpose(1, 2) / n  # (B, N, N)
    m = quad * same + lin * before  # (B, N, N)
    return m @ v  # (B, N, e)


# -- modules ----------------------------------------------------------------------------------------


class GAUState(NamedTuple):
    """Recurrent state of :class:`GatedAttentionUnit`: every past key (B, t, s) and value (B, t, e)."""

    k: Tensor
    v: Tensor
    position: int


class FlashState(NamedTuple):
    """Recurrent state of :class:`FLASH`.

    ``kv``: $\\sum_{h<g} K^{\\text{lin}\\top}_h V_h$ over the completed chunks (B, s, e);
    ``k_quad``, ``k_lin`` (B, r, s) and ``v`` (B, r, e): the r positions of the current chunk so far.
    """

    kv: Tensor
    k_quad: Tensor
    k_lin: Tensor
    v: Tensor
    position: int


class _GatedUnit(nn.Module):
    """Shared parts: the projections $U, V, Z$, the per-dimension scale/offset heads and $W_o$."""

    def __init__(
        self,
        d_model: int,
        *,
        expansion: float,
        s: int,
        n_heads: int,
        causal: bool,
        length_scale: int | None,
        n_bias: int,
        bias: bool,
        generator: torch.Generator | None,
    ):
        super().__init__()
        self.d_model = _positive("d_model", d_model)
        self.s = _positive("s", s)
        if not expansion > 0:
            raise ValueError(f"expansion must be > 0; got {expansion}")
        self.e = max(1, round(expansion * d_model))
        if length_scale is not None:
            _positive("length_scale", length_scale)
        self.causal = bool(causal)
        self.length_scale = length_scale
        self.n_heads = n_heads
        self.uv = linear(d_model, 2 * self.e, bias=bias, generator=generator)  # [W_u | W_v]
        self.z = linear(d_model, s, bias=bias, generator=generator)  # W_z
        self.gamma = nn.Parameter(torch.ones(n_heads * s))  # γ of each of the Q/K heads, concatenated
        self.beta = nn.Parameter(torch.zeros(n_heads * s))  # β likewise
        self.rel_bias = nn.Parameter(torch.zeros(n_bias))  # b_{-m..m}
        self.out = linear(self.e, d_model, bias=bias, generator=generator)  # W_o

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        if not isinstance(x, Tensor) or x.shape[-1] != self.d_model:
            raise ValueError(f"x must end in d_model={self.d_model}; got {getattr(x, 'shape', type(x).__name__)}")
        u, v = F.silu(self.uv(x)).split(self.e, dim=-1)  # 2 × (..., e)
        z = F.silu(self.z(x))  # (..., s)
        heads = z.unsqueeze(-2) * self.gamma.view(self.n_heads, self.s) + self.beta.view(self.n_heads, self.s)
        return u, v, list(heads.unbind(-2))  # n_heads × (..., s)

    def _n_for_step(self) -> int:
        if self.length_scale is None:
            raise ValueError("step() needs a fixed length_scale (the normaliser n cannot be the unknown final length)")
        if not self.causal:
            raise ValueError("step() decodes causally; this unit was built with causal=False")
        return self.length_scale


class GatedAttentionUnit(_GatedUnit):
    """GAU (module docstring): ``forward(x (B, N, d)) -> (B, N, d)``; ``step`` decodes one position.

    Args:
        d_model: $d$.
        expansion: $e = $ ``expansion`` $\\cdot d$ (paper: 2).
        s: width of the shared $Z$ (paper: 128).
        causal: mask the future.
        length_scale: the $n$ of $1/n$; ``None`` uses the sequence length (then ``step`` is refused).
        max_distance: relative offsets beyond $\\pm m$ share the bias of $\\pm m$.
        bias: biases in the projections.
        generator: draws the initial weights.
    """

    def __init__(
        self,
        d_model: int,
        *,
        expansion: float = 2.0,
        s: int = 128,
        causal: bool = True,
        length_scale: int | None = None,
        max_distance: int = 127,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ):
        m = _positive("max_distance", max_distance)
        super().__init__(
            d_model,
            expansion=expansion,
            s=s,
            n_heads=2,
            causal=causal,
            length_scale=length_scale,
            n_bias=2 * m + 1,
            bias=bias,
            generator=generator,
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"x must be (batch, seq, d_model); got shape {tuple(x.shape)}")
        u, v, (q, k) = self._project(x)  # (B, N, e), (B, N, e), 2 × (B, N, s)
        av = gau_attention(q, k, v, self.rel_bias, causal=self.causal, length_scale=self.length_scale)  # (B, N, e)
        return self.out(u * av)  # (B, N, d)

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> GAUState:
        return GAUState(
            torch.zeros(batch, 0, self.s, device=device, dtype=dtype),
            torch.zeros(batch, 0, self.e, device=device, dtype=dtype),
            0,
        )

    def step(self, x: Tensor, state: GAUState) -> tuple[Tensor, GAUState]:
        """One position: ``x`` (B, d) -> output (B, d) and the state including this position."""
        n = self._n_for_step()
        if x.dim() != 2:
            raise ValueError(f"x must be (batch, d_model); got shape {tuple(x.shape)}")
        u, v, (q, k) = self._project(x)  # (B, e), (B, e), 2 × (B, s)
        keys = torch.cat([state.k, k[:, None]], dim=1)  # (B, t+1, s)
        values = torch.cat([state.v, v[:, None]], dim=1)  # (B, t+1, e)
        t = state.position
        bias = relative_position_bias(self.rel_bias, 1, t + 1, q_start=t)[0]  # (t+1,)
        a = squared_relu(keys @ q[:, :, None] / math.sqrt(self.s) + bias[:, None]) / n  # (B, t+1, 1)
        av = (a * values).sum(dim=1)  # (B, e)
        return self.out(u * av), GAUState(keys, values, t + 1)


class FLASH(_GatedUnit):
    """FLASH with mixed chunk attention (module docstring); ``forward(x (B, N, d)) -> (B, N, d)``.

    Args as :class:`GatedAttentionUnit`, plus ``chunk_size`` $c$ (paper: 256). The relative-position
    bias covers the offsets inside one chunk, $-(c-1) \\dots c-1$.
    """

    def __init__(
        self,
        d_model: int,
        *,
        chunk_size: int = 64,
        expansion: float = 2.0,
        s: int = 128,
        causal: bool = True,
        length_scale: int | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ):
        c = _positive("chunk_size", chunk_size)
        super().__init__(
            d_model,
            expansion=expansion,
            s=s,
            n_heads=4,
            causal=causal,
            length_scale=length_scale,
            n_bias=2 * c - 1,
            bias=bias,
            generator=generator,
        )
        self.chunk_size = c

    def _heads(self, x: Tensor):
        u, v, (qq, kq, ql, kl) = self._project(x)
        return u, v, qq, kq, ql, kl

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"x must be (batch, seq, d_model); got shape {tuple(x.shape)}")
        u, v, qq, kq, ql, kl = self._heads(x)
        mixed = mixed_chunk_attention(
            qq,
            kq,
            ql,
            kl,
            v,
            self.rel_bias,
            chunk_size=self.chunk_size,
            causal=self.causal,
            length_scale=self.length_scale,
        )  # (B, N, e)
        return self.out(u * mixed)  # (B, N, d)

    def forward_naive(self, x: Tensor) -> Tensor:
        """The same layer through :func:`mixed_chunk_attention_naive` (full matrices; for tests)."""
        u, v, qq, kq, ql, kl = self._heads(x)
        mixed = mixed_chunk_attention_naive(
            qq,
            kq,
            ql,
            kl,
            v,
            self.rel_bias,
            chunk_size=self.chunk_size,
            causal=self.causal,
            length_scale=self.length_scale,
        )
        return self.out(u * mixed)

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> FlashState:
        def empty(f: int) -> Tensor:
            return torch.zeros(batch, 0, f, device=device, dtype=dtype)

        kv = torch.zeros(batch, self.s, self.e, device=device, dtype=dtype)
        return FlashState(kv, empty(self.s), empty(self.s), empty(self.e), 0)

    def step(self, x: Tensor, state: FlashState) -> tuple[Tensor, FlashState]:
        """One position: fold a completed chunk into the running sum, then attend inside the chunk."""
        n = self._n_for_step()
        if x.dim() != 2:
            raise ValueError(f"x must be (batch, d_model); got shape {tuple(x.shape)}")
        c = self.chunk_size
        u, v, qq, kq, ql, kl = self._heads(x)  # (B, e) ×2, (B, s) ×4
        kv, k_quad, k_lin, vals = state.kv, state.k_quad, state.k_lin, state.v
        if k_quad.shape[1] == c:  # the previous chunk is complete: it moves into the linear sum
            kv = kv + k_lin.transpose(1, 2) @ vals  # (B, s, e)
            k_quad, k_lin, vals = k_quad[:, :0], k_lin[:, :0], vals[:, :0]
        k_quad = torch.cat([k_quad, kq[:, None]], dim=1)  # (B, r+1, s)
        k_lin = torch.cat([k_lin, kl[:, None]], dim=1)
        vals = torch.cat([vals, v[:, None]], dim=1)  # (B, r+1, e)
        r = k_quad.shape[1] - 1
        bias = relative_position_bias(self.rel_bias, 1, r + 1, q_start=r)[0]  # (r+1,)
        a = squared_relu(k_quad @ qq[:, :, None] / math.sqrt(self.s) + bias[:, None]) / c  # (B, r+1, 1)
        quad = (a * vals).sum(dim=1)  # (B, e)
        lin = (ql[:, None] @ kv)[:, 0] / n  # (B, e)
        return self.out(u * (quad + lin)), FlashState(kv, k_quad, k_lin, vals, state.position + 1)


# -- the shared LM's block ----------------------------------------------------------------------------


class GAUBlock(nn.Module):
    """A residual layer around a GAU or FLASH unit, in place of attention + FFN in :class:`TransformerLM`:
    pre-norm $h + \\mathrm{Unit}(\\mathrm{Norm}(h))$ or post-norm $\\mathrm{Norm}(h + \\mathrm{Unit}(h))$.

    With a KV cache the unit runs as its recurrence (one ``step`` per new position); its state lives
    in ``cache.states[layer]``, so a cached call must continue exactly where the previous one stopped.
    """

    def __init__(self, unit: _GatedUnit, norm: nn.Module, *, pre: bool = True, dropout: float = 0.0):
        super().__init__()
        self.attn = unit  # named like the softmax block's attention, so the LM's init scales attn.out
        self.norm = norm
        self.pre = pre
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, *, rope=None, cache=None, layer: int = 0, start: int = 0) -> Tensor:
        if rope is not None:
            raise ValueError("GAU/FLASH blocks carry their own relative-position bias; use positions != 'rope'")
        h = self.norm(x) if self.pre else x
        y = self.attn(h) if cache is None else self._decode(h, cache, layer, start)  # (B, T, D)
        return x + self.dropout(y) if self.pre else self.norm(x + self.dropout(y))

    def _decode(self, h: Tensor, cache, layer: int, start: int) -> Tensor:
        states = cache.states
        if start == 0:
            state = self.attn.init_state(h.shape[0], device=h.device, dtype=h.dtype)
        else:
            state = states.get(layer)
            if state is None or state.position != start:
                have = None if state is None else state.position
                raise ValueError(f"GAU cache of layer {layer} holds {have} positions; asked to continue at {start}")
        outs = []
        for t in range(h.shape[1]):
            y, state = self.attn.step(h[:, t], state)  # (B, D)
            outs.append(y)
        states[layer] = state
        return torch.stack(outs, dim=1)  # (B, T, D)


def gau_block(
    kind: Literal["gau", "flash"] = "gau",
    *,
    expansion: float = 2.0,
    s: int = 128,
    chunk_size: int = 64,
    max_distance: int = 127,
) -> Callable[..., nn.Module]:
    """A ``block`` factory for :class:`shiyan.nn.lm.TransformerLM`: ``factory(cfg, layer) -> GAUBlock``.

    The unit is causal with $n$ = ``cfg.max_seq_len``; norm, its position and dropout follow ``cfg``.
    """
    if kind not in ("gau", "flash"):
        raise ValueError(f"kind must be 'gau' or 'flash'; got {kind!r}")

    def make(cfg, layer: int) -> GAUBlock:
        common = dict(expansion=expansion, s=s, causal=True, length_scale=cfg.max_seq_len, bias=cfg.bias)
        if kind == "gau":
            unit: _GatedUnit = GatedAttentionUnit(cfg.d_model, max_distance=max_distance, **common)
        else:
            unit = FLASH(cfg.d_model, chunk_size=chunk_size, **common)
        norm = (LayerNorm if cfg.norm == "layernorm" else RMSNorm)(cfg.d_model, eps=1e-5)
        return GAUBlock(unit, norm, pre=cfg.norm_position == "pre", dropout=cfg.dropout)

    return make
