r"""AdaBoost: SAMME for $K$ classes (Zhu, Zou, Rosset & Hastie, 2009) and AdaBoost.R2 for regression (Drucker, 1997).

**SAMME.**  Start from the weights $D_1(i) = w_i / \sum_l w_l$.  At round $m = 1, \dots, M$:

1. fit a weak learner $h_m$ (by default a CART stump) to the data weighted by $D_m$;
2. its weighted error $e_m = \sum_i D_m(i)\, \mathbf{1}[h_m(x_i) \ne y_i]$ (stop if $e_m \ge 1 - 1/K$, i.e. no
   better than guessing; stop after this round if $e_m = 0$);
3. its vote $\alpha_m = \nu \left(\ln \frac{1 - e_m}{e_m} + \ln (K - 1)\right)$ ($\nu$ = ``learning_rate``);
4. re-weight the mistakes, $D_{m+1}(i) \propto D_m(i) \exp\big(\alpha_m \mathbf{1}[h_m(x_i) \ne y_i]\big)$.

The classifier is $H(x) = \arg\max_k \sum_m \alpha_m \mathbf{1}[h_m(x) = k]$.  For $K = 2$ the $\ln(K-1)$ term
vanishes and $\alpha_m = \ln\frac{1-e_m}{e_m}$ is twice the classical binary vote $\frac12 \ln\frac{1-e_m}{e_m}$
(Freund & Schapire) -- the same votes up to a common factor, so the same classifier and, after normalisation, the
same weights $D_m$.  In the binary case the training error then obeys

$$\frac1n \sum_i \mathbf{1}[H(x_i) \ne y_i] \le \prod_{m=1}^{M} 2\sqrt{e_m (1 - e_m)},$$

which goes to zero geometrically as long as every $e_m \le \tfrac12 - \gamma$.

``decision_function`` returns the symmetric scores $f_k(x) = \sum_m \alpha_m \left(\mathbf{1}[h_m(x) = k] -
\tfrac{1}{K-1}\mathbf{1}[h_m(x) \ne k]\right) / \sum_m \alpha_m$ (for two classes, $f_1 - f_0$), and
``predict_proba`` is $\operatorname{softmax}(f / (K - 1))$, as in scikit-learn.

**AdaBoost.R2.**  At round $m$ draw a bootstrap sample with probabilities $D_m$, fit a regression tree $h_m$ to it,
and measure on all rows the relative loss $L_i = |h_m(x_i) - y_i| / \max_l |h_m(x_l) - y_l|$ (``loss="linear"``),
$L_i^2$ (``"square"``) or $1 - e^{-L_i}$ (``"exponential"``).  With $\bar L_m = \sum_i D_m(i) L_i$ (stop if
$\bar L_m \ge \tfrac12$) and $\beta_m = \bar L_m / (1 - \bar L_m)$, the vote is $\alpha_m = \nu \ln(1/\beta_m)$
and $D_{m+1}(i) \propto D_m(i)\, \beta_m^{\nu (1 - L_i)}$ (rows predicted well lose weight).  The prediction is the
$\alpha$-weighted median of $h_1(x), \dots, h_M(x)$: the smallest $h_m(x)$ whose cumulative vote reaches half the
total.

The base learner is any estimator accepting ``sample_weight`` (classification) and defaults to
:class:`shiyan.trees.DecisionTreeClassifier` ``(max_depth=1)`` / :class:`shiyan.trees.DecisionTreeRegressor`
``(max_depth=3)``.  Random numbers come from ``random_state`` in the same order as scikit-learn (one integer drawn
for the base learner's ``random_state``, then the bootstrap), so the two implementations fit the same ensembles
when the trees have no split ties.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Iterator

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state, validate_data

from shiyan.trees.cart import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = ["AdaBoostClassifier", "AdaBoostRegressor", "samme_alpha", "training_error_bound"]


def samme_alpha(error: np.ndarray | float, n_classes: int, learning_rate: float = 1.0) -> np.ndarray:
    r"""$\alpha = \nu\left(\ln\frac{1-e}{e} + \ln(K-1)\right)$ for weighted errors $e \in (0, 1 - 1/K)$."""
    e = np.asarray(error, dtype=np.float64)
    return learning_rate * (np.log((1.0 - e) / e) + math.log(n_classes - 1.0))


def training_error_bound(errors: np.ndarray) -> np.ndarray:
    r"""Running bound $\prod_{s \le m} 2\sqrt{e_s(1-e_s)}$ on the binary training error after each round $m$."""
    e = np.asarray(errors, dtype=np.float64)
    return np.cumprod(2.0 * np.sqrt(e * (1.0 - e)))


def _check_common(est) -> None:
    if not isinstance(est.n_estimators, numbers.Integral) or isinstance(est.n_estimators, bool) or est.n_estimators < 1:
        raise ValueError(f"n_estimators must be an int >= 1; got {est.n_estimators!r}.")
    lr = est.learning_rate
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"learning_rate must be a finite float > 0; got {lr!r}.")


def _spawn(base, rng: np.random.RandomState):
    """A fresh copy of the base learner; an int is drawn for every ``*random_state`` parameter it has."""
    est = clone(base)
    seeds = {
        k: int(rng.randint(np.iinfo(np.int32).max))
        for k in sorted(est.get_params(deep=True))
        if k.endswith("random_state")
    }
    if seeds:
        est.set_params(**seeds)
    return est


class AdaBoostClassifier(ClassifierMixin, BaseEstimator):
    """SAMME AdaBoost.  Learned: ``estimators_``, ``estimator_weights_`` ($\\alpha_m$), ``estimator_errors_``
    ($e_m$), ``classes_``, ``n_classes_``, ``feature_importances_`` (length-``n_estimators`` arrays as in
    scikit-learn: rounds never reached keep weight 0 and error 1)."""

    def __init__(self, estimator=None, n_estimators: int = 50, learning_rate: float = 1.0, random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _base(self):
        base = DecisionTreeClassifier(max_depth=1) if self.estimator is None else self.estimator
        if not hasattr(base, "fit") or "sample_weight" not in inspect.signature(base.fit).parameters:
            raise ValueError(f"estimator must be a classifier whose fit accepts sample_weight; got {base!r}.")
        return base

    def fit(self, X, y, sample_weight=None) -> AdaBoostClassifier:
        _check_common(self)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, copy=True, ensure_non_negative=True)
        if not w.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        self.classes_, codes = np.unique(y, return_inverse=True)
        K = self.n_classes_ = int(self.classes_.shape[0])
        if K < 2:
            raise ValueError(f"y contains one class ({self.classes_[0]!r}); AdaBoostClassifier needs at least 2.")
        base = self._base()
        rng = check_random_state(self.random_state)
        w /= w.sum()  # D_1
        zero = w == 0.0
        eps = np.finfo(np.float64).eps
        M = self.n_estimators
        self.estimators_ = []
        self.estimator_weights_ = np.zeros(M)
        self.estimator_errors_ = np.ones(M)
        for m in range(M):
            w = np.where(zero, 0.0, np.maximum(w, eps))  # keep every live weight representable
            h = _spawn(base, rng).fit(X, codes, sample_weight=w)
            miss = np.asarray(h.predict(X)) != codes  # (n,) mistakes of h_m
            e = float(np.average(miss, weights=w))  # e_m
            if e <= 0.0:  # a perfect learner: keep it with vote 1 and stop
                self.estimators_.append(h)
                self.estimator_weights_[m], self.estimator_errors_[m] = 1.0, 0.0
                break
            if e >= 1.0 - 1.0 / K:  # no better than chance
                if not self.estimators_:
                    raise ValueError(
                        f"the first weak learner has weighted error {e:.3f} >= 1 - 1/K; estimator is too weak."
                    )
                break
            alpha = float(samme_alpha(e, K, self.learning_rate))
            self.estimators_.append(h)
            self.estimator_weights_[m], self.estimator_errors_[m] = alpha, e
            if m == M - 1:
                break
            w = np.exp(np.log(w, where=~zero, out=np.full_like(w, -np.inf)) + alpha * miss)  # D_{m+1} before norm
            total = w.sum()
            if not np.isfinite(total):
                warnings.warn(f"sample weights overflowed at round {m}; stopping early.", RuntimeWarning, stacklevel=2)
                break
            if total <= 0:
                break
            w /= total
        return self

    # -- prediction
    def _votes(self, X) -> Iterator[tuple[np.ndarray, float]]:
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        for h, alpha in zip(self.estimators_, self.estimator_weights_, strict=False):
            yield np.asarray(h.predict(X)), float(alpha)

    def _scores(self, pred: np.ndarray, alpha: float) -> np.ndarray:
        K = self.n_classes_
        hit = pred[:, None] == np.arange(K)[None, :]  # (n, K)
        return np.where(hit, alpha, -alpha / (K - 1))

    def _to_decision(self, total: np.ndarray, norm: float) -> np.ndarray:
        f = total / norm
        return f[:, 1] - f[:, 0] if self.n_classes_ == 2 else f

    def staged_decision_function(self, X) -> Iterator[np.ndarray]:
        """The decision function after rounds $1, 2, \\dots$."""
        total, norm = None, 0.0
        for pred, alpha in self._votes(X):
            s = self._scores(pred, alpha)
            total = s if total is None else total + s
            norm += alpha
            yield self._to_decision(total, norm)

    def decision_function(self, X) -> np.ndarray:
        """Symmetric SAMME scores (n, K), or $f_1 - f_0$ (n,) for two classes."""
        votes = list(self._votes(X))
        total = sum(self._scores(pred, alpha) for pred, alpha in votes)
        return self._to_decision(total, float(self.estimator_weights_.sum()))

    def _decide(self, decision: np.ndarray) -> np.ndarray:
        if self.n_classes_ == 2:
            return self.classes_[(decision > 0).astype(np.int64)]
        return self.classes_[np.argmax(decision, axis=1)]

    def _proba(self, decision: np.ndarray) -> np.ndarray:
        if self.n_classes_ == 2:
            return softmax(np.column_stack([-decision, decision]) / 2.0, axis=1)
        return softmax(decision / (self.n_classes_ - 1), axis=1)

    def predict(self, X) -> np.ndarray:
        return self._decide(self.decision_function(X))

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        for d in self.staged_decision_function(X):
            yield self._decide(d)

    def predict_proba(self, X) -> np.ndarray:
        """$\\operatorname{softmax}(f / (K-1))$: (n, K)."""
        return self._proba(self.decision_function(X))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Vote-weighted mean of the base learners' importances."""
        check_is_fitted(self, "estimators_")
        alphas = self.estimator_weights_[: len(self.estimators_)]
        imp = sum(a * h.feature_importances_ for h, a in zip(self.estimators_, alphas, strict=True))
        return imp / alphas.sum()


