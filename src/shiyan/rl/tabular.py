r"""Tabular model-free learning (Chapters 5 and 7 of Shiyu Zhao's book): Monte Carlo and
temporal-difference methods for a finite MDP seen only through samples.

Glossary (code name: symbol)

* ``mdp``: a :class:`~shiyan.rl.gridworld.TabularMDP` used only as a simulator: the learners draw
  samples $s_{t+1}, r_{t+1}$ given $s_t, a_t$ from it and never use ``P`` or ``R`` as a model;
* ``q`` $(S, A)$: action-value estimates $q_t(s, a)$; ``v`` $(S,)$: state-value estimates $v_t(s)$;
* ``gamma`` $\gamma$; ``alpha`` $\alpha$; ``epsilon`` $\varepsilon$; ``n``: the $n$ of $n$-step Sarsa;
* an *episode* $s_0, a_0, r_1, s_1, a_1, r_2, \dots$ ends at a terminal state or after
  ``episode_length`` steps (truncation: TD targets still bootstrap there, MC returns are cut).

**Monte Carlo (Chapter 5).** The return $g_t = \sum_{i \ge 0} \gamma^i r_{t+i+1}$ of an episode is an
unbiased sample of $q_\pi(s_t, a_t)$, so averaging returns estimates action values without a model.

* *MC basic* (:func:`mc_basic`, Algorithm 5.1) is policy iteration with the model-based evaluation
  replaced by sampling: for every pair $(s, a)$ average the returns of episodes that start with
  $(s, a)$ and then follow $\pi_k$, and improve greedily, $\pi_{k+1}(s) = \arg\max_a q_{\pi_k}(s, a)$.
  All $|\mathcal S||\mathcal A|$ rollouts of one iteration run at once (vectorised).
* *MC exploring starts* (:func:`mc_exploring_starts`, Algorithm 5.2) uses each episode for every
  pair it visits (every-visit, or first-visit), going backwards with $g \leftarrow \gamma g + r_{t+1}$,
  and makes the policy greedy after every episode; episodes start from uniformly drawn pairs so
  that all pairs keep being explored.
* *MC* $\varepsilon$-*greedy* (:func:`mc_epsilon_greedy`, Algorithm 5.3) drops exploring starts: the
  policy stays $\varepsilon$-greedy, $\pi(a^*|s) = 1 - \frac{|\mathcal A|-1}{|\mathcal A|}\varepsilon$ and
  $\varepsilon / |\mathcal A|$ elsewhere, so every pair keeps being tried. It converges to the best
  $\varepsilon$-greedy policy, not to the optimal one.

The book's estimate is the mean of all returns collected for a pair, i.e. the incremental update
$q \leftarrow q + \alpha_N (g - q)$ with $\alpha_N = 1/N$ (``alpha=1, alpha_power=1``, the default).
Because the policy changes after every episode, that mean mixes returns of all past policies and
forgets the early, poor ones only at rate $1/N$; ``alpha_power < 1`` (e.g. a constant step,
``alpha_power=0``) forgets faster. Two deliberate, documented options differ from the book:
those step sizes, and ``min_horizon``: in a continuing task every episode is truncated, and
$g_t$ then only sums the $T - t$ rewards before the cut, so returns with fewer than
``min_horizon`` rewards after them are dropped (their bias is at most
$\gamma^{h}\max|r|/(1-\gamma)$ for $h$ = ``min_horizon``; 0 keeps every return, as the book).

**Temporal difference (Chapter 7).** TD methods update after every step towards a *bootstrapped*
target, $x \leftarrow x - \alpha\,(x - \bar y)$, a Robbins--Monro iteration
(:mod:`shiyan.rl.stochastic_approximation`) for the Bellman equation:

$$\text{TD(0)} \quad v(s_t) \leftarrow v(s_t) - \alpha\,[v(s_t) - (r_{t+1} + \gamma v(s_{t+1}))]
\qquad\text{(:func:`td0`)}$$

$$\text{Sarsa} \quad q(s_t,a_t) \leftarrow q(s_t,a_t) - \alpha\,[q(s_t,a_t) - (r_{t+1} + \gamma q(s_{t+1}, a_{t+1}))]
\qquad\text{(:func:`sarsa`)}$$

* *expected Sarsa* (:func:`expected_sarsa`) replaces $q(s_{t+1}, a_{t+1})$ by
  $\sum_a \pi_t(a|s_{t+1}) q(s_{t+1}, a)$;
* $n$-*step Sarsa* (:func:`n_step_sarsa`) uses
  $r_{t+1} + \gamma r_{t+2} + \dots + \gamma^{n-1} r_{t+n} + \gamma^n q(s_{t+n}, a_{t+n})$
  ($n = 1$ is Sarsa; $n \to \infty$ approaches MC);
* *Q-learning* (:func:`q_learning`) targets the Bellman *optimality* equation,
  $r_{t+1} + \gamma \max_a q(s_{t+1}, a)$; it is off-policy: the behaviour policy that generates the
  data can be a fixed exploratory policy (Algorithm 7.3) or the $\varepsilon$-greedy policy of the
  current estimate (the on-policy version, Algorithm 7.2). Either way it learns $q^*$.

At a terminal $s_{t+1}$ the bootstrapped term is 0. The step size is
$\alpha_t(s, a) = \alpha / N_t(s, a)^{p}$ with $N_t$ the number of updates of that entry so far
(``alpha_power`` $= p$; the book's TD methods use a constant $\alpha$, $p = 0$, the TD default, and
$p \in (1/2, 1]$ meets the Robbins--Monro conditions). Greedy choices break ties at the lowest action index. Randomness only enters through
an explicit ``np.random.Generator``.
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np
from scipy.signal import lfilter

from shiyan.rl.bellman import epsilon_greedy_policy, greedy_policy
from shiyan.rl.gridworld import TabularMDP, check_policy

__all__ = [
    "LearningResult",
    "discounted_returns",
    "expected_sarsa",
    "mc_basic",
    "mc_epsilon_greedy",
    "mc_exploring_starts",
    "n_step_sarsa",
    "q_learning",
    "rollout_returns",
    "sarsa",
    "td0",
]


@dataclasses.dataclass(frozen=True)
class LearningResult:
    """What a learner returns."""

    values: np.ndarray
    """Final estimates: q of shape (S, A) for control, v of shape (S,) for TD(0)."""
    policy: np.ndarray
    """Final policy, shape (S, A): greedy or epsilon-greedy in the final q (TD(0): the evaluated policy)."""
    history: np.ndarray
    """Snapshots of ``values``, shape (n_snapshots, *values.shape)."""
    history_steps: np.ndarray
    """Environment steps taken when each snapshot was recorded, shape (n_snapshots,)."""
    episode_lengths: np.ndarray
    """Steps of every episode, shape (n_episodes,)."""
    episode_rewards: np.ndarray
    """Undiscounted sum of rewards of every episode, shape (n_episodes,)."""


# -- checks --------------------------------------------------------------------------------------
def _check_mdp(mdp: TabularMDP) -> TabularMDP:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(
            f"mdp must be a shiyan.rl.gridworld.TabularMDP (e.g. GridWorld().mdp); got {type(mdp).__name__}"
        )
    return mdp


def _check_gamma(gamma: float) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) or not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma!r}")
    return float(gamma)


def _check_int(n: int, name: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n!r}")
    return int(n)


def _check_unit(x: float, name: str, *, open_low: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating)) or not np.isfinite(x):
        raise ValueError(f"{name} must be a number in {'(0' if open_low else '[0'}, 1]; got {x!r}")
    low_ok = x > 0 if open_low else x >= 0
    if not (low_ok and x <= 1):
        raise ValueError(f"{name} must lie in {'(0' if open_low else '[0'}, 1]; got {x!r}")
    return float(x)


def _check_alpha_power(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"alpha_power must lie in [0, 1]; got {p!r}")
    return float(p)


def _check_start(start: int | None, mdp: TabularMDP) -> int | None:
    if start is None:
        return None
    s = _check_int(start, "start", 0)
    if s >= mdp.n_states or mdp.terminal[s]:
        raise ValueError(f"start must be a non-terminal state index in [0, {mdp.n_states}); got {start!r}")
    return s


def _initial(values: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if values is None:
        return np.zeros(shape)
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape {shape}; got {arr.shape}")
    return arr.copy()


# -- shared pieces -------------------------------------------------------------------------------
def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    r"""$g_t = r_{t+1} + \gamma g_{t+1}$ (with $g_T = 0$) for a reward sequence $r_1..r_T$, shape (T,)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be 1-D; got shape {rewards.shape}")
    if rewards.size == 0:
        return rewards.copy()
    # the recursion g_t = r_{t+1} + gamma g_{t+1}, run backwards, is a first-order IIR filter
    return lfilter([1.0], [1.0, -_check_gamma(gamma)], rewards[::-1])[::-1]


