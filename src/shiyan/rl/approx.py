r"""Value-function approximation (Chapter 8 of Shiyu Zhao's book): features, TD-linear, linear Sarsa,
linear Q-learning, and the small neural networks of the deep learners.

**Features.** A table $v(s)$ is replaced by $\hat v(s, w) = \phi(s)^\top w$ with a feature vector
$\phi(s) \in \mathbb R^d$. On the grid world a state is a cell; with $x = \text{col}/(n_\text{cols}-1)$ and
$y = \text{row}/(n_\text{rows}-1)$ in $[0, 1]$ (:func:`grid_coordinates`):

* *tabular* (:func:`tabular_features`): $\phi(s) = e_s$, the one-hot vector; $\hat v$ is then the table
  itself and every method below reduces to its tabular version;
* *polynomial* of order $q$ (:func:`polynomial_features`): all monomials $x^i y^j$ with $i + j \le q$,
  e.g. $[1, x, y]$ for $q = 1$ and $[1, x, y, x^2, xy, y^2]$ for $q = 2$;
* *Fourier* of order $q$ (:func:`fourier_features`): $\cos(\pi (c_1 x + c_2 y))$ for all
  $c_1, c_2 \in \{0, \dots, q\}$, $(q+1)^2$ features.

Feature matrices are arrays ``phi`` of shape $(S, d)$, one row per state. For action values,
:func:`state_action_features` stacks one copy of $\phi(s)$ per action:
$\phi(s, a) = e_a \otimes \phi(s) \in \mathbb R^{|\mathcal A| d}$, shape $(S, A, A d)$.

**TD-linear** (:func:`td_linear`, the book's Algorithm 8.1) is stochastic gradient descent on the
projected Bellman error with the TD target in place of the unknown $v_\pi(s_t)$:

$$w_{t+1} = w_t + \alpha_t \big[r_{t+1} + \gamma \phi(s_{t+1})^\top w_t - \phi(s_t)^\top w_t\big] \phi(s_t).$$

Along a trajectory of a policy $\pi$ with stationary distribution $d_\pi$ ($D = \operatorname{diag}(d_\pi)$)
it converges (for step sizes meeting the Robbins--Monro conditions) to the solution of

$$A w^* = b, \qquad A = \Phi^\top D (I - \gamma P_\pi) \Phi, \qquad b = \Phi^\top D r_\pi,$$

the minimiser of the projected Bellman error (:func:`td_linear_fixed_point` computes it from the model).
With one-hot features, $w^* = v_\pi$. The step size is $\alpha_t = \alpha / (1 + t)^p$ (``alpha_power`` $p$,
0 for a constant step).

**Linear Sarsa and Q-learning** (:func:`linear_sarsa`, :func:`linear_q_learning`) update
$\hat q(s, a, w) = \phi(s, a)^\top w$ the same way with the Sarsa target
$r_{t+1} + \gamma \hat q(s_{t+1}, a_{t+1}, w)$ or the Q-learning target $r_{t+1} + \gamma \max_a \hat q(s_{t+1}, a, w)$.

**Neural networks.** :func:`mlp` builds the multilayer perceptrons of the deep learners (DQN's
$\hat q(s, \cdot, w)$, the actor and critic of :mod:`shiyan.rl.actor_critic`), initialised from an explicit
``torch.Generator`` with PyTorch's default scheme (or orthogonal weights), never from the global seed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from shiyan.rl.bellman import epsilon_greedy_policy, policy_model
from shiyan.rl.gridworld import TabularMDP, check_policy

__all__ = [
    "LinearResult",
    "Trajectory",
    "fourier_features",
    "grid_coordinates",
    "linear_q_learning",
    "linear_sarsa",
    "mlp",
    "polynomial_features",
    "sample_trajectory",
    "state_action_features",
    "stationary_distribution",
    "tabular_features",
    "td_linear",
    "td_linear_fixed_point",
]


# -- features ------------------------------------------------------------------------------------
def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be a non-negative integer; got {order!r}")
    return order


def grid_coordinates(n_rows: int, n_cols: int) -> np.ndarray:
    """$(x, y) = (\\text{col}/(n_\\text{cols}-1), \\text{row}/(n_\\text{rows}-1))$ of every state, shape (S, 2)."""
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"n_rows and n_cols must be positive; got {n_rows}, {n_cols}")
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    x = cols / max(n_cols - 1, 1)
    y = rows / max(n_rows - 1, 1)
    return np.stack([x, y], axis=1).astype(np.float64)


def tabular_features(n_states: int) -> np.ndarray:
    """One-hot features $\\phi(s) = e_s$, shape (S, S)."""
    if n_states < 1:
        raise ValueError(f"n_states must be positive; got {n_states}")
    return np.eye(n_states)


def polynomial_features(coords: np.ndarray, order: int) -> np.ndarray:
    """Monomials $x^i y^j$, $i + j \\le$ ``order``, in the order of increasing degree, shape (S, d)."""
    coords = _check_coords(coords)
    order = _check_order(order)
    x, y = coords[:, 0], coords[:, 1]
    cols = [x ** (deg - j) * y**j for deg in range(order + 1) for j in range(deg + 1)]
    return np.stack(cols, axis=1)


def fourier_features(coords: np.ndarray, order: int) -> np.ndarray:
    """$\\cos(\\pi(c_1 x + c_2 y))$ for $c_1, c_2 \\in \\{0..q\\}$, shape (S, (q+1)^2)."""
    coords = _check_coords(coords)
    order = _check_order(order)
    c = np.array([(c1, c2) for c1 in range(order + 1) for c2 in range(order + 1)], dtype=np.float64)  # (d, 2)
    return np.cos(math.pi * coords @ c.T)  # (S, d)


def _check_coords(coords: np.ndarray) -> np.ndarray:
    arr = np.asarray(coords, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        raise ValueError(f"coords must be a finite array of shape (S, 2); got {arr.shape}")
    return arr


def state_action_features(phi: np.ndarray, n_actions: int) -> np.ndarray:
    """$\\phi(s, a) = e_a \\otimes \\phi(s)$, shape (S, A, A * d)."""
    phi = _check_phi(phi, None)
    n_s, d = phi.shape
    out = np.zeros((n_s, n_actions, n_actions * d))
    for a in range(n_actions):
        out[:, a, a * d : (a + 1) * d] = phi
    return out


def _check_phi(phi: np.ndarray, n_states: int | None, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(phi, dtype=np.float64)
    if arr.ndim != ndim or (n_states is not None and arr.shape[0] != n_states) or not np.all(np.isfinite(arr)):
        want = "(S, d)" if ndim == 2 else "(S, A, d)"
        raise ValueError(f"phi must be a finite array of shape {want} with S = {n_states}; got {arr.shape}")
    return arr


# -- trajectories --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Transitions $(s_t, a_t, r_{t+1}, s_{t+1})$ of one or more episodes, each array of shape (T,)."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    terminated: np.ndarray
    """$s_{t+1}$ is terminal (its value is 0)."""


def sample_trajectory(
    mdp: TabularMDP, policy: np.ndarray, length: int, rng: np.random.Generator, start: int | None = None
) -> Trajectory:
    """One episode of at most ``length`` steps following ``policy`` from ``start`` (``None``: uniform
    over non-terminal states). The draws are those of :func:`shiyan.rl.tabular.td0` with one episode,
    so both see the same samples from the same generator."""
    policy = check_policy(policy, mdp.n_states, mdp.n_actions)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer; got {length!r}")
    nonterminal = mdp.nonterminal_states.tolist()
    s = start if start is not None else nonterminal[int(rng.integers(len(nonterminal)))]
    if not 0 <= s < mdp.n_states or mdp.terminal[s]:
        raise ValueError(f"start must be a non-terminal state; got {start!r}")
    u = rng.random(length)
    cdf = np.cumsum(policy, axis=1)
    step = mdp.sampler(rng)
    out = {k: [] for k in ("states", "actions", "rewards", "next_states", "terminated")}
    for t in range(length):
        a = min(int(np.searchsorted(cdf[s], u[t], side="right")), mdp.n_actions - 1)
        s_next, r, done = step(s, a)
        for k, val in zip(out, (s, a, r, s_next, done), strict=True):
            out[k].append(val)
        if done:
            break
        s = s_next
    return Trajectory(
        states=np.asarray(out["states"], dtype=np.int64),
        actions=np.asarray(out["actions"], dtype=np.int64),
        rewards=np.asarray(out["rewards"], dtype=np.float64),
        next_states=np.asarray(out["next_states"], dtype=np.int64),
        terminated=np.asarray(out["terminated"], dtype=bool),
    )


# -- linear methods ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LinearResult:
    """Weights learned by a linear method."""

    w: np.ndarray
    """Final weights, shape (d,)."""
    history: np.ndarray
    """Weights after every ``record_every`` updates (and at the start and the end), shape (K, d)."""
    history_steps: np.ndarray
    """Update count of each snapshot, shape (K,)."""
    episode_lengths: np.ndarray
    """Lengths of the episodes (only for :func:`linear_sarsa`; empty otherwise), shape (E,)."""


def _check_step(alpha: float, alpha_power: float) -> None:
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1]; got {alpha}")
    if not 0 <= alpha_power <= 1:
        raise ValueError(f"alpha_power must lie in [0, 1]; got {alpha_power}")


def _check_gamma(gamma: float) -> float:
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must lie in [0, 1); got {gamma}")
    return float(gamma)


def td_linear(
    phi: np.ndarray,
    traj: Trajectory,
    gamma: float,
    *,
    alpha: float = 0.01,
    alpha_power: float = 0.0,
    w0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LinearResult:
    r"""TD-linear along ``traj``: $w \leftarrow w + \alpha_t [r + \gamma \phi(s')^\top w - \phi(s)^\top w] \phi(s)$
    ($\phi(s') = 0$ at a terminal $s'$)."""
    phi = _check_phi(phi, None)
    gamma = _check_gamma(gamma)
    _check_step(alpha, alpha_power)
    d = phi.shape[1]
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},); got {w.shape}")
    rows = list(phi)  # (S,) of (d,): row access without fancy indexing
    hist, steps = [w.copy()], [0]
    for t, (s, r, s2, done) in enumerate(
        zip(traj.states.tolist(), traj.rewards.tolist(), traj.next_states.tolist(), traj.terminated.tolist())
    ):
        f = rows[s]
        target = r if done else r + gamma * float(rows[s2] @ w)  # TD target
        step = alpha / (1.0 + t) ** alpha_power
        w += step * (target - float(f @ w)) * f  # alpha_t * TD error * grad of phi(s)^T w
        if (t + 1) % record_every == 0:
            hist.append(w.copy())
            steps.append(t + 1)
    if steps[-1] != len(traj.states):
        hist.append(w.copy())
        steps.append(len(traj.states))
    return LinearResult(w, np.array(hist), np.array(steps, dtype=np.int64), np.zeros(0, dtype=np.int64))


def stationary_distribution(p_pi: np.ndarray) -> np.ndarray:
    r"""$d_\pi$ with $d_\pi^\top P_\pi = d_\pi^\top$, $\sum_s d_\pi(s) = 1$ (least squares on the stacked system), shape (S,)."""
    p_pi = np.asarray(p_pi, dtype=np.float64)
    n = p_pi.shape[0]
    if p_pi.shape != (n, n):
        raise ValueError(f"p_pi must be square; got {p_pi.shape}")
    a = np.vstack([p_pi.T - np.eye(n), np.ones((1, n))])  # (S+1, S)
    b = np.concatenate([np.zeros(n), [1.0]])
    d, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.clip(d, 0.0, None) / np.clip(d, 0.0, None).sum()


def td_linear_fixed_point(
    mdp: TabularMDP, policy: np.ndarray, phi: np.ndarray, gamma: float, weights: np.ndarray | None = None
) -> np.ndarray:
    r"""The TD-linear limit $w^*$ solving $\Phi^\top D (I - \gamma P_\pi) \Phi\, w = \Phi^\top D r_\pi$ (least squares
    if $A$ is singular); $D = \operatorname{diag}$ (``weights``, default the stationary distribution $d_\pi$)."""
    gamma = _check_gamma(gamma)
    phi = _check_phi(phi, mdp.n_states)
    p_pi, r_pi = policy_model(mdp.P, mdp.R, policy)
    d = stationary_distribution(p_pi) if weights is None else np.asarray(weights, dtype=np.float64)
    a = phi.T @ (d[:, None] * (phi - gamma * p_pi @ phi))  # (d, d)
    b = phi.T @ (d * r_pi)  # (d,)
    w, *_ = np.linalg.lstsq(a, b, rcond=None)
    return w


def linear_q_learning(
    phi_sa: np.ndarray,
    traj: Trajectory,
    gamma: float,
    *,
    alpha: float = 0.01,
    alpha_power: float = 0.0,
    w0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LinearResult:
    r"""Off-policy linear Q-learning along a behaviour trajectory:
    $w \leftarrow w + \alpha_t [r + \gamma \max_a \phi(s', a)^\top w - \phi(s, a)^\top w] \phi(s, a)$."""
    phi_sa = _check_phi(phi_sa, None, ndim=3)
    gamma = _check_gamma(gamma)
    _check_step(alpha, alpha_power)
    d = phi_sa.shape[2]
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64)
    rows = list(phi_sa)  # (S,) of (A, d)
    hist, steps = [w.copy()], [0]
    data = zip(
        traj.states.tolist(),
        traj.actions.tolist(),
        traj.rewards.tolist(),
        traj.next_states.tolist(),
        traj.terminated.tolist(),
    )
    for t, (s, a, r, s2, done) in enumerate(data):
        f = rows[s][a]
        target = r if done else r + gamma * float(np.max(rows[s2] @ w))
        w += alpha / (1.0 + t) ** alpha_power * (target - float(f @ w)) * f
        if (t + 1) % record_every == 0:
            hist.append(w.copy())
            steps.append(t + 1)
    if steps[-1] != len(traj.states):
        hist.append(w.copy())
        steps.append(len(traj.states))
    return LinearResult(w, np.array(hist), np.array(steps, dtype=np.int64), np.zeros(0, dtype=np.int64))


def linear_sarsa(
    mdp: TabularMDP,
    phi_sa: np.ndarray,
    gamma: float,
    rng: np.random.Generator,
    *,
    epsilon: float = 0.1,
    alpha: float = 0.01,
    n_episodes: int = 100,
    episode_length: int = 1000,
    start: int | None = None,
    record_every: int = 1000,
) -> LinearResult:
    r"""On-policy linear Sarsa with an $\varepsilon$-greedy policy in $\hat q(s, \cdot, w)$:
    $w \leftarrow w + \alpha [r + \gamma \phi(s', a')^\top w - \phi(s, a)^\top w] \phi(s, a)$."""
    phi_sa = _check_phi(phi_sa, mdp.n_states, ndim=3)
    gamma = _check_gamma(gamma)
    _check_step(alpha, 0.0)
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon}")
    n_a, d = phi_sa.shape[1], phi_sa.shape[2]
    w = np.zeros(d)
    rows = list(phi_sa)
    step = mdp.sampler(rng)
    nonterminal = mdp.nonterminal_states.tolist()

    def act(s: int) -> int:
        probs = epsilon_greedy_policy((rows[s] @ w)[None, :], epsilon)[0]  # (A,)
        return int(rng.choice(n_a, p=probs))

    hist, steps, lengths, count = [w.copy()], [0], [], 0
    for _ in range(n_episodes):
        s = start if start is not None else nonterminal[int(rng.integers(len(nonterminal)))]
        a = act(s)
        taken = 0
        for _ in range(episode_length):
            taken += 1
            s2, r, done = step(s, a)
            f = rows[s][a]
            if done:
                target = r
            else:
                a2 = act(s2)
                target = r + gamma * float(rows[s2][a2] @ w)
            w += alpha * (target - float(f @ w)) * f
            count += 1
            if count % record_every == 0:
                hist.append(w.copy())
                steps.append(count)
            if done:
                break
            s, a = s2, a2
        lengths.append(taken)
    if steps[-1] != count:
        hist.append(w.copy())
        steps.append(count)
    return LinearResult(w, np.array(hist), np.array(steps, dtype=np.int64), np.asarray(lengths, dtype=np.int64))


# -- neural networks -----------------------------------------------------------------------------
def mlp(
    sizes: tuple[int, ...] | list[int],
    generator: torch.Generator,
    *,
    activation: type[nn.Module] = nn.ReLU,
    orthogonal_gain: float | None = None,
    last_gain: float | None = None,
) -> nn.Sequential:
    r"""A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between layers.

    Weights come from ``generator``: PyTorch's default $\mathcal U(\pm 1/\sqrt{\text{fan}_\text{in}})$ biases and
    Kaiming-uniform weights, or orthogonal weights with gain ``orthogonal_gain`` (last layer ``last_gain``)
    and zero biases, the initialisation SB3's actor-critic uses.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths; got {sizes}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    layers: list[nn.Module] = []
    n_layers = len(sizes) - 1
    for i in range(n_layers):
        lin = nn.Linear(sizes[i], sizes[i + 1], device="meta").to_empty(device="cpu")
        with torch.no_grad():
            if orthogonal_gain is None:
                nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(sizes[i])
                lin.bias.uniform_(-bound, bound, generator=generator)
            else:
                gain = last_gain if (i == n_layers - 1 and last_gain is not None) else orthogonal_gain
                nn.init.orthogonal_(lin.weight, gain=gain, generator=generator)
                lin.bias.zero_()
        layers.append(lin)
        if i < n_layers - 1:
            layers.append(activation())
    return nn.Sequential(*layers)
