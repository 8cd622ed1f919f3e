"""R3 -- temporal-difference learning on the book's grid world: TD(0), Sarsa, expected Sarsa,
n-step Sarsa and Q-learning on- and off-policy (Chapter 7 of Shiyu Zhao's book)."""

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
    slug="temporal-difference",
    category="RL",
    date=dt.date(2024, 5, 20),
    title_en="Temporal-difference learning: TD(0), Sarsa, n-step Sarsa and Q-learning",
    title_zh="时序差分学习：TD(0)、Sarsa、n 步 Sarsa 与 Q-learning",
    summary_en=(
        "Learning values step by step from bootstrapped targets, each method checked against the exact "
        "Bellman solution of the book's grid world: TD(0) for a fixed policy, the Sarsa family for the best "
        "ε-greedy policy, and Q-learning, which finds the optimal policy from any exploratory behaviour."
    ),
    summary_zh=(
        "用自举目标一步一步地学习价值，每个方法都以书中网格世界的贝尔曼方程精确解为参照：TD(0) 评估给定策略，"
        "Sarsa 家族收敛到最优 ε-greedy 策略，Q-learning 则能从任何足够探索的行为策略中学到最优策略。"
    ),
    implements=("shiyan.rl.tabular", "shiyan.rl.bellman", "shiyan.rl.gridworld"),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    gamma: float = 0.9
    """Discount rate."""
    n_seeds: int = 4
    """Independent seeds behind every learning curve."""
    td_steps: int = 100_000
    """Steps of the single TD(0) trajectory under the uniform random policy."""
    td_alphas: tuple[float, ...] = (0.1, 0.02)
    """Constant TD(0) step sizes compared with the decaying 1/N^0.7 schedule."""
    sarsa_example_episodes: int = 500
    """Episodes of the book-style episodic Sarsa example (start top-left, stop at the target)."""
    control_epsilon: float = 0.5
    """Epsilon of the on-policy learners on the continuing grid (exploration to visit every pair)."""
    control_episodes: int = 3000
    """Episodes (30 steps each, uniformly drawn start) of each on-policy learner."""
    n_step: int = 3
    """The n of n-step Sarsa."""
    offpolicy_steps: int = 100_000
    """Length of the single behaviour episode of off-policy Q-learning (the book uses 1e5)."""
    narrow_epsilon: float = 0.1
    """Epsilon of the poorly exploring behaviour policy (epsilon-greedy around a fixed random policy)."""
    record_every: int = 2000
    """Environment steps between snapshots on the learning curves."""
    bench_steps: int = 20_000
    """Q-learning steps of the benchmark."""
    bench_repeats: int = 3
    """Timing repeats per benchmark row (the best time is kept)."""

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must lie in (0, 1); got {self.gamma}")
        if self.n_seeds < 1:
            raise ConfigError(f"n_seeds must be >= 1; got {self.n_seeds}")
        if self.td_steps < 1000 or self.offpolicy_steps < 1000:
            raise ConfigError("td_steps and offpolicy_steps must be >= 1000")
        if not self.td_alphas or any(not 0 < a <= 1 for a in self.td_alphas):
            raise ConfigError(f"td_alphas must lie in (0, 1]; got {self.td_alphas}")
        if self.sarsa_example_episodes < 50 or self.control_episodes < 100:
            raise ConfigError("sarsa_example_episodes must be >= 50 and control_episodes >= 100")
        if not 0 < self.control_epsilon <= 1 or not 0 < self.narrow_epsilon < 1:
            raise ConfigError("control_epsilon must lie in (0, 1] and narrow_epsilon in (0, 1)")
        if self.n_step < 1:
            raise ConfigError(f"n_step must be >= 1; got {self.n_step}")
        if self.record_every < 1 or self.bench_steps < 100 or self.bench_repeats < 1:
            raise ConfigError("record_every >= 1, bench_steps >= 100 and bench_repeats >= 1 are required")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=1, td_steps=60_000, sarsa_example_episodes=300, bench_steps=5000, bench_repeats=1)


