r"""Mixture-of-experts feed-forward layer: top-$k$ routing, load balancing, router z-loss, capacity.

Shazeer et al. 2017 (sparsely-gated MoE, noisy top-$k$ gating); Lepikhin et al. 2020 (GShard,
capacity); Fedus, Zoph, Shazeer 2021 (Switch Transformer, load-balancing loss); Zoph et al. 2022
(ST-MoE, router z-loss).

**Routing.** For token $x_t$ ($t = 1..T$) and $E$ experts, the router's logits are
$h_t = x_t W_r \in \mathbb R^E$; with noisy gating (training only) $h_t \mathrel{+}=
\varepsilon_t \odot \mathrm{softplus}(x_t W_{\text{noise}})$, $\varepsilon_t \sim \mathcal N(0, I)$
drawn from an explicit generator. The gate probabilities are $p_t = \mathrm{softmax}(h_t)$; each
token goes to the $k$ experts of largest $p_{t,i}$ with weights $g_{t,i} = p_{t,i}$ (optionally
renormalised over the chosen $k$), and the layer returns

$$y_t = \sum_{i \in \mathrm{TopK}(p_t)} g_{t,i}\, \mathrm{FFN}_i(x_t)\cdot \mathbb 1[\text{slot kept}].$$

**Capacity.** Each expert processes at most $C = \lceil \tfrac{kT}{E}\cdot \mathrm{cf} \rceil$
tokens (capacity factor cf; ``None`` means no limit). Slots are filled in priority order: every
token's first choice (tokens in order), then every second choice, and so on; an assignment that
finds its expert full is dropped. A token whose assignments are all dropped gets $y_t = 0$, so
in a residual block $h + \mathrm{MoE}(h)$ it passes through unchanged.

**Auxiliary losses** (exposed as ``aux_loss`` after each forward, which
:meth:`shiyan.nn.lm.TransformerLM.aux_loss` collects):

* Switch load balancing, $\mathcal L_{\text{bal}} = E \sum_{i=1}^{E} f_i P_i$ with
  $f_i = \frac{1}{kT}\sum_t \mathbb 1[i \in \mathrm{TopK}(p_t)]$ (share of the routed assignments,
  counted before capacity drops; for $k = 1$ Switch's fraction of tokens) and
  $P_i = \frac1T \sum_t p_{t,i}$. It equals 1 under perfectly uniform routing, and only $P$
  carries gradient;
* router z-loss, $\mathcal L_z = \frac1T \sum_t \big(\log\sum_i e^{h_{t,i}}\big)^2$, which keeps
  the logits small.

**Sparse compute.** Experts run only on their routed tokens: the kept assignments are grouped by
expert, each expert's tokens are gathered with an index, and the weighted outputs are added back
with ``index_add_``; no expert sees a token that was not routed to it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiyan.nn.activations import GELU, FeedForward
from shiyan.nn.init import linear

__all__ = [
    "MoEFeedForward",
    "Routing",
    "expert_capacity",
    "load_balancing_loss",
    "route_top_k",
    "router_z_loss",
]


def expert_capacity(n_tokens: int, n_experts: int, k: int, capacity_factor: float | None) -> int:
    r"""$C = \lceil kT/E \cdot \mathrm{cf} \rceil$ slots per expert; ``None`` gives $kT$ (never full)."""
    for name, val in (("n_tokens", n_tokens), ("n_experts", n_experts), ("k", k)):
        if isinstance(val, bool) or not isinstance(val, int) or val < (0 if name == "n_tokens" else 1):
            raise ValueError(f"{name} must be a positive int; got {val!r}")
    if capacity_factor is None:
        return k * n_tokens
    if not (isinstance(capacity_factor, int | float) and math.isfinite(capacity_factor) and capacity_factor > 0):
        raise ValueError(f"capacity_factor must be a finite number > 0 or None; got {capacity_factor!r}")
    return math.ceil(k * n_tokens / n_experts * capacity_factor)


class Routing(NamedTuple):
    """Top-k routing of T tokens: ``experts`` (T, k) expert ids, ``gates`` (T, k) weights,
    ``keep`` (T, k) bool (False: dropped by capacity), ``capacity`` the per-expert limit C."""

    experts: Tensor
    gates: Tensor
    keep: Tensor
    capacity: int


def route_top_k(probs: Tensor, k: int, capacity: int, *, renormalize: bool = False) -> Routing:
    """Choose the top-``k`` experts of each row of ``probs`` (T, E) and apply the capacity limit in
    priority order (all first choices in token order, then all second choices, ...)."""
    if probs.dim() != 2:
        raise ValueError(f"probs must be (tokens, experts); got shape {tuple(probs.shape)}")
    T, E = probs.shape
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= E:
        raise ValueError(f"k must be an int in [1, n_experts={E}]; got {k!r}")
    gates, experts = probs.topk(k, dim=-1)  # (T, k)
    if renormalize:
        gates = gates / gates.sum(dim=-1, keepdim=True)
    order = experts.T.reshape(-1)  # (k·T,) choice-major priority
    seen = F.one_hot(order, E).cumsum(dim=0)  # (k·T, E): assignments to each expert so far
    slot = seen.gather(1, order[:, None])[:, 0] - 1  # (k·T,) position in its expert's buffer
    keep = (slot < capacity).view(k, T).T  # (T, k)
    return Routing(experts, gates, keep, capacity)


def load_balancing_loss(probs: Tensor, experts: Tensor, n_experts: int | None = None) -> Tensor:
    r"""Switch's $E\sum_i f_i P_i$: ``probs`` (T, E) router probabilities, ``experts`` (T, k) chosen ids."""
    if probs.dim() != 2 or experts.dim() != 2 or experts.shape[0] != probs.shape[0]:
        raise ValueError(
            f"probs (T, E) and experts (T, k) must share T; got {tuple(probs.shape)}, {tuple(experts.shape)}"
        )
    E = probs.shape[1] if n_experts is None else n_experts
    counts = torch.zeros(E, dtype=probs.dtype, device=probs.device).index_add_(
        0, experts.reshape(-1), torch.ones(experts.numel(), dtype=probs.dtype, device=probs.device)
    )  # (E,)
    f = counts / experts.numel()  # (E,) share of assignments, no gradient
    P = probs.mean(dim=0)  # (E,)
    return E * (f * P).sum()