def _sample_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the first entry of each cdf row exceeding u (inverse-CDF sampling), shape (B,)."""
    return np.minimum((cdf <= u[:, None]).sum(axis=1), cdf.shape[1] - 1)


def rollout_returns(
    mdp: TabularMDP,
    policy: np.ndarray,
    s0: np.ndarray,
    a0: np.ndarray,
    length: int,
    gamma: float,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Discounted returns of episodes run side by side: each starts with the pair $(s_0, a_0)$,
    then follows ``policy`` for at most ``length`` steps in total; shape (B,) for B starts."""
    return _rollout(mdp, policy, s0, a0, length, gamma, rng)[0]


def _rollout(mdp, policy, s0, a0, length, gamma, rng) -> tuple[np.ndarray, int]:
    """:func:`rollout_returns` and the number of environment steps it took."""
    mdp = _check_mdp(mdp)
    policy = check_policy(policy, mdp.n_states, mdp.n_actions)
    length = _check_int(length, "length")
    gamma = _check_gamma(gamma)
    s = np.asarray(s0, dtype=np.int64).copy()  # (B,)
    a = np.asarray(a0, dtype=np.int64).copy()  # (B,)
    if s.shape != a.shape or s.ndim != 1:
        raise ValueError(f"s0 and a0 must be 1-D of the same length; got {s.shape} and {a.shape}")
    if np.any((s < 0) | (s >= mdp.n_states)) or np.any((a < 0) | (a >= mdp.n_actions)):
        raise ValueError("s0 must hold state indices and a0 action indices")
    if np.any(mdp.terminal[s]):
        raise ValueError("s0 must hold non-terminal states")
    cdf_p = np.cumsum(mdp.P, axis=2)  # (S, A, S)
    cdf_pi = np.cumsum(policy, axis=1)  # (S, A)
    parking = int(mdp.nonterminal_states[0])  # where finished episodes wait (their rewards are masked)
    g = np.zeros(s.shape)
    alive = np.ones(s.shape, dtype=bool)
    discount = 1.0
    steps = 0
    for t in range(length):
        if t > 0:
            a = _sample_rows(cdf_pi[s], rng.random(s.size))
        steps += int(alive.sum())
        g += discount * np.where(alive, mdp.R[s, a], 0.0)  # + gamma^t r_{t+1}
        s_next = _sample_rows(cdf_p[s, a], rng.random(s.size))
        alive &= ~mdp.terminal[s_next]
        s = np.where(alive, s_next, parking)
        discount *= gamma
        if not alive.any():
            break
    return g, steps


