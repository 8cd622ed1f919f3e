"""D1 -- activation functions from the perceptron step to SwiGLU, measured on the digits images."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.nn import activations as A
from shiyan.nn import init, norms
from shiyan.optim import Adam, AdamW

META = TopicMeta(
    slug="activation-functions",
    category="DL",
    date=dt.date(2024, 3, 2),
    title_en="Activation functions: from the perceptron's step to SwiGLU",
    title_zh="激活函数：从感知机的阶跃到 SwiGLU",
    summary_en=(
        "Step, sigmoid, tanh, ReLU and its leaky and smooth successors, GELU, Swish and the gated GLU family that "
        "LLMs use: each written from its equation and checked against torch, then measured on real images -- "
        "vanishing gradients through depth, dead ReLUs at high learning rates, and SwiGLU vs ReLU feed-forward "
        "blocks at equal parameter count."
    ),
    summary_zh=(
        "阶跃、sigmoid、tanh、ReLU 及其带泄漏和平滑的后继者、GELU、Swish，以及大模型使用的门控 GLU 家族："
        "逐个按公式实现并与 torch 对照，再在真实图像上测量——梯度随深度消失、高学习率下的 ReLU 死亡，"
        "以及参数量相同时 SwiGLU 与 ReLU 前馈层的比较。"
    ),
    implements=("shiyan.nn.activations",),
)

# Activations compared in the gradient-flow and dead-unit experiments: name -> (function, init scheme).
# Saturating functions get Xavier's variance, rectifier-like ones He's (the pairing each was designed for).
FAMILY: dict[str, tuple[object, str]] = {
    "sigmoid": (A.sigmoid, "xavier"),
    "tanh": (A.tanh, "xavier"),
    "relu": (A.relu, "he"),
    "leaky_relu": (A.leaky_relu, "he"),
    "elu": (A.elu, "he"),
    "gelu": (A.gelu, "he"),
    "silu": (A.silu, "he"),
}
FLOWING = ("relu", "gelu", "silu")
DEAD_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "silu")
FFN_KINDS = ("relu", "gelu", "swiglu")


@dataclass(frozen=True)
class Config(TopicConfig):
    depth: int = 20
    """Hidden layers of the MLP whose per-layer gradient norms are measured at initialisation."""
    width: int = 64
    """Width of the hidden layers of the gradient-flow MLP."""
    dead_steps: int = 300
    """Adam steps of the dead-unit experiment (3 hidden layers)."""
    dead_width: int = 128
    """Width of the three hidden layers of the dead-unit experiment."""
    dead_lr_low: float = 1e-3
    """The usual Adam learning rate of the dead-unit experiment."""
    dead_lr_high: float = 3e-2
    """The too-large Adam learning rate that kills ReLU units."""
    ffn_steps: int = 300
    """AdamW steps of each feed-forward variant (ReLU, GELU, SwiGLU) on digits."""
    ffn_seeds: int = 3
    """Independent initialisations (and batch orders) per feed-forward variant."""
    d_model: int = 32
    """Residual width d of the feed-forward comparison."""
    d_ff: int = 128
    """Hidden width of the plain FFNs; SwiGLU gets 2/3 of it so the parameter counts match."""
    n_blocks: int = 2
    """Pre-norm residual FFN blocks stacked in the comparison model."""
    batch_size: int = 64
    """Minibatch size of every training run."""
    bench_numel: int = 1_000_000
    """Elements of the tensor used to time forward+backward of the elementwise activations."""
    bench_repeats: int = 5
    """Timing repeats per benchmark row (the best is kept)."""

    def validate(self) -> None:
        for name in ("depth", "width", "dead_steps", "dead_width", "ffn_steps", "ffn_seeds", "d_model"):
            if getattr(self, name) < 2 - (name == "ffn_seeds"):
                raise ConfigError(f"{name} must be >= {2 - (name == 'ffn_seeds')}; got {getattr(self, name)}")
        if self.d_ff < 3:
            raise ConfigError(f"d_ff must be >= 3; got {self.d_ff}")
        if self.n_blocks < 1 or self.batch_size < 1:
            raise ConfigError("n_blocks and batch_size must be >= 1")
        if not 0 < self.dead_lr_low < self.dead_lr_high:
            raise ConfigError(f"dead_lr_low must be in (0, dead_lr_high); got {self.dead_lr_low}, {self.dead_lr_high}")
        if self.bench_numel < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_numel and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(depth=12, dead_steps=100, dead_width=64, ffn_steps=150, ffn_seeds=1, bench_numel=100_000)


# -- data --------------------------------------------------------------------------------------


def _digits(ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardised digits (mean/std from the training split): X_train, y_train, X_test, y_test."""
    ds = data.load("digits")
    tr, te = data.train_test_split(len(ds.y), 0.3, ctx.numpy_generator("split"))
    mu, sd = ds.X[tr].mean(0), ds.X[tr].std(0) + 1e-6
    X = torch.tensor((ds.X - mu) / sd, dtype=torch.float32)  # (1797, 64)
    y = torch.tensor(ds.y, dtype=torch.long)
    return X[tr], y[tr], X[te], y[te]