def _gaps(mdp, history, ref_v, gamma, epsilon) -> np.ndarray:
    """max_s |v_ref(s) - v_pi(s)| for the (epsilon-)greedy policy of every q snapshot."""
    out = []
    for q in history:
        pi = bl.greedy_policy(q) if epsilon is None else bl.epsilon_greedy_policy(q, epsilon)
        v = bl.evaluate_policy(mdp.P, mdp.R, pi, gamma)
        out.append(float(np.max(np.abs(ref_v - v)[~mdp.terminal])))
    return np.array(out)


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    gamma = cfg.gamma
    env = GridWorld()
    mdp = env.mdp
    opt = bl.value_iteration(mdp.P, mdp.R, gamma)

    # -- 1. TD(0) for the uniform random policy --------------------------------------------------------
    uniform = bl.uniform_policy(25, 5)
    v_uniform = bl.evaluate_policy(mdp.P, mdp.R, uniform, gamma)
    td_variants = {f"constant α = {a:g}": {"alpha": a} for a in cfg.td_alphas}
    td_variants["α = 1/N(s)^0.7"] = {"alpha": 1.0, "alpha_power": 0.7}
    td_curves: dict[str, list[np.ndarray]] = {k: [] for k in td_variants}
    td_final: dict[str, list[float]] = {k: [] for k in td_variants}
    for seed in ctx.progress(range(cfg.n_seeds), total=cfg.n_seeds, description="TD(0)"):
        for label, kw in td_variants.items():
            r = tb.td0(
                mdp,
                uniform,
                gamma,
                ctx.numpy_generator("td0", seed),
                episode_length=cfg.td_steps,
                record_every=cfg.record_every,
                **kw,
            )
            err = np.max(np.abs(r.history - v_uniform), axis=1)
            td_curves[label].append(err)
            td_final[label].append(float(err[-1]))
            td_steps = r.history_steps
    decay_label = list(td_variants)[-1]
    res.claim(
        "td0_random_policy",
        "TD(0) with alpha = 1/N(s)^0.7 estimates the uniform policy's values: worst seed's max |v - v_pi|",
        max(td_final[decay_label]),
        "<=",
        0.3,
        text_zh="步长 α = 1/N(s)^0.7 的 TD(0) 估计均匀随机策略的状态值：最差种子的 max |v - v_π|",
    )
    res.table(
        "td0_errors",
        ["step size", "final max |v - v_pi| (mean over seeds)"],
        [[k, float(np.mean(v))] for k, v in td_final.items()],
        caption_en=f"TD(0) after {cfg.td_steps:,} steps of the uniform random policy on the book's grid.",
        caption_zh=f"均匀随机策略下走 {cfg.td_steps:,} 步后 TD(0) 的误差（书中网格）。",
    )

    # -- 2. the book-style Sarsa example: episodic, from the top-left corner to the target ---------------
    env_e = GridWorld(episodic=True, start=(0, 0), r_target=0.0, r_forbidden=-10.0, r_boundary=-10.0, r_other=-1.0)
    mdp_e = env_e.mdp
    opt_e = bl.value_iteration(mdp_e.P, mdp_e.R, gamma)
    path_len, s = 0, 0
    while not mdp_e.terminal[s] and path_len < 100:
        s, _, _ = mdp_e.step(s, int(opt_e.policy[s].argmax()))
        path_len += 1
    ex_lengths, ex_rewards, ratios = [], [], []
    for seed in range(cfg.n_seeds):
        r = tb.sarsa(
            mdp_e,
            gamma,
            ctx.numpy_generator("sarsa-example", seed),
            epsilon=0.1,
            alpha=0.1,
            n_episodes=cfg.sarsa_example_episodes,
            episode_length=1000,
            start=0,
        )
        ex_lengths.append(r.episode_lengths)
        ex_rewards.append(r.episode_rewards)
        tail = max(10, cfg.sarsa_example_episodes // 10)
        ratios.append(float(np.median(r.episode_lengths[-tail:]) / path_len))
        ex_q = r.values
    res.metric("shortest_path_length", path_len, description="steps of the optimal path from the top-left cell")
    res.claim(
        "sarsa_example_paths",
        "Episodic Sarsa (epsilon = 0.1) learns a near-shortest path: late median episode length / optimal length",
        max(ratios),
        "<=",
        1.5,
        text_zh="回合制 Sarsa（ε = 0.1）学到接近最短的路径：后期回合长度中位数与最优路径长度之比",
    )

    # -- 3. on-policy control on the continuing grid: the Sarsa family and Q-learning ----------------------
    eps = cfg.control_epsilon
    e_ref = bl.epsilon_greedy_policy_iteration(mdp.P, mdp.R, gamma, eps)
    learners = {
        "Sarsa": (lambda rng, **kw: tb.sarsa(mdp, gamma, rng, **kw), eps),
        "expected Sarsa": (lambda rng, **kw: tb.expected_sarsa(mdp, gamma, rng, **kw), eps),
        f"{cfg.n_step}-step Sarsa": (lambda rng, **kw: tb.n_step_sarsa(mdp, gamma, cfg.n_step, rng, **kw), eps),
        "Q-learning (on-policy)": (lambda rng, **kw: tb.q_learning(mdp, gamma, rng, **kw), None),
    }
    ctrl_curves: dict[str, list[np.ndarray]] = {k: [] for k in learners}
    for seed in ctx.progress(range(cfg.n_seeds), total=cfg.n_seeds, description="TD control"):
        for name, (fn, target_eps) in learners.items():
            step_kw = {"alpha": 0.1} if target_eps is None else {"alpha": 0.5, "alpha_power": 0.7}
            r = fn(
                ctx.numpy_generator("control", name, seed),
                epsilon=eps,
                n_episodes=cfg.control_episodes,
                episode_length=30,
                record_every=cfg.record_every,
                **step_kw,
            )
            ref_v = opt.v if target_eps is None else e_ref.v
            ctrl_curves[name].append(_gaps(mdp, r.history, ref_v, gamma, target_eps))
            ctrl_steps = r.history_steps
    for name, (_, target_eps) in learners.items():
        worst = float(max(c[-1] for c in ctrl_curves[name]))
        ref_en = "the optimal policy" if target_eps is None else f"the best {eps:g}-greedy policy"
        ref_zh = "最优策略" if target_eps is None else f"最优 {eps:g}-greedy 策略"
        tol = 0.1 if target_eps is None else 0.3
        res.claim(
            "converged_" + name.lower().replace(" ", "_").replace("-", "_").replace("(", "").replace(")", ""),
            f"{name} reaches {ref_en}: worst seed's max |v_pi - v_ref| over states",
            worst,
            "<=",
            tol,
            text_zh=f"{name} 收敛到{ref_zh}：最差种子在所有状态上的 max |v_π - v_ref|",
        )

    # -- 4. off-policy Q-learning: one long episode of a behaviour policy -----------------------------------
    base = bl.greedy_policy(ctx.numpy_generator("base-policy").normal(size=(25, 5)))
    behaviours = {
        "uniform": bl.uniform_policy(25, 5),
        f"ε = {cfg.narrow_epsilon:g} around a fixed policy": (1 - cfg.narrow_epsilon) * base + cfg.narrow_epsilon / 5,
    }
    off_results = {}
    for name, beh in behaviours.items():
        r = tb.q_learning(
            mdp,
            gamma,
            ctx.numpy_generator("offpolicy", name),
            behaviour=beh,
            alpha=0.1,
            n_episodes=1,
            episode_length=cfg.offpolicy_steps,
            record_every=cfg.record_every,
        )
        q_err = np.max(np.abs(r.history - opt.q), axis=(1, 2))
        off_results[name] = (r, q_err, _gaps(mdp, r.history, opt.v, gamma, None))
    r_u, qe_u, gap_u = off_results["uniform"]
    narrow = list(behaviours)[1]
    res.claim(
        "q_learning_off_policy_values",
        f"Off-policy Q-learning from one uniform-behaviour episode of {cfg.offpolicy_steps:,} steps: max |q - q*|",
        float(qe_u[-1]),
        "<=",
        0.1,
        text_zh=f"离策略 Q-learning（一条 {cfg.offpolicy_steps:,} 步的均匀行为策略轨迹）：max |q - q*|",
    )
    res.claim(
        "q_learning_off_policy_policy",
        "... and its greedy policy is optimal: max |v_pi - v*|",
        float(gap_u[-1]),
        "<=",
        0.1,
        text_zh="……并且其贪心策略是最优的：max |v_π - v*|",
    )
    res.claim(
        "narrow_behaviour_fails",
        f"A behaviour that explores little ({narrow}) leaves the greedy policy far from optimal: max |v_pi - v*|",
        float(off_results[narrow][2][-1]),
        ">=",
        1.0,
        text_zh=f"探索不足的行为策略（{narrow}）得到的贪心策略远非最优：max |v_π - v*|",
    )

    _figures(cfg, ctx, env, env_e, td_curves, td_steps, ex_lengths, ex_rewards, path_len, ex_q)
    _control_figures(cfg, ctx, env, ctrl_curves, ctrl_steps, off_results, opt)
    return res


def _band(ax, x, curves, color, label):
    arr = np.array(curves)
    for c in arr:
        ax.plot(x, c, color=color, alpha=0.3, lw=0.8)
    ax.plot(x, np.median(arr, axis=0), color=color, lw=2, label=label)


def _figures(cfg, ctx, env, env_e, td_curves, td_steps, ex_lengths, ex_rewards, path_len, ex_q):
    fig, ax = new_figure()
    for i, (label, curves) in enumerate(td_curves.items()):
        _band(ax, td_steps, curves, f"C{i}", label)
    ax.set_yscale("log")
    ax.set_xlabel("steps")
    ax.set_ylabel(r"$\max_s |v(s) - v_\pi(s)|$")
    ax.set_title(f"TD(0), uniform random policy, {cfg.n_seeds} seeds")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "td0",
        caption_en="TD(0) errors: a large constant step is fast but noisy, a small one slow; a decaying step gets both.",
        caption_zh="TD(0) 的误差：大的常数步长快但噪声大，小的慢；递减步长兼得两者。",
    )

    fig, axes = new_figure(1, 3, figsize=(12, 3.8))
    episodes = np.arange(1, len(ex_lengths[0]) + 1)
    for lengths, rewards in zip(ex_lengths, ex_rewards, strict=True):
        axes[0].plot(episodes, rewards, lw=0.7, alpha=0.6)
        axes[1].plot(episodes, lengths, lw=0.7, alpha=0.6)
    axes[1].axhline(path_len, color="k", ls="--", lw=1, label=f"shortest path ({path_len} steps)")
    axes[0].set_xlabel("episode")
    axes[0].set_ylabel("total reward")
    axes[0].set_title("Sarsa: reward per episode")
    axes[1].set_xlabel("episode")
    axes[1].set_ylabel("episode length")
    axes[1].set_yscale("log")
    axes[1].set_title("Sarsa: episode length")
    axes[1].legend(fontsize=8)
    draw_grid(axes[2], env_e, None, bl.epsilon_greedy_policy(ex_q, 0.1), title="final ε-greedy policy (last seed)")
    ctx.save_figure(
        fig,
        "sarsa-example",
        caption_en="Episodic Sarsa from the top-left cell (r_other = -1, r_forbidden = r_boundary = -10, epsilon = 0.1).",
        caption_zh="从左上角出发的回合制 Sarsa（r_other = -1，r_forbidden = r_boundary = -10，ε = 0.1）。",
    )


