"""Comparing a learner with a reference (Stable-Baselines3, sb3-contrib) on equal terms.

Both sides are scored by the same code: :func:`evaluate_on` runs *any* policy -- ours, an SB3 model's
deterministic ``predict``, random actions -- through :func:`shiyan.rl.collect.evaluate` on fresh seeded
copies of the environment, and :func:`learning_curve` turns finished episodes (global step at which each
ended, its return) into a curve on a common step grid. :func:`monitor_episodes` reads those episodes from
an SB3 vector environment whose copies are wrapped in ``Monitor``.

Nothing here imports SB3: models and vector environments are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from shiyan.core.result import BenchRow
from shiyan.rl.collect import evaluate
from shiyan.rl.envs import make_vec_env


def evaluate_on(env_id: str, n_episodes: int, seed: int, policy: Callable) -> np.ndarray:
    """Return of the first episode of each of ``n_episodes`` seeded copies of ``env_id`` under ``policy``
    (``policy(obs) -> (action, extras)``, as for :func:`shiyan.rl.collect.collect`), shape (n_episodes,)."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1; got {n_episodes}")
    envs = make_vec_env(env_id, n_episodes, seed)
    try:
        return evaluate(envs, policy)
    finally:
        envs.close()


def model_policy(model) -> Callable:
    """An SB3 (or any ``predict``-style) model as a deterministic policy for :func:`evaluate_on`."""
    return lambda obs: (model.predict(obs.numpy(), deterministic=True)[0], {})


def models_mean_returns(env_id: str, n_episodes: int, eval_seeds: list[int], models: list) -> np.ndarray:
    """Mean greedy return of each trained SB3 model, model ``k`` on the episodes seeded by ``eval_seeds[k]``
    (:func:`evaluate_on` with :func:`model_policy`), shape (len(models),)."""
    if len(eval_seeds) != len(models):
        raise ValueError(f"eval_seeds and models must have one length; got {len(eval_seeds)}, {len(models)}")
    return np.array(
        [evaluate_on(env_id, n_episodes, s, model_policy(m)).mean() for s, m in zip(eval_seeds, models, strict=True)]
    )


def sb3_trpo_trust_region(max_kl: float, damping: float, action_space) -> dict[str, float]:
    r"""sb3-contrib ``TRPO`` arguments (``target_kl``, ``cg_damping``) for the step :func:`shiyan.rl.trpo.trpo_update`
    takes with trust region ``max_kl`` $= \delta$ and damping ``damping`` $= \lambda$.

    For a diagonal Gaussian policy sb3-contrib averages the per-dimension KL over the $d$ action dimensions
    as well as over the states (``kl_divergence(...)`` has shape (B, d) there, and ``.mean()`` takes both),
    so its constraint is $\bar D_\text{KL} / d \le \delta'$ and its Fisher matrix is $F / d$. With
    $\delta' = \delta / d$ and $\lambda' = \lambda / d$ its step is ours exactly:
    $(F/d + \lambda I/d)^{-1} g = d\,(F + \lambda I)^{-1} g$, rescaled to $\frac12 d^\top (F/d + \lambda I/d) d = \delta / d$, is
    the same vector, and the line search accepts the same points. A discrete action space has $d = 1$.
    (Called with its defaults on HalfCheetah-v5, $d = 6$, sb3-contrib's ``target_kl=0.01`` is a trust region
    of 0.06 in the KL of the paper.)"""
    if not isinstance(action_space, gym.spaces.Space):
        raise TypeError(f"action_space must be a gymnasium space; got {type(action_space).__name__}")
    if max_kl <= 0 or damping < 0:
        raise ValueError(f"max_kl must be positive and damping non-negative; got {max_kl}, {damping}")
    # Box: the KL is averaged over its dimensions; Discrete: one categorical KL per state
    d = int(np.prod(action_space.shape)) if isinstance(action_space, gym.spaces.Box) else 1
    return {"target_kl": max_kl / d, "cg_damping": damping / d}


