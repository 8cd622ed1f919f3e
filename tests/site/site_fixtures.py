"""Shared test data for the site tests: fake topics, their posts and a results store with one run.

Three fake topics (newest first): ``fake-softmax`` (DL), ``fake-least-squares`` (ML) and
``fake-random-walk`` (Math). Only the random walk has a run (claims, metrics, a table, two SVG
figures: ``walk`` placed by a marker, ``extra`` left for the results section) and a benchmark.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shiyan.core import RunRecord, Store, TopicMeta

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200">'
    '<rect width="320" height="200" fill="#ffffff"/>'
    '<polyline fill="none" stroke="#1f77b4" stroke-width="3" points="10,190 80,120 160,150 240,40 310,90"/>'
    "</svg>"
)

TOPICS = [
    TopicMeta(
        slug="fake-random-walk",
        category="Math",
        date=dt.date(2024, 1, 5),
        title_en="Random walks",
        title_zh="随机游走",
        summary_en="Where a simple random walk ends up after $n$ steps.",
        summary_zh="简单随机游走走了 $n$ 步之后停在哪里。",
        implements=("shiyan.core.result",),
    ),
    TopicMeta(
        slug="fake-least-squares",
        category="ML",
        date=dt.date(2024, 2, 1),
        title_en="Least squares",
        title_zh="最小二乘",
        summary_en="Fitting a line by minimising the squared error.",
        summary_zh="通过最小化平方误差拟合一条直线。",
    ),
    TopicMeta(
        slug="fake-softmax",
        category="DL",
        date=dt.date(2024, 3, 1),
        title_en="Softmax",
        title_zh="归一化指数函数",
        summary_en="Turning scores into probabilities.",
        summary_zh="把分数变成概率。",
    ),
]

BODIES = {
    "fake-random-walk": (
        "一维简单随机游走每一步以概率 $p$ 向右、以概率 $q = 1 - p$ 向左。走 $n$ 步后的位置满足",
        "A simple random walk steps right with probability $p$ and left with probability $q = 1 - p$. "
        "After $n$ steps its position satisfies",
        r"P(S_n = k) = \binom{n}{(n+k)/2} p^{(n+k)/2} q^{(n-k)/2}",
    ),
    "fake-least-squares": (
        "最小二乘法求使残差平方和最小的系数 $\\beta$：",
        "Least squares picks the coefficients $\\beta$ that minimise the residual sum of squares:",
        r"\hat\beta = (X^\top X)^{-1} X^\top y",
    ),
    "fake-softmax": (
        "归一化指数函数把任意实数向量变成概率分布：",
        "The softmax turns any real vector into a probability distribution:",
        r"\sigma(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}",
    ),
}


def post_text(slug: str, lang: str, *, with_markers: bool = True) -> str:
    zh, en, formula = BODIES[slug]
    heading, text, results = ("思路", zh, "结果") if lang == "zh" else ("The idea", en, "Results")
    parts = [
        "---",
        f"slug: {slug}",
        f"lang: {lang}",
        "---",
        "",
        f"## {heading}",
        "",
        text,
        "",
        "$$",
        formula,
        "$$",
        "",
        "```python",
        'price = "$5 and $6"  # not math',
        "```",
        "",
    ]
    if with_markers and slug == "fake-random-walk":
        parts += ["<!-- shiyan:figure walk -->", "", f"## {results}", "", "<!-- shiyan:results -->", ""]
    return "\n".join(parts)


def write_posts(posts_dir: Path, topics=TOPICS) -> Path:
    posts_dir.mkdir(parents=True, exist_ok=True)
    for meta in topics:
        for lang in ("zh", "en"):
            (posts_dir / f"{meta.slug}.{lang}.md").write_text(post_text(meta.slug, lang), encoding="utf-8")
    return posts_dir


def run_record(run_id: str = "20240105T100000-fake-random-walk-1", *, figures=("walk", "extra")) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        kind="run",
        topic="fake-random-walk",
        profile="quick",
        seed=1234,
        config={"n_steps": 40},
        config_hash="cfg",
        code_hash="code",
        git_commit="0123456789abcdef0123",
        versions={"python": "3.11"},
        device="cpu (2 threads)",
        started="2024-01-05T10:00:00.000+00:00",
        ended="2024-01-05T10:00:03.000+00:00",
        seconds=3.0,
        status="failed",
        metrics=[{"name": "max_abs_err", "value": 0.0031, "unit": "", "description": "max $|p - \\hat p|$"}],
        claims=[
            {
                "name": "mc_matches_exact",
                "text_en": "Monte Carlo frequencies match the exact pmf",
                "text_zh": "蒙特卡洛频率与精确分布一致",
                "value": 0.0031,
                "op": "<=",
                "threshold": 0.01,
                "unit": "",
                "tol": 0.0,
                "passed": True,
            },
            {
                "name": "too_fast",
                "text_en": "Sampling takes under a microsecond",
                "text_zh": "采样耗时不到一微秒",
                "value": 0.5,
                "op": "<",
                "threshold": 1e-6,
                "unit": "s",
                "tol": 0.0,
                "passed": False,
            },
        ],
        tables=[
            {
                "name": "errors",
                "columns": ["n", "max error"],
                "rows": [[10, 0.0123], [1000, 0.000456]],
                "caption_en": "Error against the number of walks",
                "caption_zh": "误差与游走次数",
            }
        ],
        figures=[
            {
                "name": name,
                "path": f"figures/{run_id}/{name}.svg",
                "png": f"figures/{run_id}/{name}.png",
                "caption_en": f"Caption {name} en",
                "caption_zh": f"图注 {name} 中文",
            }
            for name in figures
        ],
        bench=[],
    )


def bench_record() -> RunRecord:
    base = run_record("20240105T100010-fake-random-walk-2", figures=()).to_dict()
    base.update(
        kind="bench",
        status="passed",
        claims=[],
        metrics=[],
        tables=[],
        bench=[
            {
                "name": "pmf n=1000",
                "ours": 0.002,
                "reference": 0.001,
                "reference_name": "scipy.stats.binom.pmf",
                "unit": "s",
                "note": "",
                "ratio": 2.0,
            }
        ],
    )
    return RunRecord(**base)


def make_store(data_dir: Path, *, figures=("walk", "extra")) -> Store:
    store = Store(data_dir)
    record = run_record(figures=figures)
    staging = store.new_staging(record.run_id)
    for name in figures:
        (staging / f"{name}.svg").write_text(SVG, encoding="utf-8")
    store.add(record, staging)
    store.add(bench_record())
    return store
