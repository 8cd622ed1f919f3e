"""Oracle tests for shiyan.maths.random_walk: scipy's binomial, polynomial algebra, brute-force path
enumeration, the renewal relation and Monte Carlo."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import polynomial as P
from scipy.special import binom as real_binom
from scipy.stats import binom

from shiyan.maths import random_walk as rw

PS = [0.5, 0.3, 0.82]


# -- exact law of S_n ----------------------------------------------------------------------------
@pytest.mark.parametrize("p", [*PS, 0.01, 0.999])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 40, 101, 1000])
def test_position_pmf_matches_scipy_binomial(n, p):
    k = rw.positions(n)
    ours = rw.position_pmf(n, p)
    r, odd = (n + k) // 2, (n + k) % 2 == 1
    ref = np.where(odd, 0.0, binom.pmf(r, n, p))
    assert ours.shape == (2 * n + 1,)
    assert np.all(ours[odd] == 0.0)
    big = ref > 1e-290
    np.testing.assert_allclose(ours[big], ref[big], rtol=1e-10)
    assert np.all(ours[~big] < 1e-280)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("p", PS)
def test_position_pmf_large_n_stays_accurate(p):
    n = 10**7
    k = np.arange(-n, n + 1, 2)[::4001]  # reachable positions, across the whole support
    r = (n + k) // 2
    ref = binom.pmf(r, n, p)
    ours = rw.position_pmf(n, p, k)
    big = ref > 1e-290
    assert big.sum() > 10
    np.testing.assert_allclose(ours[big], ref[big], rtol=1e-9)
    # log-space never overflows: the log-pmf far in the tail is finite and matches scipy's logpmf
    far = np.array([n - 2 * 3])  # k = n - 6: three down-steps
    np.testing.assert_allclose(rw.log_position_pmf(n, far, p), binom.logpmf(n - 3, n, p), rtol=1e-12)


def test_position_pmf_is_the_exact_rational_value():
    n, p = 25, Fraction(3, 10)
    for k in range(-n, n + 1, 2):
        r = (n + k) // 2
        exact = math.comb(n, r) * p**r * (1 - p) ** (n - r)
        assert rw.position_pmf(n, 0.3, [k])[0] == pytest.approx(float(exact), rel=1e-13)


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("n", [1, 4, 15, 60])
def test_generating_function_coefficients_by_polynomial_multiplication(n, p):
    q = 1.0 - p
    # (p z + q / z)^n = z^{-n} (q + p z^2)^n : multiply the polynomial out n times, one factor at a time
    poly = np.array([1.0])
    for _ in range(n):
        poly = P.polymul(poly, [q, 0.0, p])
    np.testing.assert_allclose(poly, rw.position_pmf(n, p), atol=1e-15, rtol=1e-12)
    np.testing.assert_allclose(P.polypow([q, 0.0, p], n), rw.position_pmf(n, p), atol=1e-15, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), p=st.floats(0.01, 0.99))
def test_moments_of_the_position(n, p):
    k = rw.positions(n)
    pmf = rw.position_pmf(n, p)
    mean = np.sum(k * pmf)
    assert mean == pytest.approx(n * (2 * p - 1), abs=1e-9 * n)
    assert np.sum((k - mean) ** 2 * pmf) == pytest.approx(4 * n * p * (1 - p), rel=1e-9)


@pytest.mark.parametrize("p, expected_end", [(0.0, 0), (1.0, -1)])
def test_degenerate_walks_are_deterministic(p, expected_end):
    pmf = rw.position_pmf(6, p)
    assert pmf[expected_end] == 1.0 and pmf.sum() == 1.0


def test_normal_approximation_improves_with_n():
    tv = [rw.total_variation(rw.position_pmf(n, 0.6), rw.normal_approximation(n, 0.6)) for n in (25, 100, 400)]
    assert tv[0] > tv[1] > tv[2]
    assert tv[1] / tv[0] == pytest.approx(0.5, abs=0.1)  # skewed walk: error ~ 1/sqrt(n)


# -- returns to the origin -----------------------------------------------------------------------
@pytest.mark.parametrize("p", PS)
def test_return_probabilities_match_binomial_and_exact_integers(p):
    u = rw.return_probabilities(300, p)
    m = np.arange(301)
    np.testing.assert_allclose(u, binom.pmf(m, 2 * m, p), rtol=1e-10)
    pq = Fraction(p) * (1 - Fraction(p))
    for mm in (0, 1, 2, 9):
        assert u[mm] == pytest.approx(float(math.comb(2 * mm, mm) * pq**mm), rel=1e-14)


@pytest.mark.parametrize("p", PS)
def test_first_return_equals_coefficients_of_F(p):
    # F(s) = 1 - sqrt(1 - 4pq s^2) = 1 - sum_m binom(1/2, m) (-4pq s^2)^m
    m = np.arange(0, 200)
    coeffs = -real_binom(0.5, m) * (-4 * p * (1 - p)) ** m
    coeffs[0] = 0.0
    np.testing.assert_allclose(rw.first_return_probabilities(199, p), coeffs, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("p", PS)
def test_renewal_relation_gives_the_same_first_return_law(p):
    u = rw.return_probabilities(400, p)
    f_naive = rw.first_return_by_renewal(u)
    f_gf = rw.first_return_probabilities(400, p)
    np.testing.assert_allclose(f_naive, f_gf, atol=1e-13)
    # and u = 1 + F U as power series in s^2
    np.testing.assert_allclose(np.convolve(f_gf, u)[1:401], u[1:], atol=1e-13)


def _brute_force_first_hits(n: int, level: int, p: float) -> np.ndarray:
    """P(first visit to `level` at time t), t = 0..n, by enumerating all 2^n paths."""
    out = np.zeros(n + 1)
    for steps in itertools.product((1, -1), repeat=n):
        s, prob, hit = 0, 1.0, None
        for t, x in enumerate(steps, start=1):
            s += x
            prob *= p if x == 1 else 1 - p
            if hit is None and s == level:
                hit = t
        if hit is not None:
            out[hit] += prob
    return out


@pytest.mark.parametrize("p", [0.5, 0.35])
def test_first_return_and_passage_against_path_enumeration(p):
    n = 12
    brute_return = _brute_force_first_hits(n, 0, p)
    np.testing.assert_allclose(brute_return[0::2], rw.first_return_probabilities(n // 2, p), atol=1e-14)
    for k in (1, 2, -3):
        brute = _brute_force_first_hits(n, k, p)
        np.testing.assert_allclose(rw.first_passage_series(n, k, p), brute, atol=1e-14)
        np.testing.assert_allclose(rw.first_passage_probabilities(np.arange(n + 1), k, p), brute, atol=1e-14)


def test_symmetric_no_return_tail_equals_u_and_decays_like_one_over_sqrt_pi_m():
    m_max = 5000
    u = rw.return_probabilities(m_max)
    not_yet = 1.0 - rw.return_by_probabilities(m_max)
    np.testing.assert_allclose(not_yet, u, atol=1e-13)  # P(T_0 > 2m) = u_2m for p = 1/2
    m = np.array([10, 100, 1000, 5000])
    ratio = u[m] * np.sqrt(np.pi * m)
    assert np.all(np.diff(np.abs(ratio - 1.0)) < 0)
    assert np.all(np.abs(ratio - (1 - 1 / (8 * m))) <= 1 / m**2)  # next Stirling term: 1/(128 m^2)


@pytest.mark.parametrize("p", [0.3, 0.55, 0.6, 0.9])
def test_ever_return_is_one_minus_abs_p_minus_q(p):
    assert rw.ever_return_probability(p) == pytest.approx(1 - abs(2 * p - 1))
    assert rw.return_by_probabilities(4000, p)[-1] == pytest.approx(1 - abs(2 * p - 1), abs=1e-6)


@pytest.mark.parametrize("k, p", [(1, 0.3), (2, 0.4), (-2, 0.7), (3, 0.5), (-1, 0.5)])
def test_ever_reach_probability_is_the_sum_of_the_passage_law(k, p):
    n_max = 4000
    total = rw.first_passage_series(n_max, k, p).sum()
    expected = rw.ever_reach_probability(k, p)
    # the symmetric tail P(T_k > n) ~ |k| sqrt(2 / (pi n)) decays slowly; the others geometrically
    tol = 2 * abs(k) * np.sqrt(2 / (np.pi * n_max)) if p == 0.5 else 1e-9
    assert total == pytest.approx(expected, abs=tol)
    assert total <= expected + 1e-12
    if p != 0.5:
        assert expected == pytest.approx(min(1.0, (p / (1 - p)) ** np.sign(k)) ** abs(k))


# -- Monte Carlo -----------------------------------------------------------------------------------
def test_simulated_paths_are_walks_and_reproducible():
    paths = rw.simulate_walks(30, 500, 0.4, np.random.default_rng(3))
    assert paths.shape == (500, 31) and paths.dtype == np.int32
    assert np.all(paths[:, 0] == 0)
    assert set(np.unique(np.diff(paths, axis=1))) <= {-1, 1}
    np.testing.assert_array_equal(paths, rw.simulate_walks(30, 500, 0.4, np.random.default_rng(3)))


@pytest.mark.parametrize("p", [0.5, 0.65])
def test_monte_carlo_matches_exact_laws(p):
    n, walks = 30, 60_000
    paths = rw.simulate_walks(n, walks, p, np.random.default_rng(12345))
    exact = rw.position_pmf(n, p)
    empirical = rw.empirical_position_pmf(paths[:, -1], n)
    assert rw.total_variation(empirical, exact) <= 1.5 * rw.expected_sampling_tv(exact, walks)
    # a walk with a slightly different p is clearly rejected by the same yardstick
    wrong = rw.position_pmf(n, p + 0.03)
    assert rw.total_variation(empirical, wrong) > 3 * rw.expected_sampling_tv(exact, walks)
    returned = np.mean(rw.first_hit_times(paths, 0) > 0)
    exact_ret = rw.return_by_probabilities(n // 2, p)[-1]
    assert abs(returned - exact_ret) <= 4 * np.sqrt(exact_ret * (1 - exact_ret) / walks)
    reached = rw.first_hit_times(paths, 2)
    exact_t2 = rw.first_passage_series(n, 2, p)
    for t in (2, 4, 10):
        freq = np.mean(reached == t)
        assert abs(freq - exact_t2[t]) <= 4 * np.sqrt(exact_t2[t] * (1 - exact_t2[t]) / walks)


def test_first_hit_times_on_a_hand_made_path():
    paths = np.array([[0, 1, 0, -1, 0], [0, -1, -2, -1, -2], [0, 1, 2, 3, 2]])
    np.testing.assert_array_equal(rw.first_hit_times(paths, 0), [2, -1, -1])
    np.testing.assert_array_equal(rw.first_hit_times(paths, 2), [-1, -1, 2])


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_probability_is_named(bad):
    with pytest.raises(ValueError, match="p must lie in"):
        rw.position_pmf(5, bad)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="p must be a real number"):
        rw.position_pmf(5, "0.5")
    with pytest.raises(ValueError, match="n must be >= 0"):
        rw.position_pmf(-1)
    with pytest.raises(TypeError, match="n must be an integer"):
        rw.position_pmf(2.5)
    with pytest.raises(TypeError, match="k must hold integers"):
        rw.log_position_pmf(4, [0.5])
    with pytest.raises(ValueError, match="k must be a non-zero level"):
        rw.first_passage_series(10, 0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        rw.simulate_walks(5, 5, 0.5, rng=42)
    with pytest.raises(ValueError, match=r"u\[0\] must be 1"):
        rw.first_return_by_renewal([0.5, 0.2])
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        rw.total_variation([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="final_positions must lie in"):
        rw.empirical_position_pmf([5], 3)
    with pytest.raises(ValueError, match="strictly inside"):
        rw.normal_approximation(10, 1.0)
