"""M2 -- quadratic forms: the stationary point and its type (minimum, maximum, saddle, degenerate)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import best_time
from shiyan.maths import quadratic as qf

META = TopicMeta(
    slug="quadratic-form",
    category="Math",
    date=dt.date(2023, 10, 9),
    title_en="Minimising a quadratic form: stationary point and definiteness",
    title_zh="二次型的极值：驻点与正定性",
    summary_en=(
        "f(x) = xᵀAx + bᵀx + c has its stationary point at 2Ax* = -b; the signs of A's eigenvalues (or "
        "Sylvester's minors) say whether it is a minimum, a maximum, a saddle, or a whole line of minima."
    ),
    summary_zh="f(x) = xᵀAx + bᵀx + c 的驻点满足 2Ax* = -b；A 的特征值符号（或 Sylvester 顺序主子式）决定它是极小、极大、鞍点，还是一整条极小值线。",
    implements=("shiyan.maths.quadratic",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    dim: int = 6
    """Dimension n of the random problems (at most 10: Sylvester's fallback examines 2^n minors)."""
    n_random: int = 2000
    """Random symmetric matrices on which the eigenvalue and Sylvester classifications are compared."""
    n_scipy: int = 40
    """Random positive definite problems whose minimiser is compared with scipy.optimize.minimize."""
    singular_fraction: float = 0.3
    """Fraction of the random matrices built with some zero eigenvalues (singular A)."""
    grid: int = 201
    """Points per axis of the contour plots."""
    bench_dim: int = 50
    """Dimension of the benchmark problem."""
    bench_repeats: int = 5
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if not 1 <= self.dim <= 10:
            raise ConfigError(f"dim must lie in 1..10; got {self.dim}")
        if self.n_random < 1:
            raise ConfigError(f"n_random must be >= 1; got {self.n_random}")
        if self.n_scipy < 1:
            raise ConfigError(f"n_scipy must be >= 1; got {self.n_scipy}")
        if not 0.0 <= self.singular_fraction <= 1.0:
            raise ConfigError(f"singular_fraction must lie in [0, 1]; got {self.singular_fraction}")
        if self.grid < 11:
            raise ConfigError(f"grid must be >= 11; got {self.grid}")
        if self.bench_dim < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_dim and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_random=200, n_scipy=8, grid=61, bench_dim=20, bench_repeats=2)


# The four illustrated 2-D cases: (name, A, b, c, expected kind).
CASES: tuple[tuple[str, np.ndarray, np.ndarray, float, str], ...] = (
    ("minimum", np.array([[1.5, 0.5], [0.5, 1.0]]), np.array([-2.0, 1.0]), 0.0, "minimum"),
    ("maximum", np.array([[-1.2, 0.4], [0.4, -0.8]]), np.array([1.0, 1.0]), 0.0, "maximum"),
    ("saddle", np.array([[1.0, 0.6], [0.6, -0.8]]), np.array([-1.0, 0.5]), 0.0, "saddle"),
    # rank one, b in the range of A: a whole line of minima through (1, 1) along (1, -2)
    ("line of minima", np.array([[0.8, 0.4], [0.4, 0.2]]), np.array([-2.4, -1.2]), 0.0, "non-unique minimum"),
)


def _random_eigenvalues(n: int, rng: np.random.Generator, singular_fraction: float) -> np.ndarray:
    """Eigenvalues with a uniformly random number of positive ones (and sometimes zeros)."""
    n_pos = int(rng.integers(0, n + 1))
    n_zero = int(rng.integers(1, n + 1 - n_pos)) if (rng.random() < singular_fraction and n_pos < n) else 0
    n_neg = n - n_pos - n_zero
    return np.concatenate([rng.uniform(0.5, 2.0, n_pos), np.zeros(n_zero), -rng.uniform(0.5, 2.0, n_neg)])


