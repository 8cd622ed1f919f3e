"""C2 -- random forests: out-of-bag estimates, feature subsampling vs tree correlation, and trees vs accuracy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sklearn import ensemble
from sklearn.metrics import r2_score, roc_auc_score

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import median_time
from shiyan.topics.cart import load_table
from shiyan.trees import RandomForestClassifier, RandomForestRegressor

META = TopicMeta(
    slug="random-forest",
    category="ML",
    date=dt.date(2025, 2, 17),
    title_en="Random forests: out-of-bag error and decorrelated trees",
    title_zh="随机森林：袋外误差与去相关的树",
    summary_en=(
        "Bagged CART trees with a random feature subset at every node, grown in parallel threads by numba kernels "
        "that release the GIL. The out-of-bag estimate checked against a held-out set on NYC flights, the "
        "correlation between trees measured as max_features shrinks on diamonds, and fit time against scikit-learn."
    ),
    summary_zh=(
        "在每个节点随机抽取特征子集的装袋 CART 树，由释放 GIL 的 numba 内核在多线程中并行生长。"
        "在纽约航班数据上用留出集检验袋外估计，在钻石数据上测量 max_features 变小时树之间相关性的变化，"
        "并与 scikit-learn 比较训练时间。"
    ),
    implements=("shiyan.trees.forest",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    n_rows: int = 20000
    """Flights sampled for the out-of-bag and number-of-trees experiments."""
    n_trees: int = 150
    """Trees of the flights forest (the accuracy curve uses its first B trees)."""
    corr_rows: int = 8000
    """Diamonds sampled for the correlation experiment."""
    corr_trees: int = 50
    """Trees per forest in the correlation experiment."""
    max_features_grid: tuple[int, ...] = (1, 2, 3, 5, 7, 9)
    """max_features values (of the 9 diamond features) in the correlation experiment."""
    test_fraction: float = 0.3
    """Share of the sampled rows held out."""
    n_jobs: int = 2
    """Threads used to grow the trees (and by scikit-learn in the benchmark)."""
    bench_rows: int = 20000
    """Rows of diamonds and of flights in the benchmark (0 = all)."""
    bench_trees: int = 100
    """Trees per forest in the benchmark."""
    bench_repeats: int = 3
    """Timed fits per benchmark row (the median is kept)."""

    def validate(self) -> None:
        if self.n_rows < 500:
            raise ConfigError(f"n_rows must be >= 500; got {self.n_rows}")
        if self.n_trees < 10:
            raise ConfigError(f"n_trees must be >= 10; got {self.n_trees}")
        if self.corr_rows < 500 or self.corr_trees < 5:
            raise ConfigError("corr_rows must be >= 500 and corr_trees >= 5")
        if len(self.max_features_grid) < 3 or not all(1 <= m <= 9 for m in self.max_features_grid):
            raise ConfigError(f"max_features_grid needs >= 3 values in [1, 9]; got {self.max_features_grid}")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ConfigError(f"test_fraction must lie in [0.05, 0.5]; got {self.test_fraction}")
        if self.n_jobs < 1:
            raise ConfigError(f"n_jobs must be >= 1; got {self.n_jobs}")
        if self.bench_rows < 0 or self.bench_trees < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_rows must be >= 0, bench_trees and bench_repeats >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            n_rows=8000,
            n_trees=60,
            corr_rows=3000,
            corr_trees=20,
            max_features_grid=(1, 3, 6, 9),
            bench_rows=3000,
            bench_trees=10,
            bench_repeats=1,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(n_rows=100000, n_trees=300, corr_rows=53940, corr_trees=100, bench_rows=0)


def residual_correlation(residuals: np.ndarray) -> tuple[float, float]:
    r"""$(\bar\rho, \bar\sigma^2)$ from per-tree residuals (B, n): mean pairwise $\rho_{bc} = \langle e_b, e_c\rangle
    / \|e_b\| \|e_c\|$ over $b \ne c$, and the mean tree MSE $\bar\sigma^2 = \frac{1}{B}\sum_b \|e_b\|^2 / n$."""
    B, n = residuals.shape
    gram = residuals @ residuals.T / n  # (B, B) second moments E[e_b e_c]
    sd = np.sqrt(np.diag(gram))
    corr = gram / np.outer(sd, sd)
    rho = (corr.sum() - B) / (B * (B - 1))
    return float(rho), float(np.diag(gram).mean())


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    rng = ctx.numpy_generator("data")

    # 1. flights: out-of-bag vs held-out accuracy, and accuracy vs number of trees
    X, y = load_table("flights", cfg.n_rows, rng)
    tr, te = data.train_test_split(len(y), cfg.test_fraction, rng)
    Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
    forest = RandomForestClassifier(cfg.n_trees, oob_score=True, n_jobs=cfg.n_jobs, random_state=cfg.seed)
    forest.fit(Xtr, ytr)
    test_acc = forest.score(Xte, yte)
    res.metric("oob_accuracy", forest.oob_score_)
    res.metric("test_accuracy", test_acc)
    res.metric("test_auc", roc_auc_score(yte, forest.predict_proba(Xte)[:, 1]))
    acc = (forest.oob_score_ + test_acc) / 2
    se = float(np.sqrt(acc * (1 - acc) * (1 / len(tr) + 1 / len(te))))  # sampling error of the difference
    res.metric("oob_minus_test", forest.oob_score_ - test_acc)
    res.claim(
        "oob_matches_holdout",
        "Out-of-bag and held-out accuracy agree within sampling error (|difference| in standard errors)",
        value=abs(forest.oob_score_ - test_acc) / se,
        op="<=",
        threshold=3.0,
        text_zh="袋外准确率与留出集准确率在抽样误差内一致（差的绝对值，以标准误为单位）",
    )
    trees = forest.estimators_
    p_test = np.stack([t.predict_proba(Xte)[:, 1] for t in trees])  # (B, n_test)
    p_train = np.stack([t.predict_proba(Xtr)[:, 1] for t in trees])  # (B, n_train)
    in_bag = np.zeros((len(trees), len(ytr)), dtype=bool)
    for b, sample in enumerate(forest.estimators_samples_):
        in_bag[b, sample] = True
    sizes = sorted({1, 2, 5, 10, 20, 50, 100, 200, 300, cfg.n_trees} & set(range(1, cfg.n_trees + 1)))
    acc_test, acc_oob = [], []
    for B in sizes:
        acc_test.append(float(np.mean((p_test[:B].mean(0) > 0.5) == yte)))
        out = ~in_bag[:B]  # (B, n_train) tree b did not see row i
        seen = out.sum(0) > 0
        p_oob = (p_train[:B] * out).sum(0)[seen] / out.sum(0)[seen]
        acc_oob.append(float(np.mean((p_oob > 0.5) == ytr[seen])))
    res.table(
        "trees_curve",
        ["trees B", "test accuracy", "OOB accuracy"],
        [[B, a, o] for B, a, o in zip(sizes, acc_test, acc_oob, strict=True)],
        caption_en="Flights: accuracy of the first B trees of one forest (ties at p = 0.5 count as on time).",
        caption_zh="航班数据：同一森林前 B 棵树的准确率（p = 0.5 时判为准点）。",
    )
    res.claim(
        "forest_beats_tree",
        "Test accuracy gained by averaging all trees instead of using one",
        value=acc_test[-1] - acc_test[0],
        op=">=",
        threshold=0.03,
        text_zh="用全部树取平均而不是只用一棵树带来的测试准确率提升",
    )
    fig, ax = new_figure()
    ax.plot(sizes, acc_test, "o-", label="held-out accuracy")
    ax.plot(sizes, acc_oob, "s--", label="out-of-bag accuracy")
    ax.set_xscale("log")
    ax.set(xlabel="number of trees B", ylabel="accuracy", title="NYC flights: delayed > 15 min")
    ax.legend()
    ctx.save_figure(
        fig,
        "oob-vs-test",
        caption_en="Accuracy of the first B trees: the out-of-bag estimate tracks the held-out accuracy once every "
        "row is out of bag for enough trees.",
        caption_zh="前 B 棵树的准确率：当每行都有足够多的树把它留在袋外时，袋外估计与留出集准确率一致。",
    )

    # 2. diamonds: feature subsampling vs correlation between trees
    Xd, yd = load_table("diamonds", cfg.corr_rows, ctx.numpy_generator("diamonds"))
    trd, ted = data.train_test_split(len(yd), cfg.test_fraction, ctx.numpy_generator("diamonds-split"))
    rows, rhos, mses, predicted = [], [], [], []
    grid = sorted(cfg.max_features_grid)
    for m in ctx.progress(grid, total=len(grid), description="max_features"):
        f = RandomForestRegressor(cfg.corr_trees, max_features=m, n_jobs=cfg.n_jobs, random_state=cfg.seed)
        f.fit(Xd[trd], yd[trd])
        resid = yd[ted][None, :] - np.stack([t.predict(Xd[ted]) for t in f.estimators_])  # (B, n_test)
        rho, sigma2 = residual_correlation(resid)
        mse = float(np.mean((yd[ted] - f.predict(Xd[ted])) ** 2))
        B = cfg.corr_trees
        pred = rho * sigma2 + (1 - rho) * sigma2 / B
        rhos.append(rho)
        mses.append(mse)
        predicted.append(pred)
        rows.append([m, rho, sigma2, mse, pred, r2_score(yd[ted], f.predict(Xd[ted]))])
    res.table(
        "correlation",
        ["max_features", "tree correlation ρ", "tree MSE σ²", "forest MSE", "ρσ² + (1-ρ)σ²/B", "forest R²"],
        rows,
        caption_en="Diamonds (log price): correlation between the trees' test residuals as max_features changes.",
        caption_zh="钻石数据（对数价格）：随 max_features 变化，各棵树测试残差之间的相关性。",
    )
    drops = int(np.sum(np.diff(rhos) <= 0))
    res.claim(
        "correlation_falls_with_m",
        "Tree correlation falls at every step down in max_features (steps where it does not)",
        value=drops,
        op="==",
        threshold=0,
        text_zh="max_features 每减小一步，树之间的相关性都下降（不下降的步数）",
    )
    rel = float(np.max(np.abs(np.array(predicted) - np.array(mses)) / np.array(mses)))
    res.claim(
        "variance_formula",
        "Forest MSE equals ρσ² + (1-ρ)σ²/B built from the measured ρ and σ² (largest relative error)",
        value=rel,
        op="<=",
        threshold=0.05,
        text_zh="森林的 MSE 等于用实测 ρ 与 σ² 算出的 ρσ² + (1-ρ)σ²/B（最大相对误差）",
    )
    fig, (ax0, ax1) = new_figure(ncols=2, figsize=(10, 4))
    ax0.plot(grid, rhos, "o-")
    ax0.set(xlabel="max_features m", ylabel="correlation ρ of tree residuals", title="smaller m, less alike trees")
    ax1.plot(grid, mses, "o-", label="forest MSE (measured)")
    ax1.plot(grid, predicted, "x--", label="ρσ² + (1-ρ)σ²/B")
    ax1.plot(grid, [r[2] for r in rows], "s:", label="single-tree MSE σ²")
    ax1.set(xlabel="max_features m", ylabel="test MSE of log price", title="diamonds")
    ax1.legend()
    ctx.save_figure(
        fig,
        "correlation",
        caption_en="Left: the trees' residual correlation against max_features. Right: forest error, the variance "
        "formula and the error of one tree.",
        caption_zh="左：树残差的相关性与 max_features 的关系。右：森林误差、方差公式与单棵树的误差。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    rng = ctx.numpy_generator("bench")
    rows = []
    for name, ours_cls, ref_cls in (
        ("diamonds", RandomForestRegressor, ensemble.RandomForestRegressor),
        ("flights", RandomForestClassifier, ensemble.RandomForestClassifier),
    ):
        X, y = load_table(name, cfg.bench_rows or 10**9, rng)
        tr, te = data.train_test_split(len(y), 0.2, rng)
        Xtr, ytr, Xte = X[tr], y[tr], X[te]
        for n_jobs in sorted({1, cfg.n_jobs}, reverse=True):
            kw = dict(n_estimators=cfg.bench_trees, n_jobs=n_jobs, random_state=0)
            ours, ref = ours_cls(**kw), ref_cls(**kw)
            t_ours = median_time(lambda o=ours, Xtr=Xtr, ytr=ytr: o.fit(Xtr, ytr), cfg.bench_repeats)
            t_ref = median_time(lambda r=ref, Xtr=Xtr, ytr=ytr: r.fit(Xtr, ytr), cfg.bench_repeats)
            if name == "flights":
                metric = "AUC {:.4f} vs {:.4f}".format(
                    *(roc_auc_score(y[te], e.predict_proba(X[te])[:, 1]) for e in (ours, ref))
                )
            else:
                metric = "R² {:.4f} vs {:.4f}".format(*(e.score(X[te], y[te]) for e in (ours, ref)))
            label = f"{name} {len(tr):,} rows, {cfg.bench_trees} trees, {n_jobs} thread{'s' * (n_jobs > 1)}"
            rows.append(BenchRow(f"fit, {label}", t_ours, t_ref, f"sklearn {ref_cls.__name__}", note=metric))
            t_ours = median_time(lambda o=ours, Xte=Xte: o.predict(Xte), max(3, cfg.bench_repeats))
            t_ref = median_time(lambda r=ref, Xte=Xte: r.predict(Xte), max(3, cfg.bench_repeats))
            note = f"{len(te) / t_ours:,.0f} vs {len(te) / t_ref:,.0f} rows/s"
            rows.append(
                BenchRow(f"predict {len(te):,} rows, {label}", t_ours, t_ref, f"sklearn {ref_cls.__name__}", note=note)
            )
    return rows
