"""D7 -- mixed-precision training: float formats bit by bit, fp32 master weights, dynamic loss scaling."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.nn import floats as fl
from shiyan.nn import init
from shiyan.optim import AdamW, LossScaler, MasterWeights

META = TopicMeta(
    slug="mixed-precision",
    category="DL",
    date=dt.date(2024, 3, 16),
    title_en="Mixed-precision training: fp16, bf16 and dynamic loss scaling",
    title_zh="混合精度训练：fp16、bf16 与动态损失缩放",
    summary_en=(
        "fp64, fp32, fp16 and bf16 taken apart bit by bit; why fp16 gradients underflow and how multiplying the "
        "loss fixes it; fp32 master weights; a dynamic loss scaler that skips overflowing steps, identical to "
        "torch.amp.GradScaler; and fp16 and bf16 training on real images next to fp32."
    ),
    summary_zh=(
        "逐位拆解 fp64、fp32、fp16 与 bf16；fp16 梯度为何下溢、放大损失如何解决；fp32 主权重；"
        "遇到溢出就跳过该步的动态损失缩放器（与 torch.amp.GradScaler 完全一致）；以及在真实图像上 fp16、bf16 与 fp32 训练的对比。"
    ),
    implements=("shiyan.nn.floats", "shiyan.optim.loss_scaler"),
)

MODES = ("fp32", "fp16 + dynamic scaling", "fp16 unscaled", "fp16 static S", "bf16 autocast")


@dataclass(frozen=True)
class Config(TopicConfig):
    steps: int = 600
    """AdamW steps of every training run on digits."""
    hidden: int = 128
    """Width of the two hidden layers of the ReLU classifier."""
    lr: float = 3e-3
    """Learning rate of AdamW (on the fp32 master weights)."""
    batch_size: int = 64
    """Minibatch size."""
    init_scale: float = 2.0**24
    """Starting loss scale S of the dynamic scaler (and the fixed S of the static run); large on purpose."""
    growth_interval: int = 100
    """Good steps in a row before the dynamic scaler doubles S."""
    n_values: int = 20_000
    """Random numbers rounded by the explorer and by numpy/torch casts."""
    hist_batches: int = 8
    """Training batches whose activation gradients are collected for the underflow histogram."""
    bench_numel: int = 2_000_000
    """Size of the tensors in the benchmark (fp32 -> bf16 rounding, gradient unscaling)."""
    bench_repeats: int = 5
    """Timing repeats per benchmark row (the best is kept)."""

    def validate(self) -> None:
        if self.steps < 20:
            raise ConfigError(f"steps must be >= 20; got {self.steps}")
        if self.hidden < 2 or self.batch_size < 1:
            raise ConfigError("hidden must be >= 2 and batch_size >= 1")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if not (1.0 <= self.init_scale < 2.0**127):
            raise ConfigError(f"init_scale must be in [1, 2**127); got {self.init_scale}")
        if self.growth_interval < 1:
            raise ConfigError(f"growth_interval must be >= 1; got {self.growth_interval}")
        if self.n_values < 100 or self.hist_batches < 1:
            raise ConfigError("n_values must be >= 100 and hist_batches >= 1")
        if self.bench_numel < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_numel and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(steps=150, growth_interval=50, n_values=3000, hist_batches=4, bench_numel=200_000)


def _digits(ctx: RunContext):
    ds = data.load("digits")
    tr, te = data.train_test_split(len(ds.y), 0.3, ctx.numpy_generator("split"))
    X = torch.tensor(ds.X / 16.0, dtype=torch.float32)  # (1797, 64)
    y = torch.tensor(ds.y, dtype=torch.long)
    return X[tr], y[tr], X[te], y[te]


def _mlp(cfg: Config, ctx: RunContext) -> torch.nn.Sequential:
    g = ctx.torch_generator("init")  # every run starts from the same fp32 weights
    h = cfg.hidden
    return torch.nn.Sequential(
        init.linear(64, h, generator=g),
        torch.nn.ReLU(),
        init.linear(h, h, generator=g),
        torch.nn.ReLU(),
        init.linear(h, 10, generator=g),
    )


@dataclass
class _Run:
    test_acc: float
    scales: list[float] = field(default_factory=list)
    skipped: list[bool] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    nonfinite_fraction: float = 0.0
    master: list[torch.Tensor] = field(default_factory=list)
    model: torch.nn.Module | None = None


def _train(mode: str, cfg: Config, ctx: RunContext, X, y, Xte, yte, scaler=None) -> _Run:
    """One training run. fp16 modes keep an fp16 model and fp32 master weights; bf16 uses autocast."""
    model = _mlp(cfg, ctx)
    half = mode.startswith("fp16")
    if half:
        model = model.half()
        masters = MasterWeights(model)
        params = masters.params
    else:
        params = list(model.parameters())
    opt = AdamW(params, lr=cfg.lr, weight_decay=0.0)
    if scaler is None:
        scaler = LossScaler(cfg.init_scale, growth_interval=cfg.growth_interval, enabled=mode.endswith("scaling"))
    static_scale = cfg.init_scale if mode.startswith("fp16 static") else 1.0
    out = _Run(test_acc=math.nan)
    gb = ctx.torch_generator("batches")
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(y), (cfg.batch_size,), generator=gb)
        xb = X[idx]
        if mode == "bf16 autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(xb)
        else:
            logits = model(xb.half() if half else xb)
        loss = F.cross_entropy(logits.float(), y[idx])  # the loss itself in fp32
        opt.zero_grad()
        scaler.scale(loss * static_scale).backward()
        if half:
            masters.copy_grads_()
        if static_scale != 1.0:  # naive fixed scaling: divide and step, no overflow check
            with torch.no_grad():
                for p in params:
                    p.grad.div_(static_scale)
        scale_before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        if half:
            masters.copy_params_()
        out.scales.append(scale_before * static_scale)
        out.skipped.append(scaler.is_enabled() and scaler.get_scale() < scale_before)
        out.losses.append(loss.item())
    flat = torch.cat([p.detach().float().flatten() for p in params])
    out.nonfinite_fraction = (~torch.isfinite(flat)).float().mean().item()
    out.master = [p.detach().clone() for p in params]
    with torch.no_grad():
        logits = model(Xte.half() if half else Xte).float()
        out.test_acc = (logits.argmax(1) == yte).float().mean().item()
    out.model = model
    return out


def _activation_gradients(model: torch.nn.Module, cfg: Config, ctx: RunContext, X, y) -> torch.Tensor:
    """Non-zero fp32 gradients dL/dh of every layer output, over a few training batches."""
    values = []
    gb = ctx.torch_generator("hist")
    for _ in range(cfg.hist_batches):
        idx = torch.randint(0, len(y), (cfg.batch_size,), generator=gb)
        h, outs = X[idx], []
        for layer in model:
            h = layer(h)
            if isinstance(layer, torch.nn.Linear):
                h.retain_grad()
                outs.append(h)
        F.cross_entropy(h, y[idx]).backward()
        values += [o.grad.flatten() for o in outs]
    model.zero_grad()
    g = torch.cat(values)
    return g[g != 0]


def _explorer_checks(cfg: Config, ctx: RunContext) -> tuple[int, int]:
    """(limit mismatches vs torch.finfo, round-trip mismatches vs numpy/torch casts)."""
    torch_dtypes = {"fp64": torch.float64, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    limit_bad = 0
    for fmt in fl.FORMATS:
        fi = torch.finfo(torch_dtypes[fmt.name])
        zero = torch.zeros(1, dtype=torch_dtypes[fmt.name])
        sub = torch.nextafter(zero, torch.ones_like(zero)).item()
        pairs = [
            (fmt.bits, fi.bits),
            (fmt.eps, fi.eps),
            (fmt.max, fi.max),
            (fmt.min_normal, fi.tiny),
            (fmt.min_subnormal, sub),
        ]
        limit_bad += sum(a != b for a, b in pairs)
    rng = ctx.numpy_generator("values")
    vals = rng.standard_normal(cfg.n_values) * np.exp2(rng.uniform(-30, 30, cfg.n_values))
    round_bad = 0
    for fmt in fl.FORMATS:
        ours = np.array([fl.round_to(float(v), fmt) for v in vals])
        if fmt.name == "bf16":
            ref = torch.from_numpy(vals).to(torch.bfloat16).double().numpy()
        else:
            with np.errstate(over="ignore"):
                ref = vals.astype({"fp64": np.float64, "fp32": np.float32, "fp16": np.float16}[fmt.name]).astype(float)
        round_bad += int(np.sum(ours != ref))
    return limit_bad, round_bad


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()

    # 1. the explorer agrees with torch.finfo and with numpy/torch casts
    limit_bad, round_bad = _explorer_checks(cfg, ctx)
    res.claim(
        "format_limits_match_finfo",
        "eps, max, smallest normal and subnormal of fp64/fp32/fp16/bf16 from the bit layout equal torch.finfo "
        "(number of mismatches)",
        limit_bad,
        "==",
        0,
        text_zh="由位布局算出的 fp64/fp32/fp16/bf16 的 eps、最大值、最小正规数与最小次正规数都与 torch.finfo 一致（不一致的个数）",
    )
    res.claim(
        "rounding_matches_casts",
        f"Round-to-nearest-even of {cfg.n_values:,} random numbers into each format equals numpy/torch casts "
        "(number of mismatches)",
        round_bad,
        "==",
        0,
        text_zh=f"把 {cfg.n_values:,} 个随机数按“就近舍入、平局取偶”舍入到各格式，结果与 numpy/torch 的类型转换完全一致（不一致的个数）",
    )
    res.table(
        "formats",
        ["format", "bits", "exponent", "mantissa", "eps", "max", "min normal", "min subnormal", "decimal digits"],
        [
            [
                f.name,
                f.bits,
                f.exponent_bits,
                f.mantissa_bits,
                f.eps,
                f.max,
                f.min_normal,
                f.min_subnormal,
                f.decimal_digits,
            ]
            for f in fl.FORMATS
        ],
        caption_en="The four formats, every number computed from the bit layout by shiyan.nn.floats.",
        caption_zh="四种格式；每个数都由 shiyan.nn.floats 从位布局算出。",
    )

    # 2. training runs on digits
    X, y, Xte, yte = _digits(ctx)
    runs = {}
    for mode in ctx.progress(MODES, total=len(MODES), description="precisions"):
        runs[mode] = _train(mode, cfg, ctx, X, y, Xte, yte)
    ref_scaler = torch.amp.GradScaler("cpu", init_scale=cfg.init_scale, growth_interval=cfg.growth_interval)
    ref = _train("fp16 + dynamic scaling", cfg, ctx, X, y, Xte, yte, scaler=ref_scaler)
    dyn = runs["fp16 + dynamic scaling"]
    scale_mismatch = sum(a != b for a, b in zip(dyn.scales, ref.scales)) + sum(
        a != b for a, b in zip(dyn.skipped, ref.skipped)
    )
    param_diff = max((a - b).abs().max().item() for a, b in zip(dyn.master, ref.master))
    res.metric("max_master_diff_vs_grad_scaler", param_diff)
    res.claim(
        "scaler_equals_grad_scaler",
        "On the fp16 run, our LossScaler's scale sequence and skipped steps equal torch.amp.GradScaler's "
        "(number of differing steps)",
        scale_mismatch + (param_diff != 0.0),
        "==",
        0,
        text_zh="在 fp16 训练中，我们的 LossScaler 的缩放序列与跳过的步与 torch.amp.GradScaler 完全相同（不同的步数）",
    )
    n_skipped = int(sum(dyn.skipped))
    res.metric("skipped_steps", n_skipped, description=f"dynamic scaler, S starts at {cfg.init_scale:g}")
    res.metric("final_scale", dyn.scales[-1])
    res.claim(
        "dynamic_scaler_skips_overflow",
        f"Starting from S = {cfg.init_scale:g}, the dynamic scaler meets fp16 overflow, skips those steps and "
        "backs off (number of skipped steps >= 1)",
        n_skipped,
        ">=",
        1,
        text_zh=f"从 S = {cfg.init_scale:g} 起步，动态缩放器遇到 fp16 溢出、跳过这些步并减小 S（跳过的步数 ≥ 1）",
    )
    static = runs["fp16 static S"]
    res.claim(
        "static_scale_overflow_breaks_training",
        "The same S kept fixed, without the overflow check, turns the master weights into inf/NaN (fraction)",
        static.nonfinite_fraction,
        ">",
        0.0,
        text_zh="同样的 S 若固定不变、又不检查溢出，fp32 主权重会变成 inf/NaN（所占比例）",
    )
    fp32 = runs["fp32"]
    for mode in MODES:
        res.metric(f"test_acc[{mode}]", runs[mode].test_acc)
    res.claim(
        "fp16_scaled_matches_fp32",
        "fp16 with fp32 master weights and dynamic scaling reaches fp32's test accuracy within 2 points",
        abs(dyn.test_acc - fp32.test_acc),
        "<=",
        0.02,
        text_zh="fp16 加 fp32 主权重与动态缩放，测试准确率与 fp32 相差不超过 2 个百分点",
    )
    bf16 = runs["bf16 autocast"]
    res.claim(
        "bf16_autocast_matches_fp32",
        "bf16 autocast on CPU (no loss scaling) reaches fp32's test accuracy within 2 points",
        abs(bf16.test_acc - fp32.test_acc),
        "<=",
        0.02,
        text_zh="CPU 上的 bf16 autocast（不做损失缩放）测试准确率与 fp32 相差不超过 2 个百分点",
    )
    res.table(
        "runs",
        ["precision", "test accuracy", "skipped steps", "final S", "non-finite weights"],
        [[m, r.test_acc, int(sum(r.skipped)), r.scales[-1], r.nonfinite_fraction] for m, r in runs.items()],
        caption_en=f"Two hidden layers of {cfg.hidden} ReLU units on digits, {cfg.steps} AdamW steps, same initial "
        "weights and batches in every run.",
        caption_zh=f"两层、每层 {cfg.hidden} 个 ReLU 单元，手写数字，{cfg.steps} 步 AdamW；各次运行的初始权重与批次完全相同。",
    )

    # 3. why scaling is needed: activation gradients of the trained fp32 model
    grads = _activation_gradients(fp32.model, cfg, ctx, X, y)  # (n,) non-zero fp32 values
    S = dyn.scales[-1]
    flushed = (grads.half() == 0).float().mean().item()
    subnormal = (grads.abs() < fl.FP16.min_normal).float().mean().item()
    scaled = (grads * S).half()
    flushed_scaled = (scaled == 0).float().mean().item()
    overflow_scaled = (~torch.isfinite(scaled)).float().mean().item()
    res.metric("grad_fraction_flushed_fp16", flushed, description="non-zero fp32 dL/dh that become 0 in fp16")
    res.metric("grad_fraction_subnormal_fp16", subnormal, description="below fp16's smallest normal 2^-14")
    res.metric("grad_fraction_flushed_scaled", flushed_scaled, description=f"after multiplying by S = {S:g}")
    res.metric("grad_fraction_overflow_scaled", overflow_scaled)
    res.claim(
        "fp16_underflows_without_scaling",
        "Without scaling, fp16 flushes at least 1% of the non-zero activation gradients to zero",
        flushed,
        ">=",
        0.01,
        text_zh="不做缩放时，fp16 会把至少 1% 的非零激活梯度冲成零",
    )
    res.claim(
        "scaling_rescues_gradients",
        "With the dynamic scaler's final S, fewer than a tenth as many gradients are lost (flushed or overflowed)",
        (flushed_scaled + overflow_scaled) / max(flushed, 1e-12),
        "<",
        0.1,
        text_zh="使用动态缩放器最终的 S 后，丢失（冲零或溢出）的梯度不到不缩放时的十分之一",
    )

    _figures(cfg, ctx, runs, ref, grads, S)
    return res


def _figures(cfg: Config, ctx: RunContext, runs, ref, grads, S) -> None:
    fig, ax = new_figure(figsize=(8, 3))
    for row, fmt in enumerate(reversed(fl.FORMATS)):
        total = fmt.bits
        parts = [("sign", 1, "C3"), ("exponent", fmt.exponent_bits, "C0"), ("mantissa", fmt.mantissa_bits, "C2")]
        left = 0
        for name, width, color in parts:
            scale = 32 / 64 if fmt.bits == 64 else 1.0
            ax.barh(
                row, width * scale, left=left * scale, color=color, edgecolor="white", label=name if row == 0 else None
            )
            ax.text((left + width / 2) * scale, row, str(width), ha="center", va="center", color="white", fontsize=8)
            left += width
        ax.text(
            -0.5,
            row,
            f"{fmt.name} ({total} bits{', drawn at half scale' if total == 64 else ''})",
            ha="right",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(-14, 33)
    ax.set_yticks([])
    ax.set_xticks([])
    ax.grid(False)
    ax.legend(fontsize=8, loc="lower right", ncols=3)
    ax.set_title("Bit layouts: sign | exponent | mantissa")
    ctx.save_figure(
        fig,
        "bit-layouts",
        caption_en="Field widths of the four formats. bf16 keeps fp32's 8 exponent bits; fp16 has 5.",
        caption_zh="四种格式的字段宽度。bf16 保留了 fp32 的 8 位指数，fp16 只有 5 位。",
    )

    fig, ax = new_figure()
    logs = torch.log2(grads.abs()).double().numpy()
    bins = np.arange(np.floor(logs.min()) - 1, np.ceil(logs.max() + math.log2(S)) + 2, 1.0)
    ax.hist(logs, bins=bins, alpha=0.5, color="C0", label="|dL/dh| (fp32)")
    ax.hist(logs + math.log2(S), bins=bins, alpha=0.5, color="C1", label=f"× S = 2^{math.log2(S):.0f}")
    ymax = ax.get_ylim()[1]
    for x, name in ((-24, "fp16 min subnormal"), (-14, "fp16 min normal"), (16, "fp16 max")):
        ax.axvline(x, color="k", ls="--", lw=1)
        ax.text(x + 0.3, ymax * 0.9, name, rotation=90, va="top", fontsize=7)
    ax.set_xlabel("log2 |gradient|")
    ax.set_ylabel("count")
    ax.set_title("Activation gradients against fp16's range")
    ax.legend(fontsize=8, loc="upper left")
    ctx.save_figure(
        fig,
        "gradient-histogram",
        caption_en="Activation gradients of the trained model: many lie below fp16's smallest subnormal; the loss "
        "scale shifts them into range.",
        caption_zh="训练后模型的激活梯度：很多落在 fp16 最小次正规数之下；损失缩放把它们平移进可表示范围。",
    )

    fig, (ax, ax2) = new_figure(1, 2, figsize=(10, 4))
    dyn = runs["fp16 + dynamic scaling"]
    steps = np.arange(1, cfg.steps + 1)
    ax.plot(steps, np.log2(dyn.scales), color="C1", label="LossScaler")
    ax.plot(steps, np.log2(ref.scales), color="k", ls=":", label="torch.amp.GradScaler")
    skipped = [t + 1 for t, s in enumerate(dyn.skipped) if s]
    ax.plot(skipped, [math.log2(dyn.scales[t - 1]) for t in skipped], "x", color="C3", label="skipped step")
    ax.set_xlabel("step")
    ax.set_ylabel("log2 S")
    ax.set_title("Dynamic loss scale")
    ax.legend(fontsize=8)
    window = max(1, cfg.steps // 30)
    kernel = np.ones(window) / window
    for i, (mode, r) in enumerate(runs.items()):
        losses = np.array(r.losses)
        if not np.isfinite(losses).all():
            continue
        ax2.plot(steps[window - 1 :], np.convolve(losses, kernel, mode="valid"), color=f"C{i}", label=mode)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (moving average)")
    ax2.set_title("Training loss by precision")
    ax2.legend(fontsize=7)
    ctx.save_figure(
        fig,
        "loss-scale",
        caption_en="Left: S backs off on overflow, then grows every growth interval; torch's GradScaler (dotted) "
        "is identical. Right: training loss of the runs whose loss stayed finite.",
        caption_zh="左：S 在溢出时减半，之后每个增长间隔翻倍；torch 的 GradScaler（点线）与之完全重合。右：损失保持有限的各次训练的训练损失。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    with torch_threads(1):
        g = ctx.torch_generator("bench")
        x = torch.randn(cfg.bench_numel, generator=g)
        words = x.numpy().view(np.uint32)
        rows = [
            BenchRow(
                f"fp32 -> bf16 round-to-nearest-even, {cfg.bench_numel:,} values",
                best_time(lambda: fl.bf16_bits_from_fp32(words), cfg.bench_repeats),
                best_time(lambda: x.to(torch.bfloat16), cfg.bench_repeats),
                "torch.Tensor.to(torch.bfloat16)",
                note="numpy bit arithmetic vs a native kernel",
            )
        ]
        params = [torch.nn.Parameter(torch.zeros(cfg.bench_numel // 8)) for _ in range(8)]
        opt = torch.optim.SGD(params, lr=0.0)
        grads = [torch.randn(p.shape, generator=g) for p in params]

        def one_iteration(scaler):
            scaler.scale(torch.ones(()))  # GradScaler creates its scale tensor on the first scale() call

            def go():
                for p, gr in zip(params, grads):
                    p.grad = gr.clone()
                scaler.unscale_(opt)
                scaler.step(opt)
                scaler.update()

            return go

        rows.append(
            BenchRow(
                f"unscale_ + step + update, {cfg.bench_numel:,} gradients in 8 tensors",
                best_time(one_iteration(LossScaler()), cfg.bench_repeats),
                best_time(one_iteration(torch.amp.GradScaler("cpu")), cfg.bench_repeats),
                "torch.amp.GradScaler('cpu')",
                note="SGD with lr 0 so only the scaler's work differs",
            )
        )
        return rows
