r"""Deep Q-learning (DQN; Mnih et al., 2015; Section 8.4 of Shiyu Zhao's book).

DQN fits a network $\hat q(s, a, w)$ to the Bellman optimality equation by minimising, over
mini-batches $\mathcal B$ drawn from a replay buffer,

$$J(w) = \frac{1}{|\mathcal B|} \sum_{(s, a, r, s') \in \mathcal B} \ell\big(y - \hat q(s, a, w)\big), \qquad
y = r + \gamma\, (1 - \text{terminated})\, \max_{a'} \hat q(s', a', w_T),$$

where $\ell$ is the Huber loss ($\tfrac12 x^2$ for $|x| \le 1$, $|x| - \tfrac12$ beyond) and $w_T$ are the
weights of a *target network*, a copy of $w$ refreshed every ``target_update_interval`` gradient steps
(a hard copy $w_T \leftarrow w$). Holding $w_T$ fixed between copies makes each stretch of training an
ordinary regression; the replay buffer (:class:`shiyan.rl.buffer.ReplayBuffer`) decorrelates its samples.
Only *terminated* transitions drop the bootstrap term; a time-limit truncation keeps it.

Data come from the shared collector (:func:`shiyan.rl.collect.collect`) running the
$\varepsilon$-greedy policy of $\hat q$, with $\varepsilon$ decaying linearly from ``eps_start`` to
``eps_end`` over the first ``exploration_fraction`` of the budget (:func:`linear_schedule`).

* :func:`dqn_targets`, :func:`dqn_loss` -- the target $y$ and the loss $J$ for one batch;
* :func:`epsilon_greedy` -- the behaviour policy as a collector policy;
* :func:`train_dqn` -- the whole loop: collect ``train_freq`` steps, then ``gradient_steps`` Adam updates.

The defaults of :class:`DQNConfig` are RL Baselines3 Zoo's tuned CartPole-v1 hyperparameters.

**Cost.** On one CPU thread most of the time goes into the gradient steps, so the loop keeps the work
around them small without changing what is computed: Adam's fused kernel (the same update as the
default per-tensor loop, in one call), gradient clipping with the ``foreach`` kernels, the hard copy
$w_T \leftarrow w$ as one in-place ``torch._foreach_copy_``, the round's losses summed as a tensor (no
conversion to a Python float per step), and no forward pass of $\hat q$ when every copy explores.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shiyan.rl.approx import mlp
from shiyan.rl.buffer import Batch, ReplayBuffer
from shiyan.rl.collect import Policy, collect, evaluate
from shiyan.rl.envs import make_vec_env

__all__ = [
    "DQNConfig",
    "DQNResult",
    "dqn_loss",
    "dqn_targets",
    "epsilon_greedy",
    "evaluate_q",
    "greedy",
    "linear_schedule",
    "train_dqn",
]


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of :func:`train_dqn` (defaults: rl-zoo's CartPole-v1 settings)."""

    total_steps: int = 50_000
    """Environment steps (summed over copies)."""
    n_envs: int = 1
    """Environment copies stepped together."""
    buffer_size: int = 100_000
    """Replay buffer capacity."""
    learning_starts: int = 1000
    """Environment steps before the first update."""
    batch_size: int = 64
    """Transitions per gradient step."""
    lr: float = 2.3e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount rate."""
    train_freq: int = 256
    """Environment steps (per copy) collected between training rounds."""
    gradient_steps: int = 128
    """Gradient steps per training round."""
    target_update_interval: int = 128
    """Gradient steps between hard copies of the online network into the target network."""
    exploration_fraction: float = 0.16
    """Fraction of the budget over which epsilon decays linearly."""
    eps_start: float = 1.0
    """Initial epsilon."""
    eps_end: float = 0.04
    """Final epsilon."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Q-network."""
    max_grad_norm: float = 10.0
    """Gradient-norm clipping threshold."""

    def __post_init__(self) -> None:
        for name in ("total_steps", "n_envs", "buffer_size", "batch_size", "train_freq", "gradient_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.target_update_interval < 1 or self.learning_starts < 0:
            raise ValueError("target_update_interval must be >= 1 and learning_starts >= 0")
        if not 0 <= self.gamma < 1 or self.lr <= 0:
            raise ValueError(f"gamma must lie in [0, 1) and lr be positive; got {self.gamma}, {self.lr}")
        if not (0 < self.exploration_fraction <= 1 and 0 <= self.eps_end <= self.eps_start <= 1):
            raise ValueError("need 0 < exploration_fraction <= 1 and 0 <= eps_end <= eps_start <= 1")


@dataclasses.dataclass
class DQNResult:
    """What :func:`train_dqn` returns."""

    q_net: nn.Module
    """The trained online network $\\hat q(s, \\cdot, w)$."""
    episode_returns: np.ndarray
    """Returns of the training episodes in the order they ended, shape (E,)."""
    episode_end_steps: np.ndarray
    """Global environment step at which each ended, shape (E,)."""
    losses: np.ndarray
    """Mean loss of every training round, shape (R,)."""
    n_steps: int
    """Environment steps taken."""


def linear_schedule(start: float, end: float, fraction: float, total: int) -> Callable[[int], float]:
    r"""$\varepsilon(t) = \text{start} + (\text{end} - \text{start}) \min(1, t / (\text{fraction} \cdot \text{total}))$."""
    horizon = max(fraction * total, 1.0)
    return lambda t: start + (end - start) * min(1.0, t / horizon)


def dqn_targets(next_q: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""$y = r + \gamma (1 - \text{terminated}) \max_{a'} \hat q(s', a', w_T)$ from ``next_q`` (B, A); shape (B,)."""
    if next_q.ndim != 2 or rewards.shape != next_q.shape[:1] or terminated.shape != rewards.shape:
        raise ValueError(
            f"next_q must be (B, A) and rewards, terminated (B,); got {next_q.shape}, {rewards.shape}, "
            f"{terminated.shape}"
        )
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_q.max(dim=1).values


def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: Batch, gamma: float) -> torch.Tensor:
    """Huber loss between $\\hat q(s, a, w)$ and the target $y$ (no gradient through $y$), a scalar."""
    q_all = q_net(batch.obs)  # (B, A)
    q_sa = q_all.gather(1, batch.actions.long().unsqueeze(1)).squeeze(1)  # (B,)
    with torch.no_grad():
        y = dqn_targets(target_net(batch.next_obs), batch.rewards, batch.terminated, gamma)  # (B,)
    return F.smooth_l1_loss(q_sa, y)


def greedy(q_net: nn.Module) -> Policy:
    """The greedy policy $\\arg\\max_a \\hat q(s, a)$ as a collector policy."""
    return lambda obs: (q_net(obs).argmax(dim=1), {})


def epsilon_greedy(
    q_net: nn.Module, epsilon: Callable[[], float], rng: np.random.Generator, n_actions: int | None = None
) -> Policy:
    """With probability ``epsilon()`` a uniformly drawn action, otherwise the greedy one.

    Given ``n_actions``, the network is not evaluated when every copy explores (the draws from ``rng``
    are the same either way, so the actions are too)."""
    if n_actions is not None and (isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1):
        raise ValueError(f"n_actions must be a positive integer or None; got {n_actions!r}")

    def policy(obs: torch.Tensor) -> tuple[np.ndarray, dict]:
        n = obs.shape[0]
        explore = rng.random(n) < epsilon()  # (N,)
        if n_actions is not None and explore.all():
            return rng.integers(0, n_actions, size=n), {}
        q = q_net(obs)  # (N, A)
        action = q.argmax(dim=1).numpy()  # (N,)
        if explore.any():
            action = np.where(explore, rng.integers(0, q.shape[1], size=n), action)
        return action, {}

    return policy


def train_dqn(
    env_id: str,
    cfg: DQNConfig,
    seed: int,
    *,
    rng: np.random.Generator,
    generator: torch.Generator,
    env_kwargs: dict | None = None,
) -> DQNResult:
    """Train DQN on ``env_id`` (box observations, discrete actions) for ``cfg.total_steps`` steps."""
    envs = make_vec_env(env_id, cfg.n_envs, seed, **(env_kwargs or {}))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if len(obs_space.shape) != 1 or not hasattr(act_space, "n"):
        raise ValueError("train_dqn needs flat box observations and a discrete action space")
    n_actions = int(act_space.n)
    q_net = mlp((obs_space.shape[0], *cfg.hidden, n_actions), generator)
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    w, w_target = list(q_net.parameters()), list(target_net.parameters())
    # the fused kernel performs the same Adam update as the default loop over tensors, in one call
    opt = torch.optim.Adam(w, lr=cfg.lr, fused=True)
    buffer = ReplayBuffer(cfg.buffer_size, obs_space.shape, obs_dtype=np.float32)
    schedule = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.exploration_fraction, cfg.total_steps)
    step = 0
    policy = epsilon_greedy(q_net, lambda: schedule(step), rng, n_actions)
    obs, _ = envs.reset()
    returns, ends, losses, n_grad = [], [], [], 0
    while step < cfg.total_steps:
        n_collect = min(cfg.train_freq, -(-(cfg.total_steps - step) // cfg.n_envs))
        roll = collect(envs, policy, n_collect, obs)
        obs = roll.last_obs
        buffer.add_rollout(roll)
        returns.extend(roll.episode_returns.tolist())
        ends.extend((roll.episode_end_steps + step).tolist())
        step += n_collect * cfg.n_envs
        if step < cfg.learning_starts:
            continue
        round_loss = torch.zeros((), dtype=torch.float64)  # summed without a sync per step
        for _ in range(cfg.gradient_steps):
            loss = dqn_loss(q_net, target_net, buffer.sample(cfg.batch_size, rng), cfg.gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(w, cfg.max_grad_norm, foreach=True)
            opt.step()
            round_loss += loss.detach()
            n_grad += 1
            if n_grad % cfg.target_update_interval == 0:
                torch._foreach_copy_(w_target, w)  # hard copy w_T <- w, in place
        losses.append(float(round_loss) / cfg.gradient_steps)
    envs.close()
    return DQNResult(q_net, np.asarray(returns), np.asarray(ends, dtype=np.int64), np.asarray(losses), step)


def evaluate_q(env_id: str, q_net: nn.Module, n_episodes: int, seed: int, env_kwargs: dict | None = None) -> np.ndarray:
    """Returns of ``n_episodes`` greedy episodes (one per copy), shape (n_episodes,)."""
    envs = make_vec_env(env_id, n_episodes, seed, **(env_kwargs or {}))
    out = evaluate(envs, greedy(q_net))
    envs.close()
    return out