def _batches(n: int, batch_size: int, steps: int, g: torch.Generator):
    for _ in range(steps):
        yield torch.randint(0, n, (batch_size,), generator=g)


# -- experiment 1: agreement with torch ----------------------------------------------------------


def _max_error_vs_torch(g: torch.Generator) -> float:
    pairs = [
        (A.sigmoid, torch.sigmoid),
        (A.tanh, torch.tanh),
        (A.relu, F.relu),
        (A.leaky_relu, F.leaky_relu),
        (A.elu, F.elu),
        (A.gelu, F.gelu),
        (lambda t: A.gelu(t, "tanh"), lambda t: F.gelu(t, approximate="tanh")),
        (A.silu, F.silu),
        (A.glu, F.glu),
    ]
    worst = 0.0
    for ours, ref in pairs:
        x = (4 * torch.randn(256, 64, generator=g, dtype=torch.float64)).requires_grad_(True)
        y, y_ref = ours(x), ref(x)
        up = torch.randn(y.shape, generator=g, dtype=torch.float64)
        (gx,) = torch.autograd.grad(y, x, up)
        (gx_ref,) = torch.autograd.grad(y_ref, x, up)
        worst = max(worst, (y - y_ref).abs().max().item(), (gx - gx_ref).abs().max().item())
    return worst


# -- experiment 2: gradient flow through depth ---------------------------------------------------


def _deep_mlp(depth: int, width: int, scheme: str, g: torch.Generator) -> list[torch.nn.Linear]:
    layers, d_in = [], 64
    for _ in range(depth):
        lin = init.linear(d_in, width, generator=g)
        if scheme == "xavier":
            init.xavier_normal_(lin.weight, generator=g)
        else:
            init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=g)
        torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
        d_in = width
    head = init.linear(width, 10, generator=g)
    init.xavier_normal_(head.weight, generator=g)
    return [*layers, head]


def _gradient_norms(act, layers, X, y) -> np.ndarray:
    h = X
    for lin in layers[:-1]:
        h = act(lin(h))
    loss = F.cross_entropy(layers[-1](h), y)
    grads = torch.autograd.grad(loss, [lin.weight for lin in layers[:-1]])
    return np.array([g.norm().item() for g in grads])  # (depth,)


# -- experiment 3: dead units ---------------------------------------------------------------------


