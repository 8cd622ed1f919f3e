"""DDPG oracles: the deterministic policy gradient assembled by hand, the soft update's closed form,
Ornstein-Uhlenbeck statistics, the terminated-only bootstrap mask, action bounds."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiyan.rl.actor_critic import dpg_actor_loss
from shiyan.rl.buffer import Batch, ReplayBuffer
from shiyan.rl.collect import collect
from shiyan.rl.ddpg import (
    Actor,
    Critic,
    DDPGConfig,
    OUNoise,
    critic_loss,
    critic_targets,
    ddpg_update,
    gaussian_noise,
    noisy_policy,
    soft_update,
    train_ddpg,
)
from shiyan.rl.envs import make_vec_env


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nets(obs_dim=3, act_dim=2, hidden=(8, 8), seed=0):
    g = _gen(seed)
    low, high = -np.arange(1, act_dim + 1, dtype=np.float32), np.arange(1, act_dim + 1, dtype=np.float32) * 0.5
    return Actor(obs_dim, low, high, hidden, g).double(), Critic(obs_dim, act_dim, hidden, g).double()


def test_actor_gradient_is_the_chain_rule_product():
    """autograd of mean Q(s, mu(s)) == mean_i J_mu(s_i)^T grad_a Q(s_i, a)|_{a = mu(s_i)}, assembled separately."""
    actor, critic = _nets()
    obs = torch.randn(5, 3, generator=_gen(1), dtype=torch.float64)
    params = list(actor.parameters())
    auto = torch.autograd.grad(-dpg_actor_loss(actor, critic, obs), params)
    flat_auto = torch.cat([g.reshape(-1) for g in auto])

    by_hand = torch.zeros_like(flat_auto)
    for s in obs:
        a = actor(s[None]).detach().requires_grad_(True)  # (1, d)
        (dq_da,) = torch.autograd.grad(critic(s[None], a).sum(), a)  # (1, d): grad_a Q at a = mu(s)
        rows = []
        for j in range(a.shape[1]):  # Jacobian of mu(s) in theta, one action dimension at a time
            grads = torch.autograd.grad(actor(s[None])[0, j], params)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        jac = torch.stack(rows)  # (d, P)
        by_hand += dq_da[0] @ jac
    by_hand /= obs.shape[0]
    torch.testing.assert_close(flat_auto, by_hand, rtol=1e-10, atol=1e-12)
    assert flat_auto.abs().max() > 1e-4  # not trivially zero


def test_actor_step_leaves_critic_untouched_and_soft_updates_targets():
    actor, critic = _nets()
    actor, critic = actor.float(), critic.float()
    ta, tc = copy.deepcopy(actor), copy.deepcopy(critic)
    ta_before = [p.clone() for p in ta.parameters()]
    opt_a = torch.optim.SGD(actor.parameters(), lr=0.0)  # zero lr: the critic step alone changes w
    opt_c = torch.optim.SGD(critic.parameters(), lr=0.1)
    g = _gen(2)
    batch = Batch(
        obs=torch.randn(16, 3, generator=g),
        actions=torch.randn(16, 2, generator=g),
        rewards=torch.randn(16, generator=g),
        next_obs=torch.randn(16, 3, generator=g),
        terminated=torch.zeros(16),
        indices=np.arange(16),
    )
    w_before = [p.clone() for p in critic.parameters()]
    loss_q, _ = critic_loss(critic, ta, tc, batch, 0.9)
    grads = torch.autograd.grad(loss_q, list(critic.parameters()))
    ddpg_update(actor, critic, ta, tc, opt_a, opt_c, batch, 0.9, 0.25)
    for p, p0, gr in zip(critic.parameters(), w_before, grads, strict=True):
        torch.testing.assert_close(p, p0 - 0.1 * gr)  # exactly one SGD step of the critic loss
    for p, p0 in zip(ta.parameters(), ta_before, strict=True):  # actor unchanged (lr 0): target stays equal
        torch.testing.assert_close(p, p0)


def test_soft_update_closed_form():
    """k soft updates toward a fixed source: theta'_k = (1 - tau)^k theta'_0 + (1 - (1 - tau)^k) theta."""
    g = _gen(3)
    src = [torch.randn(4, 3, generator=g), torch.randn(3, generator=g)]
    tgt0 = [torch.randn(4, 3, generator=g), torch.randn(3, generator=g)]
    tgt = [t.clone() for t in tgt0]
    tau, k = 0.05, 37
    for _ in range(k):
        soft_update(tgt, src, tau)
    keep = (1 - tau) ** k
    for t, t0, s in zip(tgt, tgt0, src, strict=True):
        torch.testing.assert_close(t, keep * t0 + (1 - keep) * s, rtol=1e-5, atol=1e-6)
    soft_update(tgt, src, 1.0)
    for t, s in zip(tgt, src, strict=True):
        torch.testing.assert_close(t, s)
    with pytest.raises(ValueError, match="tau"):
        soft_update(tgt, src, 1.5)
    with pytest.raises(ValueError, match="same shapes"):
        soft_update(tgt[:1], src, 0.1)


def test_ou_noise_stationary_statistics():
    """Stationary mean mu and variance sigma^2 / (2 theta) (Euler-Maruyama, small dt), over many chains."""
    mu, theta, sigma, dt = 0.3, 0.5, 0.4, 0.05
    ou = OUNoise((4000, 2), _gen(4), mu=mu, theta=theta, sigma=sigma, dt=dt)
    for _ in range(int(8 / (theta * dt))):  # eight time constants: the start at mu is forgotten
        ou.sample()
    draws = torch.stack([ou.sample() for _ in range(200)])  # (200, 4000, 2), correlated in time
    assert abs(float(draws.mean()) - mu) < 0.02
    var = float(draws.var())
    assert var == pytest.approx(sigma**2 / (2 * theta), rel=0.05)
    assert ou.stationary_std == pytest.approx(math.sqrt(sigma**2 / (2 * theta)))
    # the process is autocorrelated: corr(x_k, x_{k+1}) = 1 - theta dt
    x0, x1 = draws[:-1].reshape(-1) - mu, draws[1:].reshape(-1) - mu
    assert float((x0 * x1).mean() / (x0 * x0).mean()) == pytest.approx(1 - theta * dt, abs=0.01)


def test_ou_noise_reset_per_episode_end_and_validation():
    ou = OUNoise((3, 1), _gen(5), mu=0.5, sigma=1.0)
    for _ in range(10):
        ou.sample()
    before = ou.x.clone()
    ou.reset(np.array([False, True, False]))
    assert ou.x[1, 0] == 0.5
    torch.testing.assert_close(ou.x[[0, 2]], before[[0, 2]])
    ou.reset()
    assert torch.all(ou.x == 0.5)
    with pytest.raises(ValueError, match="done"):
        ou.reset(np.array([True, False]))
    with pytest.raises(ValueError, match="theta"):
        OUNoise((1, 1), _gen(), theta=-1.0)
    with pytest.raises(TypeError, match="generator"):
        OUNoise((1, 1), np.random.default_rng(0))


def test_gaussian_noise_statistics():
    eps = gaussian_noise((200_000, 2), torch.tensor([0.1, 2.0]), _gen(6))
    torch.testing.assert_close(eps.std(dim=0), torch.tensor([0.1, 2.0]), rtol=0.01, atol=0.0)
    assert float(eps.mean(dim=0).abs().max()) < 0.02
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise((2,), -1.0, _gen())


def test_critic_target_masks_terminated_not_truncated():
    """y = r where terminated; y = r + gamma Q' for a truncated (time-limit) transition."""
    next_q = torch.tensor([10.0, 10.0, 10.0])
    rewards = torch.tensor([1.0, 1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0, 0.0])  # transition 1 is truncated: the buffer stores terminated = 0
    y = critic_targets(next_q, rewards, terminated, 0.9)
    torch.testing.assert_close(y, torch.tensor([1.0, 10.0, 10.0]))
    with pytest.raises(ValueError, match="shape"):
        critic_targets(next_q, rewards[:2], terminated, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        critic_targets(next_q, rewards, terminated, 1.5)


def test_critic_loss_uses_target_networks_and_terminated_mask():
    actor, critic = (n.float() for n in _nets(seed=7))
    ta, tc = (n.float() for n in _nets(seed=8))
    g = _gen(9)
    obs, act, nxt = torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g), torch.randn(4, 3, generator=g)
    rew, term = torch.randn(4, generator=g), torch.tensor([0.0, 1.0, 0.0, 1.0])
    batch = Batch(obs, act, rew, nxt, term, np.arange(4))
    loss, td = critic_loss(critic, ta, tc, batch, 0.95)
    with torch.no_grad():
        y = rew + 0.95 * (1 - term) * tc(nxt, ta(nxt))
        expected = y - critic(obs, act)
    torch.testing.assert_close(td, expected)
    torch.testing.assert_close(loss, expected.pow(2).mean())


