"""Oracle tests for shiyan.maths.directional: the worked example, three independent routes
(hand-derived gradient, central differences, torch forward-mode autograd), Cauchy--Schwarz and the
O(h^2) error of central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.maths import directional as dd

POINT = np.array([1.0, 2.0])


# -- the worked example ----------------------------------------------------------------------------
@pytest.mark.parametrize("u, expected", [((3.0, 4.0), 22 / 5), ((1.0, 0.0), 2.0), ((0.0, -2.0), -4.0)])
def test_worked_example_by_three_routes(u, expected):
    f = dd.PARABOLOID
    assert dd.directional_derivative(f.gradient(POINT), u) == pytest.approx(expected, abs=1e-14)
    assert float(dd.autograd_directional(f.value, POINT, u)) == pytest.approx(expected, abs=1e-14)
    assert dd.central_difference_directional(f.value, POINT, u) == pytest.approx(expected, abs=1e-9)


def test_worked_example_values_are_exactly_4_4_and_2():
    g = dd.PARABOLOID.gradient(POINT)
    np.testing.assert_array_equal(g, [2.0, 4.0])
    assert float(dd.directional_derivative(g, [3.0, 4.0])) == pytest.approx(4.4, abs=1e-15)
    assert float(dd.directional_derivative(g, [1.0, 0.0])) == 2.0


# -- three routes agree ------------------------------------------------------------------------------
@pytest.mark.parametrize("field", dd.FIELDS, ids=lambda f: f.name)
def test_routes_agree_on_random_points(field):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (500, 2))
    U = rng.standard_normal((500, 2))
    closed = dd.directional_derivative(field.gradient(X), U)
    scale = np.maximum(1.0, np.abs(closed))
    ad = dd.autograd_directional(field.value, X, U).numpy()
    fd = dd.central_difference_directional(field.value, X, U)
    assert np.max(np.abs(ad - closed) / scale) < 1e-12
    assert np.max(np.abs(fd - closed) / scale) < 1e-7
    # gradients themselves: reverse-mode autograd and central differences vs the hand-derived one
    G = field.gradient(X)
    gscale = np.maximum(1.0, np.abs(G))
    assert np.max(np.abs(dd.autograd_gradient(field.value, X).numpy() - G) / gscale) < 1e-12
    assert np.max(np.abs(dd.central_difference_gradient(field.value, X) - G) / gscale) < 1e-7


def test_closed_form_gradients_are_right_against_torch_reverse_mode_at_known_points():
    # Rosenbrock: gradient vanishes at its minimum (1, 1); the wavy bowl at the origin is (1, 0)
    np.testing.assert_allclose(dd.ROSENBROCK.gradient([1.0, 1.0]), [0.0, 0.0], atol=0)
    np.testing.assert_allclose(dd.WAVY_BOWL.gradient([0.0, 0.0]), [1.0, 0.0], atol=0)


def _softplus_sum(x):
    """A 5-D non-quadratic field written for both numpy and torch: sum log(1 + exp(a_i x_i)) + x_0 x_4."""
    a = [1.0, -2.0, 0.5, 3.0, 1.5]
    ns = torch if isinstance(x, torch.Tensor) else np
    return sum(ns.log1p(ns.exp(a[i] * x[..., i])) for i in range(5)) + x[..., 0] * x[..., 4]


def _softplus_sum_grad(x):
    a = np.array([1.0, -2.0, 0.5, 3.0, 1.5])
    g = a / (1.0 + np.exp(-a * x))
    g[..., 0] += x[..., 4]
    g[..., 4] += x[..., 0]
    return g


def test_routes_agree_in_five_dimensions():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5))
    U = rng.standard_normal((200, 5))
    closed = dd.directional_derivative(_softplus_sum_grad(X), U)
    np.testing.assert_allclose(dd.autograd_directional(_softplus_sum, X, U).numpy(), closed, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dd.central_difference_directional(_softplus_sum, X, U), closed, rtol=1e-8, atol=1e-9)


def test_direction_length_does_not_matter_and_sign_flips():
    g = dd.WAVY_BOWL.gradient([0.4, -1.1])
    u = np.array([0.3, 0.9])
    d = dd.directional_derivative(g, u)
    assert dd.directional_derivative(g, 7.5 * u) == pytest.approx(d, rel=1e-15)
    assert dd.directional_derivative(g, -u) == pytest.approx(-d, rel=1e-15)


def test_partial_derivatives_are_directional_derivatives_along_axes():
    x = np.array([0.2, 0.7])
    g = dd.ROSENBROCK.gradient(x)
    assert dd.directional_derivative(g, [1, 0]) == g[0]
    assert dd.directional_derivative(g, [0, 1]) == g[1]


# -- steepest ascent ---------------------------------------------------------------------------------
def test_sweep_max_is_gradient_norm_attained_along_the_gradient():
    g = dd.PARABOLOID.gradient(POINT)
    theta, dirs = dd.unit_circle(3600)
    values, best = dd.sweep_directions(g, dirs)
    g_hat, norm = dd.steepest_ascent(g)
    assert norm == pytest.approx(2 * np.sqrt(5))
    assert values.max() <= norm + 1e-15
    assert norm - values[best] <= norm * (1 - np.cos(np.pi / 3600)) + 1e-15
    assert np.arccos(np.clip(dirs[best] @ g_hat, -1, 1)) <= np.pi / 3600 + 1e-12
    np.testing.assert_allclose(values, norm * np.cos(theta - np.arctan2(g[1], g[0])), atol=1e-13)
    assert dd.directional_derivative(g, g_hat) == pytest.approx(norm, rel=1e-15)


def test_no_direction_beats_the_gradient_in_higher_dimensions():
    rng = np.random.default_rng(2)
    g = rng.standard_normal(6)
    dirs = dd.unit(rng.standard_normal((20_000, 6)))
    values, best = dd.sweep_directions(g, dirs)
    g_hat, norm = dd.steepest_ascent(g)
    assert values.max() < norm  # Cauchy--Schwarz, strict for directions not parallel to g
    assert values.min() > -norm
    assert dd.directional_derivative(g, g_hat) == pytest.approx(norm, rel=1e-14)
    # the best random direction is close to g_hat, and its value is |g| cos(angle)
    angle = np.arccos(dirs[best] @ g_hat)
    assert values[best] == pytest.approx(norm * np.cos(angle), rel=1e-12)


# -- finite differences: O(h^2) ----------------------------------------------------------------------
@pytest.mark.parametrize("field", [dd.ROSENBROCK, dd.WAVY_BOWL], ids=lambda f: f.name)
def test_central_difference_error_is_second_order(field):
    x, u = np.array([0.3, 0.8]), np.array([1.0, 2.0])
    exact = dd.directional_derivative(field.gradient(x), u)
    hs = np.logspace(-3, -1, 9)
    err = np.abs(dd.central_difference_directional(field.value, np.broadcast_to(x, (9, 2)), u, hs) - exact)
    slope = np.polyfit(np.log(hs), np.log(err), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.05)
    # halving h divides the error by about four
    e1 = abs(dd.central_difference_directional(field.value, x, u, 0.02) - exact)
    e2 = abs(dd.central_difference_directional(field.value, x, u, 0.01) - exact)
    assert e1 / e2 == pytest.approx(4.0, rel=0.05)


def test_central_difference_is_exact_for_quadratics_and_rounding_grows_for_tiny_h():
    x, u = np.array([0.3, 0.8]), np.array([1.0, 2.0])
    exact = dd.directional_derivative(dd.PARABOLOID.gradient(x), u)
    assert dd.central_difference_directional(dd.PARABOLOID.value, x, u, 0.5) == pytest.approx(exact, abs=1e-14)
    exact_r = dd.directional_derivative(dd.ROSENBROCK.gradient(x), u)
    tiny = abs(dd.central_difference_directional(dd.ROSENBROCK.value, x, u, 1e-11) - exact_r)
    default = abs(dd.central_difference_directional(dd.ROSENBROCK.value, x, u) - exact_r)
    assert default < 1e-8 * max(1, abs(exact_r)) < tiny  # the default step beats a too-small one


def test_default_step_scales_with_the_point():
    eps13 = np.finfo(float).eps ** (1 / 3)
    np.testing.assert_allclose(dd.default_step([[0.1, 0.2], [30.0, 40.0]]), [eps13, 50 * eps13])


# -- bad input -----------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    f = dd.PARABOLOID
    with pytest.raises(ValueError, match="u must be a non-zero direction"):
        dd.directional_derivative([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="u must be a non-zero direction"):
        dd.autograd_directional(f.value, POINT, [0.0, 0.0])
    with pytest.raises(ValueError, match="same last dimension"):
        dd.directional_derivative([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same last dimension"):
        dd.autograd_directional(f.value, POINT, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="x contains NaN"):
        dd.central_difference_directional(f.value, [np.nan, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="h must be positive"):
        dd.central_difference_directional(f.value, POINT, [1.0, 0.0], h=-1e-3)
    with pytest.raises(ValueError, match="n_angles must be an integer >= 3"):
        dd.unit_circle(2)
    with pytest.raises(ValueError, match="grad is zero"):
        dd.steepest_ascent([0.0, 0.0])
    with pytest.raises(ValueError, match=r"directions must have shape \(N, 2\)"):
        dd.sweep_directions([1.0, 0.0], np.ones((4, 3)))
