r"""Random forests (Breiman, 2001): bagged CART trees with a random feature subset at every node.

Tree $b = 1, \dots, B$ is grown on a bootstrap sample: $n'$ rows drawn with replacement, which we encode as integer
weights $c_{bi}$ (how often row $i$ was drawn) multiplied into the sample weights, so the tree sees row $i$ with
weight $c_{bi} w_i$.  At every node only ``max_features`` $= m$ of the $p$ features, drawn afresh, are searched for
the best cut; trees are grown until their leaves are pure (``max_depth=None``).  The forest averages the trees,

$$\hat f(x) = \frac{1}{B}\sum_{b=1}^{B} T_b(x),$$

with $T_b(x)$ the leaf class proportions (classification; the prediction is the arg max of the mean) or the leaf
mean (regression).  If each tree has variance $\sigma^2$ and two trees have correlation $\rho$, the average has
variance $\rho\sigma^2 + \frac{1-\rho}{B}\sigma^2$: more trees remove the second term, and a smaller $m$ lowers
$\rho$ (at some cost in the bias of each tree).

Out-of-bag estimate: row $i$ is left out of tree $b$ when $c_{bi} = 0$ (probability $(1 - 1/n)^n \approx e^{-1}$),
so averaging only those trees, $\hat f_{\text{oob}}(x_i) = \frac{1}{|O_i|}\sum_{b \in O_i} T_b(x_i)$ with
$O_i = \{b : c_{bi} = 0\}$, gives a prediction for $x_i$ from trees that never saw it, and its accuracy (or $R^2$)
estimates the held-out score without a validation set.

Trees are grown in parallel on ``n_jobs`` threads: the compiled kernels of :mod:`shiyan.trees._kernels` release the
GIL (``nogil=True``), so the threads run on separate cores.  Prediction packs all trees into one set of flat arrays
and splits the rows over the same number of threads.
"""

from __future__ import annotations

import numbers
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state, validate_data

from shiyan.trees import _kernels as K
from shiyan.trees.cart import (
    CartTree,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    grow_cart,
)

