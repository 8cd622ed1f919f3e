"""Bellman solvers against the book's printed values, against each other, and against brute-force
enumeration of every deterministic policy on small MDPs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shiyan.rl import bellman as b
from shiyan.rl.gridworld import GridWorld

GAMMA = 0.9

# The book's figures (Chapters 2-4), row by row, r_boundary = -1, r_target = 1, gamma = 0.9.
BOOK_OPTIMAL_RF1 = [
    [5.8, 5.6, 6.2, 6.5, 5.8],
    [6.5, 7.2, 8.0, 7.2, 6.5],
    [7.2, 8.0, 10, 8.0, 7.2],
    [8.0, 10, 10, 10, 8.0],
    [7.2, 9.0, 10, 9.0, 8.1],
]
BOOK_OPTIMAL_RF10 = [
    [3.5, 3.9, 4.3, 4.8, 5.3],
    [3.1, 3.5, 4.8, 5.3, 5.9],
    [2.8, 2.5, 10, 5.9, 6.6],
    [2.5, 10, 10, 10, 7.3],
    [2.3, 9.0, 10, 9.0, 8.1],
]
BOOK_UNIFORM_RF1 = [
    [-3.8, -3.8, -3.6, -3.1, -3.2],
    [-3.8, -3.8, -3.8, -3.1, -2.9],
    [-3.6, -3.9, -3.4, -3.2, -2.9],
    [-3.9, -3.6, -3.4, -2.9, -3.2],
    [-4.5, -4.2, -3.4, -3.4, -3.5],
]
# The book prints one decimal: a value that rounds to the printed number is within 0.05.
PRINT_TOL = 0.05 + 1e-9


def random_mdp(rng, n_s, n_a, terminal=0):
    P = rng.dirichlet(np.full(n_s, 0.5), size=(n_s, n_a))
    R = rng.normal(size=(n_s, n_a))
    P[:terminal] = 0.0
    R[:terminal] = 0.0
    return P, R


@pytest.mark.parametrize("rf, book", [(-1.0, BOOK_OPTIMAL_RF1), (-10.0, BOOK_OPTIMAL_RF10)])
def test_value_iteration_reproduces_the_book(rf, book):
    env = GridWorld(r_forbidden=rf)
    res = b.value_iteration(env.mdp.P, env.mdp.R, GAMMA)
    np.testing.assert_allclose(env.as_grid(res.v), book, atol=PRINT_TOL, rtol=0)
    # the target's value is r_target / (1 - gamma): staying there pays forever
    assert res.v[env.target_state] == pytest.approx(10.0, abs=1e-9)


def test_uniform_policy_values_reproduce_the_book():
    env = GridWorld()
    v = b.evaluate_policy(env.mdp.P, env.mdp.R, b.uniform_policy(25, 5), GAMMA)
    np.testing.assert_allclose(env.as_grid(v), BOOK_UNIFORM_RF1, atol=PRINT_TOL, rtol=0)


@pytest.mark.parametrize("rf", [-1.0, -10.0])
def test_solvers_agree(rf):
    P, R = GridWorld(r_forbidden=rf).mdp.P, GridWorld(r_forbidden=rf).mdp.R
    vi = b.value_iteration(P, R, GAMMA, tol=1e-13)
    pi_ = b.policy_iteration(P, R, GAMMA)
    np.testing.assert_allclose(vi.v, pi_.v, atol=1e-8, rtol=0)
    np.testing.assert_allclose(vi.q, pi_.q, atol=1e-8, rtol=0)
    for j in (1, 3, 20, 200):
        tpi = b.truncated_policy_iteration(P, R, GAMMA, j, tol=1e-13)
        np.testing.assert_allclose(tpi.v, vi.v, atol=1e-8, rtol=0)
    # the policies found attain v*, in closed form and iteratively
    for policy in (vi.policy, pi_.policy):
        closed = b.evaluate_policy(P, R, policy, GAMMA)
        iterative, sweeps = b.evaluate_policy_iterative(P, R, policy, GAMMA, tol=1e-13)
        np.testing.assert_allclose(closed, vi.v, atol=1e-8, rtol=0)
        np.testing.assert_allclose(iterative, closed, atol=1e-8, rtol=0)
        assert sweeps > 10
    # v* satisfies the Bellman optimality equation
    np.testing.assert_allclose(vi.v, (R + GAMMA * np.einsum("sat,t->sa", P, vi.v)).max(axis=1), atol=1e-10)
    # policy iteration converges in far fewer outer iterations than value iteration
    assert pi_.n_iter < vi.n_iter / 10


def test_truncated_pi_interpolates_between_vi_and_pi():
    P, R = GridWorld().mdp.P, GridWorld().mdp.R
    vi = b.value_iteration(P, R, GAMMA, tol=1e-10)
    one = b.truncated_policy_iteration(P, R, GAMMA, 1, tol=1e-10)
    np.testing.assert_array_equal(one.history, vi.history)  # j = 1 is value iteration, step for step
    iters = [b.truncated_policy_iteration(P, R, GAMMA, j, tol=1e-10).n_iter for j in (1, 5, 50)]
    assert iters[0] > iters[1] > iters[2]
    # starting from v0 = 0 <= v*, every truncated-PI iterate is a lower bound that increases
    hist = b.truncated_policy_iteration(P, R, GAMMA, 5).history
    assert np.all(np.diff(hist, axis=0) >= -1e-12) and np.all(hist <= vi.v + 1e-9)


def test_closed_form_matches_iterative_on_random_policies():
    rng = np.random.default_rng(0)
    P, R = random_mdp(rng, 7, 3)
    for _ in range(5):
        pi = rng.dirichlet(np.ones(3), size=7)
        closed = b.evaluate_policy(P, R, pi, 0.95)
        iterative, _ = b.evaluate_policy_iterative(P, R, pi, 0.95, tol=1e-13)
        np.testing.assert_allclose(closed, iterative, atol=1e-8, rtol=0)
        # v_pi is the fixed point of the Bellman equation v = r_pi + gamma P_pi v
        P_pi, r_pi = b.policy_model(P, R, pi)
        np.testing.assert_allclose(closed, r_pi + 0.95 * P_pi @ closed, atol=1e-10)


def all_deterministic_values(P, R, gamma):
    """Values of every deterministic policy, shape (A^S, S), by one batched linear solve."""
    n_s, n_a = R.shape
    actions = np.array(list(itertools.product(range(n_a), repeat=n_s)))  # (A^S, S)
    P_pi = P[np.arange(n_s), actions]  # (A^S, S, S)
    r_pi = R[np.arange(n_s), actions]  # (A^S, S)
    return np.linalg.solve(np.eye(n_s) - gamma * P_pi, r_pi[..., None])[..., 0]


@pytest.mark.parametrize("rf", [-1.0, -10.0])
def test_brute_force_optimum_on_a_2x3_grid(rf):
    env = GridWorld(2, 3, target=(1, 2), forbidden=[(1, 1)], r_forbidden=rf)
    P, R = env.mdp.P, env.mdp.R
    values = all_deterministic_values(P, R, GAMMA)  # (5^6, 6)
    best = values.max(axis=0)
    vi = b.value_iteration(P, R, GAMMA, tol=1e-13)
    np.testing.assert_allclose(vi.v, best, atol=1e-8, rtol=0)
    # one policy is optimal in every state at once, and policy iteration finds such a policy
    assert np.any(np.all(values >= best - 1e-8, axis=1))
    np.testing.assert_allclose(b.policy_iteration(P, R, GAMMA).v, best, atol=1e-8, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_brute_force_optimum_on_random_mdps(seed):
    rng = np.random.default_rng(seed)
    P, R = random_mdp(rng, 5, 3, terminal=1)  # state 0 terminal
    values = all_deterministic_values(P, R, 0.8)
    vi = b.value_iteration(P, R, 0.8, tol=1e-13)
    np.testing.assert_allclose(vi.v, values.max(axis=0), atol=1e-8, rtol=0)
    assert vi.v[0] == 0.0
    np.testing.assert_allclose(b.policy_iteration(P, R, 0.8).v, vi.v, atol=1e-8, rtol=0)


@pytest.mark.parametrize("epsilon", [0.1, 0.5])
def test_epsilon_greedy_policy_iteration_is_best_epsilon_greedy(epsilon):
    env = GridWorld(2, 3, target=(1, 2), forbidden=[(1, 1)])
    P, R = env.mdp.P, env.mdp.R
    res = b.epsilon_greedy_policy_iteration(P, R, GAMMA, epsilon)
    # brute force over every epsilon-greedy policy (one per choice of greedy actions), batched:
    # P_pi = (1 - eps) P[s, greedy(s)] + eps mean_a P[s, a], and the same for r_pi
    n_s, n_a = R.shape
    greedy = np.array(list(itertools.product(range(n_a), repeat=n_s)))  # (A^S, S)
    P_pi = (1 - epsilon) * P[np.arange(n_s), greedy] + epsilon * P.mean(axis=1)  # (A^S, S, S)
    r_pi = (1 - epsilon) * R[np.arange(n_s), greedy] + epsilon * R.mean(axis=1)  # (A^S, S)
    values = np.linalg.solve(np.eye(n_s) - GAMMA * P_pi, r_pi[..., None])[..., 0]
    np.testing.assert_allclose(res.v, values.max(axis=0), atol=1e-8, rtol=0)
    # spot check of the batched formula against the solver for one of those policies
    q = np.zeros((n_s, n_a))
    q[np.arange(n_s), greedy[1234]] = 1.0
    np.testing.assert_allclose(
        b.evaluate_policy(P, R, b.epsilon_greedy_policy(q, epsilon), GAMMA), values[1234], atol=1e-10
    )
    # fixed point: the policy is epsilon-greedy in its own action values
    np.testing.assert_allclose(b.epsilon_greedy_policy(res.q, epsilon), res.policy)


def test_epsilon_greedy_policy_shape_and_mass():
    q = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    pi = b.epsilon_greedy_policy(q, 0.3)
    np.testing.assert_allclose(pi[0], [0.1, 0.8, 0.1])  # 1 - (|A|-1)/|A| eps on the greedy action
    np.testing.assert_allclose(pi[1], [0.8, 0.1, 0.1])  # ties: the lowest index
    np.testing.assert_allclose(b.greedy_policy(q), [[0, 1, 0], [1, 0, 0]])


def test_bad_arguments():
    P, R = GridWorld().mdp.P, GridWorld().mdp.R
    with pytest.raises(ValueError, match="gamma"):
        b.value_iteration(P, R, 1.0)
    with pytest.raises(ValueError, match="R must"):
        b.value_iteration(P, R[:, :2], 0.9)
    with pytest.raises(ValueError, match="finite"):
        b.value_iteration(P, np.where(R == 1, np.nan, R), 0.9)
    with pytest.raises(ValueError, match="pi"):
        b.evaluate_policy(P, R, np.ones((25, 5)), 0.9)
    with pytest.raises(ValueError, match="j_truncate"):
        b.truncated_policy_iteration(P, R, 0.9, 0)
    with pytest.raises(ValueError, match="epsilon"):
        b.epsilon_greedy_policy(np.zeros((2, 2)), 1.5)
    with pytest.raises(ValueError, match="v0"):
        b.value_iteration(P, R, 0.9, v0=np.zeros(3))
