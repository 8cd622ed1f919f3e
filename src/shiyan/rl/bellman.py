r"""Model-based solvers of the Bellman equations (Chapters 2--4 of Shiyu Zhao's book).

Glossary (code name: symbol)

* ``P`` $(S, A, S)$: $p(s' \mid s, a)$; ``R`` $(S, A)$: expected immediate reward $r(s, a)$;
* ``pi`` $(S, A)$: a policy $\pi(a \mid s)$; ``gamma``: the discount rate $\gamma \in [0, 1)$;
* ``v`` $(S,)$: state values $v_\pi(s)$; ``q`` $(S, A)$: action values $q_\pi(s, a)$.

**Bellman equation.** Averaging the model over the policy gives $r_\pi(s) = \sum_a \pi(a|s) r(s,a)$
and $P_\pi(s, s') = \sum_a \pi(a|s) p(s'|s,a)$, and the state values satisfy the linear system

$$v_\pi = r_\pi + \gamma P_\pi v_\pi \quad\Longleftrightarrow\quad (I - \gamma P_\pi)\, v_\pi = r_\pi ,$$

which :func:`evaluate_policy` solves directly (the *closed form*, $v_\pi = (I - \gamma P_\pi)^{-1} r_\pi$;
$I - \gamma P_\pi$ is invertible because $\|\gamma P_\pi\|_\infty \le \gamma < 1$) and
:func:`evaluate_policy_iterative` solves by the contraction $v^{(j+1)} = r_\pi + \gamma P_\pi v^{(j)}$.
Action values follow from state values: $q_\pi(s, a) = r(s, a) + \gamma \sum_{s'} p(s'|s,a) v_\pi(s')$.

**Bellman optimality equation.** $v^* = \max_\pi (r_\pi + \gamma P_\pi v^*)$; the maximising policy is
greedy, $\pi^*(s) = \arg\max_a q^*(s, a)$. Three algorithms solve it:

* *value iteration* (:func:`value_iteration`): $v_{k+1}(s) = \max_a \big[r(s,a) + \gamma \sum_{s'} p(s'|s,a) v_k(s')\big]$;
* *policy iteration* (:func:`policy_iteration`): evaluate $\pi_k$ exactly, then improve greedily,
  $\pi_{k+1}(s) = \arg\max_a q_{\pi_k}(s, a)$, until the policy stops changing;
* *truncated policy iteration* (:func:`truncated_policy_iteration`): evaluate with only $j$ sweeps of
  the iterative solver started from the previous values. $j = 1$ is value iteration and
  $j \to \infty$ is policy iteration (the book's Algorithm 4.3).

:func:`epsilon_greedy_policy_iteration` restricts improvement to $\varepsilon$-greedy policies; its fixed
point is the best $\varepsilon$-greedy policy, the oracle for the $\varepsilon$-greedy learners of
:mod:`shiyan.rl.tabular`.

Terminal states (zero rows of ``P`` and ``R``) get value 0 automatically. Ties in $\arg\max$ go to
the lowest action index.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shiyan.rl.gridworld import check_policy

__all__ = [
    "SolverResult",
    "action_values",
    "epsilon_greedy_policy",
    "epsilon_greedy_policy_iteration",
    "evaluate_policy",
    "evaluate_policy_iterative",
    "greedy_policy",
    "policy_iteration",
    "policy_model",
    "truncated_policy_iteration",
    "uniform_policy",
    "value_iteration",
]


@dataclasses.dataclass(frozen=True)
class SolverResult:
    """What an optimality solver returns."""

    v: np.ndarray
    """State values of the returned policy, shape (S,)."""
    q: np.ndarray
    """Action values $r + \\gamma P v$, shape (S, A)."""
    policy: np.ndarray
    """The policy found, shape (S, A): greedy (one-hot), or epsilon-greedy for :func:`epsilon_greedy_policy_iteration`."""
    n_iter: int
    """Outer iterations until convergence."""
    history: np.ndarray
    """State-value estimate after each outer iteration, shape (n_iter + 1, S); row 0 is the start."""


# -- checks --------------------------------------------------------------------------------------
def _check_model(P: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (S, A, S); got {P.shape}")
    if R.shape != P.shape[:2]:
        raise ValueError(f"R must have shape (S, A) = {P.shape[:2]}; got {R.shape}")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(R))):
        raise ValueError("P and R must be finite (no NaN or inf)")
    if np.any(P < 0) or np.any(P.sum(axis=2) > 1 + 1e-9):
        raise ValueError("P[s, a, :] must be non-negative and sum to at most 1")
    return P, R


def _check_gamma(gamma: float) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) or not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1); got {gamma!r}")
    return float(gamma)


def _check_iter(tol: float, max_iter: int) -> None:
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be positive; got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")


def _check_values(v: np.ndarray | None, n_states: int, name: str) -> np.ndarray:
    if v is None:
        return np.zeros(n_states)
    arr = np.asarray(v, dtype=np.float64)
    if arr.shape != (n_states,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape ({n_states},); got {arr.shape}")
    return arr.copy()


# -- policies ------------------------------------------------------------------------------------
def uniform_policy(n_states: int, n_actions: int) -> np.ndarray:
    r"""$\pi(a \mid s) = 1 / |\mathcal A|$, shape (S, A)."""
    return np.full((n_states, n_actions), 1.0 / n_actions)


def greedy_policy(q: np.ndarray) -> np.ndarray:
    r"""One-hot policy on $\arg\max_a q(s, a)$ (lowest index on ties), shape (S, A)."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or not np.all(np.isfinite(q)):
        raise ValueError(f"q must be a finite (S, A) array; got shape {q.shape}")
    pi = np.zeros_like(q)
    pi[np.arange(q.shape[0]), q.argmax(axis=1)] = 1.0
    return pi


