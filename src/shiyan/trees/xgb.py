r"""An XGBoost-style booster (Chen & Guestrin, 2016): second-order gradient boosting of regularised trees.

**Objective.**  After $t-1$ rounds the model predicts $\hat y_i^{(t-1)} = b + \sum_{s<t} f_s(x_i)$ (margin, with the
intercept $b$ = ``base_score``).  Round $t$ adds the tree $f_t$ that minimises

$$\mathcal{L}^{(t)} = \sum_i \ell\bigl(y_i, \hat y_i^{(t-1)} + f_t(x_i)\bigr) + \Omega(f_t), \qquad
\Omega(f) = \gamma T + \tfrac12 \lambda \lVert w \rVert^2 + \alpha \lVert w \rVert_1,$$

where $T$ is the number of leaves and $w_j$ the leaf weights.  A second-order Taylor expansion around
$\hat y^{(t-1)}$, with $g_i = \partial_{\hat y} \ell$ and $h_i = \partial^2_{\hat y} \ell$, gives

$$\tilde{\mathcal{L}}^{(t)} = \sum_i \bigl[g_i f_t(x_i) + \tfrac12 h_i f_t(x_i)^2\bigr] + \Omega(f_t)
= \sum_{j=1}^{T} \bigl[G_j w_j + \tfrac12 (H_j + \lambda) w_j^2 + \alpha |w_j|\bigr] + \gamma T,$$

with $G_j = \sum_{i \in I_j} g_i$, $H_j = \sum_{i \in I_j} h_i$ over the rows $I_j$ of leaf $j$.  Each leaf is a
one-dimensional problem with the solution $w_j^* = -T_\alpha(G_j) / (H_j + \lambda)$, where
$T_\alpha(G) = \mathrm{sign}(G)\max(|G| - \alpha, 0)$, and the structure score
$-\tfrac12 \sum_j T_\alpha(G_j)^2 / (H_j + \lambda) + \gamma T$.  Splitting a leaf into $L$ and $R$ therefore gains

$$\mathcal{L}_{\text{split}} = \frac12 \left[\frac{T_\alpha(G_L)^2}{H_L + \lambda} + \frac{T_\alpha(G_R)^2}{H_R + \lambda}
- \frac{T_\alpha(G_L + G_R)^2}{H_L + H_R + \lambda}\right] - \gamma .$$

As xgboost does, the trees record the bracket (without the $\tfrac12$) as the split's gain, grow greedily while it
exceeds $10^{-6}$ and children keep $H \ge$ ``min_child_weight``, and then prune bottom-up every split whose gain is
below $\gamma$.  Leaves store $\eta w_j^*$ (shrinkage, ``learning_rate``).

**Losses.**  Squared error $g = \hat y - y$, $h = 1$; log-loss $g = p - y$, $h = p(1-p)$ with $p = \sigma(\hat y)$;
softmax with one tree per class and round, $g_k = p_k - [y = k]$, $h_k = 2 p_k(1 - p_k)$ (xgboost's factor 2).
The intercept is chosen as xgboost 3 does: the weighted mean of $y$ (regression), its logit (binary), the centred
log class frequencies (multiclass).

**Split finding.**  ``tree_method="exact"`` enumerates every distinct value of every feature (thresholds halfway
between neighbours, in float32); ``"hist"`` first buckets every feature into at most ``max_bin`` quantile bins and
searches over bin boundaries using per-node gradient histograms, building only the smaller child's histogram and
subtracting it from the parent's for the sibling.  **Missing values** (NaN) are left out of the enumeration; each
split tries sending them left and right and keeps the better *default direction* (sparsity-aware split finding).

The compiled kernels are in :mod:`shiyan.trees._xgb_kernels`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass

import numba
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from shiyan.trees import _xgb_kernels as K

__all__ = ["XGBClassifier", "XGBRegressor", "XGBTree", "bin_edges"]


@dataclass(frozen=True)
class XGBTree:
    """One fitted tree as flat arrays (root 0; a leaf has ``feature == -1`` and its value in ``weight``)."""

    feature: np.ndarray  # (n_nodes,) int32
    threshold: np.ndarray  # (n_nodes,) float32, x < threshold goes left
    left: np.ndarray  # (n_nodes,) int32
    right: np.ndarray  # (n_nodes,) int32
    default_left: np.ndarray  # (n_nodes,) bool, where NaN goes
    weight: np.ndarray  # (n_nodes,) leaf value (eta * w*) at leaves, w* at internal nodes
    gain: np.ndarray  # (n_nodes,) split gain (0 at leaves)
    cover: np.ndarray  # (n_nodes,) sum of hessians

    @property
    def n_leaves(self) -> int:
        return int((self.feature < 0).sum())


def _prune(tree: XGBTree, gamma: float, eta: float) -> XGBTree:
    r"""Collapse, bottom-up, every split whose gain is below $\gamma$ (its leaf value becomes $\eta w^*$)."""
    feature, weight, gain = tree.feature.copy(), tree.weight.copy(), tree.gain.copy()
    left, right = tree.left, tree.right
    for nid in range(len(feature) - 1, -1, -1):  # children always have larger ids than their parent
        if feature[nid] >= 0 and feature[left[nid]] < 0 and feature[right[nid]] < 0 and gain[nid] < gamma:
            feature[nid] = -1
            weight[nid] = np.float32(eta * weight[nid])
            gain[nid] = 0.0
    return XGBTree(feature, tree.threshold, left, right, tree.default_left, weight, gain, tree.cover)


def bin_edges(X32: np.ndarray, max_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut points of every feature: midpoints between the distinct values when there are fewer than ``max_bin``,
    else (roughly) equal-count quantiles.  Returns ``(cuts, cut_ptr)``; feature ``f`` uses at most ``max_bin - 1``
    value bins plus the missing-value bin."""
    n_value_bins = max_bin - 1
    cuts, ptr = [], [0]
    for f in range(X32.shape[1]):
        col = X32[:, f]
        col = np.sort(col[~np.isnan(col)])
        uniq = np.unique(col)
        if uniq.shape[0] <= n_value_bins:
            c = ((uniq[:-1].astype(np.float64) + uniq[1:]) * 0.5).astype(np.float32)
            c = np.maximum(c, np.nextafter(uniq[:-1], np.float32(np.inf)))  # strictly above the lower value
        else:
            ranks = (np.arange(1, n_value_bins) * col.shape[0]) // n_value_bins
            c = np.unique(col[ranks])
            c = c[c > col[0]]
        cuts.append(c.astype(np.float32))
        ptr.append(ptr[-1] + c.shape[0])
    return np.concatenate(cuts) if cuts else np.zeros(0, np.float32), np.asarray(ptr, dtype=np.int64)


