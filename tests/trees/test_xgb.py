"""Oracle tests for shiyan.trees.xgb against xgboost (exact: same predictions; hist: same metric within 1%)."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost
from sklearn.datasets import make_friedman1
from sklearn.metrics import roc_auc_score

from shiyan.trees import XGBClassifier, XGBRegressor


def _data(n=300, p=5, missing=0.15, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    X[rng.random((n, p)) < missing] = np.nan
    y = 2 * np.nan_to_num(X[:, 0]) + np.sin(np.nan_to_num(X[:, 1], nan=3.0)) + 0.3 * rng.normal(size=n)
    X_test = rng.normal(size=(200, p)).astype(np.float32)
    X_test[rng.random((200, p)) < missing] = np.nan
    return X, y, X_test


PARAMS = [
    dict(n_estimators=15, max_depth=3),
    dict(n_estimators=15, max_depth=4, reg_lambda=2.0, gamma=0.5, min_child_weight=3.0),
    dict(
        n_estimators=10, max_depth=5, learning_rate=0.5, reg_lambda=0.3, reg_alpha=0.2, gamma=1.0, min_child_weight=0.5
    ),
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_exact_regression_equals_xgboost(params, missing):
    X, y, X_test = _data(missing=missing)
    ours = XGBRegressor(tree_method="exact", **params).fit(X, y)
    ref = xgboost.XGBRegressor(tree_method="exact", **params).fit(X, y)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), atol=1e-5)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-5)


@pytest.mark.parametrize("params", PARAMS[1:])
def test_exact_binary_equals_xgboost_with_weights(params):
    X, y, X_test = _data(seed=1)
    yb = (y > 0.5).astype(int)
    w = np.random.default_rng(5).uniform(0.5, 2.0, y.shape[0])
    ours = XGBClassifier(tree_method="exact", **params).fit(X, yb, sample_weight=w)
    ref = xgboost.XGBClassifier(tree_method="exact", **params).fit(X, yb, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))


@pytest.mark.parametrize("params", PARAMS[:2])
def test_exact_multiclass_equals_xgboost(params):
    X, y, X_test = _data(seed=2)
    yk = np.digitize(y, [-1.0, 0.5, 2.0])  # 4 classes
    ours = XGBClassifier(tree_method="exact", **params).fit(X, yk)
    ref = xgboost.XGBClassifier(tree_method="exact", **params).fit(X, yk)
    assert ours.objective_ == "multi:softprob"
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-5)


@pytest.mark.parametrize("kind", ["weight", "gain"])
def test_feature_importances_equal_xgboost(kind):
    X, y, _ = _data(seed=3)
    kw = dict(tree_method="exact", n_estimators=10, max_depth=3, gamma=0.3, importance_type=kind)
    ours = XGBRegressor(**kw).fit(X, y)
    ref = xgboost.XGBRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-5)


def test_base_score_explicit_and_default():
    X, y, X_test = _data(seed=4)
    for base in (None, 0.7):
        ours = XGBRegressor(tree_method="exact", n_estimators=5, base_score=base).fit(X, y)
        ref = xgboost.XGBRegressor(tree_method="exact", n_estimators=5, base_score=base).fit(X, y)
        np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), atol=1e-5)


def test_early_stopping_same_best_iteration_as_xgboost():
    X, y, _ = _data(n=400, seed=6)
    Xv, yv, _ = _data(n=200, seed=7)
    kw = dict(tree_method="exact", n_estimators=200, learning_rate=0.5, max_depth=6, early_stopping_rounds=5)
    ours = XGBRegressor(**kw).fit(X, y, eval_set=[(Xv, yv)])
    ref = xgboost.XGBRegressor(**kw).fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    assert ours.best_iteration_ == ref.best_iteration
    assert ours.n_rounds_ == ref.best_iteration + 6  # stopped after 5 rounds without improvement
    np.testing.assert_allclose(ours.evals_result_["validation_0"]["rmse"], ref.evals_result()["validation_0"]["rmse"],
                               rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(ours.predict(Xv), ref.predict(Xv), atol=1e-5)  # uses the best iteration


def test_weighted_eval_set_metric_and_early_stopping_equal_xgboost():
    """sample_weight_eval_set weights the evaluation metric (rmse, logloss) as xgboost does, which moves the best
    iteration; weights of the wrong count are refused by name."""
    X, y, _ = _data(n=400, seed=6)
    Xv, yv, _ = _data(n=200, seed=7)
    wv = np.random.default_rng(3).uniform(0.0, 3.0, size=len(yv))
    kw = dict(tree_method="exact", n_estimators=60, learning_rate=0.5, max_depth=6, early_stopping_rounds=5)
    ours = XGBRegressor(**kw).fit(X, y, eval_set=[(Xv, yv)], sample_weight_eval_set=[wv])
    ref = xgboost.XGBRegressor(**kw).fit(X, y, eval_set=[(Xv, yv)], sample_weight_eval_set=[wv], verbose=False)
    np.testing.assert_allclose(ours.evals_result_["validation_0"]["rmse"], ref.evals_result()["validation_0"]["rmse"],
                               rtol=1e-4)  # fmt: skip
    assert ours.best_iteration_ == ref.best_iteration
    yc, yvc = (y > np.median(y)).astype(int), (yv > np.median(y)).astype(int)
    kw = dict(tree_method="exact", n_estimators=15, max_depth=3)
    ours = XGBClassifier(**kw).fit(X, yc, eval_set=[(Xv, yvc)], sample_weight_eval_set=[wv])
    ref = xgboost.XGBClassifier(**kw).fit(X, yc, eval_set=[(Xv, yvc)], sample_weight_eval_set=[wv], verbose=False)
    np.testing.assert_allclose(ours.evals_result_["validation_0"]["logloss"],
                               ref.evals_result()["validation_0"]["logloss"], rtol=1e-4)  # fmt: skip
    unweighted = XGBClassifier(**kw).fit(X, yc, eval_set=[(Xv, yvc)]).evals_result_["validation_0"]["logloss"]
    assert not np.allclose(unweighted, ours.evals_result_["validation_0"]["logloss"])
    with pytest.raises(ValueError, match="sample_weight_eval_set"):
        XGBRegressor(n_estimators=2).fit(X, y, eval_set=[(Xv, yv)], sample_weight_eval_set=[wv, wv])
    with pytest.raises(ValueError, match="sample_weight_eval_set"):
        XGBRegressor(n_estimators=2).fit(X, y, eval_set=[(Xv, yv)], sample_weight_eval_set=[-wv])


def test_hist_equals_exact_on_training_rows_when_bins_hold_every_value():
    """With fewer distinct values than bins, hist sees every cut the exact search sees: the trees split the training
    rows identically (same gains, same training predictions).  Thresholds can differ inside a gap: exact takes the
    midpoint between the node's neighbouring values, hist between the neighbouring values of the whole column."""
    X, y, _ = _data(n=200, seed=8, missing=0.0)
    kw = dict(n_estimators=5, max_depth=3, reg_lambda=2.0, min_child_weight=2.0)
    hist = XGBRegressor(tree_method="hist", max_bin=256, **kw).fit(X, y)
    exact = XGBRegressor(tree_method="exact", **kw).fit(X, y)
    np.testing.assert_array_equal(hist.trees_[0].feature, exact.trees_[0].feature)
    np.testing.assert_allclose(hist.trees_[0].gain, exact.trees_[0].gain, rtol=1e-5)
    np.testing.assert_allclose(hist.predict(X), exact.predict(X), atol=1e-5)