def test_actor_respects_bounds_and_noisy_policy_clips():
    actor = Actor(2, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), (8,), _gen(10))
    obs = 1e3 * torch.randn(500, 2, generator=_gen(11))
    with torch.no_grad():
        a = actor(obs)
        assert torch.all(a >= torch.tensor([-2.0, 0.0])) and torch.all(a <= torch.tensor([2.0, 1.0]))
        for pol in (
            noisy_policy(actor, 5.0, _gen(12)),
            noisy_policy(actor, OUNoise((500, 2), _gen(13), sigma=50.0), _gen(12)),
        ):
            act, _ = pol(obs)
            assert torch.all(act >= torch.tensor([-2.0, 0.0])) and torch.all(act <= torch.tensor([2.0, 1.0]))
        rand, _ = noisy_policy(actor, 0.0, _gen(14), random_actions=True)(obs)
        # uniform warm-up actions cover the box: means near the centre
        torch.testing.assert_close(rand.mean(dim=0), torch.tensor([0.0, 0.5]), atol=0.15, rtol=0)
    with pytest.raises(ValueError, match="high"):
        Actor(2, np.array([1.0]), np.array([0.0]), (4,), _gen())


def test_config_validation():
    with pytest.raises(ValueError, match="noise"):
        DDPGConfig(noise="pink")
    with pytest.raises(ValueError, match="tau"):
        DDPGConfig(tau=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        DDPGConfig(total_steps=0)


@pytest.mark.parametrize("noise", ["gaussian", "ou"])
def test_train_ddpg_runs_and_is_reproducible(noise):
    cfg = DDPGConfig(total_steps=260, learning_starts=200, batch_size=32, hidden=(16, 16), noise=noise)
    runs = [train_ddpg("Pendulum-v1", cfg, 3, rng=np.random.default_rng(0), generator=_gen(0)) for _ in range(2)]
    a, b = runs
    assert a.n_steps == 260
    assert len(a.episode_returns) == 1 and a.episode_end_steps.tolist() == [200]  # Pendulum truncates at 200
    assert len(a.td_losses) == 61  # one update after each of steps 200, ..., 260
    np.testing.assert_array_equal(a.td_losses, b.td_losses)
    for p, q in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="box"):
        train_ddpg("CartPole-v1", cfg, 0, rng=np.random.default_rng(0), generator=_gen(0))