def _dead_fraction(act, lr, cfg: Config, X, y, Xte, yte, ctx: RunContext, tag: str) -> tuple[float, float]:
    """Train 3 hidden layers with Adam; return (fraction of hidden units whose derivative is 0 on every
    training image, test accuracy)."""
    g = ctx.torch_generator("dead", tag)
    sizes = [64, cfg.dead_width, cfg.dead_width, cfg.dead_width]
    lins = [init.linear(a, b, generator=g) for a, b in zip(sizes, sizes[1:])]
    head = init.linear(cfg.dead_width, 10, generator=g)
    params = [p for m in (*lins, head) for p in m.parameters()]
    opt = Adam(params, lr=lr)
    for idx in _batches(len(y), cfg.batch_size, cfg.dead_steps, ctx.torch_generator("dead-batches", tag)):
        h = X[idx]
        for lin in lins:
            h = act(lin(h))
        loss = F.cross_entropy(head(h), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    dead = []
    h = X
    for lin in lins:
        pre = lin(h).detach().requires_grad_(True)  # (n, width)
        out = act(pre)
        (slope,) = torch.autograd.grad(out.sum(), pre)  # φ'(pre), elementwise
        dead.append(((slope != 0).sum(0) == 0).float().mean().item())
        h = out.detach()
    with torch.no_grad():
        h = Xte
        for lin in lins:
            h = act(lin(h))
        acc = (head(h).argmax(1) == yte).float().mean().item()
    return float(np.mean(dead)), acc


# -- experiment 4: feed-forward blocks at equal parameter count ----------------------------------


def _ffn_model(kind: str, cfg: Config, g: torch.Generator) -> torch.nn.Module:
    blocks = []
    for _ in range(cfg.n_blocks):
        if kind == "swiglu":
            ffn = A.SwiGLUFeedForward(cfg.d_model, A.gated_d_ff_for_equal_params(cfg.d_ff), generator=g)
        else:
            act = A.ReLU() if kind == "relu" else A.GELU()
            ffn = A.FeedForward(cfg.d_model, cfg.d_ff, activation=act, bias=False, generator=g)
        blocks.append(norms.PreNormBlock(ffn, norms.RMSNorm(cfg.d_model)))
    return torch.nn.Sequential(
        init.linear(64, cfg.d_model, generator=g),
        *blocks,
        norms.RMSNorm(cfg.d_model),
        init.linear(cfg.d_model, 10, generator=g),
    )


def _ffn_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for blk in model if isinstance(blk, norms.PreNormBlock) for p in blk.sublayer.parameters())


