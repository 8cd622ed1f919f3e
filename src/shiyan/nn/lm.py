r"""The one decoder-only Transformer language model every sequence topic shares.

A stack of $L$ blocks over token embeddings (Vaswani et al. 2017; GPT-2's decoder-only form):

$$h^{(0)} = E[x] \;(+\, P),\qquad
  h^{(\ell)} = \mathrm{Block}_\ell(h^{(\ell-1)}),\qquad
  \mathrm{logits} = \mathrm{Norm}(h^{(L)})\, W_{\text{out}}$$

with, in the pre-norm form (GPT-2 / LLaMA), $u = h + \mathrm{Attn}(\mathrm{Norm}(h))$,
$h' = u + \mathrm{FFN}(\mathrm{Norm}(u))$, and in the post-norm form of the original paper
$u = \mathrm{Norm}(h + \mathrm{Attn}(h))$, $h' = \mathrm{Norm}(u + \mathrm{FFN}(u))$ (no final norm).

Multi-head causal self-attention with $H$ heads of width $d_h = d/H$:
$Q, K, V = hW_Q, hW_K, hW_V$ split into heads, $\mathrm{head}_i = \mathrm{softmax}(Q_iK_i^\top/\sqrt{d_h}
+ M)V_i$ with the causal mask $M_{ts} = -\infty$ for $s > t$, output $[\mathrm{head}_1;\dots;
\mathrm{head}_H]W_O$.

What varies is injected, never copied:

* ``attention`` -- any function ``(q, k, v, *, causal, mask, scale) -> out`` on
  (batch, heads, seq, d_h) tensors (naive, flash, linear, sparse, ...);
* ``ffn`` -- a factory ``d_model -> nn.Module`` (plain MLP, SwiGLU, a mixture of experts; a module
  with an ``aux_loss`` attribute contributes to :meth:`TransformerLM.aux_loss`);
* norms (LayerNorm / RMSNorm, pre / post) and positions (learned, sinusoidal, RoPE, none) by config;
* ``block`` -- optionally a factory ``(cfg, layer) -> nn.Module`` replacing the whole attention + FFN
  block (e.g. :func:`shiyan.nn.gau.gau_block`); it is called as ``block(h, rope=, cache=, layer=,
  start=)`` and may keep a recurrent decoding state in ``cache.states[layer]``.

Generation uses a KV cache: the keys and values of past positions are kept per layer, so each new
token costs one row of attention instead of a full recomputation (tested to give the same tokens).

Glossary: ``B`` batch, ``T`` new positions, ``S`` cached + new positions, ``H`` heads,
``D`` = d_model, ``Dh`` = D / H.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiyan.nn.activations import GELU, FeedForward, GeGLUFeedForward, SwiGLUFeedForward, gated_d_ff_for_equal_params
from shiyan.nn.norms import LayerNorm, RMSNorm


class AttentionFn(Protocol):
    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, mask: Tensor | None = None, scale=None
    ) -> Tensor: ...


def sdpa_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """PyTorch's fused ``scaled_dot_product_attention`` behind the shared interface (the default).
    ``mask`` is boolean, True where a query may attend to a key."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=scale)


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Shape and variant choices of :class:`TransformerLM`."""

    vocab_size: int
    """Number of token ids."""
    d_model: int = 128
    """Width D of the residual stream."""
    n_layers: int = 4
    """Number of blocks L."""
    n_heads: int = 4
    """Attention heads H (D must be divisible by H)."""
    d_ff: int | None = None
    """Hidden width of the feed-forward block (default 4·D; gated FFNs use 2/3 of it)."""
    max_seq_len: int = 256
    """Longest sequence (positions and KV cache)."""
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    """Normalisation layer."""
    norm_position: Literal["pre", "post"] = "pre"
    """Pre-norm (GPT-2, LLaMA) or post-norm (the original Transformer)."""
    positions: Literal["learned", "sinusoidal", "rope", "none"] = "learned"
    """Position information: added embeddings, or rotary on queries and keys."""
    ffn: Literal["mlp", "swiglu", "geglu"] = "mlp"
    """Feed-forward kind when no ``ffn`` factory is injected."""
    bias: bool = True
    """Biases in the linear layers."""
    dropout: float = 0.0
    """Dropout on attention output, FFN output and embeddings."""
    tie_embeddings: bool = True
    """Share the input embedding with the output projection."""
    rope_base: float = 10000.0
    """Base of RoPE's frequencies."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"LMConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError("LMConfig.positions='rope' needs an even head width d_model // n_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LMConfig.dropout must be in [0, 1); got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model


