"""The collector on CartPole and the grid world: determinism, true final observations, episode stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.rl.collect import collect
from shiyan.rl.envs import make_vec_env


def _random_policy(n_actions: int, seed: int):
    gen = torch.Generator().manual_seed(seed)

    def policy(obs):
        a = torch.randint(0, n_actions, (obs.shape[0],), generator=gen)
        return a, {"log_prob": torch.full((obs.shape[0],), -np.log(n_actions)), "obs_sum": obs.float().sum(-1)}

    return policy


def _run(seed: int, n_steps: int = 120):
    envs = make_vec_env("CartPole-v1", 3, seed=seed)
    obs, _ = envs.reset()
    return collect(envs, _random_policy(2, seed), n_steps, obs)


def test_same_seed_same_rollout_other_seed_differs():
    a, b, c = _run(1), _run(1), _run(2)
    for name in ("obs", "actions", "rewards", "terminated", "next_obs"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    assert not torch.equal(a.obs, c.obs)
    assert a.obs.shape == (120, 3, 4) and a.obs.dtype == torch.float32
    assert a.actions.shape == (120, 3) and a.extras["log_prob"].shape == (120, 3)
    torch.testing.assert_close(a.extras["obs_sum"], a.obs.sum(-1))  # extras line up with their obs


def test_chained_calls_continue_the_episodes():
    envs = make_vec_env("CartPole-v1", 2, seed=4)
    obs, _ = envs.reset()
    pol = _random_policy(2, 0)
    r1 = collect(envs, pol, 30, obs)
    r2 = collect(envs, pol, 30, r1.last_obs)
    np.testing.assert_array_equal(r2.obs[0].numpy(), r1.last_obs)
    envs2 = make_vec_env("CartPole-v1", 2, seed=4)
    whole = collect(envs2, _random_policy(2, 0), 60, envs2.reset()[0])
    assert torch.equal(torch.cat([r1.obs, r2.obs]), whole.obs)


def test_grid_world_transitions_follow_the_model():
    envs = make_vec_env("GridWorld", 4, seed=0, episodic=True, max_episode_steps=6)
    mdp = envs.envs[0].unwrapped.mdp
    obs, _ = envs.reset()
    r = collect(envs, _random_policy(5, 1), 300, obs)
    s, a, s2 = r.obs.numpy(), r.actions.numpy(), r.next_obs.numpy()
    assert r.obs.dtype == torch.int64
    # next_obs is the true successor everywhere (including on episode ends), rewards are R[s, a]
    np.testing.assert_array_equal(mdp.P[s, a, s2], 1.0)
    np.testing.assert_allclose(r.rewards.numpy(), mdp.R[s, a])
    np.testing.assert_array_equal(r.terminated.numpy(), mdp.terminal[s2])
    assert r.terminated.any() and r.truncated.any()
    # inside an episode next_obs[t] == obs[t + 1]; after an end obs[t + 1] is a fresh start
    cont = ~r.dones.numpy()[:-1]
    np.testing.assert_array_equal(s2[:-1][cont], s[1:][cont])
    assert not np.all(s2[:-1][~cont] == s[1:][~cont])
    # finished-episode statistics equal the sums of rewards between episode ends
    returns, lengths = [], []
    for i in range(4):
        start = 0
        for t in np.flatnonzero(r.dones.numpy()[:, i]):
            returns.append(float(r.rewards[start : t + 1, i].sum()))
            lengths.append(t + 1 - start)
            start = t + 1
    assert sorted(lengths) == sorted(r.episode_lengths.tolist())
    np.testing.assert_allclose(sorted(returns), sorted(r.episode_returns.tolist()), atol=1e-5)
    assert np.all(np.diff(r.episode_end_steps) >= 0)


def test_truncated_final_obs_is_not_the_reset_obs():
    # a start cell and a 3-step limit: every truncated transition's next_obs is 3 steps from the start
    envs = make_vec_env("GridWorld", 1, seed=0, start=(0, 0), max_episode_steps=3)
    obs, _ = envs.reset()
    r = collect(envs, lambda o: (np.array([1]), {}), 9, obs)  # always "right"
    assert r.truncated[:, 0].tolist() == [False, False, True] * 3
    assert r.next_obs[:, 0].tolist() == [1, 2, 3] * 3
    assert r.obs[:, 0].tolist() == [0, 1, 2] * 3
    assert r.episode_lengths.tolist() == [3, 3, 3]


def test_bad_inputs_raise():
    envs = make_vec_env("CartPole-v1", 2, seed=0)
    obs, _ = envs.reset()
    with pytest.raises(ValueError, match="n_steps"):
        collect(envs, _random_policy(2, 0), 0, obs)
    with pytest.raises(ValueError, match="obs"):
        collect(envs, _random_policy(2, 0), 5, obs[:1])
    with pytest.raises(ValueError, match="one action per environment"):
        collect(envs, lambda o: (np.array([0]), {}), 5, obs)
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env("CartPole-v1", 0, seed=0)
    with pytest.raises(TypeError, match="env_id"):
        make_vec_env(3, 1, seed=0)
