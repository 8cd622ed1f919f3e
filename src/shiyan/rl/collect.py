r"""The rollout collector shared by every deep-RL learner in :mod:`shiyan.rl`.

:func:`collect` runs a policy for $T$ steps in a vector environment of $N$ copies (made by
:func:`shiyan.rl.envs.make_vec_env`) and returns a :class:`Rollout`: the transitions

$$(s_t, a_t, r_{t+1}, \text{terminated}_{t}, \text{truncated}_{t}, s_{t+1}), \qquad t = 0, \dots, T-1,$$

for every copy, as ``torch`` tensors with leading dimensions $(T, N)$, plus whatever the policy
reports about its choice (``extras``: log-probabilities, value estimates, ...).

**Episode ends.** An episode ends when it is *terminated* (the MDP reached a terminal state: the
value of $s_{t+1}$ is 0 and no bootstrapping is allowed) or *truncated* (a time limit cut it: $s_{t+1}$
is an ordinary state whose value must still be bootstrapped). In either case the environment
resets at once (same-step autoreset), so the observation the policy sees next is the first
observation of a new episode. ``next_obs[t]`` is nevertheless always the true $s_{t+1}$ of the
transition -- the final observation on an episode end -- so a learner can form
$r_{t+1} + \gamma (1 - \text{terminated}_t)\, v(s_{t+1})$ for every $t$ without special cases.
Within an episode, ``next_obs[t] == obs[t + 1]``.

**The policy** is any callable ``policy(obs) -> (action, extras)``: ``obs`` is a tensor of shape
$(N, \dots)$ (``float32`` for box observations, ``int64`` for discrete ones), ``action`` a tensor or
array of shape $(N, \dots)$ that the environment accepts, and ``extras`` a dict of tensors with
leading dimension $N$ (possibly empty). It is called under ``torch.no_grad()``: the collector only
gathers data; a learner recomputes whatever needs gradients from ``Rollout.obs``. Randomness in the
policy (sampling, $\varepsilon$-greedy) comes from the policy's own generator.

**Episode statistics.** Finished episodes' undiscounted returns and lengths (from the
``RecordEpisodeStatistics`` wrapper that :func:`~shiyan.rl.envs.make_vec_env` adds) are listed in
``Rollout.episode_returns`` / ``episode_lengths`` with the global step at which they ended, so a
learner can draw a learning curve without any bookkeeping of its own.

Chaining calls continues the same episodes: ``r = collect(envs, pi, T, obs); r2 = collect(envs, pi, T, r.last_obs)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import gymnasium as gym
import numpy as np
import torch

__all__ = ["Policy", "Rollout", "collect", "evaluate", "obs_to_tensor"]

Policy = Callable[[torch.Tensor], tuple[torch.Tensor | np.ndarray, Mapping[str, torch.Tensor]]]
"""``policy(obs (N, ...)) -> (action (N, ...), extras {name: tensor (N, ...)})``."""


@dataclasses.dataclass(frozen=True)
class Rollout:
    """$T$ steps of $N$ environment copies (tensors have leading dimensions ``(T, N)``)."""

    obs: torch.Tensor
    """$s_t$, shape (T, N, *obs_shape)."""
    actions: torch.Tensor
    """$a_t$, shape (T, N, *action_shape)."""
    rewards: torch.Tensor
    """$r_{t+1}$, float32, shape (T, N)."""
    terminated: torch.Tensor
    """The episode reached a terminal state at $s_{t+1}$ (no bootstrapping), bool, shape (T, N)."""
    truncated: torch.Tensor
    """The episode was cut by a time limit at $s_{t+1}$ (bootstrap from ``next_obs``), bool, shape (T, N)."""
    next_obs: torch.Tensor
    """The true $s_{t+1}$ (the final observation on an episode end), shape (T, N, *obs_shape)."""
    extras: dict[str, torch.Tensor]
    """What the policy reported for each step, e.g. ``log_prob`` or ``value``, each of shape (T, N, ...)."""
    last_obs: np.ndarray
    """Observations to continue from (after any reset), shape (N, *obs_shape): the ``obs`` of the next call."""
    episode_returns: np.ndarray
    """Undiscounted returns of the episodes that ended during this rollout, shape (E,)."""
    episode_lengths: np.ndarray
    """Their lengths in steps, shape (E,)."""
    episode_env_ids: np.ndarray
    """Which copy each finished episode ran in, shape (E,)."""
    episode_end_steps: np.ndarray
    """For each finished episode, the number of environment steps (over all copies) this rollout had
    taken when it ended, shape (E,); add the steps taken before the call for a global step."""

    @property
    def n_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_envs(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def dones(self) -> torch.Tensor:
        """Episode ends of either kind, shape (T, N)."""
        return self.terminated | self.truncated

    def flat(self) -> dict[str, torch.Tensor]:
        """The transitions with (T, N) merged into one batch dimension of T * N (time-major)."""
        out = {
            "obs": self.obs.flatten(0, 1),
            "actions": self.actions.flatten(0, 1),
            "rewards": self.rewards.flatten(0, 1),
            "terminated": self.terminated.flatten(0, 1),
            "truncated": self.truncated.flatten(0, 1),
            "next_obs": self.next_obs.flatten(0, 1),
        }
        out.update({k: v.flatten(0, 1) for k, v in self.extras.items()})
        return out


def obs_to_tensor(obs: np.ndarray) -> torch.Tensor:
    """Observations as a tensor: ``int64`` for integer (discrete) observations, ``float32`` otherwise."""
    arr = np.asarray(obs)
    if np.issubdtype(arr.dtype, np.integer):
        return torch.as_tensor(arr, dtype=torch.int64)
    return torch.as_tensor(arr, dtype=torch.float32)


def _check_obs(obs: np.ndarray, envs: gym.vector.VectorEnv) -> np.ndarray:
    arr = np.asarray(obs)
    expected = (envs.num_envs, *envs.single_observation_space.shape)
    if arr.shape != expected:
        raise ValueError(f"obs must have shape (n_envs, *obs_shape) = {expected}; got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError("obs must be finite")
    return arr


def collect(envs: gym.vector.VectorEnv, policy: Policy, n_steps: int, obs: np.ndarray) -> Rollout:
    """Run ``policy`` for ``n_steps`` steps of every copy in ``envs``, starting from ``obs``
    (as returned by ``envs.reset()`` or a previous rollout's ``last_obs``). See the module docstring."""
    if not isinstance(envs, gym.vector.VectorEnv):
        raise TypeError(f"envs must be a gymnasium VectorEnv; got {type(envs).__name__}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
    if not callable(policy):
        raise TypeError("policy must be callable: policy(obs) -> (action, extras)")
    obs = _check_obs(obs, envs)
    n_envs = envs.num_envs
    obs_buf = np.empty((n_steps, *obs.shape), dtype=obs.dtype)  # (T, N, *obs_shape)
    next_buf = np.empty_like(obs_buf)  # (T, N, *obs_shape)
    rew_buf = np.empty((n_steps, n_envs), dtype=np.float32)
    term_buf = np.empty((n_steps, n_envs), dtype=bool)
    trunc_buf = np.empty((n_steps, n_envs), dtype=bool)
    actions: list[np.ndarray] = []
    extras: dict[str, list[torch.Tensor]] = {}
    ep_returns: list[float] = []
    ep_lengths: list[int] = []
    ep_ends: list[int] = []
    ep_envs: list[int] = []
    for t in range(n_steps):
        with torch.no_grad():
            action, info_pi = policy(obs_to_tensor(obs))
        act = action.numpy() if isinstance(action, torch.Tensor) else np.asarray(action)
        if act.shape[:1] != (n_envs,):
            raise ValueError(f"policy must return one action per environment ({n_envs}); got shape {act.shape}")
        for key, value in info_pi.items():
            extras.setdefault(key, []).append(torch.as_tensor(value))
        nxt, rew, term, trunc, info = envs.step(act)
        obs_buf[t] = obs
        next_buf[t] = nxt
        rew_buf[t] = rew
        term_buf[t] = term
        trunc_buf[t] = trunc
        actions.append(act.copy())
        if "_final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                next_buf[t, i] = info["final_obs"][i]  # the true s_{t+1}, not the reset observation
            final = info.get("final_info", {})
            if "episode" in final:
                ep = final["episode"]
                for i in np.flatnonzero(final["_episode"]):
                    ep_returns.append(float(ep["r"][i]))
                    ep_lengths.append(int(ep["l"][i]))
                    ep_ends.append((t + 1) * n_envs)
                    ep_envs.append(int(i))
        obs = nxt
    return Rollout(
        obs=obs_to_tensor(obs_buf),
        actions=torch.as_tensor(np.stack(actions)),
        rewards=torch.from_numpy(rew_buf),
        terminated=torch.from_numpy(term_buf),
        truncated=torch.from_numpy(trunc_buf),
        next_obs=obs_to_tensor(next_buf),
        extras={k: torch.stack(v) for k, v in extras.items()},
        last_obs=np.array(obs, copy=True),
        episode_returns=np.asarray(ep_returns, dtype=np.float64),
        episode_lengths=np.asarray(ep_lengths, dtype=np.int64),
        episode_env_ids=np.asarray(ep_envs, dtype=np.int64),
        episode_end_steps=np.asarray(ep_ends, dtype=np.int64),
    )


def evaluate(
    envs: gym.vector.VectorEnv, policy: Policy, obs: np.ndarray | None = None, max_steps: int = 100_000
) -> np.ndarray:
    """Undiscounted return of the first episode of every copy in ``envs`` under ``policy`` (from
    ``obs``, or a fresh ``envs.reset()``), shape (N,). Taking the first episode of each copy, rather
    than the first N to finish, avoids favouring short episodes."""
    if obs is None:
        obs, _ = envs.reset()
    first = np.full(envs.num_envs, np.nan)
    taken = 0
    while np.isnan(first).any():
        if taken >= max_steps:
            raise ValueError(f"not every copy finished an episode within max_steps = {max_steps}")
        r = collect(envs, policy, 100, obs)
        taken += 100
        obs = r.last_obs
        for ret, i in zip(r.episode_returns, r.episode_env_ids, strict=True):
            if np.isnan(first[i]):
                first[i] = ret
    return first