def monitor_episodes(venv, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
    """(end steps, returns) of every episode recorded by the ``Monitor`` wrappers of an SB3 vector env,
    sorted by end step. The copies step in lock step, so copy i's episode ending at its own k-th step ended
    at global step k · n_envs."""
    ends, returns = [], []
    lengths = venv.env_method("get_episode_lengths")
    rewards = venv.env_method("get_episode_rewards")
    for lens, rets in zip(lengths, rewards, strict=True):
        ends.extend((np.cumsum(lens) * n_envs).tolist())
        returns.extend(rets)
    order = np.argsort(ends, kind="stable")
    return np.asarray(ends, dtype=np.int64)[order], np.asarray(returns, dtype=np.float64)[order]


def learning_curve(end_steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int = 10) -> np.ndarray:
    """Mean return of the last ``window`` episodes finished by each step of ``grid`` (NaN before any)."""
    end_steps, returns = np.asarray(end_steps), np.asarray(returns, dtype=np.float64)
    if end_steps.shape != returns.shape:
        raise ValueError(f"end_steps {end_steps.shape} and returns {returns.shape} must have the same shape")
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    out = np.full(np.shape(grid), np.nan)
    for i, g in enumerate(grid):
        done = returns[end_steps <= g]
        if done.size:
            out[i] = done[-window:].mean()
    return out


@dataclass
class SideBySide:
    """Per-seed results and timings of two learners trained alternately on the same seeds."""

    ours: list
    """What ``ours(seed)`` returned, one entry per seed."""
    reference: list
    """What ``reference(seed)`` returned (empty when no reference ran)."""
    wall: np.ndarray
    """Wall-clock seconds, shape (2, S): row 0 ours, row 1 the reference."""
    cpu: np.ndarray
    """CPU seconds of this process (``time.process_time``), shape (2, S)."""


def side_by_side(seeds: list[int], ours: Callable[[int], Any], reference: Callable[[int], Any] | None) -> SideBySide:
    """Train ``ours(seed)`` and ``reference(seed)`` on every seed, interleaved (the first to run alternates
    from seed to seed, so a slow spell of the shared machine hits both), timing each call on both clocks."""
    out: dict[str, list] = {"ours": [], "reference": []}
    times = {"ours": [], "reference": []}
    for i, seed in enumerate(seeds):
        order = [("ours", ours), ("reference", reference)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            if fn is None:
                continue
            w0, c0 = time.perf_counter(), time.process_time()
            out[name].append(fn(seed))
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    ref_times = times["reference"] or [(np.nan, np.nan)] * len(seeds)
    t = np.array([times["ours"], ref_times])  # (2, S, 2)
    return SideBySide(out["ours"], out["reference"], t[..., 0], t[..., 1])


def seed_stats(returns: np.ndarray) -> list[float]:
    """Mean, standard deviation and minimum over seeds."""
    return [float(np.mean(returns)), float(np.std(returns)), float(np.min(returns))]


def bench_rows(
    label: str, runs: SideBySide, ours_returns: np.ndarray, ref_returns: np.ndarray, reference_name: str, steps: int
) -> list[BenchRow]:
    """Three rows: wall time and CPU time summed over seeds, and the greedy return averaged over seeds."""
    n = runs.wall.shape[1]
    wall, cpu = runs.wall.sum(axis=1), runs.cpu.sum(axis=1)
    om, osd, rm, rsd = ours_returns.mean(), ours_returns.std(), ref_returns.mean(), ref_returns.std()
    return [
        BenchRow(
            name=f"{label}: wall time, sum over {n} seeds",
            ours=float(wall[0]),
            reference=float(wall[1]),
            reference_name=reference_name,
            note=f"ours {n * steps / wall[0]:,.0f} steps/s, reference {n * steps / wall[1]:,.0f} steps/s",
        ),
        BenchRow(
            name=f"{label}: CPU time (process_time), sum over {n} seeds",
            ours=float(cpu[0]),
            reference=float(cpu[1]),
            reference_name=reference_name,
            note="CPU seconds of the process: other processes on the machine do not inflate them",
        ),
        _return_row(label, n, om, osd, rm, rsd, reference_name),
    ]


def _return_row(label: str, n: int, om: float, osd: float, rm: float, rsd: float, reference_name: str) -> BenchRow:
    """The greedy returns as a ratio of two positive numbers: the returns themselves when both are positive (a
    ratio above 1 favours ours), else the costs $-G$ when both are negative, as on Pendulum (below 1 favours ours)."""
    spread = f"ours {om:.1f} ± {osd:.1f}, reference {rm:.1f} ± {rsd:.1f} (std over seeds)"
    if om < 0 and rm < 0:
        return BenchRow(name=f"{label}: cost (minus the greedy return), mean over {n} seeds", ours=float(-om),
                        reference=float(-rm), reference_name=reference_name, unit="-return",
                        note=f"{spread}; returns are negative here, so a ratio below 1 favours ours")  # fmt: skip
    return BenchRow(name=f"{label}: greedy return, mean over {n} seeds", ours=float(om), reference=float(rm),
                    reference_name=reference_name, unit="return",
                    note=f"{spread}; here a ratio above 1 favours ours")  # fmt: skip
