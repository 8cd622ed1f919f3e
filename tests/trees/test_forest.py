"""Oracle tests for shiyan.trees random forests against scikit-learn's RandomForestClassifier / Regressor.

Two forests with different random streams never grow the same trees, so accuracy and R^2 are compared on average
over several seeds; the out-of-bag bookkeeping is checked against a slow recomputation from the bootstrap samples,
and the forest without bootstrap or feature sampling must reduce to the single CART tree (node for node on
tie-free data).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import ensemble
from sklearn import tree as sk_tree
from sklearn.datasets import load_digits, make_classification, make_friedman1
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from shiyan.trees import DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor

SEEDS = range(3)


@pytest.fixture(scope="module")
def cls_split():
    X, y = make_classification(3000, 10, n_informative=5, n_redundant=2, flip_y=0.05, random_state=0)
    return train_test_split(X, y, test_size=0.4, random_state=0)


@pytest.fixture(scope="module")
def reg_split():
    X, y = make_friedman1(3000, 8, noise=1.0, random_state=0)
    return train_test_split(X, y, test_size=0.4, random_state=0)


def _mean_scores(ours_cls, ref_cls, split, **kw):
    Xtr, Xte, ytr, yte = split
    ours, ref, oob_ours, oob_ref = [], [], [], []
    for seed in SEEDS:
        a = ours_cls(random_state=seed, n_jobs=2, oob_score=True, **kw).fit(Xtr, ytr)
        b = ref_cls(random_state=seed, n_jobs=2, oob_score=True, **kw).fit(Xtr, ytr)
        ours.append(a.score(Xte, yte))
        ref.append(b.score(Xte, yte))
        oob_ours.append(a.oob_score_)
        oob_ref.append(b.oob_score_)
    return np.mean(ours), np.mean(ref), np.mean(oob_ours), np.mean(oob_ref)


@pytest.mark.parametrize("max_features", ["sqrt", None, 0.5])
def test_classifier_accuracy_and_oob_match_sklearn(cls_split, max_features):
    ours, ref, oob, oob_ref = _mean_scores(
        RandomForestClassifier, ensemble.RandomForestClassifier, cls_split, n_estimators=40, max_features=max_features
    )
    assert abs(ours - ref) <= 0.01
    assert abs(oob - oob_ref) <= 0.01


def test_multiclass_digits_matches_sklearn():
    X, y = load_digits(return_X_y=True)
    split = train_test_split(X, y, test_size=0.5, random_state=0)
    ours, ref, oob, oob_ref = _mean_scores(
        RandomForestClassifier,
        ensemble.RandomForestClassifier,
        split,
        n_estimators=60,
        criterion="entropy",
        max_features="log2",
    )
    assert abs(ours - ref) <= 0.01
    assert abs(oob - oob_ref) <= 0.015


@pytest.mark.parametrize("max_features,min_samples_leaf", [(1.0, 1), (0.33, 5)])
def test_regressor_r2_and_oob_match_sklearn(reg_split, max_features, min_samples_leaf):
    ours, ref, oob, oob_ref = _mean_scores(
        RandomForestRegressor,
        ensemble.RandomForestRegressor,
        reg_split,
        n_estimators=40,
        max_features=max_features,
        min_samples_leaf=min_samples_leaf,
    )
    assert abs(ours - ref) <= 0.01
    assert abs(oob - oob_ref) <= 0.01


def test_oob_equals_slow_recomputation(cls_split):
    """oob_decision_function_ = mean predict_proba over exactly the trees whose bootstrap sample missed the row."""
    Xtr, _, ytr, _ = cls_split
    X, y = Xtr[:600], ytr[:600]
    est = RandomForestClassifier(25, oob_score=True, random_state=3, n_jobs=2).fit(X, y)
    total = np.zeros((len(y), 2))
    hits = np.zeros(len(y))
    for tree, sample in zip(est.estimators_, est.estimators_samples_, strict=True):
        out = np.ones(len(y), dtype=bool)
        out[sample] = False
        total[out] += tree.predict_proba(X[out])
        hits[out] += 1
    assert hits.min() > 0
    np.testing.assert_allclose(est.oob_decision_function_, total / hits[:, None], rtol=1e-12)
    assert est.oob_score_ == np.mean(np.argmax(total, axis=1) == y)
    # each bootstrap sample has n draws and leaves out about e^-1 of the rows
    out_frac = np.mean([1 - len(np.unique(s)) / len(y) for s in est.estimators_samples_])
    assert all(len(s) == len(y) for s in est.estimators_samples_)
    assert abs(out_frac - np.exp(-1)) < 0.03


def test_regressor_oob_prediction_equals_slow_recomputation(reg_split):
    Xtr, _, ytr, _ = reg_split
    X, y = Xtr[:500], ytr[:500]
    est = RandomForestRegressor(20, oob_score=True, max_samples=0.7, random_state=1).fit(X, y)
    total, hits = np.zeros(len(y)), np.zeros(len(y))
    for tree, sample in zip(est.estimators_, est.estimators_samples_, strict=True):
        assert len(sample) == round(0.7 * len(y))
        out = np.ones(len(y), dtype=bool)
        out[sample] = False
        total[out] += tree.predict(X[out])
        hits[out] += 1
    np.testing.assert_allclose(est.oob_prediction_, total / hits, rtol=1e-12)


def test_forest_without_randomness_is_the_cart_tree(reg_split):
    """bootstrap=False and max_features=1.0: every tree is the plain CART tree, equal to scikit-learn's."""
    Xtr, Xte, ytr, _ = reg_split
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(ytr))
    forest = RandomForestRegressor(3, bootstrap=False, max_depth=5, random_state=0).fit(Xtr, ytr, sample_weight=w)
    single = DecisionTreeRegressor(max_depth=5).fit(Xtr, ytr, sample_weight=w)
    ref = sk_tree.DecisionTreeRegressor(max_depth=5, random_state=0).fit(Xtr, ytr, sample_weight=w)
    np.testing.assert_allclose(forest.predict(Xte), single.predict(Xte), rtol=1e-12)
    np.testing.assert_allclose(forest.predict(Xte), ref.predict(Xte), rtol=1e-10)