__all__ = ["RandomForestClassifier", "RandomForestRegressor", "bootstrap_counts", "resolve_n_jobs"]


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Number of worker threads: ``None`` means 1, negative values count back from the number of CPUs (-1 = all)."""
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None or a non-zero int; got {n_jobs!r}.")
    n_cpu = os.cpu_count() or 1
    return int(n_jobs) if n_jobs > 0 else max(1, n_cpu + 1 + int(n_jobs))


def bootstrap_counts(n: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    r"""$c_i$ = how many of ``n_draws`` uniform draws with replacement from $\{0, \dots, n-1\}$ hit row $i$."""
    return np.bincount(rng.integers(0, n, n_draws), minlength=n).astype(np.float64)  # (n,)


def _resolve_max_samples(value, n: int) -> int:
    if value is None:
        return n
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 1 <= value <= n:
            raise ValueError(f"max_samples must be in [1, n_samples={n}]; got {value}.")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"max_samples as a float must lie in (0, 1]; got {value!r}.")
        return max(1, round(value * n))
    raise TypeError(f"max_samples must be None, an int or a float; got {type(value).__name__}.")


def _pack(trees: list[CartTree]):
    """Concatenate the trees for :func:`_kernels.forest_mean_value`: (feature, threshold, right, value, roots).

    Node ids are shifted to global ones; ``feature`` is -1 at leaves; thresholds become float32 rounded down (the same
    decisions on float32 inputs).  The trees are in pre-order (left child = next node), which the walk relies on."""
    sizes = np.array([t.node_count for t in trees], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # (B,)
    shift = np.repeat(roots, sizes)  # (total_nodes,)
    left = np.concatenate([t.left for t in trees])
    split = left != K.LEAF
    ids = np.arange(sizes.sum())
    if not np.array_equal(left[split] + shift[split], ids[split] + 1):
        raise RuntimeError("forest packing expects pre-order trees (each left child right after its parent)")
    right = np.where(split, np.concatenate([t.right for t in trees]) + shift, K.LEAF).astype(np.int32)
    feature = np.where(split, np.concatenate([t.feature for t in trees]), -1).astype(np.int32)
    threshold = K.float32_round_down(np.concatenate([t.threshold for t in trees]).astype(np.float64))
    value = np.ascontiguousarray(np.concatenate([t.value for t in trees]))  # (total_nodes, n_outputs)
    return feature, threshold, right, value, roots


class _BaseForest(BaseEstimator):
    """Bootstrap, parallel growth, out-of-bag bookkeeping and packed prediction shared by both forests."""

    _tree_cls: type = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str,
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None,
        bootstrap: bool = True,
        oob_score: bool = False,
        n_jobs: int | None = None,
        random_state=None,
        max_samples: int | float | None = None,
    ):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.max_samples = max_samples

    # ----------------------------------------------------------------------------------------------- checks
    def _check_forest_params(self, n: int) -> int:
        if (
            not isinstance(self.n_estimators, numbers.Integral)
            or isinstance(self.n_estimators, bool)
            or self.n_estimators < 1
        ):
            raise ValueError(f"n_estimators must be an int >= 1; got {self.n_estimators!r}.")
        if not isinstance(self.bootstrap, bool | np.bool_):
            raise TypeError(f"bootstrap must be a bool; got {type(self.bootstrap).__name__}.")
        if self.oob_score and not self.bootstrap:
            raise ValueError("oob_score=True needs bootstrap=True (without bootstrap no row is out of bag).")
        if self.max_samples is not None and not self.bootstrap:
            raise ValueError("max_samples must be None when bootstrap=False.")
        return _resolve_max_samples(self.max_samples, n)

    def _tree_params(self, n: int, p: int) -> dict:
        """Validated per-tree growth parameters (the same rules as the single trees)."""
        probe = self._tree_cls(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
        )
        params = probe._check_params(n, p)
        params.pop("seed")
        return params

    # ----------------------------------------------------------------------------------------------- fitting
    def _fit_trees(self, X32: np.ndarray, y_fit: np.ndarray, sample_weight: np.ndarray, n_classes: int):
        n, p = X32.shape
        n_draws = self._check_forest_params(n)
        params = self._tree_params(n, p)
        self.max_features_ = params["max_features"]
        n_jobs = resolve_n_jobs(self.n_jobs)
        seeds = check_random_state(self.random_state).randint(0, np.iinfo(np.int32).max, size=(self.n_estimators, 2))
        want_oob = bool(self.oob_score)
        n_out = n_classes if n_classes > 0 else 1
        X_cols = np.asfortranarray(X32)  # column-major once: the split search reads one feature at a time
        X_ranks = K.feature_ranks(X_cols)  # (p, n) value ranks and distinct values, shared by all trees

        def grow_one(b: int):
            if self.bootstrap:
                counts = bootstrap_counts(n, n_draws, np.random.default_rng(int(seeds[b, 0])))
                weight = sample_weight * counts
            else:
                counts, weight = None, sample_weight
            tree = grow_cart(
                X_cols, y_fit, weight, n_classes=n_classes, seed=int(seeds[b, 1]), X_ranks=X_ranks, **params
            )
            oob = None
            if want_oob:
                rows = np.flatnonzero(counts == 0)
                oob = (rows, tree.predict_value(X32[rows]))  # (n_oob,), (n_oob, n_out)
            return tree, oob

        if n_jobs == 1:
            results = [grow_one(b) for b in range(self.n_estimators)]
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                results = list(pool.map(grow_one, range(self.n_estimators)))
        self.trees_ = [tree for tree, _ in results]
        self._n_samples, self._n_draws, self._seeds = n, n_draws, seeds
        self._packed = _pack(self.trees_)
        if want_oob:
            total = np.zeros((n, n_out), dtype=np.float64)
            hits = np.zeros(n, dtype=np.int64)
            for _, (rows, vals) in results:
                total[rows] += vals  # rows are distinct within one tree
                hits[rows] += 1
            if (hits == 0).any():
                warnings.warn(
                    "Some inputs do not have OOB scores: they were drawn by every tree; use more estimators.",
                    UserWarning,
                    stacklevel=3,
                )
            return total / np.maximum(hits, 1)[:, None]
        return None

    def _tree_estimator(self, tree: CartTree):
        """A fitted single-tree estimator wrapping one of the forest's trees (for ``estimators_``)."""
        est = self._tree_cls(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
        )
        est.tree_ = tree
        est.n_features_in_ = self.n_features_in_
        est.max_features_ = self.max_features_
        if hasattr(self, "feature_names_in_"):
            est.feature_names_in_ = self.feature_names_in_
        if isinstance(est, ClassifierMixin):
            est.classes_ = self.classes_
            est.n_classes_ = self.n_classes_
        return est

    @property
    def estimators_samples_(self) -> list[np.ndarray]:
        """For every tree, the row indices of its bootstrap sample (with repeats; all rows when bootstrap=False)."""
        check_is_fitted(self, "trees_")
        if not self.bootstrap:
            return [np.arange(self._n_samples) for _ in self.trees_]
        out = []
        for b in range(len(self.trees_)):
            counts = bootstrap_counts(self._n_samples, self._n_draws, np.random.default_rng(int(self._seeds[b, 0])))
            out.append(np.repeat(np.arange(self._n_samples), counts.astype(np.int64)))
        return out

    @property
    def estimators_(self) -> list:
        """The fitted trees as single-tree estimators (built on demand)."""
        check_is_fitted(self, "trees_")
        return [self._tree_estimator(t) for t in self.trees_]

    # ----------------------------------------------------------------------------------------------- predicting
    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self, "trees_")
        return validate_data(self, X, dtype=np.float32, order="C", reset=False)

    def _mean_value(self, X32: np.ndarray) -> np.ndarray:
        """$\\frac{1}{B}\\sum_b T_b(x)$ for every row, rows split over ``n_jobs`` threads."""
        feature, threshold, right, value, roots = self._packed
        n_jobs = min(resolve_n_jobs(self.n_jobs), max(1, X32.shape[0] // 256))
        if n_jobs == 1:
            return K.forest_mean_value(X32, feature, threshold, right, value, roots)
        chunks = np.array_split(np.arange(X32.shape[0]), n_jobs)
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            parts = pool.map(
                lambda idx: K.forest_mean_value(X32[idx[0] : idx[-1] + 1], feature, threshold, right, value, roots),
                chunks,
            )
            return np.concatenate(list(parts))

    def apply(self, X) -> np.ndarray:
        """(n, n_estimators) leaf index of every row in every tree."""
        X32 = self._validate_X(X)
        return np.stack([t.apply(X32) for t in self.trees_], axis=1)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean over trees (with at least one split) of each tree's normalised impurity decrease, renormalised."""
        check_is_fitted(self, "trees_")
        per_tree = [t.feature_importances(self.n_features_in_) for t in self.trees_ if t.node_count > 1]
        if not per_tree:
            return np.zeros(self.n_features_in_)
        mean = np.mean(per_tree, axis=0)
        return mean / mean.sum()


class RandomForestClassifier(ClassifierMixin, _BaseForest):
    """Random forest of CART classifiers (criterion "gini" or "entropy"), averaging the trees' class proportions."""

    _tree_cls = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = "sqrt",
        bootstrap: bool = True,
        oob_score: bool = False,
        n_jobs: int | None = None,
        random_state=None,
        max_samples: int | float | None = None,
    ):
        super().__init__(
            n_estimators,
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            oob_score=oob_score,
            n_jobs=n_jobs,
            random_state=random_state,
            max_samples=max_samples,
        )

    def fit(self, X, y, sample_weight=None) -> RandomForestClassifier:
        X32, y = validate_data(self, X, y, dtype=np.float32, order="C")
        sample_weight = _check_sample_weight(sample_weight, X32, dtype=np.float64, ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.n_classes_ = int(self.classes_.shape[0])
        oob = self._fit_trees(X32, y_index, sample_weight, self.n_classes_)
        if oob is not None:
            self.oob_decision_function_ = oob  # (n, n_classes)
            self.oob_score_ = float(accuracy_score(y_index, np.argmax(oob, axis=1)))
        return self

    def predict_proba(self, X) -> np.ndarray:
        X32 = self._validate_X(X)
        proba = self._mean_value(X32)  # (n, n_classes)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class RandomForestRegressor(RegressorMixin, _BaseForest):
    """Random forest of CART regressors (criterion "squared_error"), averaging the trees' leaf means."""

    _tree_cls = DecisionTreeRegressor

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = 1.0,
        bootstrap: bool = True,
        oob_score: bool = False,
        n_jobs: int | None = None,
        random_state=None,
        max_samples: int | float | None = None,
    ):
        super().__init__(
            n_estimators,
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            oob_score=oob_score,
            n_jobs=n_jobs,
            random_state=random_state,
            max_samples=max_samples,
        )

    def fit(self, X, y, sample_weight=None) -> RandomForestRegressor:
        X32, y = validate_data(self, X, y, dtype=np.float32, order="C", y_numeric=True)
        sample_weight = _check_sample_weight(sample_weight, X32, dtype=np.float64, ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        y = np.asarray(y, dtype=np.float64)
        oob = self._fit_trees(X32, y, sample_weight, 0)
        if oob is not None:
            self.oob_prediction_ = oob[:, 0]  # (n,)
            self.oob_score_ = float(r2_score(y, self.oob_prediction_))
        return self

    def predict(self, X) -> np.ndarray:
        X32 = self._validate_X(X)
        return self._mean_value(X32)[:, 0]
