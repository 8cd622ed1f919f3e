"""TRPO on a MuJoCo task with a six-dimensional action box (HalfCheetah-v5), through train_trpo itself: a
Gaussian policy of the right shape, every update inside the trust region, every action the environment
receives inside the box while the policy learns from the unclipped samples. Skipped without ``mujoco``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from shiyan.rl.trpo import GaussianPolicy, TRPOConfig, evaluate_trpo, train_trpo  # noqa: E402

ENV_ID = "HalfCheetah-v5"


class _RecordActions(gym.Wrapper):
    """Keeps every action passed to ``step`` (a class-level list shared by all copies)."""

    seen: list[np.ndarray] = []

    def step(self, action):
        _RecordActions.seen.append(np.array(action, copy=True))
        return self.env.step(action)


def test_train_trpo_on_halfcheetah_keeps_kl_and_action_box():
    _RecordActions.seen = []
    space = gym.make(ENV_ID).action_space
    cfg = TRPOConfig(total_steps=512, n_envs=2, n_steps=128, n_critic_updates=2, batch_size=64, hidden=(32,))
    out = train_trpo(lambda: _RecordActions(gym.make(ENV_ID)), cfg, 0, generator=torch.Generator())
    assert isinstance(out.policy, GaussianPolicy) and out.n_steps == 512 and len(out.updates) == 2
    assert out.policy.log_std.shape == (6,)
    assert all(u.kl <= cfg.max_kl for u in out.updates)
    assert all(abs(u.quad_kl / cfg.max_kl - 1) < 1e-3 for u in out.updates)
    actions = np.stack(_RecordActions.seen)  # (512, 6): 2 copies x 256 steps
    assert actions.shape == (512, 6)
    assert np.all(actions >= space.low) and np.all(actions <= space.high)
    # log_std starts at 0: a unit-variance sample leaves [-1, 1] often, so the clip must have acted
    assert np.mean(np.isclose(np.abs(actions), 1.0)) > 0.1

    with torch.no_grad():
        mean, log_std = out.policy.dist_params(torch.randn(5, 17))
    assert mean.shape == (5, 6) and log_std.shape == (6,)
    with torch.no_grad():
        returns = evaluate_trpo(ENV_ID, out.policy, 1, 0)
    assert returns.shape == (1,) and np.isfinite(returns[0])
