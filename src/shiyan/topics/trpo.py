"""R7 -- TRPO on CartPole-v1 (and Pendulum-v1 in the full profile): natural-gradient steps by conjugate
gradient on Fisher-vector products, a KL trust region enforced by a line search, a GAE critic; measured
against sb3-contrib's TRPO at the same budget."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.rl import trpo
from shiyan.rl.reference import evaluate_on, model_policy, monitor_episodes

META = TopicMeta(
    slug="trpo",
    category="RL",
    date=dt.date(2025, 3, 24),
    title_en="TRPO: policy steps inside a KL trust region",
    title_zh="TRPO：在 KL 信赖域内更新策略",
    summary_en=(
        "Maximise the importance-weighted surrogate while the average KL to the old policy stays below δ: "
        "conjugate gradient on Fisher-vector products gives the natural-gradient direction, the step length "
        "√(2δ/xᵀFx) puts it on the trust-region boundary, and a line search makes sure the measured KL and "
        "the surrogate agree. Checked update by update on CartPole-v1 and against sb3-contrib's TRPO."
    ),
    summary_zh=(
        "在新旧策略平均 KL 不超过 δ 的约束下最大化重要性加权的替代目标：用 Fisher 向量积上的共轭梯度求自然梯度方向，"
        "步长 √(2δ/xᵀFx) 把它放到信赖域边界上，再用线搜索确保实测 KL 与替代目标的提升都成立。"
        "在 CartPole-v1 上逐次更新地检验，并与 sb3-contrib 的 TRPO 对照。"
    ),
    implements=("shiyan.rl.trpo",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    env_id: str = "CartPole-v1"
    """Main environment (discrete actions: categorical policy)."""
    total_steps: int = 20_000
    """Environment steps of every training run."""
    n_envs: int = 2
    """Environment copies stepped together."""
    n_steps: int = 512
    """Steps per copy between policy updates."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the policy and value networks (ours and the reference's)."""
    max_kl: float = 0.01
    """Trust-region radius delta on the mean KL."""
    cg_iters: int = 15
    """Conjugate-gradient iterations."""
    damping: float = 0.1
    """Damping of the Fisher-vector product."""
    gamma: float = 0.99
    """Discount rate."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic."""
    n_critic_updates: int = 10
    """Critic epochs per update."""
    batch_size: int = 128
    """Critic mini-batch size."""
    n_seeds: int = 1
    """Independent seeds per method."""
    eval_episodes: int = 10
    """Evaluation episodes (greedy policy) per trained policy."""
    compare_sb3: bool = True
    """Train sb3-contrib's TRPO with the same settings and budget."""
    min_return_gain: float = 100.0
    """Claimed least gain of the mean training return, last rollout's episodes over the first rollout's."""
    sb3_margin: float = 100.0
    """Claimed largest shortfall of our mean evaluation return below sb3-contrib's."""
    pendulum_steps: int = 0
    """Steps of an extra Gaussian-policy run on Pendulum-v1 (0: skipped)."""
    bench_steps: int = 4096
    """Training steps timed in the benchmark."""
    bench_repeats: int = 2
    """Alternating timed runs of ours and the reference; the fastest of each is kept (a shared machine only adds time)."""

    def validate(self) -> None:
        if self.total_steps < 2 * self.n_steps * self.n_envs:
            raise ConfigError(f"total_steps must allow at least two updates; got {self.total_steps}")
        if self.n_envs < 1 or self.n_steps < 2:
            raise ConfigError("n_envs must be >= 1 and n_steps >= 2")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must list positive widths; got {self.hidden}")
        if self.max_kl <= 0 or self.damping < 0 or self.cg_iters < 1:
            raise ConfigError("max_kl must be positive, damping non-negative and cg_iters >= 1")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1 or self.critic_lr <= 0:
            raise ConfigError("gamma must lie in (0, 1], gae_lambda in [0, 1] and critic_lr be positive")
        if self.n_critic_updates < 1 or self.batch_size < 1 or self.n_seeds < 1 or self.eval_episodes < 1:
            raise ConfigError("n_critic_updates, batch_size, n_seeds and eval_episodes must be >= 1")
        if self.sb3_margin < 0 or self.pendulum_steps < 0 or self.bench_steps < 1 or self.bench_repeats < 1:
            raise ConfigError("sb3_margin and pendulum_steps must be >= 0 and bench_steps >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            total_steps=3072,
            n_steps=256,
            hidden=(32, 32),
            n_critic_updates=5,
            eval_episodes=3,
            compare_sb3=False,
            min_return_gain=5.0,
            bench_steps=512,
            bench_repeats=1,
        )

    @classmethod
    def full(cls) -> Config:
        # the anchor of issue 8: TRPO reaches 500 on CartPole-v1 within 100k steps
        return cls(total_steps=100_000, n_seeds=3, pendulum_steps=200_000, bench_steps=20_000)


