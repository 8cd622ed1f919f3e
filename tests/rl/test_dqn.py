"""DQN's target and loss on a hand-computed batch, the epsilon-greedy policy, and a tiny training run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from shiyan.rl.approx import mlp
from shiyan.rl.buffer import Batch, ReplayBuffer
from shiyan.rl.collect import collect
from shiyan.rl.dqn import DQNConfig, dqn_loss, dqn_targets, epsilon_greedy, linear_schedule, train_dqn
from shiyan.rl.envs import make_vec_env


class _Table(nn.Module):
    """q(s, .) = table[s] for integer-valued observations stored as floats."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs):
        return self.table[obs[:, 0].long()]


def _batch():
    return Batch(
        obs=torch.tensor([[0.0], [1.0], [2.0]]),
        actions=torch.tensor([1, 0, 1]),
        rewards=torch.tensor([1.0, -1.0, 0.5]),
        next_obs=torch.tensor([[1.0], [2.0], [0.0]]),
        terminated=torch.tensor([0.0, 1.0, 0.0]),
        indices=np.arange(3),
    )


def test_targets_and_huber_loss_by_hand():
    online = _Table([[0.0, 2.0], [1.0, 3.0], [4.0, -2.0]])
    target = _Table([[5.0, 1.0], [0.5, 2.5], [3.0, 0.0]])
    gamma = 0.9
    # y = r + gamma (1 - term) max_a' q_T(s', a'):  1 + 0.9 * 2.5,  -1 (terminal),  0.5 + 0.9 * 5
    y = dqn_targets(target(_batch().next_obs), _batch().rewards, _batch().terminated, gamma)
    torch.testing.assert_close(y, torch.tensor([3.25, -1.0, 5.0]))
    # q(s, a) = 2, 1, -2: errors 1.25, -2, 7, all beyond 1, so the Huber loss is |x| - 0.5
    expected = np.mean([1.25 - 0.5, 2.0 - 0.5, 7.0 - 0.5])
    loss = dqn_loss(online, target, _batch(), gamma)
    assert loss.item() == pytest.approx(expected)
    # small errors use the quadratic branch
    near = _Table([[0.0, 3.0], [-0.5, 3.0], [4.0, 4.5]])
    assert dqn_loss(near, target, _batch(), gamma).item() == pytest.approx(
        np.mean([0.5 * 0.25**2, 0.5 * 0.5**2, 0.5 * 0.5**2])
    )
    # the gradient flows into the online network only, and only into the chosen actions
    loss.backward()
    grad = online.table.grad
    assert grad[0, 0] == 0 and grad[1, 1] == 0 and grad[0, 1] != 0
    assert target.table.grad is None


def test_truncated_transitions_keep_the_bootstrap():
    next_q = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    y = dqn_targets(next_q, torch.zeros(2), torch.tensor([0.0, 1.0]), 0.5)
    torch.testing.assert_close(y, torch.tensor([1.0, 0.0]))


def test_linear_schedule():
    eps = linear_schedule(1.0, 0.1, 0.5, 1000)
    assert (
        eps(0) == 1.0
        and eps(250) == pytest.approx(0.55)
        and eps(500) == pytest.approx(0.1)
        and eps(900) == pytest.approx(0.1)
    )


def test_epsilon_greedy_action_frequencies():
    net = _Table([[0.0, 1.0, 0.0, 0.0]])
    pol = epsilon_greedy(net, lambda: 0.4, np.random.default_rng(0))
    a, _ = pol(torch.zeros(40_000, 1))
    freq = np.bincount(a, minlength=4) / a.size
    np.testing.assert_allclose(freq, [0.1, 0.7, 0.1, 0.1], atol=0.01)  # 1 - eps + eps/A on the greedy action


def test_tiny_training_run_is_reproducible():
    cfg = DQNConfig(total_steps=200, learning_starts=100, train_freq=25, gradient_steps=3, batch_size=16, hidden=(16,))

    def run():
        return train_dqn(
            "CartPole-v1", cfg, 3, rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0)
        )

    a, b = run(), run()
    assert a.n_steps == 200 and len(a.losses) == 5  # rounds after steps 100, 125, ..., 200
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    assert np.all(np.isfinite(a.losses))


def test_skipping_the_network_when_all_explore_changes_no_action():
    net = _Table([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    obs = torch.tensor([[0.0], [1.0], [0.0]])
    for eps in (0.0, 0.3, 1.0):
        plain = epsilon_greedy(net, lambda e=eps: e, np.random.default_rng(5))
        skipping = epsilon_greedy(net, lambda e=eps: e, np.random.default_rng(5), n_actions=3)
        for _ in range(50):
            np.testing.assert_array_equal(plain(obs)[0], skipping(obs)[0])
    with pytest.raises(ValueError, match="n_actions"):
        epsilon_greedy(net, lambda: 0.1, np.random.default_rng(0), n_actions=0)


def _naive_train(cfg: DQNConfig, seed: int, rng: np.random.Generator, generator: torch.Generator):
    """The training loop written plainly: the default per-tensor Adam, a state-dict copy into the target
    network, a Python float for the loss and a forward pass on every step of the behaviour policy."""
    envs = make_vec_env("CartPole-v1", cfg.n_envs, seed)
    q_net = mlp((4, *cfg.hidden, 2), generator)
    target = copy.deepcopy(q_net)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr, foreach=False)
    buf = ReplayBuffer(cfg.buffer_size, (4,))
    eps = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.exploration_fraction, cfg.total_steps)
    step, n_grad, losses = 0, 0, []

    def policy(obs):
        q = q_net(obs)
        greedy = q.argmax(dim=1).numpy()
        explore = rng.random(len(obs)) < eps(step)
        return (np.where(explore, rng.integers(0, 2, size=len(obs)), greedy) if explore.any() else greedy), {}

    obs, _ = envs.reset()
    while step < cfg.total_steps:
        roll = collect(envs, policy, cfg.train_freq, obs)
        obs = roll.last_obs
        buf.add_rollout(roll)
        step += cfg.train_freq * cfg.n_envs
        if step < cfg.learning_starts:
            continue
        total = 0.0
        for _ in range(cfg.gradient_steps):
            loss = dqn_loss(q_net, target, buf.sample(cfg.batch_size, rng), cfg.gamma)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm, foreach=False)
            opt.step()
            total += loss.item()
            n_grad += 1
            if n_grad % cfg.target_update_interval == 0:
                target.load_state_dict(q_net.state_dict())
        losses.append(total / cfg.gradient_steps)
    return q_net, np.array(losses)


def test_training_matches_a_plain_loop():
    cfg = DQNConfig(
        total_steps=600,
        n_envs=2,
        learning_starts=100,
        train_freq=25,
        gradient_steps=4,
        batch_size=16,
        target_update_interval=3,
        exploration_fraction=0.5,
        hidden=(16,),
    )
    ours = train_dqn("CartPole-v1", cfg, 1, rng=np.random.default_rng(2), generator=torch.Generator().manual_seed(3))
    q_net, losses = _naive_train(cfg, 1, np.random.default_rng(2), torch.Generator().manual_seed(3))
    np.testing.assert_allclose(ours.losses, losses, rtol=1e-4, atol=1e-6)
    for p, q in zip(ours.q_net.parameters(), q_net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert len(losses) == 11 and np.abs(losses).max() > 0


def test_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        DQNConfig(batch_size=0)
    with pytest.raises(ValueError, match="eps_end"):
        DQNConfig(eps_end=0.5, eps_start=0.2)
