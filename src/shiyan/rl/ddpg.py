r"""Deep deterministic policy gradient (DDPG; Silver et al., 2014; Lillicrap et al., 2016).

**The deterministic policy gradient theorem.** For a deterministic policy $a = \mu_\theta(s)$ and the
objective $J(\theta) = \mathbb E_{s_0}[v_{\mu}(s_0)]$, Silver et al. (2014) show that

$$\nabla_\theta J(\theta) = \mathbb E_{s \sim \rho^\mu}\Big[\nabla_\theta \mu_\theta(s)\, \nabla_a Q^\mu(s, a)\big|_{a = \mu_\theta(s)}\Big],$$

the chain rule through the critic: move the action in the direction that raises $Q$, then move
$\theta$ so that $\mu_\theta(s)$ follows. No integral over actions is needed, so the gradient can be
estimated from transitions of *any* behaviour policy (off-policy). With a learned critic
$Q_w \approx Q^\mu$, autograd computes the sample estimate as the gradient of
$-\frac1B \sum_s Q_w(s, \mu_\theta(s))$ (:func:`shiyan.rl.actor_critic.dpg_actor_loss`).

**DDPG** (Lillicrap et al., 2016) makes this work with deep networks:

* a replay buffer (:class:`shiyan.rl.buffer.ReplayBuffer`) of transitions $(s, a, r, s', \text{terminated})$;
* *target networks* $\mu_{\theta'}, Q_{w'}$ that trail the learned ones by soft (Polyak) updates
  $\theta' \leftarrow \tau \theta + (1 - \tau)\theta'$, $w' \leftarrow \tau w + (1 - \tau) w'$ (:func:`soft_update`);
* the critic regresses on $y = r + \gamma (1 - \text{terminated})\, Q_{w'}(s', \mu_{\theta'}(s'))$ with the
  squared loss $\frac1B \sum (y - Q_w(s, a))^2$ (:func:`critic_loss`). Only a *terminated* transition drops
  the bootstrap; a time-limit truncation (Pendulum's 200 steps) keeps it, with $s'$ the true final state;
* exploration by adding noise to the deterministic action, $a = \text{clip}(\mu_\theta(s) + \epsilon)$:
  independent Gaussian noise $\epsilon \sim \mathcal N(0, \sigma^2 I)$ (:func:`gaussian_noise`) or the
  temporally correlated Ornstein--Uhlenbeck process of the paper (:class:`OUNoise`),
  $dx = \theta_{\text{ou}}(\mu_{\text{ou}} - x)\,dt + \sigma\, dW$, discretised (Euler--Maruyama) as
  $x_{k+1} = x_k + \theta_{\text{ou}}(\mu_{\text{ou}} - x_k)\Delta t + \sigma \sqrt{\Delta t}\, \xi_k$ with
  $\xi_k \sim \mathcal N(0, I)$; its stationary law is $\mathcal N(\mu_{\text{ou}}, \sigma^2 / (2\theta_{\text{ou}}))$
  (for small $\Delta t$), and the state is reset to $\mu_{\text{ou}}$ at every episode end;
* action bounds: the actor's output is squashed, $\mu_\theta(s) = c + h \odot \tanh(f_\theta(s))$ with
  $c = (\text{high} + \text{low})/2$ and $h = (\text{high} - \text{low})/2$ (:class:`Actor`);
* a warm-up of ``learning_starts`` steps of uniformly random actions before the first update.

:func:`train_ddpg` is the whole loop over the shared collector (:func:`shiyan.rl.collect.collect`), one
environment step then ``gradient_steps`` updates, as Stable-Baselines3's DDPG does by default.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from shiyan.rl.actor_critic import dpg_actor_loss, dpg_critic_target
from shiyan.rl.approx import mlp
from shiyan.rl.buffer import Batch, ReplayBuffer
from shiyan.rl.collect import Policy, collect, evaluate
from shiyan.rl.envs import make_vec_env

__all__ = [
    "Actor",
    "Critic",
    "DDPGConfig",
    "DDPGResult",
    "OUNoise",
    "critic_loss",
    "critic_targets",
    "ddpg_update",
    "evaluate_ddpg",
    "gaussian_noise",
    "noisy_policy",
    "soft_update",
    "train_ddpg",
]


# -- networks ----------------------------------------------------------------------------------------
class Actor(nn.Module):
    r"""$\mu_\theta(s) = c + h \odot \tanh(f_\theta(s))$: a ReLU MLP squashed into the box $[\text{low}, \text{high}]$."""

    def __init__(
        self,
        obs_dim: int,
        low: np.ndarray | torch.Tensor,
        high: np.ndarray | torch.Tensor,
        hidden: tuple[int, ...],
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        low_t = torch.as_tensor(np.asarray(low, dtype=np.float32)).reshape(-1)
        high_t = torch.as_tensor(np.asarray(high, dtype=np.float32)).reshape(-1)
        if low_t.shape != high_t.shape or not torch.all(torch.isfinite(low_t) & torch.isfinite(high_t)):
            raise ValueError("low and high must be finite arrays of the same shape")
        if not torch.all(high_t > low_t):
            raise ValueError("high must exceed low in every action dimension")
        self.net = mlp((obs_dim, *hidden, low_t.numel()), generator)
        self.register_buffer("center", (high_t + low_t) / 2)  # (d,)
        self.register_buffer("half_range", (high_t - low_t) / 2)  # (d,)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.center + self.half_range * torch.tanh(self.net(obs))  # (B, d)


class Critic(nn.Module):
    r"""$Q_w(s, a)$: a ReLU MLP on the concatenation $[s; a]$, returning shape (B,)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        self.net = mlp((obs_dim + action_dim, *hidden, 1), generator)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)  # (B,)


