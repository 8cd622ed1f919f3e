r"""Making seeded vector environments: the one place where the deep-RL code of :mod:`shiyan.rl`
creates and seeds environments.

A *vector environment* steps $N$ copies of an environment in lock step: actions of shape
$(N, \dots)$ in, observations, rewards, ``terminated`` and ``truncated`` flags of shape $(N, \dots)$
out. :func:`make_vec_env` builds a :class:`gymnasium.vector.SyncVectorEnv` with two conventions
every learner here relies on:

* **same-step autoreset** (``AutoresetMode.SAME_STEP``): when copy $i$ ends an episode at step $t$,
  the observation returned for it is already the first observation of its *next* episode, and the
  true last observation $s_{t+1}$ is in ``info["final_obs"][i]`` (with ``info["_final_obs"][i]``
  set). A learner needs that observation to bootstrap a *truncated* episode
  ($r_{t+1} + \gamma v(s_{t+1})$); :func:`shiyan.rl.collect.collect` puts it into ``next_obs``.
* **deterministic seeding**: copy $i$ is seeded with ``seed + i`` on its first ``reset()`` (also
  when ``reset()`` is called without a seed), and the observation and action spaces are seeded
  too, so ``envs = make_vec_env(...); obs, _ = envs.reset()`` always starts from the same states.

Every copy is wrapped in :class:`gymnasium.wrappers.RecordEpisodeStatistics`, so finished
episodes report their undiscounted return and length in ``info["final_info"]["episode"]``; the
collector reads them from there.

``env_id`` is a gymnasium id (``"CartPole-v1"``, ``"Pendulum-v1"``, ...), the string
``"GridWorld"`` for the book's grid world (:class:`shiyan.rl.gridworld.GridWorld`; keyword
arguments go to its constructor), or any zero-argument callable returning a ``gymnasium.Env``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import RecordEpisodeStatistics

from shiyan.rl.gridworld import GridWorld

__all__ = ["GRID_WORLD_ID", "make_env", "make_vec_env"]

GRID_WORLD_ID = "GridWorld"
"""The ``env_id`` that :func:`make_vec_env` maps to :class:`shiyan.rl.gridworld.GridWorld`."""


class _SeedOnFirstReset(gym.Wrapper):
    """Seeds the wrapped environment with a fixed seed on its first ``reset()`` unless one is given."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self._first_seed: int | None = seed
        env.action_space.seed(seed)
        env.observation_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
        self._first_seed = None
        return self.env.reset(seed=seed, options=options)


def make_env(env_id: str | Callable[[], gym.Env], **kwargs: Any) -> gym.Env:
    """One (unseeded) environment: ``gymnasium.make(env_id, **kwargs)``, a grid world, or ``env_id()``."""
    if callable(env_id):
        if kwargs:
            raise TypeError("keyword arguments are not accepted when env_id is a callable")
        env = env_id()
    elif isinstance(env_id, str):
        env = GridWorld(**kwargs) if env_id == GRID_WORLD_ID else gym.make(env_id, **kwargs)
    else:
        raise TypeError(f"env_id must be a gymnasium id string or a callable; got {type(env_id).__name__}")
    if not isinstance(env, gym.Env):
        raise TypeError(f"env_id must produce a gymnasium.Env; got {type(env).__name__}")
    return env


def make_vec_env(env_id: str | Callable[[], gym.Env], n_envs: int, seed: int, **kwargs: Any) -> SyncVectorEnv:
    """``n_envs`` copies of ``env_id`` in a same-step-autoreset :class:`~gymnasium.vector.SyncVectorEnv`;
    copy ``i`` is seeded with ``seed + i`` (see the module docstring)."""
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer; got {n_envs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    make_env(env_id, **kwargs).close()  # fail early, in the caller's frame, on a bad id or bad kwargs

    def factory(i: int) -> Callable[[], gym.Env]:
        return lambda: _SeedOnFirstReset(RecordEpisodeStatistics(make_env(env_id, **kwargs)), seed + i)

    envs = SyncVectorEnv([factory(i) for i in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP)
    envs.action_space.seed(seed)
    envs.observation_space.seed(seed)
    return envs
