"""R4 -- value-function approximation: TD-linear with polynomial and Fourier features on the book's
grid world, and DQN on CartPole against Stable-Baselines3 (Chapter 8 of Shiyu Zhao's book)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.rl import approx as ap
from shiyan.rl import bellman as bl
from shiyan.rl.dqn import DQNConfig, evaluate_q, train_dqn
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
    slug="value-approximation",
    category="RL",
    date=dt.date(2024, 6, 10),
    title_en="Value-function approximation: TD-linear, feature choice and DQN",
    title_zh="值函数近似：TD-linear、特征选择与 DQN",
    summary_en=(
        "Replacing the value table by a function of features: TD-linear converges to the projected Bellman "
        "solution that we compute from the model, its error shrinks as polynomial or Fourier features grow, and "
        "DQN -- a neural network, a replay buffer and a target network -- balances CartPole, compared with "
        "Stable-Baselines3 at the same budget."
    ),
    summary_zh=(
        "用特征的函数代替价值表格：TD-linear 收敛到可由模型直接算出的投影贝尔曼方程解，多项式或傅里叶特征阶数越高误差越小；"
        "DQN（神经网络 + 经验回放 + 目标网络）学会平衡 CartPole，并在相同预算下与 Stable-Baselines3 对比。"
    ),
    implements=("shiyan.rl.approx", "shiyan.rl.dqn", "shiyan.rl.buffer", "shiyan.rl.collect", "shiyan.rl.envs"),
)

RANDOM_CARTPOLE_RETURN = 22.0
"""Mean return of the uniform random policy on CartPole-v1 (about 22 steps)."""


@dataclass(frozen=True)
class Config(TopicConfig):
    gamma: float = 0.9
    """Discount rate of the grid world."""
    td_steps: int = 100_000
    """Length of the uniform-policy trajectory TD-linear learns from (one per seed)."""
    td_seeds: int = 3
    """Seeds (independent trajectories) of TD-linear."""
    td_alpha: float = 0.2
    """TD-linear step size scale: alpha_t = td_alpha / (1 + t)^0.3 (one-hot features: a constant 0.05)."""
    orders: tuple[int, ...] = (1, 2, 3)
    """Polynomial and Fourier feature orders compared."""
    dqn_steps: int = 10_000
    """DQN environment steps on CartPole-v1 (rl-zoo uses 50,000: the full profile)."""
    dqn_seeds: int = 3
    """Seeds of our DQN and of SB3's DQN."""
    dqn_n_envs: int = 2
    """Environment copies DQN collects from."""
    dqn_train_freq: int = 8
    """Environment steps per copy between DQN training rounds."""
    dqn_gradient_steps: int = 4
    """Gradient steps per DQN training round."""
    dqn_target_interval: int = 64
    """Gradient steps between hard copies into the target network."""
    dqn_learning_starts: int = 500
    """Steps of pure exploration before DQN's first update."""
    dqn_exploration_fraction: float = 0.3
    """Fraction of the budget over which epsilon decays from 1 to 0.04."""
    dqn_hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the Q-network."""
    eval_episodes: int = 10
    """Greedy evaluation episodes per trained agent."""
    min_dqn_return: float = 100.0
    """Claim threshold: our DQN's greedy evaluation return, mean over seeds."""
    max_fixed_point_gap: float = 0.3
    """Claim threshold: max over states of |TD-linear - its fixed point| at the end of the trajectory."""
    max_sb3_shortfall: float = 0.5
    """Claim: our mean return is at least (1 - this) times SB3's at the same budget."""
    compare_sb3: bool = True
    """Run Stable-Baselines3's DQN at the same budget (needs stable-baselines3)."""
    bench_steps: int = 10_000
    """Environment steps of each benchmark run."""
    bench_seeds: int = 3
    """Seeds of the benchmark, each trained by ours and by SB3 in turn."""
    threads: int = 1
    """Torch threads for training and timing (the same for SB3)."""

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"gamma must lie in (0, 1); got {self.gamma}")
        if self.td_steps < 1000 or self.td_seeds < 1:
            raise ConfigError(f"td_steps must be >= 1000 and td_seeds >= 1; got {self.td_steps}, {self.td_seeds}")
        if not 0 < self.td_alpha <= 1:
            raise ConfigError(f"td_alpha must lie in (0, 1]; got {self.td_alpha}")
        if not self.orders or min(self.orders) < 1 or len(self.orders) < 2:
            raise ConfigError(f"orders must list at least two orders >= 1; got {self.orders}")
        if self.dqn_steps < 500 or self.dqn_seeds < 1 or self.eval_episodes < 1:
            raise ConfigError("dqn_steps >= 500, dqn_seeds >= 1 and eval_episodes >= 1 are required")
        if min(self.dqn_n_envs, self.dqn_train_freq, self.dqn_gradient_steps, self.dqn_target_interval) < 1:
            raise ConfigError("dqn_n_envs, dqn_train_freq, dqn_gradient_steps and dqn_target_interval must be >= 1")
        if self.dqn_learning_starts < 0 or not 0 < self.dqn_exploration_fraction <= 1:
            raise ConfigError("dqn_learning_starts must be >= 0 and dqn_exploration_fraction in (0, 1]")
        if not 0 <= self.max_sb3_shortfall <= 1:
            raise ConfigError(f"max_sb3_shortfall must lie in [0, 1]; got {self.max_sb3_shortfall}")
        if self.bench_steps < 500 or self.bench_seeds < 1 or self.threads < 1:
            raise ConfigError("bench_steps must be >= 500, bench_seeds >= 1 and threads >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            td_steps=20_000,
            td_seeds=2,
            dqn_steps=2500,
            dqn_seeds=2,
            eval_episodes=5,
            min_dqn_return=2 * RANDOM_CARTPOLE_RETURN,
            max_fixed_point_gap=0.6,
            max_sb3_shortfall=1.0,
            compare_sb3=False,
            bench_steps=600,
        )

    @classmethod
    def full(cls) -> Config:
        # rl-zoo's tuned CartPole-v1 DQN: 50k steps, 128 gradient steps every 256, a 256-256 network
        return cls(
            td_steps=300_000,
            td_seeds=5,
            orders=(1, 2, 3, 4),
            dqn_steps=50_000,
            dqn_seeds=5,
            dqn_n_envs=1,
            dqn_train_freq=256,
            dqn_gradient_steps=128,
            dqn_target_interval=128,
            dqn_learning_starts=1000,
            dqn_exploration_fraction=0.16,
            dqn_hidden=(256, 256),
            min_dqn_return=400.0,
            max_sb3_shortfall=0.1,
            bench_steps=50_000,
        )


