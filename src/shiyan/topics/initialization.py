"""D3 -- initialisation, parameterisation and normalisation: variance through depth, why attention divides by
sqrt(d) (and how T5 does without it), pre- vs post-norm."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.core.train import TrainConfig, train_lm_on_corpus
from shiyan.data.text import char_corpus
from shiyan.nn import init
from shiyan.nn.lm import LMConfig, TransformerLM
from shiyan.nn.norms import layer_norm, rms_norm

META = TopicMeta(
    slug="initialization",
    category="DL",
    date=dt.date(2024, 2, 24),
    title_en="Initialisation, parameterisation and normalisation",
    title_zh="初始化、参数化与归一化",
    summary_en=(
        "Push real images through 50 layers and watch the activation variance: it vanishes or explodes unless "
        "the weights are drawn with variance 1/fan-in (tanh) or 2/fan-in (ReLU). The same bookkeeping explains "
        "attention's 1/√d: without it the softmax is nearly one-hot at initialisation and a language model "
        "learns slower; T5 folds the factor into the query initialisation instead. Finally pre- vs post-norm at depth."
    ),
    summary_zh=(
        "把真实图像送过 50 层网络，观察激活方差：除非权重方差取 1/扇入（tanh）或 2/扇入（ReLU），否则它会消失或爆炸。"
        "同样的方差计算解释了注意力里的 1/√d：去掉它，初始化时 softmax 几乎是 one-hot，语言模型学得更慢；"
        "T5 则把这个因子放进查询矩阵的初始化。最后比较深层网络中的前置与后置归一化。"
    ),
    implements=("shiyan.nn.init", "shiyan.nn.norms"),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    depth: int = 50
    """Layers of the MLP in the variance-propagation experiment."""
    width: int = 256
    """Units per layer of that MLP."""
    n_images: int = 1797
    """Digits images pushed through it (all of them by default)."""
    n_chars: int = 300_000
    """Characters of Shakespeare for the language-model experiments."""
    d_model: int = 128
    """Width of the language models."""
    n_heads: int = 2
    """Heads of the attention experiment (head width d_model / n_heads)."""
    seq_len: int = 64
    """Characters per training window."""
    batch_size: int = 32
    """Windows per step."""
    steps: int = 300
    """Optimizer steps per language model."""
    lr: float = 3e-3
    """Peak learning rate (AdamW)."""
    attn_layers: int = 2
    """Blocks of the attention-scaling models."""
    deep_layers: int = 12
    """Blocks of the pre- vs post-norm models."""
    deep_lr: float = 3e-3
    """Learning rate of the pre- vs post-norm runs, used without warm-up."""
    eval_windows: int = 64
    """Held-out windows per evaluation."""

    def validate(self) -> None:
        for name in ("depth", "width", "n_images", "d_model", "n_heads", "seq_len", "batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.depth < 5:
            raise ConfigError(f"depth must be >= 5 to show a trend; got {self.depth}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0 < self.lr < 1 or not 0 < self.deep_lr < 1:
            raise ConfigError(f"lr and deep_lr must be in (0, 1); got {self.lr}, {self.deep_lr}")
        if self.attn_layers < 1 or self.deep_layers < 2:
            raise ConfigError("attn_layers must be >= 1 and deep_layers >= 2")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            n_images=256, n_chars=60_000, d_model=64, n_heads=1, batch_size=16, steps=40,
            deep_layers=8, eval_windows=16,
        )  # fmt: skip

    @classmethod
    def full(cls) -> Config:
        return cls(n_chars=2_000_000, d_model=256, n_heads=4, steps=2000, deep_layers=24, batch_size=64)


# -- 1. variance through depth ------------------------------------------------------------------------------------

SCHEMES = {
    # name: (activation, std of W given fan_in)
    "ReLU, N(0, 1)": ("relu", lambda n: 1.0),
    "ReLU, N(0, 0.01²)": ("relu", lambda n: 0.01),
    "ReLU, Xavier": ("relu", lambda n: init.xavier_std(n, n)),
    "ReLU, He": ("relu", lambda n: init.kaiming_std(n, init.gain("relu"))),
    "tanh, N(0, 0.01²)": ("tanh", lambda n: 0.01),
    "tanh, LeCun": ("tanh", lambda n: init.kaiming_std(n, 1.0)),
    "tanh, Xavier × 5/3": ("tanh", lambda n: init.xavier_std(n, n, init.gain("tanh"))),
}


def preactivation_variances(x: Tensor, stds: list[float], activation: str, generator: torch.Generator) -> list[float]:
    """Var of the pre-activations $z_l = W_l h_{l-1}$ at every layer, $h_l = \\phi(z_l)$, $W_l \\sim N(0, \\sigma_l^2)$."""
    phi = torch.relu if activation == "relu" else torch.tanh
    h, out = x, []
    for std in stds:
        W = torch.randn(h.shape[1], h.shape[1], generator=generator, dtype=h.dtype) * std  # (n, n)
        z = h @ W  # (batch, n)
        out.append(float(z.var()))
        h = phi(z)
    return out


def _variance_experiment(cfg: Config, ctx: RunContext, res: Result) -> None:
    digits = data.load("digits")
    idx = ctx.numpy_generator("images").choice(len(digits.y), size=min(cfg.n_images, len(digits.y)), replace=False)
    X = digits.X[idx]
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)  # standardised pixels
    # lift the 64 pixels to `width` units with one variance-preserving layer, then go deep
    g = ctx.torch_generator("variance")
    lift = torch.randn(64, cfg.width, generator=g, dtype=torch.float64) / math.sqrt(64)
    x = torch.tensor(X, dtype=torch.float64) @ lift  # (n, width), variance ~1
    curves = {}
    for name, (act, std_of) in SCHEMES.items():
        curves[name] = preactivation_variances(x, [std_of(cfg.width)] * cfg.depth, act, g)
    ratio = {name: c[-1] / c[0] for name, c in curves.items()}
    res.table(
        "variance",
        columns=["scheme", "Var z₁", f"Var z_{cfg.depth}", "ratio"],
        rows=[[n, c[0], c[-1], ratio[n]] for n, c in curves.items()],
        caption_en=f"Pre-activation variance at the first and the last of {cfg.depth} layers, digits images.",
        caption_zh=f"手写数字图像在 {cfg.depth} 层网络中第一层与最后一层的预激活方差。",
    )
    res.claim(
        "he_preserves_relu_variance",
        f"He initialisation: |log10(Var z_{cfg.depth} / Var z₁)| with ReLU",
        value=abs(math.log10(ratio["ReLU, He"])),
        op="<=",
        threshold=1.0,
        text_zh=f"He 初始化 + ReLU：|log10(Var z_{cfg.depth} / Var z₁)|",
    )
    res.claim(
        "xavier_halves_relu_variance",
        f"Xavier with ReLU: log10 of the variance ratio after {cfg.depth} layers (halves each layer)",
        value=math.log10(ratio["ReLU, Xavier"]),
        op="<=",
        threshold=-0.2 * cfg.depth,
        text_zh=f"Xavier + ReLU：{cfg.depth} 层后方差比的 log10（每层减半）",
    )
    res.claim(
        "unit_normal_explodes",
        "N(0, 1) weights with ReLU: log10 of the variance ratio (grows by fan-in/2 per layer)",
        value=math.log10(ratio["ReLU, N(0, 1)"]),
        op=">=",
        threshold=1.0 * cfg.depth,
        text_zh="N(0, 1) 权重 + ReLU：方差比的 log10（每层放大 扇入/2 倍）",
    )
    res.claim(
        "tanh_gain_keeps_signal",
        f"tanh with Xavier × 5/3: Var z_{cfg.depth} (stays of order one)",
        value=curves["tanh, Xavier × 5/3"][-1],
        op=">=",
        threshold=0.1,
        text_zh=f"tanh + Xavier × 5/3：Var z_{cfg.depth}（保持在 1 的量级）",
    )
    fig, ax = new_figure(figsize=(7, 4))
    for name, c in curves.items():
        ax.semilogy(np.arange(1, cfg.depth + 1), np.maximum(c, 1e-300), ls="-" if "ReLU" in name else "--", label=name)
    ax.set_ylim(1e-40, 1e40)
    ax.set_xlabel("layer")
    ax.set_ylabel("Var of pre-activations")
    ax.legend(fontsize=7, ncol=2)
    ctx.save_figure(
        fig,
        "variance",
        caption_en="Pre-activation variance through depth for each initialisation (digits images).",
        caption_zh="各种初始化下预激活方差随层数的变化（手写数字图像）。",
    )


# -- 2. attention's 1/sqrt(d) ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class AttentionProbe:
    """An attention function ``softmax(scale · q kᵀ) v`` (causal) that records the softmax's entropy."""

    scale: float | None
    """None: 1/sqrt(d_head); a number: that scale."""
    record: bool = False
    entropies: list[float] = dataclasses.field(default_factory=list)
    max_probs: list[float] = dataclasses.field(default_factory=list)

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, mask=None, scale=None) -> Tensor:
        s = self.scale if self.scale is not None else q.shape[-1] ** -0.5
        T = q.shape[-2]
        logits = (q @ k.transpose(-2, -1)) * s  # (B, H, T, T)
        if causal:
            keep = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
            logits = logits.masked_fill(~keep, float("-inf"))
        p = logits.softmax(-1)
        if self.record:
            with torch.no_grad():
                logp = torch.where(p > 0, p.log(), torch.zeros_like(p))
                n_visible = torch.arange(1, T + 1, device=q.device, dtype=p.dtype)  # keys seen by query i
                ent = -(p * logp).sum(-1)[..., 1:] / n_visible[1:].log()  # normalised entropy, skip i = 0
                self.entropies.append(float(ent.mean()))
                self.max_probs.append(float(p.amax(-1)[..., 1:].mean()))
        return p @ v


