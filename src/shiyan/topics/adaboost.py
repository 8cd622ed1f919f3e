"""C3 -- AdaBoost (SAMME): the training-error bound, the votes α_m against the errors e_m, and sklearn parity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numba
import numpy as np

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.timing import median_time
from shiyan.trees import AdaBoostClassifier, DecisionTreeClassifier
from shiyan.trees.adaboost import samme_alpha, training_error_bound

META = TopicMeta(
    slug="adaboost",
    category="ML",
    date=dt.date(2025, 3, 18),
    title_en="AdaBoost: re-weighting mistakes, and the bound on the training error",
    title_zh="AdaBoost：给错分样本加权，以及训练误差的上界",
    summary_en=(
        "SAMME AdaBoost over our own CART stumps, equal to scikit-learn's vote for vote on tie-free data. "
        "On NYC flights we watch the training error stay under the bound ∏ 2√(e_m(1−e_m)) at every round, and on "
        "10-class digits we see why SAMME adds ln(K−1) to each vote."
    ),
    summary_zh=(
        "用我们自己的 CART 树桩实现 SAMME AdaBoost，在没有并列分裂的数据上与 scikit-learn 逐轮一致。"
        "在纽约航班数据上验证训练误差在每一轮都低于上界 ∏ 2√(e_m(1−e_m))；"
        "在 10 类手写数字上说明 SAMME 为什么要给每票加上 ln(K−1)。"
    ),
    implements=("shiyan.trees.adaboost",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    dataset: str = "flights"
    """Binary data set for the bound: "flights" (delay > 15 min) or "breast_cancer"."""
    n_train: int = 20000
    """Training rows drawn from the binary data set (all rows when the set is smaller)."""
    n_test: int = 10000
    """Held-out rows drawn from the binary data set (at most what is left after training)."""
    n_estimators: int = 200
    """Boosting rounds M on the binary data set."""
    multiclass_rounds: int = 100
    """Boosting rounds of the 10-class digits run (stumps)."""
    bench_rows: int = 20000
    """Training rows of the flights benchmark fit."""
    bench_estimators: int = 100
    """Rounds of the benchmark fit (stumps)."""
    threads: int = 2
    """numba threads for our fit and the reference's thread count in the benchmark."""

    def validate(self) -> None:
        if self.dataset not in ("flights", "breast_cancer"):
            raise ConfigError(f'dataset must be "flights" or "breast_cancer"; got {self.dataset!r}')
        if self.n_train < 50:
            raise ConfigError(f"n_train must be >= 50; got {self.n_train}")
        if self.n_test < 50:
            raise ConfigError(f"n_test must be >= 50; got {self.n_test}")
        if self.n_estimators < 5:
            raise ConfigError(f"n_estimators must be >= 5; got {self.n_estimators}")
        if self.multiclass_rounds < 5:
            raise ConfigError(f"multiclass_rounds must be >= 5; got {self.multiclass_rounds}")
        if self.bench_rows < 100 or self.bench_estimators < 1 or self.threads < 1:
            raise ConfigError("bench_rows must be >= 100, bench_estimators and threads >= 1")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            dataset="breast_cancer",
            n_train=400,
            n_test=169,
            n_estimators=60,
            multiclass_rounds=30,
            bench_rows=3000,
            bench_estimators=20,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(n_train=100000, n_test=50000, n_estimators=400, multiclass_rounds=200, bench_rows=100000)


def flights_complete() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """NYC flights without the mostly-missing ``wind_gust`` column and without rows that still hold a NaN."""
    ds = data.load("flights")
    keep = [j for j, name in enumerate(ds.feature_names) if name != "wind_gust"]
    X = ds.X[:, keep]
    ok = ~np.isnan(X).any(axis=1)
    return X[ok], ds.y[ok].astype(np.int64), tuple(ds.feature_names[j] for j in keep)


def _binary_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "flights":
        X, y, _ = flights_complete()
        return X, y
    ds = data.load("breast_cancer")
    return np.asarray(ds.X), ds.y.astype(np.int64)


def _boost_binary(name: str, cfg: Config, ctx: RunContext) -> dict:
    """SAMME stumps on one binary set: staged training / held-out error and the bound, round by round."""
    X, y = _binary_data(name)
    perm = ctx.numpy_generator("split", name).permutation(len(y))
    n_train = min(cfg.n_train, int(0.7 * len(y)))
    n_test = min(cfg.n_test, len(y) - n_train)
    tr, te = perm[:n_train], perm[n_train : n_train + n_test]
    model = AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=cfg.n_estimators, random_state=0)
    model.fit(X[tr], y[tr])
    M = len(model.estimators_)
    errors = model.estimator_errors_[:M]  # e_m
    staged = ctx.progress(model.staged_predict(X[tr]), M, f"{name}: staged training error")
    train_err = np.array([np.mean(p != y[tr]) for p in staged])
    test_err = np.array([np.mean(p != y[te]) for p in model.staged_predict(X[te])])
    return dict(name=name, model=model, X=X, y=y, tr=tr, te=te, errors=errors,
                alphas=model.estimator_weights_[:M], train_err=train_err, test_err=test_err,
                bound=training_error_bound(errors))  # fmt: skip


