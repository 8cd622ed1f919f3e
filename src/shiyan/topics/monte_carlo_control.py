"""R2 -- the book's grid world solved by the Bellman equations, then learned by Monte Carlo control
(MC basic, exploring starts, epsilon-greedy; Chapters 2-5 of Shiyu Zhao's book)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import best_time
from shiyan.rl import bellman as bl
from shiyan.rl import tabular as tb
from shiyan.rl.gridworld import GridWorld
from shiyan.rl.plotting import draw_grid

META = TopicMeta(
    slug="monte-carlo-control",
    category="RL",
    date=dt.date(2024, 5, 13),
    title_en="The grid world: Bellman equations, then Monte Carlo control",
    title_zh="网格世界：先解贝尔曼方程，再用蒙特卡洛控制学出来",
    summary_en=(
        "The book's 5x5 grid world reproduced value for value by value iteration, policy iteration and "
        "truncated policy iteration; then the same optimal policy learned from episodes alone by MC basic, "
        "MC exploring starts and MC ε-greedy -- with the episode length, the step size and ε each shown to matter."
    ),
    summary_zh=(
        "用值迭代、策略迭代和截断策略迭代逐格复现书中 5×5 网格世界的状态值；再只凭回合数据，用 MC Basic、"
        "MC Exploring Starts 和 MC ε-greedy 学到同样的最优策略，并分别说明回合长度、步长和 ε 的影响。"
    ),
    implements=("shiyan.rl.gridworld", "shiyan.rl.bellman", "shiyan.rl.tabular"),
)

# The book's figures (r_boundary = -1, r_target = 1, gamma = 0.9), row by row.
BOOK_OPTIMAL_RF1 = np.array(
    [
        [5.8, 5.6, 6.2, 6.5, 5.8],
        [6.5, 7.2, 8.0, 7.2, 6.5],
        [7.2, 8.0, 10, 8.0, 7.2],
        [8.0, 10, 10, 10, 8.0],
        [7.2, 9.0, 10, 9.0, 8.1],
    ]
)
BOOK_OPTIMAL_RF10 = np.array(
    [
        [3.5, 3.9, 4.3, 4.8, 5.3],
        [3.1, 3.5, 4.8, 5.3, 5.9],
        [2.8, 2.5, 10, 5.9, 6.6],
        [2.5, 10, 10, 10, 7.3],
        [2.3, 9.0, 10, 9.0, 8.1],
    ]
)
BOOK_UNIFORM_RF1 = np.array(
    [
        [-3.8, -3.8, -3.6, -3.1, -3.2],
        [-3.8, -3.8, -3.8, -3.1, -2.9],
        [-3.6, -3.9, -3.4, -3.2, -2.9],
        [-3.9, -3.6, -3.4, -2.9, -3.2],
        [-4.5, -4.2, -3.4, -3.4, -3.5],
    ]
)
BOOK_FULL_LENGTH = 15
"""The book's episode-length figure: at length 14 one state still has value 0, at 15 none does."""


