"""D9 Discrete metrics as losses: soft-F1 and REINFORCE against cross-entropy on imbalanced
one-vs-rest digit problems, with the soft score checked against scikit-learn's F1 and the REINFORCE
estimator checked against the exact gradient of the expected F1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, precision_score, recall_score

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.nn.metrics import (
    binary_log_probs,
    expected_metric,
    f1_hard,
    reinforce_surrogate,
    soft_f1,
    soft_f1_loss,
)

META = TopicMeta(
    slug="differentiable-metrics",
    category="DL",
    date=dt.date(2024, 5, 9),
    title_en="Discrete metrics as losses: soft-F1 and REINFORCE",
    title_zh="把离散指标当损失：soft-F1 与 REINFORCE",
    summary_en=(
        "Accuracy and F1 have zero gradient almost everywhere. Replace hard counts by probabilities "
        "(soft-F1) or treat the metric as a reward (REINFORCE); compared with cross-entropy on imbalanced "
        "one-vs-rest digits."
    ),
    summary_zh=(
        "准确率与 F1 几乎处处梯度为零。用概率代替硬计数（soft-F1），或把指标当奖励（REINFORCE）；"
        "在不平衡的手写数字一对多问题上与交叉熵比较。"
    ),
    implements=("shiyan.nn.metrics",),
)

METHODS = ("cross-entropy", "cross-entropy, tuned threshold", "soft-F1", "REINFORCE (F1 reward)")


@dataclasses.dataclass(frozen=True)
class Config(TopicConfig):
    digits: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    """Positive class of each one-vs-rest problem (about 10% positives each)."""
    resolutions: tuple[int, ...] = (8, 4)
    """Image side the classifier sees: 8 = the original digits, 4 = 2x2-averaged (16 features)."""
    n_splits: int = 2
    """Random train/test splits per problem."""
    test_fraction: float = 0.4
    """Share of the images held out for the F1 score."""
    epochs: int = 300
    """Full-batch Adam steps per model."""
    lr: float = 0.05
    """Adam learning rate."""
    reinforce_samples: int = 16
    """Prediction vectors sampled per REINFORCE step (leave-one-out baseline)."""
    check_batches: int = 40
    """Independent estimator batches in the unbiasedness check."""
    check_samples: int = 2000
    """Samples per batch in the unbiasedness check."""

    def validate(self) -> None:
        if not self.digits or any(not 0 <= d <= 9 for d in self.digits):
            raise ConfigError(f"digits must be a non-empty tuple of 0..9; got {self.digits}")
        if not self.resolutions or any(r not in (2, 4, 8) for r in self.resolutions):
            raise ConfigError(f"resolutions must be chosen from 2, 4, 8; got {self.resolutions}")
        if 4 not in self.resolutions:
            raise ConfigError("resolutions must include 4 (the claims compare the methods there)")
        for name in ("n_splits", "epochs", "check_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.reinforce_samples < 2 or self.check_samples < 2:
            raise ConfigError("reinforce_samples and check_samples must be >= 2 (leave-one-out baseline)")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")

    @classmethod
    def quick(cls) -> Config:
        return cls(digits=(1, 8, 9), resolutions=(4,), n_splits=1, epochs=200, check_batches=20, check_samples=1000)


# --- data and training --------------------------------------------------------------------------------


def _features(side: int) -> torch.Tensor:
    """Digits averaged down to ``side`` x ``side`` and flattened: (N, side^2)."""
    x = torch.tensor(data.load("digits").X, dtype=torch.float64).view(-1, 1, 8, 8)
    return F.avg_pool2d(x, 8 // side).flatten(1)


def _f1(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    return float(f1_score(y_true.numpy(), y_pred.numpy(), zero_division=0.0))


def _train(method: str, X: torch.Tensor, y: torch.Tensor, cfg: Config, g: torch.Generator):
    """A logistic-regression classifier z = Xw + b trained with ``method``; returns (w, b, threshold)."""
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=cfg.lr)
    for _ in range(cfg.epochs):
        z = X @ w + b  # (N,) logits
        if method.startswith("cross-entropy"):
            loss = F.binary_cross_entropy_with_logits(z, y.to(z.dtype))
        elif method == "soft-F1":
            loss = soft_f1_loss(torch.sigmoid(z), y)
        else:  # REINFORCE: maximise E[F1] of sampled hard predictions
            est = reinforce_surrogate(binary_log_probs(z), y, f1_hard, cfg.reinforce_samples, g)
            loss = -est.surrogate
        opt.zero_grad()
        loss.backward()
        opt.step()
    threshold = 0.5
    if method == "cross-entropy, tuned threshold":  # the classical fix: pick the threshold on the training set
        with torch.no_grad():
            p = torch.sigmoid(X @ w + b)
        grid = torch.linspace(0.02, 0.98, 49, dtype=X.dtype)
        scores = f1_hard((p[None, :] >= grid[:, None]).long(), y)
        threshold = float(grid[int(scores.argmax())])
    return w.detach(), b.detach(), threshold


# --- run ----------------------------------------------------------------------------------------------


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):  # small full-batch problems: one thread is fastest
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    labels = torch.tensor(data.load("digits").y)
    g = ctx.torch_generator("reinforce")
    scores: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    per_digit: dict[tuple[int, str, int], list[float]] = {}
    soft_vs_sklearn = 0.0
    tiny = None
    jobs = [(side, d, s) for side in cfg.resolutions for d in cfg.digits for s in range(cfg.n_splits)]
    for side, digit, split in ctx.progress(jobs, total=len(jobs), description="one-vs-rest problems"):
        X_all = _features(side)
        y_all = (labels == digit).long()
        tr, te = data.train_test_split(len(X_all), cfg.test_fraction, ctx.numpy_generator("split", digit, split))
        mu, sd = X_all[tr].mean(0), X_all[tr].std(0) + 1e-3
        X_tr, X_te = (X_all[tr] - mu) / sd, (X_all[te] - mu) / sd
        y_tr, y_te = y_all[tr], y_all[te]
        for method in METHODS:
            w, b, threshold = _train(method, X_tr, y_tr, cfg, g)
            with torch.no_grad():
                p_te = torch.sigmoid(X_te @ w + b)
            pred = (p_te >= threshold).long()
            f1 = _f1(y_te, pred)
            prec = float(precision_score(y_te.numpy(), pred.numpy(), zero_division=0.0))
            rec = float(recall_score(y_te.numpy(), pred.numpy(), zero_division=0.0))
            scores.setdefault((side, method), []).append((f1, prec, rec))
            per_digit.setdefault((side, method, digit), []).append(f1)
            # soft-F1 of the one-hot (hard) predictions is the F1 score itself
            soft_vs_sklearn = max(soft_vs_sklearn, abs(float(soft_f1(pred.to(torch.float64), y_te)) - f1))
            if tiny is None and side == 4 and method == "cross-entropy":
                tiny = (X_te, y_te, w, b)

    mean_f1 = {key: float(np.mean([v[0] for v in vals])) for key, vals in scores.items()}
    rows = []
    for side in cfg.resolutions:
        for method in METHODS:
            vals = np.array(scores[(side, method)])
            rows.append((f"{side}x{side}", method, *vals.mean(0).tolist()))
            res.metric(f"test_f1[{side}x{side}, {method}]", mean_f1[(side, method)])
    res.table(
        "f1",
        ["features", "training", "test F1", "precision", "recall"],
        rows,
        caption_en=f"Logistic regression on one-vs-rest digits ({len(cfg.digits)} digits x {cfg.n_splits} splits), "
        "threshold 0.5 unless tuned; means over problems.",
        caption_zh=f"一对多手写数字上的逻辑回归（{len(cfg.digits)} 个数字 x {cfg.n_splits} 次划分），"
        "除调阈值一行外阈值为 0.5；取各问题的平均。",
    )
    res.claim(
        "soft_f1_is_f1_on_hard_predictions",
        "soft-F1 of one-hot (hard) predictions equals scikit-learn's f1_score on every test set (largest |difference|)",
        soft_vs_sklearn,
        "<=",
        1e-12,
        text_zh="对独热（硬）预测，soft-F1 在每个测试集上都等于 scikit-learn 的 f1_score（最大绝对差）",
    )
    gain = mean_f1[(4, "soft-F1")] - mean_f1[(4, "cross-entropy")]
    res.claim(
        "soft_f1_beats_cross_entropy_4x4",
        "on 4x4 features soft-F1 training reaches a higher mean test F1 than cross-entropy at threshold 0.5 "
        "(difference of means)",
        gain,
        ">",
        0.0,
        text_zh="在 4x4 特征上，soft-F1 训练的平均测试 F1 高于阈值 0.5 的交叉熵（均值之差）",
    )
    res.claim(
        "reinforce_beats_cross_entropy_4x4",
        "on 4x4 features REINFORCE with the batch F1 as reward also beats cross-entropy at threshold 0.5 "
        "(difference of means)",
        mean_f1[(4, "REINFORCE (F1 reward)")] - mean_f1[(4, "cross-entropy")],
        ">",
        0.0,
        text_zh="在 4x4 特征上，以批 F1 为奖励的 REINFORCE 同样胜过阈值 0.5 的交叉熵（均值之差）",
    )
    if 8 in cfg.resolutions:
        res.metric("soft_f1_gain_8x8", mean_f1[(8, "soft-F1")] - mean_f1[(8, "cross-entropy")], "", "may be negative")

    # REINFORCE is unbiased: the 8 test images the trained model is least sure about (2 of them
    # positives), their logits as the parameters; exact gradient by enumerating 2^8 predictions
    X_te, y_te, w, b = tiny
    logits = X_te @ w + b
    order = logits.abs().argsort()
    pos = order[y_te[order] == 1][:2]
    neg = order[y_te[order] == 0][:6]
    idx = torch.cat([pos, neg])
    z = logits[idx].clone().requires_grad_(True)  # (8,) logits as the parameters
    y_small = y_te[idx]
    exact = torch.autograd.grad(expected_metric(binary_log_probs(z), y_small, f1_hard), z)[0]
    gk = ctx.torch_generator("unbiased")
    est = torch.stack(
        [
            torch.autograd.grad(
                reinforce_surrogate(binary_log_probs(z), y_small, f1_hard, cfg.check_samples, gk).surrogate, z
            )[0]
            for _ in range(cfg.check_batches)
        ]
    )
    se = est.std(0) / cfg.check_batches**0.5
    z_score = float(((est.mean(0) - exact).abs() / se).max())
    res.metric("reinforce_rel_error", float((est.mean(0) - exact).norm() / exact.norm()), "")
    res.claim(
        "reinforce_unbiased",
        f"the REINFORCE gradient averaged over {cfg.check_batches} x {cfg.check_samples} samples matches the exact "
        "gradient of E[F1] (enumeration of all 2^8 predictions) on the 8 least certain test digits (largest |z-score|)",
        z_score,
        "<=",
        4.5,
        text_zh=f"在模型最不确定的 8 张真实测试数字上，{cfg.check_batches} x {cfg.check_samples} 个样本的 REINFORCE 梯度均值"
        "与 E[F1] 的精确梯度（枚举全部 2^8 种预测）一致（最大 |z 分数|）",
    )

    fig, ax = new_figure(figsize=(7.2, 3.8))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        vals = [float(np.mean(per_digit[(4, method, d)])) for d in cfg.digits]
        ax.bar(np.arange(len(cfg.digits)) + (i - (len(METHODS) - 1) / 2) * width, vals, width, label=method)
    ax.set_xticks(range(len(cfg.digits)), [str(d) for d in cfg.digits])
    ax.set_xlabel("positive digit (one vs rest), 4x4 features")
    ax.set_ylabel("test F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    ctx.save_figure(
        fig,
        "per_digit",
        caption_en="Test F1 per one-vs-rest problem on 4x4 features for each way of training.",
        caption_zh="4x4 特征上每个一对多问题的测试 F1，按训练方式分组。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Soft-F1 of hard predictions (torch) vs scikit-learn's f1_score on the same 100k labels."""
    rng = ctx.numpy_generator("bench")
    y = rng.integers(0, 2, 100_000)
    pred = rng.integers(0, 2, 100_000)
    y_t, p_t = torch.tensor(y), torch.tensor(pred, dtype=torch.float64)
    best_ours, best_ref = float("inf"), float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        soft_f1(p_t, y_t)
        best_ours = min(best_ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        f1_score(y, pred)
        best_ref = min(best_ref, time.perf_counter() - t0)
    return [BenchRow("binary F1 of 100k hard predictions", best_ours, best_ref, "sklearn.metrics.f1_score", "s")]