def test_mean_of_trees_and_thread_independence(cls_split):
    Xtr, Xte, ytr, _ = cls_split
    a = RandomForestClassifier(12, random_state=5, n_jobs=1).fit(Xtr, ytr)
    b = RandomForestClassifier(12, random_state=5, n_jobs=2).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.predict_proba(Xte), b.predict_proba(Xte))
    mean = np.mean([t.predict_proba(Xte) for t in a.estimators_], axis=0)
    np.testing.assert_allclose(a.predict_proba(Xte), mean, rtol=1e-12)
    leaves = a.apply(Xte)
    assert leaves.shape == (len(Xte), 12)
    np.testing.assert_array_equal(leaves[:, 4], a.estimators_[4].apply(Xte))


def test_feature_importances_close_to_sklearn(cls_split):
    Xtr, _, ytr, _ = cls_split
    ours = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(Xtr, ytr).feature_importances_
    ref = ensemble.RandomForestClassifier(100, random_state=0, n_jobs=2).fit(Xtr, ytr).feature_importances_
    assert np.isclose(ours.sum(), 1.0)
    assert np.abs(ours - ref).max() < 0.02
    np.testing.assert_array_equal(np.argsort(ours)[-3:][::-1][:1], np.argsort(ref)[-3:][::-1][:1])


def test_bad_inputs(cls_split):
    Xtr, Xte, ytr, _ = cls_split
    Xn = Xtr.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        RandomForestClassifier(5).fit(Xn, ytr)
    est = RandomForestClassifier(5, random_state=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"X has 4 features.*expecting 10"):
        est.predict(Xte[:, :4])
    with pytest.raises(ValueError, match="sample_weight"):
        RandomForestClassifier(5).fit(Xtr, ytr, sample_weight=-np.ones(len(ytr)))
    with pytest.raises(ValueError, match="oob_score"):
        RandomForestClassifier(5, bootstrap=False, oob_score=True).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="n_estimators"):
        RandomForestRegressor(0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="n_jobs"):
        RandomForestRegressor(5, n_jobs=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="max_samples"):
        RandomForestRegressor(5, max_samples=1.5).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="max_features"):
        RandomForestClassifier(5, max_features="third").fit(Xtr, ytr)
    one = RandomForestClassifier(5, random_state=0).fit(Xtr, np.full(len(ytr), 3))  # like scikit-learn
    assert set(one.predict(Xte)) == {3}


# Bootstrap draws rows, so a row of weight 2 is not the same as two copies of the row (each copy is drawn on its
# own); scikit-learn's own forests list the same expected failure.
_WEIGHT_XFAIL = {"check_sample_weight_equivalence_on_dense_data": "bootstrap draws rows: a weight is not a copy"}


@parametrize_with_checks(
    [RandomForestClassifier(8, random_state=0), RandomForestRegressor(8, random_state=0)],
    expected_failed_checks=lambda est: _WEIGHT_XFAIL,
)
def test_sklearn_contract(estimator, check):
    check(estimator)
