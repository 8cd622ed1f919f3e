"""R6 -- DDPG on Pendulum-v1 (and HalfCheetah-v5 in the full profile): deterministic policy gradient with target
networks, soft updates and Gaussian or Ornstein-Uhlenbeck exploration, over several seeds, measured against
Stable-Baselines3's DDPG at the same budget, seeds and thread count."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.rl import ddpg
from shiyan.rl.collect import evaluate
from shiyan.rl.envs import make_vec_env
from shiyan.rl.plotting import plot_band
from shiyan.rl.reference import bench_rows, evaluate_on, learning_curve, model_policy, models_mean_returns, side_by_side

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
    total_steps: int = 5000
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
    n_seeds: int = 3
    """Independent seeds per method; curves show their mean and range, claims use their mean."""
    eval_episodes: int = 10
    """Noise-free evaluation episodes per trained actor (the same seeded episodes for every method)."""
    compare_sb3: bool = True
    """Train Stable-Baselines3's DDPG with the same settings, budget and seeds."""
    curve_window: int = 5
    """Training episodes averaged into each point of a learning curve."""
    return_claims_from: int = 5000
    """Smallest budget (steps) at which claims about returns are made; below it only the critic is checked."""
    min_gain_over_random: float = 400.0
    """Claimed least improvement of the mean (over seeds) evaluation return over the uniformly random policy's."""
    sb3_margin: float = 150.0
    """Claimed largest shortfall of our mean evaluation return below SB3's."""
    min_td_drop: float = 5.0
    """Claimed least ratio of the critic's mean squared TD error in the first to the last tenth of td_window."""
    td_window: int = 300
    """Number of first gradient steps over which the critic's initial fit is measured."""
    mujoco_env_id: str = "HalfCheetah-v5"
    """MuJoCo task trained in addition when mujoco_steps > 0 (needs the ``mujoco`` package)."""
    mujoco_steps: int = 0
    """Steps of every DDPG run (Gaussian noise, n_seeds seeds) on mujoco_env_id; 0 skips it."""
    mujoco_learning_starts: int = 10_000
    """Random warm-up steps of the MuJoCo runs."""
    mujoco_hidden: tuple[int, ...] = (400, 300)
    """Hidden widths of actor and critic on the MuJoCo task."""
    mujoco_batch_size: int = 256
    """Replay mini-batch size on the MuJoCo task."""
    mujoco_min_gain: float = 1000.0
    """Claimed least improvement of the mean MuJoCo evaluation return over uniformly random actions'."""
    bench_steps: int = 10_000
    """Environment steps of every benchmark run (warm-up included)."""
    bench_learning_starts: int = 1000
    """Warm-up steps of the benchmark runs."""
    bench_seeds: int = 3
    """Seeds of the benchmark; ours and SB3 alternate seed by seed and times are summed."""
    bench_mujoco_steps: int = 0
    """Steps of every benchmark run on mujoco_env_id (mujoco_learning_starts of them random); 0 skips it."""

    def validate(self) -> None:
        if self.total_steps < 200:
            raise ConfigError(f"total_steps must be >= 200; got {self.total_steps}")
        if not 0 <= self.learning_starts < self.total_steps:
            raise ConfigError(f"learning_starts must lie in [0, total_steps); got {self.learning_starts}")
        for name in ("hidden", "mujoco_hidden"):
            widths = getattr(self, name)
            if not widths or any(h < 1 for h in widths):
                raise ConfigError(f"{name} must list positive widths; got {widths}")
        if self.batch_size < 1 or self.buffer_size < max(self.batch_size, self.mujoco_batch_size):
            raise ConfigError("batch_size must be >= 1 and buffer_size >= batch_size, mujoco_batch_size")
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1 or self.lr <= 0 or self.noise_sigma < 0:
            raise ConfigError("gamma must lie in (0, 1), tau in (0, 1], lr > 0 and noise_sigma >= 0")
        if self.n_seeds < 1 or self.eval_episodes < 1 or self.curve_window < 1:
            raise ConfigError("n_seeds, eval_episodes and curve_window must be >= 1")
        if self.min_td_drop <= 0 or self.sb3_margin < 0 or self.td_window < 10:
            raise ConfigError("min_td_drop must be positive, sb3_margin non-negative and td_window >= 10")
        if self.mujoco_steps < 0 or self.bench_mujoco_steps < 0 or self.mujoco_batch_size < 1:
            raise ConfigError("mujoco_steps and bench_mujoco_steps must be >= 0 and mujoco_batch_size >= 1")
        for name in ("mujoco_steps", "bench_mujoco_steps"):
            steps = getattr(self, name)
            if steps and not 0 <= self.mujoco_learning_starts < steps:
                raise ConfigError(f"mujoco_learning_starts must lie in [0, {name}); got {self.mujoco_learning_starts}")
        if not 0 <= self.bench_learning_starts < self.bench_steps or self.bench_seeds < 1:
            raise ConfigError("bench_learning_starts must lie in [0, bench_steps) and bench_seeds be >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            total_steps=500,
            learning_starts=200,
            hidden=(32, 32),
            batch_size=64,
            n_seeds=2,
            eval_episodes=2,
            compare_sb3=False,
            bench_steps=300,
            bench_learning_starts=100,
            bench_seeds=2,
        )

    @classmethod
    def full(cls) -> Config:
        # RL Baselines3 Zoo's Pendulum-v1 DDPG: 20k steps, 10k random warm-up, [400, 300] nets, batch 256.
        # HalfCheetah-v5 with the zoo's HalfCheetah settings but 50k steps instead of the zoo's 1M: each learning
        # step costs ~19 ms on one laptop core, so three seeds take ~40 min instead of ~14 h.
        return cls(
            total_steps=20_000,
            learning_starts=10_000,
            hidden=(400, 300),
            batch_size=256,
            bench_steps=20_000,
            bench_learning_starts=10_000,
            mujoco_steps=50_000,
            bench_mujoco_steps=30_000,
        )