def _big(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] * X[:, 2] + np.sin(2 * X[:, 3])
    X[rng.random((n, 8)) < 0.1] = np.nan
    return X, logit, rng


@pytest.mark.parametrize("max_bin", [16, 256])
def test_hist_regression_metric_within_1pct_of_xgboost(max_bin):
    """Friedman #1 with 5% missing values; the two models bin slightly differently, so compare the mean over seeds."""
    ratios = []
    for seed in range(4):
        X, y = make_friedman1(6000, noise=0.5, random_state=seed)
        X = X.astype(np.float32)
        X[np.random.default_rng(seed).random(X.shape) < 0.05] = np.nan
        tr, te = slice(0, 4500), slice(4500, None)
        kw = dict(tree_method="hist", max_bin=max_bin, n_estimators=100, learning_rate=0.1, max_depth=4)
        ours = XGBRegressor(**kw).fit(X[tr], y[tr])
        ref = xgboost.XGBRegressor(**kw).fit(X[tr], y[tr])
        rmse = np.sqrt(np.mean((ours.predict(X[te]) - y[te]) ** 2))
        rmse_ref = np.sqrt(np.mean((ref.predict(X[te]) - y[te]) ** 2))
        ratios.append(rmse / rmse_ref)
    assert abs(np.mean(ratios) - 1) < 0.01, ratios


