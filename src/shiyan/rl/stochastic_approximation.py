r"""Stochastic approximation (Chapter 6 of Shiyu Zhao's book): incremental mean, Robbins--Monro, SGD.

Glossary (code name: symbol)

* ``w``: the estimate $w_k$; ``w1``: the start $w_1$; ``a``: step sizes $a_k$ (also $\alpha_k$);
* ``g``: the unknown function $g(w)$ whose root $w^*$ is sought; ``noise``: $\eta_k$;
* ``x``: samples $x_k$ of a random variable $X$.

**Incremental mean.** The average of $x_1, \dots, x_k$ is updated one sample at a time,

$$w_{k+1} = w_k - \frac{1}{k}\,(w_k - x_k), \qquad w_{k+1} = \frac{1}{k}\sum_{i=1}^{k} x_i ,$$

so no sample needs to be stored (:func:`incremental_mean`).

**Robbins--Monro (RM).** To solve $g(w) = 0$ when only noisy values $\tilde g(w, \eta) = g(w) + \eta$ can
be observed, iterate

$$w_{k+1} = w_k - a_k\, \tilde g(w_k, \eta_k)$$

(:func:`robbins_monro`). The RM theorem: $w_k \to w^*$ almost surely if (a) $0 < c_1 \le \nabla_w g(w)
\le c_2$, (b) $\sum_k a_k = \infty$ and $\sum_k a_k^2 < \infty$, (c) the noise has zero conditional mean
and bounded conditional variance. $a_k = 1/k$ satisfies (b). Each half of (b) is needed:
$\sum a_k^2 < \infty$ makes the steps shrink so the noise is averaged out, and $\sum a_k = \infty$ lets
the iterates travel any distance. With $\sum_k a_k < \infty$ (e.g. $a_k = 1/k^2$) and a bounded
$|\tilde g| \le G$, $|w_\infty - w_1| \le G \sum_k a_k$: from a start further than that the root is never
reached (:func:`step_sizes` builds both kinds of schedule; :func:`reachable_distance` is that bound).
The book's examples are $g(w) = \tanh(w - 1)$ (root 1) and $g(w) = w^3 - 5$ (root $5^{1/3}$); the
second violates (a) ($\nabla g = 3w^2$ vanishes at 0 and is unbounded), so large steps far from the
root overshoot and blow up while small steps ($a_k = c/k$ with small $c$) still converge.

**SGD as a special case.** Minimising $J(w) = \mathbb E[f(w, X)]$ means solving $\nabla J(w) = 0$;
the sample gradient $\nabla_w f(w, x_k) = \nabla J(w_k) + \eta_k$ is a noisy observation of it, so SGD

$$w_{k+1} = w_k - \alpha_k \nabla_w f(w_k, x_k)$$

is RM applied to $g = \nabla J$ (:func:`sgd`; mini-batches average $\nabla_w f$ over $m$ samples).
For mean estimation, $f(w, x) = \tfrac12\|w - x\|^2$, so $\nabla_w f = w - x$ and SGD with
$\alpha_k = 1/k$ is exactly the incremental mean (:func:`sgd_mean_estimation`).

All functions are pure; randomness only enters through an explicit ``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "g_cubic",
    "g_tanh",
    "incremental_mean",
    "reachable_distance",
    "robbins_monro",
    "sgd",
    "sgd_mean_estimation",
    "step_sizes",
]

ROOT_TANH = 1.0
"""Root of $\\tanh(w - 1)$."""
ROOT_CUBIC = 5.0 ** (1.0 / 3.0)
"""Root of $w^3 - 5$."""


def _check_positive_int(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer; got {n!r}")
    return int(n)


def _check_finite(x: float, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not np.isfinite(x):
        raise ValueError(f"{name} must be a finite number; got {x!r}")
    return float(x)


def _check_steps(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"a must be a non-empty 1-D array of finite non-negative step sizes; got shape {a.shape}")
    return a


# -- the book's example functions ----------------------------------------------------------------
def g_tanh(w: np.ndarray) -> np.ndarray:
    r"""$g(w) = \tanh(w - 1)$, root $w^* = 1$, $0 < \nabla g \le 1$ near the root."""
    return np.tanh(np.asarray(w, dtype=np.float64) - 1.0)


def g_cubic(w: np.ndarray) -> np.ndarray:
    r"""$g(w) = w^3 - 5$, root $w^* = 5^{1/3}$."""
    w = np.asarray(w, dtype=np.float64)
    return w**3 - 5.0


# -- schedules -----------------------------------------------------------------------------------
def step_sizes(n: int, scale: float = 1.0, power: float = 1.0) -> np.ndarray:
    r"""$a_k = c / k^p$ for $k = 1, \dots, n$ (``scale`` $= c$, ``power`` $= p$), shape (n,).

    $\sum a_k = \infty$ iff $p \le 1$ and $\sum a_k^2 < \infty$ iff $p > 1/2$: the RM conditions hold
    for $p \in (1/2, 1]$; $p = 2$ gives a summable schedule; $p = 0$ a constant step.
    """
    n = _check_positive_int(n, "n")
    scale = _check_finite(scale, "scale")
    power = _check_finite(power, "power")
    if scale <= 0:
        raise ValueError(f"scale must be positive; got {scale}")
    k = np.arange(1, n + 1, dtype=np.float64)
    return scale / k**power


def reachable_distance(a: np.ndarray, bound: float) -> float:
    r"""$G \sum_k a_k$: no RM run with steps $a$ and observations $|\tilde g| \le G$ moves farther from $w_1$."""
    a = _check_steps(a)
    bound = _check_finite(bound, "bound")
    if bound < 0:
        raise ValueError(f"bound must be non-negative; got {bound}")
    return float(bound * a.sum())


# -- algorithms ----------------------------------------------------------------------------------
def incremental_mean(x: np.ndarray) -> np.ndarray:
    r"""Running means by $w_{k+1} = w_k - \frac1k (w_k - x_k)$: row $k$ is the mean of $x_1..x_{k+1}$.

    ``x`` has shape (n,) or (n, d) (vector samples); the output has the same shape.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite non-empty array of shape (n,) or (n, d); got {x.shape}")
    out = np.empty_like(x)
    w = np.zeros(x.shape[1:])
    for k in range(1, x.shape[0] + 1):
        w = w - (w - x[k - 1]) / k
        out[k - 1] = w
    return out