@contextlib.contextmanager
def _numba_threads(n_jobs: int | None):
    if n_jobs is None:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _check_int(value, name: str, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
    return int(value)


def _check_real(value, name: str, low: float, high: float = math.inf, low_open: bool = False) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")
    if value < low or value > high or (low_open and value == low):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {lo}{low}, {high}]; got {value!r}.")
    return float(value)


class _XGBBase(BaseEstimator):
    """Parameters, validation, the boosting loop and prediction shared by the regressor and the classifier."""

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.3,
        max_depth: int = 6,
        max_leaves: int = 0,
        grow_policy: str = "depthwise",
        tree_method: str = "hist",
        max_bin: int = 256,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        min_child_weight: float = 1.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        colsample_bylevel: float = 1.0,
        base_score: float | None = None,
        early_stopping_rounds: int | None = None,
        importance_type: str = "gain",
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.max_leaves = max_leaves
        self.grow_policy = grow_policy
        self.tree_method = tree_method
        self.max_bin = max_bin
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.colsample_bylevel = colsample_bylevel
        self.base_score = base_score
        self.early_stopping_rounds = early_stopping_rounds
        self.importance_type = importance_type
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ---- validation --------------------------------------------------------------------------------------------

    def _check_params(self) -> dict:
        if self.tree_method not in ("exact", "hist"):
            raise ValueError(f'tree_method must be "exact" or "hist"; got {self.tree_method!r}.')
        if self.grow_policy not in ("depthwise", "lossguide"):
            raise ValueError(f'grow_policy must be "depthwise" or "lossguide"; got {self.grow_policy!r}.')
        if self.importance_type not in ("gain", "weight", "total_gain", "cover"):
            raise ValueError(
                f'importance_type must be "gain", "weight", "total_gain" or "cover"; got {self.importance_type!r}.'
            )  # noqa: E501
        prm = dict(
            n_estimators=_check_int(self.n_estimators, "n_estimators", 1),
            eta=_check_real(self.learning_rate, "learning_rate", 0.0, low_open=True),
            max_depth=_check_int(self.max_depth, "max_depth", 0),
            max_leaves=_check_int(self.max_leaves, "max_leaves", 0),
            max_bin=_check_int(self.max_bin, "max_bin", 2),
            lam=_check_real(self.reg_lambda, "reg_lambda", 0.0),
            alpha=_check_real(self.reg_alpha, "reg_alpha", 0.0),
            gamma=_check_real(self.gamma, "gamma", 0.0),
            mcw=_check_real(self.min_child_weight, "min_child_weight", 0.0),
            subsample=_check_real(self.subsample, "subsample", 0.0, 1.0, low_open=True),
            colsample_bytree=_check_real(self.colsample_bytree, "colsample_bytree", 0.0, 1.0, low_open=True),
            colsample_bylevel=_check_real(self.colsample_bylevel, "colsample_bylevel", 0.0, 1.0, low_open=True),
        )
        if prm["max_bin"] > 256:
            raise ValueError(f"max_bin must be <= 256 (bins are stored as uint8); got {self.max_bin!r}.")
        if self.early_stopping_rounds is not None:
            _check_int(self.early_stopping_rounds, "early_stopping_rounds", 1)
        if self.n_jobs is not None:
            _check_int(self.n_jobs, "n_jobs", 1)
        exact = self.tree_method == "exact"
        if exact and self.grow_policy == "lossguide":
            raise ValueError('grow_policy="lossguide" needs tree_method="hist".')
        if prm["max_depth"] == 0 and (self.grow_policy == "depthwise" or prm["max_leaves"] == 0):
            raise ValueError('max_depth=0 (no limit) needs grow_policy="lossguide" and max_leaves > 0.')
        return prm

    def _validate_fit(self, X, y, sample_weight):
        X, y = validate_data(
            self, X, y, dtype=np.float32, order="C", ensure_all_finite="allow-nan",
            y_numeric=not isinstance(self, ClassifierMixin),
        )  # fmt: skip
        if np.isinf(X).any():
            raise ValueError("X contains infinity; only NaN (missing) is allowed besides finite values.")
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        return X, y, sample_weight

    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self, "trees_")
        X = validate_data(self, X, dtype=np.float32, order="C", ensure_all_finite="allow-nan", reset=False)
        return X

    # ---- boosting ------------------------------------------------------------------------------------------------

    def _boost(self, X32, y_enc, w, n_groups: int, objective: str, base_margin: np.ndarray, eval_sets):
        """The boosting loop; ``y_enc`` float targets or class indices; margins are kept as (n_groups, n)."""
        prm = self._check_params()
        rng = np.random.default_rng(self.random_state if not isinstance(self.random_state, np.random.RandomState)
                                    else self.random_state.randint(2**31 - 1))  # fmt: skip
        n, p = X32.shape
        # xgboost keeps margins, labels, weights and gradients in float32; doing the same makes near-ties between
        # candidate splits resolve the same way (the sums G, H are accumulated in float64)
        margin = np.repeat(base_margin.astype(np.float32)[:, None], n, axis=1)  # (K, n)
        y32, w32 = y_enc.astype(np.float32), w.astype(np.float32)
        g32 = np.zeros((n_groups, n), dtype=np.float32)
        h32 = np.zeros((n_groups, n), dtype=np.float32)
        grad = {"reg:squarederror": K.grad_squared, "binary:logistic": K.grad_logistic}.get(objective)
        exact = self.tree_method == "exact"
        if exact:
            Xc = np.ascontiguousarray(X32.T)  # (p, n)
            orders = [
                np.flatnonzero(~np.isnan(Xc[f]))[np.argsort(Xc[f][~np.isnan(Xc[f])], kind="stable")] for f in range(p)
            ]  # noqa: E501
            col_ptr = np.zeros(p + 1, dtype=np.int64)
            col_ptr[1:] = np.cumsum([o.shape[0] for o in orders])
            order = np.concatenate(orders).astype(np.int64) if p else np.zeros(0, np.int64)
            col_dense = np.asarray([o.shape[0] == n for o in orders], dtype=np.bool_)
        else:
            cuts, cut_ptr = bin_edges(X32, prm["max_bin"])
            self._cuts = (cuts, cut_ptr)
            codes = K.bin_columns(X32, cuts, cut_ptr)  # (n, p) uint8
            n_bins = (np.diff(cut_ptr) + 2).astype(np.int64)
            lossguide = self.grow_policy == "lossguide"
            if lossguide:
                cap = 2 * prm["max_leaves"] - 1 if prm["max_leaves"] > 0 else 2 ** (prm["max_depth"] + 1) - 1
                if prm["max_depth"] > 0:
                    cap = min(cap, 2 ** (prm["max_depth"] + 1) - 1)
            else:
                cap = 2 ** (prm["max_depth"] + 1) - 1
            cap = max(1, min(cap, 2 * n - 1))
            hist = np.zeros((cap, p, int(n_bins.max()), 2))
        depth_cap = max(1, prm["max_depth"] if prm["max_depth"] > 0 else 64)
        eta = prm["eta"]
        trees: list[XGBTree] = []
        tree_class: list[int] = []
        history: list[float] = []
        best_score, best_iter, stale = math.inf, 0, 0
        eval_margin = [np.repeat(base_margin[:, None], Xe.shape[0], axis=1) for Xe, _, _ in eval_sets]
        n_col_tree = max(1, int(prm["colsample_bytree"] * p))
        every_row = np.ones(n, dtype=np.bool_)
        all_rows = np.arange(n, dtype=np.int32)
        gh = np.empty((n, 2))  # hist: a row's (g, h) in float64, side by side (read together)
        for it in range(prm["n_estimators"]):
            if objective == "multi:softprob":
                K.grad_softmax(margin, y32, w32, g32, h32)
            else:
                grad(margin[0], y32, w32, g32[0], h32[0])
            if prm["subsample"] < 1.0:
                active = rng.random(n) < prm["subsample"]
            else:
                active = every_row
            for k in range(n_groups):
                tree_mask = np.zeros(p, dtype=np.bool_)
                tree_mask[rng.permutation(p)[:n_col_tree] if n_col_tree < p else slice(None)] = True
                level_mask = np.repeat(tree_mask[None, :], depth_cap, axis=0)
                if prm["colsample_bylevel"] < 1.0:
                    allowed = np.flatnonzero(tree_mask)
                    n_lvl = max(1, int(prm["colsample_bylevel"] * allowed.shape[0]))
                    for d in range(depth_cap):
                        level_mask[d] = False
                        level_mask[d, rng.permutation(allowed)[:n_lvl]] = True
                if exact:
                    g, h = g32[k].astype(np.float64), h32[k].astype(np.float64)
                    arrays = K.grow_exact(Xc, order, col_ptr, col_dense, g, h, active, level_mask,
                                          prm["lam"], prm["alpha"], prm["mcw"], prm["max_depth"], eta)  # fmt: skip
                    tree = XGBTree(*arrays)
                    seg = None
                else:
                    rows = all_rows.copy() if active is every_row else np.flatnonzero(active).astype(np.int32)
                    K.pack_gradient_pairs(g32[k], h32[k], gh)
                    *arrays, s0, s1 = K.grow_hist(codes, n_bins, cuts, cut_ptr, gh, rows, tree_mask, level_mask,
                                                  prm["lam"], prm["alpha"], prm["mcw"], prm["max_depth"],
                                                  prm["max_leaves"], lossguide, eta, hist,
                                                  numba.get_num_threads())  # fmt: skip
                    tree = XGBTree(*arrays)
                    seg = (rows, s0, s1)
                if prm["gamma"] > 0:
                    tree = _prune(tree, prm["gamma"], eta)
                trees.append(tree)
                tree_class.append(k)
                if seg is not None and prm["subsample"] == 1.0:
                    K.add_leaf_values(margin[k], seg[0], seg[1], seg[2], tree.feature, tree.weight)
                else:
                    margin[k] += _predict_trees(X32, [tree], [0], 1)[:, 0].astype(np.float32)
            for e, (Xe, _, _) in enumerate(eval_sets):
                eval_margin[e] += _predict_trees(Xe, trees[-n_groups:], list(range(n_groups)), n_groups).T
            if eval_sets:
                score = self._eval_metric(eval_margin[-1], eval_sets[-1][1], eval_sets[-1][2])
                history.append(score)
                if it == 0 or score < best_score:
                    best_score, best_iter, stale = score, it, 0
                else:
                    stale += 1
                if self.early_stopping_rounds is not None and stale >= self.early_stopping_rounds:
                    break
        self.trees_ = trees
        self.tree_class_ = np.asarray(tree_class, dtype=np.int64)
        self.base_margin_ = base_margin
        self.n_rounds_ = len(trees) // n_groups
        if eval_sets:
            self.evals_result_ = {"validation_0": {self._metric_name: history}}
        if eval_sets and self.early_stopping_rounds is not None:
            self.best_iteration_, self.best_score_ = best_iter, best_score
        else:
            self.best_iteration_ = self.n_rounds_ - 1
        self._packed = _pack_trees(trees)
        return self

    def _eval_sets(self, eval_set, encode, sample_weight_eval_set=None):
        """(X, encoded y, weights) per evaluation set; the metric is weighted by ``sample_weight_eval_set`` as in
        xgboost (one weight array, or None, per set)."""
        if eval_set is None:
            if self.early_stopping_rounds is not None:
                raise ValueError("early_stopping_rounds needs an eval_set.")
            if sample_weight_eval_set is not None:
                raise ValueError("sample_weight_eval_set was given without an eval_set.")
            return []
        if sample_weight_eval_set is not None and len(sample_weight_eval_set) != len(eval_set):
            raise ValueError(
                f"sample_weight_eval_set has {len(sample_weight_eval_set)} entries for {len(eval_set)} eval_set pairs."
            )
        out = []
        for k, pair in enumerate(eval_set):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError("eval_set must be a list of (X, y) pairs.")
            Xe = validate_data(self, pair[0], dtype=np.float32, order="C", ensure_all_finite="allow-nan", reset=False)
            ye = encode(np.asarray(pair[1]))
            if ye.shape[0] != Xe.shape[0]:
                raise ValueError("eval_set: X and y have different numbers of rows.")
            we = None if sample_weight_eval_set is None else sample_weight_eval_set[k]
            we = _check_sample_weight(we, Xe, dtype=np.float64)
            if (we < 0).any() or not np.isfinite(we).all() or we.sum() <= 0:
                raise ValueError(f"sample_weight_eval_set[{k}] must be finite, non-negative and not all zero.")
            out.append((Xe, ye, we))
        return out

    # ---- prediction --------------------------------------------------------------------------------------------

    def _margin(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        """Raw scores (n, n_groups) using the rounds in ``iteration_range`` (default: up to the best iteration)."""
        X32 = self._validate_X(X)
        n_groups = self.base_margin_.shape[0]
        lo, hi = iteration_range if iteration_range is not None else (0, self.best_iteration_ + 1)
        out = np.repeat(self.base_margin_[None, :], X32.shape[0], axis=0)
        t0, t1 = lo * n_groups, min(hi * n_groups, len(self.trees_))
        if t1 > t0:
            nodes, offset = self._packed
            K.predict_forest(X32, *nodes, offset[t0 : t1 + 1], self.tree_class_[t0:t1], out)
        return out

    @property
    def feature_importances_(self) -> np.ndarray:
        """Importance per feature by ``importance_type`` (xgboost's definitions), normalised to sum to one.

        "weight": number of splits on the feature; "gain": their mean gain; "total_gain": their summed gain;
        "cover": their mean cover (sum of hessians)."""
        check_is_fitted(self, "trees_")
        p = self.n_features_in_
        count, total_gain, total_cover = np.zeros(p), np.zeros(p), np.zeros(p)
        for t in self.trees_:
            split = t.feature >= 0
            count += np.bincount(t.feature[split], minlength=p)
            total_gain += np.bincount(t.feature[split], weights=t.gain[split], minlength=p)
            total_cover += np.bincount(t.feature[split], weights=t.cover[split], minlength=p)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = {
                "weight": count,
                "gain": np.where(count > 0, total_gain / np.maximum(count, 1), 0.0),
                "total_gain": total_gain,
                "cover": np.where(count > 0, total_cover / np.maximum(count, 1), 0.0),
            }[self.importance_type]
        s = score.sum()
        return score / s if s > 0 else score


def _pack_trees(trees) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The trees' node arrays concatenated (feature, threshold, left, default_left, weight) and the offset of each
    tree's root, ``offset[t]:offset[t+1]`` its nodes (child indices stay relative to the root; a right child is
    always its left sibling + 1)."""
    offset = np.zeros(len(trees) + 1, dtype=np.int64)
    offset[1:] = np.cumsum([t.feature.shape[0] for t in trees])

    def cat(name, dtype):
        return np.concatenate([getattr(t, name) for t in trees]) if trees else np.zeros(0, dtype)

    feature, left, right = cat("feature", np.int32), cat("left", np.int32), cat("right", np.int32)
    split = feature >= 0
    if not np.array_equal(right[split], left[split] + 1):
        raise RuntimeError("predict_forest expects each right child right after its left sibling")
    nodes = (feature, cat("threshold", np.float32), left, cat("default_left", np.bool_), cat("weight", np.float64))
    return nodes, offset


def _predict_trees(X32: np.ndarray, trees, tree_class, n_groups: int) -> np.ndarray:
    """Sum of the trees' leaf values per group: (n, n_groups)."""
    out = np.zeros((X32.shape[0], n_groups))
    if trees:
        nodes, offset = _pack_trees(trees)
        K.predict_forest(X32, *nodes, offset, np.asarray(tree_class, dtype=np.int64), out)
    return out


