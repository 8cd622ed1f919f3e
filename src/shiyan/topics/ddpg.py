"""R6 -- DDPG on Pendulum-v1: deterministic policy gradient with target networks, soft updates and
Gaussian or Ornstein-Uhlenbeck exploration, measured against Stable-Baselines3's DDPG at the same budget."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.rl import ddpg
from shiyan.rl.collect import evaluate
from shiyan.rl.envs import make_vec_env
from shiyan.rl.reference import evaluate_on, model_policy

META = TopicMeta(
    slug="ddpg",
    category="RL",
    date=dt.date(2025, 3, 10),
    title_en="DDPG: the deterministic policy gradient with target networks",
    title_zh="DDPG：带目标网络的确定性策略梯度",
    summary_en=(
        "A deterministic actor trained through the critic's action gradient, a critic trained on bootstrapped "
        "targets from slowly moving copies of both networks, and noise for exploration: DDPG on Pendulum-v1, "
        "Gaussian against Ornstein-Uhlenbeck noise, and Stable-Baselines3's DDPG at the same budget."
    ),
    summary_zh=(
        "确定性的 actor 沿着 critic 对动作的梯度更新，critic 用缓慢跟随的目标网络构造自举目标，探索靠给动作加噪声："
        "在 Pendulum-v1 上训练 DDPG，比较高斯噪声与 Ornstein-Uhlenbeck 噪声，并在相同步数下与 Stable-Baselines3 的 DDPG 对照。"
    ),
    implements=("shiyan.rl.ddpg",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    env_id: str = "Pendulum-v1"
    """Gymnasium environment (box observations and actions)."""
    total_steps: int = 8000
    """Environment steps of every training run."""
    learning_starts: int = 1000
    """Steps of uniformly random actions before the first update."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of actor and critic (ours and SB3's)."""
    batch_size: int = 128
    """Replay mini-batch size."""
    buffer_size: int = 200_000
    """Replay buffer capacity."""
    gamma: float = 0.98
    """Discount rate."""
    tau: float = 5e-3
    """Soft-update rate of the target networks."""
    lr: float = 1e-3
    """Adam learning rate of actor and critic."""
    noise_sigma: float = 0.1
    """Exploration noise scale in action units (Gaussian std, OU sigma)."""
    n_seeds: int = 1
    """Independent seeds per method."""
    eval_episodes: int = 10
    """Noise-free evaluation episodes per trained actor."""
    compare_sb3: bool = True
    """Train Stable-Baselines3's DDPG with the same settings and budget."""
    return_claims_from: int = 5000
    """Smallest budget (steps) at which claims about returns are made; below it only the critic is checked."""
    min_gain_over_random: float = 400.0
    """Claimed least improvement of the evaluation return over the uniformly random policy's."""
    sb3_margin: float = 150.0
    """Claimed largest shortfall of our mean evaluation return below SB3's."""
    min_td_drop: float = 5.0
    """Claimed least ratio of the critic's mean squared TD error in the first to the last tenth of td_window."""
    td_window: int = 300
    """Number of first gradient steps over which the critic's initial fit is measured."""
    bench_steps: int = 1500
    """Training steps timed in the benchmark (after bench_learning_starts random ones)."""
    bench_learning_starts: int = 500
    """Warm-up steps of the benchmark runs."""
    bench_repeats: int = 2
    """Alternating timed runs of ours and the reference; the fastest of each is kept (a shared machine only adds time)."""

    def validate(self) -> None:
        if self.total_steps < 200:
            raise ConfigError(f"total_steps must be >= 200; got {self.total_steps}")
        if not 0 <= self.learning_starts < self.total_steps:
            raise ConfigError(f"learning_starts must lie in [0, total_steps); got {self.learning_starts}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must list positive widths; got {self.hidden}")
        if self.batch_size < 1 or self.buffer_size < self.batch_size:
            raise ConfigError("batch_size must be >= 1 and buffer_size >= batch_size")
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1 or self.lr <= 0 or self.noise_sigma < 0:
            raise ConfigError("gamma must lie in (0, 1), tau in (0, 1], lr > 0 and noise_sigma >= 0")
        if self.n_seeds < 1 or self.eval_episodes < 1:
            raise ConfigError("n_seeds and eval_episodes must be >= 1")
        if self.min_td_drop <= 0 or self.sb3_margin < 0 or self.td_window < 10:
            raise ConfigError("min_td_drop must be positive, sb3_margin non-negative and td_window >= 10")
        if self.bench_steps < 1 or self.bench_learning_starts < 0 or self.bench_repeats < 1:
            raise ConfigError("bench_steps must be >= 1 and bench_learning_starts >= 0")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            total_steps=500,
            learning_starts=200,
            hidden=(32, 32),
            batch_size=64,
            eval_episodes=2,
            compare_sb3=False,
            bench_steps=100,
            bench_learning_starts=100,
            bench_repeats=1,
        )

    @classmethod
    def full(cls) -> Config:
        # RL Baselines3 Zoo's Pendulum-v1 DDPG: 20k steps, 10k random warm-up, [400, 300] nets, batch 256
        return cls(
            total_steps=20_000, learning_starts=10_000, hidden=(400, 300), batch_size=256, n_seeds=3, bench_steps=3000
        )