class AdaBoostRegressor(RegressorMixin, BaseEstimator):
    """AdaBoost.R2 with ``loss`` in {"linear", "square", "exponential"}; prediction = vote-weighted median.

    Learned: ``estimators_``, ``estimator_weights_`` ($\\alpha_m = \\nu \\ln(1/\\beta_m)$), ``estimator_errors_``
    ($\\bar L_m$), ``feature_importances_``."""

    _losses = ("linear", "square", "exponential")

    def __init__(
        self,
        estimator=None,
        n_estimators: int = 50,
        learning_rate: float = 1.0,
        loss: str = "linear",
        random_state=None,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.loss = loss
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None) -> AdaBoostRegressor:
        _check_common(self)
        if self.loss not in self._losses:
            raise ValueError(f"loss must be one of {self._losses}; got {self.loss!r}.")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = y.astype(np.float64)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, copy=True, ensure_non_negative=True)
        if not w.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        base = DecisionTreeRegressor(max_depth=3) if self.estimator is None else self.estimator
        if not hasattr(base, "fit") or not hasattr(base, "predict"):
            raise ValueError(f"estimator must be a regressor with fit and predict; got {base!r}.")
        rng = check_random_state(self.random_state)
        n = X.shape[0]
        w /= w.sum()
        zero = w == 0.0
        live = ~zero
        eps = np.finfo(np.float64).eps
        M = self.n_estimators
        self.estimators_ = []
        self.estimator_weights_ = np.zeros(M)
        self.estimator_errors_ = np.ones(M)
        for m in range(M):
            w = np.where(zero, 0.0, np.maximum(w, eps))
            h = _spawn(base, rng)
            idx = rng.choice(np.arange(n), size=n, replace=True, p=w)  # bootstrap with probabilities D_m
            h.fit(X[idx], y[idx])
            L = np.abs(np.asarray(h.predict(X), dtype=np.float64) - y)[live]  # (n_live,)
            L_max = L.max()
            if L_max != 0:
                L = L / L_max
            if self.loss == "square":
                L = L**2
            elif self.loss == "exponential":
                L = 1.0 - np.exp(-L)
            err = float((w[live] * L).sum())  # \bar L_m
            if err <= 0.0:
                self.estimators_.append(h)
                self.estimator_weights_[m], self.estimator_errors_[m] = 1.0, 0.0
                break
            if err >= 0.5:
                if not self.estimators_:
                    self.estimators_.append(h)  # keep one learner so that the model can still predict
                break
            beta = err / (1.0 - err)
            self.estimators_.append(h)
            self.estimator_weights_[m] = self.learning_rate * math.log(1.0 / beta)
            self.estimator_errors_[m] = err
            if m == M - 1:
                break
            w[live] *= np.power(beta, (1.0 - L) * self.learning_rate)
            total = w.sum()
            if not np.isfinite(total) or total <= 0:
                break
            w /= total
        return self

    def _all_predictions(self, X, limit: int | None = None) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.column_stack([np.asarray(h.predict(X), dtype=np.float64) for h in self.estimators_[:limit]])

    def _weighted_median(self, preds: np.ndarray) -> np.ndarray:
        """Per row, the smallest prediction whose cumulative vote reaches half the total vote."""
        n, m = preds.shape
        order = np.argsort(preds, axis=1)  # (n, m)
        cdf = np.cumsum(self.estimator_weights_[:m][order], axis=1)  # (n, m)
        pick = np.argmax(cdf >= 0.5 * cdf[:, -1:], axis=1)  # first index reaching half
        rows = np.arange(n)
        return preds[rows, order[rows, pick]]

    def predict(self, X) -> np.ndarray:
        return self._weighted_median(self._all_predictions(X))

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        preds = self._all_predictions(X)
        for m in range(1, preds.shape[1] + 1):
            yield self._weighted_median(preds[:, :m])

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        alphas = self.estimator_weights_[: len(self.estimators_)]
        imp = sum(a * h.feature_importances_ for h, a in zip(self.estimators_, alphas, strict=True))
        return imp / alphas.sum()
