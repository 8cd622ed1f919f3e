r"""Discrete metrics as training signals: smooth surrogates (soft accuracy, soft-F1) and REINFORCE.

Accuracy and F1 are computed from hard predictions $\hat y = \arg\max_k p_k$, a step function of the
model's outputs: its gradient is zero almost everywhere. Two ways around it:

**Smooth surrogates.** Replace the indicator $[\hat y_i = k]$ by the probability $p_{ik}$.

* Soft accuracy (a smoothed arg-max): $\tilde A = \frac1N \sum_i p_{i, y_i}$; with
  $p = \mathrm{softmax}(z/\tau)$ it tends to the accuracy as the temperature $\tau \to 0$.
* Soft-F1: with $y_i \in \{0, 1\}$ and $p_i$ the predicted probability of the positive class,

$$TP = \sum_i p_i y_i,\quad FP = \sum_i p_i (1 - y_i),\quad FN = \sum_i (1 - p_i) y_i,\qquad
\widetilde{F_1} = \frac{2\,TP}{2\,TP + FP + FN} = \frac{2 \sum_i p_i y_i}{\sum_i p_i + \sum_i y_i}.$$

  Macro soft-F1 computes this per class $k$ from the columns $p_{\cdot k}$ and the one-hot targets
  and averages over the $K$ classes; micro soft-F1 sums $TP, FP, FN$ over classes first. The loss
  is $1 - \widetilde{F_1}$. When the probabilities are exactly one-hot, $\widetilde{F_1}$ *is* the F1
  score -- the surrogate is the metric extended to the inside of the simplex.

**REINFORCE** (Williams, 1992). Treat the model as a policy $\pi_\theta(\hat y) = \prod_i
p_\theta(\hat y_i \mid x_i)$ over whole prediction vectors and the batch metric $R(\hat y)$ as a
reward. The expected metric $J(\theta) = \mathbb{E}_{\hat y \sim \pi_\theta}[R(\hat y)]$ is smooth,
and the score-function identity gives an unbiased gradient from samples:

$$\nabla_\theta J = \mathbb{E}\big[(R(\hat y) - b)\, \nabla_\theta \log \pi_\theta(\hat y)\big]
\approx \frac1S \sum_{s=1}^S (R_s - b_s)\, \nabla_\theta \sum_i \log p_\theta(\hat y_{s,i} \mid x_i).$$

Any baseline $b_s$ that does not depend on sample $s$ keeps the estimate unbiased (because
$\mathbb{E}[\nabla \log \pi] = 0$) and can cut its variance. The leave-one-out baseline
$b_s = \frac{1}{S-1}\sum_{t \ne s} R_t$ uses the other samples; the plain mean over all $S$
samples including $s$ would bias the estimate by a factor $(S-1)/S$.

For tiny problems :func:`expected_metric` computes $J(\theta)$ exactly by enumerating all $K^N$
prediction vectors, so that autograd gives the exact $\nabla J$ -- the oracle for the estimator.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "ReinforceEstimate",
    "accuracy_hard",
    "binary_log_probs",
    "expected_metric",
    "f1_hard",
    "reinforce_surrogate",
    "soft_accuracy",
    "soft_confusion",
    "soft_f1",
    "soft_f1_loss",
]

_AVERAGES = ("binary", "macro", "micro")


def _check_probs(probs: torch.Tensor, name: str = "probs") -> None:
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor")
    if probs.dim() not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, K); got {tuple(probs.shape)}")
    if probs.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(f"{name} must lie in [0, 1]")


def _check_target(target: torch.Tensor, n: int, n_classes: int | None, name: str = "target") -> None:
    if not isinstance(target, torch.Tensor) or target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer torch.Tensor of class indices")
    if target.dim() != 1 or target.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got {tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or (n_classes is not None and int(target.max()) >= n_classes)):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes})")


def soft_accuracy(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""$\tilde A = \frac1N\sum_i p_{i, y_i}$ for ``probs`` (N, K) (rows on the simplex) and integer
    ``target`` (N,). Use ``probs = softmax(logits / tau, -1)``; as $\tau \to 0$ this is the accuracy."""
    _check_probs(probs)
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, K); got {tuple(probs.shape)}")
    _check_target(target, probs.shape[0], probs.shape[1])
    return probs.gather(1, target.view(-1, 1)).mean()  # mean_i p_{i, y_i}


