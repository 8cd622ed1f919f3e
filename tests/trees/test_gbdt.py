"""Oracle tests for shiyan.trees.gbdt against scikit-learn's GradientBoostingRegressor / GradientBoostingClassifier.

With ``subsample=1`` there is no randomness in gradient boosting except how scikit-learn's trees break *ties*
between equally good splits (through a random feature order).  Every case below therefore first checks that
scikit-learn gives the same predictions for three different ``random_state`` values (so the data has no ties that
matter), and then that our ensemble matches to 1e-6: predictions, ``train_score_`` and feature importances.
The absolute-error gradient is $\\pm 1$, whose split gains tie easily; continuous sample weights break those ties.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import ensemble as sk_ensemble
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression

from shiyan.trees import GradientBoostingClassifier, GradientBoostingRegressor
from shiyan.trees._boost_kernels import leaf_weighted_quantile
from shiyan.trees.gbdt import weighted_quantile

X_TEST = np.random.default_rng(1).normal(size=(300, 5))


def _reg_data(n: int, seed: int, weighted: bool):
    X, y = make_regression(n, 5, noise=10.0, random_state=seed)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, n) if weighted else None
    return X, y, w


def _cls_data(n: int, k: int, seed: int, weighted: bool):
    X, y = make_classification(n, 5, n_informative=4, n_redundant=0, n_classes=k, random_state=seed)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, n) if weighted else None
    return X, y, w


def _refs(ref_cls, kw, X, y, w, output):
    """scikit-learn's outputs for three random states; they must agree (no split ties in this case)."""
    models = [ref_cls(**kw, random_state=r).fit(X, y, sample_weight=w) for r in range(3)]
    outs = [output(m) for m in models]
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=0, atol=1e-12, err_msg="precondition: data with split ties")
    return models[0], outs[0]


def _assert_same_ensemble(ours, ref, out_ours, out_ref):
    np.testing.assert_allclose(out_ours, out_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.train_score_, ref.train_score_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=0, atol=1e-8)
    assert ours.estimators_.shape == ref.estimators_.shape


REG_CASES = [
    # loss, n, max_depth, min_samples_leaf, learning_rate, weighted, seed
    ("squared_error", 500, 3, 5, 0.2, False, 0),
    ("squared_error", 800, 4, 10, 0.1, True, 1),
    ("absolute_error", 1000, 3, 20, 0.3, True, 0),
    ("absolute_error", 600, 2, 30, 0.3, True, 1),
    ("huber", 500, 3, 5, 0.2, False, 0),
    ("huber", 800, 3, 10, 0.1, True, 1),
]


@pytest.mark.parametrize("loss,n,max_depth,min_samples_leaf,learning_rate,weighted,seed", REG_CASES)
def test_regressor_equals_sklearn(loss, n, max_depth, min_samples_leaf, learning_rate, weighted, seed):
    X, y, w = _reg_data(n, seed, weighted)
    kw = dict(loss=loss, n_estimators=20, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
              learning_rate=learning_rate)  # fmt: skip
    ref, out_ref = _refs(sk_ensemble.GradientBoostingRegressor, kw, X, y, w, lambda m: m.predict(X_TEST))
    ours = GradientBoostingRegressor(**kw, criterion="squared_error").fit(X, y, sample_weight=w)
    _assert_same_ensemble(ours, ref, ours.predict(X_TEST), out_ref)
    staged_ours = list(ours.staged_predict(X_TEST))
    staged_ref = list(ref.staged_predict(X_TEST))
    assert len(staged_ours) == 20
    np.testing.assert_allclose(staged_ours[4], staged_ref[4], rtol=0, atol=1e-6)
    np.testing.assert_allclose(staged_ours[-1], out_ref, rtol=0, atol=1e-6)


def test_huber_alpha_is_used():
    X, y, _ = _reg_data(500, 2, False)
    kw = dict(loss="huber", alpha=0.6, n_estimators=15, min_samples_leaf=5)
    _, out_ref = _refs(sk_ensemble.GradientBoostingRegressor, kw, X, y, None, lambda m: m.predict(X_TEST))
    np.testing.assert_allclose(GradientBoostingRegressor(**kw).fit(X, y).predict(X_TEST), out_ref, rtol=0, atol=1e-6)


CLS_CASES = [
    # n_classes, n, max_depth, min_samples_leaf, weighted, seed
    (2, 1000, 3, 20, False, 0),
    (2, 600, 2, 30, True, 1),
    (3, 1000, 3, 20, True, 0),
    (3, 600, 2, 30, True, 1),
    (4, 1200, 3, 25, True, 2),
]


@pytest.mark.parametrize("k,n,max_depth,min_samples_leaf,weighted,seed", CLS_CASES)
def test_classifier_equals_sklearn(k, n, max_depth, min_samples_leaf, weighted, seed):
    X, y, w = _cls_data(n, k, seed, weighted)
    kw = dict(n_estimators=20, max_depth=max_depth, min_samples_leaf=min_samples_leaf, learning_rate=0.3)
    ref, out_ref = _refs(sk_ensemble.GradientBoostingClassifier, kw, X, y, w, lambda m: m.predict_proba(X_TEST))
    ours = GradientBoostingClassifier(**kw).fit(X, y, sample_weight=w)
    _assert_same_ensemble(ours, ref, ours.predict_proba(X_TEST), out_ref)
    np.testing.assert_allclose(ours.decision_function(X_TEST), ref.decision_function(X_TEST), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X_TEST), ref.predict(X_TEST))
    staged = list(ours.staged_predict_proba(X_TEST))
    np.testing.assert_allclose(staged[-1], out_ref, rtol=0, atol=1e-6)
    assert ours.estimators_.shape == (20, 1 if k == 2 else k)