def _dqn_config(cfg: Config, steps: int) -> DQNConfig:
    return DQNConfig(
        total_steps=steps,
        n_envs=cfg.dqn_n_envs,
        learning_starts=min(cfg.dqn_learning_starts, steps // 2),
        train_freq=cfg.dqn_train_freq,
        gradient_steps=cfg.dqn_gradient_steps,
        target_update_interval=cfg.dqn_target_interval,
        exploration_fraction=cfg.dqn_exploration_fraction,
        hidden=cfg.dqn_hidden,
    )


def _sb3_dqn(dcfg: DQNConfig, seed: int):
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return DQN(
        "MlpPolicy",
        sb3_make_vec_env("CartPole-v1", n_envs=dcfg.n_envs, seed=seed),
        learning_rate=dcfg.lr,
        batch_size=dcfg.batch_size,
        buffer_size=dcfg.buffer_size,
        learning_starts=dcfg.learning_starts,
        gamma=dcfg.gamma,
        # SB3 counts the copy interval in environment steps: ours is in gradient steps
        target_update_interval=max(
            dcfg.target_update_interval * dcfg.train_freq * dcfg.n_envs // dcfg.gradient_steps, 1
        ),
        train_freq=dcfg.train_freq,
        gradient_steps=dcfg.gradient_steps,
        exploration_fraction=dcfg.exploration_fraction,
        exploration_initial_eps=dcfg.eps_start,
        exploration_final_eps=dcfg.eps_end,
        max_grad_norm=dcfg.max_grad_norm,
        policy_kwargs={"net_arch": list(dcfg.hidden)},
        seed=seed,
        device="cpu",
    )


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    _td_linear_part(cfg, ctx, res)
    with torch_threads(cfg.threads):
        _dqn_part(cfg, ctx, res)
    return res


def _td_linear_part(cfg: Config, ctx: RunContext, res: Result) -> None:
    env = GridWorld()
    mdp = env.mdp
    pi = bl.uniform_policy(env.n_states, env.n_actions)
    v_pi = bl.evaluate_policy(mdp.P, mdp.R, pi, cfg.gamma)
    p_pi, _ = bl.policy_model(mdp.P, mdp.R, pi)
    d_pi = ap.stationary_distribution(p_pi)
    xy = ap.grid_coordinates(env.n_rows, env.n_cols)
    features = {f"polynomial q={q}": ap.polynomial_features(xy, q) for q in cfg.orders}
    features.update({f"Fourier q={q}": ap.fourier_features(xy, q) for q in cfg.orders})
    features["tabular (one-hot)"] = ap.tabular_features(env.n_states)
    seeds = list(range(cfg.td_seeds))
    trajs = [ap.sample_trajectory(mdp, pi, cfg.td_steps, ctx.numpy_generator("td-linear", seed)) for seed in seeds]

    def rmse(v: np.ndarray) -> float:  # d_pi-weighted root-mean-square error against v_pi
        return float(np.sqrt(d_pi @ (v - v_pi) ** 2))

    rows, fixed, learned, to_fixed, learned_err = [], {}, {}, {}, {}
    for name, phi in ctx.progress(features.items(), total=len(features), description="TD-linear"):
        w_star = ap.td_linear_fixed_point(mdp, pi, phi, cfg.gamma)
        # one-hot weights are updated only on visits (1 step in 25): a constant step keeps them moving
        tabular = name.startswith("tabular")
        v_seeds = []
        for traj in trajs:
            r = ap.td_linear(
                phi,
                traj,
                cfg.gamma,
                alpha=0.05 if tabular else cfg.td_alpha,
                alpha_power=0.0 if tabular else 0.3,
                record_every=100,
            )
            v_seeds.append(phi @ r.history[len(r.history) // 2 :].mean(axis=0))  # weights averaged over 2nd half
        fixed[name], learned[name] = phi @ w_star, v_seeds[0]
        gaps = np.array([np.max(np.abs(v - fixed[name])) for v in v_seeds])  # (seeds,)
        errs = np.array([rmse(v) for v in v_seeds])  # (seeds,)
        to_fixed[name], learned_err[name] = float(gaps.mean()), errs
        rows.append([name, phi.shape[1], rmse(fixed[name]), float(errs.mean()), float(errs.std()), to_fixed[name]])
    res.table(
        "td_linear_errors",
        [
            "features",
            "d",
            "RMSE of the fixed point",
            "RMSE of TD-linear (mean over seeds)",
            "std over seeds",
            "max |TD-linear - fixed point| (mean over seeds)",
        ],
        rows,
        caption_en=(
            f"TD-linear on the book's grid, uniform policy, {len(seeds)} seed(s), each one trajectory of "
            f"{cfg.td_steps:,} steps; errors against v_pi weighted by the stationary distribution."
        ),
        caption_zh=(
            f"书中网格上均匀策略的 TD-linear（{len(seeds)} 个种子，每个一条 {cfg.td_steps:,} 步的轨迹）；"
            "误差相对 v_π，按平稳分布加权。"
        ),
    )
    worst = max(to_fixed[n] for n in features if not n.startswith("tabular"))
    res.claim(
        "td_linear_reaches_fixed_point",
        "TD-linear ends at the projected Bellman solution A w = b computed from the model "
        f"(worst feature set, max over states of |phi w - phi w*|, mean over {len(seeds)} seed(s))",
        worst,
        "<=",
        cfg.max_fixed_point_gap,
        text_zh=(
            "TD-linear 收敛到由模型算出的投影贝尔曼方程解 A w = b"
            f"（最差特征集，各状态上 |φw − φw*| 的最大值，{len(seeds)} 个种子的均值）"
        ),
    )
    lo, hi = min(cfg.orders), max(cfg.orders)
    for fam, fam_zh in (("Fourier", "傅里叶"), ("polynomial", "多项式")):
        ratio = rmse(fixed[f"{fam} q={hi}"]) / rmse(fixed[f"{fam} q={lo}"])
        res.claim(
            f"{fam.lower()}_error_falls_with_order",
            f"Higher-order {fam} features fit v_pi better: RMSE(q={hi}) / RMSE(q={lo}) at the TD fixed point",
            ratio,
            "<=",
            0.9,
            text_zh=f"更高阶的{fam_zh}特征更贴近 v_π：TD 不动点的 RMSE(q={hi}) / RMSE(q={lo})",
        )
    fig, ax = new_figure()
    for i, fam in enumerate(("polynomial", "Fourier")):
        ax.plot(
            cfg.orders,
            [rmse(fixed[f"{fam} q={q}"]) for q in cfg.orders],
            "o-",
            color=f"C{i}",
            label=f"{fam}: fixed point",
        )
        errs = np.array([learned_err[f"{fam} q={q}"] for q in cfg.orders])  # (orders, seeds)
        ax.errorbar(
            cfg.orders,
            errs.mean(axis=1),
            yerr=errs.std(axis=1),
            fmt="x--",
            color=f"C{i}",
            capsize=3,
            label=f"{fam}: TD-linear (mean ± std over {len(seeds)} seeds)",
        )
    ax.axhline(float(learned_err["tabular (one-hot)"].mean()), color="k", ls=":", label="tabular TD-linear")
    ax.set_xticks(list(cfg.orders))
    ax.set_xlabel("feature order q")
    ax.set_ylabel(r"$\|\hat v - v_\pi\|_{d_\pi}$")
    ax.set_title("TD-linear: value error vs feature order")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "feature-order",
        caption_en="Value error of TD-linear over seeds (and of its exact fixed point) as the feature order grows.",
        caption_zh="TD-linear（多个种子）及其精确不动点的价值误差随特征阶数的变化。",
    )
    fig, axes = new_figure(1, 3, figsize=(12, 4))
    draw_grid(axes[0], env, v_pi, title="true v_pi (uniform policy)")
    draw_grid(axes[1], env, learned[f"Fourier q={hi}"], title=f"TD-linear, Fourier q={hi} (seed 0)")
    draw_grid(axes[2], env, learned[f"polynomial q={lo}"], title=f"TD-linear, polynomial q={lo} (seed 0)")
    ctx.save_figure(
        fig,
        "value-maps",
        caption_en="State values of the uniform policy: exact, and as estimated with few features.",
        caption_zh="均匀策略的状态值：精确值，以及少量特征下的估计。",
    )


def _dqn_part(cfg: Config, ctx: RunContext, res: Result) -> None:
    dcfg = _dqn_config(cfg, cfg.dqn_steps)
    grid = np.linspace(0, cfg.dqn_steps, 41)
    seeds = list(range(cfg.dqn_seeds))

    def ours(seed: int):
        rng, gen = ctx.numpy_generator("dqn", seed), ctx.torch_generator("dqn", seed)
        return train_dqn("CartPole-v1", dcfg, seed, rng=rng, generator=gen)

    def reference(seed: int):
        model = _sb3_dqn(dcfg, seed)
        return model.learn(cfg.dqn_steps)

    runs = side_by_side(seeds, ours, reference if cfg.compare_sb3 else None)
    ours_eval = np.array(
        [evaluate_q("CartPole-v1", r.q_net, cfg.eval_episodes, 10_000 + s).mean() for s, r in zip(seeds, runs.ours)]
    )
    ours_curves = np.array([learning_curve(r.episode_end_steps, r.episode_returns, grid, 10) for r in runs.ours])
    res.metric("dqn_eval_return_mean", float(ours_eval.mean()), description="greedy evaluation, mean over seeds")
    res.metric("dqn_eval_return_std", float(ours_eval.std()), description="greedy evaluation, std over seeds")
    res.metric("dqn_train_seconds", float(runs.wall[0].mean()), unit="s", description="per seed")
    res.claim(
        "dqn_learns_cartpole",
        f"DQN on CartPole-v1 after {cfg.dqn_steps:,} steps: greedy return, mean over {len(seeds)} seed(s) "
        "(random policy: about 22)",
        float(ours_eval.mean()),
        ">=",
        cfg.min_dqn_return,
        text_zh=f"DQN 在 CartPole-v1 上训练 {cfg.dqn_steps:,} 步：贪心策略回报，{len(seeds)} 个种子的均值（随机策略约 22）",
    )
    rows = [["ours (shiyan.rl.dqn)", *seed_stats(ours_eval), float(runs.wall[0].mean())]]
    curves = {"ours": ours_curves}
    if cfg.compare_sb3:
        sb3_eval = models_mean_returns("CartPole-v1", cfg.eval_episodes, [10_000 + s for s in seeds], runs.reference)
        curves["SB3 DQN"] = np.array(
            [learning_curve(*monitor_episodes(m.get_env(), dcfg.n_envs), grid, 10) for m in runs.reference]
        )
        rows.append(["Stable-Baselines3 DQN", *seed_stats(sb3_eval), float(runs.wall[1].mean())])
        res.claim(
            "dqn_vs_sb3",
            "Our DQN's greedy return relative to SB3's DQN at the same budget and hyperparameters (means over seeds)",
            float(ours_eval.mean()) / max(float(sb3_eval.mean()), 1e-9),
            ">=",
            1.0 - cfg.max_sb3_shortfall,
            text_zh="相同预算和超参数下，我们的 DQN 与 SB3 DQN 的贪心回报之比（种子均值）",
        )
    res.table(
        "dqn_returns",
        ["agent", "mean greedy return", "std over seeds", "worst seed", "training seconds per seed"],
        rows,
        caption_en=(
            f"DQN on CartPole-v1, {cfg.dqn_steps:,} steps, {len(seeds)} seed(s), {cfg.eval_episodes} greedy "
            "episodes each (the same episodes for both agents)."
        ),
        caption_zh=(
            f"CartPole-v1 上的 DQN：{cfg.dqn_steps:,} 步，{len(seeds)} 个种子，每个评估 {cfg.eval_episodes} 个贪心回合"
            "（两方评估的回合相同）。"
        ),
    )
    fig, ax = new_figure()
    for i, (name, c) in enumerate(curves.items()):
        plot_band(ax, grid, c, color=f"C{i}", label=f"{name} (mean of {len(seeds)} seeds, band: min-max)")
    ax.axhline(RANDOM_CARTPOLE_RETURN, color="gray", ls=":", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (mean of the last 10 training episodes)")
    ax.set_title("DQN on CartPole-v1")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "dqn-curves",
        caption_en="Learning curves of DQN on CartPole-v1 over seeds (training episodes, which still explore).",
        caption_zh="CartPole-v1 上 DQN 在多个种子上的学习曲线（训练回合，仍带探索）。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    dcfg = _dqn_config(cfg, cfg.bench_steps)
    seeds = list(range(cfg.bench_seeds))
    with torch_threads(cfg.threads):
        # warm-up: lazy imports and first-call costs of both libraries stay out of the timings
        warm = _dqn_config(cfg, 300)
        train_dqn("CartPole-v1", warm, 0, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0))
        _sb3_dqn(warm, 0).learn(300)

        def ours(seed: int):
            rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
            return train_dqn("CartPole-v1", dcfg, seed, rng=rng, generator=gen).q_net

        runs = side_by_side(seeds, ours, lambda seed: _sb3_dqn(dcfg, seed).learn(cfg.bench_steps))
        ours_ret = np.array(
            [evaluate_q("CartPole-v1", q, cfg.eval_episodes, 10_000 + s).mean() for s, q in zip(seeds, runs.ours)]
        )
        ref_ret = models_mean_returns("CartPole-v1", cfg.eval_episodes, [10_000 + s for s in seeds], runs.reference)
    label = (
        f"DQN on CartPole-v1, {cfg.bench_steps:,} steps ({dcfg.gradient_steps} gradient steps per "
        f"{dcfg.train_freq * dcfg.n_envs} environment steps)"
    )
    ref_name = f"stable_baselines3.DQN, same hyperparameters, {cfg.threads} torch thread(s)"
    return bench_rows(label, runs, ours_ret, ref_ret, ref_name, cfg.bench_steps)
