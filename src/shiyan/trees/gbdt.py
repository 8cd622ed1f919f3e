r"""Gradient boosting with CART trees (Friedman, 2001, "Greedy function approximation").

The model is an additive expansion $F_M(x) = F_0(x) + \nu \sum_{m=1}^{M} h_m(x)$ built stage by stage.  At stage
$m$, with the current raw predictions $F_{m-1}(x_i)$:

1. pseudo-residuals $r_{im} = -\left[\partial L(y_i, F) / \partial F\right]_{F = F_{m-1}(x_i)}$;
2. a regression tree (CART, squared-error splits) is fitted to $(x_i, r_{im})$, giving leaf regions $R_{jm}$;
3. every leaf gets its own line search $\gamma_{jm} = \arg\min_\gamma \sum_{x_i \in R_{jm}} w_i L(y_i,
   F_{m-1}(x_i) + \gamma)$ (exact or one Newton step);
4. $F_m(x) = F_{m-1}(x) + \nu \sum_j \gamma_{jm} \mathbf{1}[x \in R_{jm}]$, with the shrinkage $\nu$ =
   ``learning_rate``.

$F_0$ is the loss's optimal constant ($\arg\min_c \sum_i w_i L(y_i, c)$), zero, or the output of a user estimator.
The losses and their terminal-node estimates:

* squared error $L = \tfrac12 (y - F)^2$: $r = y - F$, $\gamma_j$ = mean of $r$ in the leaf (the tree's own value);
* absolute error $L = |y - F|$: $r = \operatorname{sign}(y - F)$, $\gamma_j$ = weighted median of $y - F$;
* Huber with threshold $\delta_m$ = the $\alpha$-quantile of $|y - F_{m-1}|$: $r = y - F$ if $|y - F| \le \delta$
  else $\delta\,\operatorname{sign}(y - F)$; $\gamma_j = \tilde r_j + \operatorname{mean}_i\big(\operatorname{sign}
  (d_i - \tilde r_j) \min(\delta, |d_i - \tilde r_j|)\big)$ with $d_i = y_i - F_{m-1}(x_i)$ and
  $\tilde r_j$ their median in the leaf;
* binary log-loss, $p = \sigma(F)$: $r = y - p$, Newton step $\gamma_j = \sum w_i r_i / \sum w_i p_i (1 - p_i)$;
* multiclass log-loss with $K$ raw scores and $p_k = \operatorname{softmax}_k(F)$: $K$ trees per stage, tree $k$
  fitted to $r_{ik} = y_{ik} - p_{ik}$, leaf value $\gamma_{jk} = \frac{K-1}{K} \sum w_i r_{ik} /
  \sum w_i p_{ik} (1 - p_{ik})$.

With ``subsample < 1`` every stage uses a random fraction of the rows (stochastic gradient boosting, Friedman 2002):
the tree and its leaf values see only those rows, and the rest give the out-of-bag loss.

The leaf estimates, the initial constants ($F_0$ = weighted mean; median; log-odds of the class prior; centred log
priors $\log p_k - \frac1K \sum_l \log p_l$) and the reported ``train_score_`` (squared error, absolute error, Huber
loss, binomial deviance $= 2\times$ log-loss, multinomial log-loss) follow scikit-learn's conventions, so with
``subsample=1`` the fitted ensembles equal ``sklearn.ensemble.GradientBoosting*`` on data whose splits have no ties.
Trees are grown by :func:`shiyan.trees.cart.grow_cart`; prediction runs through one compiled kernel over all trees.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from collections.abc import Iterator

import numpy as np
from scipy.special import expit, logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state, validate_data

from shiyan.trees import _boost_kernels as BK
from shiyan.trees.cart import CartTree, grow_cart

__all__ = ["GradientBoostingClassifier", "GradientBoostingRegressor"]

_EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------------------------- small utilities
def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Inverted-CDF weighted quantile: the first sorted value whose cumulative weight reaches $q \\sum w$."""
    return float(BK.weighted_quantile_sorted(np.ascontiguousarray(values, dtype=np.float64),
                                             np.ascontiguousarray(weights, dtype=np.float64), float(q)))  # fmt: skip


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0 where |den| < 1e-150 (a pure leaf: no Newton step is possible)."""
    out = np.zeros_like(num)
    ok = np.abs(den) >= 1e-150
    out[ok] = num[ok] / den[ok]
    return out


def _leaf_sums(leaf: np.ndarray, values: np.ndarray, n_nodes: int) -> np.ndarray:
    return np.bincount(leaf, weights=values, minlength=n_nodes)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# ----------------------------------------------------------------------------------------------------- the losses
class _Loss(abc.ABC):
    """One loss: optimal constant, negative gradient, terminal-node estimates and the reported score."""

    n_outputs = 1
    score_factor = 1.0

    def prepare_stage(self, y, raw, w) -> None:  # noqa: B027 -- an optional hook: most losses need nothing here
        """Hook run before every stage (Huber re-estimates its threshold here)."""

    @abc.abstractmethod
    def constant(self, y, w, weighted: bool) -> np.ndarray:  # (n_outputs,)
        """The optimal constant model $F_0$ (the default ``init``)."""

    @abc.abstractmethod
    def neg_gradient(self, y, raw) -> np.ndarray:  # (n, n_outputs)
        """The pseudo-residuals $r = -\\partial L / \\partial F$ the next tree is fitted to."""

    @abc.abstractmethod
    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w) -> np.ndarray | None:
        """$\\gamma_j$ for every node id reached by ``leaf`` (None: keep the tree's own means)."""

    @abc.abstractmethod
    def pointwise(self, y, raw) -> np.ndarray:  # (n,)
        """The loss of every sample."""

    def score(self, y, raw, w) -> float:
        return float(self.score_factor * np.average(self.pointwise(y, raw), weights=w))


class _SquaredError(_Loss):
    score_factor = 2.0  # report the mean squared error, not half of it

    def constant(self, y, w, weighted):
        return np.array([np.average(y, weights=w)])

    def neg_gradient(self, y, raw):
        return (y - raw[:, 0])[:, None]

    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w):
        return None  # the tree's leaf means already solve the line search

    def pointwise(self, y, raw):
        return 0.5 * (y - raw[:, 0]) ** 2