@dataclass(frozen=True)
class Config(TopicConfig):
    gamma: float = 0.9
    """Discount rate (the book's figures use 0.9)."""
    episode_lengths: tuple[int, ...] = (1, 2, 3, 4, 14, 15, 30, 100)
    """Episode lengths of the MC basic experiment (the book's figure; r_forbidden = -10)."""
    mc_basic_iterations: int = 20
    """Policy-iteration steps of MC basic per episode length."""
    n_seeds: int = 4
    """Independent seeds behind every learning curve."""
    es_episodes: int = 3000
    """Episodes of MC exploring starts per seed."""
    es_alpha: float = 0.5
    """Constant step size compared with the book's running mean in MC exploring starts."""
    mc_episode_length: int = 60
    """Episode length of MC exploring starts and MC epsilon-greedy (continuing task, truncated)."""
    mc_min_horizon: int = 30
    """Returns followed by fewer rewards than this before the truncation are not used."""
    epsilons: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5)
    """Epsilons of the model-based epsilon-greedy comparison (the book's figure)."""
    learn_epsilon: float = 0.5
    """Epsilon of the MC epsilon-greedy learner."""
    eg_episodes: int = 2000
    """Episodes of MC epsilon-greedy per seed."""
    record_every: int = 2000
    """Environment steps between snapshots on the learning curves."""
    bench_repeats: int = 3
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must lie in (0, 1); got {self.gamma}")
        if not self.episode_lengths or min(self.episode_lengths) < 1:
            raise ConfigError(f"episode_lengths must be positive; got {self.episode_lengths}")
        if self.mc_basic_iterations < 2 or self.n_seeds < 1:
            raise ConfigError("mc_basic_iterations must be >= 2 and n_seeds >= 1")
        if self.es_episodes < 100 or self.eg_episodes < 100:
            raise ConfigError("es_episodes and eg_episodes must be >= 100")
        if not 0.0 < self.es_alpha <= 1.0:
            raise ConfigError(f"es_alpha must lie in (0, 1]; got {self.es_alpha}")
        if not 0 <= self.mc_min_horizon < self.mc_episode_length:
            raise ConfigError("mc_min_horizon must lie in [0, mc_episode_length)")
        if any(not 0.0 <= e <= 1.0 for e in self.epsilons) or not 0.0 < self.learn_epsilon <= 1.0:
            raise ConfigError("epsilons must lie in [0, 1] and learn_epsilon in (0, 1]")
        if self.record_every < 1 or self.bench_repeats < 1:
            raise ConfigError("record_every and bench_repeats must be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            episode_lengths=(1, 14, 15),
            epsilons=(0.1, 0.5),
            mc_basic_iterations=15,
            n_seeds=1,
            es_episodes=2000,
            eg_episodes=1500,
            bench_repeats=1,
        )


