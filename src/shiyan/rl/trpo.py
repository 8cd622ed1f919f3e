r"""Trust region policy optimisation (TRPO; Schulman et al., 2015) with a GAE critic (Schulman et al., 2016).

**The problem.** With samples from the current policy $\pi_{\theta_\text{old}}$ and advantage estimates
$\hat A_t$, TRPO maximises the importance-weighted *surrogate*

$$L(\theta) = \hat{\mathbb E}_t\Big[\frac{\pi_\theta(a_t \mid s_t)}{\pi_{\theta_\text{old}}(a_t \mid s_t)}\, \hat A_t\Big]
\quad \text{subject to} \quad \bar D_\text{KL}(\theta) = \hat{\mathbb E}_t\big[D_\text{KL}(\pi_{\theta_\text{old}}(\cdot|s_t)\,\|\,\pi_\theta(\cdot|s_t))\big] \le \delta,$$

whose gradient at $\theta_\text{old}$ is the policy gradient $g$, and whose constraint keeps the new
policy close enough that the surrogate's improvement is a real improvement of the return.

**The step.** Linearising $L$ and taking the second-order expansion of $\bar D_\text{KL}$ at $\theta_\text{old}$
(its value and gradient vanish there; its Hessian is the Fisher information matrix $F$) gives
$\max_d\, g^\top d$ s.t. $\frac12 d^\top F d \le \delta$, solved by $d = \beta x$ with

$$x = F^{-1} g, \qquad \beta = \sqrt{\frac{2\delta}{x^\top F x}},$$

so that $\frac12 d^\top F d = \delta$ exactly (:func:`max_step_size`). $F$ is never formed:

* the *Fisher-vector product* $F v = \nabla_\theta\big((\nabla_\theta \bar D_\text{KL})^\top v\big)$ comes from two
  backward passes (double backprop), plus damping $\lambda v$ for stability (:func:`fisher_vector_product`);
* $x$ is found by $k$ iterations of *conjugate gradient* on $F x = g$, which needs only products $F p$
  (:func:`conjugate_gradient`).

Because the quadratic model is only a model, a *backtracking line search* (:func:`line_search`) tries
$\theta_\text{old} + \alpha^j \beta x$ for $j = 0, 1, \dots$ and accepts the first point whose measured
$\bar D_\text{KL} \le \delta$ **and** whose surrogate improves, $L(\theta) - L(\theta_\text{old}) > 0$; if none
does, the policy is left unchanged. Every accepted update therefore satisfies the KL constraint on the
batch it was computed on.

**Policies** (:class:`CategoricalPolicy`, :class:`GaussianPolicy`) expose the parameters of their
distribution, log-probabilities and the closed-form KL divergences

$$D_\text{KL}(p \,\|\, q) = \sum_a p_a (\log p_a - \log q_a), \qquad
D_\text{KL}\big(\mathcal N(\mu_p, \sigma_p^2)\,\|\,\mathcal N(\mu_q, \sigma_q^2)\big) =
\sum_i \log\frac{\sigma_{q,i}}{\sigma_{p,i}} + \frac{\sigma_{p,i}^2 + (\mu_{p,i} - \mu_{q,i})^2}{2\sigma_{q,i}^2} - \frac12$$

(:func:`categorical_kl`, :func:`gaussian_kl`). The Gaussian KL is that of the joint distribution of the action
vector, a *sum* over its $d$ dimensions, so $\delta$ bounds the change of the whole policy however many
dimensions it has (sb3-contrib averages over the dimensions instead: see
:func:`shiyan.rl.reference.sb3_trpo_trust_region`).

**The critic** $\hat v_\phi(s)$ is regressed on the $\lambda$-returns $\hat A_t + \hat v(s_t)$ of GAE
(:func:`shiyan.rl.advantages.gae`) by a few epochs of Adam on mini-batches (:func:`fit_value`); the
advantages fed to the surrogate are normalised to mean 0 and standard deviation 1.

:func:`train_trpo` runs the loop on the shared collector (:func:`shiyan.rl.collect.collect`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from shiyan.rl.advantages import gae
from shiyan.rl.approx import mlp
from shiyan.rl.collect import Policy, collect, evaluate
from shiyan.rl.envs import make_vec_env

__all__ = [
    "CategoricalPolicy",
    "GaussianPolicy",
    "LineSearchResult",
    "TRPOConfig",
    "TRPOResult",
    "UpdateInfo",
    "categorical_kl",
    "conjugate_gradient",
    "evaluate_trpo",
    "fisher_vector_product",
    "fit_value",
    "flat_params",
    "gaussian_kl",
    "line_search",
    "max_step_size",
    "set_flat_params",
    "surrogate",
    "train_trpo",
    "trpo_update",
]


# -- KL divergences ----------------------------------------------------------------------------------
def categorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    r"""$D_\text{KL}(p \| q) = \sum_a p_a(\log p_a - \log q_a)$ for softmax(logits) rows, shape (B,)."""
    if logits_p.shape != logits_q.shape or logits_p.ndim < 1:
        raise ValueError(f"logits_p and logits_q must share one shape; got {logits_p.shape}, {logits_q.shape}")
    log_p = torch.log_softmax(logits_p, dim=-1)  # (B, A)
    log_q = torch.log_softmax(logits_q, dim=-1)  # (B, A)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    r"""KL between diagonal Gaussians, summed over the last dimension, shape (B,) (log-stds broadcast)."""
    if mean_p.shape != mean_q.shape:
        raise ValueError(f"mean_p and mean_q must share one shape; got {mean_p.shape}, {mean_q.shape}")
    var_p, var_q = torch.exp(2 * log_std_p), torch.exp(2 * log_std_q)
    per_dim = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5  # (B, d)
    return per_dim.sum(dim=-1)


# -- policies ----------------------------------------------------------------------------------------
class CategoricalPolicy(nn.Module):
    r"""$\pi_\theta(a|s) = \text{softmax}(f_\theta(s))_a$ with a tanh MLP $f_\theta$ (SB3's orthogonal initialisation)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        self.net = mlp(
            (obs_dim, *hidden, n_actions), generator, activation=nn.Tanh, orthogonal_gain=math.sqrt(2), last_gain=0.01
        )

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(logits,)`` of shape (B, A)."""
        return (self.net(obs),)

    @staticmethod
    def log_prob(params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        """$\\log \\pi(a|s)$, shape (B,)."""
        log_p = torch.log_softmax(params[0], dim=-1)  # (B, A)
        return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def kl(old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """$D_\\text{KL}(\\pi_\\text{old} \\| \\pi_\\text{new})$ per state, shape (B,)."""
        return categorical_kl(old[0], new[0])

    @staticmethod
    def sample(params: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        """One action per state, shape (B,), by inversion: the first $a$ whose cumulative probability exceeds
        $u \\sim \\mathcal U(0, 1)$ (cheaper than ``torch.multinomial`` for the few states of one step)."""
        logits = params[0]
        cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)  # (B, A)
        u = torch.rand((*logits.shape[:-1], 1), generator=generator)  # (B, 1)
        return (cdf < u).sum(dim=-1).clamp_(max=logits.shape[-1] - 1)  # (B,); the clamp guards cdf[-1] < 1 by rounding

    @staticmethod
    def mode(params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return params[0].argmax(dim=-1)


class GaussianPolicy(nn.Module):
    r"""$\pi_\theta(a|s) = \mathcal N(\mu_\theta(s), \text{diag}(\sigma^2))$: a tanh MLP mean and a state-independent
    learned $\log\sigma$ (initially ``log_std_init``). Sampled actions are clipped to the box by the learner only
    when stepping the environment; log-probabilities use the unclipped action, as in SB3."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        generator: torch.Generator,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp(
            (obs_dim, *hidden, action_dim), generator, activation=nn.Tanh, orthogonal_gain=math.sqrt(2), last_gain=0.01
        )
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(mean (B, d), log_std (d,))``."""
        return self.net(obs), self.log_std

    @staticmethod
    def log_prob(params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        r"""$\log \mathcal N(a; \mu, \sigma^2)$ summed over action dimensions, shape (B,)."""
        mean, log_std = params
        z = (actions - mean) / torch.exp(log_std)  # (B, d)
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    @staticmethod
    def kl(old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return gaussian_kl(old[0], old[1], new[0], new[1])

    @staticmethod
    def sample(params: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        mean, log_std = params
        return mean + torch.exp(log_std) * torch.randn(mean.shape, generator=generator)  # (B, d)

    @staticmethod
    def mode(params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return params[0]


TRPOPolicy = CategoricalPolicy | GaussianPolicy


# -- flat parameter vectors --------------------------------------------------------------------------
def flat_params(module: nn.Module) -> torch.Tensor:
    """All parameters of ``module`` concatenated into one vector, shape (P,)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def set_flat_params(module: nn.Module, flat: torch.Tensor) -> None:
    """Write the vector ``flat`` (P,) back into the parameters of ``module`` (in place)."""
    n = sum(p.numel() for p in module.parameters())
    if flat.shape != (n,):
        raise ValueError(f"flat must have shape ({n},); got {tuple(flat.shape)}")
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def _flat(grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


# -- Fisher-vector products, conjugate gradient, step size ------------------------------------------
def fisher_vector_product(
    policy: TRPOPolicy, obs: torch.Tensor, damping: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The map $v \mapsto (\nabla^2_\theta \bar D_\text{KL} + \lambda I) v$ at the current parameters $\theta_\text{old}$.

    $\bar D_\text{KL}(\theta) = \text{mean}_s D_\text{KL}(\pi_{\theta_\text{old}}(\cdot|s) \| \pi_\theta(\cdot|s))$ with the old
    distribution held constant; the first backward pass is kept differentiable, so each product costs one
    more backward pass of $(\nabla \bar D_\text{KL})^\top v$."""
    if damping < 0 or not math.isfinite(damping):
        raise ValueError(f"damping must be finite and non-negative; got {damping}")
    params = [p for p in policy.parameters() if p.requires_grad]
    new = policy.dist_params(obs)
    old = tuple(t.detach().clone() for t in new)
    kl = policy.kl(old, new).mean()
    grad_kl = _flat(torch.autograd.grad(kl, params, create_graph=True))  # (P,), differentiable in theta

    def fvp(v: torch.Tensor) -> torch.Tensor:
        if v.shape != grad_kl.shape:
            raise ValueError(f"v must have shape {tuple(grad_kl.shape)}; got {tuple(v.shape)}")
        hv = torch.autograd.grad(grad_kl @ v, params, retain_graph=True)
        return _flat(hv).detach() + damping * v  # (P,)

    return fvp


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, n_iters: int = 10, residual_tol: float = 1e-10
) -> torch.Tensor:
    r"""Approximate solution of $A x = b$ for symmetric positive definite $A$ given only $v \mapsto A v$.

    Starting from $x_0 = 0$, $r_0 = p_0 = b$: $\alpha_k = r_k^\top r_k / p_k^\top A p_k$,
    $x_{k+1} = x_k + \alpha_k p_k$, $r_{k+1} = r_k - \alpha_k A p_k$,
    $p_{k+1} = r_{k+1} + (r_{k+1}^\top r_{k+1} / r_k^\top r_k)\, p_k$; at most ``n_iters`` iterations, stopping
    once $r^\top r <$ ``residual_tol``. In exact arithmetic $n$ iterations solve an $n \times n$ system."""
    if b.ndim != 1:
        raise ValueError(f"b must be a vector; got shape {tuple(b.shape)}")
    if isinstance(n_iters, bool) or not isinstance(n_iters, int) or n_iters < 1:
        raise ValueError(f"n_iters must be a positive integer; got {n_iters!r}")
    if residual_tol < 0:
        raise ValueError(f"residual_tol must be non-negative; got {residual_tol}")
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(n_iters):
        if rr < residual_tol:
            break
        ap = matvec(p)  # (P,)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_next = r @ r
        p = r + (rr_next / rr) * p
        rr = rr_next
    return x


def max_step_size(x: torch.Tensor, fx: torch.Tensor, max_kl: float) -> float:
    r"""$\beta = \sqrt{2\delta / x^\top F x}$, so that the step $d = \beta x$ has $\frac12 d^\top F d = \delta$."""
    if max_kl <= 0:
        raise ValueError(f"max_kl must be positive; got {max_kl}")
    quad = float(x @ fx)
    if not quad > 0:
        raise ValueError(f"x^T F x must be positive; got {quad}")
    return math.sqrt(2 * max_kl / quad)


# -- surrogate and line search -----------------------------------------------------------------------
def surrogate(
    policy: TRPOPolicy, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor, old_log_prob: torch.Tensor
) -> torch.Tensor:
    r"""$L(\theta) = \text{mean}_t\, \exp(\log\pi_\theta(a_t|s_t) - \log\pi_{\theta_\text{old}}(a_t|s_t))\, \hat A_t$, a scalar."""
    log_prob = policy.log_prob(policy.dist_params(obs), actions)  # (B,)
    return (torch.exp(log_prob - old_log_prob) * advantages).mean()


@dataclasses.dataclass(frozen=True)
class LineSearchResult:
    """Outcome of :func:`line_search`."""

    params: torch.Tensor
    """The accepted parameter vector, or the starting one when nothing was accepted, shape (P,)."""
    accepted: bool
    """Whether a step was accepted."""
    fraction: float
    """$\\alpha^j$ of the accepted step (0 when none was)."""
    kl: float
    """Measured mean KL of the accepted point (0 when none was)."""
    improvement: float
    """Measured surrogate improvement of the accepted point (0 when none was)."""
    n_tries: int
    """Points evaluated."""


def line_search(
    evaluate_at: Callable[[torch.Tensor], tuple[float, float]],
    start: torch.Tensor,
    full_step: torch.Tensor,
    max_kl: float,
    shrink: float = 0.8,
    max_backtracks: int = 10,
) -> LineSearchResult:
    r"""Try $\theta_j = \theta_0 + \alpha^j d$ for $j = 0, \dots,$ ``max_backtracks`` $- 1$ (``shrink`` $= \alpha$) and
    return the first with ``evaluate_at`` $(\theta_j) = (L(\theta_j) - L(\theta_0),\ \bar D_\text{KL}(\theta_j))$ satisfying
    improvement $> 0$ and KL $\le$ ``max_kl``."""
    if not 0 < shrink < 1:
        raise ValueError(f"shrink must lie in (0, 1); got {shrink}")
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, int) or max_backtracks < 1:
        raise ValueError(f"max_backtracks must be a positive integer; got {max_backtracks!r}")
    if start.shape != full_step.shape:
        raise ValueError(f"start and full_step must share one shape; got {start.shape}, {full_step.shape}")
    fraction = 1.0
    for j in range(max_backtracks):
        candidate = start + fraction * full_step
        improvement, kl = evaluate_at(candidate)
        if math.isfinite(kl) and kl <= max_kl and improvement > 0:
            return LineSearchResult(candidate, True, fraction, kl, improvement, j + 1)
        fraction *= shrink
    return LineSearchResult(start.clone(), False, 0.0, 0.0, 0.0, max_backtracks)


@dataclasses.dataclass(frozen=True)
class UpdateInfo:
    """Diagnostics of one :func:`trpo_update`."""

    kl: float
    """Measured mean KL between the old and the new policy on the batch (0 if no step was accepted)."""
    improvement: float
    """Surrogate improvement $L(\\theta_\\text{new}) - L(\\theta_\\text{old})$."""
    expected_improvement: float
    """$g^\\top d$ for the full step $d$ (the linear model's prediction)."""
    accepted: bool
    """Whether the line search accepted a step."""
    fraction: float
    """Accepted fraction $\\alpha^j$ of the full step."""
    quad_kl: float
    """$\\frac12 d^\\top F d$ of the full step (equals $\\delta$ up to the damping term)."""


def trpo_update(
    policy: TRPOPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    *,
    max_kl: float = 0.01,
    cg_iters: int = 15,
    damping: float = 0.1,
    shrink: float = 0.8,
    max_backtracks: int = 10,
) -> UpdateInfo:
    r"""One TRPO step of ``policy`` (in place) on a batch: $g = \nabla L$, $x \approx F^{-1} g$ by CG,
    $d = \sqrt{2\delta / x^\top F x}\, x$, then the backtracking line search."""
    if advantages.shape != obs.shape[:1] or not torch.all(torch.isfinite(advantages)):
        raise ValueError(f"advantages must be finite with shape ({obs.shape[0]},); got {tuple(advantages.shape)}")
    params = [p for p in policy.parameters() if p.requires_grad]
    with torch.no_grad():
        old = tuple(t.detach().clone() for t in policy.dist_params(obs))  # clone: log_std is a Parameter
        old_log_prob = policy.log_prob(old, actions)  # (B,)
    loss = surrogate(policy, obs, actions, advantages, old_log_prob)
    g = _flat(torch.autograd.grad(loss, params))  # (P,)
    fvp = fisher_vector_product(policy, obs, damping)
    x = conjugate_gradient(fvp, g, cg_iters)  # (P,)
    fx = fvp(x)
    beta = max_step_size(x, fx, max_kl)
    full_step = beta * x  # (P,)
    start = flat_params(policy)
    base = float(loss.detach())

    def evaluate_at(theta: torch.Tensor) -> tuple[float, float]:
        set_flat_params(policy, theta)
        with torch.no_grad():
            new = policy.dist_params(obs)
            value = float((torch.exp(policy.log_prob(new, actions) - old_log_prob) * advantages).mean())
            kl = float(policy.kl(old, new).mean())
        return value - base, kl

    res = line_search(evaluate_at, start, full_step, max_kl, shrink, max_backtracks)
    set_flat_params(policy, res.params)
    return UpdateInfo(
        kl=res.kl,
        improvement=res.improvement,
        expected_improvement=float(g @ full_step),
        accepted=res.accepted,
        fraction=res.fraction,
        quad_kl=0.5 * beta**2 * float(x @ fx),
    )


# -- critic ------------------------------------------------------------------------------------------
def fit_value(
    value_net: nn.Module,
    opt: torch.optim.Optimizer,
    obs: torch.Tensor,
    targets: torch.Tensor,
    n_epochs: int,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    r"""Regress $\hat v_\phi(s)$ on ``targets`` (the $\lambda$-returns) by ``n_epochs`` passes of shuffled mini-batches
    of the squared error; returns the mean loss of the last epoch."""
    n = obs.shape[0]
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},); got {tuple(targets.shape)}")
    last = 0.0
    for _ in range(n_epochs):
        perm = torch.randperm(n, generator=generator)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = (value_net(obs[idx]).squeeze(-1) - targets[idx]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        last = total / n
    return last


# -- training ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TRPOConfig:
    """Hyperparameters of :func:`train_trpo` (defaults: those of sb3-contrib's ``TRPO``)."""

    total_steps: int = 100_000
    """Environment steps (summed over copies)."""
    n_envs: int = 1
    """Environment copies stepped together."""
    n_steps: int = 2048
    """Steps per copy in each rollout (one policy update per rollout)."""
    gamma: float = 0.99
    """Discount rate."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    max_kl: float = 0.01
    """The trust region radius delta on the mean KL."""
    cg_iters: int = 15
    """Conjugate-gradient iterations."""
    damping: float = 0.1
    """Damping added to the Fisher-vector product."""
    shrink: float = 0.8
    """Backtracking factor of the line search."""
    max_backtracks: int = 10
    """Points tried by the line search."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic."""
    critic_adam_eps: float = 1e-5
    """Adam's epsilon for the critic (SB3's actor-critic policies use 1e-5, not PyTorch's 1e-8)."""
    n_critic_updates: int = 10
    """Critic epochs per rollout."""
    batch_size: int = 128
    """Critic mini-batch size."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the policy and value networks (tanh)."""
    normalize_advantage: bool = True
    """Normalise advantages to zero mean and unit variance per rollout."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy."""

    def __post_init__(self) -> None:
        for name in (
            "total_steps",
            "n_envs",
            "n_steps",
            "cg_iters",
            "max_backtracks",
            "n_critic_updates",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gamma and gae_lambda must lie in [0, 1]; got {self.gamma}, {self.gae_lambda}")
        if self.max_kl <= 0 or self.damping < 0 or self.critic_lr <= 0 or self.critic_adam_eps <= 0:
            raise ValueError("max_kl, critic_lr and critic_adam_eps must be positive and damping non-negative")
        if not 0 < self.shrink < 1:
            raise ValueError(f"shrink must lie in (0, 1); got {self.shrink}")


@dataclasses.dataclass
class TRPOResult:
    """What :func:`train_trpo` returns."""

    policy: TRPOPolicy
    """The trained policy."""
    value_net: nn.Module
    """The trained critic $\\hat v_\\phi$."""
    episode_returns: np.ndarray
    """Returns of the training episodes in the order they ended, shape (E,)."""
    episode_end_steps: np.ndarray
    """Global environment step at which each ended, shape (E,)."""
    updates: list[UpdateInfo]
    """Diagnostics of every policy update."""
    value_losses: np.ndarray
    """Critic loss of the last epoch of every update, shape (U,)."""
    n_steps: int
    """Environment steps taken."""


def _sampling_policy(policy: TRPOPolicy, generator: torch.Generator, low=None, high=None) -> Policy:
    def act(obs: torch.Tensor):
        params = policy.dist_params(obs)
        action = policy.sample(params, generator)
        env_action = action if low is None else torch.clamp(action, low, high)  # the box only sees clipped actions
        return env_action, {"action": action}

    return act


def train_trpo(
    env_id: str,
    cfg: TRPOConfig,
    seed: int,
    *,
    generator: torch.Generator,
    env_kwargs: dict | None = None,
) -> TRPOResult:
    """TRPO on ``env_id`` (flat box observations; discrete or box actions) for ``cfg.total_steps`` steps."""
    envs = make_vec_env(env_id, cfg.n_envs, seed, **(env_kwargs or {}))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if len(obs_space.shape) != 1:
        envs.close()
        raise ValueError("train_trpo needs flat box observations")
    obs_dim = obs_space.shape[0]
    if hasattr(act_space, "n"):
        policy: TRPOPolicy = CategoricalPolicy(obs_dim, int(act_space.n), cfg.hidden, generator)
        low = high = None
    else:
        policy = GaussianPolicy(obs_dim, act_space.shape[0], cfg.hidden, generator, cfg.log_std_init)
        low, high = torch.as_tensor(act_space.low), torch.as_tensor(act_space.high)
    value_net = mlp(
        (obs_dim, *cfg.hidden, 1), generator, activation=nn.Tanh, orthogonal_gain=math.sqrt(2), last_gain=1.0
    )
    # the fused kernel runs the same Adam update as the default one, with far less per-step overhead on a CPU
    opt = torch.optim.Adam(value_net.parameters(), lr=cfg.critic_lr, eps=cfg.critic_adam_eps, fused=True)
    act = _sampling_policy(policy, generator, low, high)
    obs, _ = envs.reset()
    returns, ends, updates, v_losses, step = [], [], [], [], 0
    while step < cfg.total_steps:
        roll = collect(envs, act, cfg.n_steps, obs)
        obs = roll.last_obs
        returns.extend(roll.episode_returns.tolist())
        ends.extend((roll.episode_end_steps + step).tolist())
        step += cfg.n_steps * cfg.n_envs
        with torch.no_grad():
            values = value_net(roll.obs).squeeze(-1)  # (T, N)
            next_values = value_net(roll.next_obs).squeeze(-1)  # (T, N), the true s_{t+1}
        adv, lam_returns = gae(
            roll.rewards, values, next_values, roll.terminated, roll.truncated, cfg.gamma, cfg.gae_lambda
        )
        flat_obs = roll.obs.flatten(0, 1)  # (T N, obs_dim)
        flat_act = roll.extras["action"].flatten(0, 1)  # (T N, ...) the unclipped sampled actions
        flat_adv = adv.flatten()  # (T N,)
        if cfg.normalize_advantage and flat_adv.numel() > 1:
            flat_adv = (flat_adv - flat_adv.mean()) / (flat_adv.std() + 1e-8)
        updates.append(
            trpo_update(
                policy,
                flat_obs,
                flat_act,
                flat_adv,
                max_kl=cfg.max_kl,
                cg_iters=cfg.cg_iters,
                damping=cfg.damping,
                shrink=cfg.shrink,
                max_backtracks=cfg.max_backtracks,
            )
        )
        v_losses.append(
            fit_value(value_net, opt, flat_obs, lam_returns.flatten(), cfg.n_critic_updates, cfg.batch_size, generator)
        )
    envs.close()
    return TRPOResult(
        policy, value_net, np.asarray(returns), np.asarray(ends, dtype=np.int64), updates, np.asarray(v_losses), step
    )


def evaluate_trpo(
    env_id: str, policy: TRPOPolicy, n_episodes: int, seed: int, env_kwargs: dict | None = None
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes of the policy's mode (greedy / mean action), one per copy, shape (E,)."""
    envs = make_vec_env(env_id, n_episodes, seed, **(env_kwargs or {}))
    space = envs.single_action_space
    if hasattr(space, "n"):
        out = evaluate(envs, lambda obs: (policy.mode(policy.dist_params(obs)), {}))
    else:
        low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
        out = evaluate(envs, lambda obs: (torch.clamp(policy.mode(policy.dist_params(obs)), low, high), {}))
    envs.close()
    return out
