"""GAE and n-step returns against slow per-episode references and the lambda = 0 / 1 closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.rl.advantages import gae, n_step_returns, td_errors


def _random_rollout(seed: int, t: int = 12, n: int = 3, p_end: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(t, n, generator=g, dtype=torch.float64)
    values = torch.randn(t, n, generator=g, dtype=torch.float64)
    next_values = torch.randn(t, n, generator=g, dtype=torch.float64)
    ends = torch.rand(t, n, generator=g) < p_end
    kind = torch.rand(t, n, generator=g) < 0.5
    return rewards, values, next_values, ends & kind, ends & ~kind


def _slow_gae(rewards, values, next_values, term, trunc, gamma, lam):
    """A_t = sum_l (gamma lam)^l delta_{t+l} up to the episode's or the rollout's end, one copy at a time."""
    r, v, nv = rewards.numpy(), values.numpy(), next_values.numpy()
    te, tr = term.numpy(), trunc.numpy()
    t_len, n = r.shape
    adv = np.zeros((t_len, n))
    for i in range(n):
        for t in range(t_len):
            total, k = 0.0, t
            while k < t_len:
                delta = r[k, i] + (0.0 if te[k, i] else gamma * nv[k, i]) - v[k, i]
                total += (gamma * lam) ** (k - t) * delta
                if te[k, i] or tr[k, i]:
                    break
                k += 1
            adv[t, i] = total
    return adv


def _slow_n_step(rewards, next_values, term, trunc, gamma, n):
    r, nv, te, tr = rewards.numpy(), next_values.numpy(), term.numpy(), trunc.numpy()
    t_len, n_env = r.shape
    out = np.zeros((t_len, n_env))
    for i in range(n_env):
        for t in range(t_len):
            g = 0.0
            for k in range(t, min(t + n, t_len)):
                g += gamma ** (k - t) * r[k, i]
                if te[k, i]:
                    break
                if tr[k, i] or k == min(t + n, t_len) - 1:
                    g += gamma ** (k - t + 1) * nv[k, i]
                    break
            out[t, i] = g
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_slow_reference(seed, lam):
    r, v, nv, te, tr = _random_rollout(seed)
    adv, ret = gae(r, v, nv, te, tr, gamma=0.9, lam=lam)
    ref = _slow_gae(r, v, nv, te, tr, 0.9, lam)
    np.testing.assert_allclose(adv.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose((ret - v).numpy(), ref, atol=1e-12)


def test_gae_lambda_zero_is_td_error():
    r, v, nv, te, tr = _random_rollout(5)
    adv, _ = gae(r, v, nv, te, tr, gamma=0.97, lam=0.0)
    manual = r + 0.97 * (~te).double() * nv - v
    np.testing.assert_allclose(adv.numpy(), manual.numpy(), atol=1e-12)
    np.testing.assert_allclose(td_errors(r, v, nv, te, 0.97).numpy(), manual.numpy(), atol=1e-12)


def test_gae_lambda_one_is_bootstrapped_return_minus_baseline():
    # lambda = 1: A_t + v(s_t) equals the n-step return with n >= T (return to the episode/rollout end)
    r, v, nv, te, tr = _random_rollout(7)
    # inside an episode v(s_{t+1}) is the next step's v(s_t): the telescoping sum needs that consistency
    cont = ~(te | tr)
    nv[:-1] = torch.where(cont[:-1], v[1:], nv[:-1])
    _, ret = gae(r, v, nv, te, tr, gamma=0.9, lam=1.0)
    full = n_step_returns(r, nv, te, tr, gamma=0.9, n=100)
    np.testing.assert_allclose(ret.numpy(), full.numpy(), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 50])
def test_n_step_returns_match_slow_reference(n):
    r, v, nv, te, tr = _random_rollout(11, t=15)
    out = n_step_returns(r, nv, te, tr, gamma=0.8, n=n)
    np.testing.assert_allclose(out.numpy(), _slow_n_step(r, nv, te, tr, 0.8, n), atol=1e-12)


def test_one_step_return_is_td_target():
    r, v, nv, te, tr = _random_rollout(3)
    out = n_step_returns(r, nv, te, tr, gamma=0.9, n=1)
    np.testing.assert_allclose(out.numpy(), (td_errors(r, v, nv, te, 0.9) + v).numpy(), atol=1e-12)


def test_truncated_bootstraps_terminated_does_not():
    # one copy, three steps, the episode ends after the second step
    r = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    v = torch.zeros(3, 1, dtype=torch.float64)
    nv = torch.tensor([[0.0], [10.0], [0.0]], dtype=torch.float64)  # v(final obs) = 10 at the end
    end = torch.tensor([[False], [True], [False]])
    none = torch.zeros(3, 1, dtype=torch.bool)
    gamma = 0.5
    adv_trunc, _ = gae(r, v, nv, none, end, gamma, 1.0)
    adv_term, _ = gae(r, v, nv, end, none, gamma, 1.0)
    # truncated: 1 + 0.5 * 2 + 0.25 * 10; terminated: 1 + 0.5 * 2 (the final obs' value is ignored)
    assert adv_trunc[0, 0].item() == pytest.approx(1 + 0.5 * 2 + 0.25 * 10)
    assert adv_term[0, 0].item() == pytest.approx(1 + 0.5 * 2)
    # the step after the end belongs to a new episode: nothing leaks across
    assert adv_trunc[2, 0].item() == pytest.approx(4.0)
    assert adv_term[1, 0].item() == pytest.approx(2.0)
    assert n_step_returns(r, nv, none, end, gamma, 3)[0, 0].item() == pytest.approx(1 + 1 + 2.5)
    assert n_step_returns(r, nv, end, none, gamma, 3)[0, 0].item() == pytest.approx(2.0)


def test_bad_inputs_raise():
    r, v, nv, te, tr = _random_rollout(0)
    with pytest.raises(ValueError, match="values"):
        gae(r, v[:-1], nv, te, tr, 0.9, 0.9)
    with pytest.raises(ValueError, match="lam"):
        gae(r, v, nv, te, tr, 0.9, 1.5)
    with pytest.raises(ValueError, match="gamma"):
        gae(r, v, nv, te, tr, -0.1, 0.5)
    with pytest.raises(ValueError, match="n must"):
        n_step_returns(r, nv, te, tr, 0.9, 0)
    bad = r.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="rewards"):
        gae(bad, v, nv, te, tr, 0.9, 0.9)
