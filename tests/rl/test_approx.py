"""TD-linear and the linear control methods against tabular TD(0), the projected Bellman solution
and slow references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.rl import approx as ap
from shiyan.rl import bellman as bl
from shiyan.rl import tabular as tb
from shiyan.rl.gridworld import GridWorld


@pytest.fixture(scope="module")
def grid():
    return GridWorld()


def test_features_have_the_book_shapes():
    xy = ap.grid_coordinates(5, 5)
    assert xy.shape == (25, 2) and xy.min() == 0 and xy.max() == 1
    np.testing.assert_allclose(xy[7], [2 / 4, 1 / 4])  # row 1, col 2
    p2 = ap.polynomial_features(xy, 2)
    x, y = xy[:, 0], xy[:, 1]
    np.testing.assert_allclose(p2, np.stack([np.ones(25), x, y, x**2, x * y, y**2], axis=1))
    assert ap.polynomial_features(xy, 3).shape == (25, 10)
    f = ap.fourier_features(xy, 2)
    assert f.shape == (25, 9)
    np.testing.assert_allclose(f[:, 5], np.cos(np.pi * (x + 2 * y)))  # (c1, c2) = (1, 2)
    sa = ap.state_action_features(p2, 5)
    assert sa.shape == (25, 5, 30)
    np.testing.assert_allclose(sa[:, 3, 18:24], p2)
    assert np.all(sa[:, 3, :18] == 0)


def test_td_linear_with_one_hot_features_is_tabular_td0(grid):
    mdp = grid.mdp
    pi = bl.uniform_policy(25, 5)
    traj = ap.sample_trajectory(mdp, pi, 3000, np.random.default_rng(5), start=3)
    lin = ap.td_linear(ap.tabular_features(25), traj, 0.9, alpha=0.1)
    tab = tb.td0(mdp, pi, 0.9, np.random.default_rng(5), alpha=0.1, episode_length=3000, start=3)
    np.testing.assert_allclose(lin.w, tab.values, atol=1e-12)
    # also with a random start and on the episodic grid (terminal next states)
    ep = GridWorld(episodic=True).mdp
    traj = ap.sample_trajectory(ep, pi, 500, np.random.default_rng(6))
    lin = ap.td_linear(ap.tabular_features(25), traj, 0.9, alpha=0.2)
    tab = tb.td0(ep, pi, 0.9, np.random.default_rng(6), alpha=0.2, episode_length=500)
    np.testing.assert_allclose(lin.w, tab.values, atol=1e-12)


def test_fixed_point_of_one_hot_features_is_v_pi(grid):
    mdp = grid.mdp
    pi = bl.uniform_policy(25, 5)
    w = ap.td_linear_fixed_point(mdp, pi, ap.tabular_features(25), 0.9)
    np.testing.assert_allclose(w, bl.evaluate_policy(mdp.P, mdp.R, pi, 0.9), atol=1e-10)


def test_stationary_distribution_is_invariant(grid):
    p_pi, _ = bl.policy_model(grid.mdp.P, grid.mdp.R, bl.uniform_policy(25, 5))
    d = ap.stationary_distribution(p_pi)
    np.testing.assert_allclose(d @ p_pi, d, atol=1e-12)
    assert d.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["polynomial", "fourier"])
def test_td_linear_converges_to_the_projected_bellman_solution(grid, kind):
    mdp = grid.mdp
    pi = bl.uniform_policy(25, 5)
    xy = ap.grid_coordinates(5, 5)
    phi = ap.polynomial_features(xy, 1) if kind == "polynomial" else ap.fourier_features(xy, 1)
    w_star = ap.td_linear_fixed_point(mdp, pi, phi, 0.9)
    traj = ap.sample_trajectory(mdp, pi, 40_000, np.random.default_rng(0), start=0)
    # a decaying step size (Robbins-Monro), averaged over the second half to remove the remaining noise
    res = ap.td_linear(phi, traj, 0.9, alpha=0.2, alpha_power=0.3, record_every=100)
    w_bar = res.history[len(res.history) // 2 :].mean(axis=0)
    v_err = np.max(np.abs(phi @ w_bar - phi @ w_star))
    assert v_err < 0.1, v_err
    # the fixed point is not v_pi itself (a projection), so the check could fail for the wrong target
    v_pi = bl.evaluate_policy(mdp.P, mdp.R, pi, 0.9)
    assert np.max(np.abs(phi @ w_star - v_pi)) > 0.2


def test_linear_q_learning_one_hot_matches_slow_tabular_loop(grid):
    mdp = grid.mdp
    traj = ap.sample_trajectory(mdp, bl.uniform_policy(25, 5), 2000, np.random.default_rng(1), start=0)
    res = ap.linear_q_learning(ap.state_action_features(ap.tabular_features(25), 5), traj, 0.9, alpha=0.1)
    q = np.zeros((25, 5))
    for s, a, r, s2, done in zip(traj.states, traj.actions, traj.rewards, traj.next_states, traj.terminated):
        q[s, a] += 0.1 * (r + (0 if done else 0.9 * q[s2].max()) - q[s, a])
    np.testing.assert_allclose(res.w.reshape(5, 25).T, q, atol=1e-12)


def test_linear_sarsa_finds_the_path_on_the_episodic_grid():
    env = GridWorld(episodic=True, start=(0, 0), r_target=0.0, r_forbidden=-10.0, r_boundary=-10.0, r_other=-1.0)
    phi_sa = ap.state_action_features(ap.tabular_features(25), 5)
    res = ap.linear_sarsa(
        env.mdp, phi_sa, 0.9, np.random.default_rng(0), epsilon=0.1, alpha=0.1, n_episodes=300, start=0
    )
    # the shortest path from the top-left cell to the target takes 7 steps (3 down... around the forbidden cells)
    opt = bl.value_iteration(env.mdp.P, env.mdp.R, 0.9)
    s, n = 0, 0
    while not env.mdp.terminal[s]:
        s, _, _ = env.mdp.step(s, int(opt.policy[s].argmax()))
        n += 1
    assert np.median(res.episode_lengths[-50:]) <= 1.5 * n


def test_mlp_is_reproducible_and_uses_the_generator():
    a = ap.mlp((4, 8, 2), torch.Generator().manual_seed(0))
    b = ap.mlp((4, 8, 2), torch.Generator().manual_seed(0))
    c = ap.mlp((4, 8, 2), torch.Generator().manual_seed(1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)
    assert a[0].weight.abs().max() <= 1 / 2 + 1e-6  # kaiming-uniform(a=sqrt 5) bound is 1/sqrt(fan_in)
    o = ap.mlp((4, 8, 2), torch.Generator().manual_seed(0), orthogonal_gain=1.0, last_gain=0.01)
    w = o[0].weight  # (8, 4): orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(4), atol=1e-5, rtol=0)
    assert torch.all(o[2].bias == 0)


def test_bad_arguments_raise(grid):
    with pytest.raises(ValueError, match="order"):
        ap.polynomial_features(ap.grid_coordinates(5, 5), -1)
    with pytest.raises(ValueError, match="coords"):
        ap.fourier_features(np.zeros((3, 3)), 1)
    traj = ap.sample_trajectory(grid.mdp, bl.uniform_policy(25, 5), 10, np.random.default_rng(0), start=0)
    with pytest.raises(ValueError, match="alpha"):
        ap.td_linear(ap.tabular_features(25), traj, 0.9, alpha=0.0)
    with pytest.raises(ValueError, match="gamma"):
        ap.td_linear(ap.tabular_features(25), traj, 1.0)
    with pytest.raises(ValueError, match="sizes"):
        ap.mlp((4,), torch.Generator())
