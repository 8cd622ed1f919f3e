"""S5 -- Sparse attention (Child et al. 2019): local, strided and fixed patterns computed block-sparsely;
the work saved against density, and what the patterns cost a character-level language model."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.attention import computed_scores, naive_attention, pattern_mask, sparse_attention
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.data.text import char_corpus
from shiyan.nn.lm import sdpa_attention as sdpa
from shiyan.nn.lm import train_char_lm_from

META = TopicMeta(
    slug="sparse-attention",
    category="LLM",
    date=dt.date(2025, 2, 24),
    title_en="Sparse attention: local, strided and fixed patterns",
    title_zh="稀疏注意力：局部、跨步与固定模式",
    summary_en=(
        "Let each query look at O(√N) or O(w) keys instead of N: the Sparse Transformer's strided and fixed "
        "patterns and a sliding window, computed block by block without a dense N×N matrix. Checked against dense "
        "attention with the pattern's mask; the work and time saved measured against density; and the quality "
        "each pattern gives up on a Shakespeare language model."
    ),
    summary_zh=(
        "让每个查询只看 O(√N) 或 O(w) 个键而不是 N 个：Sparse Transformer 的跨步与固定模式，以及滑动窗口，"
        "按块计算，不构造稠密的 N×N 矩阵。与带模式掩码的稠密注意力对照校验；测出计算量与时间随密度的节省；"
        "并在莎士比亚语言模型上测出每种模式损失的质量。"
    ),
    implements=("shiyan.attention.sparse",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    check_len: int = 203
    """Sequence length of the equality checks (not a multiple of the block)."""
    cost_len: int = 4096
    """Sequence length N of the work / time against density sweep."""
    windows: tuple[int, ...] = (32, 64, 128, 256, 512)
    """Local-window sizes w of the density sweep."""
    head_dim: int = 32
    """Head dimension of the sweeps."""
    cost_heads: int = 2
    """Heads of the sweeps (one batch element)."""
    block: int = 64
    """Query block size of the block-sparse computation."""
    text_chars: int = 1_000_000
    """Characters of Shakespeare used by the language model (the last 10% are held out)."""
    seq_len: int = 128
    """Training context length of the language model."""
    d_model: int = 64
    """Width of the language model."""
    n_layers: int = 2
    """Transformer blocks of the language model."""
    n_heads: int = 4
    """Attention heads of the language model."""
    batch_size: int = 8
    """Sequences per training step."""
    steps: int = 150
    """Training steps of every model (the same batches for all)."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, warm-up + cosine)."""
    eval_batches: int = 8
    """Held-out batches (of batch_size sequences) behind each held-out loss."""
    lm_window: int = 32
    """Window of the local pattern in the language model."""
    lm_stride: int = 16
    """Stride of the strided and fixed patterns in the language model."""
    max_gap: float = 0.15
    """Claimed bound on (best sparse pattern - full attention) held-out loss, nats per character."""
    bench_repeats: int = 3
    """Timed repeats per benchmark row (the best is kept)."""

    def validate(self) -> None:
        if self.check_len < 2 or self.cost_len < 2:
            raise ConfigError(f"check_len and cost_len must be >= 2; got {self.check_len}, {self.cost_len}")
        if len(self.windows) < 2 or any(w < 1 or w > self.cost_len for w in self.windows):
            raise ConfigError(f"windows must hold at least two sizes in [1, cost_len]; got {self.windows}")
        if max(self.windows) < self.block:
            raise ConfigError(f"windows must include one at least as wide as block = {self.block}; got {self.windows}")
        for name in ("head_dim", "cost_heads", "block", "seq_len", "d_model", "n_layers", "n_heads", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model must be divisible by n_heads; got {self.d_model} and {self.n_heads}")
        if self.text_chars < 20 * self.seq_len:
            raise ConfigError(f"text_chars must be at least 20 * seq_len; got {self.text_chars}")
        if self.steps < 1 or self.eval_batches < 1 or self.bench_repeats < 1:
            raise ConfigError("steps, eval_batches and bench_repeats must be >= 1")
        if not self.lr > 0 or not self.max_gap > 0:
            raise ConfigError("lr and max_gap must be > 0")
        if not 1 <= self.lm_window <= self.seq_len or not 1 <= self.lm_stride <= self.seq_len:
            raise ConfigError("lm_window and lm_stride must be in [1, seq_len]")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            check_len=97,
            cost_len=2048,
            windows=(32, 128, 512),
            block=32,
            text_chars=200_000,
            seq_len=64,
            d_model=32,
            n_heads=2,
            batch_size=8,
            steps=40,
            eval_batches=2,
            lm_window=16,
            lm_stride=8,
            bench_repeats=2,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(
            cost_len=16384,
            windows=(64, 128, 256, 512, 1024, 2048, 4096),
            text_chars=5_000_000,
            batch_size=16,
            steps=2000,
        )


def _patterns(window: int, stride: int) -> dict[str, dict]:
    return {
        "local": {"pattern": "local", "window": window},
        "strided": {"pattern": "strided", "stride": stride},
        "fixed": {"pattern": "fixed", "stride": stride, "summary": max(1, stride // 8)},
    }


# -- the character-level language model (the same set-up as the other attention topics) ------------------------


def _train_lm(cfg: Config, ctx: RunContext, attention, corpus, n_layers: int | None = None, **build) -> dict:
    """The shared LM with this attention (or ``block=`` / ``ffn=``), trained on the corpus by the shared loop."""
    gen = ctx.torch_generator("lm-init")
    return train_char_lm_from(cfg, corpus, generator=gen, attention=attention, n_layers=n_layers, **build)


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _forward_time(fn, q, k, v, repeats: int = 2) -> float:
    with torch.no_grad():
        return best_time(functools.partial(fn, q, k, v, causal=True), repeats=repeats, warmup=1)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    gen = ctx.torch_generator("inputs")

    # 1. block-sparse equals dense attention with the pattern's mask, forward and backward
    n = cfg.check_len
    window, stride = max(2, n // 6), max(2, int(round(n**0.5)))
    err = 0.0
    for kw in _patterns(window, stride).values():
        for causal in (False, True):
            q, k, v = (torch.randn(2, 2, n, 16, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(3))
            g = torch.randn(2, 2, n, 16, generator=gen, dtype=torch.float64)
            ours = sparse_attention(q, k, v, causal=causal, block=cfg.block, **kw)
            mask = pattern_mask(kw["pattern"], n, **{key: val for key, val in kw.items() if key != "pattern"})
            ref = naive_attention(q, k, v, causal=causal, mask=mask)
            grads = torch.autograd.grad(ours, (q, k, v), g)
            ref_grads = torch.autograd.grad(ref, (q, k, v), g)
            err = max(err, float((ours - ref).detach().abs().max()))
            err = max(err, max(float((a - b).abs().max()) for a, b in zip(grads, ref_grads, strict=True)))
    res.metric("block_sparse_max_abs_err", err, description="outputs and gradients vs dense masked, float64")
    res.claim(
        "block_sparse_equals_masked_dense",
        f"Local, strided and fixed patterns computed block-sparsely equal dense attention with the pattern's mask, "
        f"causal and not, outputs and gradients (max abs error, float64, N = {n})",
        err,
        "<=",
        1e-10,
        text_zh=f"局部、跨步与固定模式的块稀疏计算，与带模式掩码的稠密注意力一致，因果与非因果、输出与梯度（最大绝对误差，float64，N = {n}）",
    )

    # 2. work and time against density (causal local windows at N = cost_len)
    n = cfg.cost_len
    q, k, v = (torch.randn(1, cfg.cost_heads, n, cfg.head_dim, generator=gen) for _ in range(3))
    t_dense = _forward_time(sdpa, q, k, v)
    t_naive = _forward_time(naive_attention, q, k, v)
    rows, density, computed, times = [], [], [], []
    causal_pairs = n * (n + 1) / 2
    for w in ctx.progress(cfg.windows, total=len(cfg.windows), description="density"):
        nnz = float(pattern_mask("local", n, window=w, causal=True).sum())
        work = computed_scores("local", n, window=w, causal=True, block=cfg.block)
        t = _forward_time(functools.partial(sparse_attention, pattern="local", window=w, block=cfg.block), q, k, v)
        density.append(nnz / causal_pairs)
        computed.append(work / (n * n))
        times.append(t)
        rows.append([w, nnz / causal_pairs, work / (n * n), work / nnz, t, t / t_naive, t / t_dense])
    res.table(
        "density_sweep",
        [
            "window w",
            "density (of causal pairs)",
            "scores computed / N²",
            "computed / pattern size",
            "time (s)",
            "time / naive",
            "time / SDPA",
        ],
        rows,
        caption_en=f"Causal local attention at N = {n}, {cfg.cost_heads} heads of d = {cfg.head_dim}, query blocks of "
        f"{cfg.block}, forward, one thread. Naive (dense, causal) takes {t_naive:.3g} s, SDPA {t_dense:.3g} s.",
        caption_zh=f"因果局部注意力，N = {n}，{cfg.cost_heads} 个头、d = {cfg.head_dim}，查询块大小 {cfg.block}，前向，单线程。"
        f"朴素（稠密、因果）耗时 {t_naive:.3g} 秒，SDPA {t_dense:.3g} 秒。",
    )
    overhead = max(r[3] for r in rows if r[0] >= cfg.block)
    res.metric(
        "max_computed_over_pattern", overhead, description=f"padding overhead of the block layout, w >= {cfg.block}"
    )
    res.claim(
        "work_tracks_the_pattern",
        f"For windows at least as wide as the query block ({cfg.block}), the block-sparse computation evaluates at "
        f"most 2.25 times the pattern's own number of scores (block padding), at N = {n}",
        overhead,
        "<=",
        2.25,
        text_zh=f"窗口不小于查询块（{cfg.block}）时，块稀疏计算所求的分数个数不超过模式本身大小的 2.25 倍（块的填充），N = {n}",
    )
    frac = times[0] / t_naive
    res.metric("smallest_window_time_over_naive", frac)
    res.claim(
        "sparse_faster_than_dense",
        f"With the smallest window (w = {cfg.windows[0]}, density {density[0]:.1%}), block-sparse attention takes "
        f"less than half the time of dense naive attention at N = {n}",
        frac,
        "<",
        0.5,
        text_zh=f"在最小窗口（w = {cfg.windows[0]}，密度 {density[0]:.1%}）下，N = {n} 时块稀疏注意力的耗时不到稠密朴素注意力的一半",
    )

    # 3. quality on the character-level LM
    data = char_corpus("shakespeare", cfg.text_chars)
    runs = {"full (SDPA)": _train_lm(cfg, ctx, sdpa, data)}
    for name, kw in _patterns(cfg.lm_window, cfg.lm_stride).items():
        runs[name] = _train_lm(cfg, ctx, functools.partial(sparse_attention, block=cfg.block, **kw), data)
    full = runs["full (SDPA)"]["held_out_loss"]
    lm_rows = []
    for name, r in runs.items():
        kw = _patterns(cfg.lm_window, cfg.lm_stride).get(name)
        dens = 1.0
        if kw is not None:
            mask = pattern_mask(
                kw["pattern"], cfg.seq_len, causal=True, **{a: b for a, b in kw.items() if a != "pattern"}
            )
            dens = float(mask.sum()) / (cfg.seq_len * (cfg.seq_len + 1) / 2)
        lm_rows.append([name, dens, r["held_out_loss"], r["held_out_loss"] - full, r["seconds"]])
    res.table(
        "language_model",
        ["attention", "density", "held-out loss (nats/char)", "gap to full", "train time (s)"],
        lm_rows,
        caption_en=f"Character-level Shakespeare LM ({cfg.n_layers} layers, d = {cfg.d_model}, context {cfg.seq_len}), "
        f"{cfg.steps} steps of {cfg.batch_size} sequences, same initial weights and batches; local window "
        f"{cfg.lm_window}, stride {cfg.lm_stride}.",
        caption_zh=f"字符级莎士比亚语言模型（{cfg.n_layers} 层，d = {cfg.d_model}，上下文 {cfg.seq_len}），"
        f"训练 {cfg.steps} 步、每步 {cfg.batch_size} 条序列，初始权重与批次相同；局部窗口 {cfg.lm_window}，步长 {cfg.lm_stride}。",
    )
    best_gap = min(r[3] for r in lm_rows[1:])
    res.metric("best_sparse_gap", best_gap, unit="nats/char")
    res.claim(
        "sparse_quality_close_to_full",
        f"The best sparse pattern's held-out loss is at most {cfg.max_gap:g} nats/char above full attention's",
        best_gap,
        "<=",
        cfg.max_gap,
        text_zh=f"最好的稀疏模式的留出损失比完整注意力高出不超过 {cfg.max_gap:g} nats/字符",
    )

    _figures(cfg, ctx, density, computed, times, t_naive, t_dense, runs)
    return res


def _figures(cfg: Config, ctx: RunContext, density, computed, times, t_naive, t_dense, runs) -> None:
    n = 64
    pats = _patterns(8, 8)
    fig, axes = new_figure(1, 3, figsize=(11, 4))
    for ax, (name, kw) in zip(axes, pats.items(), strict=True):
        mask = pattern_mask(kw["pattern"], n, causal=True, **{a: b for a, b in kw.items() if a != "pattern"})
        ax.imshow(mask.numpy(), cmap="Blues", interpolation="nearest")
        ax.set_title(f"{name} ({', '.join(f'{a}={b}' for a, b in kw.items() if a != 'pattern')})")
        ax.set_xlabel("key j")
        ax.set_ylabel("query i")
    ctx.save_figure(
        fig,
        "patterns",
        caption_en=f"The three causal patterns at N = {n}: which keys (columns) each query (row) may attend to.",
        caption_zh=f"N = {n} 时的三种因果模式：每个查询（行）可以关注哪些键（列）。",
    )

    fig, (ax0, ax1) = new_figure(1, 2, figsize=(10, 4))
    ax0.plot(density, computed, "o-", label="scores computed / N²")
    ax0.plot(
        density, np.array(density) * (cfg.cost_len + 1) / (2 * cfg.cost_len), "k--", lw=1, label="pattern size / N²"
    )
    ax0.set_xlabel("density of the causal local pattern")
    ax0.set_ylabel("fraction of the dense N² scores")
    ax0.legend(fontsize=8)
    ax1.plot(density, times, "o-", label="block-sparse local")
    ax1.axhline(t_naive, color="C1", ls="--", label="naive dense (causal)")
    ax1.axhline(t_dense, color="C2", ls=":", label="SDPA (causal)")
    ax1.set_xlabel("density of the causal local pattern")
    ax1.set_ylabel("forward time (s)")
    ax1.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "cost-vs-density",
        caption_en=f"Work and time against density at N = {cfg.cost_len}: the work follows the pattern (plus block "
        "padding), and the time follows the work.",
        caption_zh=f"N = {cfg.cost_len} 时计算量与时间随密度的变化：计算量跟随模式大小（外加块的填充），时间跟随计算量。",
    )

    fig, ax = new_figure()
    for name, r in runs.items():
        losses = r["loss_curve"]
        w = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(len(smooth)) + w, smooth, label=f"{name}: held-out {r['held_out_loss']:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/char, moving average)")
    ax.set_title("Character-level Shakespeare LM")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "lm-curves",
        caption_en="Training loss of the same LM with full attention and with each sparse pattern.",
        caption_zh="同一个语言模型使用完整注意力与各稀疏模式时的训练损失。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    with torch_threads(1):
        gen = ctx.torch_generator("bench")
        n = cfg.cost_len
        q, k, v = (torch.randn(1, cfg.cost_heads, n, cfg.head_dim, generator=gen) for _ in range(3))
        t_ref = _forward_time(sdpa, q, k, v, cfg.bench_repeats)
        rows = []
        w = max(1, int(round(n**0.5)))
        for name, kw in _patterns(w, w).items():
            fn = functools.partial(sparse_attention, block=cfg.block, **kw)
            rows.append(
                BenchRow(
                    f"sparse_attention {name} (w = stride = {w}), causal forward",
                    _forward_time(fn, q, k, v, cfg.bench_repeats),
                    t_ref,
                    "F.scaled_dot_product_attention (dense, causal)",
                    note=f"N = {n}, {cfg.cost_heads} heads, d = {cfg.head_dim}, one thread",
                )
            )
        return rows