@pytest.mark.parametrize("grow_policy", ["depthwise", "lossguide"])
def test_hist_binary_auc_within_1pct_of_xgboost(grow_policy):
    X, f, rng = _big(seed=1)
    y = (rng.random(f.shape[0]) < 1 / (1 + np.exp(-f))).astype(int)
    tr, te = slice(0, 4500), slice(4500, None)
    kw = dict(tree_method="hist", n_estimators=60, learning_rate=0.1, max_depth=6, grow_policy=grow_policy)
    if grow_policy == "lossguide":
        kw.update(max_depth=0, max_leaves=31)
    ours = XGBClassifier(**kw).fit(X[tr], y[tr])
    ref = xgboost.XGBClassifier(**kw).fit(X[tr], y[tr])
    auc = roc_auc_score(y[te], ours.predict_proba(X[te])[:, 1])
    auc_ref = roc_auc_score(y[te], ref.predict_proba(X[te])[:, 1])
    assert abs(auc / auc_ref - 1) < 0.01, (auc, auc_ref)
    if grow_policy == "lossguide":
        assert max(t.n_leaves for t in ours.trees_) == 31


def test_hist_multiclass_logloss_within_1pct_of_xgboost():
    X, f, rng = _big(seed=2)
    y = np.digitize(f + 0.5 * rng.normal(size=f.shape[0]), [-1.0, 0.0, 1.0])
    tr, te = slice(0, 4500), slice(4500, None)
    kw = dict(tree_method="hist", n_estimators=30, learning_rate=0.2, max_depth=4)
    ours = XGBClassifier(**kw).fit(X[tr], y[tr])
    ref = xgboost.XGBClassifier(**kw).fit(X[tr], y[tr])

    def logloss(p):
        return -np.mean(np.log(p[np.arange(len(p)), y[te]]))

    ll, ll_ref = logloss(ours.predict_proba(X[te])), logloss(ref.predict_proba(X[te]))
    assert abs(ll / ll_ref - 1) < 0.01, (ll, ll_ref)


def test_missing_values_learn_a_default_direction():
    """A feature missing exactly when y is large: the root sends NaN to the large-y side."""
    rng = np.random.default_rng(9)
    X = rng.uniform(0, 1, size=(500, 2)).astype(np.float32)
    y = X[:, 0].astype(np.float64).copy()
    high = rng.random(500) < 0.3
    y[high] = 5.0
    X[high, 0] = np.nan
    for method in ("exact", "hist"):
        m = XGBRegressor(tree_method=method, n_estimators=30, max_depth=2).fit(X, y)
        root = m.trees_[0]
        assert root.feature[0] == 0
        side = root.left[0] if root.default_left[0] else root.right[0]
        assert root.weight[side] > 0 if root.feature[side] < 0 else root.cover[side] < 500
        pred = m.predict(np.array([[np.nan, 0.5]], dtype=np.float32))
        assert abs(pred[0] - 5.0) < 0.1


def test_subsample_and_colsample_are_seeded():
    X, y, X_test = _data(n=400, seed=10)
    kw = dict(n_estimators=10, subsample=0.7, colsample_bytree=0.6, colsample_bylevel=0.7)
    a = XGBRegressor(random_state=0, **kw).fit(X, y).predict(X_test)
    b = XGBRegressor(random_state=0, **kw).fit(X, y).predict(X_test)
    c = XGBRegressor(random_state=1, **kw).fit(X, y).predict(X_test)
    full = XGBRegressor(n_estimators=10).fit(X, y).predict(X_test)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - full).max() > 1e-3
    m = XGBRegressor(random_state=0, n_estimators=5, colsample_bytree=0.4).fit(X, y)
    for t in m.trees_:  # 2 of 5 features per tree
        assert len(np.unique(t.feature[t.feature >= 0])) <= 2


