r"""Linear attention: replace the softmax by a kernel and use associativity.

Katharopoulos, Vyas, Pappas, Fleuret, "Transformers are RNNs: Fast Autoregressive Transformers
with Linear Attention" (ICML 2020).

Softmax attention weighs value $v_j$ by $\mathrm{sim}(q_i, k_j) = \exp(q_i^\top k_j/\sqrt d)$.
Any non-negative similarity that factorises through a feature map,
$\mathrm{sim}(q, k) = \phi(q)^\top \phi(k)$, gives (§3.2)

$$V'_i = \frac{\sum_j \phi(q_i)^\top \phi(k_j)\, v_j}{\sum_j \phi(q_i)^\top \phi(k_j)}
       = \frac{\phi(q_i)^\top \big(\sum_j \phi(k_j) v_j^\top\big)}{\phi(q_i)^\top \sum_j \phi(k_j)},$$

and the bracket $\sum_j \phi(k_j) v_j^\top$ ($d_\phi \times d_v$) is shared by all queries: cost
$O(N d_\phi d_v)$ instead of $O(N^2 d)$. The paper's feature map (§3.2.1) is
$\phi(x) = \mathrm{elu}(x) + 1$, positive everywhere (:func:`elu_feature_map`); any callable
``(..., d) -> (..., d_phi)`` with non-negative output may be passed as ``feature_map``.

Three forms of the same function, which the tests check agree with each other and with the
$O(N^2)$ kernelised formula :func:`kernel_attention_naive`:

1. **parallel, non-causal** (:func:`linear_attention`, ``causal=False``): the formula above as written;
2. **causal by cumulative sums** (``causal=True``, §3.3): the sums run over $j \le i$ only,

   $$S_i = \sum_{j \le i} \phi(k_j) v_j^\top,\qquad z_i = \sum_{j \le i} \phi(k_j),\qquad
   V'_i = \frac{\phi(q_i)^\top S_i}{\phi(q_i)^\top z_i}.$$

   Two ways to compute these prefix sums, both over chunks of ``chunk_size`` positions that carry
   $S, z$ from one chunk to the next (``causal_form``):

   * ``"chunked"`` (the default): inside a chunk $c$ starting at position $c_0$,
     $\phi(q_i)^\top S_i = \phi(q_i)^\top S_{c_0 - 1} + \sum_{c_0 \le j \le i} (\phi(q_i)^\top\phi(k_j))\, v_j$,
     a masked $C \times C$ kernel matrix times the chunk's values plus one product with the carried
     state: only matrix products, $O(N C d + N d_\phi d_v)$;
   * ``"cumsum"``: the literal prefix sums with ``torch.cumsum``, which materialise the
     $(C, d_\phi, d_v)$ states of every position of a chunk: the same numbers, more memory traffic;

3. **recurrent** (§3.4; :func:`linear_attention_step`, :func:`linear_attention_recurrent`): the same
   sums as an RNN whose state is $(S, z)$:
   $S_t = S_{t-1} + \phi(k_t) v_t^\top$, $z_t = z_{t-1} + \phi(k_t)$,
   $V'_t = \phi(q_t)^\top S_t / (\phi(q_t)^\top z_t)$. Generation costs $O(d_\phi d_v)$ per
   token, independent of the position.

Conventions of the shared interface (:mod:`shiyan.attention.naive`) and what differs:

* Shapes ``q (B, H, N_q, d)``, ``k (B, H, N_k, d)``, ``v (B, H, N_k, d_v)``; ``causal`` is
  aligned bottom-right (query $i$ sums keys $j \le i + N_k - N_q$).
* ``scale`` multiplies the queries before the feature map, $\phi(\tau q)$. ``None`` means no
  scaling, as in the paper (the $1/\sqrt d$ of softmax attention has no special role here).
* ``mask`` can only be a boolean **key-padding** mask, broadcastable to
  ``(B, H, 1, N_k)``: ``False`` removes key $j$ from both sums. An arbitrary $(N_q, N_k)$ mask
  would undo the factorisation, so it raises ``ValueError``.
* The denominator is $\phi(q_i)^\top z_i + \varepsilon$ (``eps``, default $10^{-6}$, as in the
  authors' code), so a query that sees no key returns zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from shiyan.attention.naive import causal_mask, check_attention_args

__all__ = [
    "FeatureMap",
    "LinearAttentionState",
    "elu_feature_map",
    "kernel_attention_naive",
    "linear_attention",
    "linear_attention_init_state",
    "linear_attention_recurrent",
    "linear_attention_state",
    "linear_attention_step",
]

FeatureMap = Callable[[Tensor], Tensor]


def elu_feature_map(x: Tensor) -> Tensor:
    r"""$\phi(x) = \mathrm{elu}(x) + 1$ (Katharopoulos et al. 2020, §3.2.1): positive, and equal to
    $x + 1$ for $x > 0$."""
    return F.elu(x) + 1.0


class LinearAttentionState(NamedTuple):
    r"""The recurrent state after some keys: $S = \sum_j \phi(k_j) v_j^\top$ of shape
    ``(B, H, d_phi, d_v)`` and $z = \sum_j \phi(k_j)$ of shape ``(B, H, d_phi)``."""

    s: Tensor
    z: Tensor


# -- argument checks ---------------------------------------------------------------------------------


def _check(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float | None, feature_map: FeatureMap, eps: float
) -> None:
    check_attention_args(q, k, v, mask=None, scale=scale)
    if not callable(feature_map):
        raise TypeError(f"feature_map must be callable; got {type(feature_map).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, Real) or not eps >= 0:
        raise ValueError(f"eps must be a non-negative real number; got {eps!r}")
    if mask is not None:
        _key_keep(mask, q, k)


def _key_keep(mask: Tensor, q: Tensor, k: Tensor) -> Tensor:
    """A key-padding mask -> ``(B, H, N_k, 1)`` multiplier (1 keeps a key, 0 drops it)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None; got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean key-padding mask for linear attention; got dtype {mask.dtype}")
    if mask.device != q.device:
        raise ValueError(f"mask is on {mask.device} but q is on {q.device}")
    b, h, n_k = q.shape[0], q.shape[1], k.shape[2]
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        raise ValueError(
            f"mask must be a key-padding mask broadcastable to (batch, heads, 1, seq_k) = {(b, h, 1, n_k)}; "
            f"got shape {tuple(mask.shape)} (linear attention cannot apply a per-query mask)"
        )
    try:
        if mask.dim() > 4 or torch.broadcast_shapes(mask.shape, (b, h, 1, n_k)) != torch.Size((b, h, 1, n_k)):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to (batch, heads, 1, seq_k) = {(b, h, 1, n_k)}"
        ) from None
    return mask.expand(b, h, 1, n_k).transpose(-1, -2).to(k.dtype)  # (B, H, N_k, 1)


