"""Actor-critic pieces: the exact policy gradient vs finite differences of J, the Monte Carlo estimator
vs the exact gradient, importance sampling unbiasedness, DPG by hand, A2C's loss and a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import approx_fprime

from shiyan.rl import actor_critic as ac
from shiyan.rl import bellman as bl
from shiyan.rl.envs import make_vec_env
from shiyan.rl.gridworld import GridWorld


@pytest.fixture(scope="module")
def small():
    return GridWorld(3, 3, target=(2, 2), forbidden=[(1, 1)], r_forbidden=-1.0).mdp


def test_exact_gradient_matches_finite_differences(small):
    theta = np.random.default_rng(0).normal(size=(9, 5))
    grad = ac.exact_policy_gradient(small, theta, 0.8)
    fd = approx_fprime(theta.ravel(), lambda x: ac.objective(small, x.reshape(9, 5), 0.8), 1e-6).reshape(9, 5)
    np.testing.assert_allclose(grad, fd, atol=1e-5)


def test_monte_carlo_policy_gradient_is_unbiased(small):
    theta = np.random.default_rng(1).normal(size=(9, 5))
    exact = ac.exact_policy_gradient(small, theta, 0.7)
    samples = ac.reinforce_gradient(small, theta, 0.7, np.random.default_rng(2), n_episodes=20_000, horizon=40)
    mean, se = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    z = np.abs(mean - exact) / np.maximum(se, 1e-12)
    assert np.max(z) < 5, np.max(z)  # 45 entries: every one within 5 standard errors
    assert np.max(np.abs(exact)) > 10 * np.max(se)  # the test can tell a wrong gradient from noise


def test_baseline_keeps_the_mean_and_lowers_the_variance(small):
    theta = np.random.default_rng(3).normal(size=(9, 5))
    pi = ac.softmax_policy(theta)
    v = bl.evaluate_policy(small.P, small.R, pi, 0.7)
    exact = ac.exact_policy_gradient(small, theta, 0.7)
    plain = ac.reinforce_gradient(small, theta, 0.7, np.random.default_rng(4), n_episodes=20_000, horizon=40)
    based = ac.reinforce_gradient(
        small, theta, 0.7, np.random.default_rng(4), n_episodes=20_000, horizon=40, baseline=v
    )
    se = based.std(axis=0) / np.sqrt(len(based))
    assert np.max(np.abs(based.mean(axis=0) - exact) / np.maximum(se, 1e-12)) < 5
    assert based.var(axis=0).sum() < 0.7 * plain.var(axis=0).sum()


def test_importance_sampling_is_unbiased():
    rng = np.random.default_rng(0)
    f = np.array([3.0, -1.0, 2.0, 10.0])
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    beta = np.array([0.4, 0.3, 0.2, 0.1])
    x = rng.choice(4, size=200_000, p=beta)
    est = ac.importance_sampling_mean(f[x], pi[x], beta[x])
    ratios = pi[x] / beta[x] * f[x]
    assert abs(est - f @ pi) < 5 * ratios.std() / np.sqrt(x.size)
    assert abs(f[x].mean() - f @ pi) > 1.0  # without the weights the mean is far off
    # many small independent estimates average to the target expectation too
    small = [
        ac.importance_sampling_mean(f[x[i : i + 10]], pi[x[i : i + 10]], beta[x[i : i + 10]])
        for i in range(0, 200_000, 10)
    ]
    assert abs(np.mean(small) - f @ pi) < 0.1
    with pytest.raises(ValueError, match="behaviour_probs"):
        ac.importance_sampling_mean(f, pi, np.zeros(4))


def test_dpg_gradient_by_hand():
    # q(s, a) = -(a - 2 s)^2, mu(s) = theta * s  =>  dJ/dtheta = mean(-2 (theta s - 2 s) s)
    theta = torch.tensor(0.5, requires_grad=True)
    s = torch.tensor([[1.0], [-2.0], [0.5]])

    def actor(obs):
        return theta * obs

    def critic(obs, a):
        return -((a - 2 * obs) ** 2).squeeze(-1)

    ac.dpg_actor_loss(actor, critic, s).backward()
    expected = -np.mean([-2 * (0.5 * x - 2 * x) * x for x in (1.0, -2.0, 0.5)])
    assert theta.grad.item() == pytest.approx(expected)
    y = ac.dpg_critic_target(torch.tensor([[1.0], [2.0]]), torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]), 0.9)
    torch.testing.assert_close(y, torch.tensor([1.4, 0.5]))


def test_a2c_loss_parts_by_hand():
    model = ac.ActorCritic(3, 2, (4,), torch.Generator().manual_seed(0))
    obs = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    actions = torch.tensor([0, 1, 1, 0, 1])
    adv = torch.tensor([1.0, -0.5, 2.0, 0.0, 0.3])
    ret = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    loss, parts = ac.a2c_loss(model, obs, actions, adv, ret, ent_coef=0.01, vf_coef=0.5)
    dist = torch.distributions.Categorical(logits=model.actor(obs))
    pg = -(dist.log_prob(actions) * adv).mean()
    vf = ((model.critic(obs).squeeze(-1) - ret) ** 2).mean()
    expected = pg - 0.01 * dist.entropy().mean() + 0.5 * vf
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["entropy"] == pytest.approx(dist.entropy().mean().item(), rel=1e-6)


SMALL = {"n_rows": 3, "n_cols": 3, "target": (2, 2), "forbidden": [(1, 1)], "r_forbidden": -1.0}


def test_qac_and_off_policy_ac_improve_the_policy(small):
    gamma = 0.8
    opt = bl.value_iteration(small.P, small.R, gamma)
    j_uniform = float(bl.evaluate_policy(small.P, small.R, bl.uniform_policy(9, 5), gamma).mean())
    envs = make_vec_env("GridWorld", 4, 0, max_episode_steps=20, **SMALL)
    r = ac.qac(envs, gamma, np.random.default_rng(0), n_steps=16_000)
    j_qac = ac.objective(small, r.theta, gamma)
    envs = make_vec_env("GridWorld", 2, 0, **SMALL)
    r2 = ac.off_policy_ac(envs, bl.uniform_policy(9, 5), gamma, np.random.default_rng(0), n_steps=15_000)
    j_off = ac.objective(small, r2.theta, gamma)
    j_star = float(opt.v.mean())
    # both close most of the gap between the uniform policy and the optimum
    assert (j_star - j_qac) < 0.25 * (j_star - j_uniform), (j_qac, j_star, j_uniform)
    assert (j_star - j_off) < 0.25 * (j_star - j_uniform), (j_off, j_star, j_uniform)
    assert r.history_steps[-1] == 10_000 and r2.history.shape == (2, 9, 5)  # snapshots every 10,000 steps


def test_off_policy_critic_matches_a_slow_loop_over_the_same_transitions():
    # the same uniform-behaviour transitions, replayed by a plain loop written from Algorithm 10.3
    gamma, n = 0.8, 600
    beta = np.full((9, 5), 0.2)
    res = ac.off_policy_ac(make_vec_env("GridWorld", 3, 7, **SMALL), beta, gamma, np.random.default_rng(1), n_steps=n)
    envs = make_vec_env("GridWorld", 3, 7, **SMALL)
    rng = np.random.default_rng(1)
    obs, _ = envs.reset()
    trans = []
    for _ in range(n // 3):  # the same draws as the learner's behaviour policy: inverse CDF of one uniform per copy
        u = rng.random(3)
        a = np.minimum((np.cumsum(beta[obs], axis=1) <= u[:, None]).sum(axis=1), 4)
        nxt, rew, term, _, _ = envs.step(a)
        trans += list(zip(obs, a, rew, nxt, term, strict=True))
        obs = nxt
    theta, v = np.zeros((9, 5)), np.zeros(9)
    for s, a, r, s2, term in trans:
        pi = np.exp(theta[s]) / np.exp(theta[s]).sum()
        rho = pi[a] / beta[s, a]
        delta = r + (0.0 if term else gamma * v[s2]) - v[s]
        v[s] += 0.1 * rho * delta
        grad = -pi
        grad[a] += 1
        theta[s] += 0.1 * rho * delta * grad
    np.testing.assert_allclose(res.critic, v, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.theta, theta, rtol=1e-6, atol=1e-9)
    assert np.abs(theta).max() > 0.1  # the loop did learn something


def test_tiny_a2c_run_is_reproducible():
    cfg = ac.A2CConfig(total_steps=200, n_envs=2, n_steps=5, hidden=(8,))

    def run():
        return ac.train_a2c("CartPole-v1", cfg, 0, generator=torch.Generator().manual_seed(0))

    a, b = run(), run()
    assert a.n_steps == 200
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_bad_arguments_raise(small):
    with pytest.raises(ValueError, match="theta"):
        ac.softmax_policy(np.zeros(3))
    with pytest.raises(ValueError, match="rho0"):
        ac.objective(small, np.zeros((9, 5)), 0.9, rho0=np.ones(9))
    with pytest.raises(ValueError, match="behaviour"):
        ac.off_policy_ac(make_vec_env("GridWorld", 1, 0, **SMALL), np.zeros((9, 5)), 0.9, np.random.default_rng(0))
    with pytest.raises(ValueError, match="discrete"):
        ac.qac(make_vec_env("CartPole-v1", 1, 0), 0.9, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_steps"):
        ac.qac(make_vec_env("GridWorld", 1, 0, **SMALL), 0.9, np.random.default_rng(0), n_steps=0)
    with pytest.raises(ValueError, match="n_envs"):
        ac.A2CConfig(n_envs=0)
