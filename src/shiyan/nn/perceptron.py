r"""The perceptron (Rosenblatt 1958) and what its bias does.

A perceptron outputs $\hat y = \operatorname{sign}(w^\top x + b)$ with labels $y \in \{-1, +1\}$.
The threshold unit fires when $w^\top x \ge \theta$; writing $b = -\theta$ turns the fixed threshold
into a learnable **bias**. Without it every decision boundary $\{x : w^\top x = 0\}$ passes through the
origin, so data whose classes are split by a hyperplane away from the origin cannot be fitted at
all -- in one dimension with positive inputs, $\operatorname{sign}(w x)$ gives every sample the same label.

**The bias is a weight on a constant input.** With $\tilde x = (x, 1)$ and $\tilde w = (w, b)$,
$w^\top x + b = \tilde w^\top \tilde x$, so a perceptron with bias *is* a bias-free perceptron on
augmented inputs; :func:`fit_perceptron` implements it that way and the tests check the two agree.

**Learning rule.** Visit the samples in order; on a mistake, $y_i\,\tilde w^\top \tilde x_i \le 0$,
update $\tilde w \leftarrow \tilde w + \eta\, y_i \tilde x_i$. For linearly separable data with a unit
separator $u$ ($\lVert u \rVert = 1$) of margin $\gamma = \min_i y_i u^\top \tilde x_i > 0$ and radius
$R = \max_i \lVert \tilde x_i \rVert$, **Novikoff's theorem** bounds the number of mistakes (starting
from $\tilde w = 0$) by $(R/\gamma)^2$, whatever $\eta > 0$ -- see :func:`novikoff_bound`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PerceptronFit:
    """Result of :func:`fit_perceptron`."""

    w: np.ndarray
    """Weights $w$, shape (d,)."""
    b: float
    """Bias $b$ (0.0 when fitted without one)."""
    mistakes: int
    """Total number of updates made."""
    mistakes_per_epoch: np.ndarray
    """Updates in each pass over the data; a trailing 0 means it converged."""
    converged: bool
    """True when a whole pass made no mistake."""

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return _check_X(X, "X", self.w.shape[0]) @ self.w + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.decision_function(X) > 0, 1, -1)


def _check_X(X: object, name: str, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features); got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{name} has {X.shape[1]} features; the perceptron was fitted with {d}")
    return X


def _check_y(y: object, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X; got {y.shape}")
    if not np.isin(y, (-1, 1)).all():
        raise ValueError("y must hold labels -1 and +1 only")
    return y.astype(np.float64)


def augment(X: np.ndarray) -> np.ndarray:
    r"""$\tilde x = (x, 1)$: the constant input whose weight is the bias."""
    X = _check_X(X, "X")
    return np.hstack([X, np.ones((X.shape[0], 1))])


def fit_perceptron(
    X: np.ndarray, y: np.ndarray, *, bias: bool = True, lr: float = 1.0, max_epochs: int = 100
) -> PerceptronFit:
    r"""Rosenblatt's rule from $\tilde w = 0$, samples in the given order (shuffle them beforehand with
    your own generator if you want a random order)."""
    X = _check_X(X, "X")
    y = _check_y(y, X.shape[0])
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive int; got {max_epochs!r}")
    Xt = augment(X) if bias else X  # (n, d+1) or (n, d)
    w = np.zeros(Xt.shape[1])
    per_epoch = []
    for _ in range(max_epochs):
        mistakes = 0
        for x_i, y_i in zip(Xt, y):
            if y_i * (w @ x_i) <= 0:  # a mistake (or on the boundary)
                w += lr * y_i * x_i
                mistakes += 1
        per_epoch.append(mistakes)
        if mistakes == 0:
            break
    return PerceptronFit(
        w=w[: X.shape[1]].copy(),
        b=float(w[-1]) if bias else 0.0,
        mistakes=int(sum(per_epoch)),
        mistakes_per_epoch=np.asarray(per_epoch, dtype=np.int64),
        converged=per_epoch[-1] == 0,
    )


def margin(X: np.ndarray, y: np.ndarray, u: np.ndarray) -> float:
    r"""$\gamma(u) = \min_i y_i\,u^\top x_i / \lVert u \rVert$ (negative when $u$ does not separate)."""
    X = _check_X(X, "X")
    y = _check_y(y, X.shape[0])
    u = np.asarray(u, dtype=np.float64)
    if u.shape != (X.shape[1],):
        raise ValueError(f"u must have shape ({X.shape[1]},); got {u.shape}")
    norm = np.linalg.norm(u)
    if norm == 0:
        raise ValueError("u must be non-zero")
    return float(np.min(y * (X @ u)) / norm)


def novikoff_bound(X: np.ndarray, y: np.ndarray, u: np.ndarray) -> float:
    r"""$(R/\gamma(u))^2$ with $R = \max_i \lVert x_i \rVert$: the most mistakes the perceptron can make on
    ``X`` (already augmented if it has a bias) when ``u`` separates the data; ``inf`` when it does not."""
    gamma = margin(X, y, u)
    if gamma <= 0:
        return float("inf")
    R = float(np.max(np.linalg.norm(_check_X(X, "X"), axis=1)))
    return (R / gamma) ** 2