def _features(
    q: Tensor, k: Tensor, mask: Tensor | None, scale: float | None, feature_map: FeatureMap
) -> tuple[Tensor, Tensor]:
    """$\\phi(\\tau q)$ and $\\phi(k)$ (padded keys zeroed)."""
    phi_q = feature_map(q if scale is None else q * float(scale))  # (B, H, N_q, d_phi)
    phi_k = feature_map(k)  # (B, H, N_k, d_phi)
    if mask is not None:
        phi_k = phi_k * _key_keep(mask, q, k)
    return phi_q, phi_k


# -- the O(N^2) oracle ----------------------------------------------------------------------------------


def kernel_attention_naive(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
) -> Tensor:
    r"""The kernelised formula with the full $N_q \times N_k$ matrix
    $A_{ij} = \phi(q_i)^\top \phi(k_j)$ (zeroed where masked):
    $V'_i = \sum_j A_{ij} v_j / (\sum_j A_{ij} + \varepsilon)$. $O(N^2)$: the test oracle."""
    _check(q, k, v, mask, scale, feature_map, eps)
    phi_q, phi_k = _features(q, k, mask, scale, feature_map)
    a = phi_q @ phi_k.transpose(-2, -1)  # (B, H, N_q, N_k)
    if causal:
        a = a * causal_mask(q.shape[2], k.shape[2], device=q.device)
    return (a @ v) / (a.sum(dim=-1, keepdim=True) + eps)  # (B, H, N_q, d_v)


# -- parallel and causal forms ------------------------------------------------------------------------------