def _train_ffn(kind, seed, cfg, X, y, Xte, yte, ctx) -> tuple[float, float, int, list[float]]:
    g = ctx.torch_generator("ffn", kind, seed)
    model = _ffn_model(kind, cfg, g)
    opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    curve = []
    batches = _batches(len(y), cfg.batch_size, cfg.ffn_steps, ctx.torch_generator("ffn-batches", seed))
    for t, idx in enumerate(batches):
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (t + 1) % max(1, cfg.ffn_steps // 10) == 0:
            with torch.no_grad():
                curve.append(F.cross_entropy(model(Xte), yte).item())
    with torch.no_grad():
        out = model(Xte)
        ce = F.cross_entropy(out, yte).item()
        acc = (out.argmax(1) == yte).float().mean().item()
    return ce, acc, _ffn_params(model), curve


# -- run ------------------------------------------------------------------------------------------


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    X, y, Xte, yte = _digits(ctx)

    # 1. our activations equal torch's, values and gradients
    err = _max_error_vs_torch(ctx.torch_generator("oracle"))
    res.metric("max_abs_error_vs_torch", err, description="values and gradients, float64, 9 activations")
    res.claim(
        "activations_match_torch",
        "Every activation equals torch.nn.functional in value and gradient (max abs difference, float64)",
        err,
        "<=",
        1e-12,
        text_zh="每个激活函数的值与梯度都与 torch.nn.functional 一致（float64 下的最大绝对差）",
    )

    # 2. gradient flow at initialisation through `depth` layers (one batch of 512 real images)
    ratios, profiles = {}, {}
    for name, (act, scheme) in FAMILY.items():
        layers = _deep_mlp(cfg.depth, cfg.width, scheme, ctx.torch_generator("depth", name))
        norms_ = _gradient_norms(act, layers, X[:512], y[:512])
        profiles[name] = norms_
        ratios[name] = float(norms_[0] / norms_[-1])
        res.metric(f"grad_ratio_{name}", ratios[name], description="|∇W_1| / |∇W_L| at initialisation")
    res.claim(
        "sigmoid_gradient_vanishes",
        f"Through {cfg.depth} sigmoid layers the first layer's gradient is < 1e-3 of the last one's",
        ratios["sigmoid"],
        "<",
        1e-3,
        text_zh=f"经过 {cfg.depth} 层 sigmoid，第一层的梯度不到最后一层的千分之一",
    )
    flow = min(min(ratios[n], 1.0 / ratios[n]) for n in FLOWING)
    res.claim(
        "rectifiers_keep_gradient",
        f"With He initialisation, ReLU, GELU and SiLU keep the first/last gradient ratio within 10x of 1 "
        f"(worst of min(r, 1/r)) at depth {cfg.depth}",
        flow,
        ">=",
        0.1,
        text_zh=f"使用 He 初始化时，ReLU、GELU、SiLU 在 {cfg.depth} 层深处首末层梯度之比保持在 1 的 10 倍以内（取 min(r, 1/r) 的最差值）",
    )
    res.table(
        "gradient_flow",
        ["activation", "initialisation", "|∇W_1| / |∇W_L|"],
        [[n, FAMILY[n][1], ratios[n]] for n in FAMILY],
        caption_en=f"Gradient norm of the first layer relative to the last, {cfg.depth} layers of width {cfg.width}, "
        "at initialisation, one batch of 512 digits.",
        caption_zh=f"初始化时第一层与最后一层的梯度范数之比（{cfg.depth} 层、宽 {cfg.width}，512 张手写数字）。",
    )

    # 3. dead units: fraction of hidden units with zero derivative on every training image
    rows, dead = [], {}
    for name in ctx.progress(DEAD_FAMILY, total=len(DEAD_FAMILY), description="dead units"):
        for lr in (cfg.dead_lr_low, cfg.dead_lr_high):
            frac, acc = _dead_fraction(FAMILY[name][0], lr, cfg, X, y, Xte, yte, ctx, f"{name}-{lr}")
            dead[(name, lr)] = frac
            rows.append([name, lr, frac, acc])
    res.metric("dead_relu_low_lr", dead[("relu", cfg.dead_lr_low)])
    res.metric("dead_relu_high_lr", dead[("relu", cfg.dead_lr_high)])
    res.claim(
        "relu_dies_at_high_lr",
        f"With Adam at lr = {cfg.dead_lr_high:g}, at least 10% of ReLU units are dead (zero gradient on all images)",
        dead[("relu", cfg.dead_lr_high)],
        ">=",
        0.10,
        text_zh=f"Adam 学习率为 {cfg.dead_lr_high:g} 时，至少 10% 的 ReLU 单元死亡（对所有图像梯度为零）",
    )
    res.claim(
        "dead_relu_grows_with_lr",
        f"Raising the learning rate from {cfg.dead_lr_low:g} to {cfg.dead_lr_high:g} kills at least 10 points "
        "more ReLU units",
        dead[("relu", cfg.dead_lr_high)] - dead[("relu", cfg.dead_lr_low)],
        ">=",
        0.10,
        text_zh=f"学习率从 {cfg.dead_lr_low:g} 提到 {cfg.dead_lr_high:g}，死亡的 ReLU 单元至少多 10 个百分点",
    )
    leaky_dead = max(dead[("leaky_relu", lr)] for lr in (cfg.dead_lr_low, cfg.dead_lr_high))
    res.claim(
        "leaky_relu_never_dies",
        "Leaky ReLU has no unit with zero gradient on all images, at either learning rate",
        leaky_dead,
        "==",
        0.0,
        text_zh="Leaky ReLU 在两种学习率下都没有对所有图像梯度为零的单元",
    )
    res.table(
        "dead_units",
        ["activation", "Adam lr", "dead fraction", "test accuracy"],
        rows,
        caption_en=f"Three hidden layers of {cfg.dead_width} units, {cfg.dead_steps} Adam steps on digits. A unit is "
        "dead when φ'(pre-activation) = 0 on every training image (exactly, in float32).",
        caption_zh=f"三层隐藏层、每层 {cfg.dead_width} 个单元，在手写数字上训练 {cfg.dead_steps} 步 Adam。"
        "若某单元在所有训练图像上 φ'(预激活) 恰为 0（float32），则记为死亡。",
    )

    # 4. SwiGLU vs ReLU vs GELU feed-forward blocks at equal parameter count
    results: dict[str, list[tuple[float, float, int, list[float]]]] = {k: [] for k in FFN_KINDS}
    jobs = [(k, s) for k in FFN_KINDS for s in range(cfg.ffn_seeds)]
    for kind, seed in ctx.progress(jobs, total=len(jobs), description="feed-forward variants"):
        results[kind].append(_train_ffn(kind, seed, cfg, X, y, Xte, yte, ctx))
    ce = {k: float(np.mean([r[0] for r in v])) for k, v in results.items()}
    acc = {k: float(np.mean([r[1] for r in v])) for k, v in results.items()}
    n_params = {k: v[0][2] for k, v in results.items()}
    for k in FFN_KINDS:
        res.metric(f"ffn_test_ce_{k}", ce[k], unit="nats")
        res.metric(f"ffn_test_acc_{k}", acc[k])
    param_gap = abs(n_params["swiglu"] - n_params["relu"]) / n_params["relu"]
    res.claim(
        "ffn_equal_parameters",
        "The SwiGLU FFN (hidden width 2/3 d_ff, three matrices) has the plain FFN's parameter count within 1%",
        param_gap,
        "<=",
        0.01,
        text_zh="SwiGLU 前馈层（隐藏宽度取 d_ff 的 2/3，三个矩阵）与普通前馈层的参数量相差不超过 1%",
    )
    res.claim(
        "swiglu_not_worse_than_relu",
        "At equal parameters, SwiGLU's test cross-entropy on digits is no more than 0.05 nats above ReLU's",
        ce["swiglu"] - ce["relu"],
        "<=",
        0.05,
        text_zh="参数量相同时，SwiGLU 在手写数字测试集上的交叉熵比 ReLU 高出不超过 0.05 nats",
    )
    res.table(
        "ffn_comparison",
        ["FFN", "hidden width", "FFN parameters", "test cross-entropy", "test accuracy", "runs"],
        [
            [
                k,
                A.gated_d_ff_for_equal_params(cfg.d_ff) if k == "swiglu" else cfg.d_ff,
                n_params[k],
                ce[k],
                acc[k],
                cfg.ffn_seeds,
            ]
            for k in FFN_KINDS
        ],
        caption_en=f"{cfg.n_blocks} pre-norm residual FFN blocks (d = {cfg.d_model}) on digits, {cfg.ffn_steps} AdamW "
        f"steps, mean over {cfg.ffn_seeds} seed(s).",
        caption_zh=f"{cfg.n_blocks} 个 pre-norm 残差前馈块（d = {cfg.d_model}），在手写数字上训练 {cfg.ffn_steps} 步 AdamW，"
        f"取 {cfg.ffn_seeds} 个种子的平均。",
    )

    _figures(cfg, ctx, profiles, results)
    return res


def _figures(cfg: Config, ctx: RunContext, profiles, results) -> None:
    x = torch.linspace(-4, 4, 401, dtype=torch.float64, requires_grad=True)
    curves = {
        "step": A.step,
        "sigmoid": A.sigmoid,
        "tanh": A.tanh,
        "ReLU": A.relu,
        "leaky ReLU (0.1)": lambda t: A.leaky_relu(t, 0.1),
        "ELU": A.elu,
        "GELU": A.gelu,
        "SiLU": A.silu,
    }
    fig, (ax, ax2) = new_figure(1, 2, figsize=(10, 4))
    for i, (name, fn) in enumerate(curves.items()):
        yv = fn(x)
        ax.plot(x.detach(), yv.detach(), color=f"C{i}", lw=1.4, label=name)
        if yv.requires_grad:
            (dy,) = torch.autograd.grad(yv.sum(), x)
            ax2.plot(x.detach(), dy, color=f"C{i}", lw=1.4, label=name)
        else:
            ax2.plot(x.detach(), torch.zeros_like(x).detach(), color=f"C{i}", lw=1.4, label=name)
    ax.set_ylim(-1.5, 4)
    ax.set_title("φ(x)")
    ax2.set_title("φ'(x) (autograd)")
    ax2.set_ylim(-0.2, 1.3)
    for a in (ax, ax2):
        a.set_xlabel("x")
    ax.legend(fontsize=7)
    ctx.save_figure(
        fig,
        "activations",
        caption_en="The activations (left) and their derivatives from autograd (right). The step's derivative is zero.",
        caption_zh="各激活函数（左）及由自动求导得到的导数（右）。阶跃函数的导数处处为零。",
    )

    fig, ax = new_figure()
    for i, (name, prof) in enumerate(profiles.items()):
        ax.plot(np.arange(1, len(prof) + 1), prof, marker="o", ms=3, color=f"C{i}", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("‖∂L/∂W_l‖")
    ax.set_title(f"Gradient norm per layer at initialisation, depth {cfg.depth}")
    ax.legend(fontsize=7)
    ctx.save_figure(
        fig,
        "gradient-flow",
        caption_en="Per-layer weight-gradient norms on a batch of digits: sigmoid's fall by orders of magnitude "
        "towards the input, the rectifiers' stay level.",
        caption_zh="一批手写数字上各层权重梯度的范数：sigmoid 向输入方向衰减数个数量级，整流类激活基本持平。",
    )

    fig, ax = new_figure()
    for i, (kind, runs) in enumerate(results.items()):
        curves_ = np.array([r[3] for r in runs])  # (seeds, points)
        steps = np.linspace(cfg.ffn_steps / curves_.shape[1], cfg.ffn_steps, curves_.shape[1])
        ax.plot(steps, curves_.mean(0), marker="o", ms=3, color=f"C{i}", label=f"{kind} ({runs[0][2]} params)")
    ax.set_yscale("log")
    ax.set_xlabel("AdamW step")
    ax.set_ylabel("test cross-entropy")
    ax.set_title("Feed-forward blocks at equal parameter count")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "ffn-comparison",
        caption_en="Test cross-entropy during training of the ReLU, GELU and SwiGLU feed-forward models.",
        caption_zh="ReLU、GELU 与 SwiGLU 前馈模型训练过程中的测试交叉熵。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    with torch_threads(1):
        return _bench(cfg, ctx)


def _bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    g = ctx.torch_generator("bench")
    x = torch.randn(cfg.bench_numel, generator=g, requires_grad=True)

    def fwd_bwd(fn):
        return lambda: torch.autograd.grad(fn(x).sum(), x)

    rows = []
    for name, ours, ref, ref_name in [
        ("GELU (erf)", A.gelu, F.gelu, "torch.nn.functional.gelu"),
        ("SiLU", A.silu, F.silu, "torch.nn.functional.silu"),
        ("sigmoid", A.sigmoid, torch.sigmoid, "torch.sigmoid"),
    ]:
        t_ours = best_time(fwd_bwd(ours), cfg.bench_repeats)
        t_ref = best_time(fwd_bwd(ref), cfg.bench_repeats)
        rows.append(
            BenchRow(f"{name} forward+backward, {cfg.bench_numel:,} floats", t_ours, t_ref, ref_name, note="fp32")
        )
    tokens = max(32, cfg.bench_numel // 2000)  # 500 rows of 256 features by default
    ffn = A.SwiGLUFeedForward(256, 683, generator=g)
    xb = torch.randn(tokens, 256, generator=g)

    def ref_ffn():
        h = F.silu(F.linear(xb, ffn.w1.weight)) * F.linear(xb, ffn.w3.weight)
        return F.linear(h, ffn.w2.weight).sum().backward()

    t_ours = best_time(lambda: ffn(xb).sum().backward(), cfg.bench_repeats)
    t_ref = best_time(ref_ffn, cfg.bench_repeats)
    rows.append(
        BenchRow(
            f"SwiGLU FFN forward+backward ({tokens} x 256, hidden 683)",
            t_ours,
            t_ref,
            "torch.nn.functional.linear + silu",
            note="same weights",
        )
    )
    return rows