def router_z_loss(logits: Tensor) -> Tensor:
    r"""ST-MoE's $\frac1T\sum_t (\log\sum_i e^{h_{t,i}})^2$ for router logits (T, E)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (tokens, experts); got shape {tuple(logits.shape)}")
    return torch.logsumexp(logits, dim=-1).square().mean()


class MoEFeedForward(nn.Module):
    r"""Mixture of ``n_experts`` feed-forward networks with top-``k`` routing (module docstring).

    ``forward(x (..., d)) -> (..., d)``. After each forward: ``aux_loss`` =
    ``balance_coef`` $\cdot\mathcal L_{\text{bal}}$ + ``z_coef`` $\cdot\mathcal L_z$ (with gradient),
    and ``stats`` (detached): ``load`` (E,) kept tokens per expert, ``routed`` (E,) assignments
    before the capacity limit, ``dropped_fraction`` of the $kT$ assignments, ``balance_loss``,
    ``z_loss``, ``capacity``.

    Args:
        d_model: width $d$.
        d_ff: hidden width of each expert.
        n_experts: $E$.
        k: experts per token.
        capacity_factor: cf (``None``: unlimited).
        noisy_gating: add $\varepsilon \odot \mathrm{softplus}(xW_{\text{noise}})$ to the logits in
            training mode; needs ``noise_generator``.
        noise_generator: the ``torch.Generator`` that draws $\varepsilon$.
        renormalize: divide the $k$ gates by their sum.
        balance_coef, z_coef: weights of the two auxiliary losses.
        activation, bias: of the experts' FFNs (default GELU, biases on).
        generator: draws the initial weights.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        n_experts: int,
        k: int = 1,
        *,
        capacity_factor: float | None = None,
        noisy_gating: bool = False,
        noise_generator: torch.Generator | None = None,
        renormalize: bool = False,
        balance_coef: float = 0.01,
        z_coef: float = 0.0,
        activation=None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(n_experts, bool) or not isinstance(n_experts, int) or n_experts < 1:
            raise ValueError(f"n_experts must be a positive int; got {n_experts!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_experts:
            raise ValueError(f"k must be an int in [1, n_experts={n_experts}]; got {k!r}")
        expert_capacity(1, n_experts, k, capacity_factor)  # validates capacity_factor
        if noisy_gating and not isinstance(noise_generator, torch.Generator):
            raise ValueError("noisy_gating=True needs an explicit noise_generator (a torch.Generator)")
        for name, val in (("balance_coef", balance_coef), ("z_coef", z_coef)):
            if not (isinstance(val, int | float) and math.isfinite(val) and val >= 0):
                raise ValueError(f"{name} must be a finite number >= 0; got {val!r}")
        self.d_model, self.n_experts, self.k = d_model, n_experts, k
        self.capacity_factor = capacity_factor
        self.noisy_gating, self.noise_generator = noisy_gating, noise_generator
        self.renormalize = renormalize
        self.balance_coef, self.z_coef = float(balance_coef), float(z_coef)
        self.router = linear(d_model, n_experts, bias=False, generator=generator)  # W_r
        self.noise = linear(d_model, n_experts, bias=False, generator=generator) if noisy_gating else None
        self.experts = nn.ModuleList(
            FeedForward(d_model, d_ff, activation=activation or GELU(), bias=bias, generator=generator)
            for _ in range(n_experts)
        )
        self.aux_loss: Tensor | None = None
        self.stats: dict[str, Tensor | int] = {}

    def router_logits(self, x: Tensor) -> Tensor:
        """$h = xW_r$ (+ the gating noise in training mode); x (T, d) -> (T, E)."""
        h = self.router(x)  # (T, E)
        if self.noise is not None and self.training:
            eps = torch.randn(h.shape, generator=self.noise_generator, device=h.device, dtype=h.dtype)
            h = h + eps * F.softplus(self.noise(x))
        return h

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (..., d_model={self.d_model}); got {getattr(x, 'shape', type(x).__name__)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        tokens = x.reshape(-1, self.d_model)  # (T, d)
        T, E = tokens.shape[0], self.n_experts
        logits = self.router_logits(tokens)  # (T, E)
        probs = torch.softmax(logits, dim=-1)  # (T, E)
        capacity = expert_capacity(T, E, self.k, self.capacity_factor)
        r = route_top_k(probs, self.k, capacity, renormalize=self.renormalize)
        token_of = torch.arange(T, device=x.device).repeat(self.k)  # (k·T,) choice-major, as in route_top_k
        expert_of = r.experts.T.reshape(-1)  # (k·T,)
        gate_of = r.gates.T.reshape(-1)  # (k·T,)
        kept = r.keep.T.reshape(-1)  # (k·T,)
        out = torch.zeros_like(tokens)  # (T, d)
        load = torch.zeros(E, dtype=torch.long)
        for i, expert in enumerate(self.experts):
            sel = torch.nonzero((expert_of == i) & kept)[:, 0]  # this expert's kept assignments
            load[i] = sel.numel()
            if sel.numel() == 0:
                continue
            idx = token_of[sel]  # (n_i,) token ids
            y = expert(tokens[idx]) * gate_of[sel, None]  # (n_i, d): gathered, computed, weighted
            out = out.index_add(0, idx, y.to(out.dtype))  # scatter back
        bal = load_balancing_loss(probs, r.experts, E)
        z = router_z_loss(logits)
        self.aux_loss = self.balance_coef * bal + self.z_coef * z
        self.stats = {
            "load": load,
            "routed": torch.bincount(expert_of.detach().cpu(), minlength=E),
            "dropped_fraction": 1.0 - kept.float().mean().detach(),
            "balance_loss": bal.detach(),
            "z_loss": z.detach(),
            "capacity": capacity,
        }
        return out.view(x.shape)