class XGBRegressor(RegressorMixin, _XGBBase):
    """Second-order boosted trees for regression (objective "reg:squarederror").

    ``predict`` uses the rounds up to ``best_iteration_`` (the best one on the last ``eval_set`` when early stopping
    is on, else all)."""

    _metric_name = "rmse"

    def fit(self, X, y, sample_weight=None, eval_set=None, sample_weight_eval_set=None) -> XGBRegressor:
        X, y, w = self._validate_fit(X, y, sample_weight)
        y = y.astype(np.float64)
        if self.base_score is None:
            base = float(np.float32(np.average(y, weights=w)))
        else:
            base = _check_real(self.base_score, "base_score", -math.inf)
        self.objective_ = "reg:squarederror"
        sets = self._eval_sets(eval_set, lambda v: v.astype(np.float64).ravel(), sample_weight_eval_set)
        with _numba_threads(self.n_jobs):
            return self._boost(X, y, w, 1, self.objective_, np.array([base]), sets)

    def _eval_metric(self, margin, y, w) -> float:
        return float(np.sqrt(np.average((margin[0] - y) ** 2, weights=w)))

    def predict(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        with _numba_threads(self.n_jobs):
            return self._margin(X, iteration_range)[:, 0]


class XGBClassifier(ClassifierMixin, _XGBBase):
    """Second-order boosted trees for classification: "binary:logistic" for two classes, "multi:softprob" (one tree
    per class and round) for more."""

    def fit(self, X, y, sample_weight=None, eval_set=None, sample_weight_eval_set=None) -> XGBClassifier:
        X, y, w = self._validate_fit(X, y, sample_weight)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.n_classes_ = int(self.classes_.shape[0])
        if self.n_classes_ < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 classes.")
        if np.count_nonzero(np.bincount(y_idx, weights=w) > 0) < 2:
            raise ValueError("y has only one class with positive sample_weight; a classifier needs at least 2 classes.")
        lookup = {c: i for i, c in enumerate(self.classes_.tolist())}

        def encode(v):
            try:
                return np.asarray([lookup[c] for c in v.ravel().tolist()], dtype=np.float64)
            except KeyError as err:
                raise ValueError(f"eval_set: label {err.args[0]!r} was not seen in y.") from None

        sets = self._eval_sets(eval_set, encode, sample_weight_eval_set)
        if self.n_classes_ == 2:
            self.objective_ = "binary:logistic"
            if self.base_score is None:
                prob = float(np.float32(np.average(y_idx, weights=w)))
            else:
                prob = _check_real(self.base_score, "base_score", 0.0, 1.0, low_open=True)
                if prob >= 1.0:
                    raise ValueError(f"base_score must lie in (0, 1) for binary:logistic; got {prob!r}.")
            base = np.array([math.log(prob / (1.0 - prob))])
        else:
            self.objective_ = "multi:softprob"
            if self.base_score is None:
                freq = np.bincount(y_idx, weights=w, minlength=self.n_classes_) / w.sum()
                logf = np.log(np.maximum(freq, 1e-300))
                base = (logf - logf.mean()).astype(np.float32).astype(np.float64)
            else:
                base = np.full(self.n_classes_, _check_real(self.base_score, "base_score", -math.inf))
        n_groups = 1 if self.n_classes_ == 2 else self.n_classes_
        with _numba_threads(self.n_jobs):
            return self._boost(X, y_idx.astype(np.float64), w, n_groups, self.objective_, base, sets)

    @property
    def _metric_name(self) -> str:
        return "logloss" if self.n_classes_ == 2 else "mlogloss"

    def _eval_metric(self, margin, y, w) -> float:
        proba = _to_proba(margin.T)
        eps = 1e-16
        picked = np.clip(proba[np.arange(y.shape[0]), y.astype(np.int64)], eps, 1 - eps)
        return float(-np.average(np.log(picked), weights=w))

    def predict_proba(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        with _numba_threads(self.n_jobs):
            return _to_proba(self._margin(X, iteration_range))

    def predict(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        proba = self.predict_proba(X, iteration_range)
        return self.classes_[np.argmax(proba, axis=1)]


def _to_proba(margin: np.ndarray) -> np.ndarray:
    """(n, 1) logit -> two-column probabilities; (n, K) scores -> softmax."""
    if margin.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-margin[:, 0]))
        return np.column_stack([1.0 - p1, p1])
    z = np.exp(margin - margin.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
