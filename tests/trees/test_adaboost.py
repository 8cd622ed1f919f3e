"""Oracle tests for shiyan.trees.adaboost against scikit-learn's AdaBoostClassifier (SAMME) and AdaBoostRegressor (R2).

Our base learners are shiyan CART trees, scikit-learn's are its own trees: they agree whenever no two splits tie.
SAMME is deterministic, so on tie-free data (checked by fitting scikit-learn with three random states) the votes
$\\alpha_m$, the errors $e_m$ and the probabilities must be the same.  AdaBoost.R2 draws its bootstrap samples from
``random_state`` in the same order as scikit-learn, so with the linear loss (whose weights stay spread out and
whose bootstrap samples have no tied splits) the ensembles are equal too; for every setting, accuracy / R^2 on
held-out data must lie within one point of scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import ensemble as sk_ensemble
from sklearn import tree as sk_tree
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.model_selection import train_test_split

from shiyan.trees import AdaBoostClassifier, AdaBoostRegressor, DecisionTreeClassifier, DecisionTreeRegressor
from shiyan.trees.adaboost import samme_alpha, training_error_bound

X_TEST = np.random.default_rng(1).normal(size=(300, 6))


@pytest.mark.parametrize("k,depth,learning_rate,seed", [(2, 1, 1.0, 0), (2, 2, 0.5, 1), (3, 1, 1.0, 0), (4, 2, 0.7, 2)])
def test_samme_votes_equal_sklearn(k, depth, learning_rate, seed):
    X, y = make_classification(600, 6, n_informative=4, n_redundant=0, n_classes=k, random_state=seed)
    kw = dict(n_estimators=30, learning_rate=learning_rate)
    refs = [
        sk_ensemble.AdaBoostClassifier(sk_tree.DecisionTreeClassifier(max_depth=depth), **kw, random_state=r).fit(X, y)
        for r in range(3)
    ]
    for r in refs[1:]:  # precondition: no split ties, so scikit-learn does not depend on its random state
        np.testing.assert_array_equal(r.estimator_weights_, refs[0].estimator_weights_)
    ref = refs[0]
    ours = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), **kw).fit(X, y)
    np.testing.assert_allclose(ours.estimator_weights_, ref.estimator_weights_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.estimator_errors_, ref.estimator_errors_, rtol=1e-10, atol=1e-12)
    n_fit = len(ours.estimators_)
    np.testing.assert_allclose(ours.estimator_weights_[:n_fit], samme_alpha(ours.estimator_errors_[:n_fit], k,
                                                                              learning_rate), rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(ours.decision_function(X_TEST), ref.decision_function(X_TEST), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X_TEST), ref.predict_proba(X_TEST), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X_TEST), ref.predict(X_TEST))
    for a, b in zip(ours.staged_predict(X_TEST), ref.staged_predict(X_TEST), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_r2_linear_equals_sklearn(seed):
    X, y = make_regression(500, 6, noise=10.0, random_state=seed)
    ours = AdaBoostRegressor(n_estimators=25, random_state=seed).fit(X, y)
    ref = sk_ensemble.AdaBoostRegressor(n_estimators=25, random_state=seed).fit(X, y)
    np.testing.assert_allclose(ours.estimator_weights_, ref.estimator_weights_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X_TEST), ref.predict(X_TEST), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(list(ours.staged_predict(X_TEST))[9], list(ref.staged_predict(X_TEST))[9], atol=1e-9)


def _splits(X, y, seeds, stratify):
    for s in seeds:
        yield train_test_split(X, y, test_size=0.3, random_state=s, stratify=y if stratify else None)


@pytest.mark.parametrize("name,depth", [("breast_cancer", 1), ("breast_cancer", 2), ("three_class", 2)])
def test_accuracy_within_one_point(name, depth):
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = make_classification(1500, 8, n_informative=5, n_classes=3, random_state=3)
    gaps = []
    for Xtr, Xte, ytr, yte in _splits(X, y, range(4), True):
        ours = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), n_estimators=40, random_state=0)
        ref = sk_ensemble.AdaBoostClassifier(sk_tree.DecisionTreeClassifier(max_depth=depth), n_estimators=40,
                                             random_state=0)  # fmt: skip
        gaps.append(ours.fit(Xtr, ytr).score(Xte, yte) - ref.fit(Xtr, ytr).score(Xte, yte))
    assert abs(np.mean(gaps)) <= 0.01, gaps


def test_r2_within_one_point():
    """R2 draws bootstrap samples, so single runs vary by about a point; compare the mean over paired seeds."""
    X, y = make_regression(1000, 8, noise=30.0, random_state=5)
    for loss in ("linear", "square", "exponential"):
        gaps = []
        for seed, (Xtr, Xte, ytr, yte) in enumerate(_splits(X, y, range(5), False)):
            ours = AdaBoostRegressor(DecisionTreeRegressor(max_depth=3), n_estimators=25, loss=loss, random_state=seed)
            ref = sk_ensemble.AdaBoostRegressor(n_estimators=25, loss=loss, random_state=seed)
            gaps.append(ours.fit(Xtr, ytr).score(Xte, yte) - ref.fit(Xtr, ytr).score(Xte, yte))
        assert abs(np.mean(gaps)) <= 0.01, (loss, gaps)


def test_binary_training_error_below_bound():
    X, y = load_breast_cancer(return_X_y=True)
    model = AdaBoostClassifier(n_estimators=60).fit(X, y)
    errors = np.array([np.mean(p != y) for p in model.staged_predict(X)])
    bound = training_error_bound(model.estimator_errors_[: len(model.estimators_)])
    assert errors.shape == bound.shape == (60,)
    assert np.all(errors <= bound + 1e-12)
    assert bound[-1] < bound[0]
    # the bound is Prod 2 sqrt(e (1 - e)); check one term by hand
    e = model.estimator_errors_[0]
    assert bound[0] == pytest.approx(2 * np.sqrt(e * (1 - e)))


def test_string_labels_and_zero_weights():
    X, y = make_classification(400, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    a = AdaBoostClassifier(n_estimators=10).fit(X, labels)
    b = AdaBoostClassifier(n_estimators=10).fit(X, y)
    np.testing.assert_array_equal(a.predict(X_TEST), np.array(["a", "b", "c"])[b.predict(X_TEST)])
    w = np.ones(400)
    w[:100] = 0.0
    c = AdaBoostClassifier(n_estimators=10).fit(X, y, sample_weight=w)
    d = AdaBoostClassifier(n_estimators=10).fit(X[100:], y[100:])
    np.testing.assert_allclose(c.estimator_weights_, d.estimator_weights_, rtol=1e-10)


def test_bad_inputs():
    X, y = make_classification(100, 6, random_state=0)
    for params, name in [
        (dict(n_estimators=0), "n_estimators"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(estimator=object()), "estimator"),
    ]:
        with pytest.raises(ValueError, match=name):
            AdaBoostClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        AdaBoostRegressor(loss="huber").fit(X, y.astype(float))
    with pytest.raises(ValueError, match="class"):
        AdaBoostClassifier().fit(X, np.zeros(100))
    with pytest.raises(ValueError, match="sample_weight"):
        AdaBoostClassifier().fit(X, y, sample_weight=-np.ones(100))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        AdaBoostRegressor().fit(bad, y.astype(float))
    model = AdaBoostClassifier(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :4])
