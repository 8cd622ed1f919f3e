"""Model-free tabular learners against the model-based solvers of shiyan.rl.bellman.

Every learner runs on the book's 5x5 world and on two other layouts (a 4x5 continuing world and a
4x4 episodic one), with fixed seeds. Control methods are judged by the exact value of the policy
they return (the solver evaluates it): the greedy methods against $v^*$, the epsilon-greedy ones
against the best epsilon-greedy policy (epsilon-greedy policy iteration on the model).
"""

from __future__ import annotations

import numpy as np
import pytest

from shiyan.rl import bellman as b
from shiyan.rl import tabular as tb
from shiyan.rl.gridworld import GridWorld, TabularMDP

GAMMA = 0.9
EPS = 0.5  # epsilon of the epsilon-greedy learners: enough exploration to visit every pair often

LAYOUTS = {
    "book": lambda: GridWorld(),
    "4x5": lambda: GridWorld(4, 5, target=(1, 3), forbidden=((0, 1), (1, 1), (2, 2), (2, 3), (3, 1)), r_forbidden=-3.0),
    "4x4-episodic": lambda: GridWorld(
        4, 4, target=(3, 3), forbidden=((1, 1), (2, 1), (1, 3)), r_forbidden=-2.0, episodic=True
    ),
}


def optimal(mdp):
    return b.value_iteration(mdp.P, mdp.R, GAMMA, tol=1e-12)


def epsilon_optimal(mdp):
    return b.epsilon_greedy_policy_iteration(mdp.P, mdp.R, GAMMA, EPS)


def scores(mdp, policy, q_learned, ref):
    """(max value gap, mean value gap, max one-step regret under the reference q), non-terminal states."""
    v = b.evaluate_policy(mdp.P, mdp.R, policy, GAMMA)
    live = ~mdp.terminal
    gap = (ref.v - v)[live]
    chosen = q_learned.argmax(axis=1)
    regret = (ref.q.max(axis=1) - ref.q[np.arange(mdp.n_states), chosen])[live]
    return float(np.max(np.abs(gap))), float(np.mean(gap)), float(np.max(regret))


def random_mdp(seed, n_s=6, n_a=3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_s, 0.7), size=(n_s, n_a))
    R = rng.normal(size=(n_s, n_a))
    return TabularMDP(P, R, np.zeros(n_s, dtype=bool))


# -- building blocks -----------------------------------------------------------------------------
def test_discounted_returns_match_the_definition():
    r = np.random.default_rng(0).normal(size=30)
    naive = [sum(0.9**i * r[t + i] for i in range(30 - t)) for t in range(30)]
    np.testing.assert_allclose(tb.discounted_returns(r, 0.9), naive, rtol=1e-12, atol=1e-12)


def truncated_q(mdp, policy, length):
    """Exact expected return of L-step episodes starting with (s, a), then following policy."""
    P_pi, r_pi = b.policy_model(mdp.P, mdp.R, policy)
    v = np.zeros(mdp.n_states)
    for _ in range(length - 1):
        v = r_pi + GAMMA * P_pi @ v
    return mdp.R + GAMMA * np.einsum("sat,t->sa", mdp.P, v)


@pytest.mark.parametrize("layout", ["book", "4x4-episodic"])
def test_rollouts_of_a_deterministic_world_are_exact(layout):
    mdp = LAYOUTS[layout]().mdp
    pi = b.uniform_policy(mdp.n_states, mdp.n_actions)
    pi = b.greedy_policy(np.random.default_rng(0).normal(size=pi.shape))  # a deterministic policy
    s0 = np.repeat(mdp.nonterminal_states, 5)
    a0 = np.tile(np.arange(5), mdp.nonterminal_states.size)
    g = tb.rollout_returns(mdp, pi, s0, a0, 12, GAMMA, np.random.default_rng(1))
    np.testing.assert_allclose(g, truncated_q(mdp, pi, 12)[s0, a0], atol=1e-12)


