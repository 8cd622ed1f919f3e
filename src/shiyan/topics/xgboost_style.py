"""C5 -- the XGBoost-style booster: Newton leaves, learned missing-value directions, exact vs histogram splits."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass

import numba
import numpy as np

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import interleaved_times
from shiyan.trees import XGBClassifier, XGBRegressor
from shiyan.trees import _xgb_kernels as K
from shiyan.trees.xgb import bin_edges

META = TopicMeta(
    slug="xgboost",
    category="ML",
    date=dt.date(2025, 2, 14),
    title_en="XGBoost from the equations: second-order boosting, missing values, histograms",
    title_zh="从公式实现 XGBoost：二阶提升、缺失值方向与直方图",
    summary_en=(
        "A second-order booster written from Chen & Guestrin's objective: regularised gain, Newton leaf weights, "
        "sparsity-aware default directions, exact and histogram split finding. Its exact mode reproduces xgboost's "
        "predictions; we measure what the hessian buys, what learned NaN directions buy, and the speed against xgboost."
    ),
    summary_zh=(
        "按 Chen 与 Guestrin 的目标函数实现二阶提升树：正则化增益、牛顿叶子权重、稀疏感知的缺失值默认方向、"
        "精确与直方图两种分裂搜索。精确模式与 xgboost 的预测一致；并测量二阶信息、学到的缺失方向各带来多少收益，以及与 xgboost 的速度对比。"
    ),
    implements=("shiyan.trees.xgb",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    rounds: int = 100
    """Boosting rounds in the convergence and missing-value experiments."""
    learning_rate: float = 0.1
    """Shrinkage η of every booster in the experiments."""
    max_depth: int = 4
    """Depth of the trees in the experiments."""
    n_missing: int = 6000
    """Rows of the synthetic missing-not-at-random task."""
    n_compare: int = 10000
    """Rows of diamonds used for the exact vs hist comparison."""
    bench_rows: int = 20000
    """Training rows of diamonds and flights in the benchmark (0 = all)."""
    bench_trees: int = 200
    """Trees of every booster in the benchmark."""
    bench_threads: int = 2
    """Threads given to numba, xgboost, lightgbm and scikit-learn in the benchmark (also timed at 1 thread)."""
    bench_repeats: int = 3
    """Timed rounds of every benchmark row (all models once per round, interleaved; the median is kept)."""

    def validate(self) -> None:
        if self.rounds < 5:
            raise ConfigError(f"rounds must be >= 5; got {self.rounds}")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning_rate must be in (0, 1]; got {self.learning_rate}")
        if self.max_depth < 1:
            raise ConfigError(f"max_depth must be >= 1; got {self.max_depth}")
        if self.n_missing < 500 or self.n_compare < 500:
            raise ConfigError("n_missing and n_compare must be >= 500")
        if self.bench_rows < 0 or self.bench_trees < 1 or self.bench_threads < 1 or self.bench_repeats < 1:
            raise ConfigError("bench_rows must be >= 0; bench_trees, bench_threads and bench_repeats >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(rounds=30, n_missing=3000, n_compare=3000, bench_rows=3000, bench_trees=30, bench_repeats=1)

    @classmethod
    def full(cls) -> Config:
        return cls(rounds=200, n_missing=20000, n_compare=53940, bench_rows=0, bench_trees=200)


def _logloss(margin: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(1 / (1 + np.exp(-margin)), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _train_curve(X32, y, rounds, eta, depth, newton: bool) -> list[float]:
    """Log-loss on the training set after each round, with Newton leaves -G/(H+λ) or gradient leaves -G/(N+λ)."""
    n, p = X32.shape
    cuts, ptr = bin_edges(X32, 256)
    codes = K.bin_columns(X32, cuts, ptr)
    n_bins = (np.diff(ptr) + 2).astype(np.int64)
    hist = np.zeros((2 ** (depth + 1) - 1, p, int(n_bins.max()), 2))
    mask = np.ones(p, dtype=np.bool_)
    levels = np.ones((depth, p), dtype=np.bool_)
    prior = y.mean()
    margin = np.full(n, np.float32(np.log(prior / (1 - prior))), dtype=np.float32)
    g32, h32 = np.zeros(n, np.float32), np.zeros(n, np.float32)
    ones = np.ones(n, np.float32)
    curve = []
    for _ in range(rounds):
        K.grad_logistic(margin, y.astype(np.float32), ones, g32, h32)
        h = h32.astype(np.float64) if newton else np.ones(n)  # first order: unit curvature, leaf = mean -g
        rows = np.arange(n, dtype=np.int32)
        gh = np.stack((g32.astype(np.float64), h), axis=1)  # (n, 2)
        *tree, s0, s1 = K.grow_hist(codes, n_bins, cuts, ptr, gh, rows, mask, levels, 1.0, 0.0, 0.0, depth, 0, False,
                                    eta, hist, numba.get_num_threads())  # fmt: skip
        K.add_leaf_values(margin, rows, s0, s1, tree[0], tree[5])
        curve.append(_logloss(margin.astype(np.float64), y))
    return curve


def _mnar_task(n: int, rng: np.random.Generator):
    """y depends on x0 and x1; x0 is missing mostly when it is large (missing not at random)."""
    X = rng.normal(size=(n, 6))
    logit = 2.0 * X[:, 0] + X[:, 1] - 0.5 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    p_missing = 1 / (1 + np.exp(-3 * (X[:, 0] - 0.5)))  # large x0 -> likely missing
    X[rng.random(n) < p_missing, 0] = np.nan
    return X.astype(np.float32), y


def _auc(y, s) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    # 0. exact mode equals xgboost
    import xgboost

    bc = data.load("breast_cancer")
    Xb = bc.X.astype(np.float32)
    kw = dict(tree_method="exact", n_estimators=20, max_depth=3, reg_lambda=2.0, gamma=0.5, min_child_weight=2.0)
    ours = XGBClassifier(**kw).fit(Xb, bc.y).predict_proba(Xb)[:, 1]
    ref = xgboost.XGBClassifier(**kw, n_jobs=1).fit(Xb, bc.y).predict_proba(Xb)[:, 1]
    diff = float(np.abs(ours - ref).max())
    res.metric("exact_max_abs_diff_vs_xgboost", diff, description="breast cancer, 20 trees, λ=2, γ=0.5, mcw=2")
    res.claim(
        "exact_equals_xgboost",
        "tree_method='exact' reproduces xgboost's predicted probabilities on breast cancer (max |Δp|)",
        diff, "<=", 1e-5,
        text_zh="tree_method='exact' 在乳腺癌数据上复现 xgboost 的预测概率（最大 |Δp|）",
    )  # fmt: skip

    # 1. second vs first order on a log-loss task
    Xs = (Xb - Xb.mean(0)) / Xb.std(0)
    ys = bc.y.astype(np.float64)
    newton = _train_curve(Xs, ys, cfg.rounds, cfg.learning_rate, cfg.max_depth, True)
    first = _train_curve(Xs, ys, cfg.rounds, cfg.learning_rate, cfg.max_depth, False)
    k = cfg.rounds // 3
    res.metric("train_logloss_newton_at_k", newton[k - 1], description=f"after {k} rounds")
    res.metric("train_logloss_gradient_at_k", first[k - 1], description=f"after {k} rounds")
    res.claim(
        "second_order_converges_faster",
        f"After {k} rounds the Newton-leaf booster's training log-loss is below the gradient-leaf booster's (ratio)",
        newton[k - 1] / first[k - 1], "<", 1.0,
        text_zh=f"{k} 轮之后，牛顿叶子的训练对数损失低于仅用梯度的叶子（比值）",
    )  # fmt: skip
    fig, ax = new_figure()
    ax.plot(np.arange(1, cfg.rounds + 1), newton, label="second order: w = -G/(H+λ)")
    ax.plot(np.arange(1, cfg.rounds + 1), first, label="first order: w = -G/(N+λ)")
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("training log-loss")
    ax.legend()
    ctx.save_figure(
        fig, "convergence",
        caption_en=f"Training log-loss on breast cancer, depth {cfg.max_depth}, η = {cfg.learning_rate:g}.",
        caption_zh=f"乳腺癌数据上的训练对数损失，深度 {cfg.max_depth}，η = {cfg.learning_rate:g}。",
    )  # fmt: skip

    # 2. learned default direction vs mean imputation, missing not at random
    rng = ctx.numpy_generator("mnar")
    X, y = _mnar_task(cfg.n_missing, rng)
    cut = int(0.7 * len(y))
    params = dict(n_estimators=cfg.rounds, learning_rate=cfg.learning_rate, max_depth=cfg.max_depth)
    learned = XGBClassifier(**params).fit(X[:cut], y[:cut])
    auc_nan = _auc(y[cut:], learned.predict_proba(X[cut:])[:, 1])
    mean0 = np.nanmean(X[:cut, 0])
    Xi = X.copy()
    Xi[np.isnan(Xi[:, 0]), 0] = mean0
    imputed = XGBClassifier(**params).fit(Xi[:cut], y[:cut])
    auc_imp = _auc(y[cut:], imputed.predict_proba(Xi[cut:])[:, 1])
    frac = float(np.isnan(X[:, 0]).mean())
    res.metric("auc_learned_direction", auc_nan)
    res.metric("auc_mean_imputed", auc_imp)
    res.metric("fraction_missing_x0", frac)
    res.claim(
        "default_direction_beats_mean_imputation",
        "When x0 is missing not at random, learned NaN directions beat mean imputation (test AUC gain)",
        auc_nan - auc_imp, ">", 0.0,
        text_zh="当 x0 非随机缺失时，学到的缺失值方向优于均值填补（测试 AUC 提升）",
    )  # fmt: skip
    fig, ax = new_figure()
    ax.bar(["learned NaN direction", "mean imputation"], [auc_nan, auc_imp], color=["C0", "C1"])
    ax.set_ylim(min(auc_nan, auc_imp) - 0.05, 1.0)
    ax.set_ylabel("test AUC")
    ctx.save_figure(
        fig, "missing",
        caption_en=f"Synthetic task, {frac:.0%} of x0 missing, mostly where x0 is large.",
        caption_zh=f"合成任务：x0 有 {frac:.0%} 缺失，且多在 x0 较大时缺失。",
    )  # fmt: skip

    # 3. exact vs hist on diamonds
    dm = data.load("diamonds")
    idx = ctx.numpy_generator("diamonds").permutation(len(dm.y))[: cfg.n_compare]
    Xd, yd = dm.X[idx].astype(np.float32), np.log(dm.y[idx])
    cut = int(0.8 * len(yd))
    rows = []
    rmse = {}
    for method, mb in (("exact", 256), ("hist", 256), ("hist", 32)):
        m = XGBRegressor(tree_method=method, max_bin=mb, **params)
        m.fit(Xd[:cut], yd[:cut])  # warm-up (compilation)
        t0 = time.perf_counter()
        m.fit(Xd[:cut], yd[:cut])
        t_fit = time.perf_counter() - t0
        rmse[(method, mb)] = float(np.sqrt(np.mean((m.predict(Xd[cut:]) - yd[cut:]) ** 2)))
        rows.append([method, mb if method == "hist" else "-", t_fit, rmse[(method, mb)]])
    rel = rmse[("hist", 256)] / rmse[("exact", 256)]
    res.metric("hist_over_exact_rmse", rel)
    res.claim(
        "hist_as_accurate_as_exact",
        "With 256 bins, hist's test RMSE on diamonds is within 2% of exact's (ratio)",
        rel, "<=", 1.02,
        text_zh="256 个分箱时，hist 在钻石数据上的测试 RMSE 与 exact 相差不超过 2%（比值）",
    )  # fmt: skip
    res.table(
        "exact_vs_hist",
        ["tree_method", "max_bin", "fit time (s)", "test RMSE of log price"],
        rows,
        caption_en=f"Diamonds, {cfg.n_compare} rows, {cfg.rounds} trees of depth {cfg.max_depth}.",
        caption_zh=f"钻石数据 {cfg.n_compare} 行，{cfg.rounds} 棵深度 {cfg.max_depth} 的树。",
    )
    return res


def _bench_data(name: str, n_rows: int, rng: np.random.Generator):
    ds = data.load(name)
    X = ds.X.astype(np.float32)
    y = np.log(ds.y) if name == "diamonds" else ds.y.astype(int)
    idx = rng.permutation(len(y))
    n_test = len(y) // 5
    te, tr = idx[:n_test], idx[n_test:]
    if n_rows:
        tr = tr[:n_rows]
    return X[tr], y[tr], X[te], y[te]


@contextlib.contextmanager
def _threads(n: int):
    """numba's threads and the OpenMP/BLAS pools (scikit-learn, lightgbm) limited to ``n``, restored afterwards."""
    from threadpoolctl import threadpool_limits

    old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(n):
            yield
    finally:
        numba.set_num_threads(old)