def _ddpg_cfg(cfg: Config, noise: str, total: int | None = None, starts: int | None = None) -> ddpg.DDPGConfig:
    return ddpg.DDPGConfig(
        total_steps=total or cfg.total_steps,
        learning_starts=cfg.learning_starts if starts is None else starts,
        buffer_size=cfg.buffer_size,
        batch_size=cfg.batch_size,
        actor_lr=cfg.lr,
        critic_lr=cfg.lr,
        gamma=cfg.gamma,
        tau=cfg.tau,
        noise=noise,
        noise_sigma=cfg.noise_sigma,
        hidden=cfg.hidden,
    )


def _sb3_model(cfg: Config, seed: int, total: int | None = None, starts: int | None = None):
    import gymnasium as gym
    from stable_baselines3 import DDPG
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    env = Monitor(gym.make(cfg.env_id))
    d = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy",
        env,
        learning_rate=cfg.lr,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts if starts is None else starts,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=1,
        gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(d), cfg.noise_sigma * np.ones(d)),
        policy_kwargs={"net_arch": list(cfg.hidden)},
        seed=seed,
        device="cpu",
    )
    return model, env


def _random_returns(cfg: Config, seed: int) -> np.ndarray:
    envs = make_vec_env(cfg.env_id, cfg.eval_episodes, seed)
    space = envs.action_space  # batched box, seeded by make_vec_env
    try:
        return evaluate(envs, lambda obs: (space.sample(), {}))
    finally:
        envs.close()


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(x)))
    return np.convolve(x, np.ones(k) / k, mode="valid")


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    eval_seed = 10_000 + cfg.seed
    random_ret = float(_random_returns(cfg, eval_seed).mean())
    res.metric("random_policy_return", random_ret, description="mean return of uniformly random actions")

    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    evals: dict[str, list[float]] = {}
    td: dict[str, list[np.ndarray]] = {}
    walls: dict[str, list[float]] = {}
    methods = ["ours, Gaussian noise", "ours, OU noise"] + (["SB3 DDPG, Gaussian noise"] if cfg.compare_sb3 else [])
    jobs = [(m, s) for m in methods for s in range(cfg.n_seeds)]
    for method, s in ctx.progress(jobs, total=len(jobs), description="DDPG runs"):
        seed = cfg.seed * 1000 + s
        t0 = time.perf_counter()
        if method.startswith("ours"):
            noise = "ou" if "OU" in method else "gaussian"
            out = ddpg.train_ddpg(
                cfg.env_id,
                _ddpg_cfg(cfg, noise),
                seed,
                rng=ctx.numpy_generator("replay", method, s),
                generator=ctx.torch_generator("nets", method, s),
            )
            walls.setdefault(method, []).append(time.perf_counter() - t0)
            curves.setdefault(method, []).append((out.episode_end_steps, out.episode_returns))
            td.setdefault(method, []).append(out.td_losses)
            with torch.no_grad():
                evals.setdefault(method, []).append(
                    float(ddpg.evaluate_ddpg(cfg.env_id, out.actor, cfg.eval_episodes, eval_seed).mean())
                )
        else:
            model, env = _sb3_model(cfg, seed)
            model.learn(total_timesteps=cfg.total_steps)
            walls.setdefault(method, []).append(time.perf_counter() - t0)
            rets = np.asarray(env.get_episode_rewards(), dtype=float)
            curves.setdefault(method, []).append((np.cumsum(env.get_episode_lengths()), rets))
            evals.setdefault(method, []).append(
                float(evaluate_on(cfg.env_id, cfg.eval_episodes, eval_seed, model_policy(model)).mean())
            )
            env.close()

    rows = []
    for m in methods:
        rows.append([m, float(np.mean(evals[m])), float(np.std(evals[m])), float(np.mean(walls[m]))])
        res.metric(f"eval_return[{m}]", float(np.mean(evals[m])), description="mean noise-free evaluation return")
    rows.append(["uniformly random actions", random_ret, 0.0, 0.0])
    res.table(
        "returns",
        columns=["method", "mean eval return", "std over seeds", "train wall time (s)"],
        rows=rows,
        caption_en=f"{cfg.env_id}, {cfg.total_steps} steps, {cfg.n_seeds} seed(s), {cfg.eval_episodes} evaluation episodes",
        caption_zh=f"{cfg.env_id}，{cfg.total_steps} 步，{cfg.n_seeds} 个种子，每个策略评估 {cfg.eval_episodes} 回合",
    )

    # the critic fits its targets: TD error over the first and the last tenth of the first td_window updates.
    # (Over a whole long run the TD error need not fall: it scales with |Q|, which grows as returns are learned.)
    drops = []
    for losses in td["ours, Gaussian noise"]:
        window = losses[: cfg.td_window]
        k = max(1, len(window) // 10)
        drops.append(float(np.mean(window[:k]) / max(np.mean(window[-k:]), 1e-12)))
    drop = float(np.min(drops))
    res.claim(
        "td_error_decreases",
        f"The critic's mean squared TD error falls from the first to the last tenth of its first {cfg.td_window} "
        "updates (ratio, worst seed)",
        value=drop,
        op=">=",
        threshold=cfg.min_td_drop,
        text_zh=f"critic 的均方 TD 误差在最初 {cfg.td_window} 次更新中，从前十分之一到后十分之一显著下降（比值，取最差种子）",
    )
    if cfg.total_steps >= cfg.return_claims_from:
        for m, zh in (("ours, Gaussian noise", "高斯噪声"), ("ours, OU noise", "OU 噪声")):
            gain = float(np.mean(evals[m])) - random_ret
            res.claim(
                f"beats_random[{'ou' if 'OU' in m else 'gaussian'}]",
                f"Our DDPG ({m.split(', ')[1]}) improves the evaluation return over uniformly random actions by",
                value=gain,
                op=">=",
                threshold=cfg.min_gain_over_random,
                text_zh=f"我们的 DDPG（{zh}）的评估回报比均匀随机动作至少高出",
            )
        if cfg.compare_sb3:
            gap = float(np.mean(evals["ours, Gaussian noise"]) - np.mean(evals["SB3 DDPG, Gaussian noise"]))
            res.claim(
                "matches_sb3",
                "Our mean evaluation return minus SB3 DDPG's at the same budget and settings",
                value=gap,
                op=">=",
                threshold=-cfg.sb3_margin,
                text_zh="相同步数与超参数下，我们的平均评估回报减去 SB3 DDPG 的平均评估回报",
            )

    fig, ax = new_figure()
    colours = {"ours, Gaussian noise": "C0", "ours, OU noise": "C1", "SB3 DDPG, Gaussian noise": "C2"}
    for m in methods:
        for i, (steps, rets) in enumerate(curves[m]):
            ax.plot(steps, rets, "o-", ms=2, lw=1, color=colours[m], alpha=0.8, label=m if i == 0 else None)
    ax.axhline(random_ret, color="grey", ls="--", lw=1, label="random actions")
    ax.axvline(cfg.learning_starts, color="grey", ls=":", lw=1)
    ax.set_xlabel("environment step")
    ax.set_ylabel("episode return")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "learning-curves",
        caption_en="Training episode returns; the dotted line marks the end of the random warm-up",
        caption_zh="训练回合的回报；点线标出随机预热的结束",
    )

    fig, ax = new_figure()
    for m in ("ours, Gaussian noise", "ours, OU noise"):
        for i, losses in enumerate(td[m]):
            ax.plot(_smooth(losses, 100), color=colours[m], lw=1, label=m if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("gradient step")
    ax.set_ylabel("mean squared TD error (moving average)")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "td-error",
        caption_en="The critic's squared TD error on replayed mini-batches",
        caption_zh="critic 在回放小批量上的均方 TD 误差",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    total = cfg.bench_learning_starts + cfg.bench_steps
    small = _ddpg_cfg(cfg, "gaussian", total=total, starts=cfg.bench_learning_starts)
    ours, ref = float("inf"), float("inf")
    for r in range(cfg.bench_repeats):  # alternate the two, keep the fastest of each
        t0 = time.perf_counter()
        ddpg.train_ddpg(
            cfg.env_id, small, r, rng=ctx.numpy_generator("bench", r), generator=ctx.torch_generator("bench", r)
        )
        ours = min(ours, time.perf_counter() - t0)
        model, env = _sb3_model(cfg, r, total=total, starts=cfg.bench_learning_starts)
        t0 = time.perf_counter()
        model.learn(total_timesteps=total)
        ref = min(ref, time.perf_counter() - t0)
        env.close()
    return [
        BenchRow(
            name=f"DDPG training, {total} steps of {cfg.env_id}, nets {list(cfg.hidden)}, batch {cfg.batch_size}",
            ours=ours,
            reference=ref,
            reference_name="stable_baselines3.DDPG.learn",
            unit="s",
            note=f"{total / ours:.0f} vs {total / ref:.0f} env-steps/s; best of {cfg.bench_repeats}",
        )
    ]