def robbins_monro(
    g: Callable[[np.ndarray], np.ndarray],
    w1: float | np.ndarray,
    a: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    noise_std: float = 0.0,
    n_runs: int = 1,
) -> np.ndarray:
    r"""Run $w_{k+1} = w_k - a_k \tilde g(w_k, \eta_k)$ with $\tilde g = g(w) + \eta$, $\eta \sim \mathcal N(0, \sigma^2)$.

    Parameters
    ----------
    g:
        Vectorised function $g$ (applied elementwise to all runs at once).
    w1:
        Start $w_1$: a scalar, or one start per run, shape (n_runs,).
    a:
        Step sizes $a_1, \dots, a_n$, shape (n,).
    rng:
        Generator of the noise (required when ``noise_std > 0``).
    noise_std:
        $\sigma$ of the Gaussian observation noise.
    n_runs:
        Independent runs, simulated together.

    Returns the iterates $w_1, \dots, w_{n+1}$, shape (n + 1, n_runs). Runs that overflow become
    ``inf``/``nan`` (the divergence is the measurement), without warnings.
    """
    a = _check_steps(a)
    n_runs = _check_positive_int(n_runs, "n_runs")
    noise_std = _check_finite(noise_std, "noise_std")
    if noise_std < 0:
        raise ValueError(f"noise_std must be non-negative; got {noise_std}")
    if noise_std > 0 and rng is None:
        raise ValueError("rng is required when noise_std > 0")
    w = np.broadcast_to(np.asarray(w1, dtype=np.float64), (n_runs,)).copy()  # (n_runs,)
    if not np.all(np.isfinite(w)):
        raise ValueError("w1 must be finite")
    out = np.empty((a.size + 1, n_runs))
    out[0] = w
    eta = rng.normal(0.0, noise_std, size=(a.size, n_runs)) if noise_std > 0 else np.zeros((a.size, n_runs))
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(a.size):
            w = w - a[k] * (g(w) + eta[k])
            out[k + 1] = w
    return out