def epsilon_greedy_policy(q: np.ndarray, epsilon: float) -> np.ndarray:
    r"""The book's $\varepsilon$-greedy policy: $\pi(a^*|s) = 1 - \frac{|\mathcal A| - 1}{|\mathcal A|}\varepsilon$
    on $a^* = \arg\max_a q(s, a)$ and $\varepsilon / |\mathcal A|$ on every other action."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon!r}")
    greedy = greedy_policy(q)
    return (1.0 - epsilon) * greedy + epsilon / greedy.shape[1]


def policy_model(P: np.ndarray, R: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$(P_\pi, r_\pi)$ with $P_\pi(s, s') = \sum_a \pi(a|s) p(s'|s,a)$ and $r_\pi(s) = \sum_a \pi(a|s) r(s,a)$."""
    P, R = _check_model(P, R)
    pi = check_policy(pi, *R.shape, name="pi")
    P_pi = np.einsum("sa,sat->st", pi, P)  # (S, S)
    r_pi = np.einsum("sa,sa->s", pi, R)  # (S,)
    return P_pi, r_pi


def action_values(P: np.ndarray, R: np.ndarray, v: np.ndarray, gamma: float) -> np.ndarray:
    r"""$q(s, a) = r(s, a) + \gamma \sum_{s'} p(s'|s, a)\, v(s')$, shape (S, A)."""
    P, R = _check_model(P, R)
    gamma = _check_gamma(gamma)
    v = _check_values(v, P.shape[0], "v")
    return R + gamma * np.einsum("sat,t->sa", P, v)


# -- policy evaluation ---------------------------------------------------------------------------
def evaluate_policy(P: np.ndarray, R: np.ndarray, pi: np.ndarray, gamma: float) -> np.ndarray:
    r"""Closed form: solve $(I - \gamma P_\pi) v_\pi = r_\pi$; returns $v_\pi$, shape (S,)."""
    gamma = _check_gamma(gamma)
    P_pi, r_pi = policy_model(P, R, pi)
    return np.linalg.solve(np.eye(P_pi.shape[0]) - gamma * P_pi, r_pi)


def evaluate_policy_iterative(
    P: np.ndarray,
    R: np.ndarray,
    pi: np.ndarray,
    gamma: float,
    *,
    v0: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, int]:
    r"""Iterate $v^{(j+1)} = r_\pi + \gamma P_\pi v^{(j)}$ from ``v0`` (zeros) until
    $\|v^{(j+1)} - v^{(j)}\|_\infty <$ ``tol``; returns $(v_\pi, \text{sweeps})$."""
    gamma = _check_gamma(gamma)
    _check_iter(tol, max_iter)
    P_pi, r_pi = policy_model(P, R, pi)
    v = _check_values(v0, P_pi.shape[0], "v0")
    for j in range(1, max_iter + 1):
        v_new = r_pi + gamma * P_pi @ v
        if np.max(np.abs(v_new - v)) < tol:
            return v_new, j
        v = v_new
    return v, max_iter


# -- optimality ----------------------------------------------------------------------------------
def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    *,
    v0: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> SolverResult:
    r"""$v_{k+1} = \max_a (r + \gamma P v_k)$ until $\|v_{k+1} - v_k\|_\infty <$ ``tol``.

    The returned ``policy`` is greedy for the final values and ``v`` is the final iterate (within
    $\gamma\,$``tol``$/(1-\gamma)$ of $v^*$).
    """
    P, R = _check_model(P, R)
    gamma = _check_gamma(gamma)
    _check_iter(tol, max_iter)
    v = _check_values(v0, P.shape[0], "v0")
    history = [v]
    for _ in range(max_iter):
        q = R + gamma * np.einsum("sat,t->sa", P, v)  # (S, A)
        v_new = q.max(axis=1)
        history.append(v_new)
        done = np.max(np.abs(v_new - v)) < tol
        v = v_new
        if done:
            break
    q = R + gamma * np.einsum("sat,t->sa", P, v)
    return SolverResult(v=v, q=q, policy=greedy_policy(q), n_iter=len(history) - 1, history=np.array(history))