def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
    chunk_size: int = 64,
    causal_form: str = "chunked",
) -> Tensor:
    r"""Linear attention (Katharopoulos et al. 2020): the factorised form (§3.2) when
    ``causal=False``, the cumulative-sum form (§3.3) when ``causal=True``. ``O(N d_phi d_v)`` time.

    ``chunk_size`` (causal only) is the chunk length $C$ of the prefix sums and ``causal_form``
    picks ``"chunked"`` (masked $C \times C$ products, the default) or ``"cumsum"`` (literal prefix
    sums, ``(B, H, C, d_phi, d_v)`` states at once). See the module docstring for ``mask`` and ``scale``.
    """
    _check(q, k, v, mask, scale, feature_map, eps)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if causal_form not in ("chunked", "cumsum"):
        raise ValueError(f"causal_form must be 'chunked' or 'cumsum'; got {causal_form!r}")
    phi_q, phi_k = _features(q, k, mask, scale, feature_map)
    if not causal:
        s = phi_k.transpose(-2, -1) @ v  # S = sum_j phi(k_j) v_j^T, (B, H, d_phi, d_v)
        z = phi_k.sum(dim=2)  # z = sum_j phi(k_j), (B, H, d_phi)
        num = phi_q @ s  # (B, H, N_q, d_v)
        den = (phi_q @ z[..., None]) + eps  # (B, H, N_q, 1)
        return num / den
    if causal_form == "chunked":
        return _causal_chunked(phi_q, phi_k, v, eps, int(chunk_size))
    return _causal_cumsum(phi_q, phi_k, v, eps, int(chunk_size))


def _chunks(phi_q: Tensor, phi_k: Tensor, v: Tensor, chunk: int):
    """Per key chunk $[c_0, c_1)$: (c0, c1, its keys, its values, the queries whose prefix ends in it, their first index).

    The pieces come from ``split`` rather than one slice per chunk: the backward of ``split`` is one concatenation,
    while every slice's backward writes a zero tensor as long as the whole input, which would make the backward
    $O(N^2 d / C)$ instead of linear in $N$."""
    n_q, n_k = phi_q.shape[2], v.shape[2]
    offset = n_k - n_q  # query i reads the prefix ending at key t = i + offset
    bounds = [(c0, min(c0 + chunk, n_k)) for c0 in range(0, n_k, chunk)]
    q_ranges = [(max(c0 - offset, 0), max(min(c1 - offset, n_q), max(c0 - offset, 0))) for c0, c1 in bounds]
    lead = min(max(-offset, 0), n_q)  # queries before the first key see nothing
    q_parts = phi_q.split([lead] + [i1 - i0 for i0, i1 in q_ranges], dim=2)[1:]
    k_parts, v_parts = phi_k.split(chunk, dim=2), v.split(chunk, dim=2)
    for (c0, c1), pk, vc, pq, (i0, _) in zip(bounds, k_parts, v_parts, q_parts, q_ranges, strict=True):
        yield c0, c1, pk, vc, pq, i0


def _causal_chunked(phi_q: Tensor, phi_k: Tensor, v: Tensor, eps: float, chunk: int) -> Tensor:
    """§3.3 chunk-wise: carried state $S, z$ plus a masked kernel matrix inside each chunk."""
    b, h, n_q, d_phi = phi_q.shape
    n_k, d_v = v.shape[2], v.shape[3]
    offset = n_k - n_q  # query i reads the prefix ending at key t = i + offset
    s = phi_k.new_zeros(b, h, d_phi, d_v)  # S after the keys before this chunk
    z = phi_k.new_zeros(b, h, d_phi)  # z after the keys before this chunk
    outs: list[Tensor] = []
    if offset < 0:  # the first -offset queries see no key at all
        outs.append(v.new_zeros(b, h, min(-offset, n_q), d_v))
    for c0, c1, pk, vc, pq, i0 in _chunks(phi_q, phi_k, v, chunk):
        # pk (B, H, C, d_phi), vc (B, H, C, d_v); pq (B, H, n, d_phi): the queries whose prefix ends in this chunk
        i1 = i0 + pq.shape[2]
        if i1 > i0:
            pos = torch.arange(i0, i1, device=v.device)[:, None] + offset  # (n, 1) query positions
            keys = torch.arange(c0, c1, device=v.device)[None, :]  # (1, C)
            a = (pq @ pk.transpose(-2, -1)) * (keys <= pos)  # phi(q_i)^T phi(k_j), j <= i, (B, H, n, C)
            num = pq @ s + a @ vc  # phi(q_i)^T S_i, (B, H, n, d_v)
            den = pq @ z[..., None] + a.sum(dim=-1, keepdim=True) + eps  # phi(q_i)^T z_i + eps, (B, H, n, 1)
            outs.append(num / den)
        s = s + pk.transpose(-2, -1) @ vc  # S += sum_{j in chunk} phi(k_j) v_j^T
        z = z + pk.sum(dim=2)
    return torch.cat(outs, dim=2)  # (B, H, N_q, d_v)


