"""C1 -- CART: impurity measures, depth vs over-fitting, and a tree equal to scikit-learn's, on NYC flights."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sklearn import tree as sk_tree

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import median_time
from shiyan.trees import DecisionTreeClassifier, DecisionTreeRegressor

META = TopicMeta(
    slug="cart",
    category="ML",
    date=dt.date(2025, 2, 10),
    title_en="CART decision trees: impurity, depth and over-fitting",
    title_zh="CART 决策树：不纯度、深度与过拟合",
    summary_en=(
        "A CART tree grown greedily from the impurity-decrease equation, compiled with numba and equal to "
        "scikit-learn's tree split for split; Gini, entropy and misclassification error compared on real cuts, "
        "and the train/test accuracy of NYC flight-delay trees as the depth grows."
    ),
    summary_zh=(
        "按不纯度下降公式贪心生长的 CART 树，用 numba 编译，与 scikit-learn 的树逐个分裂一致；"
        "在真实切分上比较基尼指数、熵与误分类率，并测量纽约航班延误树随深度增加的训练/测试准确率。"
    ),
    implements=("shiyan.trees.cart",),
)

MISSING = -1.0
"""Stand-in for a missing weather reading (all real values of those columns are larger, so a cut can isolate it)."""


@dataclass(frozen=True)
class Config(TopicConfig):
    n_rows: int = 15000
    """Flights sampled for the depth and impurity experiments (of 327,346)."""
    max_depth: int = 20
    """Largest max_depth on the depth curve (a fully grown tree is added)."""
    test_fraction: float = 0.3
    """Share of the sampled rows held out for test accuracy."""
    agree_depths: tuple[int, ...] = (2, 4, 6, 8, 12)
    """max_depth values at which our trees are compared with scikit-learn's (a fully grown tree is added)."""
    bench_rows: int = 20000
    """Rows of diamonds and of flights in the fit-time benchmark."""
    bench_repeats: int = 3
    """Timed fits per benchmark row (the median is kept)."""

    def validate(self) -> None:
        if self.n_rows < 500:
            raise ConfigError(f"n_rows must be >= 500; got {self.n_rows}")
        if self.max_depth < 2:
            raise ConfigError(f"max_depth must be >= 2; got {self.max_depth}")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ConfigError(f"test_fraction must lie in [0.05, 0.5]; got {self.test_fraction}")
        if not self.agree_depths or min(self.agree_depths) < 1:
            raise ConfigError(f"agree_depths must be non-empty ints >= 1; got {self.agree_depths}")
        if self.bench_rows < 100 or self.bench_repeats < 1:
            raise ConfigError("bench_rows must be >= 100 and bench_repeats >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_rows=4000, max_depth=10, agree_depths=(2, 6), bench_rows=2000, bench_repeats=1)

    @classmethod
    def full(cls) -> Config:
        return cls(n_rows=100000, max_depth=30, bench_rows=53940)


def load_table(name: str, n_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_rows`` random rows of "flights" (NaN -> ``MISSING``, y = delayed) or "diamonds" (y = log price)."""
    ds = data.load(name)
    X = np.where(np.isnan(ds.X), MISSING, ds.X)
    y = np.log(ds.y) if name == "diamonds" else np.asarray(ds.y)
    if n_rows < len(y):
        idx = np.sort(rng.choice(len(y), n_rows, replace=False))
        X, y = X[idx], y[idx]
    return X, y


def impurities(p: np.ndarray) -> dict[str, np.ndarray]:
    """Two-class impurity of a node with class-1 share $p$: Gini $2p(1-p)$, entropy (bits), error $\\min(p, 1-p)$."""
    q = np.clip(p, 1e-300, 1.0)
    r = np.clip(1 - p, 1e-300, 1.0)
    return {
        "gini": 2 * p * (1 - p),
        "entropy": -(p * np.log2(q) + (1 - p) * np.log2(r)),
        "misclassification": np.minimum(p, 1 - p),
    }


def root_decreases(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Impurity decrease $I(t) - \\frac{n_L}{n} I(L) - \\frac{n_R}{n} I(R)$ of every root cut of every feature.

    Vectorised per feature: sort once, cumulative class-1 counts give every cut between distinct values.
    """
    out: dict[str, list[np.ndarray]] = {"gini": [], "entropy": [], "misclassification": []}
    n = len(y)
    parent = impurities(np.array([y.mean()]))
    for j in range(X.shape[1]):
        order = np.argsort(X[:, j], kind="stable")
        xs, ys = X[order, j], y[order]
        cuts = np.flatnonzero(xs[1:] > xs[:-1]) + 1  # (n_cuts,) rows left of each cut
        if cuts.size == 0:
            continue
        ones_left = np.cumsum(ys)[cuts - 1]
        n_l = cuts.astype(np.float64)
        left = impurities(ones_left / n_l)
        right = impurities((y.sum() - ones_left) / (n - n_l))
        for name in out:
            out[name].append(parent[name][0] - n_l / n * left[name] - (n - n_l) / n * right[name])
    return {name: np.concatenate(v) for name, v in out.items()}


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    rng = ctx.numpy_generator("data")
    X, y = load_table("flights", cfg.n_rows, rng)
    tr, te = data.train_test_split(len(y), cfg.test_fraction, rng)
    Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
    res.metric("n_train", len(tr))
    res.metric("delay_rate", float(y.mean()))

    # 1. impurity measures: the curves, and how they rank the real root cuts
    dec = root_decreases(Xtr, ytr)
    tol = 1e-12
    blind = float(np.mean((dec["misclassification"] <= tol) & (dec["gini"] > tol)))
    res.metric("n_root_cuts", len(dec["gini"]))
    res.claim(
        "misclassification_blind",
        "Share of root cuts that lower Gini impurity but leave misclassification error unchanged",
        value=blind,
        op=">=",
        threshold=0.3,
        text_zh="降低基尼不纯度、却不改变误分类率的根节点切分所占比例",
    )
    rank_corr = float(np.corrcoef(np.argsort(np.argsort(dec["gini"])), np.argsort(np.argsort(dec["entropy"])))[0, 1])
    res.claim(
        "gini_entropy_rank_alike",
        "Gini and entropy rank the root cuts alike (Spearman correlation of their decreases)",
        value=rank_corr,
        op=">=",
        threshold=0.95,
        text_zh="基尼指数与熵对根节点切分的排序几乎相同（两者下降量的 Spearman 相关）",
    )
    p = np.linspace(0, 1, 201)
    curves = impurities(p)
    fig, (ax0, ax1) = new_figure(ncols=2, figsize=(10, 4))
    for name, v in curves.items():
        ax0.plot(p, v / v.max() * 0.5, label=name)
    ax0.set(xlabel="class-1 share p", ylabel="impurity (peak scaled to 0.5)", title="two-class impurity")
    ax0.legend()
    names = data.load("flights").feature_names
    j_best = int(np.argmax([root_decreases(Xtr[:, [j]], ytr)["gini"].max(initial=0.0) for j in range(Xtr.shape[1])]))
    one = root_decreases(Xtr[:, [j_best]], ytr)
    parent = impurities(np.array([ytr.mean()]))
    for name, v in one.items():
        rel = np.where(np.abs(v) < 1e-12, 0.0, v) / parent[name][0]  # decrease relative to the root's impurity
        ax1.plot(rel, label=name, lw=1)
    ax1.set(xlabel=f"cut index on feature '{names[j_best]}'", ylabel="decrease / root impurity")
    ax1.set_title("root-node decrease along one feature")
    ax1.legend()
    ctx.save_figure(
        fig,
        "impurity",
        caption_en="Left: Gini, entropy and misclassification error for two classes. Right: the impurity decrease "
        "of every root cut on the most useful flights feature, relative to the root's impurity; misclassification error "
        "stays at 0 on most cuts.",
        caption_zh="左：两类情形下的基尼指数、熵与误分类率。右：航班数据某一特征上每个根节点切分的不纯度下降；"
        "误分类率在大多数切分上都为 0。",
    )

    # 2. same tree as scikit-learn: continuous weights make equal gains (from different partitions) impossible
    w = ctx.numpy_generator("weights").uniform(0.5, 2.0, len(ytr))
    worst_train, agree = 0.0, []
    for criterion in ("gini", "entropy"):
        for depth in (*cfg.agree_depths, None):
            ours = DecisionTreeClassifier(criterion=criterion, max_depth=depth).fit(Xtr, ytr, sample_weight=w)
            ref = sk_tree.DecisionTreeClassifier(criterion=criterion, max_depth=depth, random_state=0)
            ref.fit(Xtr, ytr, sample_weight=w)
            worst_train = max(worst_train, float(np.abs(ours.predict_proba(Xtr) - ref.predict_proba(Xtr)).max()))
            agree.append(float(np.mean(ours.predict(Xte) == ref.predict(Xte))))
    res.claim(
        "equals_sklearn_on_train",
        "Largest |p_ours - p_sklearn| over training rows, both criteria, all depths (same partition of the data)",
        value=worst_train,
        op="<=",
        threshold=1e-12,
        text_zh="训练样本上我们与 scikit-learn 的预测概率之差的最大值（两种准则、各深度：数据划分相同）",
    )
    res.metric("test_prediction_agreement_min", min(agree))

    # 3. depth vs over-fitting
    depths = list(range(1, cfg.max_depth + 1))
    rows, train_acc, test_acc, test_ent = [], [], [], []
    for d in ctx.progress([*depths, None], total=len(depths) + 1, description="depth curve"):
        gini = DecisionTreeClassifier(max_depth=d).fit(Xtr, ytr)
        ent = DecisionTreeClassifier(criterion="entropy", max_depth=d).fit(Xtr, ytr)
        train_acc.append(gini.score(Xtr, ytr))
        test_acc.append(gini.score(Xte, yte))
        test_ent.append(ent.score(Xte, yte))
        rows.append(["full" if d is None else d, gini.get_n_leaves(), train_acc[-1], test_acc[-1], test_ent[-1]])
    res.table(
        "depth_curve",
        ["max_depth", "leaves (gini)", "train acc (gini)", "test acc (gini)", "test acc (entropy)"],
        rows,
        caption_en="Accuracy of flight-delay trees as max_depth grows.",
        caption_zh="航班延误树的准确率随 max_depth 的变化。",
    )
    n_drops = int(np.sum(np.diff(train_acc) < -1e-12))
    res.claim(
        "train_acc_monotone",
        "Training accuracy never drops as max_depth grows (number of drops)",
        value=n_drops,
        op="==",
        threshold=0,
        text_zh="随 max_depth 增大，训练准确率从不下降（下降次数）",
    )
    res.claim(
        "full_tree_memorises",
        "A fully grown tree fits the training flights (training accuracy)",
        value=train_acc[-1],
        op=">=",
        threshold=0.99,
        text_zh="完全生长的树几乎记住了训练集（训练准确率）",
    )
    best = int(np.argmax(test_acc))
    gap = test_acc[best] - test_acc[-1]
    res.metric("best_depth", depths[best] if best < len(depths) else -1)
    res.claim(
        "overfitting_gap",
        "Test accuracy lost by growing the tree fully instead of stopping at the best depth",
        value=gap,
        op=">=",
        threshold=0.02,
        text_zh="把树完全生长而不是停在最佳深度所损失的测试准确率",
    )
    res.claim(
        "gini_vs_entropy_accuracy",
        "Gini and entropy trees reach the same best test accuracy (absolute difference)",
        value=abs(max(test_acc) - max(test_ent)),
        op="<=",
        threshold=0.01,
        text_zh="基尼树与熵树的最佳测试准确率相同（绝对差）",
    )
    fig, ax = new_figure()
    xs = [*depths, cfg.max_depth + 2]
    ax.plot(xs, train_acc, "o-", label="train (gini)")
    ax.plot(xs, test_acc, "o-", label="test (gini)")
    ax.plot(xs, test_ent, "s--", label="test (entropy)", alpha=0.7)
    ax.set_xticks([*depths[::2], cfg.max_depth + 2], [*map(str, depths[::2]), "full"])
    ax.set(xlabel="max_depth", ylabel="accuracy", title="NYC flights: delayed > 15 min")
    ax.legend()
    ctx.save_figure(
        fig,
        "depth-curve",
        caption_en="Training accuracy climbs to 1 with depth while test accuracy peaks early and then falls.",
        caption_zh="训练准确率随深度一路升到 1，测试准确率则早早见顶，随后下降。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    rng = ctx.numpy_generator("bench")
    rows = []
    for name, ours_cls, ref_cls in (
        ("diamonds", DecisionTreeRegressor, sk_tree.DecisionTreeRegressor),
        ("flights", DecisionTreeClassifier, sk_tree.DecisionTreeClassifier),
    ):
        X, y = load_table(name, cfg.bench_rows, rng)
        ours, ref = ours_cls(random_state=0), ref_cls(random_state=0)
        t_ours = median_time(lambda o=ours, X=X, y=y: o.fit(X, y), cfg.bench_repeats)
        t_ref = median_time(lambda r=ref, X=X, y=y: r.fit(X, y), cfg.bench_repeats)
        note = f"fully grown, {ours.get_n_leaves()} vs {ref.get_n_leaves()} leaves, one thread"
        rows.append(BenchRow(f"fit, {name} {len(y):,} rows", t_ours, t_ref, f"sklearn {ref_cls.__name__}", note=note))
        t_ours = median_time(lambda o=ours, X=X: o.predict(X), max(3, cfg.bench_repeats))
        t_ref = median_time(lambda r=ref, X=X: r.predict(X), max(3, cfg.bench_repeats))
        rows.append(BenchRow(f"predict, {name} {len(y):,} rows", t_ours, t_ref, f"sklearn {ref_cls.__name__}"))
    return rows
