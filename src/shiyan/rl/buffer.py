r"""The experience-replay buffer shared by the off-policy deep learners (DQN, DDPG).

A :class:`ReplayBuffer` keeps the last ``capacity`` transitions $(s, a, r, s', \text{terminated})$ in
preallocated numpy arrays used as a ring: the $k$-th transition ever added goes to slot
$k \bmod \text{capacity}$, overwriting the oldest one once the buffer is full. :meth:`ReplayBuffer.sample`
draws a mini-batch uniformly **with replacement** from the stored transitions,

$$i_1, \dots, i_B \overset{\text{iid}}{\sim} \mathcal U\{0, \dots, \text{size} - 1\},$$

which breaks the correlation between consecutive samples that makes online updates unstable
(the point of replay in DQN). The generator is an explicit ``np.random.Generator`` argument.

Only ``terminated`` is stored as the bootstrap mask: a learner's target is
$r + \gamma (1 - \text{terminated})\, \hat v(s')$. A *truncated* transition (time limit) keeps its
bootstrap, and its $s'$ is the true final observation, which :func:`shiyan.rl.collect.collect`
provides in ``Rollout.next_obs``; :meth:`ReplayBuffer.add_rollout` adds a whole rollout.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from shiyan.rl.collect import Rollout

__all__ = ["Batch", "ReplayBuffer"]


@dataclasses.dataclass(frozen=True)
class Batch:
    """A mini-batch of $B$ transitions as tensors (observations keep the buffer's dtype: ``float32``
    or ``int64``)."""

    obs: torch.Tensor
    """$s$, shape (B, *obs_shape)."""
    actions: torch.Tensor
    """$a$, shape (B, *action_shape)."""
    rewards: torch.Tensor
    """$r$, float32, shape (B,)."""
    next_obs: torch.Tensor
    """$s'$, shape (B, *obs_shape)."""
    terminated: torch.Tensor
    """1.0 where $s'$ is terminal (no bootstrap), float32, shape (B,)."""
    indices: np.ndarray
    """Buffer slots the transitions came from, shape (B,)."""


def _tensor(arr: np.ndarray) -> torch.Tensor:
    if np.issubdtype(arr.dtype, np.integer):
        return torch.as_tensor(arr, dtype=torch.int64)
    return torch.as_tensor(arr, dtype=torch.float32)


class ReplayBuffer:
    """A ring buffer of transitions (see the module docstring).

    Parameters
    ----------
    capacity:
        Maximum number of transitions kept.
    obs_shape, obs_dtype:
        Shape and numpy dtype of one observation (``()`` and ``np.int64`` for a discrete state).
    action_shape, action_dtype:
        Shape and dtype of one action (``()`` and ``np.int64`` for discrete actions,
        ``(d,)`` and ``np.float32`` for continuous ones).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        *,
        obs_dtype: np.dtype | type = np.float32,
        action_dtype: np.dtype | type = np.int64,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer; got {capacity!r}")
        self.capacity = capacity
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.action_shape = tuple(int(d) for d in action_shape)
        self.obs = np.zeros((capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *self.obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((capacity, *self.action_shape), dtype=action_dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        """Slot the next transition goes to."""
        self.size = 0
        """Number of transitions stored (at most ``capacity``)."""
        self.n_added = 0
        """Transitions ever added."""

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Add a batch of $B$ transitions: ``obs``/``next_obs`` (B, *obs_shape), ``actions``
        (B, *action_shape), ``rewards`` and ``terminated`` (B,). Tensors are accepted too."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        actions, rewards, terminated = np.asarray(actions), np.asarray(rewards), np.asarray(terminated)
        if obs.ndim != 1 + len(self.obs_shape) or obs.shape[1:] != self.obs_shape:
            raise ValueError(f"obs must have shape (B, *{self.obs_shape}); got {obs.shape}")
        n = obs.shape[0]
        for name, arr, shape in (
            ("next_obs", next_obs, (n, *self.obs_shape)),
            ("actions", actions, (n, *self.action_shape)),
            ("rewards", rewards, (n,)),
            ("terminated", terminated, (n,)),
        ):
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards must be finite")
        if n == 0:
            return
        if n > self.capacity:  # only the last `capacity` survive
            obs, actions, rewards = obs[-self.capacity :], actions[-self.capacity :], rewards[-self.capacity :]
            next_obs, terminated = next_obs[-self.capacity :], terminated[-self.capacity :]
            self.n_added += n - self.capacity
            self.pos = (self.pos + n - self.capacity) % self.capacity
            n = self.capacity
        slots = (self.pos + np.arange(n)) % self.capacity  # (B,) ring positions
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.n_added += n

    def add_rollout(self, rollout: Rollout) -> None:
        """Add every transition of a :class:`~shiyan.rl.collect.Rollout` (time-major order)."""
        flat = rollout.flat()
        self.add(
            flat["obs"].numpy(),
            flat["actions"].numpy(),
            flat["rewards"].numpy(),
            flat["next_obs"].numpy(),
            flat["terminated"].numpy(),
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement from the stored ones."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}")
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        idx = rng.integers(0, self.size, size=batch_size)  # (B,)
        return Batch(
            obs=_tensor(self.obs[idx]),
            actions=_tensor(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]),
            next_obs=_tensor(self.next_obs[idx]),
            terminated=torch.from_numpy(self.terminated[idx]),
            indices=idx,
        )
