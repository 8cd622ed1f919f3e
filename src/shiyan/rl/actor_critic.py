r"""Actor-critic methods (Chapter 10 of Shiyu Zhao's book): QAC, A2C, off-policy actor-critic with
importance sampling, and the deterministic policy gradient.

**Policy gradient.** For a policy $\pi(a \mid s, \theta)$ and the objective $J(\theta) = \sum_s \rho_0(s) v_\pi(s)$,
the policy gradient theorem gives

$$\nabla_\theta J = \sum_s \eta(s) \sum_a \pi(a|s,\theta)\, \nabla_\theta \ln \pi(a|s,\theta)\, q_\pi(s, a),
\qquad \eta^\top = \rho_0^\top (I - \gamma P_\pi)^{-1},$$

with $\eta$ the discounted state visitation. For the *tabular softmax* policy
$\pi(a|s) = e^{\theta_{sa}} / \sum_b e^{\theta_{sb}}$ this is
$\partial J / \partial \theta_{sa} = \eta(s)\, \pi(a|s)\, [q_\pi(s,a) - v_\pi(s)]$ (:func:`exact_policy_gradient`,
from the model), and the Monte Carlo estimator $\sum_t \gamma^t\, \nabla \ln \pi(a_t|s_t)\, g_t$
(:func:`reinforce_gradient`) is unbiased for it.

**Actor-critic** replaces $q_\pi$ by a learned critic:

* *QAC* (:func:`qac`, Algorithm 10.1): critic by Sarsa on $q(s,a)$, actor
  $\theta \leftarrow \theta + \alpha_\theta\, \nabla \ln \pi(a_t|s_t)\, q(s_t, a_t)$;
* *A2C* (:func:`a2c_loss`, :func:`train_a2c`, Algorithm 10.2): subtract the baseline $v(s)$, which leaves
  the gradient unbiased and lowers its variance: $\theta \leftarrow \theta + \alpha\, \nabla \ln \pi(a|s)\, \hat A$
  with the advantage $\hat A$ from :mod:`shiyan.rl.advantages` (the TD error, $n$-step, or GAE), plus an
  entropy bonus $\beta H(\pi(\cdot|s))$; data come from the shared collector over $N$ environment copies;
* *off-policy actor-critic* (:func:`off_policy_ac`, Algorithm 10.3): samples from a behaviour policy
  $\beta$ are reweighted by the importance ratio $\rho = \pi(a|s) / \beta(a|s)$, since
  $\mathbb E_{A \sim \beta}[\rho(A) f(A)] = \mathbb E_{A \sim \pi}[f(A)]$ (:func:`importance_sampling_mean`);
  both the critic's TD step and the actor's step are multiplied by $\rho$.

**Deterministic policy gradient** (Section 10.4). For a deterministic policy $a = \mu(s, \theta)$,
$\nabla_\theta J = \mathbb E_{s}\big[\nabla_\theta \mu(s)\, \nabla_a q(s, a)|_{a = \mu(s)}\big]$, which autograd
computes as the gradient of $-\text{mean}_s\, q(s, \mu(s))$ (:func:`dpg_actor_loss`). The critic regresses on
$r + \gamma (1 - \text{terminated})\, q(s', \mu(s'))$ (:func:`dpg_critic_target`); data may come from any
behaviour policy (off-policy), e.g. $\mu$ plus noise. DDPG builds on these pieces.

Every learner gets its data from the shared collector :func:`shiyan.rl.collect.collect` over a
gymnasium vector environment (:func:`shiyan.rl.envs.make_vec_env`): the tabular ones on the grid world
(``make_vec_env("GridWorld", ...)``), drawing actions with an explicit ``np.random.Generator``; A2C on
CartPole with a ``torch.Generator``. Only :func:`reinforce_gradient` and :func:`exact_policy_gradient`, which are
checked against each other, use the model $p(s'|s,a)$ itself.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shiyan.rl.advantages import gae
from shiyan.rl.approx import mlp
from shiyan.rl.bellman import action_values, evaluate_policy, policy_model
from shiyan.rl.collect import Policy, collect, evaluate
from shiyan.rl.envs import make_vec_env
from shiyan.rl.gridworld import TabularMDP

__all__ = [
    "A2CConfig",
    "A2CResult",
    "ActorCritic",
    "TabularACResult",
    "a2c_loss",
    "dpg_actor_loss",
    "dpg_critic_target",
    "evaluate_actor",
    "exact_policy_gradient",
    "importance_sampling_mean",
    "objective",
    "off_policy_ac",
    "qac",
    "reinforce_gradient",
    "softmax_policy",
    "train_a2c",
]


# -- tabular softmax policies --------------------------------------------------------------------
def softmax_policy(theta: np.ndarray) -> np.ndarray:
    r"""$\pi(a|s) = e^{\theta_{sa}} / \sum_b e^{\theta_{sb}}$, shape (S, A)."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta must be a finite array of shape (S, A); got {theta.shape}")
    z = np.exp(theta - theta.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _check_rho0(rho0: np.ndarray | None, n_states: int) -> np.ndarray:
    if rho0 is None:
        return np.full(n_states, 1.0 / n_states)
    rho0 = np.asarray(rho0, dtype=np.float64)
    if rho0.shape != (n_states,) or np.any(rho0 < 0) or abs(rho0.sum() - 1) > 1e-9:
        raise ValueError(f"rho0 must be a distribution over {n_states} states")
    return rho0


def objective(mdp: TabularMDP, theta: np.ndarray, gamma: float, rho0: np.ndarray | None = None) -> float:
    r"""$J(\theta) = \sum_s \rho_0(s) v_{\pi_\theta}(s)$ (uniform $\rho_0$ by default)."""
    v = evaluate_policy(mdp.P, mdp.R, softmax_policy(theta), gamma)
    return float(_check_rho0(rho0, mdp.n_states) @ v)


def exact_policy_gradient(
    mdp: TabularMDP, theta: np.ndarray, gamma: float, rho0: np.ndarray | None = None
) -> np.ndarray:
    r"""$\partial J / \partial \theta_{sa} = \eta(s)\, \pi(a|s)\, [q_\pi(s,a) - v_\pi(s)]$ from the model, shape (S, A)."""
    pi = softmax_policy(theta)
    rho0 = _check_rho0(rho0, mdp.n_states)
    p_pi, _ = policy_model(mdp.P, mdp.R, pi)
    v = evaluate_policy(mdp.P, mdp.R, pi, gamma)
    q = action_values(mdp.P, mdp.R, v, gamma)
    eta = np.linalg.solve((np.eye(mdp.n_states) - gamma * p_pi).T, rho0)  # discounted visitation, (S,)
    return eta[:, None] * pi * (q - v[:, None])


def reinforce_gradient(
    mdp: TabularMDP,
    theta: np.ndarray,
    gamma: float,
    rng: np.random.Generator,
    *,
    n_episodes: int,
    horizon: int,
    rho0: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
) -> np.ndarray:
    r"""Monte Carlo policy-gradient samples $\sum_{t < H} \gamma^t\, \nabla_\theta \ln \pi(a_t|s_t)\, [g_t - b(s_t)]$, one per
    episode, shape (n_episodes, S, A); $g_t$ is the discounted return from $t$ to the horizon $H$ and $b$ an
    optional per-state ``baseline`` (S,) (0 by default). Their mean estimates :func:`exact_policy_gradient` up to
    a bias of order $\gamma^H$ whatever the baseline, since $\mathbb E_{a \sim \pi}[\nabla \ln \pi(a|s)] = 0$; a good
    baseline ($b = v_\pi$, the advantage form of A2C) lowers the variance."""
    b_s = np.zeros(mdp.n_states) if baseline is None else np.asarray(baseline, dtype=np.float64)
    if b_s.shape != (mdp.n_states,) or not np.all(np.isfinite(b_s)):
        raise ValueError(f"baseline must be a finite array of shape ({mdp.n_states},)")
    pi = softmax_policy(theta)
    rho0 = _check_rho0(rho0, mdp.n_states)
    n_s, n_a = pi.shape
    cdf_pi, cdf_p, cdf_0 = np.cumsum(pi, axis=1), np.cumsum(mdp.P, axis=2), np.cumsum(rho0)
    b = n_episodes
    s = np.minimum((cdf_0[None, :] <= rng.random(b)[:, None]).sum(axis=1), n_s - 1)  # (B,)
    alive = np.ones(b, dtype=bool)
    states, actions, rewards, masks = [], [], [], []
    for _ in range(horizon):
        a = np.minimum((cdf_pi[s] <= rng.random(b)[:, None]).sum(axis=1), n_a - 1)  # (B,)
        states.append(s)
        actions.append(a)
        rewards.append(np.where(alive, mdp.R[s, a], 0.0))
        masks.append(alive.copy())
        s_next = np.minimum((cdf_p[s, a] <= rng.random(b)[:, None]).sum(axis=1), n_s - 1)
        alive = alive & ~mdp.terminal[s_next]
        s = np.where(alive, s_next, 0)
    grads = np.zeros((b, n_s, n_a))
    g = np.zeros(b)
    rows = np.arange(b)
    for t in range(horizon - 1, -1, -1):
        g = rewards[t] + gamma * g  # g_t, (B,)
        st, at = states[t], actions[t]
        weight = np.where(masks[t], gamma**t * (g - b_s[st]), 0.0)  # (B,)
        score = -pi[st] * weight[:, None]  # d ln pi(a|s) / d theta_s. = e_a - pi(.|s), times the weight
        score[rows, at] += weight
        np.add.at(grads, (rows, st), score)
    return grads


# -- tabular actor-critic ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TabularACResult:
    """What a tabular actor-critic returns."""

    theta: np.ndarray
    """Final policy parameters, shape (S, A)."""
    critic: np.ndarray
    """Final critic: q (S, A) for QAC, v (S,) for off-policy AC."""
    history: np.ndarray
    """Snapshots of theta every ``record_every`` steps, shape (K, S, A)."""
    history_steps: np.ndarray
    """Step count of every snapshot, shape (K,)."""


def _sample_rows(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: row ``i`` of ``probs`` (N, A) sampled with the uniform ``u[i]``, shape (N,)."""
    return np.minimum((np.cumsum(probs, axis=1) <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _softmax_row(theta_s: np.ndarray) -> np.ndarray:
    """:func:`softmax_policy` of one state's preferences (A,), without the checks (inner loops)."""
    z = np.exp(theta_s - theta_s.max())
    return z / z.sum()


def _score(pi_s: np.ndarray, a: int) -> np.ndarray:
    r"""$\nabla_{\theta_s} \ln \pi(a|s) = e_a - \pi(\cdot|s)$ for the tabular softmax policy, shape (A,)."""
    score = -pi_s
    score[a] += 1.0
    return score


def _discrete_spaces(envs: gym.vector.VectorEnv) -> tuple[int, int]:
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if not isinstance(obs_space, gym.spaces.Discrete) or not isinstance(act_space, gym.spaces.Discrete):
        raise ValueError("envs must have discrete observations (states) and discrete actions, like GridWorld")
    return int(obs_space.n), int(act_space.n)


def _check_positive(**kwargs: int) -> None:
    for name, x in kwargs.items():
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ValueError(f"{name} must be a positive integer; got {x!r}")


def qac(
    envs: gym.vector.VectorEnv,
    gamma: float,
    rng: np.random.Generator,
    *,
    alpha_theta: float = 0.1,
    alpha_w: float = 0.1,
    n_steps: int = 30_000,
    record_every: int = 10_000,
) -> TabularACResult:
    r"""QAC (Algorithm 10.1) with a tabular softmax actor and a Sarsa critic on a vector environment with
    discrete states, e.g. ``make_vec_env("GridWorld", N, seed, max_episode_steps=30)``.

    Data come from the shared collector, one step of the $N$ copies at a time, with actions drawn from the
    current $\pi_\theta$; then, copy by copy, with $a' \sim \pi_\theta(\cdot|s')$ drawn afresh,
    $q(s,a) \mathrel{+}= \alpha_w [r + \gamma (1 - \text{terminated})\, q(s',a') - q(s,a)]$ (critic) and
    $\theta_s \mathrel{+}= \alpha_\theta \nabla \ln \pi(a|s)\, q(s,a)$ (actor). A truncated step (time limit)
    keeps its bootstrap. ``n_steps`` counts transitions over all copies."""
    n_s, n_a = _discrete_spaces(envs)
    _check_positive(n_steps=n_steps, record_every=record_every)
    theta, q = np.zeros((n_s, n_a)), np.zeros((n_s, n_a))

    def behave(obs: torch.Tensor) -> tuple[np.ndarray, dict]:  # a ~ pi_theta(.|s) for every copy
        return _sample_rows(softmax_policy(theta[obs.numpy()]), rng.random(obs.shape[0])), {}

    hist, steps, count = [theta.copy()], [0], 0
    obs, _ = envs.reset()
    while count < n_steps:
        roll = collect(envs, behave, 1, obs)
        obs = roll.last_obs
        s_all, a_all, r_all = roll.obs[0].numpy(), roll.actions[0].numpy(), roll.rewards[0].numpy()
        s2_all, term_all = roll.next_obs[0].numpy(), roll.terminated[0].numpy()
        for s, a, r, s2, term in zip(s_all, a_all, r_all, s2_all, term_all, strict=True):
            a2 = _sample_rows(_softmax_row(theta[s2])[None], rng.random(1))[0]  # a' ~ pi(.|s'), drawn afresh
            target = r if term else r + gamma * q[s2, a2]
            q[s, a] += alpha_w * (target - q[s, a])  # critic: Sarsa
            pi_s = _softmax_row(theta[s])
            theta[s] += alpha_theta * _score(pi_s, a) * q[s, a]  # actor
            count += 1
            if count % record_every == 0:
                hist.append(theta.copy())
                steps.append(count)
    return TabularACResult(theta, q, np.array(hist), np.array(steps, dtype=np.int64))


def importance_sampling_mean(f: np.ndarray, target_probs: np.ndarray, behaviour_probs: np.ndarray) -> float:
    r"""$\frac1n \sum_i \frac{p_\pi(x_i)}{p_\beta(x_i)} f(x_i)$ for samples $x_i \sim \beta$: an unbiased estimate of $\mathbb E_\pi[f]$."""
    f, pt, pb = (np.asarray(x, dtype=np.float64) for x in (f, target_probs, behaviour_probs))
    if not (f.shape == pt.shape == pb.shape) or f.ndim != 1:
        raise ValueError("f, target_probs and behaviour_probs must be 1-D of the same length")
    if np.any(pb <= 0):
        raise ValueError("behaviour_probs must be positive where samples were drawn")
    return float(np.mean(pt / pb * f))


def off_policy_ac(
    envs: gym.vector.VectorEnv,
    behaviour: np.ndarray,
    gamma: float,
    rng: np.random.Generator,
    *,
    alpha_theta: float = 0.1,
    alpha_w: float = 0.1,
    n_steps: int = 100_000,
    record_every: int = 10_000,
) -> TabularACResult:
    r"""Off-policy actor-critic (Algorithm 10.3) on a vector environment with discrete states. The behaviour
    policy $\beta$ does not change, so the collector gathers all its transitions in one call ($N$ copies,
    ``n_steps`` transitions in all); the updates then run along them in time order. With
    $\rho = \pi(a|s)/\beta(a|s)$ and $\delta = r + \gamma (1 - \text{terminated})\, v(s') - v(s)$, the critic steps
    $v(s) \mathrel{+}= \alpha_w \rho \delta$ and the actor $\theta_s \mathrel{+}= \alpha_\theta \rho \delta\, \nabla \ln \pi(a|s)$."""
    n_s, n_a = _discrete_spaces(envs)
    _check_positive(n_steps=n_steps, record_every=record_every)
    behaviour = np.asarray(behaviour, dtype=np.float64)
    if behaviour.shape != (n_s, n_a) or np.any(behaviour <= 0):
        raise ValueError("behaviour must be a policy of shape (S, A) with every action possible")
    theta, v = np.zeros((n_s, n_a)), np.zeros(n_s)

    def behave(obs: torch.Tensor) -> tuple[np.ndarray, dict]:  # a ~ beta(.|s) for every copy
        return _sample_rows(behaviour[obs.numpy()], rng.random(obs.shape[0])), {}

    obs, _ = envs.reset()
    roll = collect(envs, behave, -(-n_steps // envs.num_envs), obs)
    flat = roll.flat()  # time-major: the copies' t-th transitions, then their (t+1)-th
    data = [flat[k].numpy()[:n_steps] for k in ("obs", "actions", "rewards", "next_obs", "terminated")]
    hist, steps = [theta.copy()], [0]
    for t, (s, a, r, s2, term) in enumerate(zip(*data, strict=True)):
        pi_s = _softmax_row(theta[s])
        rho = pi_s[a] / behaviour[s, a]  # importance weight
        delta = (r if term else r + gamma * v[s2]) - v[s]  # TD error (advantage estimate)
        v[s] += alpha_w * rho * delta
        theta[s] += alpha_theta * rho * delta * _score(pi_s, a)
        if (t + 1) % record_every == 0:
            hist.append(theta.copy())
            steps.append(t + 1)
    return TabularACResult(theta, v, np.array(hist), np.array(steps, dtype=np.int64))


# -- deterministic policy gradient ---------------------------------------------------------------
def dpg_actor_loss(actor: nn.Module, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    r"""$-\frac1B \sum_s q(s, \mu(s))$: its gradient in the actor's parameters is minus the DPG, a scalar.
    ``critic(obs, action)`` returns (B,) or (B, 1)."""
    return -critic(obs, actor(obs)).mean()


def dpg_critic_target(
    critic_next: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    r"""$y = r + \gamma (1 - \text{terminated})\, q(s', \mu(s'))$ from ``critic_next`` $= q(s', \mu(s'))$, shape (B,)."""
    critic_next = critic_next.reshape(rewards.shape)
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * critic_next


# -- A2C -------------------------------------------------------------------------------------------
class ActorCritic(nn.Module):
    """Separate actor (logits over discrete actions) and critic ($\\hat v(s)$) MLPs with tanh hidden layers,
    orthogonally initialised as in SB3 (gain $\\sqrt2$; 0.01 on the policy output, 1 on the value output)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        g = float(np.sqrt(2.0))
        self.actor = mlp(
            (obs_dim, *hidden, n_actions), generator, activation=nn.Tanh, orthogonal_gain=g, last_gain=0.01
        )
        self.critic = mlp((obs_dim, *hidden, 1), generator, activation=nn.Tanh, orthogonal_gain=g, last_gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, A) and values (B,)."""
        return self.actor(obs), self.critic(obs).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def policy(self, generator: torch.Generator) -> Policy:
        """A collector policy sampling $a \\sim \\pi(\\cdot|s)$ with ``generator``."""

        def act(obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
            probs = torch.softmax(self.actor(obs), dim=-1)  # (N, A)
            return torch.multinomial(probs, 1, generator=generator).squeeze(1), {}

        return act

    def greedy(self) -> Policy:
        return lambda obs: (self.actor(obs).argmax(dim=-1), {})


@dataclasses.dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters of :func:`train_a2c` (defaults: SB3's A2C defaults with 8 copies, rl-zoo's CartPole setting)."""

    total_steps: int = 200_000
    """Environment steps (summed over copies)."""
    n_envs: int = 8
    """Environment copies."""
    n_steps: int = 5
    """Steps per copy between updates."""
    gamma: float = 0.99
    """Discount rate."""
    gae_lambda: float = 1.0
    """GAE lambda (1: n-step returns bootstrapped at the rollout's end; 0: the TD error)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the critic's squared error."""
    lr: float = 7e-4
    """RMSprop learning rate."""
    max_grad_norm: float = 0.5
    """Gradient-norm clipping threshold."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the actor and of the critic."""
    baseline: bool = True
    """Subtract the critic's $\\hat v(s)$ from the return (False: REINFORCE-style weights, critic used only to bootstrap)."""

    def __post_init__(self) -> None:
        for name in ("total_steps", "n_envs", "n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not 0 <= self.gamma < 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gamma must lie in [0, 1) and gae_lambda in [0, 1]; got {self.gamma}, {self.gae_lambda}")
        if self.lr <= 0 or self.ent_coef < 0 or self.vf_coef < 0:
            raise ValueError("lr must be positive and ent_coef, vf_coef non-negative")


@dataclasses.dataclass
class A2CResult:
    """What :func:`train_a2c` returns."""

    model: ActorCritic
    """The trained actor and critic."""
    episode_returns: np.ndarray
    """Returns of training episodes in the order they ended, shape (E,)."""
    episode_end_steps: np.ndarray
    """Global step at which each ended, shape (E,)."""
    n_steps: int
    """Environment steps taken."""


def a2c_loss(
    model: ActorCritic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    ent_coef: float,
    vf_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""$-\text{mean}[\ln \pi(a|s) \hat A] - \beta\, \text{mean}[H(\pi(\cdot|s))] + c_v\, \text{mean}[(\hat G - \hat v(s))^2]$
    over a flat batch; ``advantages`` and ``returns`` carry no gradient. Returns the loss and its parts."""
    logits, values = model(obs)  # (B, A), (B,)
    logp_all = F.log_softmax(logits, dim=-1)  # (B, A)
    logp = logp_all.gather(1, actions.long().unsqueeze(1)).squeeze(1)  # (B,)
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    pg = -(logp * advantages.detach()).mean()
    vf = F.mse_loss(values, returns.detach())
    loss = pg - ent_coef * entropy + vf_coef * vf
    return loss, {"policy": float(pg.detach()), "value": float(vf.detach()), "entropy": float(entropy.detach())}


def train_a2c(
    env_id: str,
    cfg: A2CConfig,
    seed: int,
    *,
    generator: torch.Generator,
    env_kwargs: dict | None = None,
) -> A2CResult:
    """Synchronous advantage actor-critic on ``env_id`` (flat box observations, discrete actions)."""
    envs = make_vec_env(env_id, cfg.n_envs, seed, **(env_kwargs or {}))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if len(obs_space.shape) != 1 or not hasattr(act_space, "n"):
        raise ValueError("train_a2c needs flat box observations and a discrete action space")
    model = ActorCritic(obs_space.shape[0], int(act_space.n), cfg.hidden, generator)
    opt = torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-5)
    policy = model.policy(generator)
    obs, _ = envs.reset()
    returns, ends, step = [], [], 0
    while step < cfg.total_steps:
        roll = collect(envs, policy, cfg.n_steps, obs)
        obs = roll.last_obs
        returns.extend(roll.episode_returns.tolist())
        ends.extend((roll.episode_end_steps + step).tolist())
        step += cfg.n_steps * cfg.n_envs
        with torch.no_grad():
            values = model.value(roll.obs)  # (T, N)
            next_values = model.value(roll.next_obs)  # (T, N), the true s_{t+1}
        adv, ret = gae(roll.rewards, values, next_values, roll.terminated, roll.truncated, cfg.gamma, cfg.gae_lambda)
        weights = adv if cfg.baseline else ret
        loss, _ = a2c_loss(
            model,
            roll.obs.flatten(0, 1),
            roll.actions.flatten(0, 1),
            weights.flatten(),
            ret.flatten(),
            cfg.ent_coef,
            cfg.vf_coef,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
    envs.close()
    return A2CResult(model, np.asarray(returns), np.asarray(ends, dtype=np.int64), step)


def evaluate_actor(
    env_id: str, model: ActorCritic, n_episodes: int, seed: int, env_kwargs: dict | None = None
) -> np.ndarray:
    """Returns of ``n_episodes`` greedy episodes (one per copy), shape (n_episodes,)."""
    envs = make_vec_env(env_id, n_episodes, seed, **(env_kwargs or {}))
    out = evaluate(envs, model.greedy())
    envs.close()
    return out
