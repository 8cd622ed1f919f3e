"""D6 -- Adam with L2 vs AdamW: where the weight decay goes, measured on the digits images."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.nn import init
from shiyan.optim import Adam, AdamW

META = TopicMeta(
    slug="adam-vs-adamw",
    category="DL",
    date=dt.date(2024, 3, 9),
    title_en="Adam vs AdamW: decoupled weight decay",
    title_zh="Adam 与 AdamW：解耦的权重衰减",
    summary_en=(
        "Adam's L2 penalty passes through the adaptive denominator, so each weight is decayed by λ/√v̂ instead of λ; "
        "AdamW applies the decay outside the moments. Both optimisers written from the equations, equal to "
        "torch.optim step for step, and the difference measured on a real classifier."
    ),
    summary_zh=(
        "Adam 的 L2 惩罚要经过自适应分母，每个权重实际受到的衰减是 λ/√v̂ 而不是 λ；AdamW 把衰减放在动量之外。"
        "两个优化器都按公式实现、与 torch.optim 逐步一致，并在真实分类任务上测出二者的差别。"
    ),
    implements=("shiyan.optim.adam",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    steps: int = 400
    """Optimizer steps of every training run (minibatches of digits)."""
    hidden: int = 64
    """Hidden units of the one-hidden-layer ReLU classifier."""
    lr: float = 1e-2
    """Learning rate η of both optimisers."""
    l2_lambda: float = 1e-3
    """λ of Adam's L2 term in the decay and loss-scale experiments."""
    decoupled_lambda: float = 0.1
    """λ of AdamW's decoupled decay in the decay and loss-scale experiments."""
    loss_multiplier: float = 100.0
    """c: the loss is multiplied by c to test invariance to the scale of the gradient."""
    l2_grid: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2)
    """λ values of Adam + L2 in the accuracy sweep."""
    decoupled_grid: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)
    """λ values of AdamW in the accuracy sweep."""
    batch_size: int = 64
    """Minibatch size."""
    bench_width: int = 512
    """Width of the 4-layer MLP whose optimizer step is timed (about 4 * width^2 parameters)."""
    bench_repeats: int = 20
    """Timed optimizer steps per benchmark row (the best is kept)."""

    def validate(self) -> None:
        if self.steps < 10:
            raise ConfigError(f"steps must be >= 10; got {self.steps}")
        if self.hidden < 2:
            raise ConfigError(f"hidden must be >= 2; got {self.hidden}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if not self.l2_lambda > 0 or not self.decoupled_lambda > 0:
            raise ConfigError("l2_lambda and decoupled_lambda must be > 0")
        if not self.loss_multiplier > 1:
            raise ConfigError(f"loss_multiplier must be > 1; got {self.loss_multiplier}")
        for name in ("l2_grid", "decoupled_grid"):
            grid = getattr(self, name)
            if not grid or any(v < 0 for v in grid):
                raise ConfigError(f"{name} must be a non-empty tuple of values >= 0; got {grid}")
        if self.batch_size < 1 or self.bench_width < 2 or self.bench_repeats < 1:
            raise ConfigError("batch_size, bench_width and bench_repeats must be positive")

    @classmethod
    def quick(cls) -> Config:
        return cls(steps=150, l2_grid=(0.0, 1e-3), decoupled_grid=(0.0, 0.1), bench_width=128, bench_repeats=5)


@dataclass
class _Run:
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    norms: list[float]
    test_acc: float


def _digits(ctx: RunContext):
    ds = data.load("digits")
    tr, te = data.train_test_split(len(ds.y), 0.3, ctx.numpy_generator("split"))
    X = torch.tensor(ds.X / 16.0, dtype=torch.float32)  # (1797, 64), pixels in [0, 1]
    y = torch.tensor(ds.y, dtype=torch.long)
    return X[tr], y[tr], X[te], y[te]


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _train(opt_factory, lam, cfg, ctx, X, y, Xte, yte, c: float = 1.0) -> _Run:
    g = ctx.torch_generator("init")  # every run starts from the same weights ...
    model = torch.nn.Sequential(
        init.linear(64, cfg.hidden, generator=g), torch.nn.ReLU(), init.linear(cfg.hidden, 10, generator=g)
    )
    opt = opt_factory(model.parameters(), lr=cfg.lr, weight_decay=lam)
    gb = ctx.torch_generator("batches")  # ... and sees the same batches
    norms = []
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(y), (cfg.batch_size,), generator=gb)
        loss = c * F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        norms.append(_flat(model).norm().item())
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    return _Run(model, opt, norms, acc)


