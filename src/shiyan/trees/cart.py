r"""CART decision trees (Breiman et al., 1984) with scikit-learn conventions.

A tree partitions the input space by axis-aligned cuts $x_j \le \theta$.  Growth is greedy and depth first: at a
node $t$ with rows $S_t$ (weights $w_i$, total $W_t$) we pick the split $(j, \theta)$ that maximises the weighted
impurity decrease

$$\Delta(j, \theta) = W_t I(t) - W_L I(L) - W_R I(R),$$

where $I$ is the Gini index $1 - \sum_k p_k^2$, the entropy $-\sum_k p_k \log_2 p_k$ (classification) or the
weighted variance of $y$ (regression).  A node becomes a leaf when it is pure, holds fewer than
``min_samples_split`` rows (or fewer than ``2 * min_samples_leaf``), is at ``max_depth``, or has no valid cut.
A leaf predicts the weighted class proportions $p_{tk}$ (classification) or the weighted mean $\bar y_t$.

Feature importance of $j$ is the total $\Delta$ of the splits on $j$, divided by the root weight and then
normalised to sum to one.

As in scikit-learn, ``X`` is stored as float32 and thresholds lie halfway between consecutive distinct values,
so on data without ties in the split gains the trees are identical to ``sklearn.tree``.  The compiled kernels live
in :mod:`shiyan.trees._kernels`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state, validate_data

from shiyan.trees import _kernels as K

__all__ = ["CartTree", "DecisionTreeClassifier", "DecisionTreeRegressor", "grow_cart"]

_CRITERIA = {"gini": K.GINI, "entropy": K.ENTROPY, "squared_error": K.SQUARED_ERROR}


@dataclass(frozen=True)
class CartTree:
    """A fitted tree as flat arrays indexed by node id (root is 0; leaves have ``left == right == -1``)."""

    feature: np.ndarray  # (n_nodes,) int64, -2 at leaves
    threshold: np.ndarray  # (n_nodes,) float64, -2.0 at leaves
    left: np.ndarray  # (n_nodes,) int64
    right: np.ndarray  # (n_nodes,) int64
    value: np.ndarray  # (n_nodes, n_outputs) class proportions or mean target
    impurity: np.ndarray  # (n_nodes,)
    n_node_samples: np.ndarray  # (n_nodes,) rows with non-zero weight
    weighted_n_node_samples: np.ndarray  # (n_nodes,)

    @property
    def node_count(self) -> int:
        return int(self.feature.shape[0])

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left == K.LEAF

    def depth(self) -> np.ndarray:
        """Depth of every node (root = 0); parents always precede children in pre-order numbering."""
        d = np.zeros(self.node_count, dtype=np.int64)
        for node in np.flatnonzero(~self.is_leaf):  # one pass over internal nodes, not samples
            d[self.left[node]] = d[node] + 1
            d[self.right[node]] = d[node] + 1
        return d

    def apply(self, X32: np.ndarray) -> np.ndarray:
        """Leaf id for every row of a float32 matrix ``X32``."""
        return K.apply_tree(X32, self.feature, self.threshold, self.left, self.right)

    def predict_value(self, X32: np.ndarray) -> np.ndarray:
        return self.value[self.apply(X32)]  # (n, n_outputs)

    def feature_importances(self, n_features: int) -> np.ndarray:
        r"""$\mathrm{imp}_j \propto \sum_{t: j_t = j} W_t I(t) - W_L I(L) - W_R I(R)$, normalised to sum 1."""
        internal = np.flatnonzero(~self.is_leaf)
        w, imp = self.weighted_n_node_samples, self.impurity
        lft, rgt = self.left[internal], self.right[internal]
        decrease = w[internal] * imp[internal] - w[lft] * imp[lft] - w[rgt] * imp[rgt]
        out = np.bincount(self.feature[internal], weights=decrease, minlength=n_features).astype(np.float64)
        out /= w[0]
        total = out.sum()
        return out / total if total > 0 else out


def _node_capacity(n_rows: int, max_depth: int, min_samples_leaf: int) -> int:
    """Upper bound on the node count: a binary tree with $L$ leaves has $2L - 1$ nodes."""
    n_leaves = max(1, n_rows // min_samples_leaf)
    if max_depth < 62:
        n_leaves = min(n_leaves, 2**max_depth)
    return 2 * n_leaves - 1


def grow_cart(
    X32: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    *,
    criterion: str,
    n_classes: int = 0,
    max_depth: int | None = None,
    min_samples_split: int = 2,
    min_samples_leaf: int = 1,
    max_features: int | None = None,
    seed: int = 0,
    X_ranks: tuple[np.ndarray, np.ndarray] | None = None,
) -> CartTree:
    """Grow one tree on validated inputs (the building block for forests and boosting).

    ``X32`` is a float32 (n, p) matrix (column-major avoids a copy), ``y`` int class indices in [0, n_classes) for "gini" /
    "entropy" or float targets for "squared_error", ``sample_weight`` non-negative float64 (rows with weight 0 are
    left out, as in scikit-learn).  ``seed`` drives the per-node feature shuffle when ``max_features < p``.
    ``X_ranks`` may pass :func:`_kernels.feature_ranks` of ``X32`` when many trees share one matrix; without it the
    split search sorts the cheaper :func:`_kernels.order_keys` (same trees).
    """
    code = _CRITERIA[criterion]
    n, p = X32.shape
    rows = np.flatnonzero(sample_weight != 0).astype(np.int64)
    depth_limit = np.iinfo(np.int32).max if max_depth is None else int(max_depth)
    msl = int(min_samples_leaf)
    mss = max(int(min_samples_split), 2 * msl)
    if code == K.SQUARED_ERROR:
        yk, yv, n_stat = np.zeros(0, dtype=np.int64), np.ascontiguousarray(y, dtype=np.float64), 2
    else:
        yk, yv, n_stat = np.ascontiguousarray(y, dtype=np.int64), np.zeros(0, dtype=np.float64), int(n_classes)
    if n >= 2**32:
        raise ValueError(f"X32 must have fewer than 2**32 rows; got {n}.")
    X_cols = np.asfortranarray(X32)
    ranks, values = (K.order_keys(X_cols), np.empty((p, 0), dtype=np.float32)) if X_ranks is None else X_ranks
    arrays = K.grow_tree(
        X_cols, ranks, values, yk, yv, np.ascontiguousarray(sample_weight, dtype=np.float64), rows, n_stat, code, depth_limit,
        mss, msl, p if max_features is None else int(max_features), int(seed) & (2**63 - 1),
        _node_capacity(rows.shape[0], depth_limit, msl),
    )  # fmt: skip
    return CartTree(*arrays)


def _resolve_count(value, n: int, name: str, low: int, frac_open_right: bool) -> int:
    """Turn an int or a fraction of ``n`` into a count (scikit-learn's rules)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < low:
            raise ValueError(f"{name} must be an int >= {low} or a float in (0, 1]; got {value!r}.")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        upper_ok = value < 1.0 if frac_open_right else value <= 1.0
        if not (0.0 < value and upper_ok):
            raise ValueError(f"{name} as a float must lie in (0, 1{')' if frac_open_right else ']'}; got {value!r}.")
        return max(low, math.ceil(value * n))
    raise TypeError(f"{name} must be an int or a float; got {type(value).__name__}.")


def _resolve_max_features(value, p: int) -> int:
    if value is None:
        return p
    if isinstance(value, str):
        if value == "sqrt":
            return max(1, int(math.sqrt(p)))
        if value == "log2":
            return max(1, int(math.log2(p)))
        raise ValueError(f'max_features must be None, an int, a float, "sqrt" or "log2"; got {value!r}.')
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 1 <= value <= p:
            raise ValueError(f"max_features must be in [1, n_features={p}]; got {value}.")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"max_features as a float must lie in (0, 1]; got {value!r}.")
        return max(1, int(value * p))
    raise TypeError(f"max_features must be None, an int, a float or a string; got {type(value).__name__}.")


