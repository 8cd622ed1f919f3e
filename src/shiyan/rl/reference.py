"""Comparing a learner with a reference (Stable-Baselines3, sb3-contrib) on equal terms.

Both sides are scored by the same code: :func:`evaluate_on` runs *any* policy -- ours, an SB3 model's
deterministic ``predict``, random actions -- through :func:`shiyan.rl.collect.evaluate` on fresh seeded
copies of the environment, and :func:`learning_curve` turns finished episodes (global step at which each
ended, its return) into a curve on a common step grid. :func:`monitor_episodes` reads those episodes from
an SB3 vector environment whose copies are wrapped in ``Monitor``.

Nothing here imports SB3: models and vector environments are passed in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