# -- target networks ---------------------------------------------------------------------------------
def soft_update(target: nn.Module | Iterable[torch.Tensor], source: nn.Module | Iterable[torch.Tensor], tau: float):
    r"""In place, $\theta' \leftarrow \tau\theta + (1 - \tau)\theta'$ for every parameter pair; ``tau = 1`` copies."""
    if not 0.0 <= float(tau) <= 1.0 or math.isnan(float(tau)):
        raise ValueError(f"tau must lie in [0, 1]; got {tau}")
    tgt = list(target.parameters()) if isinstance(target, nn.Module) else list(target)
    src = list(source.parameters()) if isinstance(source, nn.Module) else list(source)
    if len(tgt) != len(src) or any(a.shape != b.shape for a, b in zip(tgt, src, strict=True)):
        raise ValueError("target and source must have parameters of the same shapes")
    with torch.no_grad():
        # lerp: theta' + tau (theta - theta') = tau theta + (1 - tau) theta'
        torch._foreach_lerp_(tgt, src, float(tau))


# -- exploration noise -------------------------------------------------------------------------------
def gaussian_noise(shape: tuple[int, ...], sigma: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    r"""$\epsilon \sim \mathcal N(0, \sigma^2 I)$ of the given shape (``sigma`` a scalar or per action dimension)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    sigma = torch.as_tensor(sigma, dtype=torch.float32)
    if torch.any(sigma < 0) or not torch.all(torch.isfinite(sigma)):
        raise ValueError(f"sigma must be finite and non-negative; got {sigma}")
    return sigma * torch.randn(shape, generator=generator)


class OUNoise:
    r"""Ornstein--Uhlenbeck noise for $N$ parallel episodes and $d$ action dimensions.

    $x_{k+1} = x_k + \theta(\mu - x_k)\Delta t + \sigma\sqrt{\Delta t}\,\xi_k$, $\xi_k \sim \mathcal N(0, I)$ drawn from
    ``generator``; :meth:`reset` puts the rows of finished episodes back to $\mu$.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator,
        *,
        mu: float = 0.0,
        theta: float = 0.15,
        sigma: float = 0.2,
        dt: float = 1e-2,
    ) -> None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
        for name, value in (("theta", theta), ("sigma", sigma), ("dt", dt)):
            if not math.isfinite(value) or value < 0 or (name != "sigma" and value == 0):
                raise ValueError(f"{name} must be positive (sigma non-negative) and finite; got {value}")
        if theta * dt >= 2:
            raise ValueError(f"theta * dt must be below 2 for a stable discretisation; got {theta * dt}")
        if not math.isfinite(mu):
            raise ValueError(f"mu must be finite; got {mu}")
        self.shape = tuple(int(s) for s in shape)
        self.generator = generator
        self.mu, self.theta, self.sigma, self.dt = float(mu), float(theta), float(sigma), float(dt)
        self.x = torch.full(self.shape, self.mu)
        """The current state $x_k$, shape ``shape`` (N, d)."""

    @property
    def stationary_std(self) -> float:
        r"""$\sigma / \sqrt{2\theta}$, the standard deviation of the continuous process's stationary law."""
        return self.sigma / math.sqrt(2 * self.theta)

    def sample(self) -> torch.Tensor:
        """Advance one step and return the new state $x_{k+1}$ (a copy), shape ``shape``."""
        xi = torch.randn(self.shape, generator=self.generator)  # (N, d)
        self.x = self.x + self.theta * (self.mu - self.x) * self.dt + self.sigma * math.sqrt(self.dt) * xi
        return self.x.clone()

    def reset(self, done: np.ndarray | torch.Tensor | None = None) -> None:
        """Reset the rows where ``done`` (shape (N,)) is true to $\\mu$, or every row when ``done`` is None."""
        if done is None:
            self.x = torch.full(self.shape, self.mu)
            return
        mask = torch.as_tensor(np.asarray(done), dtype=torch.bool)
        if mask.shape != self.shape[:1]:
            raise ValueError(f"done must have shape {self.shape[:1]}; got {tuple(mask.shape)}")
        self.x[mask] = self.mu


