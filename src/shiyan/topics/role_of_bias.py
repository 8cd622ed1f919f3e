"""D2 -- the role of bias: the perceptron's threshold made learnable, measured on real data."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.svm import SVC

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.nn.perceptron import augment, fit_perceptron, margin, novikoff_bound

META = TopicMeta(
    slug="role-of-bias",
    category="DL",
    date=dt.date(2024, 2, 17),
    title_en="The role of bias: a threshold you can learn",
    title_zh="偏置项的作用：可以学习的阈值",
    summary_en=(
        "Without a bias every decision boundary passes through the origin. A perceptron on one positive "
        "feature of the iris flowers then gives every flower the same label; with a bias it separates them "
        "perfectly. We check the perceptron against scikit-learn, Novikoff's mistake bound, what centring "
        "the inputs does, and why a bias right before BatchNorm receives no gradient at all."
    ),
    summary_zh=(
        "没有偏置，决策边界必须经过原点。只用鸢尾花的一个正值特征时，无偏置的感知机只能给所有样本同一个标签，"
        "加上偏置就能完全分开。我们用 scikit-learn 核对感知机，验证 Novikoff 错误上界，测量输入中心化的作用，"
        "并说明 BatchNorm 之前的偏置为什么梯度恒为零。"
    ),
    implements=("shiyan.nn.perceptron",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    max_epochs: int = 2000
    """Passes over the data the perceptron may make before giving up."""
    bn_batch: int = 256
    """Digits images per batch when measuring the bias gradient before BatchNorm / LayerNorm."""
    hidden: int = 128
    """Width of the hidden layer in the normalisation experiment."""
    logreg_C: float = 1.0
    """Inverse L2 strength of the logistic regressions in the centring experiment."""

    def validate(self) -> None:
        for name in ("max_epochs", "bn_batch", "hidden"):
            if getattr(self, name) < 2:
                raise ConfigError(f"{name} must be >= 2; got {getattr(self, name)}")
        if not self.logreg_C > 0:
            raise ConfigError(f"logreg_C must be positive; got {self.logreg_C}")

    @classmethod
    def quick(cls) -> Config:
        return cls(max_epochs=500, bn_batch=128, hidden=64)

    @classmethod
    def full(cls) -> Config:
        return cls(max_epochs=20000, bn_batch=1024, hidden=512)


def _iris_petal_length() -> tuple[np.ndarray, np.ndarray, float]:
    iris = data.load("iris")
    j = iris.feature_names.index("petal length (cm)")
    x = iris.X[:, [j]]
    y = np.where(iris.y == 0, 1, -1)  # setosa vs the rest
    majority = max(np.mean(y == 1), np.mean(y == -1))
    return x, y, float(majority)


def _logreg_accuracy(X: np.ndarray, y: np.ndarray, bias: bool, C: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(fit_intercept=bias, C=C, max_iter=5000).fit(X, y)
    return float(model.score(X, y))


def _bias_gradient_before(norm: str, X: torch.Tensor, y: torch.Tensor, hidden: int, gen: torch.Generator):
    """Gradient of the loss w.r.t. the bias of Linear -> norm -> ReLU -> Linear on a batch of digits."""
    lin = torch.nn.Linear(X.shape[1], hidden, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.normal_(0, X.shape[1] ** -0.5, generator=gen)
        lin.bias.normal_(0, 1.0, generator=gen)
    layer = (
        torch.nn.BatchNorm1d(hidden, dtype=torch.float64)
        if norm == "batchnorm"
        else torch.nn.LayerNorm(hidden, dtype=torch.float64)
    )
    head = torch.nn.Linear(hidden, 10, dtype=torch.float64)
    with torch.no_grad():
        head.weight.normal_(0, hidden**-0.5, generator=gen)
    loss = F.cross_entropy(head(torch.relu(layer(lin(X)))), y)
    loss.backward()
    return lin.bias.grad, lin.weight.grad


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    # 1. One positive feature: without a bias the boundary w x = 0 cannot sit between the classes.
    x, y, majority = _iris_petal_length()
    no_bias = fit_perceptron(x, y, bias=False, max_epochs=cfg.max_epochs)
    with_bias = fit_perceptron(x, y, bias=True, max_epochs=cfg.max_epochs)
    acc_no = float(np.mean(no_bias.predict(x) == y))
    acc_yes = float(np.mean(with_bias.predict(x) == y))
    res.metric("iris_majority_rate", majority)
    res.claim(
        "no_bias_stuck_at_majority",
        "Without a bias, a perceptron on petal length alone does no better than labelling every flower alike",
        value=acc_no,
        op="<=",
        threshold=majority + 1e-12,
        text_zh="没有偏置时，只看花瓣长度的感知机不比把所有花判成同一类更好",
    )
    res.claim(
        "bias_separates_setosa",
        "With a bias it separates setosa from the other irises (training accuracy)",
        value=acc_yes,
        op=">=",
        threshold=1.0,
        text_zh="加上偏置后，它能把山鸢尾与其余两种完全分开（训练准确率）",
    )
    res.metric("learned_threshold_cm", -with_bias.b / with_bias.w[0], unit="cm")

    # 2. Novikoff: mistakes <= (R / gamma)^2 for any unit separator u; the max-margin one (a hard-margin
    #    linear SVM on the augmented input) gives the tightest bound.
    Xt = augment(x)
    svm = SVC(kernel="linear", C=1e6).fit(x, y)
    u = np.append(svm.coef_[0], svm.intercept_[0])
    bound = novikoff_bound(Xt, y, u)
    res.metric("max_margin", margin(Xt, y, u))
    res.metric("perceptron_margin", margin(Xt, y, np.append(with_bias.w, with_bias.b)))
    res.metric("perceptron_mistakes", with_bias.mistakes)
    res.metric("novikoff_bound", bound)
    res.claim(
        "novikoff_bound_holds",
        "Mistakes made before convergence, as a fraction of Novikoff's bound (R/γ)² with the max-margin separator",
        value=with_bias.mistakes / bound,
        op="<=",
        threshold=1.0,
        text_zh="收敛前犯错次数占 Novikoff 上界 (R/γ)² 的比例",
    )

    # 3. Centring: the bias absorbs the inputs' mean. Raw (all-positive) vs standardised features.
    bc = data.load("breast_cancer")
    X_raw = bc.X[:, :2] / bc.X[:, :2].max(axis=0)  # mean radius, mean texture: positive, not centred
    X_std = (bc.X[:, :2] - bc.X[:, :2].mean(axis=0)) / bc.X[:, :2].std(axis=0)
    rows = []
    gaps = {}
    for name, X in (("raw (positive)", X_raw), ("standardised", X_std)):
        a_yes = _logreg_accuracy(X, bc.y, True, cfg.logreg_C)
        a_no = _logreg_accuracy(X, bc.y, False, cfg.logreg_C)
        gaps[name] = a_yes - a_no
        rows.append([name, a_yes, a_no, a_yes - a_no])
    res.table(
        "centring",
        columns=["features", "accuracy with bias", "accuracy without", "gap"],
        rows=rows,
        caption_en="Logistic regression on two breast-cancer features: the bias matters until the inputs are centred.",
        caption_zh="乳腺癌数据两个特征上的逻辑回归：输入未中心化时偏置很重要，中心化后几乎无关紧要。",
    )
    res.claim(
        "centring_replaces_bias",
        "Accuracy lost by dropping the bias on standardised features (raw features lose far more, see table)",
        value=gaps["standardised"],
        op="<=",
        threshold=0.02,
        text_zh="在标准化特征上去掉偏置损失的准确率（原始特征损失大得多，见表）",
    )
    res.claim(
        "raw_features_need_bias",
        "Accuracy lost by dropping the bias on raw, all-positive features",
        value=gaps["raw (positive)"],
        op=">=",
        threshold=0.05,
        text_zh="在全为正值的原始特征上去掉偏置损失的准确率",
    )

    # 4. A bias right before normalisation: BatchNorm subtracts the batch mean of every unit, so the bias
    #    cancels and gets exactly no gradient; LayerNorm subtracts the mean over units, so only the
    #    component of the bias along (1, ..., 1) cancels.
    digits = data.load("digits")
    rng = ctx.numpy_generator("digits-batch")
    idx = rng.choice(len(digits.y), size=cfg.bn_batch, replace=False)
    Xb = torch.tensor(digits.X[idx] / 16.0, dtype=torch.float64)  # float64: what is left is rounding
    yb = torch.tensor(digits.y[idx], dtype=torch.long)
    with torch_threads(1):
        g_bn, w_bn = _bias_gradient_before("batchnorm", Xb, yb, cfg.hidden, ctx.torch_generator("bn"))
        g_ln, w_ln = _bias_gradient_before("layernorm", Xb, yb, cfg.hidden, ctx.torch_generator("ln"))
    bn_rel = float(g_bn.abs().max() / w_bn.abs().max())
    ones = torch.ones_like(g_ln) / g_ln.numel() ** 0.5
    ln_along_ones = float((g_ln @ ones).abs() / g_ln.norm())
    res.claim(
        "bias_before_batchnorm_has_no_gradient",
        "Largest bias gradient before BatchNorm, relative to the largest weight gradient of the same layer",
        value=bn_rel,
        op="<=",
        threshold=1e-10,
        text_zh="BatchNorm 之前偏置梯度的最大值，相对于同一层权重梯度的最大值",
    )
    res.claim(
        "layernorm_cancels_only_the_mean_of_the_bias",
        "Before LayerNorm, the share of the bias gradient along (1, …, 1) (the rest is non-zero)",
        value=ln_along_ones,
        op="<=",
        threshold=1e-10,
        text_zh="LayerNorm 之前，偏置梯度在 (1, …, 1) 方向上的占比（其余分量不为零）",
    )
    res.claim(
        "layernorm_bias_still_learns",
        "…while the rest of the bias gradient before LayerNorm is not zero (its norm relative to the weight gradient's)",
        value=float(g_ln.norm() / w_ln.norm()),
        op=">=",
        threshold=1e-3,
        text_zh="……而 LayerNorm 之前偏置梯度的其余部分不为零（其范数相对于权重梯度范数）",
    )

    # Figure: the 1-D problem and the two perceptrons.
    fig, (ax1, ax2) = new_figure(ncols=2, figsize=(9.5, 3.4))
    for label, marker, colour in ((1, "o", "C0"), (-1, "x", "C3")):
        sel = y == label
        jitter = ctx.numpy_generator("jitter").uniform(-0.15, 0.15, sel.sum())
        ax1.scatter(x[sel, 0], jitter, marker=marker, color=colour, s=14, label="setosa" if label == 1 else "others")
    ax1.axvline(-with_bias.b / with_bias.w[0], color="k", lw=1.5, label="with bias: w x + b = 0")
    ax1.axvline(0.0, color="grey", ls="--", lw=1.2, label="without bias: w x = 0")
    ax1.set_xlim(-0.5, 7.5)
    ax1.set_ylim(-0.2, 0.75)
    ax1.set_yticks([])
    ax1.set_xlabel("petal length (cm)")
    ax1.legend(fontsize=7, loc="upper right", ncol=2)
    ax2.plot(np.arange(1, len(with_bias.mistakes_per_epoch) + 1), np.cumsum(with_bias.mistakes_per_epoch), "-o", ms=3)
    ax2.axhline(bound, color="C3", ls="--", label="Novikoff bound (R/γ)²")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("mistakes so far")
    ax2.set_yscale("log")
    ax2.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "perceptron",
        caption_en="Left: the only boundary without a bias is x = 0, left of every flower. Right: the perceptron's "
        "mistakes stay under Novikoff's bound.",
        caption_zh="左：没有偏置时唯一可能的边界是 x = 0，在所有样本左侧。右：感知机的犯错次数始终低于 Novikoff 上界。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Our perceptron (a plain loop over samples, written to be read) vs scikit-learn's compiled one: the same
    rule, the same order, the same number of passes over breast-cancer's standardised features."""
    bc = data.load("breast_cancer")
    X = (bc.X - bc.X.mean(axis=0)) / bc.X.std(axis=0)
    y = np.where(bc.y == 1, 1, -1)
    epochs = 20

    def sklearn_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached: expected, the data are not separable
            Perceptron(shuffle=False, eta0=1.0, alpha=0.0, max_iter=epochs, tol=None).fit(X, y)

    ours = best_time(lambda: fit_perceptron(X, y, bias=True, max_epochs=epochs), repeats=3)
    ref = best_time(sklearn_fit, repeats=3)
    return [
        BenchRow(
            name=f"perceptron fit, {len(y)} samples × {X.shape[1]} features, {epochs} passes",
            ours=ours,
            reference=ref,
            reference_name="sklearn.linear_model.Perceptron",
            unit="s",
        )
    ]