def _trpo_cfg(cfg: Config, total: int | None = None) -> trpo.TRPOConfig:
    return trpo.TRPOConfig(
        total_steps=total or cfg.total_steps,
        n_envs=cfg.n_envs,
        n_steps=cfg.n_steps,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        max_kl=cfg.max_kl,
        cg_iters=cfg.cg_iters,
        damping=cfg.damping,
        critic_lr=cfg.critic_lr,
        n_critic_updates=cfg.n_critic_updates,
        batch_size=cfg.batch_size,
        hidden=cfg.hidden,
    )


def _sb3_model(cfg: Config, seed: int, env_id: str | None = None):
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    venv = sb3_make_vec_env(env_id or cfg.env_id, n_envs=cfg.n_envs, seed=seed)
    model = TRPO(
        "MlpPolicy",
        venv,
        learning_rate=cfg.critic_lr,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        gamma=cfg.gamma,
        cg_max_steps=cfg.cg_iters,
        cg_damping=cfg.damping,
        line_search_shrinking_factor=0.8,
        line_search_max_iter=10,
        n_critic_updates=cfg.n_critic_updates,
        gae_lambda=cfg.gae_lambda,
        normalize_advantage=True,
        target_kl=cfg.max_kl,
        policy_kwargs={"net_arch": list(cfg.hidden)},
        seed=seed,
        device="cpu",
    )
    return model, venv


