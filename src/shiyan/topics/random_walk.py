"""M1 -- the 1-D random walk via generating functions: exact laws checked against Monte Carlo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import best_time
from shiyan.maths import random_walk as rw

META = TopicMeta(
    slug="random-walk",
    category="Math",
    date=dt.date(2023, 4, 18),
    title_en="Random walks through generating functions",
    title_zh="用生成函数解随机游走",
    summary_en=(
        "The drunkard's walk on a line, solved exactly: where it is after n steps, how likely it is to come "
        "back, when it first reaches a level, and how fast returns become certain -- checked against Monte Carlo."
    ),
    summary_zh="一维醉汉游走的精确解：n 步后的位置分布、回到原点的概率、首次到达某一层的时间，以及这些量的极限行为，并用蒙特卡洛逐一核对。",
    implements=("shiyan.maths.random_walk",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    n_steps: int = 100
    """Length n of the simulated walks (distribution of S_n, returns and passages within n steps)."""
    p: float = 0.5
    """Probability of a +1 step of the simulated walk (q = 1 - p is the probability of a -1 step)."""
    n_walks: int = 500_000
    """Number of Monte Carlo walks."""
    batch_size: int = 50_000
    """Walks simulated at once (bounds memory: batch_size * n_steps bytes of steps)."""
    passage_level: int = 3
    """Level k whose first-passage time T_k is studied (non-zero)."""
    asymmetric_p: tuple[float, ...] = (0.55, 0.6, 0.75)
    """Up-step probabilities (not 1/2) whose return curves approach 1 - |p - q| instead of 1."""
    return_horizon: int = 4000
    """Largest time (even) of the exact return-probability curves."""
    bench_n: int = 100_000
    """Number of steps n of the exact-pmf benchmark (all n + 1 reachable positions are evaluated)."""
    bench_repeats: int = 5
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if self.n_steps < 2:
            raise ConfigError(f"n_steps must be >= 2; got {self.n_steps}")
        if not 0.0 < self.p < 1.0:
            raise ConfigError(f"p must lie strictly between 0 and 1; got {self.p}")
        if self.n_walks < 100:
            raise ConfigError(f"n_walks must be >= 100; got {self.n_walks}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.passage_level == 0 or abs(self.passage_level) > self.n_steps:
            raise ConfigError(f"passage_level must be non-zero with |k| <= n_steps; got {self.passage_level}")
        if not self.asymmetric_p or any(not 0.0 < a < 1.0 or a == 0.5 for a in self.asymmetric_p):
            raise ConfigError(f"asymmetric_p must be non-empty, inside (0, 1) and != 0.5; got {self.asymmetric_p}")
        if self.return_horizon < 500 or self.return_horizon % 2:
            raise ConfigError(f"return_horizon must be even and >= 500; got {self.return_horizon}")
        if self.bench_n < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_n and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_steps=40, n_walks=20_000, return_horizon=2000, bench_n=10_000, bench_repeats=2)


# Claim thresholds. A correct sampler has TV(empirical, exact) close to E[TV]; 1.5x leaves room
# for sampling noise but not for a wrong law (a biased step or an off-by-one time shifts it by far more).
TV_FACTOR = 1.5


def _mc_walks(cfg: Config, ctx: RunContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final positions, first-return times and first-passage times of cfg.n_walks simulated walks."""
    rng = ctx.numpy_generator("walks")
    finals, returns, passages = [], [], []
    sizes = [cfg.batch_size] * (cfg.n_walks // cfg.batch_size)
    if cfg.n_walks % cfg.batch_size:
        sizes.append(cfg.n_walks % cfg.batch_size)
    for size in ctx.progress(sizes, total=len(sizes), description="simulating walks"):
        paths = rw.simulate_walks(cfg.n_steps, size, cfg.p, rng)  # (size, n_steps + 1)
        finals.append(paths[:, -1])
        returns.append(rw.first_hit_times(paths, 0))
        passages.append(rw.first_hit_times(paths, cfg.passage_level))
    return np.concatenate(finals), np.concatenate(returns), np.concatenate(passages)


def _time_law(times: np.ndarray, n: int) -> np.ndarray:
    """Frequencies of t = 1..n plus a last cell for 'not within n steps' (times == -1)."""
    counts = np.bincount(np.where(times > 0, times, n + 1), minlength=n + 2)[1:]
    return counts / times.size


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    n, p, k = cfg.n_steps, cfg.p, cfg.passage_level
    q = 1.0 - p

    # -- exact law of S_n: closed form vs the coefficients of (p z + q / z)^n -------------------
    support = rw.positions(n)
    exact = rw.position_pmf(n, p)  # (2n + 1,)
    # z^n (p z + q z^{-1})^n = (q + p z^2)^n: its coefficients are P(S_n = -n), ..., P(S_n = n)
    gf_coeffs = P.polypow([q, 0.0, p], n)
    gf_err = float(np.max(np.abs(gf_coeffs - exact)))
    res.metric("gf_coefficient_error", gf_err, description="max |closed form - coefficients of (pz+q/z)^n|")
    res.claim(
        "gf_coefficients",
        "The closed-form pmf equals the coefficients of (pz + q/z)^n (max abs difference)",
        gf_err,
        "<=",
        1e-12,
        text_zh="闭式分布与 (pz + q/z)^n 展开系数一致（最大绝对差）",
    )
    mean = float(np.sum(support * exact))
    var = float(np.sum((support - mean) ** 2 * exact))
    moment_err = max(abs(mean - n * (p - q)), abs(var - 4 * n * p * q) / (4 * n * p * q))
    res.claim(
        "moments",
        "The exact pmf has mean n(p - q) and variance 4npq (worst relative error)",
        moment_err,
        "<=",
        1e-9,
        text_zh="精确分布的均值为 n(p - q)、方差为 4npq（最大相对误差）",
    )

    # -- Monte Carlo -----------------------------------------------------------------------------
    finals, ret_times, pass_times = _mc_walks(cfg, ctx)
    empirical = rw.empirical_position_pmf(finals, n)
    tv = rw.total_variation(empirical, exact)
    tv_expected = rw.expected_sampling_tv(exact, cfg.n_walks)
    res.metric("mc_tv_position", tv, description="TV(empirical S_n, exact)")
    res.metric("mc_tv_expected", tv_expected, description="E[TV] of a correct sampler of this size")
    res.claim(
        "mc_position_law",
        f"Monte Carlo S_n matches the exact law: TV <= {TV_FACTOR} x the sampling-noise level",
        tv,
        "<=",
        TV_FACTOR * tv_expected,
        text_zh=f"蒙特卡洛的 S_n 分布与精确分布一致：总变差距离不超过抽样噪声水平的 {TV_FACTOR} 倍",
    )

    m_walk = n // 2
    f_walk = rw.first_return_probabilities(m_walk, p)  # (m_walk + 1,)
    exact_return = np.zeros(n + 1)  # law of T_0 on t = 1..n, then 'later'
    exact_return[1 : 2 * m_walk : 2] = f_walk[1:]  # times 2, 4, ..., 2 m_walk sit at index t - 1
    exact_return[-1] = 1.0 - f_walk.sum()
    mc_return = _time_law(ret_times, n)
    tv_ret = rw.total_variation(mc_return, exact_return)
    res.claim(
        "mc_first_return_law",
        f"Monte Carlo first-return times match f_2m from F(s): TV <= {TV_FACTOR} x the sampling-noise level",
        tv_ret,
        "<=",
        TV_FACTOR * rw.expected_sampling_tv(exact_return, cfg.n_walks),
        text_zh=f"蒙特卡洛的首次返回时间与 F(s) 给出的 f_2m 一致：总变差距离不超过抽样噪声水平的 {TV_FACTOR} 倍",
    )

    series_k = rw.first_passage_series(n, k, p)  # (n + 1,) coefficients of F_1(s)^k
    theorem_k = rw.first_passage_probabilities(np.arange(n + 1), k, p)
    exact_pass = np.append(series_k[1:], 1.0 - series_k.sum())
    mc_pass = _time_law(pass_times, n)
    tv_pass = rw.total_variation(mc_pass, exact_pass)
    res.claim(
        "mc_first_passage_law",
        f"Monte Carlo first-passage times to level {k} match [s^n] F_1(s)^k: TV <= {TV_FACTOR} x the noise level",
        tv_pass,
        "<=",
        TV_FACTOR * rw.expected_sampling_tv(exact_pass, cfg.n_walks),
        text_zh=f"蒙特卡洛的首达第 {k} 层时间与 F_1(s)^k 的系数一致：总变差距离不超过抽样噪声水平的 {TV_FACTOR} 倍",
    )
    hit_err = float(np.max(np.abs(series_k - theorem_k)))
    res.claim(
        "hitting_time_theorem",
        "Coefficients of F_1(s)^k equal (|k|/n) P(S_n = k) (max abs difference)",
        hit_err,
        "<=",
        1e-12,
        text_zh="F_1(s)^k 的系数等于 (|k|/n) P(S_n = k)（最大绝对差）",
    )

    # -- returns: renewal identity, limits -------------------------------------------------------
    m_max = cfg.return_horizon // 2
    curves: dict[float, np.ndarray] = {}
    renewal_err = 0.0
    for pp in (0.5, *cfg.asymmetric_p, p):
        u = rw.return_probabilities(m_max, pp)
        f = rw.first_return_probabilities(m_max, pp)
        # u_{2m} = sum_{j=1}^m f_{2j} u_{2m-2j} for m >= 1
        renewal_err = max(renewal_err, float(np.max(np.abs(np.convolve(f, u)[1 : m_max + 1] - u[1:]))))
        curves[pp] = np.cumsum(f)
    res.metric("renewal_error", renewal_err, description="max |u_2m - sum_j f_2j u_2m-2j|")
    res.claim(
        "renewal_identity",
        "u_2m = sum_j f_2j u_(2m-2j) holds for the closed forms (max abs error over all p and m)",
        renewal_err,
        "<=",
        1e-12,
        text_zh="闭式的 u_2m 与 f_2m 满足更新方程 u_2m = Σ f_2j u_(2m-2j)（所有 p 与 m 上的最大绝对误差）",
    )
    limit_gap = max(abs(curves[a][-1] - rw.ever_return_probability(a)) for a in cfg.asymmetric_p)
    res.claim(
        "ever_return_limit",
        f"For p != 1/2, P(return by {cfg.return_horizon}) reaches F(1) = 1 - |p - q| (max abs gap)",
        limit_gap,
        "<=",
        1e-6,
        text_zh=f"p ≠ 1/2 时，P(在 {cfg.return_horizon} 步内返回) 收敛到 F(1) = 1 - |p - q|（最大绝对差）",
    )
    tail = 1.0 - curves[0.5][-1]  # P(T_0 > 2M) for the symmetric walk
    asym_err = abs(tail * np.sqrt(np.pi * m_max) - 1.0)
    res.metric("symmetric_tail", tail, description=f"P(no return within {cfg.return_horizon} steps), p = 1/2")
    res.claim(
        "symmetric_tail_asymptote",
        "Symmetric walk: P(no return by 2m) * sqrt(pi m) -> 1 (relative gap at the horizon)",
        asym_err,
        "<=",
        1e-3,
        text_zh="对称游走：P(2m 步内未返回) · sqrt(πm) → 1（在最大时间处的相对偏差）",
    )

    # -- CLT: the normal approximation improves with n -----------------------------------------
    tv_n = rw.total_variation(exact, rw.normal_approximation(n, p))
    tv_4n = rw.total_variation(rw.position_pmf(4 * n, p), rw.normal_approximation(4 * n, p))
    res.metric("clt_tv_n", tv_n, description="TV(exact S_n, local normal approximation)")
    res.metric("clt_tv_4n", tv_4n, description="TV(exact S_4n, local normal approximation)")
    res.claim(
        "clt_convergence",
        "The local normal approximation improves at rate 1/sqrt(n) or better: TV(4n) / TV(n) <= 0.55",
        tv_4n / tv_n,
        "<=",
        0.55,
        text_zh="局部正态近似至少以 1/sqrt(n) 的速度变好：TV(4n) / TV(n) ≤ 0.55",
    )

    # -- tables -----------------------------------------------------------------------------------
    se = lambda x: float(np.sqrt(x * (1 - x) / cfg.n_walks))  # noqa: E731
    p_ret_exact = float(f_walk.sum())
    p_pass_exact = float(series_k.sum())
    p_ret_mc = float(np.mean(ret_times > 0))
    p_pass_mc = float(np.mean(pass_times > 0))
    res.table(
        "mc_vs_exact",
        ["quantity", "exact", "Monte Carlo", "MC std. error"],
        [
            ["E[S_n]", n * (p - q), float(finals.mean()), float(np.sqrt(4 * n * p * q / cfg.n_walks))],
            ["P(S_n = 0)" if n % 2 == 0 else "P(S_n = 1)", float(exact[n + n % 2]), float(empirical[n + n % 2]), None],
            [f"P(return by {n})", p_ret_exact, p_ret_mc, se(p_ret_exact)],
            [f"P(reach {k} by {n})", p_pass_exact, p_pass_mc, se(p_pass_exact)],
        ],
        caption_en=f"Exact values vs {cfg.n_walks:,} simulated walks (n = {n}, p = {p}).",
        caption_zh=f"精确值与 {cfg.n_walks:,} 条模拟路径的比较（n = {n}，p = {p}）。",
    )
    rows = []
    for pp in (0.5, *cfg.asymmetric_p):
        rows.append([pp, rw.ever_return_probability(pp), float(curves[pp][-1]), rw.ever_reach_probability(1, pp)])
    res.table(
        "returns",
        ["p", "F(1) = 1 - |p - q|", f"P(return by {cfg.return_horizon})", "P(ever reach +1)"],
        rows,
        caption_en="Return and passage probabilities from the generating functions.",
        caption_zh="由生成函数得到的返回概率与首达概率。",
    )
    for name, val in (("p_return_exact", p_ret_exact), ("p_return_mc", p_ret_mc)):
        res.metric(name, val)

    _figures(cfg, ctx, exact, empirical, curves, series_k, mc_pass)
    return res


def _figures(cfg, ctx, exact, empirical, curves, series_k, mc_pass) -> None:
    n, p, k = cfg.n_steps, cfg.p, cfg.passage_level
    support = rw.positions(n)
    even = (support + n) % 2 == 0
    fig, ax = new_figure()
    ax.bar(support[even], empirical[even], width=1.6, color="C0", alpha=0.35, label=f"Monte Carlo ({cfg.n_walks:,})")
    ax.plot(support[even], exact[even], "o", ms=3.5, color="C3", label="exact  $[z^k](pz+q/z)^n$")
    xs = np.linspace(-n, n, 600)
    mu, var = n * (2 * p - 1), 4 * n * p * (1 - p)
    ax.plot(xs, 2 * np.exp(-((xs - mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var), "k--", lw=1, label="normal")
    lo, hi = mu - 4.5 * np.sqrt(var), mu + 4.5 * np.sqrt(var)
    ax.set_xlim(max(-n, lo), min(n, hi))
    ax.set_xlabel("position $k$")
    ax.set_ylabel("$P(S_n = k)$")
    ax.set_title(f"Position after n = {n} steps, p = {p}")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "pmf",
        caption_en="Exact distribution of S_n (dots), simulated frequencies (bars) and the normal approximation.",
        caption_zh="S_n 的精确分布（点）、模拟频率（柱）与正态近似（虚线）。",
    )

    fig, ax = new_figure()
    m_max = cfg.return_horizon // 2
    t = 2 * np.arange(1, m_max + 1)
    for i, (pp, curve) in enumerate(sorted(curves.items())):
        if pp == cfg.p and pp not in (0.5, *cfg.asymmetric_p):
            continue
        ax.plot(t, curve[1:], color=f"C{i}", lw=1.4, label=f"p = {pp:g}")
        ax.axhline(rw.ever_return_probability(pp), color=f"C{i}", ls=":", lw=1)
    ax.plot(t, 1 - 1 / np.sqrt(np.pi * t / 2), "k--", lw=1, label=r"$1 - 1/\sqrt{\pi m}$ (p = 1/2)")
    ax.set_xscale("log")
    ax.set_ylim(0.3, 1.02)
    ax.set_xlabel("time $n = 2m$")
    ax.set_ylabel("P(returned to 0 by time n)")
    ax.set_title("Return probability; dotted lines: $F(1) = 1 - |p - q|$")
    ax.legend(fontsize=8, loc="lower right")
    ctx.save_figure(
        fig,
        "return",
        caption_en="P(return by n) for several p; it tends to 1 only for the symmetric walk, slowly (dashed).",
        caption_zh="不同 p 下 P(n 步内返回原点)；只有对称游走趋于 1，而且很慢（虚线为渐近式）。",
    )

    fig, ax = new_figure()
    times = np.arange(1, n + 1)
    mask = series_k[1:] > 0
    ax.bar(times[mask], mc_pass[:-1][mask], width=1.6, color="C0", alpha=0.35, label="Monte Carlo")
    ax.plot(times[mask], series_k[1:][mask], "o", ms=3.5, color="C3", label=r"exact $[s^n]F_1(s)^k$")
    ax.set_xlabel("time $n$")
    ax.set_ylabel(f"$P(T_{{{k}}} = n)$")
    ax.set_title(f"First passage to level {k}, p = {p}")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "first-passage",
        caption_en=f"Law of the first time the walk reaches {k}: generating-function coefficients vs simulation.",
        caption_zh=f"首次到达第 {k} 层的时间分布：生成函数系数与模拟的比较。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    from scipy.stats import binom

    n, p = cfg.bench_n, cfg.p
    k = np.arange(-n, n + 1, 2)  # every reachable position
    r = (n + k) // 2
    t_ours = best_time(lambda: rw.position_pmf(n, p, k), cfg.bench_repeats)
    t_ref = best_time(lambda: binom.pmf(r, n, p), cfg.bench_repeats)
    rng = ctx.numpy_generator("bench")
    walks = min(cfg.n_walks, 100_000)
    t_sim = best_time(lambda: rw.simulate_walks(cfg.n_steps, walks, p, rng), cfg.bench_repeats)
    t_bin = best_time(lambda: 2 * rng.binomial(cfg.n_steps, p, size=walks) - cfg.n_steps, cfg.bench_repeats)
    return [
        BenchRow(
            name=f"exact pmf of S_n, n = {n:,} (all {n + 1:,} positions)",
            ours=t_ours,
            reference=t_ref,
            reference_name="scipy.stats.binom.pmf",
        ),
        BenchRow(
            name=f"Monte Carlo: {walks:,} full paths of {cfg.n_steps} steps vs final positions only",
            ours=t_sim,
            reference=t_bin,
            reference_name="numpy.random.Generator.binomial",
            note=f"{walks * cfg.n_steps / t_sim:.3g} steps/s; paths are needed for return and passage times",
        ),
    ]