class _Countdown(gym.Env):
    """Observation [t]; terminates at t = 3 when ``terminate`` else is truncated there by a time limit."""

    def __init__(self, terminate: bool) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.terminate = terminate
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t == 3
        return np.array([self.t], np.float32), 1.0, end and self.terminate, end and not self.terminate, {}


@pytest.mark.parametrize("terminate", [True, False])
def test_targets_from_collected_transitions_bootstrap_only_truncated_ends(terminate):
    """Through the shared collector and buffer: y = r at a terminal state, y = r + gamma Q'(s_3) at a time limit."""
    envs = make_vec_env(lambda: _Countdown(terminate), 1, 0)
    obs, _ = envs.reset()
    roll = collect(envs, lambda o: (torch.zeros(o.shape[0], 1), {}), 6, obs)
    envs.close()
    buf = ReplayBuffer(10, (1,), (1,), action_dtype=np.float32)
    buf.add_rollout(roll)
    ends = np.flatnonzero(buf.next_obs[:6, 0] == 3.0)
    assert ends.tolist() == [2, 5]
    next_q = torch.full((6,), 7.0)
    y = critic_targets(next_q, torch.from_numpy(buf.rewards[:6]), torch.from_numpy(buf.terminated[:6]), 0.5)
    expected = torch.full((6,), 1.0 + 0.5 * 7.0)
    if terminate:
        expected[ends] = 1.0
    torch.testing.assert_close(y, expected)