def _decay_per_weight(run: _Run, lam: float, cfg: Config, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Measure, for each weight, how much the decay term moves it in one more step.

    From the trained state, take the same step twice -- with the decay on and with it off -- and
    divide the difference by what AdamW's decay would do to that weight. Returns
    (sqrt(v̂) per weight, measured decay relative to the AdamW-style prediction).
    """
    decoupled = isinstance(run.opt, AdamW)
    after = []
    for lam_now in (lam, 0.0):
        model = copy.deepcopy(run.model)
        opt = type(run.opt)(model.parameters(), lr=cfg.lr, weight_decay=lam)
        opt.load_state_dict(copy.deepcopy(run.opt.state_dict()))
        for group in opt.param_groups:
            group["weight_decay"] = lam_now
        loss = F.cross_entropy(model(X[:256]), y[:256])
        opt.zero_grad()
        loss.backward()
        opt.step()
        after.append(_flat(model))
    theta = _flat(run.model)
    delta = after[0] - after[1]  # (n_params,) movement caused by the decay in this step
    beta1, beta2 = 0.9, 0.999
    t = next(iter(run.opt.state.values()))["step"].item() + 1
    v = torch.cat([run.opt.state[p]["exp_avg_sq"].flatten() for p in run.model.parameters()])
    sqrt_v_hat = (v / (1 - beta2**t)).sqrt()
    if decoupled:
        predicted = cfg.lr * lam * theta  # AdamW: θ ← θ − ηλθ
    else:
        # Adam + L2: λθ enters m with weight (1 − β1) this step, then is divided by √v̂ + ε
        predicted = cfg.lr * lam * (1 - beta1) * theta / (1 - beta1**t)
    ratio = -delta / predicted  # 1/(√v̂ + ε) for Adam + L2, 1 for AdamW
    keep = (theta.abs() > 1e-3) & (sqrt_v_hat > 1e-7) & (ratio > 0)
    return sqrt_v_hat[keep].double().numpy(), ratio[keep].double().numpy()


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    X, y, Xte, yte = _digits(ctx)

    def ours_adam(ps, **kw):
        return Adam(ps, **kw)

    def ours_adamw(ps, **kw):
        return AdamW(ps, **kw)

    def torch_adam(ps, **kw):
        return torch.optim.Adam(ps, foreach=False, **kw)

    def torch_adamw(ps, **kw):
        return torch.optim.AdamW(ps, foreach=False, **kw)

    # 1. our optimisers equal torch.optim on this task
    adam_l2 = _train(ours_adam, cfg.l2_lambda, cfg, ctx, X, y, Xte, yte)
    adamw = _train(ours_adamw, cfg.decoupled_lambda, cfg, ctx, X, y, Xte, yte)
    ref_l2 = _train(torch_adam, cfg.l2_lambda, cfg, ctx, X, y, Xte, yte)
    ref_w = _train(torch_adamw, cfg.decoupled_lambda, cfg, ctx, X, y, Xte, yte)
    diff = max(
        (_flat(adam_l2.model) - _flat(ref_l2.model)).abs().max().item(),
        (_flat(adamw.model) - _flat(ref_w.model)).abs().max().item(),
    )
    res.metric("max_param_diff_vs_torch", diff, description=f"after {cfg.steps} steps, float32")
    res.claim(
        "equal_to_torch_optim",
        f"After {cfg.steps} steps on digits, Adam(L2) and AdamW equal torch.optim's (max |Δθ|, float32)",
        diff,
        "<=",
        1e-6,
        text_zh=f"在手写数字上训练 {cfg.steps} 步后，Adam(L2) 与 AdamW 的参数与 torch.optim 一致（最大 |Δθ|，float32）",
    )

    # 2. the decay each weight actually receives
    sv_l2, r_l2 = _decay_per_weight(adam_l2, cfg.l2_lambda, cfg, X, y)
    sv_w, r_w = _decay_per_weight(adamw, cfg.decoupled_lambda, cfg, X, y)
    slope_l2 = float(np.polyfit(np.log(sv_l2), np.log(r_l2), 1)[0])
    slope_w = float(np.polyfit(np.log(sv_w), np.log(r_w), 1)[0])
    res.metric("decay_slope_adam_l2", slope_l2, description="d log(decay) / d log(sqrt(v_hat)), Adam + L2")
    res.metric("decay_slope_adamw", slope_w, description="d log(decay) / d log(sqrt(v_hat)), AdamW")
    res.claim(
        "l2_decay_divided_by_sqrt_v",
        "Adam + L2: each weight's measured decay scales as 1/√v̂ (log-log slope within 0.1 of -1)",
        abs(slope_l2 + 1.0),
        "<=",
        0.1,
        text_zh="Adam + L2：每个权重实测的衰减按 1/√v̂ 缩放（双对数斜率与 -1 相差不超过 0.1）",
    )
    res.claim(
        "adamw_decay_uniform",
        "AdamW: every weight decays by the same factor ηλ whatever its √v̂ (|log-log slope| <= 0.01)",
        abs(slope_w),
        "<=",
        0.01,
        text_zh="AdamW：无论 √v̂ 多大，每个权重都按同一因子 ηλ 衰减（双对数斜率的绝对值不超过 0.01）",
    )
    equiv = cfg.l2_lambda * r_l2  # AdamW-equivalent λ of each weight under Adam + L2
    q10, q50, q90 = (float(v) for v in np.percentile(equiv, [10, 50, 90]))
    for name, val in (("equiv_lambda_p10", q10), ("equiv_lambda_median", q50), ("equiv_lambda_p90", q90)):
        res.metric(name, val, description=f"AdamW-equivalent λ of Adam + L2 with λ = {cfg.l2_lambda:g}")
    res.table(
        "equivalent_decay",
        ["optimizer", "λ", "AdamW-equivalent λ: 10th pct", "median", "90th pct"],
        [
            ["Adam + L2", cfg.l2_lambda, q10, q50, q90],
            [
                "AdamW",
                cfg.decoupled_lambda,
                *(float(cfg.decoupled_lambda * v) for v in np.percentile(r_w, [10, 50, 90])),
            ],
        ],
        caption_en="Decay each weight receives in one step, expressed as the λ AdamW would need to give it. "
        "Adam + L2 spreads one λ over orders of magnitude.",
        caption_zh="每个权重在一步中实际受到的衰减，折算成 AdamW 需要的 λ。Adam + L2 把同一个 λ 摊成了跨越数个数量级的值。",
    )

    # 3. invariance to the scale of the loss
    adam_l2_c = _train(ours_adam, cfg.l2_lambda, cfg, ctx, X, y, Xte, yte, c=cfg.loss_multiplier)
    adamw_c = _train(ours_adamw, cfg.decoupled_lambda, cfg, ctx, X, y, Xte, yte, c=cfg.loss_multiplier)

    def rel_change(a: _Run, b: _Run) -> float:
        wa, wb = _flat(a.model), _flat(b.model)
        return ((wa - wb).norm() / wa.norm()).item()

    change_l2, change_w = rel_change(adam_l2, adam_l2_c), rel_change(adamw, adamw_c)
    res.metric("loss_scale_change_adam_l2", change_l2, description="|θ(c·L) − θ(L)| / |θ(L)|")
    res.metric("loss_scale_change_adamw", change_w, description="|θ(c·L) − θ(L)| / |θ(L)|")
    c = cfg.loss_multiplier
    res.claim(
        "adamw_invariant_to_loss_scale",
        f"AdamW: multiplying the loss by {c:g} changes the trained weights by < 5% (relative norm)",
        change_w,
        "<",
        0.05,
        text_zh=f"AdamW：把损失乘以 {c:g}，训练后的权重变化小于 5%（相对范数）",
    )
    res.claim(
        "adam_l2_depends_on_loss_scale",
        f"Adam + L2: multiplying the loss by {c:g} weakens the decay {c:g}-fold and moves the weights by > 20%",
        change_l2,
        ">",
        0.20,
        text_zh=f"Adam + L2：把损失乘以 {c:g} 会让衰减减弱 {c:g} 倍，权重变化超过 20%",
    )

    # 4. accuracy sweep over λ
    rows = []
    sweep = [("Adam + L2", ours_adam, lam) for lam in cfg.l2_grid] + [
        ("AdamW", ours_adamw, lam) for lam in cfg.decoupled_grid
    ]
    for name, factory, lam in ctx.progress(sweep, total=len(sweep), description="λ sweep"):
        r = _train(factory, lam, cfg, ctx, X, y, Xte, yte)
        rows.append([name, lam, r.test_acc, r.norms[-1]])
    res.table(
        "lambda_sweep",
        ["optimizer", "λ", "test accuracy", "‖θ‖ at the end"],
        rows,
        caption_en=f"One-hidden-layer ReLU classifier ({cfg.hidden} units) on digits, {cfg.steps} steps, lr {cfg.lr:g}.",
        caption_zh=f"单隐藏层 ReLU 分类器（{cfg.hidden} 个单元），手写数字，{cfg.steps} 步，学习率 {cfg.lr:g}。",
    )

    _figures(cfg, ctx, (sv_l2, r_l2, sv_w, r_w), (adam_l2, adam_l2_c, adamw, adamw_c), rows)
    return res


def _figures(cfg: Config, ctx: RunContext, decay, runs, rows) -> None:
    sv_l2, r_l2, sv_w, r_w = decay
    pick = np.random.default_rng(0)  # plot at most 1500 points per optimizer: the SVG stays small
    keep_l2 = pick.permutation(len(sv_l2))[:1500]
    keep_w = pick.permutation(len(sv_w))[:1500]
    sv_l2, r_l2, sv_w, r_w = sv_l2[keep_l2], r_l2[keep_l2], sv_w[keep_w], r_w[keep_w]
    fig, ax = new_figure()
    style = {"s": 3, "alpha": 0.3, "rasterized": True}  # raster dots keep the SVG small
    ax.scatter(sv_l2, cfg.l2_lambda * r_l2, color="C0", label=f"Adam + L2 (λ = {cfg.l2_lambda:g})", **style)
    ax.scatter(sv_w, cfg.decoupled_lambda * r_w, color="C1", label=f"AdamW (λ = {cfg.decoupled_lambda:g})", **style)
    xs = np.geomspace(sv_l2.min(), sv_l2.max(), 50)
    ax.plot(xs, cfg.l2_lambda / xs, "k--", lw=1, label="λ / √v̂")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("√v̂ of the weight")
    ax.set_ylabel("AdamW-equivalent λ (measured)")
    ax.set_title("Decay each weight receives in one step")
    ax.legend(fontsize=8, markerscale=4)
    ctx.save_figure(
        fig,
        "decay-vs-v",
        caption_en="Measured per-weight decay: under Adam + L2 it follows λ/√v̂ (dashed), under AdamW it is one value.",
        caption_zh="实测的逐权重衰减：Adam + L2 下沿 λ/√v̂（虚线）分布，AdamW 下是同一个值。",
    )

    adam_l2, adam_l2_c, adamw, adamw_c = runs
    fig, ax = new_figure()
    steps = np.arange(1, cfg.steps + 1)
    c = cfg.loss_multiplier
    ax.plot(steps, adam_l2.norms, color="C0", label="Adam + L2, loss")
    ax.plot(steps, adam_l2_c.norms, color="C0", ls="--", label=f"Adam + L2, {c:g} × loss")
    ax.plot(steps, adamw.norms, color="C1", label="AdamW, loss")
    ax.plot(steps, adamw_c.norms, color="C1", ls="--", label=f"AdamW, {c:g} × loss")
    ax.set_xlabel("step")
    ax.set_ylabel("‖θ‖")
    ax.set_title("Scaling the loss: AdamW does not notice, Adam + L2 does")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "loss-scale",
        caption_en=f"Weight norm during training with the loss as is and multiplied by {c:g}.",
        caption_zh=f"原始损失与乘以 {c:g} 的损失下，训练过程中的权重范数。",
    )

    fig, ax = new_figure(1, 2, figsize=(10, 4))
    for i, name in enumerate(("Adam + L2", "AdamW")):
        pts = [(r[1], r[2]) for r in rows if r[0] == name]
        lams = [p[0] for p in pts]
        xs_ = np.arange(len(lams))
        ax[i].plot(xs_, [p[1] for p in pts], marker="o", color=f"C{i}")
        ax[i].set_xticks(xs_, [f"{v:g}" for v in lams])
        ax[i].set_xlabel("λ")
        ax[i].set_ylabel("test accuracy")
        ax[i].set_title(name)
    ctx.save_figure(
        fig,
        "lambda-sweep",
        caption_en="Test accuracy on digits against λ for each optimizer.",
        caption_zh="两种优化器在手写数字上的测试准确率随 λ 的变化。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    with torch_threads(1):
        g = ctx.torch_generator("bench")
        w = cfg.bench_width
        model = torch.nn.Sequential(*[init.linear(w, w, generator=g) for _ in range(4)])
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g)
        n_params = sum(p.numel() for p in model.parameters())
        rows = []
        for name, ours_cls, ref_cls in (("Adam", Adam, torch.optim.Adam), ("AdamW", AdamW, torch.optim.AdamW)):
            for foreach in (False, True):
                ours = ours_cls(model.parameters(), lr=1e-4, weight_decay=0.01)
                ref = ref_cls(model.parameters(), lr=1e-4, weight_decay=0.01, foreach=foreach)
                t_ours = best_time(ours.step, cfg.bench_repeats)
                t_ref = best_time(ref.step, cfg.bench_repeats)
                rows.append(
                    BenchRow(
                        f"{name}.step, {n_params:,} parameters in 8 tensors",
                        t_ours,
                        t_ref,
                        f"torch.optim.{name}(foreach={foreach})",
                        note="one thread",
                    )
                )
        return rows