@pytest.mark.parametrize("init", ["zero", "estimator"])
def test_init_zero_and_estimator(init):
    X, y, _ = _reg_data(500, 0, False)
    est = "zero" if init == "zero" else LinearRegression()
    kw = dict(n_estimators=10, min_samples_leaf=5, init=est)
    _, out_ref = _refs(sk_ensemble.GradientBoostingRegressor, kw, X, y, None, lambda m: m.predict(X_TEST))
    np.testing.assert_allclose(GradientBoostingRegressor(**kw).fit(X, y).predict(X_TEST), out_ref, rtol=0, atol=1e-6)
    Xc, yc, _ = _cls_data(800, 3, 0, False)
    est = "zero" if init == "zero" else DummyClassifier(strategy="prior")
    kw = dict(n_estimators=10, min_samples_leaf=20, init=est)
    _, out_ref = _refs(sk_ensemble.GradientBoostingClassifier, kw, Xc, yc, None, lambda m: m.predict_proba(X_TEST))
    ours = GradientBoostingClassifier(**kw).fit(Xc, yc).predict_proba(X_TEST)
    np.testing.assert_allclose(ours, out_ref, rtol=0, atol=1e-6)


def test_string_labels_and_init_regressor():
    X, y, _ = _cls_data(600, 3, 3, False)
    labels = np.array(["ant", "bee", "cat"])[y]
    model = GradientBoostingClassifier(n_estimators=10, max_depth=2).fit(X, labels)
    coded = GradientBoostingClassifier(n_estimators=10, max_depth=2).fit(X, y)
    np.testing.assert_array_equal(model.predict(X_TEST), np.array(["ant", "bee", "cat"])[coded.predict(X_TEST)])
    np.testing.assert_array_equal(model.classes_, ["ant", "bee", "cat"])
    Xr, yr, _ = _reg_data(300, 3, False)
    a = GradientBoostingRegressor(n_estimators=5, init=DummyRegressor(strategy="mean")).fit(Xr, yr)
    b = GradientBoostingRegressor(n_estimators=5).fit(Xr, yr)
    np.testing.assert_allclose(a.predict(Xr), b.predict(Xr), rtol=0, atol=1e-9)


def test_subsample_is_reproducible_and_has_oob():
    X, y, _ = _reg_data(800, 4, False)
    a = GradientBoostingRegressor(n_estimators=30, subsample=0.5, random_state=7).fit(X, y)
    b = GradientBoostingRegressor(n_estimators=30, subsample=0.5, random_state=7).fit(X, y)
    c = GradientBoostingRegressor(n_estimators=30, subsample=0.5, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a.predict(X_TEST), b.predict(X_TEST))
    assert not np.allclose(a.predict(X_TEST), c.predict(X_TEST))
    assert a.oob_scores_.shape == (30,) and np.isfinite(a.oob_score_)
    assert a.oob_scores_[-1] < a.oob_scores_[0]  # the held-out loss goes down as trees are added
    ref = sk_ensemble.GradientBoostingRegressor(n_estimators=30, subsample=0.5, random_state=7).fit(X, y)
    assert abs(a.score(X, y) - ref.score(X, y)) < 0.05  # different row draws, same quality


def test_weighted_quantile_matches_numpy_inverted_cdf():
    rng = np.random.default_rng(0)
    v = rng.normal(size=101)
    for q in (0.1, 0.5, 0.9):
        assert weighted_quantile(v, np.ones_like(v), q) == np.quantile(v, q, method="inverted_cdf")
    w = rng.integers(1, 4, size=101).astype(float)
    rep = np.repeat(v, w.astype(int))
    assert weighted_quantile(v, w, 0.3) == np.quantile(rep, 0.3, method="inverted_cdf")
    leaf = rng.integers(0, 4, size=101)
    out = leaf_weighted_quantile(leaf, v, np.ones(101), 5, 0.5)
    for t in range(4):
        assert out[t] == np.quantile(v[leaf == t], 0.5, method="inverted_cdf")
    assert np.isnan(out[4])


def test_bad_inputs():
    X, y, _ = _reg_data(100, 0, False)
    cases = [
        (dict(loss="hinge"), "loss"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(n_estimators=0), "n_estimators"),
        (dict(subsample=1.5), "subsample"),
        (dict(max_depth=0), "max_depth"),
        (dict(criterion="friedman_mse"), "criterion"),
        (dict(alpha=1.0, loss="huber"), "alpha"),
        (dict(init="mean"), "init"),
        (dict(min_samples_leaf=0), "min_samples_leaf"),
        (dict(max_features="all"), "max_features"),
    ]
    for params, name in cases:
        with pytest.raises(ValueError, match=name):
            GradientBoostingRegressor(**params).fit(X, y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X"):
        GradientBoostingRegressor().fit(bad, y)
    with pytest.raises(ValueError, match="sample_weight"):
        GradientBoostingRegressor().fit(X, y, sample_weight=-np.ones(100))
    model = GradientBoostingRegressor(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="class"):
        GradientBoostingClassifier().fit(X, np.zeros(100))
    with pytest.raises(ValueError, match="loss"):
        GradientBoostingClassifier(loss="squared_error").fit(X, (y > 0).astype(int))