def _control_figures(cfg, ctx, env, ctrl_curves, ctrl_steps, off_results, opt):
    fig, ax = new_figure()
    for i, (label, curves) in enumerate(ctrl_curves.items()):
        _band(ax, ctrl_steps, np.maximum(np.array(curves), 1e-3), f"C{i}", label)
    ax.set_yscale("log")
    ax.set_xlabel("steps")
    ax.set_ylabel(r"$\max_s |v_\pi(s) - v_{\mathrm{ref}}(s)|$ (floor $10^{-3}$)")
    ax.set_title(f"On-policy TD control, ε = {cfg.control_epsilon:g}, {cfg.n_seeds} seeds")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "td-control",
        caption_en="Sarsa-family policies against the best epsilon-greedy policy; Q-learning against the optimal one.",
        caption_zh="Sarsa 家族的策略以最优 ε-greedy 策略为参照；Q-learning 以最优策略为参照。",
    )

    fig, axes = new_figure(1, 3, figsize=(12, 3.9))
    for i, (name, (_, q_err, gaps)) in enumerate(off_results.items()):
        steps = off_results[name][0].history_steps
        axes[0].plot(steps, q_err, color=f"C{i}", label=name)
        axes[1].plot(steps, gaps, color=f"C{i}", label=name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("steps")
    axes[0].set_ylabel(r"$\max |q - q^*|$")
    axes[0].set_title("Off-policy Q-learning: action values")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("steps")
    axes[1].set_ylabel(r"$\max_s |v_\pi(s) - v^*(s)|$")
    axes[1].set_title("... and its greedy policy")
    r_u = off_results["uniform"][0]
    draw_grid(axes[2], env, r_u.values.max(axis=1), r_u.policy, title="learned from the uniform behaviour")
    ctx.save_figure(
        fig,
        "q-learning-off-policy",
        caption_en="Q-learning from a single behaviour episode: enough exploration finds q*; too little does not.",
        caption_zh="从单条行为策略轨迹中做 Q-learning：探索充分时学到 q*，探索不足时学不到。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    env = GridWorld()
    mdp = env.mdp
    n = cfg.bench_steps
    behaviour = bl.uniform_policy(25, 5)

    def gym_q_learning() -> np.ndarray:
        # the same off-policy Q-learning, written against the gymnasium API
        rng = np.random.default_rng(0)
        q = np.zeros((25, 5))
        s, _ = env.reset(seed=0)
        actions = rng.integers(0, 5, size=n)
        for t in range(n):
            a = int(actions[t])
            s2, r, term, trunc, _ = env.step(a)
            q[s, a] += 0.1 * (r + cfg.gamma * q[s2].max() - q[s, a])
            s = s2
        return q

    t_ours = best_time(
        lambda: tb.q_learning(
            mdp,
            cfg.gamma,
            np.random.default_rng(0),
            behaviour=behaviour,
            n_episodes=1,
            episode_length=n,
            record_every=n,
        ),
        cfg.bench_repeats,
    )
    t_ref = best_time(gym_q_learning, cfg.bench_repeats)
    return [
        BenchRow(
            name=f"off-policy Q-learning, {n:,} steps on the 5x5 grid",
            ours=t_ours,
            reference=t_ref,
            reference_name="the same update driven through gymnasium's Env.step with a numpy q table",
            note=f"{n / t_ours:,.0f} steps/s",
        )
    ]