class _AbsoluteError(_Loss):
    def constant(self, y, w, weighted):
        return np.array([weighted_quantile(y, w, 0.5) if weighted else float(np.median(y))])

    def neg_gradient(self, y, raw):
        return np.where(raw[:, 0] > y, -1.0, 1.0)[:, None]

    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w):
        return BK.leaf_weighted_quantile(leaf, y - raw[:, 0], w, n_nodes, 0.5)

    def pointwise(self, y, raw):
        return np.abs(y - raw[:, 0])


class _Huber(_Loss):
    def __init__(self, alpha: float):
        self.alpha = alpha
        self.delta = math.inf

    def prepare_stage(self, y, raw, w):
        self.delta = weighted_quantile(np.abs(y - raw[:, 0]), w, self.alpha)

    def constant(self, y, w, weighted):
        return np.array([weighted_quantile(y, w, 0.5) if weighted else float(np.median(y))])

    def neg_gradient(self, y, raw):
        d = y - raw[:, 0]
        return np.where(np.abs(d) <= self.delta, d, np.where(d > 0, self.delta, -self.delta))[:, None]

    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w):
        d = y - raw[:, 0]
        med = BK.leaf_weighted_quantile(leaf, d, w, n_nodes, 0.5)  # (n_nodes,)
        dev = d - med[leaf]
        term = np.sign(dev) * np.minimum(self.delta, np.abs(dev))
        w_sum = _leaf_sums(leaf, w, n_nodes)
        mean_term = np.divide(_leaf_sums(leaf, w * term, n_nodes), w_sum, out=np.zeros(n_nodes), where=w_sum > 0)
        return med + mean_term

    def pointwise(self, y, raw):
        a = np.abs(y - raw[:, 0])
        return np.where(a <= self.delta, 0.5 * a**2, self.delta * (a - 0.5 * self.delta))


class _BinomialLogLoss(_Loss):
    score_factor = 2.0  # binomial deviance

    def constant(self, y, w, weighted):
        p = np.clip(np.average(y, weights=w), _EPS, 1 - _EPS)
        return np.array([math.log(p / (1 - p))])

    def neg_gradient(self, y, raw):
        return (y - expit(raw[:, 0]))[:, None]

    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w):
        p = y - r  # the probabilities the gradient was taken at
        return _safe_ratio(_leaf_sums(leaf, w * r, n_nodes), _leaf_sums(leaf, w * p * (1 - p), n_nodes))

    def pointwise(self, y, raw):
        f = raw[:, 0]
        return np.logaddexp(0.0, f) - y * f