def _policy_gaps(mdp, history: np.ndarray, ref_v: np.ndarray, gamma: float, epsilon: float | None) -> np.ndarray:
    """Max over states of |v_ref - v_pi| for the (epsilon-)greedy policy of every q snapshot."""
    gaps = []
    live = ~mdp.terminal
    for q in history:
        pi = bl.greedy_policy(q) if epsilon is None else bl.epsilon_greedy_policy(q, epsilon)
        gaps.append(float(np.max(np.abs(ref_v - bl.evaluate_policy(mdp.P, mdp.R, pi, gamma))[live])))
    return np.array(gaps)


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    gamma = cfg.gamma

    # -- 1. model-based: the book's figures --------------------------------------------------------
    env1 = GridWorld(r_forbidden=-1.0)
    env10 = GridWorld(r_forbidden=-10.0)
    vi1 = bl.value_iteration(env1.mdp.P, env1.mdp.R, gamma)
    vi10 = bl.value_iteration(env10.mdp.P, env10.mdp.R, gamma)
    uniform = bl.uniform_policy(25, 5)
    v_uniform = bl.evaluate_policy(env1.mdp.P, env1.mdp.R, uniform, gamma)
    for name, v, book, what_en, what_zh in (
        (
            "book_optimal_rf1",
            vi1.v,
            BOOK_OPTIMAL_RF1,
            "optimal values, r_forbidden = -1",
            "最优状态值，r_forbidden = -1",
        ),
        (
            "book_optimal_rf10",
            vi10.v,
            BOOK_OPTIMAL_RF10,
            "optimal values, r_forbidden = -10",
            "最优状态值，r_forbidden = -10",
        ),
        ("book_uniform_policy", v_uniform, BOOK_UNIFORM_RF1, "uniform random policy's values", "均匀随机策略的状态值"),
    ):
        err = float(np.max(np.abs(env1.as_grid(v) - book)))
        res.claim(
            name,
            f"Reproduces the book's {what_en}: max |ours - printed| (the book prints one decimal)",
            err,
            "<=",
            0.05 + 1e-9,
            text_zh=f"复现书中的{what_zh}：与书中数值（保留一位小数）的最大绝对差",
        )

    pi1 = bl.policy_iteration(env1.mdp.P, env1.mdp.R, gamma)
    tpis = {j: bl.truncated_policy_iteration(env1.mdp.P, env1.mdp.R, gamma, j) for j in (3, 10, 50)}
    agree = max(
        float(np.max(np.abs(pi1.v - vi1.v))),
        *(float(np.max(np.abs(t.v - vi1.v))) for t in tpis.values()),
        float(np.max(np.abs(bl.evaluate_policy(env1.mdp.P, env1.mdp.R, vi1.policy, gamma) - vi1.v))),
    )
    res.claim(
        "solvers_agree",
        "Value iteration, policy iteration and truncated PI (j = 3, 10, 50) agree (max abs difference)",
        agree,
        "<=",
        1e-8,
        text_zh="值迭代、策略迭代与截断策略迭代（j = 3, 10, 50）的结果一致（最大绝对差）",
    )
    res.table(
        "solver_iterations",
        ["solver", "outer iterations to ||v_k+1 - v_k|| < 1e-12"],
        [["value iteration", vi1.n_iter], ["policy iteration", pi1.n_iter]]
        + [[f"truncated PI, j = {j}", t.n_iter] for j, t in tpis.items()],
        caption_en="Iterations of each solver on the book's grid (r_forbidden = -1, gamma = 0.9).",
        caption_zh="各求解器在书中网格上（r_forbidden = -1，γ = 0.9）的外层迭代次数。",
    )

    # -- 2. MC basic and the episode length ----------------------------------------------------------
    opt10 = vi10
    basic_values, basic_gaps, nonzero = {}, {}, {}
    for L in ctx.progress(cfg.episode_lengths, total=len(cfg.episode_lengths), description="MC basic"):
        r = tb.mc_basic(
            env10.mdp, gamma, ctx.numpy_generator("basic", L), n_iterations=cfg.mc_basic_iterations, episode_length=L
        )
        basic_values[L] = r.values.max(axis=1)
        basic_gaps[L] = float(np.max(np.abs(bl.evaluate_policy(env10.mdp.P, env10.mdp.R, r.policy, gamma) - opt10.v)))
        nonzero[L] = int(np.sum(np.abs(basic_values[L]) > 1e-12))
    L_max = max(cfg.episode_lengths)
    res.claim(
        "mc_basic_optimal",
        f"MC basic with episodes of {L_max} steps finds an optimal policy (max |v_pi - v*|, r_forbidden = -10)",
        basic_gaps[L_max],
        "<=",
        1e-6,
        text_zh=f"回合长度为 {L_max} 的 MC Basic 学到最优策略（max |v_π - v*|，r_forbidden = -10）",
    )
    full = [L for L in sorted(cfg.episode_lengths) if nonzero[L] == 25]
    shortest_full = full[0] if full else 0
    res.claim(
        "episode_length_threshold",
        "Shortest episode length (of those tried) at which every state gets a non-zero value (book: 15)",
        shortest_full,
        "==",
        BOOK_FULL_LENGTH,
        text_zh="所试回合长度中使每个状态的值都不为零的最短长度（书中为 15）",
    )
    res.table(
        "episode_length",
        ["episode length", "states with non-zero value", "max |v_pi - v*|"],
        [[L, nonzero[L], basic_gaps[L]] for L in cfg.episode_lengths],
        caption_en="MC basic on the grid with r_forbidden = -10: short episodes cannot see the target.",
        caption_zh="r_forbidden = -10 的网格上的 MC Basic：回合太短就“看不到”目标。",
    )

    # -- 3. MC exploring starts: running mean vs constant step --------------------------------------------
    es_curves: dict[str, list[np.ndarray]] = {"running mean (book)": [], f"constant step {cfg.es_alpha:g}": []}
    es_steps: dict[str, np.ndarray] = {}
    for seed in ctx.progress(range(cfg.n_seeds), total=cfg.n_seeds, description="MC exploring starts"):
        for label, kw in zip(es_curves, ({}, {"alpha": cfg.es_alpha, "alpha_power": 0.0}), strict=True):
            r = tb.mc_exploring_starts(
                env1.mdp,
                gamma,
                ctx.numpy_generator("es", seed),
                n_episodes=cfg.es_episodes,
                episode_length=cfg.mc_episode_length,
                min_horizon=cfg.mc_min_horizon,
                record_every=cfg.record_every,
                **kw,
            )
            es_curves[label].append(_policy_gaps(env1.mdp, r.history, vi1.v, gamma, None))
            es_steps[label] = r.history_steps
    const_label = list(es_curves)[1]
    const_final = float(max(c[-1] for c in es_curves[const_label]))
    mean_final = float(np.median([c[-1] for c in es_curves["running mean (book)"]]))
    res.claim(
        "mc_es_constant_step_optimal",
        "MC exploring starts with a constant step finds an optimal policy in every seed (worst max |v_pi - v*|)",
        const_final,
        "<=",
        0.1,
        text_zh="常数步长的 MC Exploring Starts 在每个种子下都学到最优策略（最差的 max |v_π - v*|）",
    )
    res.metric("mc_es_running_mean_final_gap", mean_final, description="median over seeds of max |v_pi - v*|")

    # -- 4. MC epsilon-greedy and the price of exploration ----------------------------------------------
    eps_rows, eps_results = [], {}
    for eps in cfg.epsilons:
        e_opt = bl.epsilon_greedy_policy_iteration(env1.mdp.P, env1.mdp.R, gamma, eps)
        greedy_part = bl.greedy_policy(e_opt.q)
        g_gap = float(np.max(np.abs(bl.evaluate_policy(env1.mdp.P, env1.mdp.R, greedy_part, gamma) - vi1.v)))
        eps_results[eps] = (e_opt, g_gap)
        eps_rows.append([eps, float(e_opt.v[env1.target_state]), float(e_opt.v.mean()), g_gap])
    res.table(
        "epsilon_tradeoff",
        ["epsilon", "v_eps(target)", "mean v_eps", "max |v(greedy part) - v*|"],
        eps_rows,
        caption_en="Best epsilon-greedy policies (model-based): exploration costs value, and large epsilon changes the policy.",
        caption_zh="最优 ε-greedy 策略（基于模型）：探索要付出状态值的代价，ε 大时连策略本身都会改变。",
    )
    small = [e for e in cfg.epsilons if 0 < e <= 0.1]
    large = [e for e in cfg.epsilons if e >= 0.5]
    if small:
        res.claim(
            "small_epsilon_consistent",
            f"For epsilon = {small[-1]:g} the greedy part of the best epsilon-greedy policy is optimal (max |v - v*|)",
            eps_results[small[-1]][1],
            "<=",
            1e-9,
            text_zh=f"ε = {small[-1]:g} 时最优 ε-greedy 策略的贪心部分就是最优策略（max |v - v*|）",
        )
    if large:
        res.claim(
            "large_epsilon_inconsistent",
            f"For epsilon = {large[0]:g} it is not: its greedy part loses this much value somewhere",
            eps_results[large[0]][1],
            ">=",
            0.1,
            text_zh=f"ε = {large[0]:g} 时则不然：其贪心部分在某个状态上损失这么多状态值",
        )

    eps = cfg.learn_epsilon
    e_ref = bl.epsilon_greedy_policy_iteration(env1.mdp.P, env1.mdp.R, gamma, eps)
    eg_curves, eg_final_mean = [], []
    for seed in ctx.progress(range(cfg.n_seeds), total=cfg.n_seeds, description="MC epsilon-greedy"):
        r = tb.mc_epsilon_greedy(
            env1.mdp,
            gamma,
            ctx.numpy_generator("eg", seed),
            epsilon=eps,
            n_episodes=cfg.eg_episodes,
            episode_length=cfg.mc_episode_length,
            min_horizon=cfg.mc_min_horizon,
            first_visit=True,
            record_every=cfg.record_every,
        )
        eg_curves.append(_policy_gaps(env1.mdp, r.history, e_ref.v, gamma, eps))
        eg_steps = r.history_steps
        v_learned = bl.evaluate_policy(env1.mdp.P, env1.mdp.R, r.policy, gamma)
        eg_final_mean.append(float(np.mean(e_ref.v - v_learned)))
    res.claim(
        "mc_epsilon_greedy_near_best",
        f"MC epsilon-greedy (epsilon = {eps:g}) approaches the best epsilon-greedy policy: worst seed's mean value gap",
        max(eg_final_mean),
        "<=",
        0.1,
        text_zh=f"MC ε-greedy（ε = {eps:g}）接近最优 ε-greedy 策略：最差种子的平均状态值差距",
    )

    _figures(cfg, ctx, env1, env10, vi1, vi10, v_uniform, pi1, tpis, basic_values, es_curves, es_steps, eps_results)
    _learning_figure(cfg, ctx, eg_curves, eg_steps)
    return res


