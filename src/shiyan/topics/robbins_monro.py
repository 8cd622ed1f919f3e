"""R1 -- stochastic approximation: incremental mean, Robbins--Monro and SGD (Chapter 6 of Shiyu Zhao's book)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import best_time
from shiyan.rl import stochastic_approximation as sa

META = TopicMeta(
    slug="robbins-monro",
    category="RL",
    date=dt.date(2024, 5, 6),
    title_en="Stochastic approximation: Robbins–Monro, step sizes and SGD",
    title_zh="随机近似：Robbins–Monro 算法、步长条件与 SGD",
    summary_en=(
        "Finding a root from noisy measurements only: the Robbins–Monro iteration on the book's examples "
        "tanh(w − 1) and w³ − 5, why the step sizes must satisfy Σa = ∞ and Σa² < ∞ (and what breaks when "
        "they do not), and SGD for mean estimation as a special case."
    ),
    summary_zh=(
        "只凭带噪声的观测求方程的根：在书中的例子 tanh(w − 1) 与 w³ − 5 上运行 Robbins–Monro 迭代，"
        "说明步长为什么必须满足 Σa = ∞、Σa² < ∞（以及不满足时会怎样），并把均值估计的 SGD 看作它的特例。"
    ),
    implements=("shiyan.rl.stochastic_approximation",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    n_steps: int = 5000
    """Robbins-Monro iterations per run."""
    n_runs: int = 200
    """Independent runs (simulated together) behind every error statistic."""
    noise_std: float = 1.0
    """Standard deviation sigma of the Gaussian observation noise eta."""
    w1_tanh: float = 3.0
    """Start w1 for g(w) = tanh(w - 1) (the book's example)."""
    cubic_scale: float = 0.2
    """c in a_k = c / k for g(w) = w^3 - 5 (the gradient condition fails, so steps must be small)."""
    constant_step: float = 0.1
    """The constant step a_k = alpha that violates sum a_k^2 < infinity."""
    far_start: float = 6.0
    """Start of the summable-steps experiment (a_k = 1/k^2 versus 1/k), far from the root 1."""
    far_noise_std: float = 0.2
    """Noise of the summable-steps experiment."""
    n_samples: int = 200
    """Samples of X ~ Uniform([-10, 10]^2) in the mean-estimation (SGD) experiment."""
    batch_sizes: tuple[int, ...] = (1, 5, 50)
    """Mini-batch sizes m compared for mean estimation (m = 1 is SGD)."""
    sgd_runs: int = 50
    """Independent data sets and runs of the mean-estimation experiment."""
    bench_n: int = 100_000
    """Samples in the running-mean benchmark."""
    bench_repeats: int = 3
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if self.n_steps < 100:
            raise ConfigError(f"n_steps must be >= 100; got {self.n_steps}")
        if self.n_runs < 10:
            raise ConfigError(f"n_runs must be >= 10; got {self.n_runs}")
        if not self.noise_std > 0 or not self.far_noise_std > 0:
            raise ConfigError("noise_std and far_noise_std must be positive")
        if not 0.05 <= self.cubic_scale <= 0.3:
            raise ConfigError(f"cubic_scale must lie in [0.05, 0.3] (larger steps blow up); got {self.cubic_scale}")
        if not 0 < self.constant_step < 1:
            raise ConfigError(f"constant_step must lie in (0, 1); got {self.constant_step}")
        if self.far_start < 5.0:
            raise ConfigError(f"far_start must be >= 5 (farther than sum 1/k^2 from the root); got {self.far_start}")
        if self.n_samples < 50 or self.sgd_runs < 5:
            raise ConfigError("n_samples must be >= 50 and sgd_runs >= 5")
        if not self.batch_sizes or min(self.batch_sizes) < 1 or 1 not in self.batch_sizes:
            raise ConfigError(f"batch_sizes must be positive and contain 1; got {self.batch_sizes}")
        if self.bench_n < 1000 or self.bench_repeats < 1:
            raise ConfigError("bench_n must be >= 1000 and bench_repeats >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_steps=2000, n_runs=60, sgd_runs=20, bench_n=20_000, bench_repeats=1)


def _rms(x: np.ndarray, target: float) -> np.ndarray:
    """Root-mean-square error over runs (axis 1)."""
    return np.sqrt(np.mean((x - target) ** 2, axis=-1))


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    n, sigma = cfg.n_steps, cfg.noise_std
    k = np.arange(1, n + 2)  # iteration index of w_1 .. w_{n+1}

    # -- incremental mean ----------------------------------------------------------------------
    x = ctx.numpy_generator("mean").normal(2.0, 3.0, size=cfg.n_samples)
    inc = sa.incremental_mean(x)
    inc_err = float(np.max(np.abs(inc - np.cumsum(x) / np.arange(1, x.size + 1))))
    res.claim(
        "incremental_mean_exact",
        "w_{k+1} = w_k - (w_k - x_k)/k equals the running average of x_1..x_k (max abs difference)",
        inc_err,
        "<=",
        1e-10,
        text_zh="w_{k+1} = w_k - (w_k - x_k)/k 与前 k 个样本的平均值相同（最大绝对差）",
    )

    # -- Robbins-Monro on tanh(w - 1): rate sigma / sqrt(k (2 g' - 1)) with g'(w*) = 1 --------------
    w_tanh = sa.robbins_monro(
        sa.g_tanh, cfg.w1_tanh, sa.step_sizes(n), ctx.numpy_generator("tanh"), noise_std=sigma, n_runs=cfg.n_runs
    )
    rms_tanh = _rms(w_tanh, sa.ROOT_TANH)
    theory_tanh = sigma / np.sqrt(n)
    ratio_tanh = float(rms_tanh[-1] / theory_tanh)
    res.metric("rms_error_tanh", rms_tanh[-1], description=f"RMS |w_n - 1| over {cfg.n_runs} runs, a_k = 1/k")
    res.claim(
        "rm_tanh_rate",
        "RM on tanh(w-1) with a_k = 1/k: RMS error / (sigma/sqrt(n)) (theory 1), within 30%",
        abs(ratio_tanh - 1.0),
        "<=",
        0.3,
        text_zh="tanh(w-1) 上 a_k = 1/k 的 RM：均方根误差与 σ/√n 之比（理论值 1）偏差不超过 30%",
    )

    # -- w^3 - 5: a_k = c/k converges at the rate c sigma / sqrt(n (2 c g' - 1)), g' = 3 w*^2 ---------
    c = cfg.cubic_scale
    g_prime = 3.0 * sa.ROOT_CUBIC**2
    w_cubic = sa.robbins_monro(
        sa.g_cubic, 0.0, sa.step_sizes(n, scale=c), ctx.numpy_generator("cubic"), noise_std=sigma, n_runs=cfg.n_runs
    )
    rms_cubic = _rms(w_cubic, sa.ROOT_CUBIC)
    theory_cubic = c * sigma / np.sqrt(n * (2 * c * g_prime - 1))
    ratio_cubic = float(rms_cubic[-1] / theory_cubic)
    res.metric("rms_error_cubic", rms_cubic[-1], description=f"RMS |w_n - 5^(1/3)|, a_k = {c}/k")
    res.claim(
        "rm_cubic_rate",
        f"RM on w^3 - 5 from w1 = 0 with a_k = {c}/k: RMS error / theory c*sigma/sqrt(n(2c g' - 1)), within 30%",
        abs(ratio_cubic - 1.0),
        "<=",
        0.3,
        text_zh=f"w^3 - 5 上从 w1 = 0 出发、a_k = {c}/k 的 RM：均方根误差与理论值之比偏差不超过 30%",
    )
    w_blow = sa.robbins_monro(
        sa.g_cubic, 3.0, sa.step_sizes(n), ctx.numpy_generator("blow"), noise_std=sigma, n_runs=cfg.n_runs
    )
    blown = float(np.mean(~np.isfinite(w_blow[-1]) | (np.abs(w_blow[-1]) > 1e6)))
    res.claim(
        "rm_cubic_blows_up",
        "w^3 - 5 violates the gradient bound: with a_k = 1/k from w1 = 3, the fraction of runs that diverge",
        blown,
        ">=",
        0.99,
        text_zh="w^3 - 5 不满足梯度有界条件：从 w1 = 3 出发、a_k = 1/k 时发散的比例",
    )

    # -- sum a_k^2 = infinity: a constant step never averages the noise out --------------------------
    w_const = sa.robbins_monro(
        sa.g_tanh,
        cfg.w1_tanh,
        sa.step_sizes(n, scale=cfg.constant_step, power=0.0),
        ctx.numpy_generator("const"),
        noise_std=sigma,
        n_runs=cfg.n_runs,
    )
    rms_const = _rms(w_const, sa.ROOT_TANH)
    alpha = cfg.constant_step
    theory_const = sigma * np.sqrt(alpha / (2 - alpha))  # stationary spread of the linearised iteration
    res.metric("rms_error_constant_step", rms_const[-1], description=f"a_k = {alpha}")
    res.metric("rms_error_constant_step_theory", theory_const, description="sigma sqrt(alpha / (2 - alpha))")
    res.claim(
        "constant_step_plateaus",
        f"Constant a_k = {alpha} (sum a_k^2 = inf): its RMS error stays at least 5x that of a_k = 1/k at k = n",
        float(rms_const[-1] / rms_tanh[-1]),
        ">=",
        5.0,
        text_zh=f"常数步长 a_k = {alpha}（Σa_k² = ∞）：k = n 时均方根误差至少是 a_k = 1/k 的 5 倍",
    )

    # -- sum a_k < infinity: a_k = 1/k^2 cannot travel from a far start --------------------------------
    a_sum = sa.step_sizes(n, power=2.0)
    w_stall = sa.robbins_monro(
        sa.g_tanh, cfg.far_start, a_sum, ctx.numpy_generator("stall"), noise_std=cfg.far_noise_std, n_runs=cfg.n_runs
    )
    w_go = sa.robbins_monro(
        sa.g_tanh,
        cfg.far_start,
        sa.step_sizes(n),
        ctx.numpy_generator("go"),
        noise_std=cfg.far_noise_std,
        n_runs=cfg.n_runs,
    )
    stall_dist = float(np.min(np.abs(w_stall[-1] - sa.ROOT_TANH)))
    go_dist = float(np.max(np.abs(w_go[-1] - sa.ROOT_TANH)))
    reach = sa.reachable_distance(a_sum, 1.0)
    res.metric("summable_reach_bound", reach, description="sum of a_k = 1/k^2 (times |tanh| <= 1)")
    res.claim(
        "summable_steps_stall",
        f"a_k = 1/k^2 (sum a_k = {reach:.3f}) from w1 = {cfg.far_start:g}: the closest run stays this far from the root",
        stall_dist,
        ">=",
        2.0,
        text_zh=f"a_k = 1/k²（Σa_k = {reach:.3f}）从 w1 = {cfg.far_start:g} 出发：离根最近的一次运行仍有这么远",
    )
    res.claim(
        "harmonic_steps_arrive",
        "a_k = 1/k from the same start reaches the root: the farthest run ends within 0.1 of it",
        go_dist,
        "<=",
        0.1,
        text_zh="同一起点、a_k = 1/k 时能到达根：最远的一次运行最终与根的距离不超过 0.1",
    )

    # -- SGD for mean estimation -------------------------------------------------------------------
    rng = ctx.numpy_generator("sgd")
    curves: dict[int, list[np.ndarray]] = {m: [] for m in cfg.batch_sizes}
    sgd_exact = 0.0
    n_iter = cfg.n_samples
    for _ in range(cfg.sgd_runs):
        data = rng.uniform(-10.0, 10.0, size=(cfg.n_samples, 2))
        target = data.mean(axis=0)
        stream = sa.sgd_mean_estimation(data, w1=np.array([30.0, 30.0]))  # alpha_k = 1/k, x_k in order
        sgd_exact = max(sgd_exact, float(np.max(np.abs(stream[1:] - sa.incremental_mean(data)))))
        for m in cfg.batch_sizes:
            w = sa.sgd_mean_estimation(data, sa.step_sizes(n_iter), rng, batch_size=m, w1=np.array([30.0, 30.0]))
            curves[m].append(np.linalg.norm(w - target, axis=1))
    res.claim(
        "sgd_is_incremental_mean",
        "SGD on J(w) = E||w - X||^2/2 with alpha_k = 1/k equals the incremental mean (max abs difference)",
        sgd_exact,
        "<=",
        1e-9,
        text_zh="在 J(w) = E||w - X||²/2 上取 α_k = 1/k 的 SGD 与增量均值完全相同（最大绝对差）",
    )
    mean_curves = {m: np.mean(np.array(c_), axis=0) for m, c_ in curves.items()}
    m_big = max(cfg.batch_sizes)
    late = slice(n_iter // 2, None)
    ratio_batch = float(np.mean(mean_curves[m_big][late]) / np.mean(mean_curves[1][late]))
    res.claim(
        "minibatch_reduces_error",
        f"Mini-batches of m = {m_big} average the noise: late-iteration distance to the mean, ratio to m = 1",
        ratio_batch,
        "<=",
        0.5,
        text_zh=f"m = {m_big} 的小批量平均了噪声：后半程到均值的距离与 m = 1 之比",
    )

    res.table(
        "rm_errors",
        ["experiment", "step size", "measured RMS error at n", "theory"],
        [
            [f"tanh(w - 1), w1 = {cfg.w1_tanh:g}", "1/k", float(rms_tanh[-1]), float(theory_tanh)],
            ["w^3 - 5, w1 = 0", f"{c:g}/k", float(rms_cubic[-1]), float(theory_cubic)],
            [f"tanh(w - 1), w1 = {cfg.w1_tanh:g}", f"{alpha:g} (constant)", float(rms_const[-1]), float(theory_const)],
        ],
        caption_en=f"Robbins-Monro after n = {n} steps, sigma = {sigma:g}, {cfg.n_runs} runs.",
        caption_zh=f"Robbins-Monro 迭代 n = {n} 步后的误差，σ = {sigma:g}，{cfg.n_runs} 次独立运行。",
    )

    _figures(cfg, ctx, k, w_tanh, w_cubic, rms_tanh, rms_cubic, rms_const, theory_const, w_stall, w_go, mean_curves)
    return res


def _figures(cfg, ctx, k, w_tanh, w_cubic, rms_tanh, rms_cubic, rms_const, theory_const, w_stall, w_go, curves):
    sigma, c = cfg.noise_std, cfg.cubic_scale
    # the x axes are logarithmic: about 400 log-spaced iterations draw the same curves
    idx = np.unique(np.geomspace(1, k.size, 400).astype(int)) - 1
    k, w_tanh, w_cubic, w_stall, w_go = k[idx], w_tanh[idx], w_cubic[idx], w_stall[idx], w_go[idx]
    rms_tanh, rms_cubic, rms_const = rms_tanh[idx], rms_cubic[idx], rms_const[idx]
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    for i in range(5):
        axes[0].plot(k, w_tanh[:, i], lw=0.8, color="C0", alpha=0.7)
        axes[0].plot(k, w_cubic[:, i], lw=0.8, color="C1", alpha=0.7)
    axes[0].axhline(sa.ROOT_TANH, color="C0", ls="--", lw=1, label=r"$\tanh(w-1)$: root 1")
    axes[0].axhline(sa.ROOT_CUBIC, color="C1", ls="--", lw=1, label=r"$w^3-5$: root $5^{1/3}$")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("iteration $k$")
    axes[0].set_ylabel("$w_k$")
    axes[0].set_title("RM iterates under noise (5 runs each)")
    axes[0].legend(fontsize=8)
    for i in range(5):
        axes[1].plot(k, w_stall[:, i], lw=0.8, color="C3", alpha=0.7)
        axes[1].plot(k, w_go[:, i], lw=0.8, color="C2", alpha=0.7)
    axes[1].plot([], [], color="C3", label=r"$a_k = 1/k^2$ ($\sum a_k < \infty$)")
    axes[1].plot([], [], color="C2", label=r"$a_k = 1/k$")
    axes[1].axhline(sa.ROOT_TANH, color="k", ls="--", lw=1)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("iteration $k$")
    axes[1].set_title(rf"$\tanh(w-1)$ from $w_1 = {cfg.far_start:g}$")
    axes[1].legend(fontsize=8)
    ctx.save_figure(
        fig,
        "iterates",
        caption_en="Left: RM iterates for the book's two examples. Right: summable steps stall far from the root.",
        caption_zh="左：书中两个例子的 RM 迭代轨迹。右：步长之和有限时迭代停在离根很远的地方。",
    )

    fig, ax = new_figure()
    ax.loglog(k, rms_tanh, color="C0", label=r"$\tanh(w-1)$, $a_k = 1/k$")
    ax.loglog(k, sigma / np.sqrt(k), color="C0", ls=":", lw=1, label=r"theory $\sigma/\sqrt{k}$")
    ax.loglog(k, rms_cubic, color="C1", label=rf"$w^3-5$, $a_k = {c:g}/k$")
    g_prime = 3.0 * sa.ROOT_CUBIC**2
    ax.loglog(k, c * sigma / np.sqrt(k * (2 * c * g_prime - 1)), color="C1", ls=":", lw=1, label="theory")
    ax.loglog(k, rms_const, color="C3", label=rf"constant $a_k = {cfg.constant_step:g}$")
    ax.axhline(theory_const, color="C3", ls=":", lw=1)
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel("RMS error over runs")
    ax.set_title(f"Convergence rate, sigma = {sigma:g}, {cfg.n_runs} runs")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "rate",
        caption_en="RMS error against the iteration: 1/k steps follow the 1/sqrt(k) law, a constant step plateaus.",
        caption_zh="均方根误差随迭代次数的变化：1/k 步长按 1/√k 下降，常数步长停在一个平台上。",
    )

    fig, ax = new_figure()
    for i, (m, curve) in enumerate(sorted(curves.items())):
        label = "SGD (m = 1)" if m == 1 else f"mini-batch m = {m}"
        ax.loglog(np.arange(1, curve.size + 1), curve, color=f"C{i}", label=label)
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel(r"$\|w_k - \bar x\|$ (mean over runs)")
    ax.set_title(r"Mean estimation, $X \sim U([-10,10]^2)$, $\alpha_k = 1/k$")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "mean-estimation",
        caption_en="SGD and mini-batch SGD estimating a mean: larger batches average more noise per step.",
        caption_zh="用 SGD 与小批量 SGD 估计均值：批量越大，每一步平均掉的噪声越多。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    x = ctx.numpy_generator("bench").normal(size=cfg.bench_n)
    t_ours = best_time(lambda: sa.incremental_mean(x), cfg.bench_repeats)
    t_ref = best_time(lambda: np.cumsum(x) / np.arange(1, x.size + 1), cfg.bench_repeats)
    w1 = np.zeros(1000)
    a = sa.step_sizes(1000)
    t_rm = best_time(lambda: sa.robbins_monro(sa.g_tanh, w1, a, n_runs=1000), cfg.bench_repeats)
    t_loop = best_time(lambda: [sa.robbins_monro(sa.g_tanh, 0.0, a) for _ in range(50)], cfg.bench_repeats) * 20
    return [
        BenchRow(
            name=f"running mean of {cfg.bench_n:,} samples: one incremental update per sample",
            ours=t_ours,
            reference=t_ref,
            reference_name="numpy.cumsum / arange (all at once)",
            note="the streaming form pays a Python step per sample; it never stores the samples",
        ),
        BenchRow(
            name="1,000 RM runs of 1,000 steps: vectorised over runs vs one run at a time",
            ours=t_rm,
            reference=t_loop,
            reference_name="the same function, one run per call (50 timed, scaled to 1,000)",
        ),
    ]
