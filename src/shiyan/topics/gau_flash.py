"""S6 -- GAU and FLASH: a single-head gated attention unit, and mixed chunk attention that costs O(N)."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.core.train import TrainConfig, train
from shiyan.data.text import char_corpus, random_windows
from shiyan.nn.gau import FLASH, GatedAttentionUnit, gau_block, mixed_chunk_attention
from shiyan.nn.lm import LMConfig, TransformerLM

META = TopicMeta(
    slug="gau-flash",
    category="LLM",
    date=dt.date(2025, 2, 18),
    title_en="GAU and FLASH: one gated head, attention in linear time",
    title_zh="GAU 与 FLASH：单头门控注意力与线性时间的分块注意力",
    summary_en=(
        "The gated attention unit merges attention and the feed-forward block into one layer with a single "
        "squared-ReLU head; FLASH cuts the sequence into chunks, keeps exact attention inside each and linear "
        "attention across them. Both written from the equations, checked against a dense formulation and a "
        "token-by-token decoder, and trained against a softmax Transformer on Shakespeare."
    ),
    summary_zh=(
        "门控注意力单元（GAU）把注意力和前馈层合成一层，只用一个平方 ReLU 注意力头；FLASH 把序列切成块，"
        "块内做精确注意力、块间做线性注意力。两者都按公式实现，并与稠密矩阵写法和逐 token 解码逐一对照，"
        "再在莎士比亚文本上与 softmax Transformer 比较。"
    ),
    implements=("shiyan.nn.gau",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    n_chars: int = 400_000
    """Characters of the complete Shakespeare used (the first ones; the last 10% are held out)."""
    seq_len: int = 64
    """Training context in characters."""
    batch_size: int = 16
    """Sequences per training step."""
    steps: int = 250
    """Training steps of every model (equal steps for all)."""
    d_model: int = 64
    """Width of the residual stream of every model."""
    softmax_layers: int = 2
    """Blocks of the softmax Transformer (attention + 4d MLP each, about 12 d^2 parameters)."""
    gau_layers: int = 4
    """GAU / FLASH layers (about 6 d^2 parameters each, so twice as many as softmax blocks)."""
    s: int = 32
    """Width s of the shared Z of GAU and FLASH."""
    chunk_size: int = 16
    """Chunk size c of FLASH in the language model."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, warm-up + cosine)."""
    eval_batches: int = 8
    """Held-out batches of the evaluation (fixed)."""
    timing_lengths: tuple[int, ...] = (512, 1024, 2048, 4096)
    """Sequence lengths N of the cost-vs-length measurement."""
    timing_chunk: int = 64
    """Chunk size of FLASH in the cost-vs-length measurement."""
    timing_repeats: int = 3
    """Timed forward passes per length (the best is kept)."""

    def validate(self) -> None:
        if self.n_chars < 10 * self.seq_len * self.batch_size:
            raise ConfigError(f"n_chars must be >= 10 * seq_len * batch_size; got {self.n_chars}")
        for name in ("seq_len", "batch_size", "steps", "d_model", "softmax_layers", "gau_layers", "s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.d_model % 4:
            raise ConfigError(f"d_model must be divisible by 4 (the softmax model's heads); got {self.d_model}")
        if not 1 <= self.chunk_size <= self.seq_len:
            raise ConfigError(f"chunk_size must be in [1, seq_len]; got {self.chunk_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if self.eval_batches < 1 or self.timing_repeats < 1 or self.timing_chunk < 1:
            raise ConfigError("eval_batches, timing_repeats and timing_chunk must be >= 1")
        if len(self.timing_lengths) < 3 or any(n < self.timing_chunk for n in self.timing_lengths):
            raise ConfigError(f"timing_lengths needs >= 3 lengths, each >= timing_chunk; got {self.timing_lengths}")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            n_chars=60_000,
            batch_size=8,
            steps=80,
            d_model=32,
            s=16,
            eval_batches=2,
            timing_lengths=(256, 512, 1024, 2048),
            timing_chunk=32,
            timing_repeats=3,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(n_chars=2_000_000, steps=2000, seq_len=256, chunk_size=64, d_model=128, batch_size=32)


# -- data ---------------------------------------------------------------------------------------------------


def _build(kind: str, cfg: Config, vocab: int, g: torch.Generator) -> TransformerLM:
    layers = cfg.softmax_layers if kind == "softmax" else cfg.gau_layers
    lm_cfg = LMConfig(vocab_size=vocab, d_model=cfg.d_model, n_layers=layers, n_heads=4, max_seq_len=cfg.seq_len)
    block = None if kind == "softmax" else gau_block(kind, s=cfg.s, chunk_size=cfg.chunk_size)
    return TransformerLM(lm_cfg, block=block, generator=g)


def _fit_exponent(ns, ts) -> float:
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    corpus = char_corpus("shakespeare", cfg.n_chars)
    train_ids, val_ids, vocab = corpus.train, corpus.val, corpus.vocab_size
    gv = ctx.torch_generator("held-out")
    val = [random_windows(val_ids, cfg.seq_len, cfg.batch_size, gv) for _ in range(cfg.eval_batches)]

    def evaluate(m) -> dict[str, float]:
        return {"loss": sum(float(m.loss(x, y)) for x, y in val) / len(val)}

    tc = TrainConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=min(20, cfg.steps // 5),
        eval_every=max(1, cfg.steps // 10),
        seed=cfg.seed,
    )
    models, hist = {}, {}
    names = {"softmax": "softmax Transformer", "gau": "GAU", "flash": "FLASH"}
    for kind in ctx.progress(list(names), total=3, description="training"):
        m = _build(kind, cfg, vocab, ctx.torch_generator("init", kind))
        h = train(
            m,
            lambda g: random_windows(train_ids, cfg.seq_len, cfg.batch_size, g),
            lambda net, x, y: net.loss(x, y),
            tc,
            evaluate=evaluate,
        )
        models[kind], hist[kind] = m, h
    loss = {k: hist[k].evals[-1][1]["loss"] for k in names}
    rows = []
    for k, label in names.items():
        n_layers = len(models[k].blocks)
        sec = hist[k].seconds / cfg.steps
        rows.append(
            [label, n_layers, models[k].num_parameters(exclude_embeddings=True), loss[k], loss[k] / math.log(2), sec]
        )
        res.metric(f"heldout_loss_{k}", loss[k], unit="nats/char", description=f"{label} after {cfg.steps} steps")
    res.table(
        "quality",
        ["model", "layers", "parameters (no embeddings)", "held-out loss (nats/char)", "bits/char", "s/step"],
        rows,
        caption_en=f"Character-level Shakespeare, {cfg.steps} steps of {cfg.batch_size}×{cfg.seq_len} characters, "
        f"d = {cfg.d_model}, FLASH chunk c = {cfg.chunk_size}.",
        caption_zh=f"莎士比亚字符级语言模型，{cfg.steps} 步，每步 {cfg.batch_size}×{cfg.seq_len} 个字符，"
        f"d = {cfg.d_model}，FLASH 块长 c = {cfg.chunk_size}。",
    )
    res.claim(
        "gau_close_to_softmax",
        f"GAU's held-out loss is within 0.1 nats/char of the softmax Transformer's at equal steps ({cfg.steps})",
        abs(loss["gau"] - loss["softmax"]),
        "<=",
        0.1,
        text_zh=f"相同步数（{cfg.steps}）下，GAU 的留出集损失与 softmax Transformer 相差不超过 0.1 奈特/字符",
    )
    res.claim(
        "flash_close_to_gau",
        "FLASH (chunked, linear across chunks) loses at most 0.1 nats/char against the quadratic GAU",
        loss["flash"] - loss["gau"],
        "<=",
        0.1,
        text_zh="FLASH（分块、块间线性）的留出集损失比二次复杂度的 GAU 高出不超过 0.1 奈特/字符",
    )
    freq = torch.bincount(train_ids, minlength=vocab).double() + 1.0  # add-one unigram model of the training text
    logp = (freq / freq.sum()).log()
    unigram = float(-torch.cat([logp[y.reshape(-1)] for _, y in val]).mean())
    res.metric("heldout_loss_unigram", unigram, unit="nats/char", description="add-one character frequencies")
    res.claim(
        "all_models_beat_unigram",
        f"Every model uses context: its held-out loss is below the unigram model's {unigram:.2f} nats "
        "(worst model's loss / unigram loss)",
        max(loss.values()) / unigram,
        "<",
        0.95,
        text_zh=f"每个模型都用到了上下文：留出集损失低于一元字符模型的 {unigram:.2f} 奈特（最差模型损失 / 一元模型损失）",
    )

    # exactness on the trained FLASH model: chunked = dense, decoding = parallel, no leak
    flash_lm = models["flash"].eval()
    x, _ = val[0]
    with torch.no_grad():
        unit = flash_lm.blocks[0].attn
        h = flash_lm.blocks[0].norm(flash_lm.embed(x) + flash_lm.pos_embed(torch.arange(cfg.seq_len)))
        dense_gap = float((unit(h) - unit.forward_naive(h)).abs().max())
        full = flash_lm(x)
        cache = flash_lm.new_cache(x.shape[0])
        stepped = torch.cat([flash_lm(x[:, t : t + 1], cache=cache, start=t) for t in range(cfg.seq_len)], dim=1)
        decode_gap = float((full - stepped).abs().max())
        t_change = cfg.seq_len // 2 + 1
        x2 = x.clone()
        x2[:, t_change] = (x2[:, t_change] + 1) % vocab
        leak = float((flash_lm(x2)[:, :t_change] - full[:, :t_change]).abs().max())
    res.metric("flash_chunked_vs_dense_max_abs", dense_gap, description="trained FLASH layer, float32")
    res.metric("flash_decode_vs_parallel_max_abs", decode_gap, description="logits, float32")
    res.claim(
        "chunked_equals_dense",
        "The chunked FLASH layer equals its dense N×N formulation on the trained model (max |Δ|, float32)",
        dense_gap,
        "<=",
        1e-5,
        text_zh="训练后的 FLASH 层：分块计算与 N×N 稠密写法一致（最大 |Δ|，float32）",
    )
    res.claim(
        "decoding_equals_parallel",
        "Token-by-token FLASH decoding (running sum of KᵀV + current chunk) gives the parallel logits (max |Δ|)",
        decode_gap,
        "<=",
        1e-4,
        text_zh="FLASH 逐 token 解码（KᵀV 累计和 + 当前块）给出与并行计算相同的 logits（最大 |Δ|）",
    )
    res.claim(
        "no_future_leak",
        f"Changing character {t_change} leaves every earlier logit of the trained FLASH LM bit-identical (max |Δ|)",
        leak,
        "<=",
        0.0,
        text_zh=f"改动第 {t_change} 个字符后，训练好的 FLASH 语言模型在它之前的所有 logits 完全不变（最大 |Δ|）",
    )

    # cost vs sequence length, one layer, forward only
    times = _time_vs_length(cfg, ctx)
    ns = np.array(cfg.timing_lengths, dtype=float)
    expo = {k: _fit_exponent(ns, times[k]) for k in times}
    for k, v in expo.items():
        res.metric(f"time_exponent_{k}", v, description="slope of log(time) against log(N)")
    res.table(
        "time_vs_length",
        ["N", "softmax attention layer (ms)", "GAU (ms)", "FLASH (ms)"],
        [[int(n), *(1e3 * times[k][i] for k in ("softmax", "gau", "flash"))] for i, n in enumerate(ns)],
        caption_en=f"One layer's forward pass, batch 1, d = {cfg.d_model}, s = {cfg.s}, c = {cfg.timing_chunk}, "
        f"CPU time of one thread; fitted exponents: softmax {expo['softmax']:.2f}, GAU {expo['gau']:.2f}, "
        f"FLASH {expo['flash']:.2f}.",
        caption_zh=f"单层前向，batch 1，d = {cfg.d_model}，s = {cfg.s}，c = {cfg.timing_chunk}，单线程 CPU 时间；"
        f"拟合指数：softmax {expo['softmax']:.2f}，GAU {expo['gau']:.2f}，FLASH {expo['flash']:.2f}。",
    )
    res.claim(
        "flash_cost_linear",
        f"FLASH's forward time grows about linearly in N (fitted exponent, N = {int(ns[0])}…{int(ns[-1])})",
        expo["flash"],
        "<=",
        1.25,
        text_zh=f"FLASH 的前向时间随 N 近似线性增长（拟合指数，N = {int(ns[0])}…{int(ns[-1])}）",
    )
    res.claim(
        "gau_cost_quadratic",
        "The full-attention GAU's forward time grows clearly faster than linearly (fitted exponent)",
        expo["gau"],
        ">=",
        1.5,
        text_zh="全注意力 GAU 的前向时间明显超线性增长（拟合指数）",
    )
    _figures(cfg, ctx, hist, names, ns, times, expo)
    return res


def _time_vs_length(cfg: Config, ctx: RunContext) -> dict[str, np.ndarray]:
    g = ctx.torch_generator("timing")
    d = cfg.d_model
    gau = GatedAttentionUnit(d, s=cfg.s, length_scale=max(cfg.timing_lengths), generator=g).eval()
    flash = FLASH(d, s=cfg.s, chunk_size=cfg.timing_chunk, length_scale=max(cfg.timing_lengths), generator=g).eval()
    lm_cfg = LMConfig(vocab_size=2, d_model=d, n_heads=4, max_seq_len=max(cfg.timing_lengths), n_layers=1)
    softmax = TransformerLM(lm_cfg, generator=g).blocks[0].eval()  # attention + MLP block, SDPA inside
    xs = [torch.randn(1, n, d, generator=g) for n in cfg.timing_lengths]
    fns = {"softmax": softmax, "gau": gau, "flash": flash}
    out = {k: np.full(len(xs), np.inf) for k in fns}
    with torch.no_grad():
        for f in fns.values():  # warm-up
            f(xs[0])
        # Interleave the repeats and keep each one's minimum CPU time of this thread (with one torch
        # thread the work runs here): on a shared machine wall time also counts the time spent waiting.
        for _ in ctx.progress(range(cfg.timing_repeats), total=cfg.timing_repeats, description="timing"):
            for i, x in enumerate(xs):
                for k, f in fns.items():
                    t0 = time.thread_time()
                    f(x)
                    out[k][i] = min(out[k][i], time.thread_time() - t0)
    return out


def _figures(cfg, ctx, hist, names, ns, times, expo) -> None:
    fig, ax = new_figure()
    for i, (k, label) in enumerate(names.items()):
        steps = [s for s, _ in hist[k].evals]
        ax.plot(steps, [m["loss"] for _, m in hist[k].evals], marker="o", color=f"C{i}", label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title("Character-level Shakespeare")
    ax.legend()
    ctx.save_figure(
        fig,
        "heldout-loss",
        caption_en="Held-out loss during training; the three models have similar parameter counts.",
        caption_zh="训练过程中的留出集损失；三个模型的参数量相近。",
    )
    fig, ax = new_figure()
    for i, k in enumerate(("softmax", "gau", "flash")):
        label = {"softmax": "softmax attention + MLP block", "gau": "GAU", "flash": "FLASH"}[k]
        ax.loglog(ns, 1e3 * times[k], marker="o", color=f"C{i}", label=f"{label} (exponent {expo[k]:.2f})")
    ax.loglog(ns, 1e3 * times["flash"][0] * ns / ns[0], "k:", lw=1, label="∝ N")
    ax.loglog(ns, 1e3 * times["gau"][0] * (ns / ns[0]) ** 2, "k--", lw=1, label="∝ N²")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("forward CPU time (ms)")
    ax.set_title("Cost of one layer vs sequence length")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "time-vs-length",
        caption_en="Forward time of one layer against N (log-log), with lines of slope 1 and 2 for reference.",
        caption_zh="单层前向时间随 N 的变化（双对数坐标），虚线为斜率 1 和 2 的参考线。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Mixed chunk attention (FLASH's core) against PyTorch's fused softmax attention of the same width."""
    rows = []
    with torch_threads(1), torch.no_grad():
        g = ctx.torch_generator("bench")
        s, e, c = cfg.s, 2 * cfg.d_model, cfg.timing_chunk
        table = torch.zeros(2 * c - 1)
        for n in (cfg.timing_lengths[0], cfg.timing_lengths[-1]):
            qq, kq, ql, kl = (torch.randn(1, n, s, generator=g) for _ in range(4))
            v = torch.randn(1, n, e, generator=g)
            q4, k4, v4 = qq[:, None], kq[:, None], v[:, None]  # one head for SDPA

            def ours(qq=qq, kq=kq, ql=ql, kl=kl, v=v, n=n):
                return mixed_chunk_attention(qq, kq, ql, kl, v, table, chunk_size=c, length_scale=n)

            def ref(q4=q4, k4=k4, v4=v4):
                return torch.nn.functional.scaled_dot_product_attention(q4, k4, v4, is_causal=True)

            rows.append(
                BenchRow(
                    f"causal mixed chunk attention, N = {n}, s = {s}, e = {e}, c = {c}",
                    best_time(ours, cfg.timing_repeats),
                    best_time(ref, cfg.timing_repeats),
                    "torch.nn.functional.scaled_dot_product_attention (causal, one head)",
                    note="one thread, forward",
                )
            )
    return rows