def _figures(cfg, ctx, env1, env10, vi1, vi10, v_uniform, pi1, tpis, basic_values, es_curves, es_steps, eps_results):
    fig, axes = new_figure(1, 3, figsize=(11, 4))
    draw_grid(axes[0], env1, vi1.v, vi1.policy, title="optimal, r_forbidden = -1")
    draw_grid(axes[1], env10, vi10.v, vi10.policy, title="optimal, r_forbidden = -10")
    draw_grid(axes[2], env1, v_uniform, bl.uniform_policy(25, 5), title="uniform random policy")
    ctx.save_figure(
        fig,
        "book-values",
        caption_en="State values and policies from the Bellman equations, matching the book's figures.",
        caption_zh="由贝尔曼方程得到的状态值与策略，与书中的图一致。",
    )

    fig, ax = new_figure()
    v_star = vi1.v
    for label, hist in [("value iteration", vi1.history)] + [
        (f"truncated PI, j = {j}", t.history) for j, t in tpis.items()
    ]:
        ax.semilogy(np.max(np.abs(hist - v_star), axis=1) + 1e-16, label=label)
    ax.semilogy(np.max(np.abs(pi1.history - v_star), axis=1) + 1e-16, "o-", label="policy iteration")
    ax.set_xlim(0, 80)
    ax.set_ylim(1e-10, 20)
    ax.set_xlabel("outer iteration $k$")
    ax.set_ylabel(r"$\|v_k - v^*\|_\infty$")
    ax.set_title("Convergence of the model-based solvers")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "solvers",
        caption_en="Value iteration, truncated policy iteration and policy iteration converge to the same v*.",
        caption_zh="值迭代、截断策略迭代与策略迭代收敛到同一个 v*。",
    )

    lengths = list(cfg.episode_lengths)
    cols = min(4, len(lengths))
    rows = (len(lengths) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, figsize=(2.6 * cols, 2.7 * rows), squeeze=False)
    for ax, L in zip(axes.flat, lengths, strict=False):
        draw_grid(ax, env10, basic_values[L], title=f"episode length {L}")
    for ax in list(axes.flat)[len(lengths) :]:
        ax.set_visible(False)
    ctx.save_figure(
        fig,
        "episode-length",
        caption_en="MC basic values for several episode lengths (r_forbidden = -10): far states need long episodes.",
        caption_zh="不同回合长度下 MC Basic 得到的状态值（r_forbidden = -10）：远离目标的状态需要足够长的回合。",
    )

    fig, ax = new_figure()
    for i, (label, curves) in enumerate(es_curves.items()):
        steps = es_steps[label]
        for c in curves:
            ax.plot(steps, c, color=f"C{i}", alpha=0.35, lw=0.9)
        ax.plot(steps, np.median(np.array(curves), axis=0), color=f"C{i}", lw=2, label=f"{label} (median)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(r"$\max_s |v_\pi(s) - v^*(s)|$")
    ax.set_title(f"MC exploring starts, {cfg.n_seeds} seeds")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "exploring-starts",
        caption_en="MC exploring starts: the book's running mean of returns against a constant step size.",
        caption_zh="MC Exploring Starts：书中的回报平均值与常数步长的对比。",
    )

    n = len(eps_results)
    fig, axes = new_figure(1, n, figsize=(2.9 * n, 3.2), squeeze=False)
    for ax, (eps, (e_opt, _)) in zip(axes.flat, eps_results.items(), strict=True):
        draw_grid(ax, env1, e_opt.v, e_opt.policy, title=f"best ε-greedy, ε = {eps:g}")
    ctx.save_figure(
        fig,
        "epsilon-policies",
        caption_en="The best epsilon-greedy policies and their values: larger epsilon, lower values, other detours.",
        caption_zh="最优 ε-greedy 策略及其状态值：ε 越大，状态值越低，绕行路线也会改变。",
    )