def _improve(q: np.ndarray, pi: np.ndarray, tie_tol: float = 1e-10) -> np.ndarray:
    """Greedy improvement that keeps the current action when it is still (numerically) maximal,
    so that policy iteration cannot cycle between equally good actions."""
    current = pi.argmax(axis=1)
    best = q.argmax(axis=1)
    rows = np.arange(q.shape[0])
    keep = q[rows, current] >= q[rows, best] - tie_tol
    action = np.where(keep, current, best)
    new = np.zeros_like(q)
    new[rows, action] = 1.0
    return new


def _initial_policy(pi0: np.ndarray | None, n_states: int, n_actions: int) -> np.ndarray:
    if pi0 is None:
        pi = np.zeros((n_states, n_actions))
        pi[:, 0] = 1.0
        return pi
    pi = check_policy(pi0, n_states, n_actions, name="pi0")
    return greedy_policy(pi)  # a deterministic policy (its most likely action)


def policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    *,
    pi0: np.ndarray | None = None,
    max_iter: int = 10_000,
) -> SolverResult:
    r"""Policy iteration: $v_{\pi_k}$ by the closed form, then $\pi_{k+1} = $ greedy$(q_{\pi_k})$,
    until $\pi_{k+1} = \pi_k$. ``pi0`` defaults to "always action 0"."""
    P, R = _check_model(P, R)
    gamma = _check_gamma(gamma)
    _check_iter(1.0, max_iter)
    pi = _initial_policy(pi0, *R.shape)
    v = evaluate_policy(P, R, pi, gamma)
    history = [v]
    for _ in range(max_iter):
        q = action_values(P, R, v, gamma)
        new = _improve(q, pi)
        if np.array_equal(new, pi):
            break
        pi = new
        v = evaluate_policy(P, R, pi, gamma)
        history.append(v)
    q = action_values(P, R, v, gamma)
    return SolverResult(v=v, q=q, policy=pi, n_iter=len(history) - 1, history=np.array(history))


def truncated_policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    j_truncate: int,
    *,
    v0: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> SolverResult:
    r"""Truncated policy iteration (the book's Algorithm 4.3).

    Each outer iteration improves the policy greedily for the current $v_k$ (policy update), then
    runs $j$ = ``j_truncate`` sweeps of $v \leftarrow r_{\pi_{k+1}} + \gamma P_{\pi_{k+1}} v$ started at
    $v_k$ (value update). It stops when $\|v_{k+1} - v_k\|_\infty <$ ``tol``.
    """
    P, R = _check_model(P, R)
    gamma = _check_gamma(gamma)
    _check_iter(tol, max_iter)
    if isinstance(j_truncate, bool) or not isinstance(j_truncate, int) or j_truncate < 1:
        raise ValueError(f"j_truncate must be a positive integer; got {j_truncate!r}")
    v = _check_values(v0, P.shape[0], "v0")
    history = [v]
    for _ in range(max_iter):
        pi = greedy_policy(R + gamma * np.einsum("sat,t->sa", P, v))
        P_pi, r_pi = policy_model(P, R, pi)
        v_new = v
        for _ in range(j_truncate):
            v_new = r_pi + gamma * P_pi @ v_new
        history.append(v_new)
        done = np.max(np.abs(v_new - v)) < tol
        v = v_new
        if done:
            break
    q = R + gamma * np.einsum("sat,t->sa", P, v)
    return SolverResult(v=v, q=q, policy=greedy_policy(q), n_iter=len(history) - 1, history=np.array(history))


def epsilon_greedy_policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    epsilon: float,
    *,
    max_iter: int = 10_000,
) -> SolverResult:
    r"""Policy iteration inside the $\varepsilon$-greedy class: $\pi_{k+1} = \varepsilon$-greedy$(q_{\pi_k})$.

    The fixed point is the best $\varepsilon$-greedy policy (every $\varepsilon$-soft policy is improved by
    it, Sutton & Barto Section 5.4); ``policy`` is that $\varepsilon$-greedy policy and ``v``, ``q`` its
    exact values.
    """
    P, R = _check_model(P, R)
    gamma = _check_gamma(gamma)
    _check_iter(1.0, max_iter)
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon!r}")
    greedy = _initial_policy(None, *R.shape)
    pi = (1.0 - epsilon) * greedy + epsilon / R.shape[1]
    v = evaluate_policy(P, R, pi, gamma)
    history = [v]
    for _ in range(max_iter):
        q = action_values(P, R, v, gamma)
        new_greedy = _improve(q, greedy)
        if np.array_equal(new_greedy, greedy):
            break
        greedy = new_greedy
        pi = (1.0 - epsilon) * greedy + epsilon / R.shape[1]
        v = evaluate_policy(P, R, pi, gamma)
        history.append(v)
    q = action_values(P, R, v, gamma)
    return SolverResult(v=v, q=q, policy=pi, n_iter=len(history) - 1, history=np.array(history))