def test_string_labels_and_iteration_range():
    X, y, X_test = _data(seed=11)
    labels = np.array(["lo", "hi"])[(y > 0).astype(int)]
    m = XGBClassifier(n_estimators=10).fit(X, labels)
    assert set(m.predict(X_test)) <= {"lo", "hi"}
    p5 = m.predict_proba(X_test, iteration_range=(0, 5))
    ref = XGBClassifier(n_estimators=5).fit(X, labels).predict_proba(X_test)
    np.testing.assert_allclose(p5, ref, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_estimators=0), "n_estimators"),
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(max_depth=-1), "max_depth"),
        (dict(subsample=1.5), "subsample"),
        (dict(colsample_bytree=0.0), "colsample_bytree"),
        (dict(reg_lambda=-1.0), "reg_lambda"),
        (dict(gamma=-1.0), "gamma"),
        (dict(min_child_weight=-1.0), "min_child_weight"),
        (dict(max_bin=1000), "max_bin"),
        (dict(tree_method="approx"), "tree_method"),
        (dict(grow_policy="best"), "grow_policy"),
        (dict(tree_method="exact", grow_policy="lossguide"), "lossguide"),
        (dict(early_stopping_rounds=3), "eval_set"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    X, y, _ = _data(n=50)
    with pytest.raises(ValueError, match=match):
        XGBRegressor(**kwargs).fit(X, y)


def test_bad_inputs_name_the_argument():
    X, y, _ = _data(n=50)
    m = XGBRegressor(n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])
    with pytest.raises(ValueError, match="sample_weight|negative"):
        XGBRegressor(n_estimators=2).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="class"):
        XGBClassifier(n_estimators=2).fit(X, np.zeros(len(y)))
    y_bad = y.copy()
    y_bad[0] = np.nan
    with pytest.raises(ValueError, match="y|NaN"):
        XGBRegressor(n_estimators=2).fit(X, y_bad)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        XGBRegressor(n_estimators=2).fit(X_inf, y)


def test_lpt_schedule_runs_every_task_once_within_four_thirds_of_the_best_load():
    import itertools

    from shiyan.trees._xgb_kernels import lpt_schedule

    rng = np.random.default_rng(0)
    for _ in range(40):
        n_tasks, n_workers = int(rng.integers(1, 8)), int(rng.integers(1, 4))
        cost = rng.integers(1, 100, size=n_tasks).astype(np.float64)
        order, ptr = lpt_schedule(cost, n_workers)
        assert ptr.shape == (n_workers + 1,) and ptr[0] == 0 and ptr[-1] == n_tasks
        assert sorted(order.tolist()) == list(range(n_tasks))
        loads = [cost[order[ptr[w] : ptr[w + 1]]].sum() for w in range(n_workers)]
        best = min(
            max(sum(cost[t] for t in range(n_tasks) if owner[t] == w) for w in range(n_workers))
            for owner in itertools.product(range(n_workers), repeat=n_tasks)
        )
        assert max(loads) <= 4 / 3 * best + 1e-9


@pytest.mark.parametrize("grow_policy", ["depthwise", "lossguide"])
def test_hist_threads_give_identical_trees(grow_policy):
    # 30k rows x 6 features: the levels are big enough for the parallel partition and histogram paths, whose per-bin
    # sums run over the same rows in the same order as on one thread.
    X, y = make_friedman1(n_samples=30_000, n_features=6, noise=0.5, random_state=0)
    X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    kw = dict(tree_method="hist", n_estimators=8, max_depth=6, grow_policy=grow_policy, max_leaves=40)
    one = XGBRegressor(n_jobs=1, **kw).fit(X, y)
    two = XGBRegressor(n_jobs=2, **kw).fit(X, y)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
