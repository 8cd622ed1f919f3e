"""Oracle tests for shiyan.maths.quadratic: scipy.optimize, numpy.linalg.eigh, explicit loops and
the two independent definiteness routes (eigenvalues vs Sylvester's minors)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import check_grad, minimize

from shiyan.maths import quadratic as qf


def _random_problem(rng, n, eigenvalues=None):
    A = qf.random_symmetric(n, rng, eigenvalues)
    return A, rng.standard_normal(n) * 2.0, float(rng.standard_normal())


# -- value and gradient --------------------------------------------------------------------------
def test_value_matches_the_double_sum_and_batches():
    rng = np.random.default_rng(0)
    A, b, c = _random_problem(rng, 4)
    X = rng.standard_normal((3, 5, 4))
    ours = qf.quadratic_value(X, A, b, c)
    assert ours.shape == (3, 5)
    x = X[1, 2]
    naive = sum(A[i, j] * x[i] * x[j] for i in range(4) for j in range(4)) + sum(b[i] * x[i] for i in range(4)) + c
    assert ours[1, 2] == pytest.approx(naive, rel=1e-13)


def test_gradient_is_2Ax_plus_b():
    rng = np.random.default_rng(1)
    A, b, c = _random_problem(rng, 5)
    for _ in range(5):
        x0 = rng.standard_normal(5)
        err = check_grad(lambda x: qf.quadratic_value(x, A, b, c), lambda x: qf.quadratic_gradient(x, A, b), x0)
        assert err < 1e-5 * (1 + np.linalg.norm(qf.quadratic_gradient(x0, A, b)))
    X = rng.standard_normal((7, 5))
    np.testing.assert_allclose(qf.quadratic_gradient(X, A, b), X @ (2 * A).T + b, rtol=1e-13)


# -- eigenvalues by Jacobi rotations vs LAPACK ---------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12])
def test_jacobi_matches_numpy_eigh(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        M = rng.standard_normal((n, n)) * 3
        A = (M + M.T) / 2
        lam, V = qf.jacobi_eigh(A)
        ref = np.linalg.eigh(A)[0]
        np.testing.assert_allclose(lam, ref, atol=1e-12 * np.abs(ref).max())
        np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-12)
        np.testing.assert_allclose(V @ np.diag(lam) @ V.T, A, atol=1e-12 * np.abs(A).max())


def test_jacobi_handles_repeated_and_zero_eigenvalues():
    rng = np.random.default_rng(5)
    A = qf.random_symmetric(5, rng, np.array([2.0, 2.0, 0.0, 0.0, -1.0]))
    lam, V = qf.jacobi_eigh(A)
    np.testing.assert_allclose(lam, [-1, 0, 0, 2, 2], atol=1e-12)
    np.testing.assert_allclose(A @ V, V * lam, atol=1e-12)
    lam0, V0 = qf.jacobi_eigh(np.zeros((3, 3)))
    assert np.all(lam0 == 0) and np.allclose(V0, np.eye(3))


# -- stationary point ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_stationary_point_is_scipys_minimiser_for_positive_definite_A(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed
    A, b, c = _random_problem(rng, n, rng.uniform(0.3, 3.0, n))
    x_star = qf.stationary_point(A, b)
    out = minimize(
        lambda x: qf.quadratic_value(x, A, b, c),
        rng.standard_normal(n),
        jac=lambda x: qf.quadratic_gradient(x, A, b),
        method="BFGS",
        options={"gtol": 1e-10},
    )
    np.testing.assert_allclose(out.x, x_star, atol=1e-7)
    assert out.fun >= qf.quadratic_value(x_star, A, b, c) - 1e-12
    # the closed-form value c - b^T A^{-1} b / 4
    assert qf.stationary_value(A, b, c) == pytest.approx(float(qf.quadratic_value(x_star, A, b, c)), rel=1e-12)
    assert qf.stationary_value(A, b, c) == pytest.approx(c - b @ np.linalg.inv(A) @ b / 4, rel=1e-10)


def test_stationary_point_of_indefinite_form_zeroes_the_gradient():
    rng = np.random.default_rng(7)
    A, b, _ = _random_problem(rng, 4, np.array([1.5, -0.7, 0.9, -2.0]))
    x_star = qf.stationary_point(A, b)
    np.testing.assert_allclose(qf.quadratic_gradient(x_star, A, b), 0.0, atol=1e-12)
    an = qf.analyse(A, b)
    assert an.kind == "saddle"
    np.testing.assert_allclose(an.x_star, x_star, atol=1e-12)


def test_taylor_expansion_along_eigenvectors_is_exact():
    rng = np.random.default_rng(8)
    A, b, c = _random_problem(rng, 3, np.array([-1.0, 0.5, 2.0]))
    an = qf.analyse(A, b, c)
    for lam_i, v in zip(an.eigenvalues, an.eigenvectors.T):
        for t in (-1.5, 0.3, 2.0):
            rise = qf.quadratic_value(an.x_star + t * v, A, b, c) - an.value
            assert rise == pytest.approx(lam_i * t * t, abs=1e-12)


# -- classification -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "A, b, kind, definiteness",
    [
        ([[2, 0], [0, 1]], [1, 1], "minimum", "positive definite"),
        ([[-2, 0.5], [0.5, -1]], [1, 0], "maximum", "negative definite"),
        ([[1, 0], [0, -1]], [0, 0], "saddle", "indefinite"),
        ([[0, 1], [1, 0]], [1, 2], "saddle", "indefinite"),  # all leading minors fail, det != 0
        ([[1, 1], [1, 1]], [-2, -2], "non-unique minimum", "positive semidefinite"),  # line of minima
        ([[0, 0], [0, 1]], [3, 0], "no stationary point", "positive semidefinite"),  # linear in x
        ([[0, 0], [0, -1]], [0, 1], "non-unique maximum", "negative semidefinite"),
        ([[1, 0, 0], [0, -1, 0], [0, 0, 0]], [0, 0, 0], "non-unique saddle", "indefinite"),
        ([[0, 0], [0, 0]], [0, 0], "constant", "zero"),
        ([[0, 0], [0, 0]], [1, 0], "no stationary point", "zero"),
    ],
)
def test_classification_of_hand_made_cases(A, b, kind, definiteness):
    an = qf.analyse(A, b, 0.5)
    assert an.kind == kind
    assert an.definiteness == definiteness
    assert qf.eigen_definiteness(A) == definiteness
    assert qf.sylvester_definiteness(A) == definiteness
    if kind == "no stationary point":
        assert an.x_star is None and an.value is None
        # f is unbounded below along the null direction that b leans on
        d = an.null_space[:, 0] * -np.sign(an.null_space[:, 0] @ np.asarray(b, float))
        assert qf.quadratic_value(1e6 * d, A, b) < -1e5
    else:
        np.testing.assert_allclose(qf.quadratic_gradient(an.x_star, A, b), 0.0, atol=1e-12)
        for v in an.null_space.T:  # the whole affine set x* + ker A is stationary, with the same value
            assert qf.quadratic_value(an.x_star + 3.0 * v, A, b, 0.5) == pytest.approx(an.value, abs=1e-12)


def test_line_of_minima_is_least_norm_and_minimal():
    A, b = np.array([[0.8, 0.4], [0.4, 0.2]]), np.array([-2.4, -1.2])
    an = qf.analyse(A, b)
    assert an.kind == "non-unique minimum"
    np.testing.assert_allclose(an.x_star, np.linalg.pinv(2 * A) @ -b, atol=1e-12)
    rng = np.random.default_rng(0)
    assert np.all(qf.quadratic_value(rng.normal(0, 3, (1000, 2)), A, b) >= an.value - 1e-12)


_EIGS = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])


@settings(max_examples=150, deadline=None)
@given(lam=st.lists(_EIGS, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_sylvester_and_eigen_routes_agree_on_structured_matrices(lam, seed):
    A = qf.random_symmetric(len(lam), np.random.default_rng(seed), np.array(lam))
    lam = np.array(lam)
    expected = qf.definiteness_from_eigenvalues(lam)  # the truth, from the eigenvalues we built A with
    assert qf.eigen_definiteness(A) == expected
    assert qf.sylvester_definiteness(A) == expected


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 5),
    data=st.data(),
)
def test_sylvester_and_eigen_routes_agree_on_arbitrary_matrices(n, data):
    entries = data.draw(st.lists(st.floats(-10, 10), min_size=n * n, max_size=n * n))
    A = qf.symmetric_part(np.array(entries).reshape(n, n))
    lam = np.linalg.eigvalsh(A)
    scale = np.abs(lam).max()
    assume(scale > 1e-3 and np.abs(lam).min() > 1e-6 * scale)  # clearly non-singular
    assert qf.sylvester_definiteness(A) == qf.eigen_definiteness(A)


def test_sylvester_needs_all_principal_minors_when_singular():
    # leading minors 0, 0 look "positive semidefinite", but the (2,2) entry is negative
    A = np.array([[0.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(qf.leading_principal_minors(A), [0.0, 0.0])
    assert qf.sylvester_definiteness(A) == "negative semidefinite"


# -- bad input --------------------------------------------------------------------------------------
def test_non_symmetric_A_is_an_error_that_names_the_fix():
    A = np.array([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric_part"):
        qf.analyse(A, [0.0, 0.0])
    S = qf.symmetric_part(A)
    x = np.array([0.3, -1.7])
    assert x @ A @ x == pytest.approx(float(qf.quadratic_value(x, S, [0.0, 0.0])))


def test_bad_shapes_and_values_are_named():
    with pytest.raises(ValueError, match="A must be a non-empty square matrix"):
        qf.quadratic_value([1.0, 2.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        qf.analyse(np.eye(2), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="A contains NaN"):
        qf.analyse([[np.nan, 0], [0, 1]], [0, 0])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        qf.quadratic_value(np.ones(3), np.eye(2), [0, 0])
    with pytest.raises(ValueError, match="c must be a finite real scalar"):
        qf.quadratic_value(np.ones(2), np.eye(2), [0, 0], c=float("inf"))
    with pytest.raises(ValueError, match="A is singular"):
        qf.stationary_point([[1, 1], [1, 1]], [1, 1])
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        qf.random_symmetric(3, rng=0)