@dataclass(frozen=True)
class _Setting:
    """One environment and the settings that differ between the Pendulum and the MuJoCo runs."""

    env_id: str
    total: int
    starts: int
    hidden: tuple[int, ...]
    batch: int


def _main(cfg: Config) -> _Setting:
    return _Setting(cfg.env_id, cfg.total_steps, cfg.learning_starts, cfg.hidden, cfg.batch_size)


def _mujoco(cfg: Config, total: int) -> _Setting:
    return _Setting(cfg.mujoco_env_id, total, cfg.mujoco_learning_starts, cfg.mujoco_hidden, cfg.mujoco_batch_size)


def _ddpg_cfg(cfg: Config, st: _Setting, noise: str = "gaussian") -> ddpg.DDPGConfig:
    return ddpg.DDPGConfig(
        total_steps=st.total,
        learning_starts=st.starts,
        buffer_size=cfg.buffer_size,
        batch_size=st.batch,
        actor_lr=cfg.lr,
        critic_lr=cfg.lr,
        gamma=cfg.gamma,
        tau=cfg.tau,
        noise=noise,
        noise_sigma=cfg.noise_sigma,
        hidden=st.hidden,
    )


def _sb3_model(cfg: Config, st: _Setting, seed: int):
    import gymnasium as gym
    from stable_baselines3 import DDPG
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    env = Monitor(gym.make(st.env_id))
    d = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy",
        env,
        learning_rate=cfg.lr,
        buffer_size=cfg.buffer_size,
        learning_starts=st.starts,
        batch_size=st.batch,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=1,
        gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(d), cfg.noise_sigma * np.ones(d)),
        policy_kwargs={"net_arch": list(st.hidden)},
        seed=seed,
        device="cpu",
    )
    return model, env


def _random_returns(env_id: str, n: int, seed: int) -> np.ndarray:
    envs = make_vec_env(env_id, n, seed)
    space = envs.action_space  # batched box, seeded by make_vec_env
    try:
        return evaluate(envs, lambda obs: (space.sample(), {}))
    finally:
        envs.close()