def sgd(
    grad_f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    w1: np.ndarray,
    x: np.ndarray,
    alpha: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    batch_size: int = 1,
) -> np.ndarray:
    r"""(Mini-batch) SGD $w_{k+1} = w_k - \alpha_k \frac1m \sum_{j \in \mathcal I_k} \nabla_w f(w_k, x_j)$.

    Parameters
    ----------
    grad_f:
        ``grad_f(w, batch)`` returns $\frac1m\sum_{x \in \text{batch}} \nabla_w f(w, x)$ (shape of ``w``).
    w1:
        Start $w_1$, shape (d,).
    x:
        The data set $\{x_i\}_{i=1}^N$, shape (N, ...).
    alpha:
        Step sizes $\alpha_1, \dots, \alpha_n$, shape (n,).
    rng:
        Draws each batch $\mathcal I_k$ ($m$ indices uniformly with replacement). With
        ``rng=None`` and ``batch_size=1`` the samples are used in order, $x_k$ at step $k$
        (requires $n \le N$): the stream form of the book's mean-estimation example.
    batch_size:
        $m$.

    Returns the iterates $w_1, \dots, w_{n+1}$, shape (n + 1, d).
    """
    alpha = _check_steps(alpha)
    batch_size = _check_positive_int(batch_size, "batch_size")
    w = np.asarray(w1, dtype=np.float64).copy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite non-empty array of samples; got shape {x.shape}")
    if rng is None:
        if batch_size != 1 or alpha.size > x.shape[0]:
            raise ValueError("rng=None streams x in order: it needs batch_size == 1 and len(alpha) <= len(x)")
        batches = np.arange(alpha.size)[:, None]  # (n, 1)
    else:
        batches = rng.integers(0, x.shape[0], size=(alpha.size, batch_size))  # (n, m)
    out = np.empty((alpha.size + 1, *w.shape))
    out[0] = w
    for k in range(alpha.size):
        w = w - alpha[k] * grad_f(w, x[batches[k]])
        out[k + 1] = w
    return out


def _mean_estimation_gradient(w: np.ndarray, batch: np.ndarray) -> np.ndarray:
    r"""$\frac1m \sum_j \nabla_w \tfrac12\|w - x_j\|^2 = w - \bar x$."""
    return w - batch.mean(axis=0)


def sgd_mean_estimation(
    x: np.ndarray,
    alpha: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    *,
    batch_size: int = 1,
    w1: np.ndarray | None = None,
) -> np.ndarray:
    r"""SGD on $J(w) = \mathbb E[\tfrac12\|w - X\|^2]$ (minimiser $\mathbb E[X]$).

    ``x`` has shape (N, d). ``alpha`` defaults to $1/k$ over one pass, in which case the streamed
    run (``rng=None``) reproduces :func:`incremental_mean` exactly (from any ``w1``: the first step
    has $\alpha_1 = 1$). Returns iterates of shape (n + 1, d).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, d); got {x.shape}")
    if alpha is None:
        alpha = step_sizes(x.shape[0])
    w = np.zeros(x.shape[1]) if w1 is None else np.asarray(w1, dtype=np.float64)
    if w.shape != (x.shape[1],):
        raise ValueError(f"w1 must have shape ({x.shape[1]},); got {w.shape}")
    return sgd(_mean_estimation_gradient, w, x, alpha, rng, batch_size=batch_size)