def _causal_cumsum(phi_q: Tensor, phi_k: Tensor, v: Tensor, eps: float, chunk: int) -> Tensor:
    """§3.3: prefix sums of $\\phi(k_j) v_j^T$ and $\\phi(k_j)$, chunk by chunk over the keys."""
    b, h, n_q, d_phi = phi_q.shape
    n_k, d_v = v.shape[2], v.shape[3]
    offset = n_k - n_q  # query i reads the prefix ending at key t = i + offset
    s = phi_k.new_zeros(b, h, d_phi, d_v)  # S after the keys before this chunk
    z = phi_k.new_zeros(b, h, d_phi)  # z after the keys before this chunk
    outs: list[Tensor] = []
    if offset < 0:  # the first -offset queries see no key at all
        outs.append(v.new_zeros(b, h, min(-offset, n_q), d_v))
    for c0, _c1, pk, vc, pq, i0 in _chunks(phi_q, phi_k, v, chunk):
        # pk (B, H, C, d_phi), vc (B, H, C, d_v); pq (B, H, n, d_phi): the queries whose prefix ends in this chunk
        i1 = i0 + pq.shape[2]
        if i1 > i0:
            kv = pk[..., :, None] * vc[..., None, :]  # phi(k_j) v_j^T, (B, H, C, d_phi, d_v)
            s_pre = s[:, :, None] + kv.cumsum(dim=2)  # S_t for t in the chunk, (B, H, C, d_phi, d_v)
            z_pre = z[:, :, None] + pk.cumsum(dim=2)  # z_t, (B, H, C, d_phi)
            t0, t1 = i0 + offset - c0, i1 + offset - c0  # the rows of the chunk these queries read
            num = torch.einsum("bhnf,bhnfe->bhne", pq, s_pre[:, :, t0:t1])  # phi(q_i)^T S_i, (B, H, n, d_v)
            den = (pq * z_pre[:, :, t0:t1]).sum(dim=-1, keepdim=True) + eps  # phi(q_i)^T z_i + eps
            outs.append(num / den)
            s, z = s_pre[:, :, -1], z_pre[:, :, -1]
        else:  # no query reads inside this chunk: just add it to the state
            s = s + pk.transpose(-2, -1) @ vc
            z = z + pk.sum(dim=2)
    return torch.cat(outs, dim=2)  # (B, H, N_q, d_v)


# -- recurrent form -----------------------------------------------------------------------------------------


def linear_attention_init_state(
    batch: int, heads: int, d_phi: int, d_v: int, *, dtype: torch.dtype = torch.float32, device=None
) -> LinearAttentionState:
    """The empty state ($S = 0$, $z = 0$): no key seen yet."""
    return LinearAttentionState(
        torch.zeros(batch, heads, d_phi, d_v, dtype=dtype, device=device),
        torch.zeros(batch, heads, d_phi, dtype=dtype, device=device),
    )


def linear_attention_state(
    k: Tensor, v: Tensor, *, mask: Tensor | None = None, feature_map: FeatureMap = elu_feature_map
) -> LinearAttentionState:
    r"""The state after reading keys ``k (B, H, N, d)`` and values ``v (B, H, N, d_v)``:
    $S = \sum_j \phi(k_j) v_j^\top$, $z = \sum_j \phi(k_j)$ (a prompt's summary, for generation)."""
    check_attention_args(k, k, v)
    if not callable(feature_map):
        raise TypeError(f"feature_map must be callable; got {type(feature_map).__name__}")
    phi_k = feature_map(k)  # (B, H, N, d_phi)
    if mask is not None:
        phi_k = phi_k * _key_keep(mask, k, k)
    return LinearAttentionState(phi_k.transpose(-2, -1) @ v, phi_k.sum(dim=2))


