"""The reference-comparison plumbing: curves from finished episodes, SB3 Monitor episodes in global steps,
and evaluation of any policy on seeded copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.rl.reference import evaluate_on, learning_curve, model_policy, monitor_episodes


def test_learning_curve_is_the_mean_of_the_last_window_finished():
    ends = np.array([3, 5, 9, 12, 20])
    rets = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    grid = np.array([0, 5, 10, 25])
    curve = learning_curve(ends, rets, grid, window=2)
    assert np.isnan(curve[0])
    np.testing.assert_allclose(curve[1:], [1.5, 2.5, 4.5])
    with pytest.raises(ValueError, match="same shape"):
        learning_curve(ends, rets[:-1], grid)
    with pytest.raises(ValueError, match="window"):
        learning_curve(ends, rets, grid, window=0)


class _FakeVecEnv:
    """What monitor_episodes reads: env_method over the Monitor-wrapped copies."""

    def __init__(self, lengths, rewards):
        self.data = {"get_episode_lengths": lengths, "get_episode_rewards": rewards}

    def env_method(self, name):
        return self.data[name]


def test_monitor_episodes_are_in_global_steps_and_sorted():
    venv = _FakeVecEnv(lengths=[[10, 5], [4, 20]], rewards=[[1.0, 2.0], [3.0, 4.0]])
    ends, rets = monitor_episodes(venv, n_envs=2)
    # copy 0 ends at local 10, 15 -> global 20, 30; copy 1 at local 4, 24 -> global 8, 48
    np.testing.assert_array_equal(ends, [8, 20, 30, 48])
    np.testing.assert_array_equal(rets, [3.0, 1.0, 2.0, 4.0])


def test_evaluate_on_scores_a_predict_model_like_any_policy():
    class AlwaysLeft:
        def predict(self, obs, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    by_model = evaluate_on("CartPole-v1", 3, 7, model_policy(AlwaysLeft()))
    by_policy = evaluate_on("CartPole-v1", 3, 7, lambda obs: (torch.zeros(len(obs), dtype=torch.int64), {}))
    assert by_model.shape == (3,)
    np.testing.assert_array_equal(by_model, by_policy)
    assert np.all(by_model < 30)  # pushing left all the time topples the pole quickly
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_on("CartPole-v1", 0, 0, model_policy(AlwaysLeft()))
