"""R5 -- actor-critic methods: the policy gradient checked against the model, the baseline's variance
reduction, QAC and off-policy actor-critic on the book's grid world, and A2C on CartPole against
Stable-Baselines3 (Chapter 10 of Shiyu Zhao's book)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.rl import actor_critic as ac
from shiyan.rl import bellman as bl
from shiyan.rl.gridworld import GridWorld
from shiyan.rl.plotting import draw_grid
from shiyan.rl.reference import evaluate_on, learning_curve, model_policy, monitor_episodes

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
    qac_episodes: int = 3000
    """QAC episodes (30 steps each, uniform start)."""
    offpolicy_steps: int = 100_000
    """Length of the uniform-behaviour episode of off-policy actor-critic."""
    min_gap_closed: float = 0.9
    """Claim: fraction of the gap J(pi*) - J(uniform) that QAC and off-policy AC close."""
    a2c_steps: int = 25_000
    """A2C environment steps on CartPole-v1 (the full profile uses the published 200,000)."""
    a2c_seeds: int = 2
    """Seeds of our A2C and of SB3's A2C."""
    eval_episodes: int = 10
    """Greedy evaluation episodes per trained agent."""
    min_a2c_return: float = 100.0
    """Claim threshold: the worst seed's greedy evaluation return of our A2C."""
    max_sb3_shortfall: float = 0.5
    """Claim: our mean return is at least (1 - this) times SB3's at the same budget."""
    compare_sb3: bool = True
    """Run Stable-Baselines3's A2C at the same budget."""
    bench_steps: int = 10_000
    """Environment steps of each benchmark run."""
    threads: int = 1
    """Torch threads for training and timing (the same for SB3)."""

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must lie in (0, 1); got {self.gamma}")
        if self.pg_episodes < 100 or self.pg_horizon < 5:
            raise ConfigError("pg_episodes must be >= 100 and pg_horizon >= 5")
        if self.qac_episodes < 10 or self.offpolicy_steps < 1000:
            raise ConfigError("qac_episodes must be >= 10 and offpolicy_steps >= 1000")
        if not 0 < self.min_gap_closed <= 1:
            raise ConfigError(f"min_gap_closed must lie in (0, 1]; got {self.min_gap_closed}")
        if self.a2c_steps < 200 or self.a2c_seeds < 1 or self.eval_episodes < 1:
            raise ConfigError("a2c_steps >= 200, a2c_seeds >= 1 and eval_episodes >= 1 are required")
        if not 0 <= self.max_sb3_shortfall <= 1:
            raise ConfigError(f"max_sb3_shortfall must lie in [0, 1]; got {self.max_sb3_shortfall}")
        if self.bench_steps < 200 or self.threads < 1:
            raise ConfigError("bench_steps must be >= 200 and threads >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            pg_episodes=5000,
            pg_horizon=40,
            qac_episodes=600,
            offpolicy_steps=20_000,
            min_gap_closed=0.6,
            a2c_steps=4000,
            a2c_seeds=1,
            eval_episodes=5,
            min_a2c_return=1.5 * RANDOM_CARTPOLE_RETURN,
            compare_sb3=False,
            bench_steps=1000,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(a2c_steps=200_000, a2c_seeds=5, min_a2c_return=400.0, max_sb3_shortfall=0.1)


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
    q_res = ac.qac(
        mdp,
        cfg.gamma,
        ctx.numpy_generator("qac"),
        alpha_theta=0.1,
        alpha_w=0.1,
        n_episodes=cfg.qac_episodes,
        episode_length=30,
        record_every=max(1000, cfg.qac_episodes * 30 // 20),
    )
    o_res = ac.off_policy_ac(
        mdp,
        uniform,
        cfg.gamma,
        ctx.numpy_generator("off-policy-ac"),
        alpha_theta=0.1,
        alpha_w=0.1,
        n_steps=cfg.offpolicy_steps,
        record_every=max(1000, cfg.offpolicy_steps // 20),
    )
    curves = {}
    for name, r in (("QAC", q_res), ("off-policy AC (uniform behaviour)", o_res)):
        j = np.array([ac.objective(mdp, th, cfg.gamma) for th in r.history])
        curves[name] = (r.history_steps, (j - j_uniform) / (j_star - j_uniform))
    for key, name, zh in (("qac", "QAC", "QAC"), ("off_policy_ac", "off-policy AC (uniform behaviour)", "离策略 AC")):
        closed = float(curves[name][1][-1])
        res.claim(
            f"{key}_approaches_optimum",
            f"{name} on the book's grid: fraction of the gap J(pi*) - J(uniform) closed (J = mean state value)",
            closed,
            ">=",
            cfg.min_gap_closed,
            text_zh=f"{zh} 在书中网格上：缩小的差距比例 (J(π) − J(均匀)) / (J(π*) − J(均匀))（J 为平均状态值）",
        )
    fig, axes = new_figure(1, 3, figsize=(12, 4))
    for i, (name, (steps, frac)) in enumerate(curves.items()):
        axes[0].plot(steps, frac, color=f"C{i}", label=name)
    axes[0].axhline(1.0, color="k", ls=":", lw=1)
    axes[0].set_xlabel("steps")
    axes[0].set_ylabel("fraction of the gap to J(π*) closed")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Actor-critic on the grid world")
    pi_q = ac.softmax_policy(q_res.theta)
    pi_o = ac.softmax_policy(o_res.theta)
    draw_grid(axes[1], env, bl.evaluate_policy(mdp.P, mdp.R, pi_q, cfg.gamma), pi_q, title="QAC policy and its values")
    draw_grid(axes[2], env, bl.evaluate_policy(mdp.P, mdp.R, pi_o, cfg.gamma), pi_o, title="off-policy AC policy")
    ctx.save_figure(
        fig,
        "grid-actor-critic",
        caption_en="QAC and off-policy actor-critic on the book's grid: progress towards the optimum and final policies.",
        caption_zh="书中网格上的 QAC 与离策略 actor-critic：向最优策略的进展与最终策略。",
    )


def _sb3_a2c(seed: int):
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return A2C("MlpPolicy", sb3_make_vec_env("CartPole-v1", n_envs=8, seed=seed), seed=seed, device="cpu")


def _a2c_part(cfg: Config, ctx: RunContext, res: Result) -> None:
    acfg = ac.A2CConfig(total_steps=cfg.a2c_steps)
    grid = np.linspace(0, cfg.a2c_steps, 41)
    ours_eval, curves, t_ours = [], [], 0.0
    for seed in ctx.progress(range(cfg.a2c_seeds), total=cfg.a2c_seeds, description="A2C"):
        t0 = time.perf_counter()
        r = ac.train_a2c("CartPole-v1", acfg, seed, generator=ctx.torch_generator("a2c", seed))
        t_ours += time.perf_counter() - t0
        ours_eval.append(float(ac.evaluate_actor("CartPole-v1", r.model, cfg.eval_episodes, 10_000 + seed).mean()))
        curves.append(learning_curve(r.episode_end_steps, r.episode_returns, grid, window=20))
    res.metric("a2c_eval_return_mean", float(np.mean(ours_eval)), description="greedy evaluation, mean over seeds")
    res.claim(
        "a2c_learns_cartpole",
        f"A2C on CartPole-v1 after {cfg.a2c_steps:,} steps: worst seed's greedy return (random policy: about 22)",
        min(ours_eval),
        ">=",
        cfg.min_a2c_return,
        text_zh=f"A2C 在 CartPole-v1 上训练 {cfg.a2c_steps:,} 步：最差种子的贪心策略回报（随机策略约 22）",
    )
    rows = [
        [
            "ours (shiyan.rl.actor_critic.train_a2c)",
            float(np.mean(ours_eval)),
            float(min(ours_eval)),
            t_ours / cfg.a2c_seeds,
        ]
    ]
    sb3_curves = []
    if cfg.compare_sb3:
        sb3_eval, t_ref = [], 0.0
        for seed in range(cfg.a2c_seeds):
            t0 = time.perf_counter()
            model = _sb3_a2c(seed)
            model.learn(cfg.a2c_steps)
            t_ref += time.perf_counter() - t0
            sb3_eval.append(
                float(evaluate_on("CartPole-v1", cfg.eval_episodes, 10_000 + seed, model_policy(model)).mean())
            )
            sb3_curves.append(learning_curve(*monitor_episodes(model.get_env(), acfg.n_envs), grid, window=20))
        rows.append(["Stable-Baselines3 A2C", float(np.mean(sb3_eval)), float(min(sb3_eval)), t_ref / cfg.a2c_seeds])
        res.claim(
            "a2c_vs_sb3",
            "Our A2C's mean greedy return relative to SB3's A2C at the same budget and hyperparameters",
            float(np.mean(ours_eval)) / max(float(np.mean(sb3_eval)), 1e-9),
            ">=",
            1.0 - cfg.max_sb3_shortfall,
            text_zh="相同预算和超参数下，我们的 A2C 平均贪心回报与 SB3 A2C 之比",
        )
    res.table(
        "a2c_returns",
        ["agent", "mean greedy return", "worst seed", "training seconds per seed"],
        rows,
        caption_en=f"A2C on CartPole-v1 (8 copies, 5-step rollouts), {cfg.a2c_steps:,} steps, {cfg.a2c_seeds} seed(s).",
        caption_zh=f"CartPole-v1 上的 A2C（8 个环境副本，5 步展开）：{cfg.a2c_steps:,} 步，{cfg.a2c_seeds} 个种子。",
    )
    fig, ax = new_figure()
    for c in curves:
        ax.plot(grid, c, color="C0", alpha=0.8)
    ax.plot([], [], color="C0", label="ours (training episodes, mean of last 20)")
    for c in sb3_curves:
        ax.plot(grid, c, color="C1", alpha=0.8)
    if sb3_curves:
        ax.plot([], [], color="C1", label="SB3 A2C (training episodes, mean of last 20)")
    ax.axhline(RANDOM_CARTPOLE_RETURN, color="gray", ls=":", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title("A2C on CartPole-v1")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "a2c-curves",
        caption_en="Learning curves of A2C on CartPole-v1 (training episodes, sampled actions).",
        caption_zh="CartPole-v1 上 A2C 的学习曲线（训练回合，动作为采样所得）。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    acfg = ac.A2CConfig(total_steps=cfg.bench_steps)
    with torch_threads(cfg.threads):
        # warm-up: lazy imports and first-call costs of both libraries stay out of the timings
        ac.train_a2c("CartPole-v1", ac.A2CConfig(total_steps=200), 0, generator=torch.Generator().manual_seed(0))
        _sb3_a2c(0).learn(200)
        t0 = time.perf_counter()
        ac.train_a2c("CartPole-v1", acfg, 0, generator=torch.Generator().manual_seed(0))
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        _sb3_a2c(0).learn(cfg.bench_steps)
        t_ref = time.perf_counter() - t0
    return [
        BenchRow(
            name=f"A2C on CartPole-v1, {cfg.bench_steps:,} steps (8 copies, 5-step rollouts)",
            ours=t_ours,
            reference=t_ref,
            reference_name=f"stable_baselines3.A2C, default hyperparameters, {cfg.threads} torch thread(s)",
            note=f"ours {cfg.bench_steps / t_ours:,.0f} steps/s, SB3 {cfg.bench_steps / t_ref:,.0f} steps/s",
        )
    ]