def _actor_policy(actor: ddpg.Actor):
    return lambda obs: (actor(obs), {})


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(x)))
    return np.convolve(x, np.ones(k) / k, mode="valid")


def _train_ours(cfg: Config, ctx: RunContext, st: _Setting, noise: str, s: int, stream: str):
    return ddpg.train_ddpg(
        st.env_id,
        _ddpg_cfg(cfg, st, noise),
        cfg.seed * 1000 + s,
        rng=ctx.numpy_generator("replay", stream, s),
        generator=ctx.torch_generator("nets", stream, s),
    )


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    eval_seed = 10_000 + cfg.seed
    main = _main(cfg)
    random_ret = float(_random_returns(cfg.env_id, cfg.eval_episodes, eval_seed).mean())
    res.metric("random_policy_return", random_ret, description="mean return of uniformly random actions")

    grid = np.linspace(0, cfg.total_steps, 41)
    curves: dict[str, list[np.ndarray]] = {}
    evals: dict[str, list[float]] = {}
    td: dict[str, list[np.ndarray]] = {}
    walls: dict[str, list[float]] = {}
    methods = ["ours, Gaussian noise", "ours, OU noise"] + (["SB3 DDPG, Gaussian noise"] if cfg.compare_sb3 else [])
    jobs = [(m, s) for s in range(cfg.n_seeds) for m in methods]  # seed by seed, the methods interleaved
    with torch_threads(1):  # small networks: one thread is fastest, for ours and SB3 alike
        for method, s in ctx.progress(jobs, total=len(jobs), description="DDPG runs"):
            t0 = time.perf_counter()
            if method.startswith("ours"):
                out = _train_ours(cfg, ctx, main, "ou" if "OU" in method else "gaussian", s, method)
                walls.setdefault(method, []).append(time.perf_counter() - t0)
                ends, rets = out.episode_end_steps, out.episode_returns
                td.setdefault(method, []).append(out.td_losses)
                with torch.no_grad():
                    ev = evaluate_on(cfg.env_id, cfg.eval_episodes, eval_seed, _actor_policy(out.actor))
            else:
                model, env = _sb3_model(cfg, main, cfg.seed * 1000 + s)
                model.learn(total_timesteps=cfg.total_steps)
                walls.setdefault(method, []).append(time.perf_counter() - t0)
                ends, rets = np.cumsum(env.get_episode_lengths()), np.asarray(env.get_episode_rewards(), dtype=float)
                ev = evaluate_on(cfg.env_id, cfg.eval_episodes, eval_seed, model_policy(model))
                env.close()
            curves.setdefault(method, []).append(learning_curve(ends, rets, grid, window=cfg.curve_window))
            evals.setdefault(method, []).append(float(ev.mean()))

    rows = []
    for m in methods:
        rows.append([m, float(np.mean(evals[m])), float(np.std(evals[m])), float(np.mean(walls[m]))])
        res.metric(f"eval_return[{m}]", float(np.mean(evals[m])), description="noise-free evaluation, mean over seeds")
    rows.append(["uniformly random actions", random_ret, 0.0, 0.0])

    # the critic fits its targets: TD error over the first and the last tenth of the first td_window updates.
    # (Over a whole long run the TD error need not fall: it scales with |Q|, which grows as returns are learned.)
    drops = []
    for losses in td["ours, Gaussian noise"]:
        window = losses[: cfg.td_window]
        k = max(1, len(window) // 10)
        drops.append(float(np.mean(window[:k]) / max(np.mean(window[-k:]), 1e-12)))
    res.claim(
        "td_error_decreases",
        f"The critic's mean squared TD error falls from the first to the last tenth of its first {cfg.td_window} "
        "updates (ratio, worst seed)",
        value=float(np.min(drops)),
        op=">=",
        threshold=cfg.min_td_drop,
        text_zh=f"critic 的均方 TD 误差在最初 {cfg.td_window} 次更新中，从前十分之一到后十分之一显著下降（比值，取最差种子）",
    )
    if cfg.total_steps >= cfg.return_claims_from:
        for m, zh in (("ours, Gaussian noise", "高斯噪声"), ("ours, OU noise", "OU 噪声")):
            res.claim(
                f"beats_random[{'ou' if 'OU' in m else 'gaussian'}]",
                f"Our DDPG ({m.split(', ')[1]}): mean evaluation return over {cfg.n_seeds} seeds minus that of "
                "uniformly random actions",
                value=float(np.mean(evals[m])) - random_ret,
                op=">=",
                threshold=cfg.min_gain_over_random,
                text_zh=f"我们的 DDPG（{zh}）：{cfg.n_seeds} 个种子的平均评估回报减去均匀随机动作的回报",
            )
        if cfg.compare_sb3:
            res.claim(
                "matches_sb3",
                f"Our mean evaluation return over {cfg.n_seeds} seeds minus SB3 DDPG's at the same budget, settings "
                "and seeds",
                value=float(np.mean(evals["ours, Gaussian noise"]) - np.mean(evals["SB3 DDPG, Gaussian noise"])),
                op=">=",
                threshold=-cfg.sb3_margin,
                text_zh=f"相同步数、超参数与种子下，我们 {cfg.n_seeds} 个种子的平均评估回报减去 SB3 DDPG 的",
            )
    if cfg.mujoco_steps > 0:
        rows.extend(_mujoco_part(cfg, ctx, res, eval_seed))
    res.table(
        "returns",
        columns=["method", "mean eval return", "std over seeds", "train wall time per seed (s)"],
        rows=rows,
        caption_en=f"{cfg.env_id}, {cfg.total_steps} steps, {cfg.n_seeds} seed(s), {cfg.eval_episodes} evaluation "
        "episodes per actor (the same for every method)",
        caption_zh=f"{cfg.env_id}，{cfg.total_steps} 步，{cfg.n_seeds} 个种子，每个策略评估 {cfg.eval_episodes} 回合"
        "（各方法评估相同的回合）",
    )

    fig, ax = new_figure()
    colours = {"ours, Gaussian noise": "C0", "ours, OU noise": "C1", "SB3 DDPG, Gaussian noise": "C2"}
    for m in methods:
        plot_band(ax, grid, np.asarray(curves[m]), color=colours[m], label=f"{m} (mean of {len(curves[m])} seeds)")
    ax.axhline(random_ret, color="grey", ls="--", lw=1, label="random actions")
    ax.axvline(cfg.learning_starts, color="grey", ls=":", lw=1)
    ax.set_xlabel("environment step")
    ax.set_ylabel(f"training return (mean of last {cfg.curve_window} episodes)")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "learning-curves",
        caption_en=f"Training returns, mean over {cfg.n_seeds} seeds (band: best to worst seed); the dotted line "
        "marks the end of the random warm-up",
        caption_zh=f"训练回报，{cfg.n_seeds} 个种子的平均（阴影：最好到最差的种子）；点线标出随机预热的结束",
    )

    fig, ax = new_figure()
    for m in ("ours, Gaussian noise", "ours, OU noise"):
        for i, losses in enumerate(td[m]):
            ax.plot(_smooth(losses, 100), color=colours[m], lw=1, alpha=0.8, label=m if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("gradient step")
    ax.set_ylabel("mean squared TD error (moving average)")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "td-error",
        caption_en="The critic's squared TD error on replayed mini-batches, one line per seed",
        caption_zh="critic 在回放小批量上的均方 TD 误差，每个种子一条线",
    )
    return res


