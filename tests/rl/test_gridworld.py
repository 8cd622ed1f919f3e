"""The grid world against the book's rules written out cell by cell, gymnasium's own API checker,
and a stochastic TabularMDP against its transition probabilities."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from shiyan.rl.gridworld import BOOK_FORBIDDEN, BOOK_TARGET, GridWorld, TabularMDP, check_policy

# The book's layout in its own 1-based (row, col) coordinates.
BOOK_TARGET_1 = (4, 3)
BOOK_FORBIDDEN_1 = {(2, 2), (2, 3), (3, 3), (4, 2), (4, 4), (5, 2)}
MOVES_1 = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1), 4: (0, 0)}  # up right down left stay


def book_rule(cell, action, rb=-1.0, rf=-1.0, rt=1.0, n=5):
    """The book's reward rule, in 1-based coordinates, written independently of the module."""
    row, col = cell
    dr, dc = MOVES_1[action]
    new = (row + dr, col + dc)
    if not (1 <= new[0] <= n and 1 <= new[1] <= n):
        return cell, rb
    if new == BOOK_TARGET_1:
        return new, rt
    if new in BOOK_FORBIDDEN_1:
        return new, rf
    return new, 0.0


def test_book_layout_constants():
    assert BOOK_TARGET == (BOOK_TARGET_1[0] - 1, BOOK_TARGET_1[1] - 1)
    assert {(r + 1, c + 1) for r, c in BOOK_FORBIDDEN} == BOOK_FORBIDDEN_1


@pytest.mark.parametrize("rf", [-1.0, -10.0])
def test_model_matches_the_book_rule_everywhere(rf):
    env = GridWorld(r_forbidden=rf)
    P, R = env.mdp.P, env.mdp.R
    assert P.shape == (25, 5, 25) and R.shape == (25, 5)
    for s in range(25):
        cell_1 = (s // 5 + 1, s % 5 + 1)  # the book numbers s_1..s_25 row by row
        for a in range(5):
            new_1, r = book_rule(cell_1, a, rf=rf)
            s_next = (new_1[0] - 1) * 5 + (new_1[1] - 1)
            assert P[s, a, s_next] == 1.0 and P[s, a].sum() == 1.0, (s, a)
            assert R[s, a] == r, (s, a)


def test_specific_transitions():
    env = GridWorld(r_forbidden=-10.0)
    t = env.target_state
    assert env.mdp.step(t, 4) == (t, 1.0, False)  # staying on the target keeps paying
    assert env.mdp.step(0, 0) == (0, -1.0, False)  # bump at the top-left corner
    assert env.mdp.step(0, 3) == (0, -1.0, False)
    assert env.mdp.step(env.state_of((1, 1)), 4) == (env.state_of((1, 1)), -10.0, False)  # stay in a forbidden cell
    assert env.mdp.step(env.state_of((0, 1)), 2) == (env.state_of((1, 1)), -10.0, False)  # enter one
    assert env.mdp.step(env.state_of((2, 2)), 2) == (t, 1.0, False)  # forbidden -> target


def test_gymnasium_checker_and_rollout():
    env = GridWorld(max_episode_steps=7)
    check_env(env, skip_render_check=True)
    assert isinstance(env, gym.Env)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["cell"] == env.cell_of(obs)
    for k in range(7):
        obs2, r, term, trunc, _ = env.step(4)  # stay
        assert obs2 == obs and r == env.mdp.R[obs, 4] and not term
        assert trunc == (k == 6)


def test_reset_is_seeded_and_start_options():
    env = GridWorld()
    starts = [env.reset(seed=11)[0] for _ in range(3)]
    assert len(set(starts)) == 1
    assert len({env.reset(seed=s)[0] for s in range(40)}) > 5  # unseeded starts spread over the grid
    assert GridWorld(start=(2, 4)).reset(seed=0)[0] == 14
    assert env.reset(options={"state": 7})[0] == 7


def test_episodic_variant_terminates_at_target():
    env = GridWorld(episodic=True, start=(3, 0))
    mdp = env.mdp
    t = env.target_state
    assert mdp.terminal[t] and mdp.terminal.sum() == 1
    assert np.all(mdp.P[t] == 0) and np.all(mdp.R[t] == 0)
    s, _ = env.reset(seed=0)
    assert s == env.state_of((3, 0))
    s, r, term, trunc, _ = env.step(1)  # right: into the forbidden cell (3, 1)
    assert (s, r, term) == (env.state_of((3, 1)), -1.0, False)
    s, r, term, trunc, _ = env.step(1)  # right: onto the target
    assert (s, r, term, trunc) == (t, 1.0, True, False)
    with pytest.raises(RuntimeError):
        env.step(0)
    # in the continuing variant the same move does not terminate
    assert GridWorld().mdp.step(env.state_of((3, 1)), 1) == (t, 1.0, False)


def test_other_layout_and_render():
    env = GridWorld(
        3, 4, target=(0, 3), forbidden=[(1, 1)], r_boundary=-2, r_target=5, r_other=-0.5, render_mode="ansi"
    )
    assert env.n_states == 12 and env.mdp.P.shape == (12, 5, 12)
    assert env.mdp.step(env.state_of((0, 2)), 1) == (3, 5.0, False)
    assert env.mdp.step(0, 1) == (1, -0.5, False)
    assert env.mdp.step(0, 0) == (0, -2.0, False)
    env.reset(seed=0, options={"state": 0})
    text = env.render()
    assert text.splitlines()[0].startswith("[.]") and "T" in text and "X" in text
    np.testing.assert_array_equal(env.as_grid(np.arange(12)), np.arange(12).reshape(3, 4))


def test_stochastic_mdp_sampling_matches_p():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=(4, 2))  # (4, 2, 4)
    R = rng.normal(size=(4, 2))
    mdp = TabularMDP(P, R, np.zeros(4, dtype=bool))
    assert not mdp.is_deterministic
    step = mdp.sampler(np.random.default_rng(1))
    n = 40_000
    counts = np.bincount([step(2, 1)[0] for _ in range(n)], minlength=4)
    se = np.sqrt(P[2, 1] * (1 - P[2, 1]) / n)
    assert np.all(np.abs(counts / n - P[2, 1]) < 5 * se + 1e-12)
    s_next, r, done = mdp.step(2, 1, np.random.default_rng(2))
    assert r == R[2, 1] and not done and 0 <= s_next < 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": (5, 0)}, "target"),
        ({"forbidden": [(3, 2)]}, "forbidden"),
        ({"forbidden": [(0, 9)]}, "forbidden cell"),
        ({"n_rows": 0}, "n_rows"),
        ({"r_target": float("nan")}, "r_target"),
        ({"episodic": True, "start": (3, 2)}, "start"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
    ],
)
def test_bad_grid_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GridWorld(**kwargs)


def test_bad_mdp_and_policy_arguments():
    P = np.zeros((2, 1, 2))
    P[:, 0, 0] = 1.0
    with pytest.raises(ValueError, match="R must"):
        TabularMDP(P, np.zeros((2, 2)), np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="sum to 1"):
        TabularMDP(P * 0.5, np.zeros((2, 1)), np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="terminal"):
        TabularMDP(P, np.zeros((2, 1)), np.zeros(2))
    mdp = GridWorld(episodic=True).mdp
    with pytest.raises(ValueError, match="terminal"):
        mdp.step(GridWorld().target_state, 0)
    with pytest.raises(ValueError, match="a must"):
        mdp.step(0, 5)
    with pytest.raises(ValueError, match="policy"):
        check_policy(np.ones((25, 5)), 25, 5)
    env = GridWorld()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)
