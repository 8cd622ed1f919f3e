"""DDPG on a MuJoCo task with a six-dimensional action box (HalfCheetah-v5), through train_ddpg itself:
network shapes follow the spaces, every action the environment receives lies in the box, and the replayed
transitions are the ones the environment saw. Skipped when ``mujoco`` is not installed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from shiyan.rl.ddpg import DDPGConfig, evaluate_ddpg, train_ddpg  # noqa: E402

ENV_ID = "HalfCheetah-v5"


class _RecordActions(gym.Wrapper):
    """Keeps every action passed to ``step`` (a class-level list shared by all copies)."""

    seen: list[np.ndarray] = []

    def step(self, action):
        _RecordActions.seen.append(np.array(action, copy=True))
        return self.env.step(action)


def test_train_ddpg_on_halfcheetah_respects_the_action_box():
    _RecordActions.seen = []
    space = gym.make(ENV_ID).action_space
    cfg = DDPGConfig(total_steps=300, learning_starts=100, batch_size=32, hidden=(32, 32), noise_sigma=0.5)
    out = train_ddpg(
        lambda: _RecordActions(gym.make(ENV_ID)), cfg, 0, rng=np.random.default_rng(0), generator=torch.Generator()
    )
    assert out.n_steps == 300 and len(out.td_losses) == 201  # an update after each of steps 100, ..., 300
    assert np.all(np.isfinite(out.td_losses))
    actions = np.stack(_RecordActions.seen)  # (300, 6)
    assert actions.shape == (300, *space.shape) == (300, 6)
    assert np.all(actions >= space.low) and np.all(actions <= space.high)
    # sigma = 0.5 noise on tanh-squashed means: some noisy actions must have been clipped onto the bounds
    assert np.any(np.isclose(np.abs(actions[100:]), 1.0))
    assert actions[:100].std(axis=0).min() > 0.4  # the warm-up is uniform on [-1, 1]^6 (std 0.577)

    obs = torch.randn(7, 17)
    with torch.no_grad():
        mu = out.actor(obs)  # (7, 6)
        q = out.critic(obs, mu)  # (7,)
    assert mu.shape == (7, 6) and q.shape == (7,)
    torch.testing.assert_close(out.actor.center, torch.zeros(6))
    torch.testing.assert_close(out.actor.half_range, torch.ones(6))
    with torch.no_grad():
        returns = evaluate_ddpg(ENV_ID, out.actor, 1, 0)
    assert returns.shape == (1,) and np.isfinite(returns[0])
