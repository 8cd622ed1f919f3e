"""The perceptron against scikit-learn's (same rule, same order), the bias-as-constant-input identity,
and Novikoff's mistake bound."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Perceptron
from sklearn.svm import SVC

from shiyan.nn.perceptron import augment, fit_perceptron, margin, novikoff_bound


def _separable(seed: int, n: int = 200, d: int = 3, offset: float = 2.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + offset
    w_true = rng.normal(size=d)
    score = X @ w_true
    score -= np.median(score)  # both classes, split by a hyperplane away from the origin
    keep = np.abs(score) > 0.3  # a clear margin
    return X[keep], np.where(score[keep] > 0, 1, -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_sklearn_perceptron_step_for_step(seed, bias):
    X, y = _separable(seed)
    ours = fit_perceptron(X, y, bias=bias, max_epochs=7)
    ref = Perceptron(fit_intercept=bias, shuffle=False, eta0=1.0, alpha=0.0, max_iter=7, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached without convergence is expected here
        ref.fit(X, y)
    np.testing.assert_allclose(ours.w, ref.coef_[0], atol=1e-9)
    assert ours.b == pytest.approx(ref.intercept_[0] if bias else 0.0, abs=1e-9)


def test_bias_is_a_weight_on_a_constant_input():
    X, y = _separable(3)
    with_bias = fit_perceptron(X, y, bias=True, lr=0.5)
    augmented = fit_perceptron(augment(X), y, bias=False, lr=0.5)
    np.testing.assert_array_equal(np.append(with_bias.w, with_bias.b), augmented.w)
    np.testing.assert_array_equal(with_bias.mistakes_per_epoch, augmented.mistakes_per_epoch)


def test_without_bias_one_positive_feature_gets_one_label():
    x = np.linspace(1.0, 5.0, 40)[:, None]
    y = np.where(x[:, 0] > 3.0, 1, -1)
    no_bias = fit_perceptron(x, y, bias=False, max_epochs=50)
    assert not no_bias.converged
    assert len(set(no_bias.predict(x))) == 1  # sign(w x) is the same for every positive x
    with_bias = fit_perceptron(x, y, bias=True, max_epochs=1000)
    assert with_bias.converged and np.all(with_bias.predict(x) == y)


@pytest.mark.parametrize("seed", range(5))
def test_mistakes_never_exceed_novikoff_bound(seed):
    X, y = _separable(seed, d=2)
    Xt = augment(X)
    svm = SVC(kernel="linear", C=1e6).fit(X, y)  # a near max-margin separator gives the tightest bound
    u = np.append(svm.coef_[0], svm.intercept_[0])
    bound = novikoff_bound(Xt, y, u)
    fit = fit_perceptron(X, y, bias=True, max_epochs=10_000)
    assert fit.converged and np.isfinite(bound)
    assert fit.mistakes <= bound
    assert margin(Xt, y, np.append(fit.w, fit.b)) > 0  # converged means separating


def test_bad_input_names_the_argument():
    X, y = _separable(0)
    with pytest.raises(ValueError, match="X contains NaN"):
        fit_perceptron(np.where(X > 3, np.nan, X), y)
    with pytest.raises(ValueError, match="y must hold labels"):
        fit_perceptron(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match=r"y must have shape"):
        fit_perceptron(X, y[:-1])
    with pytest.raises(ValueError, match="lr must be positive"):
        fit_perceptron(X, y, lr=0.0)
    with pytest.raises(ValueError, match="features"):
        fit_perceptron(X, y).predict(X[:, :2])
    assert novikoff_bound(augment(X), y, np.append(np.zeros(X.shape[1]), 1.0)) == float("inf")  # not a separator