def linear_attention_step(
    state: LinearAttentionState,
    q_t: Tensor,
    k_t: Tensor,
    v_t: Tensor,
    *,
    scale: float | None = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
) -> tuple[Tensor, LinearAttentionState]:
    r"""One step of the RNN (§3.4 of the paper):

    $S_t = S_{t-1} + \phi(k_t) v_t^\top$, $z_t = z_{t-1} + \phi(k_t)$,
    $V'_t = \phi(\tau q_t)^\top S_t / (\phi(\tau q_t)^\top z_t + \varepsilon)$.

    ``q_t, k_t (B, H, d)``, ``v_t (B, H, d_v)``; returns ``(out_t (B, H, d_v), new_state)``.
    """
    for name, t in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)):
        if not isinstance(t, Tensor) or t.dim() != 3:
            raise ValueError(f"{name} must be a tensor of shape (batch, heads, dim); got {getattr(t, 'shape', t)!r}")
    check_attention_args(q_t[:, :, None], k_t[:, :, None], v_t[:, :, None], scale=scale)
    s, z = state
    if s.shape[:2] != q_t.shape[:2] or s.shape[-1] != v_t.shape[-1]:
        raise ValueError(
            f"state.s has shape {tuple(s.shape)}, which does not fit (batch, heads) = {tuple(q_t.shape[:2])} "
            f"and d_v = {v_t.shape[-1]}"
        )
    phi_q = feature_map(q_t if scale is None else q_t * float(scale))  # (B, H, d_phi)
    return _step(state, phi_q, feature_map(k_t), v_t, eps)


def _step(
    state: LinearAttentionState, phi_q: Tensor, phi_k: Tensor, v_t: Tensor, eps: float
) -> tuple[Tensor, LinearAttentionState]:
    """The recurrence on features: phi_q, phi_k (B, H, d_phi), v_t (B, H, d_v)."""
    s = state.s + phi_k[..., :, None] * v_t[..., None, :]  # S_t = S_{t-1} + phi(k_t) v_t^T, (B, H, d_phi, d_v)
    z = state.z + phi_k  # z_t = z_{t-1} + phi(k_t), (B, H, d_phi)
    num = (phi_q[..., None, :] @ s)[..., 0, :]  # phi(q_t)^T S_t, (B, H, d_v)
    den = (phi_q * z).sum(dim=-1, keepdim=True) + eps  # phi(q_t)^T z_t + eps, (B, H, 1)
    return num / den, LinearAttentionState(s, z)


def linear_attention_recurrent(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = True,
    mask: Tensor | None = None,
    scale: float | None = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
    state: LinearAttentionState | None = None,
) -> Tensor:
    r"""Causal linear attention as an RNN: :func:`linear_attention_step` once per position.

    Needs ``N_q == N_k`` (each step reads one query and one key). ``state`` carries keys read
    before ``k`` (e.g. :func:`linear_attention_state` of a prompt); with it, the result equals
    :func:`linear_attention` with ``causal=True`` on the concatenated keys. $O(N)$ sequential
    steps: slow in Python, but it is the form used for generation.
    """
    if not causal:
        raise ValueError("causal must be True: the recurrent form of linear attention is causal by construction")
    _check(q, k, v, mask, scale, feature_map, eps)
    if q.shape[2] != k.shape[2]:
        raise ValueError(
            f"q has seq_q = {q.shape[2]} but k has seq_k = {k.shape[2]}; the recurrent form needs them equal "
            "(pass earlier keys as state=linear_attention_state(...))"
        )
    b, h, n, _ = q.shape
    phi_q, phi_k = _features(q, k, mask, scale, feature_map)  # (B, H, N, d_phi) each; padded keys zeroed
    if state is None:
        state = linear_attention_init_state(b, h, phi_k.shape[-1], v.shape[-1], dtype=v.dtype, device=v.device)
    outs = []
    for t in range(n):
        out_t, state = _step(state, phi_q[:, :, t], phi_k[:, :, t], v[:, :, t], eps)
        outs.append(out_t)
    return torch.stack(outs, dim=2)  # (B, H, N, d_v)
