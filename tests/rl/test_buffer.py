"""The replay buffer: ring wrap-around, uniform sampling, and the terminated (not truncated) mask."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shiyan.rl.buffer import ReplayBuffer
from shiyan.rl.collect import collect
from shiyan.rl.envs import make_vec_env


def _add_range(buf: ReplayBuffer, start: int, n: int) -> None:
    ids = np.arange(start, start + n)
    buf.add(
        obs=np.stack([ids, -ids], axis=1).astype(np.float32),
        actions=ids % 3,
        rewards=ids.astype(np.float32),
        next_obs=np.stack([ids + 1, -ids - 1], axis=1).astype(np.float32),
        terminated=(ids % 2 == 0),
    )


def test_wrap_around_keeps_the_last_capacity_transitions():
    buf = ReplayBuffer(7, (2,))
    _add_range(buf, 0, 5)
    assert len(buf) == 5 and buf.pos == 5
    _add_range(buf, 5, 4)  # 9 added: slots 5, 6, 0, 1 are written
    assert len(buf) == 7 and buf.pos == 2 and buf.n_added == 9
    assert sorted(buf.rewards.tolist()) == list(range(2, 9))
    np.testing.assert_array_equal(buf.rewards[:2], [7, 8])
    np.testing.assert_array_equal(buf.obs[:, 0], buf.rewards)  # every row stays one transition
    np.testing.assert_array_equal(buf.next_obs[:, 0], buf.rewards + 1)
    np.testing.assert_array_equal(buf.actions, buf.rewards.astype(int) % 3)
    np.testing.assert_array_equal(buf.terminated, (buf.rewards.astype(int) % 2 == 0).astype(np.float32))


def test_adding_more_than_capacity_at_once():
    buf = ReplayBuffer(4, (2,))
    _add_range(buf, 0, 3)
    _add_range(buf, 3, 10)  # 13 added in all: keeps 9..12
    assert sorted(buf.rewards.tolist()) == [9, 10, 11, 12]
    assert buf.n_added == 13 and buf.pos == 13 % 4
    _add_range(buf, 13, 1)
    assert sorted(buf.rewards.tolist()) == [10, 11, 12, 13]


def test_sampling_is_uniform_over_stored_transitions():
    buf = ReplayBuffer(10, (2,))
    _add_range(buf, 0, 13)  # full, wrapped
    batch = buf.sample(20_000, np.random.default_rng(0))
    counts = np.bincount(batch.rewards.numpy().astype(int) - 3, minlength=10)
    assert counts.sum() == 20_000 and counts.size == 10  # only the 10 stored transitions
    assert stats.chisquare(counts).pvalue > 1e-3
    # rows of a batch are whole transitions
    np.testing.assert_array_equal(batch.obs[:, 0].numpy(), batch.rewards.numpy())
    np.testing.assert_array_equal(batch.next_obs[:, 0].numpy(), batch.rewards.numpy() + 1)
    # a partly filled buffer samples only its filled slots
    small = ReplayBuffer(100, (2,))
    _add_range(small, 0, 5)
    assert set(small.sample(500, np.random.default_rng(1)).rewards.numpy().astype(int)) == set(range(5))


def test_sampling_is_reproducible_with_the_generator():
    buf = ReplayBuffer(50, (2,))
    _add_range(buf, 0, 50)
    a = buf.sample(16, np.random.default_rng(3))
    b = buf.sample(16, np.random.default_rng(3))
    np.testing.assert_array_equal(a.indices, b.indices)


def test_rollout_stores_terminated_only_as_the_mask():
    # episodic grid world with a short time limit: both kinds of episode end occur
    envs = make_vec_env("GridWorld", 2, seed=0, episodic=True, max_episode_steps=4)
    obs, _ = envs.reset()
    rng = np.random.default_rng(0)
    r = collect(envs, lambda o: (rng.integers(0, 5, size=o.shape[0]), {}), 200, obs)
    assert r.terminated.any() and r.truncated.any()
    buf = ReplayBuffer(1000, (), obs_dtype=np.int64)
    buf.add_rollout(r)
    assert len(buf) == 400
    np.testing.assert_array_equal(buf.terminated[:400], r.terminated.flatten().numpy().astype(np.float32))
    np.testing.assert_array_equal(buf.next_obs[:400], r.next_obs.flatten().numpy())
    target = envs.envs[0].unwrapped.target_state
    assert np.all(buf.next_obs[:400][buf.terminated[:400] == 1] == target)


def test_bad_inputs_raise():
    buf = ReplayBuffer(5, (2,))
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="obs"):
        buf.add(np.zeros((3, 3)), np.zeros(3), np.zeros(3), np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="rewards"):
        buf.add(np.zeros((3, 2)), np.zeros(3), np.zeros(2), np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (2,))
    _add_range(buf, 0, 2)
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0, np.random.default_rng(0))