def test_rollouts_of_a_stochastic_mdp_average_to_the_truncated_value():
    mdp = random_mdp(0)
    pi = b.uniform_policy(6, 3)
    n = 4000
    s0 = np.repeat(np.arange(6), 3 * n)
    a0 = np.tile(np.repeat(np.arange(3), n), 6)
    g = tb.rollout_returns(mdp, pi, s0, a0, 15, GAMMA, np.random.default_rng(2)).reshape(6, 3, n)
    se = g.std(axis=2) / np.sqrt(n)
    assert np.all(np.abs(g.mean(axis=2) - truncated_q(mdp, pi, 15)) < 5 * se)


# -- Monte Carlo ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mc_basic_finds_the_optimal_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    res = tb.mc_basic(mdp, GAMMA, np.random.default_rng(0), n_iterations=15, episode_length=150)
    opt = optimal(mdp)
    gap, _, _ = scores(mdp, res.policy, res.values, opt)
    assert gap < 1e-8
    # deterministic world and policy: one episode per pair is exact up to the truncation
    bound = GAMMA**150 * np.abs(mdp.R).max() / (1 - GAMMA)
    live = ~mdp.terminal
    assert np.max(np.abs(res.values - opt.q)[live]) <= bound + 1e-9
    assert res.history.shape == (16, mdp.n_states, 5) and np.all(np.diff(res.history_steps) > 0)


def test_mc_basic_with_one_step_episodes_is_the_immediate_reward():
    mdp = GridWorld().mdp
    res = tb.mc_basic(mdp, GAMMA, np.random.default_rng(0), n_iterations=2, episode_length=1)
    np.testing.assert_array_equal(res.values, mdp.R)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mc_exploring_starts_constant_step_finds_the_optimal_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    res = tb.mc_exploring_starts(
        mdp,
        GAMMA,
        np.random.default_rng(0),
        n_episodes=2000,
        episode_length=60,
        min_horizon=30,
        alpha=0.5,
        alpha_power=0,
    )
    gap, _, _ = scores(mdp, res.policy, res.values, optimal(mdp))
    assert gap < 0.1
    assert res.episode_lengths.sum() == res.history_steps[-1]


@pytest.mark.parametrize("first_visit", [False, True])
def test_mc_running_mean_evaluates_a_fixed_policy(first_visit):
    # With a single action the policy cannot change, so the book's running mean of returns is the
    # plain Monte Carlo estimate of v_pi on a stochastic MDP (truncation bias < 0.9^70 * 2 / 0.1 ~ 0.02).
    mdp = random_mdp(4, n_s=5, n_a=1)
    exact = b.evaluate_policy(mdp.P, mdp.R, np.ones((5, 1)), GAMMA)
    res = tb.mc_exploring_starts(
        mdp,
        GAMMA,
        np.random.default_rng(0),
        n_episodes=3000,
        episode_length=100,
        min_horizon=70,
        first_visit=first_visit,
    )
    assert np.max(np.abs(res.values[:, 0] - exact)) < 0.15


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mc_epsilon_greedy_reaches_the_best_epsilon_greedy_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    res = tb.mc_epsilon_greedy(
        mdp,
        GAMMA,
        np.random.default_rng(0),
        epsilon=EPS,
        n_episodes=2000,
        episode_length=60,
        min_horizon=30,
        first_visit=True,
    )
    np.testing.assert_allclose(res.policy, b.epsilon_greedy_policy(res.values, EPS))
    max_gap, mean_gap, regret = scores(mdp, res.policy, res.values, epsilon_optimal(mdp))
    assert mean_gap < 0.1 and max_gap < 0.5 and regret < 0.5


