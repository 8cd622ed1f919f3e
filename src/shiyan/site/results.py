"""HTML for the measured part of a post: provenance, claims, metrics, tables, benchmark, figures.

Everything comes from the latest records of the results store; nothing measured is typed into a
post. Links to figures use the token :data:`ROOT`, replaced at build time by the page's relative
path to the site root.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from shiyan.site.mathml import inline_text_to_html

ROOT = "@SHIYAN_ROOT@/"

_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "results": "结果",
        "no_run": "还没有运行记录：运行这个实验（<code>shiyan run {slug}</code>）后重新构建站点。",
        "no_bench": "还没有基准测试记录（<code>shiyan bench {slug}</code>）。",
        "no_figure": "图 <code>{name}</code>：还没有运行记录。",
        "run": "运行",
        "bench_run": "基准测试运行",
        "date": "日期",
        "profile": "配置档",
        "seed": "种子",
        "commit": "提交",
        "device": "设备",
        "seconds": "耗时",
        "status": "状态",
        "passed": "全部论断成立",
        "failed": "有论断不成立",
        "claims": "论断",
        "claim": "论断",
        "measured": "测量值",
        "op": "关系",
        "threshold": "阈值",
        "verdict": "结论",
        "pass": "✓ 成立",
        "fail": "✗ 不成立",
        "metrics": "指标",
        "metric": "名称",
        "value": "数值",
        "unit": "单位",
        "description": "说明",
        "tables": "表格",
        "benchmark": "基准测试",
        "case": "情形",
        "ours": "我们的",
        "reference": "参考实现",
        "reference_name": "参考",
        "ratio": "比值（我们/参考）",
        "note": "备注",
        "figures": "图",
    },
    "en": {
        "results": "Results",
        "no_run": "No run recorded yet: run the experiment (<code>shiyan run {slug}</code>), then rebuild the site.",
        "no_bench": "No benchmark recorded yet (<code>shiyan bench {slug}</code>).",
        "no_figure": "Figure <code>{name}</code>: no run recorded yet.",
        "run": "Run",
        "bench_run": "Benchmark run",
        "date": "date",
        "profile": "profile",
        "seed": "seed",
        "commit": "commit",
        "device": "device",
        "seconds": "time",
        "status": "status",
        "passed": "all claims hold",
        "failed": "a claim does not hold",
        "claims": "Claims",
        "claim": "Claim",
        "measured": "Measured",
        "op": "Op",
        "threshold": "Threshold",
        "verdict": "Verdict",
        "pass": "✓ pass",
        "fail": "✗ fail",
        "metrics": "Metrics",
        "metric": "Name",
        "value": "Value",
        "unit": "Unit",
        "description": "Description",
        "tables": "Tables",
        "benchmark": "Benchmark",
        "case": "Case",
        "ours": "Ours",
        "reference": "Reference",
        "reference_name": "Reference",
        "ratio": "Ratio (ours/reference)",
        "note": "Note",
        "figures": "Figures",
    },
}


def words(lang: str) -> dict[str, str]:
    if lang not in _WORDS:
        raise ValueError(f"lang must be one of {', '.join(_WORDS)}; got {lang!r}")
    return _WORDS[lang]


def fmt_number(x: Any) -> str:
    """A compact, honest rendering of a measured value (4 significant digits)."""
    if x is None:
        return "NaN"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        v = float(x)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.4g}"
    return str(x)


def _cell(x: Any) -> str:
    if isinstance(x, numbers.Real) or x is None:
        return html.escape(fmt_number(x))
    return inline_text_to_html(str(x))


def _pick(d: Mapping[str, Any], key: str, lang: str, fallback: str = "") -> str:
    """``d[key_lang]``, else the other language, else ``fallback``."""
    other = "en" if lang == "zh" else "zh"
    return str(d.get(f"{key}_{lang}") or d.get(f"{key}_{other}") or fallback)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str, caption: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    # Material styles only class-less tables, so the class goes on a wrapper.
    return f'<div class="{cls}"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def provenance_html(record: Any, lang: str, *, bench: bool = False) -> str:
    """One line: date, profile, seed, commit, device and time of a run record."""
    w = words(lang)
    commit = (record.git_commit or "—")[:12]
    items = [
        (w["date"], html.escape(str(record.ended).replace("T", " ")[:19] + " UTC")),
        (w["profile"], f"<code>{html.escape(record.profile)}</code>"),
        (w["seed"], f"<code>{int(record.seed)}</code>"),
        (w["commit"], f"<code>{html.escape(commit)}</code>"),
        (w["device"], html.escape(str(record.device))),
        (w["seconds"], f"{fmt_number(float(record.seconds))} s"),
    ]
    if not bench:
        ok = record.status == "passed"
        items.append(
            (w["status"], f'<span class="shiyan-{"pass" if ok else "fail"}">{w["passed" if ok else "failed"]}</span>')
        )
    label = w["bench_run" if bench else "run"]
    parts = " · ".join(f"{k} {v}" for k, v in items)
    return f'<p class="shiyan-provenance"><strong>{label}</strong>: {parts}</p>'


def claims_html(claims: Sequence[Mapping[str, Any]], lang: str) -> str:
    w = words(lang)
    rows = []
    for c in claims:
        unit = f" {html.escape(c['unit'])}" if c.get("unit") else ""
        op = str(c["op"])
        threshold = fmt_number(c["threshold"])
        if op in ("==", "!=") and c.get("tol"):
            threshold += f" ± {fmt_number(c['tol'])}"
        ok = bool(c.get("passed"))
        verdict = f'<span class="shiyan-{"pass" if ok else "fail"}">{w["pass" if ok else "fail"]}</span>'
        text = inline_text_to_html(_pick(c, "text", lang, c.get("name", "")))
        rows.append(
            [
                text,
                html.escape(fmt_number(c.get("value"))) + unit,
                html.escape(op),
                html.escape(threshold) + unit,
                verdict,
            ]
        )
    header = [w["claim"], w["measured"], w["op"], w["threshold"], w["verdict"]]
    return _table(header, rows, "shiyan-claims")


def metrics_html(metrics: Sequence[Mapping[str, Any]], lang: str) -> str:
    w = words(lang)
    rows = [
        [
            f"<code>{html.escape(m['name'])}</code>",
            html.escape(fmt_number(m.get("value"))),
            html.escape(m.get("unit") or ""),
            inline_text_to_html(m.get("description") or ""),
        ]
        for m in metrics
    ]
    return _table([w["metric"], w["value"], w["unit"], w["description"]], rows, "shiyan-metrics")


def data_table_html(table: Mapping[str, Any], lang: str) -> str:
    caption = inline_text_to_html(_pick(table, "caption", lang, table.get("name", "")))
    header = [inline_text_to_html(str(c)) for c in table.get("columns", [])]
    rows = [[_cell(x) for x in r] for r in table.get("rows", [])]
    return _table(header, rows, "shiyan-table", caption)


def bench_html(rows: Sequence[Mapping[str, Any]], lang: str) -> str:
    w = words(lang)
    out = []
    for b in rows:
        unit = f" {html.escape(b['unit'])}" if b.get("unit") else ""
        ratio = b.get("ratio")
        out.append(
            [
                html.escape(b["name"])
                + (f"<br><small>{inline_text_to_html(b['note'])}</small>" if b.get("note") else ""),
                html.escape(fmt_number(b.get("ours"))) + unit,
                html.escape(fmt_number(b.get("reference"))) + unit,
                f"<code>{html.escape(str(b.get('reference_name', '')))}</code>",
                f"<strong>{html.escape(fmt_number(ratio))}×</strong>",
            ]
        )
    header = [w["case"], w["ours"], w["reference"], w["reference_name"], w["ratio"]]
    return _table(header, out, "shiyan-bench")


def figure_html(slug: str, fig: Mapping[str, Any], lang: str) -> str:
    caption = _pick(fig, "caption", lang, "")
    alt = html.escape(caption or fig["name"], quote=True)
    src = f"{ROOT}figures/{slug}/{fig['name']}.svg"
    cap = f"<figcaption>{inline_text_to_html(caption)}</figcaption>" if caption else ""
    return f'<figure class="shiyan-figure"><img src="{src}" alt="{alt}">{cap}</figure>'


def missing_figure_html(slug: str, name: str, lang: str) -> str:
    return f'<p class="shiyan-note">{words(lang)["no_figure"].format(name=html.escape(name), slug=slug)}</p>'


def results_html(
    slug: str,
    lang: str,
    run: Any | None,
    bench: Any | None,
    *,
    has_bench: bool,
    unplaced_figures: Sequence[Mapping[str, Any]],
    heading: bool,
) -> str:
    """The results section of one language of a post."""
    w = words(lang)
    parts = [f'<h2 id="shiyan-results-{lang}">{w["results"]}</h2>'] if heading else []
    if run is None:
        parts.append(f'<p class="shiyan-note">{w["no_run"].format(slug=html.escape(slug))}</p>')
    else:
        parts.append(provenance_html(run, lang))
        if run.claims:
            parts += [f"<h3>{w['claims']}</h3>", claims_html(run.claims, lang)]
        if run.metrics:
            parts += [f"<h3>{w['metrics']}</h3>", metrics_html(run.metrics, lang)]
        if run.tables:
            parts.append(f"<h3>{w['tables']}</h3>")
            parts += [data_table_html(t, lang) for t in run.tables]
        if unplaced_figures:
            parts.append(f"<h3>{w['figures']}</h3>")
            parts += [figure_html(slug, f, lang) for f in unplaced_figures]
    if has_bench or bench is not None:
        parts.append(f"<h3>{w['benchmark']}</h3>")
        if bench is None or not bench.bench:
            parts.append(f'<p class="shiyan-note">{w["no_bench"].format(slug=html.escape(slug))}</p>')
        else:
            parts += [provenance_html(bench, lang, bench=True), bench_html(bench.bench, lang)]
    return '<div class="shiyan-results">' + "\n".join(parts) + "</div>"