def _require_mujoco(env_id: str) -> None:
    try:
        import mujoco  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(f"{env_id} needs the `mujoco` package (pip install mujoco)") from exc


def _mujoco_part(cfg: Config, ctx: RunContext, res: Result, eval_seed: int) -> list[list]:
    """Our DDPG (Gaussian noise) on the MuJoCo task over n_seeds seeds: table rows and one claim."""
    _require_mujoco(cfg.mujoco_env_id)
    st = _mujoco(cfg, cfg.mujoco_steps)
    random_ret = float(_random_returns(st.env_id, cfg.eval_episodes, eval_seed).mean())
    evals, walls = [], []
    with torch_threads(1):
        for s in ctx.progress(range(cfg.n_seeds), total=cfg.n_seeds, description=st.env_id):
            t0 = time.perf_counter()
            out = _train_ours(cfg, ctx, st, "gaussian", s, "mujoco")
            walls.append(time.perf_counter() - t0)
            with torch.no_grad():
                evals.append(
                    float(evaluate_on(st.env_id, cfg.eval_episodes, eval_seed, _actor_policy(out.actor)).mean())
                )
    res.metric("mujoco_eval_return", float(np.mean(evals)), description=f"{st.env_id}, mean over seeds")
    res.metric("mujoco_random_return", random_ret, description=f"{st.env_id}, uniformly random actions")
    res.claim(
        "mujoco_beats_random",
        f"Our DDPG on {st.env_id} after {st.total} steps: mean evaluation return over {cfg.n_seeds} seeds minus "
        "that of uniformly random actions",
        value=float(np.mean(evals)) - random_ret,
        op=">=",
        threshold=cfg.mujoco_min_gain,
        text_zh=f"我们的 DDPG 在 {st.env_id} 上训练 {st.total} 步：{cfg.n_seeds} 个种子的平均评估回报减去均匀随机动作的回报",
    )
    return [
        [
            f"ours, Gaussian noise, {st.env_id} ({st.total} steps)",
            float(np.mean(evals)),
            float(np.std(evals)),
            float(np.mean(walls)),
        ],
        [f"uniformly random actions, {st.env_id}", random_ret, 0.0, 0.0],
    ]