# -- positions -----------------------------------------------------------------------------------


def sinusoidal_positions(n: int, d: int, base: float = 10000.0) -> Tensor:
    r"""$P_{t,2i} = \sin(t/\text{base}^{2i/d})$, $P_{t,2i+1} = \cos(t/\text{base}^{2i/d})$; shape (n, d)."""
    t = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1)
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (ceil(d/2),)
    p = torch.zeros(n, d, dtype=torch.float64)
    p[:, 0::2] = torch.sin(t * inv)
    p[:, 1::2] = torch.cos(t * inv[: d // 2])
    return p.float()


def rope_angles(n: int, d: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    r"""RoPE (Su et al. 2021): cos and sin of $\theta_{t,i} = t\cdot\text{base}^{-2i/d}$, shape (n, d/2)."""
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv  # (n, d/2)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    r"""Rotate each pair $(x_{2i}, x_{2i+1})$ by $\theta_{t,i}$; x (B, H, T, Dh), cos/sin (T, Dh/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, T, Dh/2, 2)
    return out.flatten(-2)


# -- KV cache -------------------------------------------------------------------------------------


class KVCache:
    """Keys and values of every layer for positions ``0 .. length-1`` (preallocated)."""

    def __init__(self, cfg: LMConfig, batch: int, device=None, dtype=torch.float32):
        shape = (cfg.n_layers, batch, cfg.n_heads, cfg.max_seq_len, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0
        self.max_len = cfg.max_seq_len
        self.states: dict[int, object] = {}  # per-layer decoding state of injected blocks (GAU, FLASH)

    def update(self, layer: int, k: Tensor, v: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """Write (B, H, T, Dh) at positions ``start..start+T-1``; return all keys/values so far."""
        end = start + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; asked to write up to {end}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def truncate(self, length: int) -> None:
        """Forget positions from ``length`` on (speculative decoding rolls back rejected drafts)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"length must be in [0, {self.length}]; got {length}")
        self.length = length


def causal_mask(t_new: int, start: int, device=None) -> Tensor:
    """Boolean (T, S) mask, True where new position ``start+i`` may see key position ``j <= start+i``."""
    q_pos = torch.arange(start, start + t_new, device=device)[:, None]
    k_pos = torch.arange(start + t_new, device=device)[None, :]
    return k_pos <= q_pos


# -- blocks ---------------------------------------------------------------------------------------


class MultiHeadSelfAttention(nn.Module):
    """Causal multi-head self-attention with a fused QKV projection (rows ordered q, k, v)."""

    def __init__(self, cfg: LMConfig, attention: AttentionFn):
        super().__init__()
        self.cfg = cfg
        self.attention = attention
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, *, rope=None, cache: KVCache | None = None, layer: int = 0, start: int = 0) -> Tensor:
        B, T, D = x.shape
        H, Dh = self.cfg.n_heads, self.cfg.head_dim
        q, k, v = self.qkv(x).split(D, dim=-1)  # 3 × (B, T, D)
        q, k, v = (z.view(B, T, H, Dh).transpose(1, 2) for z in (q, k, v))  # (B, H, T, Dh)
        if rope is not None:
            cos, sin = rope[0][start : start + T], rope[1][start : start + T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            y = self.attention(q, k, v, causal=True)  # (B, H, T, Dh)
        else:
            k, v = cache.update(layer, k, v, start)  # (B, H, S, Dh)
            if T == 1:  # one new token sees every cached position
                y = self.attention(q, k, v, causal=False)
            elif start == 0:
                y = self.attention(q, k, v, causal=True)
            else:  # several new tokens after a prefix: causal, aligned at the end
                y = self.attention(q, k, v, mask=causal_mask(T, start, x.device))
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.dropout(self.out(y))


class Block(nn.Module):
    """One Transformer block with the norm placed before (pre) or after (post) each residual add."""

    def __init__(self, cfg: LMConfig, attention: AttentionFn, ffn: nn.Module, norm: Callable[[], nn.Module]):
        super().__init__()
        self.pre = cfg.norm_position == "pre"
        self.attn = MultiHeadSelfAttention(cfg, attention)
        self.ffn = ffn
        self.norm1, self.norm2 = norm(), norm()
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, **attn_kwargs) -> Tensor:
        if self.pre:
            x = x + self.attn(self.norm1(x), **attn_kwargs)
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.attn(x, **attn_kwargs))
        return self.norm2(x + self.dropout(self.ffn(x)))


def default_ffn(cfg: LMConfig) -> Callable[[int], nn.Module]:
    if cfg.ffn == "mlp":
        return lambda d: FeedForward(d, cfg.hidden, activation=GELU(), bias=cfg.bias)
    h = gated_d_ff_for_equal_params(cfg.hidden)
    if cfg.ffn == "swiglu":
        return lambda d: SwiGLUFeedForward(d, h, bias=cfg.bias)
    return lambda d: GeGLUFeedForward(d, h, bias=cfg.bias)


class TransformerLM(nn.Module):
    """Decoder-only language model; ``forward(idx) -> logits (B, T, vocab)``."""

    def __init__(
        self,
        cfg: LMConfig,
        *,
        attention: AttentionFn | None = None,
        ffn: Callable[[int], nn.Module] | None = None,
        generator: torch.Generator | None = None,
        block: Callable[[LMConfig, int], nn.Module] | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        attention = attention or sdpa_attention
        make_ffn = ffn or default_ffn(cfg)
        norm_cls = LayerNorm if cfg.norm == "layernorm" else RMSNorm

        def norm() -> nn.Module:
            return norm_cls(cfg.d_model, eps=1e-5)

        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.positions == "learned":
            self.pos_embed = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        if cfg.positions == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_positions(cfg.max_seq_len, cfg.d_model), persistent=False)
        if cfg.positions == "rope":
            cos, sin = rope_angles(cfg.max_seq_len, cfg.head_dim, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        if block is None:
            self.blocks = nn.ModuleList(Block(cfg, attention, make_ffn(cfg.d_model), norm) for _ in range(cfg.n_layers))
        else:
            self.blocks = nn.ModuleList(block(cfg, i) for i in range(cfg.n_layers))
        self.final_norm = norm() if cfg.norm_position == "pre" else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters(generator)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        r"""GPT-2's scheme: $\mathcal N(0, 0.02^2)$ weights, zero biases, and the residual output
        projections scaled by $1/\sqrt{2L}$ so the residual stream's variance does not grow with depth."""
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                scale = 1 / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("attn.out.weight", "w2.weight")) else 1
                p.normal_(0.0, std * scale, generator=generator)
            elif name.endswith("bias"):
                p.zero_()

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.embed.weight.numel()
            if hasattr(self, "pos_embed"):
                n -= self.pos_embed.weight.numel()
        return n

    def hidden_states(self, idx: Tensor, *, cache: KVCache | None = None, start: int = 0) -> Tensor:
        """The final normalised hidden states (B, T, D) -- what extra heads (Medusa, MTP) read."""
        if idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx must be an integer tensor (batch, seq); got {idx.dtype} {tuple(idx.shape)}")
        B, T = idx.shape
        if start + T > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start + T} positions exceeds max_seq_len={self.cfg.max_seq_len}")
        x = self.embed(idx)  # (B, T, D)
        pos = torch.arange(start, start + T, device=idx.device)
        if self.cfg.positions == "learned":
            x = x + self.pos_embed(pos)
        elif self.cfg.positions == "sinusoidal":
            x = x + self.pos_table[pos]
        rope = (self.rope_cos, self.rope_sin) if self.cfg.positions == "rope" else None
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, rope=rope, cache=cache, layer=i, start=start)
        if cache is not None:
            cache.length = start + T
        return self.final_norm(x)

    def forward(self, idx: Tensor, *, cache: KVCache | None = None, start: int = 0) -> Tensor:
        return self.head(self.hidden_states(idx, cache=cache, start=start))  # (B, T, vocab)

    def aux_loss(self) -> Tensor:
        """Sum of the ``aux_loss`` of injected modules (e.g. MoE load balancing) from the last forward."""
        total = torch.zeros(())
        for m in self.modules():
            if m is not self and isinstance(getattr(m, "aux_loss", None), Tensor):
                total = total + m.aux_loss
        return total

    def loss(self, idx: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token cross-entropy in nats."""
        logits = self(idx)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def new_cache(self, batch: int) -> KVCache:
        p = next(self.parameters())
        return KVCache(self.cfg, batch, device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Append ``max_new_tokens`` tokens; ``temperature=0`` is greedy. Returns (B, T + new)."""
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0; got {temperature}")
        if idx.shape[1] + max_new_tokens > self.cfg.max_seq_len:
            raise ValueError(
                f"prompt ({idx.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len={self.cfg.max_seq_len}"
            )
        was_training = self.training
        self.eval()
        cache = self.new_cache(idx.shape[0]) if use_cache else None
        out = idx
        logits = self(idx, cache=cache) if use_cache else self(idx)
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[:, -1], temperature=temperature, top_k=top_k, generator=generator)  # (B, 1)
            out = torch.cat([out, nxt], dim=1)
            if use_cache:
                logits = self(nxt, cache=cache, start=out.shape[1] - 1)
            else:
                logits = self(out)
        self.train(was_training)
        return out


def sample_next(
    logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Draw one token per row from ``softmax(logits / temperature)`` (greedy at temperature 0)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def train_char_lm(
    corpus,
    *,
    d_model: int,
    n_layers: int,
    n_heads: int,
    seq_len: int,
    batch_size: int,
    steps: int,
    lr: float,
    seed: int,
    eval_windows: int,
    generator: torch.Generator,
    attention: AttentionFn | None = None,
    **build,
):
    """Build a :class:`TransformerLM` for ``corpus`` (a :class:`shiyan.data.text.CharCorpus`) with the given
    attention (and ``block=`` / ``ffn=`` factories in ``build``) and train it with the shared loop: AdamW,
    warm-up over the first tenth of the steps, cosine decay. Returns :class:`shiyan.core.train.CorpusRun`.
    The attention comparisons train every variant through this one call, so only the variant differs."""
    from shiyan.core.train import TrainConfig, train_lm_on_corpus

    lm_cfg = LMConfig(
        vocab_size=corpus.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, max_seq_len=seq_len
    )
    model = TransformerLM(lm_cfg, attention=attention, generator=generator, **build)
    tcfg = TrainConfig(steps=steps, lr=lr, warmup_steps=max(1, steps // 10), eval_every=0, seed=seed)
    return train_lm_on_corpus(model, corpus, tcfg, seq_len=seq_len, batch_size=batch_size, eval_windows=eval_windows)


def train_char_lm_from(settings, corpus, *, generator: torch.Generator, attention: AttentionFn | None = None,
                       n_layers: int | None = None, **build) -> dict:  # fmt: skip
    """:func:`train_char_lm` with the sizes read from ``settings`` (any object with ``d_model``, ``n_layers``,
    ``n_heads``, ``seq_len``, ``batch_size``, ``steps``, ``lr``, ``seed`` and ``eval_batches``, such as an attention
    topic's config), so the attention comparisons share one set-up. Returns the held-out loss, the training seconds
    and the loss curve."""
    out = train_char_lm(
        corpus,
        attention=attention,
        generator=generator,
        d_model=settings.d_model,
        n_layers=n_layers or settings.n_layers,
        n_heads=settings.n_heads,
        seq_len=settings.seq_len,
        batch_size=settings.batch_size,
        steps=settings.steps,
        lr=settings.lr,
        seed=settings.seed,
        eval_windows=settings.eval_batches * settings.batch_size,
        **build,
    )
    return {"held_out_loss": out.held_out_loss, "seconds": out.seconds, "loss_curve": out.loss_curve}