def _bench_models(reg: bool, n_trees: int, nt: int) -> dict:
    """The four boosters with the same budget: n_trees rounds, learning rate 0.1, depth 6, 256 bins, nt threads."""
    import lightgbm
    import xgboost
    from sklearn import ensemble

    common = dict(n_estimators=n_trees, learning_rate=0.1, max_depth=6)
    return {
        "ours": (XGBRegressor if reg else XGBClassifier)(tree_method="hist", max_bin=256, **common),
        "xgboost hist": (xgboost.XGBRegressor if reg else xgboost.XGBClassifier)(
            tree_method="hist", max_bin=256, n_jobs=nt, **common
        ),
        "lightgbm": (lightgbm.LGBMRegressor if reg else lightgbm.LGBMClassifier)(
            num_leaves=31, max_bin=255, n_jobs=nt, verbose=-1, **common
        ),
        "sklearn HGB": (ensemble.HistGradientBoostingRegressor if reg else ensemble.HistGradientBoostingClassifier)(
            max_iter=n_trees, learning_rate=0.1, max_depth=6, max_leaf_nodes=None, max_bins=255, early_stopping=False
        ),
    }


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    rows = []
    for name in ("diamonds", "flights"):
        Xtr, ytr, Xte, yte = _bench_data(name, cfg.bench_rows, ctx.numpy_generator(f"bench-{name}"))
        reg = name == "diamonds"
        mname = "RMSE log price" if reg else "AUC"
        for nt in sorted({cfg.bench_threads, 1}, reverse=True):
            with _threads(nt):
                models = _bench_models(reg, cfg.bench_trees, nt)
                fit = interleaved_times(
                    {k: (lambda m=m, X=Xtr, y=ytr: m.fit(X, y)) for k, m in models.items()}, repeats=cfg.bench_repeats
                )
                if reg:
                    metric = {k: float(np.sqrt(np.mean((m.predict(Xte) - yte) ** 2))) for k, m in models.items()}
                    pred = {k: (lambda m=m, X=Xte: m.predict(X)) for k, m in models.items()}
                else:
                    metric = {k: _auc(yte, m.predict_proba(Xte)[:, 1]) for k, m in models.items()}
                    pred = {k: (lambda m=m, X=Xte: m.predict_proba(X)) for k, m in models.items()}
                pred_t = interleaved_times(pred, repeats=max(3, cfg.bench_repeats))
            thr = f"{nt} thread{'s' * (nt > 1)}"
            for ref in ("xgboost hist", "lightgbm", "sklearn HGB"):
                rows.append(BenchRow(
                    f"{name} fit, {len(ytr):,} rows, {cfg.bench_trees} trees, depth 6, 256 bins, {thr}", fit["ours"][0],
                    fit[ref][0], ref, unit="s",
                    note=f"wall, median of {cfg.bench_repeats}; CPU ratio {fit['ours'][1] / fit[ref][1]:.2f}; "
                    f"{mname}: ours {metric['ours']:.4f}, {ref} {metric[ref]:.4f}",
                ))  # fmt: skip
            rows.append(BenchRow(
                f"{name} predict, {len(yte):,} rows, {thr}", pred_t["ours"][0], pred_t["xgboost hist"][0],
                "xgboost hist", unit="s",
                note=f"{len(yte) / pred_t['ours'][0]:,.0f} vs {len(yte) / pred_t['xgboost hist'][0]:,.0f} rows/s",
            ))  # fmt: skip
    return rows
