"""Stochastic approximation: the incremental mean against cumulative sums, Robbins--Monro against
the known roots (and failing where the theory says it must), SGD against the incremental mean."""

from __future__ import annotations

import numpy as np
import pytest

from shiyan.rl import stochastic_approximation as sa

SEEDS = range(5)


def test_incremental_mean_equals_running_average():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 2))
    running = np.cumsum(x, axis=0) / np.arange(1, 501)[:, None]
    np.testing.assert_allclose(sa.incremental_mean(x), running, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sa.incremental_mean(x[:, 0]), running[:, 0], rtol=1e-12, atol=1e-12)


def test_step_size_schedules():
    a = sa.step_sizes(4, scale=2.0, power=1.0)
    np.testing.assert_allclose(a, [2.0, 1.0, 2 / 3, 0.5])
    # sum of 1/k^2 -> pi^2/6; sum of 1/k grows like log n
    assert sa.step_sizes(200_000, power=2.0).sum() == pytest.approx(np.pi**2 / 6, abs=1e-5)
    assert sa.step_sizes(200_000).sum() == pytest.approx(np.log(200_000) + np.euler_gamma, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_rm_finds_the_tanh_root_under_noise(seed):
    rng = np.random.default_rng(seed)
    w = sa.robbins_monro(sa.g_tanh, 3.0, sa.step_sizes(20_000), rng, noise_std=1.0, n_runs=8)
    assert w.shape == (20_001, 8)
    # after k steps the error is about sigma / (g'(w*) sqrt(k)) = 1/sqrt(20000) = 0.007
    assert np.max(np.abs(w[-1] - sa.ROOT_TANH)) < 0.05
    # much closer than where it started
    assert np.all(np.abs(w[-1] - 1.0) < np.abs(w[0] - 1.0) / 20)


@pytest.mark.parametrize("seed", SEEDS)
def test_rm_finds_the_cube_root_of_5(seed):
    rng = np.random.default_rng(seed)
    w = sa.robbins_monro(sa.g_cubic, 0.0, sa.step_sizes(20_000, scale=0.1), rng, noise_std=1.0, n_runs=8)
    assert np.max(np.abs(w[-1] - 5 ** (1 / 3))) < 0.02


def test_cubic_blows_up_with_large_steps_far_from_the_root():
    # grad g = 3w^2 is unbounded: with a_k = 1/k from w1 = 3 the first step overshoots to -19
    w = sa.robbins_monro(sa.g_cubic, 3.0, sa.step_sizes(50))
    assert w[1, 0] == pytest.approx(3.0 - 22.0)
    assert not np.isfinite(w[-1, 0]) or abs(w[-1, 0]) > 1e6


@pytest.mark.parametrize("seed", SEEDS)
def test_summable_steps_stall_far_from_the_root(seed):
    rng = np.random.default_rng(seed)
    a = sa.step_sizes(20_000, power=2.0)  # sum a_k = pi^2/6 < infinity
    w = sa.robbins_monro(sa.g_tanh, 10.0, a, rng, noise_std=0.1, n_runs=8)
    # |tanh| <= 1 and the noise is small: the iterates can travel about sum a_k ~ 1.64, not 9
    reach = sa.reachable_distance(a, 1.0)
    assert reach == pytest.approx(np.pi**2 / 6, abs=1e-3)
    assert np.all(np.abs(w[-1] - 10.0) < reach + 0.5)
    assert np.all(np.abs(w[-1] - sa.ROOT_TANH) > 6.0)
    # the tail has stopped moving: the last half of the run changes w by almost nothing
    assert np.all(np.abs(w[-1] - w[10_000]) < 1e-2)
    # whereas a_k = 1/k from the same start keeps going (sum a_k = inf) and gets much closer
    w_ok = sa.robbins_monro(sa.g_tanh, 10.0, sa.step_sizes(20_000), rng, noise_std=0.1, n_runs=8)
    assert np.all(np.abs(w_ok[-1] - sa.ROOT_TANH) < np.abs(w[-1] - sa.ROOT_TANH) - 5.0)


def test_noise_free_summable_steps_obey_the_distance_bound_exactly():
    a = sa.step_sizes(5000, power=2.0)
    w = sa.robbins_monro(sa.g_tanh, 10.0, a)
    assert abs(w[-1, 0] - 10.0) <= sa.reachable_distance(a, 1.0)


def test_sgd_with_harmonic_steps_is_the_incremental_mean():
    x = np.random.default_rng(1).uniform(-10, 10, size=(400, 2))
    w = sa.sgd_mean_estimation(x, w1=np.array([50.0, -50.0]))  # any start: alpha_1 = 1 forgets it
    np.testing.assert_allclose(w[1:], sa.incremental_mean(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("batch_size", [1, 5, 50])
def test_minibatch_sgd_converges_to_the_mean(batch_size):
    rng = np.random.default_rng(2)
    x = rng.uniform(-10, 10, size=(1000, 2))
    w = sa.sgd_mean_estimation(x, sa.step_sizes(2000), rng, batch_size=batch_size, w1=np.array([20.0, 20.0]))
    err = np.linalg.norm(w[-1] - x.mean(axis=0))
    # each step averages m samples: the error shrinks like sigma / sqrt(m k), sigma ~ 5.8 per axis
    assert err < 6 * 5.8 * np.sqrt(2 / (batch_size * 2000))


def test_sgd_general_gradient_least_squares():
    # f(w, (z, y)) = (z . w - y)^2 / 2: SGD finds the least-squares solution (numpy's lstsq)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 3))
    y = z @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=2000)
    data = np.column_stack([z, y])

    def grad(w, batch):
        zb, yb = batch[:, :3], batch[:, 3]
        return zb.T @ (zb @ w - yb) / len(batch)

    w = sa.sgd(grad, np.zeros(3), data, sa.step_sizes(20_000, scale=0.5, power=0.8), rng, batch_size=10)
    ref = np.linalg.lstsq(z, y, rcond=None)[0]
    np.testing.assert_allclose(w[-1], ref, atol=0.02)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must"):
        sa.step_sizes(0)
    with pytest.raises(ValueError, match="scale"):
        sa.step_sizes(5, scale=-1.0)
    with pytest.raises(ValueError, match="rng"):
        sa.robbins_monro(sa.g_tanh, 0.0, sa.step_sizes(5), noise_std=1.0)
    with pytest.raises(ValueError, match="step sizes"):
        sa.robbins_monro(sa.g_tanh, 0.0, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="x must"):
        sa.incremental_mean(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="w1"):
        sa.sgd_mean_estimation(np.zeros((3, 2)), w1=np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        sa.sgd_mean_estimation(np.zeros((3, 2)), batch_size=2)