def _seed_from(random_state) -> int:
    """An integer seed from an int / None / np.random.RandomState / np.random.Generator."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    return int(check_random_state(random_state).randint(0, np.iinfo(np.int32).max))


class _BaseTree(BaseEstimator):
    """Parameter handling, validation and the fit / apply plumbing shared by both estimators."""

    _allowed_criteria: tuple[str, ...] = ()

    def __init__(
        self,
        criterion: str,
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state=None,
    ):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def _check_params(self, n: int, p: int) -> dict:
        if self.criterion not in self._allowed_criteria:
            raise ValueError(f"criterion must be one of {self._allowed_criteria}; got {self.criterion!r}.")
        if self.max_depth is not None and (
            not isinstance(self.max_depth, numbers.Integral) or isinstance(self.max_depth, bool) or self.max_depth < 1
        ):
            raise ValueError(f"max_depth must be None or an int >= 1; got {self.max_depth!r}.")
        return dict(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=_resolve_count(self.min_samples_split, n, "min_samples_split", 2, False),
            min_samples_leaf=_resolve_count(self.min_samples_leaf, n, "min_samples_leaf", 1, True),
            max_features=_resolve_max_features(self.max_features, p),
            seed=_seed_from(self.random_state),
        )

    def _validate_fit(self, X, y, sample_weight):
        X, y = validate_data(self, X, y, dtype=np.float32, order="C", y_numeric=not isinstance(self, ClassifierMixin))
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        return X, y, sample_weight

    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self, "tree_")
        return validate_data(self, X, dtype=np.float32, order="C", reset=False)

    def apply(self, X) -> np.ndarray:
        """Index of the leaf each row of ``X`` lands in."""
        X32 = self._validate_X(X)
        return self.tree_.apply(X32)

    def get_depth(self) -> int:
        check_is_fitted(self, "tree_")
        return int(self.tree_.depth().max())

    def get_n_leaves(self) -> int:
        check_is_fitted(self, "tree_")
        return int(self.tree_.is_leaf.sum())

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self, "tree_")
        return self.tree_.feature_importances(self.n_features_in_)


class DecisionTreeClassifier(ClassifierMixin, _BaseTree):
    """CART classifier (criterion "gini" or "entropy"); leaves predict weighted class proportions."""

    _allowed_criteria = ("gini", "entropy")

    def __init__(
        self,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state=None,
    ):
        super().__init__(criterion, max_depth, min_samples_split, min_samples_leaf, max_features, random_state)

    def fit(self, X, y, sample_weight=None) -> DecisionTreeClassifier:
        X, y, sample_weight = self._validate_fit(X, y, sample_weight)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.n_classes_ = int(self.classes_.shape[0])
        params = self._check_params(X.shape[0], X.shape[1])
        self.max_features_ = params["max_features"]
        self.tree_ = grow_cart(X, y_index, sample_weight, n_classes=self.n_classes_, **params)
        return self

    def predict_proba(self, X) -> np.ndarray:
        X32 = self._validate_X(X)
        proba = self.tree_.predict_value(X32)  # (n, n_classes)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        X32 = self._validate_X(X)
        shares = self.tree_.predict_value(X32)  # (n, n_classes) leaf class shares; normalising keeps the arg max
        return self.classes_[np.argmax(shares, axis=1)]


class DecisionTreeRegressor(RegressorMixin, _BaseTree):
    """CART regressor (criterion "squared_error"); leaves predict the weighted mean target."""

    _allowed_criteria = ("squared_error",)

    def __init__(
        self,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state=None,
    ):
        super().__init__(criterion, max_depth, min_samples_split, min_samples_leaf, max_features, random_state)

    def fit(self, X, y, sample_weight=None) -> DecisionTreeRegressor:
        X, y, sample_weight = self._validate_fit(X, y, sample_weight)
        params = self._check_params(X.shape[0], X.shape[1])
        self.max_features_ = params["max_features"]
        self.tree_ = grow_cart(X, y.astype(np.float64), sample_weight, **params)
        return self

    def predict(self, X) -> np.ndarray:
        X32 = self._validate_X(X)
        return self.tree_.predict_value(X32)[:, 0]