class _MultinomialLogLoss(_Loss):
    def __init__(self, n_classes: int):
        self.n_outputs = n_classes

    def constant(self, y, w, weighted):
        prior = np.array([np.average(y == k, weights=w) for k in range(self.n_outputs)])
        log_p = np.log(np.clip(prior, _EPS, 1 - _EPS))
        return log_p - log_p.mean()  # symmetric (centred) logits

    def neg_gradient(self, y, raw):
        onehot = y[:, None] == np.arange(self.n_outputs)[None, :]  # (n, K)
        return onehot - softmax(raw, axis=1)

    def leaf_values(self, k, leaf, n_nodes, y, raw, r, w):
        K = self.n_outputs
        p = (y == k) - r
        num = _leaf_sums(leaf, w * r, n_nodes) * ((K - 1) / K)
        return _safe_ratio(num, _leaf_sums(leaf, w * p * (1 - p), n_nodes))

    def pointwise(self, y, raw):
        return logsumexp(raw, axis=1) - raw[np.arange(raw.shape[0]), y.astype(np.int64)]


# ------------------------------------------------------------------------------------------------- the estimator
class _BaseGradientBoosting(BaseEstimator, metaclass=abc.ABCMeta):
    """Parameter checks, the stage loop and (staged) raw predictions shared by the two estimators."""

    _losses: tuple[str, ...] = ()

    def _check_params(self, n: int, p: int) -> dict:
        if self.loss not in self._losses:
            raise ValueError(f"loss must be one of {self._losses}; got {self.loss!r}.")
        if not _is_real(self.learning_rate) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a float > 0; got {self.learning_rate!r}.")
        if not _is_int(self.n_estimators) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be an int >= 1; got {self.n_estimators!r}.")
        if not _is_real(self.subsample) or not 0.0 < self.subsample <= 1.0:
            raise ValueError(f"subsample must be a float in (0, 1]; got {self.subsample!r}.")
        if self.max_depth is not None and (not _is_int(self.max_depth) or self.max_depth < 1):
            raise ValueError(f"max_depth must be None or an int >= 1; got {self.max_depth!r}.")
        if self.criterion != "squared_error":
            raise ValueError(f'criterion must be "squared_error"; got {self.criterion!r}.')
        if not _is_real(self.alpha) or not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be a float in (0, 1); got {self.alpha!r}.")
        init = self.init
        if not (init is None or (isinstance(init, str) and init == "zero")):
            need = "predict_proba" if isinstance(self, ClassifierMixin) else "predict"
            if isinstance(init, str) or not (hasattr(init, "fit") and hasattr(init, need)):
                raise ValueError(f'init must be None, "zero" or an estimator with fit and {need}; got {init!r}.')
        return dict(
            max_depth=self.max_depth,
            min_samples_split=_count(self.min_samples_split, n, "min_samples_split", 2, False),
            min_samples_leaf=_count(self.min_samples_leaf, n, "min_samples_leaf", 1, True),
            max_features=_max_features(self.max_features, p),
        )

    # -- hooks set by the subclasses
    @abc.abstractmethod
    def _make_loss(self) -> _Loss:
        """The loss object named by ``self.loss``."""

    @abc.abstractmethod
    def _encode_y(self, y, sample_weight) -> np.ndarray:
        """Targets as floats (class indices for a classifier), setting ``classes_`` where there are classes."""

    @abc.abstractmethod
    def _init_from_estimator(self, X32: np.ndarray) -> np.ndarray:
        """Raw scores $F_0(x)$ from a user-given ``init`` estimator, shape (n, n_outputs)."""

    # -- fitting
    def fit(self, X, y, sample_weight=None):
        """Fit ``n_estimators`` stages (``n_trees_per_iteration_`` trees each) on ``(X, y)``."""
        weighted = sample_weight is not None
        X, y = validate_data(self, X, y, dtype=np.float32, order="C", y_numeric=not isinstance(self, ClassifierMixin))
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not w.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        y = self._encode_y(y, w)
        tree_params = self._check_params(X.shape[0], X.shape[1])
        self.max_features_ = tree_params["max_features"]
        loss = self._make_loss()
        self._loss = loss
        n, K = X.shape[0], loss.n_outputs
        self.n_trees_per_iteration_ = K
        rng = check_random_state(self.random_state)

        # F_0
        if self.init is None:
            self.init_ = None
            self._init_raw = loss.constant(y, w, weighted)  # (K,)
            raw = np.tile(self._init_raw, (n, 1))  # (n, K)
        elif isinstance(self.init, str):
            self.init_ = "zero"
            self._init_raw = np.zeros(K)
            raw = np.zeros((n, K))
        else:
            self.init_ = clone(self.init)
            try:
                self.init_.fit(X, y, sample_weight=w) if weighted else self.init_.fit(X, y)
            except TypeError as e:
                raise ValueError(f"the init estimator {type(self.init_).__name__} does not accept sample_weight") from e
            raw = self._init_from_estimator(X)

        M = self.n_estimators
        n_inbag = max(1, int(self.subsample * n))
        self.train_score_ = np.zeros(M)
        if self.subsample < 1.0:
            self.oob_scores_ = np.zeros(M)
            self.oob_improvement_ = np.zeros(M)
        trees: list[list[CartTree]] = []
        in_bag = np.ones(n, dtype=bool)
        for m in range(M):
            if self.subsample < 1.0:
                in_bag = np.zeros(n, dtype=bool)
                in_bag[rng.choice(n, n_inbag, replace=False)] = True
                if m == 0:
                    previous_oob = loss.score(y[~in_bag], raw[~in_bag], w[~in_bag]) if (~in_bag).any() else 0.0
            w_stage = w * in_bag
            loss.prepare_stage(y, raw, w)  # Huber's δ_m from all rows, in-bag or not
            r = loss.neg_gradient(y, raw)  # (n, K), fixed for all K trees of the stage
            stage = []
            for k in range(K):
                seed = int(rng.randint(0, np.iinfo(np.int32).max))
                tree = grow_cart(X, r[:, k], w_stage, criterion="squared_error", seed=seed, **tree_params)
                leaf = tree.apply(X)  # (n,)
                gamma = loss.leaf_values(k, leaf, tree.node_count, y, raw, r[:, k], w_stage)
                if gamma is not None:
                    value = tree.value.copy()
                    has_rows = ~np.isnan(gamma) & tree.is_leaf
                    value[has_rows, 0] = gamma[has_rows]
                    tree = dataclasses.replace(tree, value=value)
                raw[:, k] += self.learning_rate * tree.value[leaf, 0]
                stage.append(tree)
            trees.append(stage)
            if self.subsample < 1.0:
                self.train_score_[m] = loss.score(y[in_bag], raw[in_bag], w[in_bag])
                oob = ~in_bag
                self.oob_scores_[m] = loss.score(y[oob], raw[oob], w[oob]) if oob.any() else 0.0
                self.oob_improvement_[m] = previous_oob - self.oob_scores_[m]
                previous_oob = self.oob_scores_[m]
            else:
                self.train_score_[m] = loss.score(y, raw, w)
        if self.subsample < 1.0:
            self.oob_score_ = float(self.oob_scores_[-1])
        self.estimators_ = np.empty((M, K), dtype=object)
        for m, stage in enumerate(trees):
            for k, tree in enumerate(stage):
                self.estimators_[m, k] = tree
        self.n_estimators_ = M
        self._pack()
        return self

    def _pack(self) -> None:
        """Concatenate all trees into flat arrays for the compiled predictor."""
        flat = [t for t in self.estimators_.ravel()]
        sizes = np.array([t.node_count for t in flat], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._flat = dict(
            feature=np.concatenate([t.feature for t in flat]).astype(np.int64),
            threshold=np.concatenate([t.threshold for t in flat]).astype(np.float64),
            left=np.concatenate([t.left for t in flat]).astype(np.int64),
            right=np.concatenate([t.right for t in flat]).astype(np.int64),
            value=np.concatenate([t.value[:, 0] for t in flat]).astype(np.float64),
            roots=roots,
            columns=np.tile(np.arange(self.n_trees_per_iteration_, dtype=np.int64), self.estimators_.shape[0]),
        )

    # -- prediction
    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return validate_data(self, X, dtype=np.float32, order="C", reset=False)

    def _raw_init(self, X32: np.ndarray) -> np.ndarray:
        if self.init_ is None or isinstance(self.init_, str):
            return np.tile(self._init_raw, (X32.shape[0], 1)).astype(np.float64)
        return self._init_from_estimator(X32)

    def _raw_predict(self, X) -> np.ndarray:
        """$F_M(x)$ for every row: (n, n_trees_per_iteration_)."""
        X32 = self._validate_X(X)
        raw = np.ascontiguousarray(self._raw_init(X32))
        f = self._flat
        BK.predict_ensemble(X32, f["feature"], f["threshold"], f["left"], f["right"], f["value"], f["roots"],
                            f["columns"], float(self.learning_rate), raw)  # fmt: skip
        return raw

    def _staged_raw_predict(self, X) -> Iterator[np.ndarray]:
        """$F_m(x)$ after every stage $m = 1..M$."""
        X32 = self._validate_X(X)
        raw = self._raw_init(X32).copy()
        for stage in self.estimators_:
            for k, tree in enumerate(stage):
                raw[:, k] += self.learning_rate * tree.predict_value(X32)[:, 0]
            yield raw.copy()

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean over the trees of the (unnormalised) impurity decrease per feature, normalised to sum to one."""
        check_is_fitted(self, "estimators_")
        per_tree = [
            _unnormalised_importance(t, self.n_features_in_) for t in self.estimators_.ravel() if t.node_count > 1
        ]
        if not per_tree:
            return np.zeros(self.n_features_in_)
        mean = np.mean(per_tree, axis=0)
        return mean / mean.sum()


def _unnormalised_importance(tree: CartTree, p: int) -> np.ndarray:
    internal = np.flatnonzero(~tree.is_leaf)
    w, imp = tree.weighted_n_node_samples, tree.impurity
    lft, rgt = tree.left[internal], tree.right[internal]
    dec = w[internal] * imp[internal] - w[lft] * imp[lft] - w[rgt] * imp[rgt]
    return np.bincount(tree.feature[internal], weights=dec, minlength=p) / w[0]


def _count(value, n: int, name: str, low: int, open_right: bool) -> int:
    """An int count, or a fraction of ``n`` rounded up."""
    if _is_int(value):
        if value < low:
            raise ValueError(f"{name} must be an int >= {low} or a float fraction; got {value!r}.")
        return int(value)
    if _is_real(value):
        if not (0.0 < value and (value < 1.0 if open_right else value <= 1.0)):
            raise ValueError(f"{name} as a float must lie in (0, 1{')' if open_right else ']'}; got {value!r}.")
        return max(low, math.ceil(value * n))
    raise TypeError(f"{name} must be an int or a float; got {type(value).__name__}.")


def _max_features(value, p: int) -> int:
    if value is None:
        return p
    if value == "sqrt":
        return max(1, int(math.sqrt(p)))
    if value == "log2":
        return max(1, int(math.log2(p)))
    if _is_int(value) and 1 <= value <= p:
        return int(value)
    if _is_real(value) and not _is_int(value) and 0.0 < value <= 1.0:
        return max(1, int(value * p))
    raise ValueError(
        f'max_features must be None, "sqrt", "log2", an int in [1, {p}] or a float in (0, 1]; got {value!r}.'
    )


class GradientBoostingRegressor(RegressorMixin, _BaseGradientBoosting):
    """Gradient-boosted regression trees; ``loss`` in {"squared_error", "absolute_error", "huber"}.

    ``alpha`` is the quantile of $|y - F|$ used as the Huber threshold $\\delta$.  Learned attributes:
    ``estimators_`` ((n_estimators, 1) array of :class:`~shiyan.trees.cart.CartTree`), ``init_``, ``train_score_``,
    ``oob_scores_`` / ``oob_improvement_`` / ``oob_score_`` when ``subsample < 1``, ``feature_importances_``.
    """

    _losses = ("squared_error", "absolute_error", "huber")

    def __init__(
        self,
        loss: str = "squared_error",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        subsample: float = 1.0,
        criterion: str = "squared_error",
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_depth: int | None = 3,
        init=None,
        random_state=None,
        max_features=None,
        alpha: float = 0.9,
    ):
        self.loss = loss
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.subsample = subsample
        self.criterion = criterion
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.init = init
        self.random_state = random_state
        self.max_features = max_features
        self.alpha = alpha

    def _make_loss(self) -> _Loss:
        if self.loss == "huber":
            return _Huber(self.alpha)
        return _SquaredError() if self.loss == "squared_error" else _AbsoluteError()

    def _encode_y(self, y, sample_weight):
        return y.astype(np.float64)

    def _init_from_estimator(self, X32):
        return np.asarray(self.init_.predict(X32), dtype=np.float64).reshape(-1, 1)

    def predict(self, X) -> np.ndarray:
        """$F_M(x)$."""
        return self._raw_predict(X)[:, 0]

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        """$F_m(x)$ after each stage."""
        for raw in self._staged_raw_predict(X):
            yield raw[:, 0]


class GradientBoostingClassifier(ClassifierMixin, _BaseGradientBoosting):
    """Gradient-boosted classification trees with the log-loss (binary: one tree per stage; $K$ classes: $K$ trees).

    Learned attributes as in :class:`GradientBoostingRegressor`, plus ``classes_`` and ``n_classes_``.
    """

    _losses = ("log_loss",)

    def __init__(
        self,
        loss: str = "log_loss",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        subsample: float = 1.0,
        criterion: str = "squared_error",
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_depth: int | None = 3,
        init=None,
        random_state=None,
        max_features=None,
        alpha: float = 0.9,
    ):
        self.loss = loss
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.subsample = subsample
        self.criterion = criterion
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.init = init
        self.random_state = random_state
        self.max_features = max_features
        self.alpha = alpha

    def _encode_y(self, y, sample_weight):
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.n_classes_ = int(self.classes_.shape[0])
        present = np.count_nonzero(np.bincount(codes, weights=sample_weight, minlength=self.n_classes_))
        if present < 2:
            raise ValueError(
                f"y contains {present} class with positive sample_weight ({self.classes_!r}); at least 2 are needed."
            )
        return codes.astype(np.float64)

    def _make_loss(self) -> _Loss:
        return _BinomialLogLoss() if self.n_classes_ == 2 else _MultinomialLogLoss(self.n_classes_)

    def _init_from_estimator(self, X32):
        proba = np.clip(np.asarray(self.init_.predict_proba(X32), dtype=np.float64), _EPS, 1 - _EPS)
        if self.n_classes_ == 2:
            p1 = proba[:, 1]
            return np.log(p1 / (1 - p1)).reshape(-1, 1)
        log_p = np.log(proba)
        return log_p - log_p.mean(axis=1, keepdims=True)

    def decision_function(self, X) -> np.ndarray:
        """Raw scores $F_M(x)$: shape (n,) for two classes, (n, K) otherwise."""
        raw = self._raw_predict(X)
        return raw[:, 0] if self.n_classes_ == 2 else raw

    def staged_decision_function(self, X) -> Iterator[np.ndarray]:
        for raw in self._staged_raw_predict(X):
            yield raw[:, 0] if self.n_classes_ == 2 else raw

    def _proba(self, raw: np.ndarray) -> np.ndarray:
        if self.n_classes_ == 2:
            p1 = expit(raw[:, 0])
            return np.column_stack([1 - p1, p1])
        return softmax(raw, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """$\\sigma(F)$ (two classes) or $\\operatorname{softmax}(F)$: (n, n_classes)."""
        return self._proba(self._raw_predict(X))

    def _decide(self, raw: np.ndarray) -> np.ndarray:
        codes = (raw[:, 0] >= 0).astype(np.int64) if self.n_classes_ == 2 else np.argmax(raw, axis=1)
        return self.classes_[codes]

    def predict(self, X) -> np.ndarray:
        """The class with the largest score (two classes: $F \\ge 0$ gives ``classes_[1]``)."""
        return self._decide(self._raw_predict(X))

    def staged_predict_proba(self, X) -> Iterator[np.ndarray]:
        for raw in self._staged_raw_predict(X):
            yield self._proba(raw)

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        for raw in self._staged_raw_predict(X):
            yield self._decide(raw)