def _lecun_qkv(model: TransformerLM, generator: torch.Generator, q_std: float | None = None) -> None:
    """Variance-preserving projections: W_Q, W_K, W_V ~ N(0, 1/d); with ``q_std`` W_Q uses that instead (T5)."""
    d = model.cfg.d_model
    with torch.no_grad():
        for block in model.blocks:
            w = block.attn.qkv.weight  # (3d, d), rows q, k, v
            w.normal_(0.0, d**-0.5, generator=generator)
            if q_std is not None:
                w[:d].normal_(0.0, q_std, generator=generator)


def _lm(cfg: Config, vocab: int, n_layers: int, attention, norm_position: str, gen: torch.Generator) -> TransformerLM:
    lm_cfg = LMConfig(
        vocab_size=vocab,
        d_model=cfg.d_model,
        n_layers=n_layers,
        n_heads=cfg.n_heads,
        max_seq_len=cfg.seq_len,
        norm_position=norm_position,
    )
    return TransformerLM(lm_cfg, attention=attention, generator=gen)


def _train(cfg: Config, ctx: RunContext, model: TransformerLM, corpus, lr: float, warmup: int, name: str) -> dict:
    tcfg = TrainConfig(
        steps=cfg.steps, lr=lr, warmup_steps=warmup, eval_every=0, seed=cfg.seed, weight_decay=0.1, grad_clip=1.0
    )
    out = train_lm_on_corpus(
        model,
        corpus,
        tcfg,
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        eval_windows=cfg.eval_windows,
        progress=lambda it, total, description: ctx.progress(it, total=total, description=name),
    )
    return {"held_out": out.held_out_loss, "curve": out.loss_curve}


