"""Oracle tests for shiyan.trees CART against scikit-learn's DecisionTreeClassifier / DecisionTreeRegressor.

When two splits have exactly the same gain, scikit-learn picks one through a random feature order, so trees can
only be compared node for node where no such ties occur: continuous features, moderately large nodes
(``max_depth`` or ``min_samples_leaf``) and, for deeper trees, continuous sample weights (which break the ties that
integer class counts create).  Elsewhere we compare accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import tree as sk_tree
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.model_selection import train_test_split

from shiyan.trees import DecisionTreeClassifier, DecisionTreeRegressor
from shiyan.trees import _kernels as K


@pytest.fixture(scope="module")
def cls_data():
    X, y = make_classification(3000, 8, n_informative=5, n_classes=3, random_state=1)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    X_test, _ = make_classification(500, 8, n_informative=5, n_classes=3, random_state=2)
    return X, y, w, X_test


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(3000, 8, noise=5.0, random_state=1)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    X_test = np.random.default_rng(3).normal(size=(500, 8))
    return X, y, w, X_test


def _assert_same_tree(ours, ref, X_test):
    """Same structure (node for node), same predictions on unseen data, same importances."""
    t, r = ours.tree_, ref.tree_
    assert ours.get_depth() == ref.get_depth()
    assert ours.get_n_leaves() == ref.get_n_leaves()
    np.testing.assert_array_equal(t.feature, r.feature)
    np.testing.assert_array_equal(t.threshold, r.threshold)
    np.testing.assert_array_equal(t.n_node_samples, r.n_node_samples)
    np.testing.assert_array_equal(ours.apply(X_test), ref.apply(X_test))
    np.testing.assert_allclose(t.impurity, r.impurity, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=0, atol=1e-8)


CLS_CASES = [(2, 1, False), (3, 1, False), (3, 1, True), (4, 20, False), (4, 20, True), (6, 30, True)]


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("max_depth,min_samples_leaf,weighted", CLS_CASES)
def test_classifier_equals_sklearn(cls_data, criterion, max_depth, min_samples_leaf, weighted):
    X, y, w, X_test = cls_data
    sw = w if weighted else None
    kw = dict(criterion=criterion, max_depth=max_depth, min_samples_leaf=min_samples_leaf)
    ours = DecisionTreeClassifier(**kw).fit(X, y, sample_weight=sw)
    ref = sk_tree.DecisionTreeClassifier(**kw, random_state=0).fit(X, y, sample_weight=sw)
    _assert_same_tree(ours, ref, X_test)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("max_depth,min_samples_leaf,weighted", [(3, 1, False), (3, 1, True), (None, 10, False)])
def test_regressor_equals_sklearn(reg_data, max_depth, min_samples_leaf, weighted):
    X, y, w, X_test = reg_data
    sw = w if weighted else None
    kw = dict(max_depth=max_depth, min_samples_leaf=min_samples_leaf)
    ours = DecisionTreeRegressor(**kw).fit(X, y, sample_weight=sw)
    ref = sk_tree.DecisionTreeRegressor(**kw, random_state=0).fit(X, y, sample_weight=sw)
    _assert_same_tree(ours, ref, X_test)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
def test_coded_features_with_ties_equal_sklearn(criterion):
    """Integer codes (many tied values, negative ones, a constant column) go through the rank keys and radix sort."""
    rng = np.random.default_rng(4)
    n = 4000
    X = np.column_stack(
        [rng.integers(-3, 4, n), rng.integers(0, 40, n), rng.integers(0, 1500, n), np.full(n, 2.5), rng.normal(size=n)]
    )
    logit = 0.4 * X[:, 0] - 0.05 * X[:, 1] + 0.002 * X[:, 2] + X[:, 4]
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    w = rng.uniform(0.5, 2.0, n)  # continuous weights: no exact gain ties, so the trees must agree node for node
    kw = dict(criterion=criterion, max_depth=6)
    ours = DecisionTreeClassifier(**kw).fit(X, y, sample_weight=w)
    ref = sk_tree.DecisionTreeClassifier(**kw, random_state=0).fit(X, y, sample_weight=w)
    _assert_same_tree(ours, ref, X[:500] + 0.5)


def test_feature_ranks_order_like_the_values():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=300), rng.integers(-5, 5, 300), np.r_[[-0.0, 0.0], np.ones(298)]])
    X = np.asfortranarray(X.astype(np.float32))
    ranks, values = K.feature_ranks(X)
    for j in range(X.shape[1]):
        distinct = np.unique(X[:, j])  # oracle: the sorted distinct values
        np.testing.assert_array_equal(values[j, ranks[j]], X[:, j])
        np.testing.assert_array_equal(values[j, : len(distinct)], distinct)
        a, b = rng.integers(0, 300, (2, 1000))
        np.testing.assert_array_equal(ranks[j, a] < ranks[j, b], X[a, j] < X[b, j])
    assert ranks[2, 0] == ranks[2, 1]  # -0.0 == 0.0


def test_order_keys_order_like_the_values():
    """The bit keys of single trees: monotone in the value and decoded back exactly."""
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(scale=1e3, size=500), -0.0, 0.0, 1e-45, -1e-45, 3.4e38, -3.4e38].astype(np.float32)
    keys = K.order_keys(np.asfortranarray(x[:, None]))[0]
    a, b = rng.integers(0, len(x), (2, 5000))
    assert np.all((keys[a] < keys[b]) <= (x[a] <= x[b]))  # key order never contradicts value order
    assert np.all((x[a] < x[b]) <= (keys[a] < keys[b]))
    decoded = np.array([K._key_value(k) for k in keys], dtype=np.float32)
    np.testing.assert_array_equal(decoded.view(np.uint32), x.view(np.uint32))  # bit for bit, signed zeros included


@pytest.mark.parametrize("n", [1, 17, 255, 256, 5000])
@pytest.mark.parametrize("n_distinct", [2, 300, 2**31])
def test_sort_keys_sorts_by_value(n, n_distinct):
    """Quicksort (small nodes) and radix sort (large ones) both order the keys by their upper 32 bits."""
    rng = np.random.default_rng(n)
    value = rng.integers(0, n_distinct, n).astype(np.uint64) + np.uint64(2**32 - 1 - n_distinct)  # high bits set
    keys = (value << np.uint64(32)) | rng.permutation(n).astype(np.uint64)
    before = keys.copy()
    spare = np.empty(n, dtype=np.uint64)
    varying = int(np.bitwise_or.reduce((value ^ value[0]).astype(np.uint32)))
    out = K._sort_keys(keys, spare, n, np.empty((64, 2), dtype=np.int64), np.empty((4, 256), dtype=np.int64), varying)
    np.testing.assert_array_equal(out >> np.uint64(32), np.sort(value))  # oracle: numpy's sort
    np.testing.assert_array_equal(np.sort(out), np.sort(before))  # the same keys, row ids carried along


def test_string_labels_and_min_samples_split(cls_data):
    X, y, _, X_test = cls_data
    labels = np.array(["a", "b", "c"])[y]
    ours = DecisionTreeClassifier(max_depth=4, min_samples_split=400).fit(X, labels)
    ref = sk_tree.DecisionTreeClassifier(max_depth=4, min_samples_split=400, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    assert ours.tree_.n_node_samples[~ours.tree_.is_leaf].min() >= 400


def test_fully_grown_trees_match_in_accuracy():
    """Breast cancer has exact gain ties, so compare held-out accuracy and size rather than nodes."""
    X, y = load_breast_cancer(return_X_y=True)
    accs, refs = [], []
    for seed in range(3):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed)
        ours = DecisionTreeClassifier().fit(Xtr, ytr)
        ref = sk_tree.DecisionTreeClassifier(random_state=seed).fit(Xtr, ytr)
        assert ours.score(Xtr, ytr) == 1.0  # grown until pure
        assert abs(ours.get_n_leaves() - ref.get_n_leaves()) <= 3
        accs.append(ours.score(Xte, yte))
        refs.append(ref.score(Xte, yte))
    assert abs(np.mean(accs) - np.mean(refs)) < 0.03


def test_leaf_constraints_hold(reg_data):
    X, y, _, _ = reg_data
    est = DecisionTreeRegressor(max_depth=7, min_samples_leaf=13).fit(X, y)
    t = est.tree_
    assert t.n_node_samples[t.is_leaf].min() >= 13
    assert est.get_depth() <= 7
    # each leaf predicts the mean of its training rows
    leaves = est.apply(X)
    leaf = leaves[0]
    assert np.isclose(est.predict(X[:1])[0], y[leaves == leaf].mean())


@pytest.mark.parametrize("max_features", ["sqrt", "log2", 3, 0.5])
def test_max_features_is_reproducible_and_reasonable(cls_data, max_features):
    X, y, _, X_test = cls_data
    a = DecisionTreeClassifier(max_features=max_features, random_state=7, max_depth=6).fit(X, y)
    b = DecisionTreeClassifier(max_features=max_features, random_state=7, max_depth=6).fit(X, y)
    np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
    ref = sk_tree.DecisionTreeClassifier(max_features=max_features, random_state=7, max_depth=6).fit(X, y)
    assert a.max_features_ == ref.max_features_
    assert a.score(X, y) > ref.score(X, y) - 0.1


def test_bad_inputs(cls_data):
    X, y, w, _ = cls_data
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        DecisionTreeClassifier().fit(Xn, y)
    with pytest.raises(ValueError, match="X contains NaN"):
        DecisionTreeRegressor().fit(X, y.astype(float)).predict(Xn)
    est = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 5 features.*expecting 8"):
        est.predict(X[:, :5])
    with pytest.raises(ValueError, match="sample_weight"):
        DecisionTreeClassifier().fit(X, y, sample_weight=-w)
    with pytest.raises(ValueError, match="max_depth"):
        DecisionTreeClassifier(max_depth=0).fit(X, y)
    with pytest.raises(ValueError, match="criterion"):
        DecisionTreeRegressor(criterion="gini").fit(X, y)
    with pytest.raises(ValueError, match="max_features"):
        DecisionTreeClassifier(max_features=20).fit(X, y)
    with pytest.raises(ValueError, match="min_samples_leaf"):
        DecisionTreeClassifier(min_samples_leaf=0).fit(X, y)
    with pytest.raises(ValueError, match="min_samples_split"):
        DecisionTreeClassifier(min_samples_split=1.5).fit(X, y)


def test_one_class_follows_sklearn(cls_data):
    """Like scikit-learn, a tree accepts a single class: one leaf that always predicts it."""
    X, _, _, X_test = cls_data
    y = np.full(len(X), 7)
    ours = DecisionTreeClassifier().fit(X, y)
    ref = sk_tree.DecisionTreeClassifier().fit(X, y)
    assert ours.get_n_leaves() == ref.get_n_leaves() == 1
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    np.testing.assert_array_equal(ours.predict_proba(X_test), ref.predict_proba(X_test))