def _eval(env_id: str, n: int, seed: int, act) -> float:
    return float(evaluate_on(env_id, n, seed, act).mean())


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    eval_seed = 10_000 + cfg.seed
    methods = ["ours"] + (["sb3-contrib TRPO"] if cfg.compare_sb3 else [])
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    evals: dict[str, list[float]] = {m: [] for m in methods}
    walls: dict[str, list[float]] = {m: [] for m in methods}
    kls, quads, accepted, gains = [], [], [], []
    per_update = cfg.n_steps * cfg.n_envs
    jobs = [(m, s) for m in methods for s in range(cfg.n_seeds)]
    for method, s in ctx.progress(jobs, total=len(jobs), description="TRPO runs"):
        seed = cfg.seed * 1000 + s
        t0 = time.perf_counter()
        if method == "ours":
            out = trpo.train_trpo(cfg.env_id, _trpo_cfg(cfg), seed, generator=ctx.torch_generator("trpo", s))
            walls[method].append(time.perf_counter() - t0)
            curves[method].append((out.episode_end_steps, out.episode_returns))
            kls.extend(u.kl for u in out.updates)
            quads.extend(u.quad_kl for u in out.updates)
            accepted.extend(u.accepted for u in out.updates)
            first = out.episode_returns[out.episode_end_steps <= per_update]
            last = out.episode_returns[out.episode_end_steps > out.n_steps - per_update]
            gains.append(float(np.mean(last) - np.mean(first)) if len(first) and len(last) else float("nan"))
            with torch.no_grad():
                evals[method].append(
                    _eval(
                        cfg.env_id, cfg.eval_episodes, eval_seed, lambda o, p=out.policy: (p.mode(p.dist_params(o)), {})
                    )
                )
        else:
            model, venv = _sb3_model(cfg, seed)
            model.learn(total_timesteps=cfg.total_steps)
            walls[method].append(time.perf_counter() - t0)
            curves[method].append(monitor_episodes(venv, cfg.n_envs))
            evals[method].append(
                _eval(
                    cfg.env_id,
                    cfg.eval_episodes,
                    eval_seed,
                    model_policy(model),
                )
            )
            venv.close()

    res.metric("max_update_kl", max(kls), description="largest measured mean KL over all updates")
    res.metric("mean_quadratic_kl", float(np.mean(quads)), description="1/2 d^T F d of the full step (delta)")
    res.metric("accepted_fraction", float(np.mean(accepted)), description="updates whose line search accepted a step")
    res.claim(
        "kl_within_trust_region",
        "Largest measured mean KL(old || new) over every policy update, divided by delta",
        value=max(kls) / cfg.max_kl,
        op="<=",
        threshold=1.0,
        text_zh="所有策略更新中实测平均 KL(旧 || 新) 的最大值除以 δ",
    )
    res.claim(
        "full_step_on_boundary",
        "1/2 d^T (F + damping I) d of the full step, divided by delta (the step size puts it on the boundary)",
        value=float(np.max(np.abs(np.asarray(quads) / cfg.max_kl - 1.0))),
        op="<=",
        threshold=1e-3,
        text_zh="完整步长 d 的 ½dᵀ(F+阻尼·I)d 与 δ 的相对偏差（步长公式把它放在信赖域边界上）",
    )
    gain = float(np.nanmin(gains))
    res.claim(
        "return_improves",
        "Mean training return of the last rollout's episodes minus the first rollout's (worst seed)",
        value=gain,
        op=">=",
        threshold=cfg.min_return_gain,
        text_zh="最后一批采样中回合的平均训练回报减去第一批的（取最差种子）",
    )
    if cfg.compare_sb3:
        gap = float(np.mean(evals["ours"]) - np.mean(evals["sb3-contrib TRPO"]))
        res.claim(
            "matches_sb3_contrib",
            "Our mean evaluation return minus sb3-contrib TRPO's at the same budget and settings",
            value=gap,
            op=">=",
            threshold=-cfg.sb3_margin,
            text_zh="相同步数与超参数下，我们的平均评估回报减去 sb3-contrib TRPO 的",
        )
    rows = [[m, float(np.mean(evals[m])), float(np.std(evals[m])), float(np.mean(walls[m]))] for m in methods]

    pend = None
    if cfg.pendulum_steps > 0:
        pcfg = _trpo_cfg(cfg, total=cfg.pendulum_steps)
        t0 = time.perf_counter()
        pend = trpo.train_trpo("Pendulum-v1", pcfg, cfg.seed, generator=ctx.torch_generator("pendulum"))
        wall = time.perf_counter() - t0
        with torch.no_grad():
            pe = _eval(
                "Pendulum-v1",
                cfg.eval_episodes,
                eval_seed,
                lambda o, p=pend.policy: (torch.clamp(p.mode(p.dist_params(o)), -2.0, 2.0), {}),
            )
        rows.append(["ours, Pendulum-v1 (Gaussian policy)", pe, 0.0, wall])
        res.metric("pendulum_eval_return", pe)
        res.claim(
            "pendulum_kl_within_trust_region",
            "Largest measured mean KL over the Pendulum-v1 updates (Gaussian policy), divided by delta",
            value=max(u.kl for u in pend.updates) / cfg.max_kl,
            op="<=",
            threshold=1.0,
            text_zh="Pendulum-v1（高斯策略）所有更新中实测平均 KL 的最大值除以 δ",
        )
    res.table(
        "returns",
        columns=["method", "mean eval return", "std over seeds", "train wall time (s)"],
        rows=rows,
        caption_en=f"{cfg.env_id}, {cfg.total_steps} steps, {cfg.n_seeds} seed(s), {cfg.eval_episodes} greedy episodes",
        caption_zh=f"{cfg.env_id}，{cfg.total_steps} 步，{cfg.n_seeds} 个种子，每个策略贪心评估 {cfg.eval_episodes} 回合",
    )

    fig, ax = new_figure()
    colours = {"ours": "C0", "sb3-contrib TRPO": "C2"}
    for m in methods:
        for i, (steps, rets) in enumerate(curves[m]):
            ax.plot(steps, rets, ".", ms=3, color=colours[m], alpha=0.6, label=m if i == 0 else None)
    ax.set_xlabel("environment step")
    ax.set_ylabel("episode return")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "learning-curves",
        caption_en=f"Training episode returns on {cfg.env_id}",
        caption_zh=f"{cfg.env_id} 上训练回合的回报",
    )

    fig, ax = new_figure()
    ax.plot(np.arange(1, len(kls) + 1), kls, "o", ms=3, label="measured mean KL of the accepted step")
    ax.axhline(cfg.max_kl, color="C3", ls="--", lw=1, label="δ")
    ax.set_xlabel("policy update (all seeds in turn)")
    ax.set_ylabel("KL(π_old || π_new)")
    ax.set_ylim(0, 1.3 * cfg.max_kl)
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "kl-per-update",
        caption_en="The measured KL of every update stays inside the trust region",
        caption_zh="每次更新的实测 KL 都在信赖域之内",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    total = max(cfg.bench_steps, cfg.n_steps * cfg.n_envs)
    ours, ref = float("inf"), float("inf")
    for r in range(cfg.bench_repeats):  # alternate the two, keep the fastest of each
        t0 = time.perf_counter()
        trpo.train_trpo(cfg.env_id, _trpo_cfg(cfg, total=total), r, generator=ctx.torch_generator("bench", r))
        ours = min(ours, time.perf_counter() - t0)
        model, venv = _sb3_model(cfg, r)
        t0 = time.perf_counter()
        model.learn(total_timesteps=total)
        ref = min(ref, time.perf_counter() - t0)
        venv.close()
    return [
        BenchRow(
            name=f"TRPO training, {total} steps of {cfg.env_id} ({cfg.n_envs} copies), nets {list(cfg.hidden)}",
            ours=ours,
            reference=ref,
            reference_name="sb3_contrib.TRPO.learn",
            unit="s",
            note=f"{total / ours:.0f} vs {total / ref:.0f} env-steps/s; best of {cfg.bench_repeats}",
        )
    ]