def _learning_figure(cfg, ctx, curves, steps):
    fig, ax = new_figure()
    for c in curves:
        ax.plot(steps, c, color="C2", alpha=0.35, lw=0.9)
    ax.plot(steps, np.median(np.array(curves), axis=0), color="C2", lw=2, label="median over seeds")
    ax.set_yscale("log")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(r"$\max_s |v_\pi(s) - v^*_\varepsilon(s)|$")
    ax.set_title(f"MC ε-greedy, ε = {cfg.learn_epsilon:g}: distance to the best ε-greedy policy")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "epsilon-greedy-learning",
        caption_en="MC epsilon-greedy learning curves against the model-based best epsilon-greedy policy.",
        caption_zh="MC ε-greedy 的学习曲线，参照基于模型求得的最优 ε-greedy 策略。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    env = GridWorld()
    mdp = env.mdp
    pi = bl.greedy_policy(ctx.numpy_generator("bench-pi").normal(size=(25, 5)))
    s0 = np.repeat(np.arange(25), 5)
    a0 = np.tile(np.arange(5), 25)
    length = 100
    rng = ctx.numpy_generator("bench")

    def gym_rollouts() -> np.ndarray:
        out = np.empty(s0.size)
        actions = pi.argmax(axis=1)
        for i, (s, a) in enumerate(zip(s0, a0, strict=True)):
            env.reset(options={"state": int(s)})
            g, disc = 0.0, 1.0
            for _ in range(length):
                s, r, term, trunc, _ = env.step(int(a))
                g += disc * r
                disc *= cfg.gamma
                a = actions[s]
            out[i] = g
        return out

    t_ours = best_time(lambda: tb.rollout_returns(mdp, pi, s0, a0, length, cfg.gamma, rng), cfg.bench_repeats)
    t_ref = best_time(gym_rollouts, cfg.bench_repeats)
    t_vi = best_time(lambda: bl.value_iteration(mdp.P, mdp.R, cfg.gamma), cfg.bench_repeats)
    t_pi = best_time(lambda: bl.policy_iteration(mdp.P, mdp.R, cfg.gamma), cfg.bench_repeats)
    return [
        BenchRow(
            name=f"one MC basic iteration: 125 episodes of {length} steps",
            ours=t_ours,
            reference=t_ref,
            reference_name="the same episodes through the gymnasium API (GridWorld.reset/step)",
            note="ours: all episodes advance together as numpy arrays",
        ),
        BenchRow(
            name="value iteration to 1e-12 vs policy iteration (closed-form evaluation), 5x5 grid",
            ours=t_vi,
            reference=t_pi,
            reference_name="shiyan.rl.bellman.policy_iteration",
        ),
    ]
