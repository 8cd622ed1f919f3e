"""R5 -- actor-critic methods: the policy gradient checked against the model, the baseline's variance
reduction, QAC and off-policy actor-critic on the book's grid world, and A2C on CartPole against
Stable-Baselines3 (Chapter 10 of Shiyu Zhao's book)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.rl import actor_critic as ac
from shiyan.rl import bellman as bl
from shiyan.rl.envs import GRID_WORLD_ID, make_vec_env
from shiyan.rl.gridworld import GridWorld
from shiyan.rl.plotting import draw_grid, plot_band
from shiyan.rl.reference import (
    bench_rows,
    learning_curve,
    models_mean_returns,
    monitor_episodes,
    seed_stats,
    side_by_side,
)

META = TopicMeta(
    slug="actor-critic",
    category="RL",
    date=dt.date(2024, 6, 24),
    title_en="Actor-critic: QAC, A2C, off-policy actor-critic and the deterministic policy gradient",
    title_zh="Actor-Critic：QAC、A2C、离策略 Actor-Critic 与确定性策略梯度",
    summary_en=(
        "A policy (the actor) improved along a gradient that a value estimate (the critic) supplies. We check the "
        "policy-gradient estimator against the exact gradient from the grid world's model, measure how much a "
        "baseline cuts its variance, train QAC and importance-weighted off-policy actor-critic towards the optimal "
        "policy, and run A2C on CartPole next to Stable-Baselines3."
    ),
    summary_zh=(
        "策略（actor）沿着价值估计（critic）给出的梯度方向改进。我们用网格世界的模型算出精确策略梯度来检验梯度估计，"
        "测量基线（baseline）能把方差降低多少，训练 QAC 和基于重要性采样的离策略 actor-critic 逼近最优策略，"
        "并在 CartPole 上把 A2C 与 Stable-Baselines3 对比。"
    ),
    implements=("shiyan.rl.actor_critic", "shiyan.rl.advantages", "shiyan.rl.collect", "shiyan.rl.envs"),
)

GRID_COPIES = 8
"""Grid-world copies the collector steps together for QAC and off-policy actor-critic."""

RANDOM_CARTPOLE_RETURN = 22.0
"""Mean return of the uniform random policy on CartPole-v1."""


@dataclass(frozen=True)
class Config(TopicConfig):
    gamma: float = 0.9
    """Discount rate of the grid world."""
    pg_episodes: int = 20_000
    """Monte Carlo episodes behind the policy-gradient estimate."""
    pg_horizon: int = 60
    """Horizon of each Monte Carlo episode (bias of order gamma^horizon)."""
    qac_steps: int = 45_000
    """QAC transitions (episodes of 30 steps from uniformly drawn cells, GRID_COPIES grid copies)."""
    offpolicy_steps: int = 50_000
    """Transitions of the uniform behaviour policy that off-policy actor-critic learns from (GRID_COPIES copies)."""
    grid_seeds: int = 3
    """Seeds of QAC and of off-policy actor-critic on the grid."""
    min_gap_closed: float = 0.9
    """Claim: fraction of the gap J(pi*) - J(uniform) that QAC and off-policy AC close, mean over seeds."""
    a2c_steps: int = 20_000
    """A2C environment steps on CartPole-v1 (the full profile uses the published 200,000)."""
    a2c_seeds: int = 3
    """Seeds of our A2C and of SB3's A2C."""
    eval_episodes: int = 10
    """Greedy evaluation episodes per trained agent."""
    min_a2c_return: float = 100.0
    """Claim threshold: our A2C's greedy evaluation return, mean over seeds."""
    max_sb3_shortfall: float = 0.5
    """Claim: our mean return is at least (1 - this) times SB3's at the same budget."""
    compare_sb3: bool = True
    """Run Stable-Baselines3's A2C at the same budget."""
    bench_steps: int = 20_000
    """Environment steps of each benchmark run."""
    bench_seeds: int = 3
    """Seeds of the benchmark, each trained by ours and by SB3 in turn."""
    threads: int = 1
    """Torch threads for training and timing (the same for SB3)."""

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must lie in (0, 1); got {self.gamma}")
        if self.pg_episodes < 100 or self.pg_horizon < 5:
            raise ConfigError("pg_episodes must be >= 100 and pg_horizon >= 5")
        if self.qac_steps < 1000 or self.offpolicy_steps < 1000 or self.grid_seeds < 1:
            raise ConfigError("qac_steps and offpolicy_steps must be >= 1000 and grid_seeds >= 1")
        if not 0 < self.min_gap_closed <= 1:
            raise ConfigError(f"min_gap_closed must lie in (0, 1]; got {self.min_gap_closed}")
        if self.a2c_steps < 200 or self.a2c_seeds < 1 or self.eval_episodes < 1:
            raise ConfigError("a2c_steps >= 200, a2c_seeds >= 1 and eval_episodes >= 1 are required")
        if not 0 <= self.max_sb3_shortfall <= 1:
            raise ConfigError(f"max_sb3_shortfall must lie in [0, 1]; got {self.max_sb3_shortfall}")
        if self.bench_steps < 200 or self.bench_seeds < 1 or self.threads < 1:
            raise ConfigError("bench_steps must be >= 200, bench_seeds >= 1 and threads >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            pg_episodes=5000,
            pg_horizon=40,
            qac_steps=12_000,
            offpolicy_steps=12_000,
            grid_seeds=2,
            min_gap_closed=0.6,
            a2c_steps=4000,
            a2c_seeds=2,
            eval_episodes=5,
            min_a2c_return=1.5 * RANDOM_CARTPOLE_RETURN,
            compare_sb3=False,
            bench_steps=1000,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(
            qac_steps=90_000,
            offpolicy_steps=100_000,
            grid_seeds=5,
            a2c_steps=200_000,
            a2c_seeds=5,
            min_a2c_return=400.0,
            max_sb3_shortfall=0.1,
            bench_steps=200_000,
        )


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    env = GridWorld()
    _gradient_part(cfg, ctx, res, env)
    _grid_control_part(cfg, ctx, res, env)
    with torch_threads(cfg.threads):
        _a2c_part(cfg, ctx, res)
    return res


def _gradient_part(cfg: Config, ctx: RunContext, res: Result, env: GridWorld) -> None:
    mdp = env.mdp
    theta = ctx.numpy_generator("theta").normal(size=(env.n_states, env.n_actions))
    pi = ac.softmax_policy(theta)
    v = bl.evaluate_policy(mdp.P, mdp.R, pi, cfg.gamma)
    exact = ac.exact_policy_gradient(mdp, theta, cfg.gamma)
    kw = {"n_episodes": cfg.pg_episodes, "horizon": cfg.pg_horizon}
    plain = ac.reinforce_gradient(mdp, theta, cfg.gamma, ctx.numpy_generator("pg"), **kw)
    based = ac.reinforce_gradient(mdp, theta, cfg.gamma, ctx.numpy_generator("pg"), baseline=v, **kw)
    rel = {}
    for name, samples in (("no baseline", plain), ("baseline v_pi", based)):
        rel[name] = float(np.linalg.norm(samples.mean(axis=0) - exact) / np.linalg.norm(exact))
    se = based.std(axis=0) / np.sqrt(len(based))
    z = float(np.max(np.abs(based.mean(axis=0) - exact) / np.maximum(se, 1e-12)))
    var_ratio = float(based.var(axis=0).sum() / plain.var(axis=0).sum())
    res.claim(
        "pg_estimator_unbiased",
        "The Monte Carlo policy gradient (with baseline v_pi) matches the exact gradient from the model: "
        "largest deviation in standard errors over all 125 entries",
        z,
        "<=",
        5.0,
        text_zh="带基线 v_π 的蒙特卡洛策略梯度与由模型算出的精确梯度一致：125 个分量中最大偏差（以标准误计）",
    )
    res.claim(
        "baseline_cuts_variance",
        "Subtracting the baseline v_pi(s) lowers the total variance of the gradient estimate (ratio with / without)",
        var_ratio,
        "<=",
        0.7,
        text_zh="减去基线 v_π(s) 降低梯度估计的总方差（有 / 无基线之比）",
    )
    res.table(
        "policy_gradient",
        ["estimator", "relative error of the mean", "total variance per episode"],
        [
            ["no baseline", rel["no baseline"], float(plain.var(axis=0).sum())],
            ["baseline v_pi", rel["baseline v_pi"], float(based.var(axis=0).sum())],
        ],
        caption_en=f"Policy-gradient estimates from {cfg.pg_episodes:,} episodes at a random softmax policy on the grid.",
        caption_zh=f"网格世界上随机 softmax 策略处的策略梯度估计（{cfg.pg_episodes:,} 个回合）。",
    )


def _grid_control_part(cfg: Config, ctx: RunContext, res: Result, env: GridWorld) -> None:
    mdp = env.mdp
    opt = bl.value_iteration(mdp.P, mdp.R, cfg.gamma)
    uniform = bl.uniform_policy(env.n_states, env.n_actions)
    j_star = float(opt.v.mean())
    j_uniform = float(bl.evaluate_policy(mdp.P, mdp.R, uniform, cfg.gamma).mean())
    seeds = list(range(cfg.grid_seeds))
    runs: dict[str, list[ac.TabularACResult]] = {"QAC": [], "off-policy AC (uniform behaviour)": []}
    for seed in ctx.progress(seeds, total=len(seeds), description="QAC, off-policy AC"):
        # the book's grid through the shared collector, cells drawn uniformly at every reset
        envs = make_vec_env(GRID_WORLD_ID, GRID_COPIES, seed, max_episode_steps=30)
        runs["QAC"].append(
            ac.qac(
                envs,
                cfg.gamma,
                ctx.numpy_generator("qac", seed),
                n_steps=cfg.qac_steps,
                record_every=max(1000, cfg.qac_steps // 20),
            )
        )
        envs.close()
        envs = make_vec_env(GRID_WORLD_ID, GRID_COPIES, seed)
        runs["off-policy AC (uniform behaviour)"].append(
            ac.off_policy_ac(
                envs,
                uniform,
                cfg.gamma,
                ctx.numpy_generator("off-policy-ac", seed),
                n_steps=cfg.offpolicy_steps,
                record_every=max(1000, cfg.offpolicy_steps // 20),
            )
        )
        envs.close()

    def gap_closed(theta: np.ndarray) -> float:
        return (ac.objective(mdp, theta, cfg.gamma) - j_uniform) / (j_star - j_uniform)

    curves = {
        name: (rs[0].history_steps, np.array([[gap_closed(th) for th in r.history] for r in rs]))
        for name, rs in runs.items()
    }
    for key, name, zh in (("qac", "QAC", "QAC"), ("off_policy_ac", "off-policy AC (uniform behaviour)", "离策略 AC")):
        final = curves[name][1][:, -1]  # (seeds,)
        res.metric(f"{key}_gap_closed_std", float(final.std()), description="std over seeds")
        res.claim(
            f"{key}_approaches_optimum",
            f"{name} on the book's grid: fraction of the gap J(pi*) - J(uniform) closed (J = mean state value), "
            f"mean over {len(seeds)} seeds",
            float(final.mean()),
            ">=",
            cfg.min_gap_closed,
            text_zh=(
                f"{zh} 在书中网格上：缩小的差距比例 (J(π) − J(均匀)) / (J(π*) − J(均匀))（J 为平均状态值），"
                f"{len(seeds)} 个种子的均值"
            ),
        )
    fig, axes = new_figure(1, 3, figsize=(12, 4))
    for i, (name, (steps, frac)) in enumerate(curves.items()):
        plot_band(axes[0], steps, frac, color=f"C{i}", label=f"{name}, {len(seeds)} seeds")
    axes[0].axhline(1.0, color="k", ls=":", lw=1)
    axes[0].set_xlabel("transitions")
    axes[0].set_ylabel("fraction of the gap to J(π*) closed")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Actor-critic on the grid world")
    pi_q = ac.softmax_policy(runs["QAC"][0].theta)
    pi_o = ac.softmax_policy(runs["off-policy AC (uniform behaviour)"][0].theta)
    v_q, v_o = (bl.evaluate_policy(mdp.P, mdp.R, pi, cfg.gamma) for pi in (pi_q, pi_o))
    draw_grid(axes[1], env, v_q, pi_q, title="QAC policy and its values (seed 0)")
    draw_grid(axes[2], env, v_o, pi_o, title="off-policy AC policy (seed 0)")
    ctx.save_figure(
        fig,
        "grid-actor-critic",
        caption_en=(
            "QAC and off-policy actor-critic on the book's grid: progress towards the optimum (mean over seeds, "
            "band: min to max) and the final policies of seed 0."
        ),
        caption_zh="书中网格上的 QAC 与离策略 actor-critic：向最优策略的进展（种子均值，阴影为最小到最大）与种子 0 的最终策略。",
    )


def _sb3_a2c(seed: int):
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return A2C("MlpPolicy", sb3_make_vec_env("CartPole-v1", n_envs=8, seed=seed), seed=seed, device="cpu")


def _a2c_part(cfg: Config, ctx: RunContext, res: Result) -> None:
    acfg = ac.A2CConfig(total_steps=cfg.a2c_steps)
    grid = np.linspace(0, cfg.a2c_steps, 41)
    seeds = list(range(cfg.a2c_seeds))

    def ours(seed: int) -> ac.A2CResult:
        return ac.train_a2c("CartPole-v1", acfg, seed, generator=ctx.torch_generator("a2c", seed))

    def reference(seed: int):
        return _sb3_a2c(seed).learn(cfg.a2c_steps)

    runs = side_by_side(seeds, ours, reference if cfg.compare_sb3 else None)
    ours_eval = np.array(
        [
            ac.evaluate_actor("CartPole-v1", r.model, cfg.eval_episodes, 10_000 + s).mean()
            for s, r in zip(seeds, runs.ours)
        ]
    )
    curves = {"ours": np.array([learning_curve(r.episode_end_steps, r.episode_returns, grid, 20) for r in runs.ours])}
    res.metric("a2c_eval_return_mean", float(ours_eval.mean()), description="greedy evaluation, mean over seeds")
    res.metric("a2c_eval_return_std", float(ours_eval.std()), description="greedy evaluation, std over seeds")
    res.claim(
        "a2c_learns_cartpole",
        f"A2C on CartPole-v1 after {cfg.a2c_steps:,} steps: greedy return, mean over {len(seeds)} seed(s) "
        "(random policy: about 22)",
        float(ours_eval.mean()),
        ">=",
        cfg.min_a2c_return,
        text_zh=f"A2C 在 CartPole-v1 上训练 {cfg.a2c_steps:,} 步：贪心策略回报，{len(seeds)} 个种子的均值（随机策略约 22）",
    )
    rows = [["ours (shiyan.rl.actor_critic.train_a2c)", *seed_stats(ours_eval), float(runs.wall[0].mean())]]
    if cfg.compare_sb3:
        sb3_eval = models_mean_returns("CartPole-v1", cfg.eval_episodes, [10_000 + s for s in seeds], runs.reference)
        curves["SB3 A2C"] = np.array(
            [learning_curve(*monitor_episodes(m.get_env(), acfg.n_envs), grid, 20) for m in runs.reference]
        )
        rows.append(["Stable-Baselines3 A2C", *seed_stats(sb3_eval), float(runs.wall[1].mean())])
        res.claim(
            "a2c_vs_sb3",
            "Our A2C's greedy return relative to SB3's A2C at the same budget and hyperparameters (means over seeds)",
            float(ours_eval.mean()) / max(float(sb3_eval.mean()), 1e-9),
            ">=",
            1.0 - cfg.max_sb3_shortfall,
            text_zh="相同预算和超参数下，我们的 A2C 与 SB3 A2C 的贪心回报之比（种子均值）",
        )
    res.table(
        "a2c_returns",
        ["agent", "mean greedy return", "std over seeds", "worst seed", "training seconds per seed"],
        rows,
        caption_en=(
            f"A2C on CartPole-v1 (8 copies, 5-step rollouts), {cfg.a2c_steps:,} steps, {len(seeds)} seed(s), "
            f"{cfg.eval_episodes} greedy episodes each (the same episodes for both agents)."
        ),
        caption_zh=(
            f"CartPole-v1 上的 A2C（8 个环境副本，5 步展开）：{cfg.a2c_steps:,} 步，{len(seeds)} 个种子，"
            f"每个评估 {cfg.eval_episodes} 个贪心回合（两方评估的回合相同）。"
        ),
    )
    fig, ax = new_figure()
    for i, (name, c) in enumerate(curves.items()):
        plot_band(ax, grid, c, color=f"C{i}", label=f"{name} (mean of {len(seeds)} seeds, band: min-max)")
    ax.axhline(RANDOM_CARTPOLE_RETURN, color="gray", ls=":", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (mean of the last 20 training episodes)")
    ax.set_title("A2C on CartPole-v1")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "a2c-curves",
        caption_en="Learning curves of A2C on CartPole-v1 over seeds (training episodes, sampled actions).",
        caption_zh="CartPole-v1 上 A2C 在多个种子上的学习曲线（训练回合，动作为采样所得）。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    acfg = ac.A2CConfig(total_steps=cfg.bench_steps)
    seeds = list(range(cfg.bench_seeds))
    with torch_threads(cfg.threads):
        # warm-up: lazy imports and first-call costs of both libraries stay out of the timings
        ac.train_a2c("CartPole-v1", ac.A2CConfig(total_steps=200), 0, generator=torch.Generator().manual_seed(0))
        _sb3_a2c(0).learn(200)

        def ours(seed: int):
            return ac.train_a2c("CartPole-v1", acfg, seed, generator=torch.Generator().manual_seed(seed)).model

        runs = side_by_side(seeds, ours, lambda seed: _sb3_a2c(seed).learn(cfg.bench_steps))
        ours_ret = np.array(
            [
                ac.evaluate_actor("CartPole-v1", m, cfg.eval_episodes, 10_000 + s).mean()
                for s, m in zip(seeds, runs.ours)
            ]
        )
        ref_ret = models_mean_returns("CartPole-v1", cfg.eval_episodes, [10_000 + s for s in seeds], runs.reference)
    label = f"A2C on CartPole-v1, {cfg.bench_steps:,} steps (8 copies, 5-step rollouts)"
    ref_name = f"stable_baselines3.A2C, default hyperparameters, {cfg.threads} torch thread(s)"
    return bench_rows(label, runs, ours_ret, ref_ret, ref_name, cfg.bench_steps)