# -- TD(0) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["book", "4x5"])
def test_td0_estimates_the_random_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    pi = b.uniform_policy(mdp.n_states, 5)
    exact = b.evaluate_policy(mdp.P, mdp.R, pi, GAMMA)
    res = tb.td0(mdp, pi, GAMMA, np.random.default_rng(0), alpha=1.0, alpha_power=0.7, episode_length=100_000)
    assert np.max(np.abs(res.values - exact)) < 0.3
    if layout == "book":  # the book's constant step also gets there, noisier
        const = tb.td0(mdp, pi, GAMMA, np.random.default_rng(0), alpha=0.05, episode_length=100_000)
        assert np.max(np.abs(const.values - exact)) < 0.5
    # and the error shrinks along the run
    errors = np.abs(res.history - exact).max(axis=1)
    assert errors[-1] < errors[len(errors) // 10] < errors[0]


def test_td0_on_a_stochastic_mdp_and_an_episodic_world():
    mdp = random_mdp(1)
    pi = np.random.default_rng(3).dirichlet(np.ones(3), size=6)
    exact = b.evaluate_policy(mdp.P, mdp.R, pi, GAMMA)
    res = tb.td0(mdp, pi, GAMMA, np.random.default_rng(0), alpha=1.0, alpha_power=0.7, episode_length=60_000)
    assert np.max(np.abs(res.values - exact)) < 0.2
    env = LAYOUTS["4x4-episodic"]()
    pi = b.uniform_policy(16, 5)
    exact = b.evaluate_policy(env.mdp.P, env.mdp.R, pi, GAMMA)
    res = tb.td0(
        env.mdp, pi, GAMMA, np.random.default_rng(0), alpha=1.0, alpha_power=0.7, n_episodes=2000, episode_length=200
    )
    assert res.values[env.target_state] == 0.0
    assert np.max(np.abs(res.values - exact)) < 0.3
    assert np.all(res.episode_lengths <= 200) and res.episode_lengths.size == 2000


# -- Sarsa family --------------------------------------------------------------------------------
SARSA_FAMILY = {
    "sarsa": lambda mdp, rng, **kw: tb.sarsa(mdp, GAMMA, rng, **kw),
    "expected_sarsa": lambda mdp, rng, **kw: tb.expected_sarsa(mdp, GAMMA, rng, **kw),
    "3-step_sarsa": lambda mdp, rng, **kw: tb.n_step_sarsa(mdp, GAMMA, 3, rng, **kw),
}


@pytest.mark.parametrize("method", list(SARSA_FAMILY))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_sarsa_family_reaches_the_best_epsilon_greedy_policy(method, layout):
    mdp = LAYOUTS[layout]().mdp
    res = SARSA_FAMILY[method](
        mdp, np.random.default_rng(0), epsilon=EPS, alpha=0.5, alpha_power=0.7, n_episodes=3000, episode_length=30
    )
    max_gap, _, regret = scores(mdp, res.policy, res.values, epsilon_optimal(mdp))
    assert max_gap < 0.3 and regret < 0.3


def test_one_step_sarsa_is_sarsa():
    mdp = LAYOUTS["4x4-episodic"]().mdp
    kw = dict(epsilon=0.2, alpha=0.3, n_episodes=50, episode_length=40, record_every=50)
    a = tb.sarsa(mdp, GAMMA, np.random.default_rng(5), **kw)
    n1 = tb.n_step_sarsa(mdp, GAMMA, 1, np.random.default_rng(5), **kw)
    np.testing.assert_array_equal(a.values, n1.values)
    np.testing.assert_array_equal(a.episode_lengths, n1.episode_lengths)


def test_expected_sarsa_without_exploration_is_greedy_q_learning():
    mdp = GridWorld().mdp
    kw = dict(epsilon=0.0, alpha=0.3, n_episodes=40, episode_length=50)
    e = tb.expected_sarsa(mdp, GAMMA, np.random.default_rng(6), **kw)
    q = tb.q_learning(mdp, GAMMA, np.random.default_rng(6), **kw)
    np.testing.assert_array_equal(e.values, q.values)


def test_n_step_sarsa_with_long_n_on_an_episodic_world():
    # n larger than any episode: every update uses the full (MC) return of the episode
    mdp = LAYOUTS["4x4-episodic"]().mdp
    res = tb.n_step_sarsa(
        mdp,
        GAMMA,
        500,
        np.random.default_rng(0),
        epsilon=EPS,
        alpha=0.5,
        alpha_power=0.7,
        n_episodes=3000,
        episode_length=100,
    )
    max_gap, _, _ = scores(mdp, res.policy, res.values, epsilon_optimal(mdp))
    assert max_gap < 0.3


# -- Q-learning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_q_learning_off_policy_learns_the_optimal_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    behaviour = b.uniform_policy(mdp.n_states, 5)
    episodic = bool(mdp.terminal.any())
    n_episodes, length = (4000, 25) if episodic else (1, 100_000)  # the book: one episode of 1e5 steps
    res = tb.q_learning(
        mdp, GAMMA, np.random.default_rng(0), behaviour=behaviour, n_episodes=n_episodes, episode_length=length
    )
    opt = optimal(mdp)
    gap, _, _ = scores(mdp, res.policy, res.values, opt)
    assert gap < 0.1
    assert np.max(np.abs(res.values - opt.q)[~mdp.terminal]) < 0.1
    np.testing.assert_array_equal(res.policy, b.greedy_policy(res.values))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_q_learning_on_policy_learns_the_optimal_policy(layout):
    mdp = LAYOUTS[layout]().mdp
    res = tb.q_learning(
        mdp, GAMMA, np.random.default_rng(0), epsilon=EPS, alpha=0.1, n_episodes=3000, episode_length=30
    )
    gap, _, _ = scores(mdp, res.policy, res.values, optimal(mdp))
    assert gap < 0.1  # Q-learning learns q*, not the epsilon-greedy optimum, whatever its behaviour


def test_q_learning_on_a_stochastic_mdp():
    mdp = random_mdp(2)
    res = tb.q_learning(
        mdp,
        GAMMA,
        np.random.default_rng(0),
        behaviour=b.uniform_policy(6, 3),
        alpha=1.0,
        alpha_power=0.7,
        n_episodes=1,
        episode_length=100_000,
    )
    opt = optimal(mdp)
    assert np.max(np.abs(res.values - opt.q)) < 0.3
    gap, _, _ = scores(mdp, res.policy, res.values, opt)
    assert gap < 0.1


# -- records and arguments -----------------------------------------------------------------------
def test_history_is_recorded_on_schedule():
    mdp = GridWorld().mdp
    res = tb.sarsa(mdp, GAMMA, np.random.default_rng(0), n_episodes=10, episode_length=100, record_every=250)
    np.testing.assert_array_equal(res.history_steps, [0, 250, 500, 750, 1000])
    assert res.history.shape == (5, 25, 5)
    np.testing.assert_array_equal(res.history[-1], res.values)
    assert np.all(res.history[0] == 0)
    assert res.episode_rewards.shape == (10,)


def test_same_seed_same_numbers():
    mdp = GridWorld().mdp
    a = tb.mc_epsilon_greedy(mdp, GAMMA, np.random.default_rng(9), n_episodes=30, episode_length=40)
    c = tb.mc_epsilon_greedy(mdp, GAMMA, np.random.default_rng(9), n_episodes=30, episode_length=40)
    np.testing.assert_array_equal(a.values, c.values)


def test_bad_arguments():
    mdp = GridWorld().mdp
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="mdp"):
        tb.sarsa(GridWorld(), GAMMA, rng)
    with pytest.raises(ValueError, match="epsilon"):
        tb.sarsa(mdp, GAMMA, rng, epsilon=1.5)
    with pytest.raises(ValueError, match="alpha"):
        tb.q_learning(mdp, GAMMA, rng, alpha=0.0)
    with pytest.raises(ValueError, match="gamma"):
        tb.td0(mdp, b.uniform_policy(25, 5), 1.5, rng)
    with pytest.raises(ValueError, match="start"):
        tb.sarsa(GridWorld(episodic=True).mdp, GAMMA, rng, start=GridWorld().target_state)
    with pytest.raises(ValueError, match="behaviour"):
        tb.q_learning(mdp, GAMMA, rng, behaviour=np.ones((25, 5)))
    with pytest.raises(ValueError, match="n must"):
        tb.n_step_sarsa(mdp, GAMMA, 0, rng)
    with pytest.raises(ValueError, match="min_horizon"):
        tb.mc_exploring_starts(mdp, GAMMA, rng, min_horizon=-1)
    with pytest.raises(ValueError, match="s0"):
        tb.rollout_returns(GridWorld(episodic=True).mdp, b.uniform_policy(25, 5), [17], [0], 5, GAMMA, rng)