def _start(start: int | None, nonterminal: list[int], rng: np.random.Generator) -> int:
    return start if start is not None else nonterminal[int(rng.integers(len(nonterminal)))]


def _epsilon_greedy_action(q_row: list[float], epsilon: float, u_explore: float, u_action: float) -> int:
    r"""With probability $\varepsilon$ a uniformly drawn action, otherwise $\arg\max_a q(s, a)$ (first maximum):
    together $\pi(a^*|s) = 1 - \varepsilon + \varepsilon/|\mathcal A|$, the book's $\varepsilon$-greedy policy."""
    if u_explore < epsilon:
        return min(int(u_action * len(q_row)), len(q_row) - 1)
    return q_row.index(max(q_row))


def _policy_action(cdf_row: list[float], u: float) -> int:
    return min(bisect.bisect_right(cdf_row, u), len(cdf_row) - 1)


class _StepSize:
    r"""$\alpha_t(x) = \alpha / N_t(x)^p$ for table entries $x$ (a state or a state-action pair)."""

    def __init__(self, alpha: float, power: float, n_rows: int, n_cols: int = 1):
        self.alpha, self.power = alpha, power
        self.count = [[0] * n_cols for _ in range(n_rows)]

    def __call__(self, s: int, a: int = 0) -> float:
        if self.power == 0.0:
            return self.alpha
        row = self.count[s]
        row[a] += 1
        return self.alpha / row[a] ** self.power