def _compare(cfg: Config, ctx: RunContext, st: _Setting) -> list[BenchRow]:
    """Ours and SB3 on the same seeds, alternating seed by seed on one torch thread: summed wall and CPU time,
    and the greedy return of each trained actor on the same evaluation episodes."""
    eval_seed = 10_000 + cfg.seed
    with torch_threads(1):
        # one small untimed run of each first, so that neither pays the first-call costs inside the timing
        warm = _Setting(st.env_id, min(st.total, 150), min(st.starts, 100), st.hidden, st.batch)
        ddpg.train_ddpg(st.env_id, _ddpg_cfg(cfg, warm), 0, rng=np.random.default_rng(0), generator=torch.Generator())
        model, env = _sb3_model(cfg, warm, 0)
        model.learn(total_timesteps=warm.total)
        env.close()
        seeds = list(range(cfg.bench_seeds))

        def ours(s: int):
            return ddpg.train_ddpg(st.env_id, _ddpg_cfg(cfg, st), s, rng=ctx.numpy_generator("bench", s),
                                   generator=ctx.torch_generator("bench", s))  # fmt: skip

        def reference(s: int):
            model, env = _sb3_model(cfg, st, s)
            model.learn(total_timesteps=st.total)
            env.close()
            return model

        runs = side_by_side(seeds, ours, reference)
        with torch.no_grad():
            ours_ret = [
                evaluate_on(st.env_id, cfg.eval_episodes, eval_seed, _actor_policy(o.actor)).mean() for o in runs.ours
            ]
        ref_ret = models_mean_returns(st.env_id, cfg.eval_episodes, [eval_seed] * len(seeds), runs.reference)
    what = f"DDPG, {st.total} steps of {st.env_id} ({st.starts} random), nets {list(st.hidden)}, batch {st.batch}"
    return bench_rows(what, runs, np.array(ours_ret), np.array(ref_ret), "stable_baselines3.DDPG.learn", st.total)


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    st = _Setting(cfg.env_id, cfg.bench_steps, cfg.bench_learning_starts, cfg.hidden, cfg.batch_size)
    rows = _compare(cfg, ctx, st)
    if cfg.bench_mujoco_steps > 0:
        _require_mujoco(cfg.mujoco_env_id)
        rows.extend(_compare(cfg, ctx, _mujoco(cfg, cfg.bench_mujoco_steps)))
    return rows