def _attention_experiment(cfg: Config, ctx: RunContext, res: Result, corpus) -> None:
    d_head = cfg.d_model // cfg.n_heads
    t5 = init.t5_init_stds(cfg.d_model, d_head, cfg.n_heads, 4 * cfg.d_model)
    variants = {
        "q·k/√d, LeCun init": (None, None),
        "q·k, LeCun init": (1.0, None),
        "q·k, T5 init": (1.0, t5.q),
    }
    x_probe, _ = corpus.batch("val", cfg.seq_len, cfg.batch_size, ctx.torch_generator("probe"))
    rows, out = [], {}
    for name, (scale, q_std) in variants.items():
        probe = AttentionProbe(scale)
        model = _lm(cfg, corpus.vocab_size, cfg.attn_layers, probe, "pre", ctx.torch_generator("attn-init"))
        _lecun_qkv(model, ctx.torch_generator("attn-qkv"), q_std)
        probe.record = True
        with torch.no_grad():
            model(x_probe)
        probe.record = False
        entropy, max_p = float(np.mean(probe.entropies)), float(np.mean(probe.max_probs))
        result = _train(cfg, ctx, model, corpus, cfg.lr, max(1, cfg.steps // 10), name)
        out[name] = {"entropy": entropy, "max_p": max_p, **result}
        rows.append([name, entropy, max_p, result["held_out"]])
    res.table(
        "attention-scale",
        columns=["scores", "softmax entropy at init (÷ log n)", "mean max prob at init", "held-out loss (nats)"],
        rows=rows,
        caption_en=f"Head width {d_head}, {cfg.steps} steps of a character-level model on Shakespeare.",
        caption_zh=f"头宽 {d_head}，在莎士比亚文本上训练字符级模型 {cfg.steps} 步。",
    )
    scaled, unscaled, t5r = (out[k] for k in variants)
    res.claim(
        "unscaled_softmax_saturates",
        "Softmax entropy at initialisation without 1/√d, as a fraction of the entropy with it",
        value=unscaled["entropy"] / scaled["entropy"],
        op="<=",
        threshold=0.6,
        text_zh="去掉 1/√d 时初始化阶段 softmax 的熵，占保留时熵的比例",
    )
    res.claim(
        "unscaled_learns_slower",
        "Held-out loss without 1/√d minus with it, after the same steps (nats)",
        value=unscaled["held_out"] - scaled["held_out"],
        op=">=",
        threshold=0.02,
        text_zh="相同步数后，去掉 1/√d 与保留时的验证损失之差（nats）",
    )
    res.claim(
        "t5_init_restores_entropy",
        "T5's query initialisation: softmax entropy at init relative to the 1/√d model's",
        value=t5r["entropy"] / scaled["entropy"],
        op=">=",
        threshold=0.9,
        text_zh="T5 的查询初始化：初始化阶段 softmax 熵相对 1/√d 模型的比例",
    )
    res.claim(
        "t5_init_rescues_training",
        "T5 init without 1/√d: held-out loss minus that of the 1/√d model (nats)",
        value=t5r["held_out"] - scaled["held_out"],
        op="<=",
        threshold=0.5 * (unscaled["held_out"] - scaled["held_out"]),
        text_zh="T5 初始化且不除以 √d：验证损失减去 1/√d 模型的（nats）",
    )
    fig, ax = new_figure(figsize=(6.5, 3.6))
    for name, r in out.items():
        curve = np.convolve(r["curve"], np.ones(5) / 5, mode="valid")
        ax.plot(np.arange(len(curve)) + 5, curve, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats, running mean of 5)")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "attention-scale",
        caption_en="Training curves with and without 1/√d, and with T5's query initialisation instead.",
        caption_zh="有无 1/√d 以及改用 T5 查询初始化时的训练曲线。",
    )


# -- 3. pre- vs post-norm ------------------------------------------------------------------------------------------


def _layer_grad_norms(model: TransformerLM, x: Tensor, y: Tensor) -> list[float]:
    model.zero_grad()
    model.loss(x, y).backward()
    norms = [float(b.ffn.w2.weight.grad.norm()) if hasattr(b.ffn, "w2") else float(b.attn.out.weight.grad.norm())
             for b in model.blocks]  # fmt: skip
    model.zero_grad()
    return norms


def _norm_experiment(cfg: Config, ctx: RunContext, res: Result, corpus) -> None:
    x, y = corpus.batch("train", cfg.seq_len, cfg.batch_size, ctx.torch_generator("grad-probe"))
    out = {}
    for position in ("pre", "post"):
        model = _lm(cfg, corpus.vocab_size, cfg.deep_layers, None, position, ctx.torch_generator("deep-init"))
        grads = _layer_grad_norms(model, x, y)
        result = _train(cfg, ctx, model, corpus, cfg.deep_lr, 0, f"{position}-norm, no warm-up")
        out[position] = {"grads": grads, **result}
    spread = {p: max(r["grads"]) / min(r["grads"]) for p, r in out.items()}
    size = {p: float(np.mean(r["grads"])) for p, r in out.items()}
    res.table(
        "norm-position",
        columns=[
            "norm",
            "mean block gradient norm at init",
            "max/min over blocks",
            "held-out loss, no warm-up (nats)",
        ],
        rows=[[f"{p}-norm", size[p], spread[p], out[p]["held_out"]] for p in out],
        caption_en=f"{cfg.deep_layers} blocks, learning rate {cfg.deep_lr} from step 0.",
        caption_zh=f"{cfg.deep_layers} 个块，学习率从第 0 步起即为 {cfg.deep_lr}。",
    )
    res.metric("postnorm_minus_prenorm_loss", out["post"]["held_out"] - out["pre"]["held_out"], unit="nats")
    res.claim(
        "prenorm_gradients_even",
        "Pre-norm: spread (max/min over blocks) of the output-projection gradient norms at init",
        value=spread["pre"],
        op="<=",
        threshold=1.6,
        text_zh="前置归一化：初始化时各块输出投影梯度范数的离散度（最大/最小）",
    )
    fig, ax = new_figure(figsize=(6, 3.4))
    for p, r in out.items():
        ax.semilogy(np.arange(1, cfg.deep_layers + 1), r["grads"], "-o", ms=3, label=f"{p}-norm")
    ax.set_xlabel("block")
    ax.set_ylabel("‖∂L/∂W_out‖ at init")
    ax.legend()
    ctx.save_figure(
        fig,
        "norm-position",
        caption_en="Gradient norm of each block's output projection at initialisation.",
        caption_zh="初始化时每个块输出投影的梯度范数。",
    )


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    with torch_threads(1):
        _variance_experiment(cfg, ctx, res)
        corpus = char_corpus("shakespeare", n_chars=cfg.n_chars)
        _attention_experiment(cfg, ctx, res, corpus)
        _norm_experiment(cfg, ctx, res, corpus)
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Our LayerNorm / RMSNorm (forward + backward) vs torch's fused kernels, same shapes."""
    g = ctx.torch_generator("bench")
    x = torch.randn(64, cfg.seq_len, cfg.d_model, generator=g, requires_grad=True)
    w = torch.ones(cfg.d_model, requires_grad=True)
    b = torch.zeros(cfg.d_model, requires_grad=True)

    def step(fn):
        def go():
            fn().sum().backward()

        return go

    with torch_threads(1):
        ours_ln = best_time(step(lambda: layer_norm(x, (cfg.d_model,), w, b)))
        ref_ln = best_time(step(lambda: F.layer_norm(x, (cfg.d_model,), w, b)))
        ours_rms = best_time(step(lambda: rms_norm(x, (cfg.d_model,), w)))
        ref_rms = best_time(step(lambda: F.rms_norm(x, (cfg.d_model,), w)))
        ours_rms_vs_ln = ours_rms
    return [
        BenchRow(name="LayerNorm fwd+bwd", ours=ours_ln, reference=ref_ln, reference_name="F.layer_norm", unit="s"),
        BenchRow(name="RMSNorm fwd+bwd", ours=ours_rms, reference=ref_rms, reference_name="F.rms_norm", unit="s"),
        BenchRow(
            name="our RMSNorm vs our LayerNorm",
            ours=ours_rms_vs_ln,
            reference=ours_ln,
            reference_name="shiyan LayerNorm",
            unit="s",
        ),
    ]
