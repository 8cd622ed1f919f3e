r"""Returns and advantages for on-policy learners: $n$-step returns and generalized advantage
estimation (GAE), as pure functions of a rollout's tensors.

All inputs have leading dimensions $(T, N)$ (time, environment copy) as in
:class:`shiyan.rl.collect.Rollout`: ``rewards`` $r_{t+1}$, ``values`` $\hat v(s_t)$, ``next_values``
$\hat v(s_{t+1})$ computed on ``Rollout.next_obs`` (the *true* next state, also on episode ends),
and the two episode-end flags.

**Terminated vs truncated.** If the episode *terminated* at $s_{t+1}$, its value is 0 and nothing
is bootstrapped. If it was *truncated* (time limit), $s_{t+1}$ is an ordinary state and the return
still continues beyond it: we bootstrap with $\gamma\,\hat v(s_{t+1})$ from the final observation.
Either way the *next* step of that copy belongs to a new episode, so sums never cross an episode
end. Writing $m_t = 1 - \text{terminated}_t$ and $c_t = 1 - (\text{terminated}_t \lor \text{truncated}_t)$:

* **TD error** $\delta_t = r_{t+1} + \gamma\, m_t\, \hat v(s_{t+1}) - \hat v(s_t)$.
* **GAE** (Schulman et al., 2016): $\hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l}$, summed up to the
  end of the episode or of the rollout, computed backwards as
  $\hat A_t = \delta_t + \gamma \lambda\, c_t\, \hat A_{t+1}$ with $\hat A_T = 0$.
  $\lambda = 0$ gives the one-step advantage $\delta_t$; $\lambda = 1$ gives the Monte Carlo return
  bootstrapped at the rollout's end minus the baseline, $\hat A_t = G_t - \hat v(s_t)$. The value target
  (the "returns") is $\hat A_t + \hat v(s_t)$.
* **n-step return** $G_t^{(n)} = \sum_{k=0}^{h-1} \gamma^k r_{t+k+1} + \gamma^h m_{t+h-1}\, \hat v(s_{t+h})$
  where $h = \min(n, \text{steps to the episode end}, T - t)$: the return of the next $n$ rewards,
  cut at an episode end or the rollout's end, bootstrapped from the value of the state reached.
"""

from __future__ import annotations

import torch

__all__ = ["gae", "n_step_returns", "td_errors"]


def _check(rewards, values, next_values, terminated, truncated, gamma) -> None:
    if not isinstance(rewards, torch.Tensor) or rewards.ndim < 1:
        raise TypeError("rewards must be a tensor of shape (T, ...)")
    for name, x in (("values", values), ("next_values", next_values)):
        if x is not None and (not isinstance(x, torch.Tensor) or x.shape != rewards.shape):
            raise ValueError(f"{name} must be a tensor of shape {tuple(rewards.shape)}")
    for name, x in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(x, torch.Tensor) or x.shape != rewards.shape:
            raise ValueError(f"{name} must be a tensor of shape {tuple(rewards.shape)}")
    for name, x in (("rewards", rewards), ("values", values), ("next_values", next_values)):
        if x is not None and not torch.all(torch.isfinite(x)):
            raise ValueError(f"{name} must be finite")
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma}")


def td_errors(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    r"""$\delta_t = r_{t+1} + \gamma (1 - \text{terminated}_t)\, \hat v(s_{t+1}) - \hat v(s_t)$, shape (T, N)."""
    not_term = 1.0 - terminated.to(rewards.dtype)  # (T, N)
    return rewards + gamma * not_term * next_values - values


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""GAE($\gamma, \lambda$): advantages $\hat A_t$ and value targets $\hat A_t + \hat v(s_t)$, each (T, N)."""
    _check(rewards, values, next_values, terminated, truncated, gamma)
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"lam must lie in [0, 1]; got {lam}")
    delta = td_errors(rewards, values, next_values, terminated, gamma)  # (T, N)
    cont = 1.0 - (terminated | truncated).to(rewards.dtype)  # (T, N): 0 where an episode ends
    adv = torch.empty_like(delta)
    running = torch.zeros_like(delta[0])  # \hat A_{t+1}, (N,)
    for t in range(delta.shape[0] - 1, -1, -1):
        running = delta[t] + gamma * lam * cont[t] * running
        adv[t] = running
    return adv, adv + values


def n_step_returns(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    n: int,
) -> torch.Tensor:
    r"""$G_t^{(n)}$ (see the module docstring), shape (T, N); ``n`` $\ge T$ gives the return bootstrapped
    at the rollout's end."""
    _check(rewards, None, next_values, terminated, truncated, gamma)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    n_t = rewards.shape[0]
    not_term = 1.0 - terminated.to(rewards.dtype)  # (T, N)
    done = terminated | truncated  # (T, N)
    out = torch.empty_like(rewards)
    for t in range(n_t):
        g = torch.zeros_like(rewards[t])  # (N,) running discounted sum
        alive = torch.ones_like(done[t])  # (N,) the episode of s_t has not ended yet
        boot = torch.zeros_like(rewards[t])  # (N,) the bootstrap term, fixed once the sum stops
        discount = 1.0
        last = min(t + n, n_t) - 1
        for k in range(t, last + 1):
            g = g + alive.to(rewards.dtype) * (discount * rewards[k])
            stop = alive & (done[k] | (k == last))  # the sum ends after reward k for these copies
            boot = torch.where(stop, discount * gamma * not_term[k] * next_values[k], boot)
            alive = alive & ~stop
            discount *= gamma
        out[t] = g + boot
    return out