def soft_confusion(probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Soft counts $TP = \sum p y$, $FP = \sum p(1-y)$, $FN = \sum (1-p) y$.

    Binary: ``probs`` (N,) = probability of class 1, ``target`` (N,) in {0, 1}; returns scalars.
    Multi-class: ``probs`` (N, K), ``target`` (N,) class indices; returns one count per class (K,).
    """
    _check_probs(probs)
    n = probs.shape[0]
    if probs.dim() == 1:
        _check_target(target, n, 2)
        y = target.to(probs.dtype)  # (N,)
        return (probs * y).sum(), (probs * (1 - y)).sum(), ((1 - probs) * y).sum()
    _check_target(target, n, probs.shape[1])
    y = F.one_hot(target, probs.shape[1]).to(probs.dtype)  # (N, K)
    return (probs * y).sum(0), (probs * (1 - y)).sum(0), ((1 - probs) * y).sum(0)


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, zero_division: float) -> torch.Tensor:
    denom = 2 * tp + fp + fn
    safe = torch.where(denom > 0, denom, torch.ones_like(denom))  # no 0/0, and no NaN in the gradient
    return torch.where(denom > 0, 2 * tp / safe, torch.full_like(denom, zero_division))


def soft_f1(
    probs: torch.Tensor, target: torch.Tensor, average: str = "binary", zero_division: float = 0.0
) -> torch.Tensor:
    r"""Soft F1 $= 2TP / (2TP + FP + FN)$ from :func:`soft_confusion`.

    ``average``: 'binary' (``probs`` (N,) of the positive class), 'macro' (mean over the $K$ columns
    of ``probs`` (N, K)) or 'micro' (counts summed over classes). A class with no positives and zero
    predicted mass gets ``zero_division`` (scikit-learn's default is 0)."""
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {', '.join(_AVERAGES)}; got {average!r}")
    if average == "binary" and isinstance(probs, torch.Tensor) and probs.dim() != 1:
        raise ValueError(f"average='binary' needs probs of shape (N,); got {tuple(probs.shape)}")
    if average != "binary" and isinstance(probs, torch.Tensor) and probs.dim() != 2:
        raise ValueError(f"average={average!r} needs probs of shape (N, K); got {tuple(probs.shape)}")
    tp, fp, fn = soft_confusion(probs, target)
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    f1 = _f1(tp, fp, fn, zero_division)
    return f1.mean() if average == "macro" else f1


def soft_f1_loss(probs: torch.Tensor, target: torch.Tensor, average: str = "binary") -> torch.Tensor:
    r"""$1 - \widetilde{F_1}$ (see :func:`soft_f1`)."""
    return 1 - soft_f1(probs, target, average)


# --- hard metrics (rewards) -----------------------------------------------------------------------


def accuracy_hard(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    """Accuracy of ``y_pred`` (..., N) against ``y_true`` (N,): one value per leading index."""
    if y_pred.shape[-1:] != y_true.shape:
        raise ValueError(f"y_pred (..., N) and y_true (N,) disagree: {tuple(y_pred.shape)} vs {tuple(y_true.shape)}")
    return (y_pred == y_true).to(torch.float64).mean(-1)


def f1_hard(
    y_pred: torch.Tensor,
    y_true: torch.Tensor,
    average: str = "binary",
    n_classes: int | None = None,
    zero_division: float = 0.0,
) -> torch.Tensor:
    """F1 of integer predictions ``y_pred`` (..., N) against ``y_true`` (N,), vectorised over the
    leading axes (one sample of predictions per leading index). 'macro' averages over the classes
    ``0..n_classes-1`` (default: the largest label seen + 1), like scikit-learn with ``labels=range(K)``."""
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {', '.join(_AVERAGES)}; got {average!r}")
    if y_pred.shape[-1:] != y_true.shape:
        raise ValueError(f"y_pred (..., N) and y_true (N,) disagree: {tuple(y_pred.shape)} vs {tuple(y_true.shape)}")
    if average == "binary":
        pred, true = (y_pred == 1).to(torch.float64), (y_true == 1).to(torch.float64)
        tp, fp, fn = (pred * true).sum(-1), (pred * (1 - true)).sum(-1), ((1 - pred) * true).sum(-1)
        return _f1(tp, fp, fn, zero_division)
    k = n_classes if n_classes is not None else int(max(int(y_pred.max()), int(y_true.max()))) + 1
    pred = F.one_hot(y_pred.long(), k).to(torch.float64)  # (..., N, K)
    true = F.one_hot(y_true.long(), k).to(torch.float64)  # (N, K)
    tp, fp, fn = (pred * true).sum(-2), (pred * (1 - true)).sum(-2), ((1 - pred) * true).sum(-2)  # (..., K)
    if average == "micro":
        return _f1(tp.sum(-1), fp.sum(-1), fn.sum(-1), zero_division)
    return _f1(tp, fp, fn, zero_division).mean(-1)


# --- REINFORCE ------------------------------------------------------------------------------------

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``metric(y_pred (S, N), y_true (N,)) -> (S,)``: one reward per sample of predictions."""


def binary_log_probs(logits: torch.Tensor) -> torch.Tensor:
    r"""(N,) logits $z$ of a sigmoid classifier -> (N, 2) log-probabilities $(\log\sigma(-z), \log\sigma(z))$."""
    return torch.stack([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=-1)


@dataclasses.dataclass(frozen=True)
class ReinforceEstimate:
    """``surrogate``'s gradient is the REINFORCE estimate of $\\nabla_\\theta \\mathbb{E}[R]$; to train,
    minimise ``-surrogate``. ``rewards`` (S,) are the sampled metrics, ``baseline`` (S,) what was
    subtracted from each."""

    surrogate: torch.Tensor
    rewards: torch.Tensor
    baseline: torch.Tensor


def reinforce_surrogate(
    log_probs: torch.Tensor,
    target: torch.Tensor,
    metric: Metric,
    n_samples: int,
    generator: torch.Generator,
    baseline: str | float = "loo",
) -> ReinforceEstimate:
    r"""Sample $S$ = ``n_samples`` prediction vectors $\hat y_s \sim \prod_i p(\cdot \mid x_i)$ from
    ``log_probs`` (N, K) with ``generator``, score each with ``metric``, and build
    $\frac1S \sum_s (R_s - b_s) \log \pi(\hat y_s)$, whose gradient is the estimate.

    ``baseline``: 'loo' (leave-one-out mean of the other samples' rewards; unbiased, needs $S \ge 2$),
    'none', or a constant float (e.g. a running mean from earlier batches)."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        raise ValueError("log_probs must be a (N, K) tensor of log-probabilities")
    if not torch.isfinite(log_probs).all():
        raise ValueError("log_probs contains NaN or infinite values")
    n, k = log_probs.shape
    _check_target(target, n, k)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator (randomness is explicit)")
    if baseline == "loo" and n_samples < 2:
        raise ValueError("baseline='loo' needs n_samples >= 2")
    if not (baseline in ("loo", "none") or (isinstance(baseline, int | float) and math.isfinite(baseline))):
        raise ValueError(f"baseline must be 'loo', 'none' or a finite number; got {baseline!r}")
    probs = log_probs.detach().exp()  # (N, K)
    y_hat = torch.multinomial(probs, n_samples, replacement=True, generator=generator).T  # (S, N)
    with torch.no_grad():
        rewards = torch.as_tensor(metric(y_hat, target)).to(log_probs.dtype)  # (S,)
    if rewards.shape != (n_samples,):
        raise ValueError(f"metric must return one reward per sample, shape ({n_samples},); got {tuple(rewards.shape)}")
    if baseline == "loo":
        b = (rewards.sum() - rewards) / (n_samples - 1)  # b_s = mean of the other samples
    elif baseline == "none":
        b = torch.zeros_like(rewards)
    else:
        b = torch.full_like(rewards, float(baseline))
    log_pi = log_probs.gather(1, y_hat.T).sum(0)  # (S,) log pi(y_s) = sum_i log p(y_si | x_i)
    surrogate = ((rewards - b) * log_pi).mean()
    return ReinforceEstimate(surrogate, rewards, b)


def expected_metric(log_probs: torch.Tensor, target: torch.Tensor, metric: Metric, max_configs: int = 1 << 16):
    r"""$J = \sum_{\hat y \in \{0..K-1\}^N} \pi(\hat y)\, R(\hat y)$ by enumeration (differentiable in
    ``log_probs`` (N, K)); only for tiny problems ($K^N \le$ ``max_configs``)."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        raise ValueError("log_probs must be a (N, K) tensor of log-probabilities")
    n, k = log_probs.shape
    _check_target(target, n, k)
    if k**n > max_configs:
        raise ValueError(f"K^N = {k}^{n} configurations exceed max_configs = {max_configs}")
    configs = torch.tensor(list(itertools.product(range(k), repeat=n)), dtype=torch.long)  # (K^N, N)
    with torch.no_grad():
        rewards = torch.as_tensor(metric(configs, target)).to(log_probs.dtype)  # (K^N,)
    log_pi = log_probs.gather(1, configs.T).sum(0)  # (K^N,)
    return (log_pi.exp() * rewards).sum()
