"""S4 -- Linear attention (Katharopoulos et al. 2020): three forms of one function, where it overtakes
softmax attention in cost, and what it costs a character-level language model."""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.attention import (
    kernel_attention_naive,
    linear_attention,
    linear_attention_recurrent,
    naive_attention,
)
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.data.text import char_corpus
from shiyan.nn.lm import sdpa_attention as sdpa
from shiyan.nn.lm import train_char_lm_from

META = TopicMeta(
    slug="linear-attention",
    category="LLM",
    date=dt.date(2025, 2, 17),
    title_en="Linear attention: a Transformer that is an RNN",
    title_zh="线性注意力：也是 RNN 的 Transformer",
    summary_en=(
        "Replace exp(q·k) by φ(q)·φ(k) and the sums over keys factor out: O(N) instead of O(N²), and causal attention "
        "becomes a recurrence with a fixed-size state. The parallel, cumulative-sum and recurrent forms checked "
        "against each other, the sequence length where linear attention overtakes softmax measured on CPU, and the "
        "quality it gives up on a Shakespeare language model."
    ),
    summary_zh=(
        "把 exp(q·k) 换成 φ(q)·φ(k)，对键的求和就能提出来：代价从 O(N²) 降到 O(N)，因果注意力变成一个状态大小固定的递推。"
        "并行、累加和、递推三种形式相互校验；在 CPU 上测出线性注意力超过 softmax 的序列长度；"
        "并在莎士比亚语言模型上测出它损失的质量。"
    ),
    implements=("shiyan.attention.linear",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    check_len: int = 77
    """Sequence length of the agreement checks (float64)."""
    cost_lengths: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096, 8192)
    """Sequence lengths N of the cost sweep."""
    head_dim: int = 32
    """Head dimension d of the cost sweep."""
    cost_heads: int = 4
    """Heads of the cost sweep (one batch element)."""
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
    batch_size: int = 16
    """Sequences per training step."""
    steps: int = 300
    """Training steps of both models (the same batches for both)."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, warm-up + cosine)."""
    eval_batches: int = 8
    """Held-out batches (of batch_size sequences) behind each held-out loss."""
    max_gap: float = 0.05
    """Claimed bound on (linear - softmax) held-out loss, nats per character."""
    bench_len: int = 4096
    """N of the benchmark rows."""
    bench_repeats: int = 3
    """Timed repeats per benchmark row (the best is kept)."""

    def validate(self) -> None:
        if self.check_len < 2:
            raise ConfigError(f"check_len must be >= 2; got {self.check_len}")
        if len(self.cost_lengths) < 2 or any(n < 1 for n in self.cost_lengths):
            raise ConfigError(f"cost_lengths must hold at least two positive lengths; got {self.cost_lengths}")
        for name in ("head_dim", "cost_heads", "seq_len", "d_model", "n_layers", "n_heads", "batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model must be divisible by n_heads; got {self.d_model} and {self.n_heads}")
        if self.text_chars < 20 * self.seq_len:
            raise ConfigError(f"text_chars must be at least 20 * seq_len; got {self.text_chars}")
        if not self.lr > 0 or not self.max_gap > 0:
            raise ConfigError("lr and max_gap must be > 0")
        if self.eval_batches < 1 or self.bench_len < 1 or self.bench_repeats < 1:
            raise ConfigError("eval_batches, bench_len and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            cost_lengths=(128, 512, 1024, 2048),
            text_chars=200_000,
            seq_len=64,
            d_model=32,
            n_heads=2,
            batch_size=8,
            steps=60,
            eval_batches=2,
            bench_len=2048,
            bench_repeats=2,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(cost_lengths=(128, 256, 512, 1024, 2048, 4096, 8192, 16384), text_chars=5_000_000, steps=2000)


# -- the character-level language model (the same set-up as the other attention topics) ------------------------


def _train_lm(cfg: Config, ctx: RunContext, attention, corpus, n_layers: int | None = None, **build) -> dict:
    """The shared LM with this attention (or ``block=`` / ``ffn=``), trained on the corpus by the shared loop."""
    gen = ctx.torch_generator("lm-init")
    return train_char_lm_from(cfg, corpus, generator=gen, attention=attention, n_layers=n_layers, **build)


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _forward_time(fn, q, k, v, causal: bool, repeats: int = 2) -> float:
    """CPU seconds of this thread (torch runs on one thread here), so the fitted exponents do not depend on
    what else the machine is doing."""
    with torch.no_grad():
        return best_time(
            functools.partial(fn, q, k, v, causal=causal), repeats=repeats, warmup=1, clock=time.thread_time
        )


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    gen = ctx.torch_generator("inputs")

    # 1. three forms, one function (float64)
    n = cfg.check_len
    q, k, v = (torch.randn(2, 3, n, 16, generator=gen, dtype=torch.float64) for _ in range(3))
    parallel_err = float((linear_attention(q, k, v) - kernel_attention_naive(q, k, v)).abs().max())
    causal = linear_attention(q, k, v, causal=True, chunk_size=16)
    cumsum_err = float((causal - kernel_attention_naive(q, k, v, causal=True)).abs().max())
    recurrent_err = float((linear_attention_recurrent(q, k, v) - causal).abs().max())
    for name, err, what_en, what_zh in (
        ("parallel_equals_kernel_formula", parallel_err, "parallel (non-causal) form", "并行（非因果）形式"),
        ("cumsum_equals_kernel_formula", cumsum_err, "causal cumulative-sum form", "因果累加和形式"),
        (
            "recurrent_equals_cumsum",
            recurrent_err,
            "recurrent form (one step per token)",
            "递推形式（每个 token 一步）",
        ),
    ):
        res.metric(name, err, description="max abs difference, float64")
        ref_en = "the cumulative-sum form" if "recurrent" in name else "the O(N²) kernel formula"
        ref_zh = "累加和形式" if "recurrent" in name else "O(N²) 的核函数公式"
        res.claim(
            name,
            f"The {what_en} equals {ref_en} (max abs difference, float64, N = {n})",
            err,
            "<=",
            1e-10,
            text_zh=f"{what_zh}与{ref_zh}一致（最大绝对差，float64，N = {n}）",
        )

    # 2. cost against N: causal forward, one batch element, cost_heads heads
    times: dict[str, list[float]] = {
        "softmax (naive)": [],
        "softmax (SDPA)": [],
        "linear": [],
        "linear, non-causal": [],
    }
    for n in ctx.progress(cfg.cost_lengths, total=len(cfg.cost_lengths), description="cost"):
        q, k, v = (torch.randn(1, cfg.cost_heads, n, cfg.head_dim, generator=gen) for _ in range(3))
        times["softmax (SDPA)"].append(_forward_time(sdpa, q, k, v, True))
        times["linear"].append(_forward_time(linear_attention, q, k, v, True))
        times["linear, non-causal"].append(_forward_time(linear_attention, q, k, v, False))
        if n <= 4096:  # the naive N x N matrices get large beyond this
            times["softmax (naive)"].append(_forward_time(naive_attention, q, k, v, True))
    ratios = np.array(times["linear"]) / np.array(times["softmax (SDPA)"])
    beats = ratios < 1
    # the crossover: the first length from which linear stays faster than SDPA up to the longest length measured
    cross = next((cfg.cost_lengths[i] for i in range(len(beats)) if beats[i:].all()), None)
    res.metric("linear_over_sdpa_time_at_max_n", float(ratios[-1]), description=f"N = {cfg.cost_lengths[-1]}")
    res.metric(
        "crossover_n", float(cross) if cross else float("nan"), description="linear (causal) beats SDPA from here"
    )
    res.claim(
        "linear_beats_softmax_at_long_n",
        f"At N = {cfg.cost_lengths[-1]}, causal linear attention's forward takes less time than SDPA's fused softmax "
        "attention (time ratio linear / SDPA)",
        float(ratios[-1]),
        "<",
        1.0,
        text_zh=f"在 N = {cfg.cost_lengths[-1]} 时，因果线性注意力的前向比 SDPA 融合的 softmax 注意力更快（时间比 线性 / SDPA）",
    )
    logn = np.log(cfg.cost_lengths[-3:])
    slope = float(np.polyfit(logn, np.log(times["linear"][-3:]), 1)[0])
    slope_sdpa = float(np.polyfit(logn, np.log(times["softmax (SDPA)"][-3:]), 1)[0])
    res.metric("linear_time_exponent", slope, description="log-log slope of linear attention's time, last 3 N")
    res.metric("sdpa_time_exponent", slope_sdpa, description="log-log slope of SDPA's time, last 3 N")
    res.claim(
        "linear_time_is_linear",
        "Over the longest lengths, causal linear attention's time grows like N^a with a <= 1.5 (wall-clock on a "
        "shared CPU; softmax attention's exponent is reported beside it)",
        slope,
        "<=",
        1.5,
        text_zh="在最长的几个长度上，因果线性注意力的时间按 N^a 增长，a <= 1.5（共享 CPU 上的实测时间；softmax 注意力的指数一并列出）",
    )

    # 3. the language model, softmax vs linear at equal steps
    data = char_corpus("shakespeare", cfg.text_chars)
    soft = _train_lm(cfg, ctx, sdpa, data)
    lin = _train_lm(cfg, ctx, linear_attention, data)
    gap = lin["held_out_loss"] - soft["held_out_loss"]
    res.metric("held_out_softmax", soft["held_out_loss"], unit="nats/char")
    res.metric("held_out_linear", lin["held_out_loss"], unit="nats/char")
    res.metric("held_out_gap", gap, unit="nats/char", description="linear - softmax")
    res.table(
        "language_model",
        ["attention", "held-out loss (nats/char)", "bits/char", "train time (s)"],
        [
            [name, r["held_out_loss"], r["held_out_loss"] / np.log(2), r["seconds"]]
            for name, r in (("softmax", soft), ("linear", lin))
        ],
        caption_en=f"Character-level Shakespeare LM ({cfg.n_layers} layers, d = {cfg.d_model}, context {cfg.seq_len}), "
        f"{cfg.steps} steps of {cfg.batch_size} sequences, same initial weights and batches; CPU, one thread.",
        caption_zh=f"字符级莎士比亚语言模型（{cfg.n_layers} 层，d = {cfg.d_model}，上下文 {cfg.seq_len}），"
        f"训练 {cfg.steps} 步、每步 {cfg.batch_size} 条序列，初始权重与批次相同；CPU 单线程。",
    )
    res.claim(
        "quality_gap_bounded",
        f"After {cfg.steps} equal steps, linear attention's held-out loss is at most {cfg.max_gap:g} nats/char above "
        "softmax attention's",
        gap,
        "<=",
        cfg.max_gap,
        text_zh=f"训练相同的 {cfg.steps} 步后，线性注意力的留出损失比 softmax 注意力高出不超过 {cfg.max_gap:g} nats/字符",
    )

    _figures(cfg, ctx, times, cross, soft, lin)
    return res


def _figures(cfg: Config, ctx: RunContext, times, cross, soft, lin) -> None:
    fig, ax = new_figure()
    for name, ts in times.items():
        ax.plot(cfg.cost_lengths[: len(ts)], ts, "o-", label=name)
    if cross:
        ax.axvline(cross, color="gray", ls="--", lw=1, label=f"crossover vs SDPA (N = {cross})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("forward time (s)")
    ax.set_title(f"Causal attention on CPU, {cfg.cost_heads} heads of d = {cfg.head_dim}")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "cost-vs-n",
        caption_en="Forward time against sequence length: softmax attention is quadratic, linear attention linear; "
        "the dashed line marks where linear attention starts to beat PyTorch's fused SDPA for good.",
        caption_zh="前向时间随序列长度的变化：softmax 注意力是平方的，线性注意力是线性的；虚线标出线性注意力开始稳定快过 PyTorch 融合 SDPA 的位置。",
    )

    fig, ax = new_figure()
    for name, r in (("softmax", soft), ("linear (elu + 1)", lin)):
        losses = r["loss_curve"]
        w = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(len(smooth)) + w, smooth, label=f"{name}: held-out {r['held_out_loss']:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/char, moving average)")
    ax.set_title("Character-level Shakespeare LM")
    ax.legend()
    ctx.save_figure(
        fig,
        "lm-curves",
        caption_en="Training loss of the same LM with softmax and with linear attention (same weights and batches).",
        caption_zh="同一个语言模型分别使用 softmax 注意力与线性注意力时的训练损失（初始权重与批次相同）。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    with torch_threads(1):
        gen = ctx.torch_generator("bench")
        n = cfg.bench_len
        q, k, v = (torch.randn(1, cfg.cost_heads, n, cfg.head_dim, generator=gen) for _ in range(3))
        rows = []
        for causal in (True, False):
            ours = _forward_time(linear_attention, q, k, v, causal, cfg.bench_repeats)
            ref = _forward_time(sdpa, q, k, v, causal, cfg.bench_repeats)
            rows.append(
                BenchRow(
                    f"linear_attention forward, causal = {causal}",
                    ours,
                    ref,
                    "F.scaled_dot_product_attention (softmax)",
                    note=f"N = {n}, {cfg.cost_heads} heads, d = {cfg.head_dim}, one thread",
                )
            )
        return rows