def noisy_policy(
    actor: Actor, noise: OUNoise | float, generator: torch.Generator, *, random_actions: bool = False
) -> Policy:
    r"""The behaviour policy $\text{clip}(\mu_\theta(s) + \epsilon, \text{low}, \text{high})$ as a collector policy:
    $\epsilon$ from ``noise`` (an :class:`OUNoise`, or a Gaussian standard deviation, both in action units),
    or uniformly random actions in the box when ``random_actions`` (the warm-up)."""
    low, high = actor.center - actor.half_range, actor.center + actor.half_range  # (d,), (d,)
    width, d = high - low, actor.center.numel()
    if not isinstance(noise, OUNoise):
        gaussian_noise((0, d), float(noise), generator)  # validates sigma once, draws nothing
        sigma = float(noise)

    def policy(obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        n = obs.shape[0]
        if random_actions:
            return torch.rand((n, d), generator=generator).mul_(width).add_(low), {}  # (N, d) uniform in the box
        if isinstance(noise, OUNoise):
            eps = noise.sample()  # (N, d)
        else:
            eps = torch.randn((n, d), generator=generator).mul_(sigma)  # (N, d), N(0, sigma^2 I)
        return torch.clamp(actor(obs).add_(eps), low, high), {}

    return policy


# -- losses ------------------------------------------------------------------------------------------
def critic_targets(next_q: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""$y = r + \gamma (1 - \text{terminated})\, Q_{w'}(s', \mu_{\theta'}(s'))$ from ``next_q`` (B,), shape (B,).

    ``terminated`` is the only mask: a truncated transition is bootstrapped like any other."""
    if next_q.shape != rewards.shape or terminated.shape != rewards.shape or rewards.ndim != 1:
        raise ValueError(
            f"next_q, rewards and terminated must share one shape (B,); got {tuple(next_q.shape)}, "
            f"{tuple(rewards.shape)}, {tuple(terminated.shape)}"
        )
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma}")
    return dpg_critic_target(next_q, rewards, terminated, gamma)


def critic_loss(
    critic: Critic, target_actor: Actor, target_critic: Critic, batch: Batch, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""$\frac1B\sum (y - Q_w(s, a))^2$ with no gradient through $y$; returns (loss, TD errors $y - Q_w(s, a)$ (B,))."""
    with torch.no_grad():
        next_q = target_critic(batch.next_obs, target_actor(batch.next_obs))  # (B,)
        y = critic_targets(next_q, batch.rewards, batch.terminated, gamma)  # (B,)
    td = y - critic(batch.obs, batch.actions)  # (B,)
    return td.pow(2).mean(), td.detach()


def ddpg_update(
    actor: Actor,
    critic: Critic,
    target_actor: Actor,
    target_critic: Critic,
    actor_opt: torch.optim.Optimizer,
    critic_opt: torch.optim.Optimizer,
    batch: Batch,
    gamma: float,
    tau: float,
) -> float:
    """One DDPG step on ``batch``: critic step, actor step on $-Q_w(s, \\mu_\\theta(s))$, soft target updates.
    Returns the mean squared TD error before the step."""
    loss_q, _ = critic_loss(critic, target_actor, target_critic, batch, gamma)
    critic_opt.zero_grad(set_to_none=True)
    loss_q.backward()
    critic_opt.step()
    actor_params = list(actor.parameters())
    loss_pi = dpg_actor_loss(actor, critic, batch.obs)
    actor_opt.zero_grad(set_to_none=True)
    loss_pi.backward(inputs=actor_params)  # gradients for theta only: w gets none from the actor step
    actor_opt.step()
    # both soft updates in one fused call: (w', theta') <- tau (w, theta) + (1 - tau) (w', theta')
    soft_update([*target_critic.parameters(), *target_actor.parameters()], [*critic.parameters(), *actor_params], tau)
    return float(loss_q.detach())


# -- training ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DDPGConfig:
    """Hyperparameters of :func:`train_ddpg` (defaults: RL Baselines3 Zoo's Pendulum-v1 DDPG settings)."""

    total_steps: int = 20_000
    """Environment steps (summed over copies)."""
    n_envs: int = 1
    """Environment copies stepped together."""
    buffer_size: int = 200_000
    """Replay buffer capacity."""
    learning_starts: int = 10_000
    """Steps of uniformly random actions before the first update."""
    batch_size: int = 256
    """Transitions per gradient step."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic."""
    gamma: float = 0.98
    """Discount rate."""
    tau: float = 5e-3
    """Soft-update rate of the target networks."""
    train_freq: int = 1
    """Environment steps (per copy) between training rounds."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    noise: str = "gaussian"
    """Exploration noise: "gaussian" or "ou" (Ornstein-Uhlenbeck)."""
    noise_sigma: float = 0.1
    """Noise scale in action units (the Gaussian std or the OU sigma)."""
    ou_theta: float = 0.15
    """Mean-reversion rate of the OU process."""
    ou_dt: float = 1e-2
    """Time step of the OU discretisation."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden layer widths of actor and critic."""

    def __post_init__(self) -> None:
        for name in ("total_steps", "n_envs", "buffer_size", "batch_size", "train_freq", "gradient_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0; got {self.learning_starts}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must lie in [0, 1); got {self.gamma}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must lie in (0, 1]; got {self.tau}")
        if self.actor_lr <= 0 or self.critic_lr <= 0:
            raise ValueError(f"actor_lr and critic_lr must be positive; got {self.actor_lr}, {self.critic_lr}")
        if self.noise not in ("gaussian", "ou"):
            raise ValueError(f"noise must be 'gaussian' or 'ou'; got {self.noise!r}")
        if self.noise_sigma < 0 or self.ou_theta <= 0 or self.ou_dt <= 0:
            raise ValueError("noise_sigma must be >= 0, ou_theta and ou_dt positive")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive widths; got {self.hidden}")


@dataclasses.dataclass
class DDPGResult:
    """What :func:`train_ddpg` returns."""

    actor: Actor
    """The trained actor $\\mu_\\theta$."""
    critic: Critic
    """The trained critic $Q_w$."""
    episode_returns: np.ndarray
    """Returns of the training episodes in the order they ended, shape (E,)."""
    episode_end_steps: np.ndarray
    """Global environment step at which each ended, shape (E,)."""
    td_losses: np.ndarray
    """Mean squared TD error of every gradient step, shape (U,)."""
    n_steps: int
    """Environment steps taken."""


def train_ddpg(
    env_id: str,
    cfg: DDPGConfig,
    seed: int,
    *,
    rng: np.random.Generator,
    generator: torch.Generator,
    env_kwargs: dict | None = None,
) -> DDPGResult:
    """Train DDPG on ``env_id`` (flat box observations and actions) for ``cfg.total_steps`` steps.
    ``rng`` draws replay mini-batches; ``generator`` initialises the networks and draws the noise."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}")
    envs = make_vec_env(env_id, cfg.n_envs, seed, **(env_kwargs or {}))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if len(obs_space.shape) != 1 or len(getattr(act_space, "shape", ()) or ()) != 1 or not hasattr(act_space, "low"):
        envs.close()
        raise ValueError("train_ddpg needs flat box observations and a flat box action space")
    obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
    actor = Actor(obs_dim, act_space.low, act_space.high, cfg.hidden, generator)
    critic = Critic(obs_dim, act_dim, cfg.hidden, generator)
    target_actor = copy.deepcopy(actor).requires_grad_(False)
    target_critic = copy.deepcopy(critic).requires_grad_(False)
    # the fused kernel runs the same Adam update as the default one, with far less per-step overhead on a CPU
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, fused=True)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr, fused=True)
    buffer = ReplayBuffer(cfg.buffer_size, obs_space.shape, (act_dim,), action_dtype=np.float32)
    ou = None
    if cfg.noise == "ou":
        ou = OUNoise((cfg.n_envs, act_dim), generator, theta=cfg.ou_theta, sigma=cfg.noise_sigma, dt=cfg.ou_dt)
    explore = noisy_policy(actor, ou if ou is not None else cfg.noise_sigma, generator)
    warmup = noisy_policy(actor, 0.0, generator, random_actions=True)
    obs, _ = envs.reset()
    returns, ends, losses, step = [], [], [], 0
    while step < cfg.total_steps:
        for _ in range(cfg.train_freq):
            roll = collect(envs, warmup if step < cfg.learning_starts else explore, 1, obs)
            obs = roll.last_obs
            # one step of every copy: the (1, N) leading dimensions drop to (N,) for the buffer
            buffer.add(roll.obs[0], roll.actions[0], roll.rewards[0], roll.next_obs[0], roll.terminated[0])
            if ou is not None:
                ou.reset(roll.dones[0].numpy())  # a fresh noise path for every new episode
            returns.extend(roll.episode_returns.tolist())
            ends.extend((roll.episode_end_steps + step).tolist())
            step += cfg.n_envs
        if step < cfg.learning_starts or step < cfg.batch_size:
            continue
        for _ in range(cfg.gradient_steps):
            batch = buffer.sample(cfg.batch_size, rng)
            losses.append(
                ddpg_update(
                    actor, critic, target_actor, target_critic, actor_opt, critic_opt, batch, cfg.gamma, cfg.tau
                )
            )
    envs.close()
    return DDPGResult(actor, critic, np.asarray(returns), np.asarray(ends, dtype=np.int64), np.asarray(losses), step)


def evaluate_ddpg(env_id: str, actor: Actor, n_episodes: int, seed: int, env_kwargs: dict | None = None) -> np.ndarray:
    """Returns of ``n_episodes`` noise-free episodes of $\\mu_\\theta$ (one per copy), shape (n_episodes,)."""
    envs = make_vec_env(env_id, n_episodes, seed, **(env_kwargs or {}))
    out = evaluate(envs, lambda obs: (actor(obs), {}))
    envs.close()
    return out