def run(cfg: Config, ctx: RunContext) -> Result:
    from scipy.optimize import minimize

    res = Result()
    rng = ctx.numpy_generator("matrices")

    # -- 1. eigenvalue route vs Sylvester route, and Jacobi vs LAPACK ---------------------------
    agree, eig_err = 0, 0.0
    counts: Counter[str] = Counter()
    disagree: Counter[str] = Counter()
    for _ in ctx.progress(range(cfg.n_random), total=cfg.n_random, description="classifying"):
        A = qf.random_symmetric(cfg.dim, rng, _random_eigenvalues(cfg.dim, rng, cfg.singular_fraction))
        lam, _ = qf.jacobi_eigh(A)
        by_eig = qf.definiteness_from_eigenvalues(lam, qf.zero_tolerance(A))  # = qf.eigen_definiteness(A)
        by_minors = qf.sylvester_definiteness(A)
        counts[by_eig] += 1
        agree += by_eig == by_minors
        if by_eig != by_minors:
            disagree[by_eig] += 1
        eig_err = max(eig_err, float(np.max(np.abs(lam - np.linalg.eigvalsh(A)))))
    rate = agree / cfg.n_random
    res.metric("classification_agreement", rate, description="share of matrices where both routes agree")
    res.claim(
        "classification_agreement",
        f"Eigenvalue signs and Sylvester's minors give the same definiteness on {cfg.n_random} random matrices",
        rate,
        ">=",
        1.0,
        text_zh=f"在 {cfg.n_random} 个随机对称矩阵上，特征值符号与 Sylvester 主子式判定的正定性完全一致",
    )
    res.claim(
        "jacobi_vs_eigh",
        "Jacobi-rotation eigenvalues match numpy.linalg.eigh (max abs difference, eigenvalues of size 0.5..2)",
        eig_err,
        "<=",
        1e-12,
        text_zh="Jacobi 旋转法求得的特征值与 numpy.linalg.eigh 一致（最大绝对差，特征值量级 0.5..2）",
    )
    res.table(
        "definiteness_counts",
        ["definiteness (eigenvalues)", "matrices", "Sylvester disagrees"],
        [[k, counts[k], disagree[k]] for k in sorted(counts)],
        caption_en=f"Classes of the {cfg.n_random} random {cfg.dim}x{cfg.dim} symmetric matrices.",
        caption_zh=f"{cfg.n_random} 个随机 {cfg.dim}x{cfg.dim} 对称矩阵的类别分布。",
    )

    # -- 2. closed-form minimiser vs scipy.optimize.minimize (positive definite A) ----------------
    dist, value_gap, closed_err, grad_norm = 0.0, np.inf, 0.0, 0.0
    for _ in range(cfg.n_scipy):
        A = qf.random_symmetric(cfg.dim, rng, rng.uniform(0.5, 2.0, cfg.dim))
        b, c = rng.standard_normal(cfg.dim) * 3.0, float(rng.standard_normal())
        x_star = qf.stationary_point(A, b)
        out = minimize(
            lambda x, A=A, b=b, c=c: qf.quadratic_value(x, A, b, c),
            np.zeros(cfg.dim),
            jac=lambda x, A=A, b=b: qf.quadratic_gradient(x, A, b),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        dist = max(dist, float(np.linalg.norm(out.x - x_star) / (1.0 + np.linalg.norm(x_star))))
        f_star = float(qf.quadratic_value(x_star, A, b, c))
        value_gap = min(value_gap, (float(out.fun) - f_star) / (1.0 + abs(f_star)))
        closed_err = max(closed_err, abs(f_star - qf.stationary_value(A, b, c)) / (1.0 + abs(f_star)))
        grad_norm = max(grad_norm, float(np.linalg.norm(qf.quadratic_gradient(x_star, A, b))))
    res.metric("scipy_distance", dist, description="max |x_ours - x_scipy| / (1 + |x_ours|)")
    res.metric("gradient_at_x_star", grad_norm, description="max |2Ax* + b|")
    res.claim(
        "matches_scipy_minimiser",
        "The solution of 2Ax* = -b is scipy's BFGS minimiser (max relative distance)",
        dist,
        "<=",
        1e-6,
        text_zh="2Ax* = -b 的解就是 scipy BFGS 找到的极小点（最大相对距离）",
    )
    res.claim(
        "scipy_not_lower",
        "scipy never finds a lower value than f(x*) (min relative gap f(x_scipy) - f(x*))",
        value_gap,
        ">=",
        -1e-12,
        text_zh="scipy 找到的函数值从不低于 f(x*)（最小相对差 f(x_scipy) - f(x*)）",
    )
    res.claim(
        "closed_form_value",
        "f(x*) equals c - bᵀA⁻¹b/4 (max relative error)",
        closed_err,
        "<=",
        1e-10,
        text_zh="f(x*) 等于 c - bᵀA⁻¹b/4（最大相对误差）",
    )

    # -- 3. the illustrated 2-D cases --------------------------------------------------------------
    analyses = [qf.analyse(A, b, c) for _, A, b, c, _ in CASES]
    correct = sum(an.kind == expected for an, (*_, expected) in zip(analyses, CASES))
    res.claim(
        "cases_classified",
        "The four illustrated cases are classified as minimum, maximum, saddle and line of minima",
        correct,
        ">=",
        len(CASES),
        text_zh="四个示例分别被判为极小、极大、鞍点与极小值线",
    )
    curvature_err, flat_err = 0.0, 0.0
    steps = np.linspace(-2.0, 2.0, 9)
    for an, (_, A, b, c, _) in zip(analyses, CASES):
        for lam_i, v in zip(an.eigenvalues, an.eigenvectors.T):
            moved = an.x_star + steps[:, None] * v  # (9, 2)
            rise = qf.quadratic_value(moved, A, b, c) - an.value  # (9,)
            curvature_err = max(curvature_err, float(np.max(np.abs(rise - lam_i * steps**2))))
        for v in an.null_space.T:
            moved = an.x_star + steps[:, None] * v
            flat_err = max(flat_err, float(np.max(np.abs(qf.quadratic_value(moved, A, b, c) - an.value))))
    res.claim(
        "eigen_curvature",
        "Along each eigenvector, f(x* + t v) - f(x*) = λ t² exactly (max abs error)",
        curvature_err,
        "<=",
        1e-12,
        text_zh="沿每个特征向量 f(x* + t v) - f(x*) = λ t² 精确成立（最大绝对误差）",
    )
    res.claim(
        "flat_along_null_space",
        "For singular A with b in its range, f is constant along ker A (max abs change)",
        flat_err,
        "<=",
        1e-12,
        text_zh="A 奇异且 b 在其值域中时，f 沿 ker A 保持不变（最大绝对变化）",
    )
    res.table(
        "cases",
        ["case", "eigenvalues of A", "kind", "x*", "f(x*)"],
        [
            [name, _fmt(an.eigenvalues), an.kind, _fmt(an.x_star), round(an.value, 6)]
            for an, (name, *_) in zip(analyses, CASES)
        ],
        caption_en="The four 2-D examples of the contour figure (for the line of minima, x* is the least-norm point).",
        caption_zh="等高线图中的四个二维例子（极小值线的情形给出范数最小的那个驻点）。",
    )
    _contour_figure(cfg, ctx, analyses)
    return res


def _fmt(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def _contour_figure(cfg: Config, ctx: RunContext, analyses: list[qf.QuadraticAnalysis]) -> None:
    fig, axes = new_figure(2, 2, figsize=(8.4, 7.6))
    for ax, an, (name, A, b, c, _) in zip(axes.ravel(), analyses, CASES):
        cx, cy = an.x_star
        g = np.linspace(-2.5, 2.5, cfg.grid)
        X, Y = np.meshgrid(cx + g, cy + g)
        Z = qf.quadratic_value(np.stack([X, Y], axis=-1), A, b, c)  # (grid, grid)
        ax.contour(X, Y, Z, levels=18, cmap="viridis", linewidths=0.9)
        ax.plot(cx, cy, "k*", ms=11, zorder=5)
        for lam_i, v in zip(an.eigenvalues, an.eigenvectors.T):
            color = "C3" if lam_i > 1e-12 else ("C0" if lam_i < -1e-12 else "0.4")
            ax.annotate(
                "",
                xy=(cx + 1.4 * v[0], cy + 1.4 * v[1]),
                xytext=(cx, cy),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.8},
            )
            shown = 0.0 if abs(lam_i) < 1e-12 else lam_i
            ax.text(cx + 1.6 * v[0], cy + 1.6 * v[1], f"λ = {shown:.2f}", color=color, fontsize=8, ha="center")
        if an.null_space.shape[1]:
            d = an.null_space[:, 0]
            ax.plot(cx + 4 * np.array([-d[0], d[0]]), cy + 4 * np.array([-d[1], d[1]]), "k--", lw=1)
        ax.set_title(name if name == an.kind else f"{name} ({an.kind})", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(cx - 2.5, cx + 2.5)
        ax.set_ylim(cy - 2.5, cy + 2.5)
    ctx.save_figure(
        fig,
        "contours",
        caption_en=(
            "Level sets of f with the stationary point (star) and A's eigenvectors (red: λ > 0, blue: λ < 0, "
            "grey: λ = 0); the dashed line is the set of minima of the singular case."
        ),
        caption_zh="f 的等高线、驻点（星号）与 A 的特征向量（红：λ > 0，蓝：λ < 0，灰：λ = 0）；虚线是奇异情形的极小值集合。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    from scipy.optimize import minimize

    rng = ctx.numpy_generator("bench")
    n = cfg.bench_dim
    A = qf.random_symmetric(n, rng, rng.uniform(0.5, 2.0, n))
    b = rng.standard_normal(n)
    t_ours = best_time(lambda: qf.stationary_point(A, b), cfg.bench_repeats)
    t_ref = best_time(
        lambda: minimize(
            lambda x: qf.quadratic_value(x, A, b),
            np.zeros(n),
            jac=lambda x: qf.quadratic_gradient(x, A, b),
            method="BFGS",
        ),
        cfg.bench_repeats,
    )
    t_jac = best_time(lambda: qf.jacobi_eigh(A), cfg.bench_repeats)
    t_eigh = best_time(lambda: np.linalg.eigh(A), cfg.bench_repeats)
    return [
        BenchRow(
            name=f"minimiser of a {n}-D positive definite quadratic: closed form 2Ax* = -b",
            ours=t_ours,
            reference=t_ref,
            reference_name="scipy.optimize.minimize (BFGS, exact gradient)",
        ),
        BenchRow(
            name=f"eigenvalues of a {n}x{n} symmetric matrix: Jacobi rotations",
            ours=t_jac,
            reference=t_eigh,
            reference_name="numpy.linalg.eigh",
            note="readable pure-numpy Jacobi sweeps vs LAPACK; used for classification, not speed",
        ),
    ]
