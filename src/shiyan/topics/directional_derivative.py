"""M3 -- directional derivatives and the gradient: closed form, finite differences and autograd agree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import best_time
from shiyan.maths import directional as dd

META = TopicMeta(
    slug="directional-derivative",
    category="Math",
    date=dt.date(2024, 3, 12),
    title_en="Directional derivatives and why the gradient points uphill",
    title_zh="方向导数与梯度：为什么梯度指向最陡的上坡",
    summary_en=(
        "The rate of change of f along a direction u is ∇f·u/|u|; it traces a cosine over directions and peaks "
        "at |∇f| along the gradient. Worked example, plus three independent ways to compute it that must agree."
    ),
    summary_zh="函数沿方向 u 的变化率是 ∇f·u/|u|；随方向变化它是一条余弦曲线，在梯度方向取到最大值 |∇f|。附例题，以及三种必须彼此吻合的独立算法。",
    implements=("shiyan.maths.directional",),
)

POINT = np.array([1.0, 2.0])
"""The worked example: f(x, y) = x^2 + y^2 at (1, 2) ..."""
DIRECTIONS = {"w = (3, 4)": (np.array([3.0, 4.0]), 22.0 / 5.0), "u = (1, 0)": (np.array([1.0, 0.0]), 2.0)}
"""... along (3, 4), where D f = 22/5, and along (1, 0), where D f = 2."""


@dataclass(frozen=True)
class Config(TopicConfig):
    n_angles: int = 720
    """Number of equally spaced unit directions in the sweep over angles."""
    n_points: int = 2000
    """Random points (with random directions) per test function on which the three routes are compared."""
    box: float = 2.0
    """Random points are drawn uniformly from the square [-box, box]^2."""
    n_h: int = 60
    """Number of finite-difference steps h (log-spaced in [1e-10, 0.3]) in the error-vs-h study."""
    bench_points: int = 100_000
    """Points in one batch of the benchmark."""
    bench_repeats: int = 5
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if self.n_angles < 8:
            raise ConfigError(f"n_angles must be >= 8; got {self.n_angles}")
        if self.n_points < 1:
            raise ConfigError(f"n_points must be >= 1; got {self.n_points}")
        if not 0.0 < self.box <= 10.0:
            raise ConfigError(f"box must lie in (0, 10]; got {self.box}")
        if self.n_h < 10:
            raise ConfigError(f"n_h must be >= 10; got {self.n_h}")
        if self.bench_points < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_points and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_angles=360, n_points=200, n_h=30, bench_points=10_000, bench_repeats=2)


H_FIT = (1e-3, 1e-1)
"""Range of h where truncation dominates rounding; the O(h^2) slope is fitted there."""


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    f = dd.PARABOLOID

    # -- 1. the worked example by three routes ----------------------------------------------------
    grad = f.gradient(POINT)
    rows, worst = [], 0.0
    for label, (u, exact) in DIRECTIONS.items():
        closed = float(dd.directional_derivative(grad, u))
        fd = float(dd.central_difference_directional(f.value, POINT, u))
        ad = float(dd.autograd_directional(f.value, POINT, u))
        worst = max(worst, abs(closed - exact), abs(fd - exact), abs(ad - exact))
        rows.append([label, exact, closed, fd, ad])
        key = "w" if "3" in label else "x"
        res.claim(
            f"worked_example_{key}",
            f"D f(1, 2) along {label} from the closed-form gradient equals {exact:g}",
            closed,
            "==",
            exact,
            tol=1e-12,
            text_zh=f"由梯度公式算得 f 在 (1, 2) 沿 {label} 的方向导数等于 {exact:g}",
        )
    res.claim(
        "worked_example_routes",
        "Finite differences and autograd reproduce both worked-example values (max abs error)",
        worst,
        "<=",
        1e-8,
        text_zh="有限差分与自动微分都复现了例题的两个值（最大绝对误差）",
    )
    res.table(
        "worked_example",
        ["direction", "exact", "closed form", "central difference", "torch.func.jvp"],
        rows,
        caption_en="f(x, y) = x² + y² at (1, 2): the three routes.",
        caption_zh="f(x, y) = x² + y² 在 (1, 2) 处：三种算法的结果。",
    )

    # -- 2. the three routes on random points, several functions ----------------------------------
    rng = ctx.numpy_generator("points")
    err_ad, err_fd, agree_rows = 0.0, 0.0, []
    for field in dd.FIELDS:
        X = rng.uniform(-cfg.box, cfg.box, (cfg.n_points, 2))  # (points, 2)
        U = rng.standard_normal((cfg.n_points, 2))  # (points, 2), not normalised on purpose
        closed = dd.directional_derivative(field.gradient(X), U)  # (points,)
        fd = dd.central_difference_directional(field.value, X, U)
        ad = dd.autograd_directional(field.value, X, U).numpy()
        scale = np.maximum(1.0, np.abs(closed))
        e_ad, e_fd = float(np.max(np.abs(ad - closed) / scale)), float(np.max(np.abs(fd - closed) / scale))
        err_ad, err_fd = max(err_ad, e_ad), max(err_fd, e_fd)
        agree_rows.append([field.name, e_ad, e_fd])
    res.claim(
        "autograd_matches_closed_form",
        f"torch.func.jvp equals ∇f·û on {cfg.n_points} random points of each of {len(dd.FIELDS)} functions "
        "(max relative error)",
        err_ad,
        "<=",
        1e-12,
        text_zh=f"在 {len(dd.FIELDS)} 个函数各 {cfg.n_points} 个随机点上，torch.func.jvp 与 ∇f·û 一致（最大相对误差）",
    )
    res.claim(
        "fd_matches_closed_form",
        "Central differences with the default step equal ∇f·û (max relative error)",
        err_fd,
        "<=",
        1e-6,
        text_zh="默认步长的中心差分与 ∇f·û 一致（最大相对误差）",
    )
    res.table(
        "routes",
        ["function", "autograd vs closed form", "central difference vs closed form"],
        agree_rows,
        caption_en="Largest relative disagreement with the hand-derived gradient.",
        caption_zh="与手推梯度之间的最大相对误差。",
    )

    # -- 3. sweeping directions: a cosine peaking at |∇f| along ∇f ---------------------------------
    theta, dirs = dd.unit_circle(cfg.n_angles)
    half_step = np.pi / cfg.n_angles
    gap, angle_err, cos_err = 0.0, 0.0, 0.0
    sweep_points = np.vstack([POINT, rng.uniform(-cfg.box, cfg.box, (20, 2))])
    for x in sweep_points:
        for field in dd.FIELDS:
            g = field.gradient(x)
            values, best = dd.sweep_directions(g, dirs)
            g_hat, g_norm = dd.steepest_ascent(g)
            gap = max(gap, (g_norm - values[best]) / g_norm)
            angle_err = max(angle_err, float(np.arccos(np.clip(dirs[best] @ g_hat, -1.0, 1.0))))
            theta_g = np.arctan2(g[1], g[0])
            cos_err = max(cos_err, float(np.max(np.abs(values - g_norm * np.cos(theta - theta_g))) / g_norm))
    res.claim(
        "max_is_gradient_norm",
        f"max over {cfg.n_angles} unit directions of D_u f is |∇f| up to the grid's resolution, 1 - cos(π/N)",
        gap,
        "<=",
        1.0 - np.cos(half_step),
        text_zh=f"在 {cfg.n_angles} 个单位方向上 D_u f 的最大值等于 |∇f|（误差不超过网格分辨率 1 - cos(π/N)）",
    )
    res.claim(
        "argmax_is_gradient_direction",
        "The best direction of the sweep lies within half a grid step (π/N) of ∇f/|∇f| (max angle, rad)",
        angle_err,
        "<=",
        half_step + 1e-12,
        unit="rad",
        text_zh="扫描得到的最佳方向与 ∇f/|∇f| 的夹角不超过半个网格步长 π/N（最大夹角，弧度）",
    )
    res.claim(
        "cosine_shape",
        "D_u f over angles is exactly |∇f| cos(θ - θ_∇f) (max relative deviation)",
        cos_err,
        "<=",
        1e-12,
        text_zh="D_u f 随角度的变化恰好是 |∇f| cos(θ - θ_∇f)（最大相对偏差）",
    )

    # -- 4. finite-difference error vs h ----------------------------------------------------------
    hs = np.logspace(-10, np.log10(0.3), cfg.n_h)
    x0, u0 = np.array([0.3, 0.8]), np.array([1.0, 2.0])
    errors: dict[str, np.ndarray] = {}
    slopes = []
    in_fit = (hs >= H_FIT[0]) & (hs <= H_FIT[1])
    for field in dd.FIELDS:
        exact = float(dd.directional_derivative(field.gradient(x0), u0))
        approx = dd.central_difference_directional(field.value, np.broadcast_to(x0, (hs.size, 2)), u0, hs)
        errors[field.name] = np.abs(approx - exact) / max(1.0, abs(exact))
        if field is not dd.PARABOLOID:  # exact for quadratics: no truncation error to fit
            slopes.append(np.polyfit(np.log(hs[in_fit]), np.log(errors[field.name][in_fit]), 1)[0])
    slope_dev = float(max(abs(s - 2.0) for s in slopes))
    for field, s in zip([fl for fl in dd.FIELDS if fl is not dd.PARABOLOID], slopes):
        res.metric(f"fd_slope_{field.name.replace(' ', '_')}", s, description="log-log slope of error vs h")
    res.claim(
        "fd_second_order",
        f"Central-difference error falls like h² for h in [{H_FIT[0]:g}, {H_FIT[1]:g}] (max |slope - 2|)",
        slope_dev,
        "<=",
        0.1,
        text_zh=f"h 在 [{H_FIT[0]:g}, {H_FIT[1]:g}] 内时，中心差分误差按 h² 下降（|斜率 - 2| 的最大值）",
    )

    _figures(cfg, ctx, theta, hs, errors, x0)
    return res


def _figures(cfg: Config, ctx: RunContext, theta: np.ndarray, hs: np.ndarray, errors: dict, x0: np.ndarray) -> None:
    f = dd.PARABOLOID
    # -- gradient field ---------------------------------------------------------------------------
    fig, axes = new_figure(1, 2, figsize=(10.0, 4.6))
    ax = axes[0]
    g1 = np.linspace(-1.5, 3.5, 201)
    X, Y = np.meshgrid(g1, g1 + 0.5)  # window around the point (1, 2)
    ax.contour(X, Y, f.value(np.stack([X, Y], axis=-1)), levels=12, cmap="viridis", linewidths=0.8)
    q = np.linspace(-1.0, 3.0, 9)
    QX, QY = np.meshgrid(q, q + 0.5)
    G = f.gradient(np.stack([QX, QY], axis=-1))
    ax.quiver(QX, QY, G[..., 0], G[..., 1], color="0.6", angles="xy", scale_units="xy", scale=12, width=0.004)
    grad = f.gradient(POINT)
    arrows = [(label, u, color) for (label, (u, _)), color in zip(DIRECTIONS.items(), ("C1", "C2"))]
    arrows.append((r"$\nabla f/|\nabla f|$", grad, "C3"))
    for label, u, color in arrows:
        u_hat = u / np.linalg.norm(u)
        ax.annotate("", xy=POINT + 1.3 * u_hat, xytext=POINT, arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
        ax.text(*(POINT + 1.35 * u_hat), label, color=color, fontsize=9, ha="left", va="bottom")
    ax.plot(*POINT, "ko", ms=5)
    ax.set_aspect("equal")
    ax.set_title(r"$f = x^2 + y^2$ around the point (1, 2)", fontsize=10)
    g2 = np.linspace(-3, 3, 241)
    X, Y = np.meshgrid(g2, g2)
    q = np.linspace(-2.5, 2.5, 11)
    QX, QY = np.meshgrid(q, q)
    ax = axes[1]
    w = dd.WAVY_BOWL
    ax.contour(X, Y, w.value(np.stack([X, Y], axis=-1)), levels=16, cmap="viridis", linewidths=0.8)
    G = w.gradient(np.stack([QX, QY], axis=-1))
    ax.quiver(QX, QY, G[..., 0], G[..., 1], color="C3", angles="xy", width=0.004)
    ax.set_aspect("equal")
    ax.set_title(r"$f = \sin x \cos y + (x^2+y^2)/4$: $\nabla f \perp$ level sets", fontsize=10)
    ctx.save_figure(
        fig,
        "gradient-field",
        caption_en="Gradient fields: arrows cross the level sets at right angles and point uphill.",
        caption_zh="梯度场：箭头与等高线垂直，并指向函数增大的方向。",
    )

    # -- D_u f against the angle of u -------------------------------------------------------------
    fig, ax = new_figure()
    _, dirs = dd.unit_circle(theta.size)
    values, best = dd.sweep_directions(grad, dirs)
    ax.plot(np.degrees(theta), values, color="C0", lw=1.6, label=r"$D_u f(1, 2)$")
    g_norm = np.linalg.norm(grad)
    ax.axhline(g_norm, color="C3", ls="--", lw=1, label=rf"$|\nabla f| = 2\sqrt{{5}} \approx {g_norm:.3f}$")
    ax.axvline(np.degrees(theta[best]), color="C3", ls=":", lw=1)
    for (label, (u, exact)), color in zip(DIRECTIONS.items(), ("C1", "C2")):
        angle = np.degrees(np.arctan2(u[1], u[0])) % 360
        ax.plot(angle, exact, "o", color=color, ms=7, label=f"{label}: {exact:g}")
    ax.set_xlabel("angle of u (degrees)")
    ax.set_ylabel("directional derivative")
    ax.set_xlim(0, 360)
    ax.set_title("Directional derivative over all unit directions at (1, 2)")
    ax.legend(fontsize=8, loc="lower left")
    ctx.save_figure(
        fig,
        "angle-sweep",
        caption_en="D_u f at (1, 2) as u turns around the circle: a cosine whose peak |∇f| sits at the gradient's angle.",
        caption_zh="u 绕单位圆转一圈时 (1, 2) 处的 D_u f：一条余弦曲线，峰值 |∇f| 出现在梯度方向。",
    )

    # -- finite-difference error vs h -------------------------------------------------------------
    fig, ax = new_figure()
    for i, (name, err) in enumerate(errors.items()):
        ax.loglog(hs, np.maximum(err, 1e-17), "o-", ms=2.5, lw=1, color=f"C{i}", label=name)
    ref = errors[dd.ROSENBROCK.name]
    k = np.argmin(np.abs(hs - 1e-2))
    ax.loglog(hs, ref[k] * (hs / hs[k]) ** 2, "k--", lw=0.8, label=r"$\propto h^2$ (truncation)")
    eps = np.finfo(float).eps
    ax.loglog(hs, eps / hs, "k:", lw=0.8, label=r"$\epsilon / h$ (rounding)")
    ax.axvline(float(dd.default_step(x0)), color="0.5", lw=1, label=r"default $h = \epsilon^{1/3}\max(1,|x|)$")
    ax.axvspan(*H_FIT, color="0.9", zorder=0)
    ax.set_ylim(1e-17, 1e1)
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error of the central difference")
    ax.set_title("Finite differences: O(h²) truncation vs rounding")
    ax.legend(fontsize=7, loc="upper center")
    ctx.save_figure(
        fig,
        "fd-error",
        caption_en=(
            "Error of (f(x + hu) - f(x - hu)) / 2h: slope 2 where truncation dominates (shaded fit range), "
            "rising as ε/h for tiny h; the paraboloid has no truncation error at all."
        ),
        caption_zh="(f(x + hu) - f(x - hu)) / 2h 的误差：截断误差主导时斜率为 2（阴影为拟合区间），h 很小时舍入误差按 ε/h 上升；抛物面没有截断误差。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    rng = ctx.numpy_generator("bench")
    field = dd.ROSENBROCK
    X = rng.uniform(-cfg.box, cfg.box, (cfg.bench_points, 2))
    U = rng.standard_normal((cfg.bench_points, 2))
    Xt, Ut = torch.from_numpy(X), torch.from_numpy(U)
    t_jvp = best_time(lambda: dd.autograd_directional(field.value, Xt, Ut), cfg.bench_repeats)
    t_closed = best_time(lambda: dd.directional_derivative(field.gradient(X), U), cfg.bench_repeats)
    t_fd = best_time(lambda: dd.central_difference_directional(field.value, X, U), cfg.bench_repeats)
    t_grad = best_time(lambda: dd.directional_derivative(dd.autograd_gradient(field.value, Xt), U), cfg.bench_repeats)
    n = f"{cfg.bench_points:,} points, Rosenbrock"
    return [
        BenchRow(f"closed-form gradient · û ({n})", t_closed, t_jvp, "torch.func.jvp"),
        BenchRow(f"central difference along û ({n})", t_fd, t_jvp, "torch.func.jvp"),
        BenchRow(
            f"reverse-mode gradient then · û ({n})",
            t_grad,
            t_jvp,
            "torch.func.jvp",
            note="torch.autograd.grad; the gradient answers every direction at once",
        ),
    ]
