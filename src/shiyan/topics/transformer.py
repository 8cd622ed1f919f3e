"""S2 -- The Transformer language model on real text: Shakespeare and People's Daily, four ways of
giving positions, a KV cache checked token for token, and a training-throughput benchmark."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time, interleaved_times
from shiyan.core.train import TrainConfig, train
from shiyan.data.text import CharCorpus, char_corpus
from shiyan.nn.lm import LMConfig, TransformerLM

META = TopicMeta(
    slug="transformer",
    category="LLM",
    date=dt.date(2025, 1, 20),
    title_en="The Transformer language model: English and Chinese characters, positions, KV cache",
    title_zh="Transformer 语言模型：中英文字符、位置编码与 KV 缓存",
    summary_en=(
        "One decoder-only Transformer, written once and shared by every sequence topic, trained on the complete "
        "Shakespeare and on People's Daily (1998) character by character. Learned, sinusoidal, rotary and no "
        "positions compared on the same budget; generation with a KV cache checked token for token against full "
        "recomputation and timed; samples in both languages; and the same model trained under torchrun."
    ),
    summary_zh=(
        "一个只写一次、被所有序列主题共享的仅解码器 Transformer，按字符在莎士比亚全集和 1998 年《人民日报》上训练。"
        "在同样预算下比较可学习、正弦、旋转（RoPE）与无位置编码；带 KV 缓存的生成与完整重算逐 token 对照并计时；"
        "给出中英文生成样例；并用 torchrun 分布式训练同一个模型。"
    ),
    implements=("shiyan.nn.lm", "shiyan.train_lm"),
)

POSITIONS = ("learned", "sinusoidal", "rope", "none")


@dataclass(frozen=True)
class Config(TopicConfig):
    en_chars: int = 400_000
    """Characters of the complete Shakespeare used (the last 10% are held out)."""
    zh_chars: int = 400_000
    """Characters of People's Daily (January 1998) used (the last 10% are held out)."""
    seq_len: int = 64
    """Training context in characters."""
    batch_size: int = 16
    """Sequences per training step."""
    steps: int = 250
    """Training steps of every model (the same batches for every position variant)."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, warm-up + cosine, the shared loop)."""
    d_model: int = 64
    """Width of the residual stream."""
    n_layers: int = 2
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads."""
    eval_windows: int = 64
    """Held-out windows of seq_len characters behind each held-out loss."""
    kv_len: int = 256
    """Tokens generated (after an 8-character prompt) when comparing the KV cache with full recomputation."""
    kv_batch: int = 2
    """Prompts generated at once in the KV-cache comparison."""
    sample_chars: int = 48
    """Characters generated per sample (prompt + sample stay within the training context)."""
    temperature: float = 0.8
    """Sampling temperature of the samples."""
    bench_repeats: int = 3
    """Timed repeats per benchmark row (the best is kept)."""

    def validate(self) -> None:
        for name in (
            "en_chars",
            "zh_chars",
            "seq_len",
            "batch_size",
            "steps",
            "d_model",
            "n_layers",
            "n_heads",
            "eval_windows",
            "kv_len",
            "kv_batch",
            "sample_chars",
            "bench_repeats",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(
                f"d_model must be divisible by n_heads with an even head width (RoPE); got {self.d_model}, {self.n_heads}"
            )
        for name in ("en_chars", "zh_chars"):
            if getattr(self, name) < 50 * self.seq_len:
                raise ConfigError(f"{name} must be at least 50 * seq_len; got {getattr(self, name)}")
        if self.sample_chars + 8 > self.seq_len:
            raise ConfigError(f"sample_chars must be <= seq_len - 8; got {self.sample_chars}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0; got {self.temperature}")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            en_chars=100_000,
            zh_chars=100_000,
            seq_len=32,
            batch_size=8,
            steps=120,
            d_model=48,
            n_layers=2,
            n_heads=2,
            eval_windows=16,
            kv_len=64,
            sample_chars=24,
            bench_repeats=2,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(
            en_chars=5_000_000, zh_chars=1_800_000, seq_len=256, batch_size=32, steps=3000, d_model=256, n_layers=6
        )


def _lm_config(cfg: Config, vocab: int, positions: str) -> LMConfig:
    return LMConfig(
        vocab_size=vocab,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        max_seq_len=max(cfg.seq_len, cfg.kv_len + 8),
        positions=positions,
    )


def unigram_bits_per_char(corpus: CharCorpus) -> float:
    """Cross-entropy (bits/char) of the held-out text under the training text's character frequencies
    (add-one smoothing): the baseline an LM that ignores context would reach."""
    counts = torch.bincount(corpus.train, minlength=corpus.vocab_size).double() + 1.0
    logp = torch.log2(counts / counts.sum())
    return float(-logp[corpus.val].mean())


def _train(cfg: Config, ctx: RunContext, corpus: CharCorpus, positions: str, tag: str) -> tuple[TransformerLM, dict]:
    model = TransformerLM(_lm_config(cfg, corpus.vocab_size, positions), generator=ctx.torch_generator("init", tag))
    evaluate = corpus.evaluator(cfg.seq_len, n_windows=cfg.eval_windows, batch_size=16)
    tcfg = TrainConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=max(1, cfg.steps // 10),
        eval_every=max(1, cfg.steps // 5),
        seed=cfg.seed,
    )
    hist = train(
        model,
        lambda g: corpus.batch("train", cfg.seq_len, cfg.batch_size, g),
        lambda net, x, y: F.cross_entropy(net(x).flatten(0, 1), y.flatten()),
        tcfg,
        evaluate=evaluate,
    )
    evals = [(s, m["held_out_loss"]) for s, m in hist.evals]
    return model.eval(), {"loss": evals[-1][1], "evals": evals, "seconds": hist.seconds, "train_loss": hist.loss}


# -- the experiment ---------------------------------------------------------------------------------------------


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    corpora = {"en": char_corpus("shakespeare", cfg.en_chars), "zh": char_corpus("peoples-daily", cfg.zh_chars)}
    runs: dict[str, dict] = {}
    models: dict[str, TransformerLM] = {}
    jobs = [("en", p) for p in POSITIONS] + [("zh", "rope")]
    for lang, pos in ctx.progress(jobs, total=len(jobs), description="language models"):
        models[f"{lang}-{pos}"], runs[f"{lang}-{pos}"] = _train(cfg, ctx, corpora[lang], pos, f"{lang}-{pos}")

    # 1. held-out quality in both languages, against the context-free unigram baseline
    rows = []
    for lang, name in (("en", "Shakespeare (English)"), ("zh", "People's Daily (Chinese)")):
        c, r = corpora[lang], runs[f"{lang}-rope"]
        bpc, base = r["loss"] / math.log(2), unigram_bits_per_char(c)
        rows.append([name, c.vocab_size, len(c.train), r["loss"], bpc, base, r["seconds"]])
        res.metric(f"heldout_bpc_{lang}", bpc, unit="bits/char")
        res.metric(f"unigram_bpc_{lang}", base, unit="bits/char")
        lang_en, lang_zh = ("English", "英文") if lang == "en" else ("Chinese", "中文")
        res.claim(
            f"beats_unigram_{lang}",
            f"On held-out {lang_en} text the LM needs fewer bits per character than the unigram baseline "
            "(LM bpc / unigram bpc)",
            bpc / base,
            "<",
            1.0,
            text_zh=f"在{lang_zh}留出文本上，语言模型每字符所需比特数少于一元（unigram）基线（模型 bpc / 一元 bpc）",
        )
    res.table(
        "heldout",
        [
            "corpus",
            "vocabulary",
            "training chars",
            "held-out loss (nats/char)",
            "bits/char",
            "unigram bits/char",
            "train time (s)",
        ],
        rows,
        caption_en=f"The shared LM with RoPE ({cfg.n_layers} blocks, d = {cfg.d_model}, {cfg.n_heads} heads), "
        f"{cfg.steps} steps of {cfg.batch_size} windows of {cfg.seq_len} characters; CPU, one thread. Held-out: the "
        "last 10% of each text. Unigram: the training text's character frequencies, ignoring context.",
        caption_zh=f"共享语言模型，RoPE（{cfg.n_layers} 层，d = {cfg.d_model}，{cfg.n_heads} 个头），"
        f"{cfg.steps} 步、每步 {cfg.batch_size} 个长 {cfg.seq_len} 的字符窗口；CPU 单线程。留出集：各文本最后 10%。"
        "一元基线：训练文本的字符频率，不看上下文。",
    )

    # 2. positions, on Shakespeare with the same initial seed and batches
    pos_loss = {p: runs[f"en-{p}"]["loss"] for p in POSITIONS}
    res.table(
        "positions",
        ["positions", "held-out loss (nats/char)", "bits/char"],
        [[p, pos_loss[p], pos_loss[p] / math.log(2)] for p in POSITIONS],
        caption_en="Shakespeare, the same model, budget and batches; only the position information differs.",
        caption_zh="莎士比亚，模型、预算与批次都相同，只有位置信息不同。",
    )
    best_other = min(pos_loss[p] for p in POSITIONS if p != "none")
    res.claim(
        "no_positions_is_worse",
        "Without position information the LM ends with a higher held-out loss than the best of learned, sinusoidal "
        "and RoPE (none − best, nats/char)",
        pos_loss["none"] - best_other,
        ">",
        0.0,
        unit="nats/char",
        text_zh="没有位置信息时，语言模型的留出损失高于可学习、正弦与 RoPE 中最好的一种（无 − 最好，nats/字符）",
    )

    # 3. the KV cache: same tokens as recomputing everything, and how much faster
    _kv_cache(cfg, ctx, res, models["en-rope"], corpora["en"])

    # 4. samples in both languages
    _samples(cfg, ctx, res, models, corpora)
    _figures(cfg, ctx, runs)
    return res


def _kv_cache(cfg: Config, ctx: RunContext, res: Result, model: TransformerLM, corpus: CharCorpus) -> None:
    starts = torch.linspace(0, len(corpus.val) - 9, cfg.kv_batch).long()
    prompt = corpus.val[starts[:, None] + torch.arange(8)]  # (B, 8)
    n = cfg.kv_len
    cached = model.generate(prompt, n, temperature=0.0, use_cache=True)
    full = model.generate(prompt, n, temperature=0.0, use_cache=False)
    greedy_mismatch = int((cached != full).sum())
    seed = int(ctx.torch_generator("sample-seed").initial_seed())
    gens = [torch.Generator().manual_seed(seed) for _ in range(2)]
    s_cached = model.generate(prompt, n, temperature=1.0, generator=gens[0], use_cache=True)
    s_full = model.generate(prompt, n, temperature=1.0, generator=gens[1], use_cache=False)
    sampled_mismatch = int((s_cached != s_full).sum())
    mismatches = greedy_mismatch + sampled_mismatch
    res.metric("kv_greedy_mismatches", greedy_mismatch, description=f"{cfg.kv_batch} x {n} greedy tokens")
    res.metric("kv_sampled_mismatches", sampled_mismatch, description=f"{cfg.kv_batch} x {n} sampled tokens")
    res.claim(
        "kv_cache_equals_recompute",
        f"Generation with the KV cache gives the same tokens as full recomputation ({cfg.kv_batch} prompts × {n} "
        "tokens, greedy and sampled with the same generator; mismatching tokens)",
        mismatches,
        "<=",
        0,
        text_zh=f"带 KV 缓存的生成与完整重算给出相同的 token（{cfg.kv_batch} 个提示 × {n} 个 token，贪心与同一生成器采样；"
        "不一致的 token 数）",
    )
    # timed in turns, and on this process's CPU clock: a topic running beside this one (reproduce runs two at a time)
    # then slows neither side of the ratio
    times = interleaved_times(
        {
            "cache": lambda: model.generate(prompt, n, temperature=0.0, use_cache=True),
            "full": lambda: model.generate(prompt, n, temperature=0.0, use_cache=False),
        },
        repeats=5,
    )
    speedup = times["full"][1] / times["cache"][1]
    res.metric("kv_cache_seconds", times["cache"][0], unit="s")
    res.metric("recompute_seconds", times["full"][0], unit="s")
    res.metric("kv_cache_speedup", speedup, description=f"{n} tokens, batch {cfg.kv_batch}, CPU time")
    res.claim(
        "kv_cache_faster",
        f"Generating {n} tokens with the KV cache is faster than recomputing the whole prefix each step (speed-up, "
        "CPU time, median of 5 interleaved rounds)",
        speedup,
        ">",
        1.0,
        text_zh=f"用 KV 缓存生成 {n} 个 token 比每步重算整个前缀更快（加速比）",
    )


def _samples(cfg: Config, ctx: RunContext, res: Result, models, corpora) -> None:
    prompts = {"en": ["ROMEO:\n", "First Citizen:\n"], "zh": ["中国", "新年"]}
    rows = []
    for lang, texts in prompts.items():
        model, corpus = models[f"{lang}-rope"], corpora[lang]
        for i, text in enumerate(texts):
            g = ctx.torch_generator("sample", lang, i)
            out = model.generate(corpus.encode(text)[None], cfg.sample_chars, temperature=cfg.temperature, generator=g)
            rows.append(["English" if lang == "en" else "中文", text, corpus.decode(out[0, len(text) :])])
    res.table(
        "samples",
        ["language", "prompt", "continuation"],
        rows,
        caption_en=f"Sampled continuations (temperature {cfg.temperature}) from the two RoPE models after "
        f"{cfg.steps} steps; character-level, so words and phrases are learned from scratch.",
        caption_zh=f"两个 RoPE 模型训练 {cfg.steps} 步后的采样续写（温度 {cfg.temperature}）；"
        "字符级模型，词语是从零学出来的。",
    )


def _figures(cfg: Config, ctx: RunContext, runs: dict[str, dict]) -> None:
    fig, ax = new_figure()
    for key, r in runs.items():
        s, loss = zip(*r["evals"])
        ax.plot(s, np.array(loss) / math.log(2), "o-", label=key)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out bits per character")
    ax.set_title("The shared LM: languages and positions")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "heldout-curves",
        caption_en="Held-out bits per character during training: Shakespeare (en) with four kinds of positions and "
        "People's Daily (zh) with RoPE. Chinese needs more bits per character: each character carries more "
        "information and the vocabulary is far larger.",
        caption_zh="训练过程中的留出集每字符比特数：莎士比亚（en）四种位置编码，《人民日报》（zh）用 RoPE。"
        "中文每字符需要更多比特：单个汉字携带更多信息，字表也大得多。",
    )


# -- benchmark ----------------------------------------------------------------------------------------------------


class TorchEncoderLM(nn.Module):
    """The reference: the same decoder-only LM from ``torch.nn.TransformerEncoder`` with a causal mask
    (pre-norm, GELU, learned positions, tied embeddings)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, cfg.hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx: Tensor) -> Tensor:
        T = idx.shape[1]
        x = self.embed(idx) + self.pos(torch.arange(T))  # (B, T, D)
        mask = nn.Transformer.generate_square_subsequent_mask(T)  # (T, T) float, -inf above the diagonal
        return self.head(self.norm(self.encoder(x, mask=mask, is_causal=True)))  # (B, T, V)


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Seconds per training step (forward, backward, AdamW) of the shared LM vs torch.nn.TransformerEncoder."""
    with torch_threads(1):
        g = ctx.torch_generator("bench")
        lm_cfg = LMConfig(
            vocab_size=96, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, max_seq_len=cfg.seq_len
        )
        ours, ref = TransformerLM(lm_cfg, generator=g), TorchEncoderLM(lm_cfg)
        x = torch.randint(0, 96, (cfg.batch_size, cfg.seq_len), generator=g)
        y = torch.randint(0, 96, (cfg.batch_size, cfg.seq_len), generator=g)

        def stepper(model: nn.Module):
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

            def step() -> None:
                loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            return step

        t_ours = best_time(stepper(ours), cfg.bench_repeats, warmup=2)
        t_ref = best_time(stepper(ref), cfg.bench_repeats, warmup=2)
        tokens = cfg.batch_size * cfg.seq_len
        note = (
            f"B = {cfg.batch_size}, T = {cfg.seq_len}, d = {cfg.d_model}, {cfg.n_layers} layers; tokens/s ours "
            f"{tokens / t_ours:.0f}, torch {tokens / t_ref:.0f}; one thread"
        )
        return [
            BenchRow(
                "LM training step (forward + backward + AdamW)", t_ours, t_ref, "torch.nn.TransformerEncoder", note=note
            )
        ]