class _Recorder:
    """Snapshots of a value table (a list, or a list of lists) every ``every`` environment steps
    (and at the start and the end)."""

    def __init__(self, every: int, values: list):
        self.every = every
        self.snaps = [np.array(values, dtype=np.float64)]
        self.steps = [0]
        self.next_at = every

    def tick(self, step: int, values: list) -> None:
        if step >= self.next_at:
            self.snaps.append(np.array(values, dtype=np.float64))
            self.steps.append(step)
            self.next_at = (step // self.every + 1) * self.every

    def finish(self, step: int, values: list) -> tuple[np.ndarray, np.ndarray]:
        if self.steps[-1] != step:
            self.snaps.append(np.array(values, dtype=np.float64))
            self.steps.append(step)
        return np.array(self.snaps), np.array(self.steps, dtype=np.int64)


def _result(values, policy, recorder, step, lengths, rewards) -> LearningResult:
    history, steps = recorder.finish(step, values)
    return LearningResult(
        values=np.array(values, dtype=np.float64),
        policy=policy,
        history=history,
        history_steps=steps,
        episode_lengths=np.asarray(lengths, dtype=np.int64),
        episode_rewards=np.asarray(rewards, dtype=np.float64),
    )


# -- Monte Carlo ---------------------------------------------------------------------------------
def mc_basic(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    n_iterations: int = 20,
    episode_length: int = 100,
    episodes_per_pair: int = 1,
    policy0: np.ndarray | None = None,
) -> LearningResult:
    r"""MC basic (Algorithm 5.1): policy iteration with $q_{\pi_k}(s, a)$ estimated by the mean return
    of ``episodes_per_pair`` episodes of ``episode_length`` steps that start with $(s, a)$.

    A deterministic MDP and policy make one episode per pair exact up to the truncation error
    $\gamma^L \max|r| / (1 - \gamma)$; short episodes leave states far from the reward at value 0
    (the book's episode-length experiment). ``history`` holds $q_k$ after every iteration
    (``history_steps`` counts the samples used so far); ``policy0`` defaults to "always action 0".
    """
    mdp = _check_mdp(mdp)
    gamma = _check_gamma(gamma)
    n_iterations = _check_int(n_iterations, "n_iterations")
    episode_length = _check_int(episode_length, "episode_length")
    episodes_per_pair = _check_int(episodes_per_pair, "episodes_per_pair")
    n_s, n_a = mdp.n_states, mdp.n_actions
    if policy0 is None:
        pi = np.zeros((n_s, n_a))
        pi[:, 0] = 1.0
    else:
        pi = check_policy(policy0, n_s, n_a, name="policy0")
    states = mdp.nonterminal_states
    s0 = np.repeat(np.repeat(states, n_a), episodes_per_pair)  # (B,) every pair, episodes_per_pair times
    a0 = np.repeat(np.tile(np.arange(n_a), states.size), episodes_per_pair)  # (B,)
    q = np.zeros((n_s, n_a))
    recorder = _Recorder(1, q)
    samples = 0
    for _ in range(n_iterations):
        g, steps = _rollout(mdp, pi, s0, a0, episode_length, gamma, rng)  # (B,)
        q = np.zeros((n_s, n_a))
        q[states] = g.reshape(states.size, n_a, episodes_per_pair).mean(axis=2)  # q_{pi_k}(s, a)
        samples += steps
        pi = greedy_policy(q)
        recorder.tick(samples, q)
    return _result(q, pi, recorder, samples, [], [])


def _mc_control(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    epsilon: float,
    exploring_starts: bool,
    n_episodes: int,
    episode_length: int,
    first_visit: bool,
    min_horizon: int,
    alpha: float,
    alpha_power: float,
    start: int | None,
    record_every: int,
) -> LearningResult:
    n_s, n_a = mdp.n_states, mdp.n_actions
    step = mdp.sampler(rng)
    nonterminal = mdp.nonterminal_states.tolist()
    step_size = _StepSize(alpha, alpha_power, n_s, n_a)
    q = [[0.0] * n_a for _ in range(n_s)]
    recorder = _Recorder(record_every, q)
    lengths, totals = [], []
    step_count = 0
    for _ in range(n_episodes):
        s = _start(start, nonterminal, rng)
        u = rng.random((episode_length, 2)).tolist()
        a = int(rng.integers(n_a)) if exploring_starts else _epsilon_greedy_action(q[s], epsilon, *u[0])
        states, actions, rewards = [], [], []
        for t in range(episode_length):
            s_next, r, done = step(s, a)
            states.append(s)
            actions.append(a)
            rewards.append(r)
            if done or t + 1 == episode_length:
                break
            s = s_next
            a = _epsilon_greedy_action(q[s], epsilon, *u[t + 1])  # epsilon = 0: the greedy policy
        g = discounted_returns(np.array(rewards), gamma)  # (T,) g_t for every step
        pairs = np.array(states) * n_a + np.array(actions)  # (T,) flat index s * n_a + a
        if not done and min_horizon > 0:  # truncated: drop returns cut short by the truncation
            keep = max(len(rewards) - min_horizon + 1, 0)
            g, pairs = g[:keep], pairs[:keep]
        if first_visit:
            pairs, first = np.unique(pairs, return_index=True)
            g = g[first]
        # policy evaluation, backwards through the episode: q(s, a) <- q(s, a) + alpha_N (g - q(s, a));
        # alpha_N = 1/N (the default) keeps q(s, a) equal to the mean of all returns seen for (s, a)
        for k, g_k in zip(pairs[::-1].tolist(), g[::-1].tolist(), strict=True):
            s_k, a_k = divmod(k, n_a)
            q[s_k][a_k] += step_size(s_k, a_k) * (g_k - q[s_k][a_k])
        # the policy improvement is implicit: actions are chosen (epsilon-)greedily in q
        step_count += len(rewards)
        lengths.append(len(rewards))
        totals.append(float(np.sum(rewards)))
        recorder.tick(step_count, q)
    policy = epsilon_greedy_policy(np.array(q), epsilon)
    return _result(q, policy, recorder, step_count, lengths, totals)


def mc_exploring_starts(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    n_episodes: int = 2000,
    episode_length: int = 100,
    first_visit: bool = False,
    min_horizon: int = 0,
    alpha: float = 1.0,
    alpha_power: float = 1.0,
    record_every: int = 10_000,
) -> LearningResult:
    r"""MC exploring starts (Algorithm 5.2).

    Each episode starts from a uniformly drawn pair $(s_0, a_0)$ (a non-terminal state and any
    action), then follows the greedy policy of the current $q$. Going backwards through it,
    $g \leftarrow \gamma g + r_{t+1}$ updates $q(s_t, a_t) \leftarrow q(s_t, a_t) + \alpha_N (g - q(s_t, a_t))$
    (every visit, or the first visit of each pair with ``first_visit``), and the policy becomes
    greedy again. $\alpha_N = $ ``alpha`` $/ N^{p}$ (``alpha_power`` $= p$) for the $N$-th return of the
    pair: the defaults give the book's running mean. ``min_horizon``: see the module docstring.
    """
    mdp = _check_mdp(mdp)
    return _mc_control(
        mdp,
        _check_gamma(gamma),
        rng,
        epsilon=0.0,
        exploring_starts=True,
        n_episodes=_check_int(n_episodes, "n_episodes"),
        episode_length=_check_int(episode_length, "episode_length"),
        first_visit=bool(first_visit),
        min_horizon=_check_int(min_horizon, "min_horizon", 0),
        alpha=_check_unit(alpha, "alpha", open_low=True),
        alpha_power=_check_alpha_power(alpha_power),
        start=None,
        record_every=_check_int(record_every, "record_every"),
    )


def mc_epsilon_greedy(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    epsilon: float = 0.1,
    n_episodes: int = 2000,
    episode_length: int = 100,
    first_visit: bool = False,
    min_horizon: int = 0,
    alpha: float = 1.0,
    alpha_power: float = 1.0,
    start: int | None = None,
    record_every: int = 10_000,
) -> LearningResult:
    r"""MC $\varepsilon$-greedy (Algorithm 5.3): every-visit MC control with an $\varepsilon$-greedy policy.

    Episodes start at ``start`` (``None``: a uniformly drawn non-terminal state) and every action,
    the first included, is $\varepsilon$-greedy in the current $q$. The updates are those of
    :func:`mc_exploring_starts` (same ``alpha``, ``alpha_power``, ``first_visit``, ``min_horizon``).
    The returned ``policy`` is the $\varepsilon$-greedy policy of the final $q$.
    """
    mdp = _check_mdp(mdp)
    return _mc_control(
        mdp,
        _check_gamma(gamma),
        rng,
        epsilon=_check_unit(epsilon, "epsilon"),
        exploring_starts=False,
        n_episodes=_check_int(n_episodes, "n_episodes"),
        episode_length=_check_int(episode_length, "episode_length"),
        first_visit=bool(first_visit),
        min_horizon=_check_int(min_horizon, "min_horizon", 0),
        alpha=_check_unit(alpha, "alpha", open_low=True),
        alpha_power=_check_alpha_power(alpha_power),
        start=_check_start(start, mdp),
        record_every=_check_int(record_every, "record_every"),
    )


# -- temporal difference -------------------------------------------------------------------------
def td0(
    mdp: TabularMDP,
    policy: np.ndarray,
    gamma: float,
    rng: np.random.Generator,
    *,
    alpha: float = 0.1,
    alpha_power: float = 0.0,
    n_episodes: int = 1,
    episode_length: int = 100_000,
    start: int | None = None,
    v0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LearningResult:
    r"""TD(0) estimate of $v_\pi$ from episodes that follow ``policy``:
    $v(s_t) \leftarrow v(s_t) - \alpha_t [v(s_t) - (r_{t+1} + \gamma v(s_{t+1}))]$.

    One long episode (the default) suits a continuing task; ``start=None`` draws each episode's
    first state uniformly from the non-terminal states.
    """
    mdp = _check_mdp(mdp)
    gamma = _check_gamma(gamma)
    policy = check_policy(policy, mdp.n_states, mdp.n_actions)
    alpha = _check_unit(alpha, "alpha", open_low=True)
    alpha_power = _check_alpha_power(alpha_power)
    n_episodes = _check_int(n_episodes, "n_episodes")
    episode_length = _check_int(episode_length, "episode_length")
    start = _check_start(start, mdp)
    record_every = _check_int(record_every, "record_every")
    v = _initial(v0, (mdp.n_states,), "v0")
    v[mdp.terminal] = 0.0
    v = v.tolist()
    step = mdp.sampler(rng)
    cdf_pi = np.cumsum(policy, axis=1).tolist()
    nonterminal = mdp.nonterminal_states.tolist()
    step_size = _StepSize(alpha, alpha_power, mdp.n_states)
    recorder = _Recorder(record_every, v)
    lengths, totals = [], []
    step_count = 0
    for _ in range(n_episodes):
        s = _start(start, nonterminal, rng)
        u = rng.random(episode_length).tolist()
        total = 0.0
        for t in range(episode_length):
            a = _policy_action(cdf_pi[s], u[t])
            s_next, r, done = step(s, a)
            target = r if done else r + gamma * v[s_next]  # TD target
            v[s] -= step_size(s) * (v[s] - target)  # minus alpha times the TD error
            total += r
            step_count += 1
            recorder.tick(step_count, v)
            if done:
                break
            s = s_next
        lengths.append(t + 1)
        totals.append(total)
    return _result(v, policy, recorder, step_count, lengths, totals)


def _td_control(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    kind: str,
    epsilon: float,
    alpha: float,
    alpha_power: float,
    n_episodes: int,
    episode_length: int,
    start: int | None,
    q0: np.ndarray | None,
    record_every: int,
    behaviour: np.ndarray | None = None,
) -> LearningResult:
    """Sarsa, expected Sarsa and Q-learning: one-step TD control differing only in the target."""
    mdp = _check_mdp(mdp)
    gamma = _check_gamma(gamma)
    epsilon = _check_unit(epsilon, "epsilon")
    alpha = _check_unit(alpha, "alpha", open_low=True)
    alpha_power = _check_alpha_power(alpha_power)
    n_episodes = _check_int(n_episodes, "n_episodes")
    episode_length = _check_int(episode_length, "episode_length")
    start = _check_start(start, mdp)
    record_every = _check_int(record_every, "record_every")
    n_s, n_a = mdp.n_states, mdp.n_actions
    q = _initial(q0, (n_s, n_a), "q0")
    q[mdp.terminal] = 0.0
    q = q.tolist()
    cdf_b = None
    if behaviour is not None:
        cdf_b = np.cumsum(check_policy(behaviour, n_s, n_a, name="behaviour"), axis=1).tolist()
    step = mdp.sampler(rng)
    nonterminal = mdp.nonterminal_states.tolist()
    step_size = _StepSize(alpha, alpha_power, n_s, n_a)
    recorder = _Recorder(record_every, q)
    lengths, totals = [], []
    step_count = 0
    greedy_mass, uniform_mass = 1.0 - epsilon, epsilon / n_a

    def act(s: int, u: list[float]) -> int:
        if cdf_b is not None:  # a fixed behaviour policy (off-policy Q-learning)
            return _policy_action(cdf_b[s], u[0])
        return _epsilon_greedy_action(q[s], epsilon, u[0], u[1])

    for _ in range(n_episodes):
        s = _start(start, nonterminal, rng)
        u = rng.random((episode_length + 1, 2)).tolist()
        a = act(s, u[0])
        total = 0.0
        for t in range(episode_length):
            s_next, r, done = step(s, a)
            a_next = -1
            if done:
                target = r
            else:
                a_next = act(s_next, u[t + 1])
                row = q[s_next]
                if kind == "sarsa":  # r + gamma q(s', a')
                    target = r + gamma * row[a_next]
                elif kind == "expected_sarsa":  # r + gamma sum_a pi(a|s') q(s', a), pi epsilon-greedy
                    target = r + gamma * (greedy_mass * max(row) + uniform_mass * sum(row))
                else:  # Q-learning: r + gamma max_a q(s', a)
                    target = r + gamma * max(row)
            q_s = q[s]
            q_s[a] -= step_size(s, a) * (q_s[a] - target)
            total += r
            step_count += 1
            recorder.tick(step_count, q)
            if done:
                break
            s, a = s_next, a_next
        lengths.append(t + 1)
        totals.append(total)
    q_arr = np.array(q)
    policy = greedy_policy(q_arr) if kind == "q_learning" else epsilon_greedy_policy(q_arr, epsilon)
    return _result(q, policy, recorder, step_count, lengths, totals)


def sarsa(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    epsilon: float = 0.1,
    alpha: float = 0.1,
    alpha_power: float = 0.0,
    n_episodes: int = 500,
    episode_length: int = 1000,
    start: int | None = None,
    q0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LearningResult:
    r"""Sarsa (Algorithm 7.1) with the $\varepsilon$-greedy policy of the current $q$:
    $q(s_t,a_t) \leftarrow q(s_t,a_t) - \alpha_t[q(s_t,a_t) - (r_{t+1} + \gamma q(s_{t+1},a_{t+1}))]$.

    Episodes start at ``start`` (``None``: uniformly drawn). The returned ``policy`` is the
    $\varepsilon$-greedy policy of the final $q$.
    """
    return _td_control(
        mdp,
        gamma,
        rng,
        kind="sarsa",
        epsilon=epsilon,
        alpha=alpha,
        alpha_power=alpha_power,
        n_episodes=n_episodes,
        episode_length=episode_length,
        start=start,
        q0=q0,
        record_every=record_every,
    )


def expected_sarsa(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    epsilon: float = 0.1,
    alpha: float = 0.1,
    alpha_power: float = 0.0,
    n_episodes: int = 500,
    episode_length: int = 1000,
    start: int | None = None,
    q0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LearningResult:
    r"""Expected Sarsa: the target is $r_{t+1} + \gamma \sum_a \pi_t(a|s_{t+1}) q(s_{t+1}, a)$ with
    $\pi_t$ the $\varepsilon$-greedy policy of $q$, i.e. $(1 - \varepsilon)\max_a q + \varepsilon\,\mathrm{mean}_a\, q$."""
    return _td_control(
        mdp,
        gamma,
        rng,
        kind="expected_sarsa",
        epsilon=epsilon,
        alpha=alpha,
        alpha_power=alpha_power,
        n_episodes=n_episodes,
        episode_length=episode_length,
        start=start,
        q0=q0,
        record_every=record_every,
    )


def q_learning(
    mdp: TabularMDP,
    gamma: float,
    rng: np.random.Generator,
    *,
    behaviour: np.ndarray | None = None,
    epsilon: float = 0.1,
    alpha: float = 0.1,
    alpha_power: float = 0.0,
    n_episodes: int = 500,
    episode_length: int = 1000,
    start: int | None = None,
    q0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LearningResult:
    r"""Q-learning: $q(s_t,a_t) \leftarrow q(s_t,a_t) - \alpha_t[q(s_t,a_t) - (r_{t+1} + \gamma \max_a q(s_{t+1},a))]$.

    ``behaviour=None`` is the on-policy version (Algorithm 7.2): actions are $\varepsilon$-greedy in
    the current $q$. A fixed ``behaviour`` policy of shape (S, A) is the off-policy version
    (Algorithm 7.3; the book uses the uniform policy and one episode of $10^5$ steps) and ``epsilon``
    is ignored. Either way the returned ``policy`` is greedy in the final $q$, the estimate of $\pi^*$.
    """
    return _td_control(
        mdp,
        gamma,
        rng,
        kind="q_learning",
        epsilon=epsilon,
        alpha=alpha,
        alpha_power=alpha_power,
        n_episodes=n_episodes,
        episode_length=episode_length,
        start=start,
        q0=q0,
        record_every=record_every,
        behaviour=behaviour,
    )


def n_step_sarsa(
    mdp: TabularMDP,
    gamma: float,
    n: int,
    rng: np.random.Generator,
    *,
    epsilon: float = 0.1,
    alpha: float = 0.1,
    alpha_power: float = 0.0,
    n_episodes: int = 500,
    episode_length: int = 1000,
    start: int | None = None,
    q0: np.ndarray | None = None,
    record_every: int = 1000,
) -> LearningResult:
    r"""$n$-step Sarsa: $q(s_\tau, a_\tau)$ moves towards
    $g_{\tau:\tau+n} = \sum_{i=0}^{n-1}\gamma^i r_{\tau+i+1} + \gamma^n q(s_{\tau+n}, a_{\tau+n})$, an update
    made once $r_{\tau+n}$ is known (with the $\varepsilon$-greedy policy of the current $q$).

    Near the end of an episode the sum stops at the terminal state (no bootstrap) or, after a
    truncation at step $T$, bootstraps from $q(s_T, a_T)$ with the discount $\gamma^{T - \tau}$.
    ``n = 1`` is exactly :func:`sarsa` (the same samples give the same estimates).
    """
    mdp = _check_mdp(mdp)
    gamma = _check_gamma(gamma)
    n = _check_int(n, "n")
    epsilon = _check_unit(epsilon, "epsilon")
    alpha = _check_unit(alpha, "alpha", open_low=True)
    alpha_power = _check_alpha_power(alpha_power)
    n_episodes = _check_int(n_episodes, "n_episodes")
    episode_length = _check_int(episode_length, "episode_length")
    start = _check_start(start, mdp)
    record_every = _check_int(record_every, "record_every")
    n_s, n_a = mdp.n_states, mdp.n_actions
    q = _initial(q0, (n_s, n_a), "q0")
    q[mdp.terminal] = 0.0
    q = q.tolist()
    step = mdp.sampler(rng)
    nonterminal = mdp.nonterminal_states.tolist()
    step_size = _StepSize(alpha, alpha_power, n_s, n_a)
    recorder = _Recorder(record_every, q)
    powers = [gamma**i for i in range(n + 1)]  # gamma^0 .. gamma^n
    lengths, totals = [], []
    step_count = 0

    def update(tau: int, end: int, bootstrap: bool) -> None:
        # g = sum_{i=tau}^{end-1} gamma^{i-tau} r_{i+1}  (+ gamma^{end-tau} q(s_end, a_end))
        g = 0.0
        for i in range(end - 1, tau - 1, -1):
            g = rewards[i] + gamma * g
        if bootstrap:
            g += powers[end - tau] * q[states[end]][actions[end]]
        q_s, a_tau = q[states[tau]], actions[tau]
        q_s[a_tau] -= step_size(states[tau], a_tau) * (q_s[a_tau] - g)

    for _ in range(n_episodes):
        s = _start(start, nonterminal, rng)
        u = rng.random((episode_length + 1, 2)).tolist()
        a = _epsilon_greedy_action(q[s], epsilon, *u[0])
        states, actions, rewards = [s], [a], []
        done = False
        for t in range(episode_length):
            s_next, r, done = step(s, a)
            rewards.append(r)
            step_count += 1
            if not done:
                a_next = _epsilon_greedy_action(q[s_next], epsilon, *u[t + 1])
                states.append(s_next)
                actions.append(a_next)
            tau = t + 1 - n  # the pair whose n-step return is now complete
            if tau >= 0 and not done:
                update(tau, tau + n, bootstrap=True)
            recorder.tick(step_count, q)
            if done:
                break
            s, a = s_next, a_next
        n_steps = len(rewards)
        # the last pairs: their returns stop at the terminal state, or bootstrap at the truncation
        for tau in range(max(n_steps - n + (0 if done else 1), 0), n_steps):
            update(tau, n_steps, bootstrap=not done)
        recorder.tick(step_count, q)
        lengths.append(n_steps)
        totals.append(float(np.sum(rewards)))
    return _result(q, epsilon_greedy_policy(np.array(q), epsilon), recorder, step_count, lengths, totals)