def run(cfg: Config, ctx: RunContext) -> Result:
    from sklearn.ensemble import AdaBoostClassifier as SkAdaBoost
    from sklearn.tree import DecisionTreeClassifier as SkTree

    res = Result()
    names = [cfg.dataset] + (["breast_cancer"] if cfg.dataset != "breast_cancer" else [])
    runs = [_boost_binary(name, cfg, ctx) for name in names]
    main = runs[0]
    res.metric("n_train", len(main["tr"]), description=f"training rows of {cfg.dataset}")

    def _ratio(err: np.ndarray, bound: np.ndarray) -> float:
        """max_m error_m / bound_m (a round with bound 0 counts as 0 if its error is 0, else as infinity)."""
        safe = np.where(bound > 0, err / np.where(bound > 0, bound, 1.0), np.where(err > 0, np.inf, 0.0))
        return float(np.max(safe))

    ratio = max(_ratio(r["train_err"], r["bound"]) for r in runs)
    res.claim(
        "train_error_below_bound",
        f"Training error ≤ ∏ 2√(e_m(1−e_m)) at every round on {', '.join(names)} (max of error ÷ bound)",
        value=ratio,
        op="<=",
        threshold=1.0,
        text_zh=f"在 {', '.join(names)} 上每一轮训练误差都不超过 ∏ 2√(e_m(1−e_m))（误差与上界之比的最大值）",
    )
    for r in runs:
        n = r["name"]
        res.metric(f"bound_final_{n}", r["bound"][-1], description=f"∏ 2√(e(1−e)) after {len(r['errors'])} rounds")
        res.metric(f"train_error_final_{n}", r["train_err"][-1])
        res.metric(f"test_error_final_{n}", r["test_err"][-1])
        res.metric(f"median_e_m_{n}", float(np.median(r["errors"])), description="median weighted error of the stumps")
    gain = float(main["test_err"][0] - main["test_err"][-1])
    res.claim(
        "boosting_beats_one_stump",
        f"{cfg.dataset}: held-out error drops from 1 stump to M rounds (error(1) − error(M))",
        value=gain,
        op=">",
        threshold=0.0,
        text_zh=f"{cfg.dataset}：测试误差从 1 个树桩到 M 轮下降（误差(1) − 误差(M)）",
    )

    X, y, tr, te = main["X"], main["y"], main["tr"], main["te"]
    ref = SkAdaBoost(SkTree(max_depth=1), n_estimators=cfg.n_estimators, random_state=0).fit(X[tr], y[tr])
    acc_gap = abs(main["model"].score(X[te], y[te]) - ref.score(X[te], y[te]))
    res.claim(
        "accuracy_matches_sklearn",
        f"{cfg.dataset}: |test accuracy − scikit-learn AdaBoostClassifier's| (same stumps, M)",
        value=acc_gap,
        op="<=",
        threshold=0.01,
        text_zh=f"{cfg.dataset}：与 scikit-learn AdaBoostClassifier 的测试准确率之差（同样的树桩和轮数）",
    )

    fig, axes = new_figure(1, len(runs), figsize=(5.0 * len(runs), 3.8), squeeze=False)
    for ax, r in zip(axes[0], runs, strict=True):
        rounds = np.arange(1, len(r["errors"]) + 1)
        ax.plot(rounds, r["bound"], label=r"bound $\prod_m 2\sqrt{e_m(1-e_m)}$")
        ax.plot(rounds, r["train_err"], label="training error")
        ax.plot(rounds, r["test_err"], label="held-out error", linestyle="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(r["name"])
        ax.set_xlabel("round m")
        ax.set_ylabel("error")
        ax.legend()
    ctx.save_figure(
        fig,
        "error-bound",
        caption_en=f"Training error, held-out error and the bound over the rounds ({', '.join(names)}).",
        caption_zh=f"训练误差、测试误差与上界随轮数的变化（{', '.join(names)}）。",
    )

    # 10-class digits with stumps: every stump is wrong on most rows (e_m > 1/2), SAMME still gives it a vote
    ds = data.load("digits")
    perm = ctx.numpy_generator("digits").permutation(len(ds.y))
    tr, te = perm[:1200], perm[1200:]
    multi = AdaBoostClassifier(n_estimators=cfg.multiclass_rounds, random_state=0).fit(ds.X[tr], ds.y[tr])
    Mk = len(multi.estimators_)
    e_k, a_k = multi.estimator_errors_[:Mk], multi.estimator_weights_[:Mk]
    share = float(np.mean(e_k > 0.5))
    res.metric("digits_rounds", Mk)
    res.claim(
        "multiclass_votes_above_half",
        "10-class digits: share of stumps with e_m > 1/2 (SAMME still gives each a vote α_m > 0)",
        value=share,
        op=">=",
        threshold=0.5,
        text_zh="10 类手写数字：e_m > 1/2 的树桩所占比例（SAMME 仍给每个树桩正的投票 α_m）",
    )
    acc_digits = multi.score(ds.X[te], ds.y[te])
    res.claim(
        "multiclass_beats_chance",
        "10-class digits: held-out accuracy of SAMME stumps (chance is 0.1)",
        value=acc_digits,
        op=">",
        threshold=0.5,
        text_zh="10 类手写数字：SAMME 树桩的测试准确率（随机猜测为 0.1）",
    )

    fig, ax = new_figure()
    grid2 = np.linspace(0.01, 0.6, 200)
    grid10 = np.linspace(0.01, 0.95, 300)
    ax.plot(
        grid2,
        samme_alpha(np.clip(grid2, 0.01, 0.5 - 1e-9), 2),
        color="C0",
        alpha=0.5,
        label=r"$K=2$: $\ln\frac{1-e}{e}$",
    )
    ax.plot(
        grid10,
        samme_alpha(np.clip(grid10, 0.01, 0.9 - 1e-9), 10),
        color="C1",
        alpha=0.5,
        label=r"$K=10$: $\ln\frac{1-e}{e}+\ln 9$",
    )
    for i, r in enumerate(runs):
        ax.scatter(r["errors"], r["alphas"], s=10, color=f"C{2 * i}", label=f"{r['name']} rounds")
    ax.scatter(e_k, a_k, s=10, color="C1", marker="x", label="digits rounds")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(r"weighted error $e_m$")
    ax.set_ylabel(r"vote $\alpha_m$")
    ax.legend()
    ctx.save_figure(
        fig,
        "alpha-vs-error",
        caption_en="The vote α_m of every round against its weighted error e_m, with the SAMME curves.",
        caption_zh="每一轮的投票权重 α_m 与加权误差 e_m，以及 SAMME 的理论曲线。",
    )

    errors, alphas, bound = main["errors"], main["alphas"], main["bound"]
    train_err, test_err = main["train_err"], main["test_err"]
    M = len(errors)
    every = max(1, M // 8)
    res.table(
        "rounds",
        columns=["m", "e_m", "α_m", "bound", "train error", "held-out error"],
        rows=[
            [
                int(m + 1),
                round(float(errors[m]), 4),
                round(float(alphas[m]), 4),
                round(float(bound[m]), 4),
                round(float(train_err[m]), 4),
                round(float(test_err[m]), 4),
            ]
            for m in range(0, M, every)
        ],
        caption_en=f"{cfg.dataset}: a few rounds of SAMME with stumps.",
        caption_zh=f"{cfg.dataset}：SAMME 树桩的部分轮次。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    from sklearn.ensemble import AdaBoostClassifier as SkAdaBoost
    from sklearn.tree import DecisionTreeClassifier as SkTree

    X, y, _ = flights_complete()
    perm = ctx.numpy_generator("bench").permutation(len(y))
    n = min(cfg.bench_rows, len(y) // 2)
    tr, te = perm[:n], perm[n : 2 * n]
    numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
    ours = AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=cfg.bench_estimators, random_state=0)
    ref = SkAdaBoost(SkTree(max_depth=1), n_estimators=cfg.bench_estimators, random_state=0)
    t_ours = median_time(lambda: ours.fit(X[tr], y[tr]), repeats=3)
    t_ref = median_time(lambda: ref.fit(X[tr], y[tr]), repeats=3)
    acc_o, acc_r = ours.score(X[te], y[te]), ref.score(X[te], y[te])
    t_pred_o = median_time(lambda: ours.predict(X[te]), repeats=3)
    t_pred_r = median_time(lambda: ref.predict(X[te]), repeats=3)
    note = f"flights {n:,} rows, {cfg.bench_estimators} stumps; accuracy ours {acc_o:.4f} vs {acc_r:.4f}"
    return [
        BenchRow("AdaBoost fit (SAMME, stumps)", t_ours, t_ref, "sklearn.ensemble.AdaBoostClassifier", note=note),
        BenchRow(
            f"AdaBoost predict ({n:,} rows)",
            t_pred_o,
            t_pred_r,
            "sklearn.ensemble.AdaBoostClassifier",
            note=f"{n / t_pred_o:,.0f} rows/s ours, {n / t_pred_r:,.0f} rows/s reference",
        ),
    ]
