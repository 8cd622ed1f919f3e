"""The ``shiyan`` command line.

    shiyan list [--category C] [--page N] [--json]       the latest-updates feed, newest first
    shiyan show SLUG [--lang zh|en] [--json]              a post in the terminal, with its latest results
    shiyan run SLUG [--profile P] [--seed N] [--set k=v]... [--json]
    shiyan reproduce [--profile P] [--jobs N] [--category C] [--force] [--json]
    shiyan bench [SLUG] [--json]
    shiyan site build [--out DIR] [--page-size N] | shiyan site serve [--host H] [--port P]

Exit status: 0 success; 1 a claim failed or a run raised; 2 bad usage (unknown slug, bad --set).
``--json`` output schemas are documented in README.md ("JSON output") and carry ``"schema": 1``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

JSON_SCHEMA = 1
PAGE_SIZE = 10


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _fail(message: str, code: int = 2) -> int:
    _console(stderr=True).print(f"[bold red]error:[/] {message}")
    return code


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    v = float(value)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"


# -- list / show ------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from shiyan.core.topic import CATEGORIES
    from shiyan.topics import catalog

    if args.category is not None and args.category not in CATEGORIES:
        return _fail(f"--category must be one of {', '.join(CATEGORIES)}; got {args.category!r}")
    topics = catalog(args.category)
    pages = max(1, math.ceil(len(topics) / args.page_size))
    if not 1 <= args.page <= pages:
        return _fail(f"--page must be between 1 and {pages}; got {args.page}")
    shown = topics[(args.page - 1) * args.page_size : args.page * args.page_size]
    if args.json:
        _emit_json(
            {
                "schema": JSON_SCHEMA,
                "page": args.page,
                "pages": pages,
                "total": len(topics),
                "topics": [t.meta.to_dict() for t in shown],
            }
        )
        return 0
    from rich.padding import Padding

    console = _console()
    console.print(f"[bold]实验 shiyan — latest updates[/]  (page {args.page}/{pages}, {len(topics)} posts)\n")
    for t in shown:
        m = t.meta
        console.print(f"[cyan]{m.date.isoformat()}[/]  [magenta]{m.category}[/]  [dim]shiyan show {m.slug}[/]")
        console.print(Padding(f"[bold]{m.title_zh}[/]\n[bold]{m.title_en}[/]", (0, 0, 0, 2)))
        console.print(Padding(f"{m.summary_zh}\n[dim]{m.summary_en}[/]\n", (0, 0, 0, 2)))
    if args.page < pages:
        console.print(f"[dim]next page: shiyan list --page {args.page + 1}[/]")
    return 0


def _latest(slug: str, kind: str, data_dir: str | None):
    from shiyan.core.store import Store
    from shiyan.core.store import data_dir as resolve

    root = resolve(data_dir)
    if not (root / "shiyan.sqlite").exists():
        return None
    return Store(root).latest(slug, kind)


def cmd_show(args: argparse.Namespace) -> int:
    from shiyan.core.config import describe
    from shiyan.topics import get_topic

    topic = get_topic(args.slug)
    record = _latest(topic.slug, "run", args.data_dir)
    if args.json:
        _emit_json(
            {
                "schema": JSON_SCHEMA,
                "topic": topic.meta.to_dict(),
                "config": [
                    {"name": n, "type": t, "default": d, "doc": doc} for n, t, d, doc in describe(topic.config_cls)
                ],
                "latest_run": record.to_dict() if record else None,
            }
        )
        return 0
    from rich.markdown import Markdown
    from rich.table import Table

    console = _console()
    m = topic.meta
    zh = args.lang == "zh"
    console.rule(f"[bold]{m.title_zh if zh else m.title_en}[/]")
    console.print(f"[cyan]{m.date.isoformat()}[/]  [magenta]{m.category}[/]  {m.summary_zh if zh else m.summary_en}")
    console.print(f"[dim]implemented in: {', '.join(m.implements)}[/]\n")
    try:
        from shiyan.site import read_post

        body = read_post(m.slug, args.lang)
        console.print(Markdown(body))
    except Exception as exc:  # the post is optional for the terminal view
        console.print(f"[yellow]post not available: {exc}[/]")
    cfg = Table(title="Config (defaults of the 'default' profile)")
    for col in ("field", "type", "default", "doc"):
        cfg.add_column(col)
    for n, t, d, doc in describe(topic.config_cls):
        cfg.add_row(n, t, repr(d), doc)
    console.print(cfg)
    if record is None:
        console.print(f"[dim]no run recorded yet: shiyan run {m.slug}[/]")
    else:
        _print_record(console, record, lang=args.lang)
    return 0


# -- run / reproduce / bench ------------------------------------------------------------------


def _claims_table(records: Sequence[Any], title: str, lang: str = "en"):
    from rich.table import Table

    table = Table(title=title)
    for col in ("topic", "claim", "measured", "", "threshold", "result"):
        table.add_column(col, overflow="fold")
    for r in records:
        if r.status == "error":
            table.add_row(r.topic, "[red]run raised an exception[/]", "", "", "", "[bold red]ERROR[/]")
            continue
        for c in r.claims:
            text = (c.get("text_zh") or c["text_en"]) if lang == "zh" else c["text_en"]
            ok = c["passed"]
            table.add_row(
                r.topic,
                text,
                _fmt(c["value"]) + (f" {c['unit']}" if c.get("unit") else ""),
                c["op"],
                _fmt(c["threshold"]),
                "[green]pass[/]" if ok else "[bold red]FAIL[/]",
            )
    return table


def _print_record(console, record, lang: str = "en") -> None:
    from rich.table import Table

    console.print(
        f"[dim]run {record.run_id} · profile {record.profile} · seed {record.seed} · "
        f"{record.seconds:.2f} s · {record.device} · commit {(record.git_commit or '?')[:10]}[/]"
    )
    if record.metrics:
        t = Table(title="Metrics")
        for col in ("metric", "value", "unit"):
            t.add_column(col)
        for m in record.metrics:
            t.add_row(m["name"], _fmt(m["value"]), m.get("unit", ""))
        console.print(t)
    if record.claims or record.status == "error":
        console.print(_claims_table([record], "Claims", lang))
    if record.bench:
        console.print(_bench_table([record]))
    for f in record.figures:
        console.print(f"[dim]figure {f['name']}: {Path(record_root(record)) / f['png']}[/]")
    if record.error:
        console.print(f"[red]{record.error}[/]")


def record_root(record) -> str:
    from shiyan.core.store import data_dir

    return str(data_dir())


def _bench_table(records):
    from rich.table import Table

    t = Table(title="Benchmarks (ratio = ours / reference)")
    for col in ("topic", "benchmark", "ours", "reference", "ref. time", "ratio"):
        t.add_column(col, overflow="fold")
    for r in records:
        for b in r.bench:
            unit = b.get("unit", "")
            t.add_row(
                r.topic,
                b["name"],
                f"{_fmt(b['ours'])} {unit}",
                b["reference_name"],
                f"{_fmt(b['reference'])} {unit}",
                _fmt(b["ratio"]) + "×",
            )
    return t


def cmd_run(args: argparse.Namespace) -> int:
    from shiyan.core.context import default_show_progress
    from shiyan.core.runner import build_config, execute
    from shiyan.core.store import Store
    from shiyan.topics import get_topic

    topic = get_topic(args.slug)
    cfg = build_config(topic, args.profile, args.seed, args.set or [])
    store = Store(args.data_dir)
    record = execute(
        topic,
        cfg,
        store,
        profile=args.profile,
        device=args.device,
        show_progress=not args.json and default_show_progress(),
    )
    if args.json:
        _emit_json({"schema": JSON_SCHEMA, "data_dir": str(store.root), "run": record.to_dict()})
    else:
        console = _console()
        _print_record(console, record)
    return 0 if record.status == "passed" else 1


def _reproduce_one(job: tuple[str, str, int | None, str | None, bool, int]) -> dict[str, Any]:
    """Worker: run one topic in its own process (so one crash never stops the rest)."""
    slug, profile, seed, data_dir, force, threads = job
    import torch

    torch.set_num_threads(threads)
    from shiyan.core.runner import build_config, execute
    from shiyan.core.store import Store
    from shiyan.topics import get_topic

    topic = get_topic(slug)
    cfg = build_config(topic, profile, seed)
    return execute(topic, cfg, Store(data_dir), profile=profile, reuse=not force).to_dict()


def cmd_reproduce(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shiyan.core.store import RunRecord, Store
    from shiyan.core.topic import CATEGORIES
    from shiyan.topics import catalog

    if args.category is not None and args.category not in CATEGORIES:
        return _fail(f"--category must be one of {', '.join(CATEGORIES)}; got {args.category!r}")
    if args.jobs < 1:
        return _fail(f"--jobs must be at least 1; got {args.jobs}")
    store = Store(args.data_dir)
    removed = store.clean_orphans()
    topics = catalog(args.category)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [(t.slug, args.profile, args.seed, str(store.root), args.force, threads) for t in topics]
    records: list[RunRecord] = []
    console = _console(stderr=args.json)
    if removed:
        console.print(f"[dim]removed {len(removed)} leftovers of interrupted runs[/]")
    with (
        Progress(
            TextColumn("[bold]reproduce[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=args.json or not console.is_terminal,
        ) as bar,
        ProcessPoolExecutor(max_workers=args.jobs) as pool,
    ):
        task = bar.add_task(f"{args.profile} profile", total=len(jobs))
        futures = {pool.submit(_reproduce_one, job): job[0] for job in jobs}
        for fut in as_completed(futures):
            slug = futures[fut]
            try:
                rec = RunRecord(**fut.result())
            except Exception as exc:  # the worker process itself died
                console.print(f"[red]{slug}: worker failed: {exc}[/]")
                rec = None
            if rec is not None:
                records.append(rec)
                if not console.is_terminal and not args.json:
                    console.print(f"{slug}: {rec.status} ({rec.seconds:.1f} s)")
            bar.advance(task)
    order = {t.slug: i for i, t in enumerate(topics)}
    records.sort(key=lambda r: order[r.topic])
    n_claims = sum(len(r.claims) for r in records)
    n_failed = sum(1 for r in records for c in r.claims if not c["passed"])
    n_errors = sum(1 for r in records if r.status == "error") + (len(jobs) - len(records))
    ok = n_failed == 0 and n_errors == 0
    if args.json:
        _emit_json(
            {
                "schema": JSON_SCHEMA,
                "data_dir": str(store.root),
                "profile": args.profile,
                "passed": ok,
                "claims": n_claims,
                "failed_claims": n_failed,
                "errors": n_errors,
                "runs": [r.to_dict() for r in records],
            }
        )
    else:
        console.print(_claims_table(records, f"Claims — {args.profile} profile"))
        for r in records:
            if r.status == "error":
                console.print(f"[red]{r.topic} raised:[/]\n{r.error}")
        verdict = "[green]all claims pass[/]" if ok else "[bold red]some claims failed[/]"
        console.print(
            f"{len(records)} topics, {n_claims} claims, {n_failed} failed, {n_errors} errors — {verdict}. "
            f"Results in {store.root}"
        )
    return 0 if ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from shiyan.core.runner import build_config, execute
    from shiyan.core.store import Store
    from shiyan.topics import catalog, get_topic

    topics = [get_topic(args.slug)] if args.slug else [get_topic(e.slug) for e in catalog() if e.has_bench]
    if args.slug and topics[0].bench is None:
        return _fail(f"topic {args.slug!r} has no benchmark")
    store = Store(args.data_dir)
    records = []
    for topic in topics:
        cfg = build_config(topic, args.profile, args.seed)
        records.append(execute(topic, cfg, store, profile=args.profile, kind="bench"))
    errors = [r for r in records if r.status == "error"]
    if args.json:
        _emit_json({"schema": JSON_SCHEMA, "data_dir": str(store.root), "benchmarks": [r.to_dict() for r in records]})
    else:
        console = _console()
        console.print(_bench_table(records))
        for r in errors:
            console.print(f"[red]{r.topic} raised:[/]\n{r.error}")
    return 1 if errors else 0


# -- site -------------------------------------------------------------------------------------


def cmd_site(args: argparse.Namespace) -> int:
    from shiyan import site

    out = Path(args.out)
    if args.site_command == "build":
        try:
            path = site.build_site(out, data_dir=args.data_dir, page_size=args.page_size)
        except (site.PostError, site.SiteError) as exc:
            return _fail(f"site build failed: {exc}", code=1)
        _console().print(f"site built in {path} — open {path / 'index.html'} or run: shiyan site serve")
        return 0
    if not (out / "index.html").exists():
        return _fail(f"no built site in {str(out)!r}; run: shiyan site build --out {out}")
    _console().print(f"serving {out} at http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    site.serve_site(out, host=args.host, port=args.port)
    return 0


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from shiyan.core.config import PROFILES

    parser = argparse.ArgumentParser(
        prog="shiyan", description="实验 shiyan: ML methods implemented, checked, reproduced and published."
    )
    parser.add_argument("--version", action="version", version=f"shiyan {__import__('shiyan').__version__}")
    parser.add_argument(
        "--data-dir", default=None, help="results store folder (default: $SHIYAN_DATA_DIR or ./results)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the latest-updates feed, newest first")
    p.add_argument("--category", default=None, help="Math, ML, DL, LLM, RL, NLP or CV")
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--page-size", type=int, default=PAGE_SIZE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="a post in the terminal, with its config and latest results")
    p.add_argument("slug")
    p.add_argument("--lang", choices=("zh", "en"), default="en")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    def add_run_options(p: argparse.ArgumentParser, default_profile: str) -> None:
        p.add_argument("--profile", choices=PROFILES, default=default_profile)
        p.add_argument("--seed", type=int, default=None, help="override the config's seed")
        p.add_argument("--json", action="store_true", help="machine-readable output (see README)")

    p = sub.add_parser("run", help="run one topic, record it, print its claims")
    p.add_argument("slug")
    add_run_options(p, "quick")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("reproduce", help="run every topic (finished runs with the same config and code are reused)")
    add_run_options(p, "default")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--category", default=None)
    p.add_argument("--force", action="store_true", help="run again even where a matching run exists")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("bench", help="benchmarks as ratios to the reference library")
    p.add_argument("slug", nargs="?")
    add_run_options(p, "default")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("site", help="build or serve the static site")
    site_sub = p.add_subparsers(dest="site_command", required=True, metavar="build|serve")
    b = site_sub.add_parser("build", help="build the site from the posts and the latest results")
    b.add_argument("--out", default="site")
    b.add_argument("--page-size", type=int, default=PAGE_SIZE)
    s = site_sub.add_parser("serve", help="serve the built site (binds 127.0.0.1 by default)")
    s.add_argument("--out", default="site")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_site)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from shiyan.core.config import ConfigError
    from shiyan.topics import UnknownTopicError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "page_size", 1) < 1:
        return _fail(f"--page-size must be at least 1; got {args.page_size}")
    try:
        return args.func(args)
    except UnknownTopicError as exc:
        return _fail(str(exc))
    except ConfigError as exc:
        return _fail(f"bad configuration: {exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
