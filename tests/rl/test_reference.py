"""The reference-comparison plumbing: curves from finished episodes, SB3 Monitor episodes in global steps,
and evaluation of any policy on seeded copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.rl.reference import (
    evaluate_on,
    learning_curve,
    model_policy,
    models_mean_returns,
    monitor_episodes,
    side_by_side,
)


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
    # several models, each on its own evaluation seed
    means = models_mean_returns("CartPole-v1", 3, [7, 8], [AlwaysLeft(), AlwaysLeft()])
    assert means.shape == (2,)
    assert means[0] == by_model.mean()
    assert means[1] == evaluate_on("CartPole-v1", 3, 8, model_policy(AlwaysLeft())).mean()
    with pytest.raises(ValueError, match="eval_seeds"):
        models_mean_returns("CartPole-v1", 3, [7], [AlwaysLeft(), AlwaysLeft()])


def test_side_by_side_interleaves_and_alternates_the_order():
    calls = []
    runs = side_by_side([5, 6, 7], lambda s: calls.append(("ours", s)) or s, lambda s: calls.append(("ref", s)) or -s)
    assert calls == [("ours", 5), ("ref", 5), ("ref", 6), ("ours", 6), ("ours", 7), ("ref", 7)]
    assert runs.ours == [5, 6, 7] and runs.reference == [-5, -6, -7]
    assert runs.wall.shape == runs.cpu.shape == (2, 3) and np.all(runs.wall >= 0)
    alone = side_by_side([1, 2], lambda s: s, None)
    assert alone.reference == [] and np.all(np.isnan(alone.wall[1]))


def test_bench_rows_and_seed_stats():
    from shiyan.rl.reference import SideBySide, bench_rows, seed_stats

    runs = SideBySide([0, 0], [0, 0], wall=np.array([[1.0, 3.0], [2.0, 2.0]]), cpu=np.array([[0.5, 0.5], [2.0, 2.0]]))
    rows = bench_rows("X", runs, np.array([1.0, 3.0]), np.array([2.0, 2.0]), "ref", steps=100)
    assert [r.unit for r in rows] == ["s", "s", "return"]
    assert [r.ratio for r in rows] == [1.0, 0.25, 1.0]
    assert seed_stats(np.array([1.0, 3.0])) == [2.0, 1.0, 1.0]
    cost = bench_rows("X", runs, np.array([-100.0, -120.0]), np.array([-200.0, -220.0]), "ref", steps=100)[2]
    assert cost.unit == "-return" and cost.ours == 110.0 and cost.reference == 210.0 and "below 1" in cost.note
