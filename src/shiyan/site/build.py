"""Build the static feed: stage a complete MkDocs project in a temporary folder, build it with
mkdocs-material (blog, search, RSS) and swap the result into ``out_dir``.

Staged project (never written into ``docs/``)::

    <tmp>/mkdocs.yml
    <tmp>/docs/index.md                 the feed (blog index)
    <tmp>/docs/posts/<slug>.md          one page per topic: META + both languages in tabs
    <tmp>/docs/figures/<slug>/*.svg     figures of the latest run
    <tmp>/docs/code/<module>.md         the source of each module named in META.implements
    <tmp>/docs/assets/shiyan.css
    <tmp>/fragments/*.html              results HTML, put in place by ``shiyan_hooks.py``

Nothing about a post is guessed: a malformed post, a missing translation, a post for an unknown
slug or a formula that does not convert raises :class:`PostError` naming the file, and
``out_dir`` is left as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from shiyan.core.topic import CATEGORIES, TopicMeta
from shiyan.site import results as R
from shiyan.site.mathml import MathError, find_formulas, inline_text_to_html
from shiyan.site.posts import LANGS, Post, PostError, collect_posts, default_posts_dir

log = logging.getLogger("shiyan.site")

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
HOOKS_FILE = PACKAGE_DIR / "shiyan_hooks.py"  # MkDocs registers it as sys.modules["shiyan_hooks"]
SITE_MARKER = ".shiyan-site"
DEFAULT_SITE_URL = "http://127.0.0.1:8000/"
RSS_FEED = "feed_rss_created.xml"
"""Path of the RSS 2.0 feed (newest posts first) inside the built site."""

SEARCH_SEPARATOR = r'[\s\u200b\u3000\-、。，．？！；：（）「」,:;!=\[\]()"/]+|\.(?!\d)|&[lg]t;'
TAB_LABELS = {"zh": "中文", "en": "English"}
_FIGURE_MARKER = re.compile(r"^\s*<!--\s*shiyan:figure\s+(?P<name>[A-Za-z0-9_-]+)\s*-->\s*$")
_RESULTS_MARKER = re.compile(r"^\s*<!--\s*shiyan:results\s*-->\s*$")
_RESULTS_SLOT = "\0results\0"  # cannot occur in a text file's line
_ANY_MARKER = re.compile(r"<!--\s*shiyan:")
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})")

MARKDOWN_EXTENSIONS: list[Any] = [
    {"toc": {"permalink": True}},
    "abbr",
    "admonition",
    "attr_list",
    "def_list",
    "footnotes",
    "md_in_html",
    "tables",
    "pymdownx.details",
    {"pymdownx.highlight": {"anchor_linenums": False}},
    "pymdownx.inlinehilite",
    "pymdownx.superfences",
    {"pymdownx.tabbed": {"alternate_style": True}},
    {"pymdownx.arithmatex": {"generic": True}},
]


class SiteError(RuntimeError):
    """The site could not be built (MkDocs failed, a figure file is missing, ...)."""


# -- posts -----------------------------------------------------------------------------------
def _markdown():
    """A Markdown converter configured like the site, to find the formulas of a post."""
    import markdown

    names, configs = [], {}
    for ext in MARKDOWN_EXTENSIONS:
        if isinstance(ext, dict):
            ((name, cfg),) = ext.items()
            names.append(name)
            configs[name] = cfg
        else:
            names.append(ext)
    return markdown.Markdown(extensions=names, extension_configs=configs)


def check_math(post: Post) -> None:
    """Convert every formula of ``post`` once; the first failure raises :class:`PostError`."""
    from shiyan.site.mathml import to_mathml

    html_text = _markdown().convert(post.body)
    for tex, display in find_formulas(html_text):
        try:
            to_mathml(tex, display)
        except MathError as e:
            raise PostError(f"{post.path}: formula {tex!r} does not convert to MathML ({e.reason})") from e


def _check_meta_math(meta: TopicMeta) -> None:
    for field in ("title_en", "title_zh", "summary_en", "summary_zh"):
        try:
            inline_text_to_html(getattr(meta, field))
        except MathError as e:
            raise SiteError(f"topic {meta.slug!r}: META.{field}: {e}") from e


def _meta_of(topic: Any) -> TopicMeta:
    meta = getattr(topic, "meta", topic)
    if not isinstance(meta, TopicMeta):
        raise TypeError(f"topics must hold Topic or TopicMeta objects; got {type(topic).__name__}")
    return meta


def _has_bench(topic: Any) -> bool:
    if hasattr(topic, "has_bench"):  # a catalog entry
        return bool(topic.has_bench)
    return getattr(topic, "bench", None) is not None


# -- code pages ------------------------------------------------------------------------------
def _module_files(name: str, slug: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise SiteError(f"topic {slug!r}: META.implements names {name!r}, which does not import ({e})") from e
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise SiteError(f"topic {slug!r}: META.implements names {name!r}, which is not a Python source module")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


def _repo_path(path: Path) -> str:
    """``src/shiyan/...`` for the package's own files, else the path below its import root."""
    import shiyan

    src_root = Path(shiyan.__file__).resolve().parent.parent
    try:
        return "src/" + path.resolve().relative_to(src_root).as_posix()
    except ValueError:
        return path.name


def _code_page(name: str, files: list[Path], used_by: Sequence[TopicMeta], repo_url: str | None) -> str:
    """A page showing the source of module ``name``, linked back to the posts that use it."""
    parts = [
        "---",
        yaml.safe_dump({"title": name, "search": {"exclude": True}}, allow_unicode=True).strip(),
        "---",
        "",
        f"# `{name}`",
        "",
        "用于 · Used by: " + ", ".join(f"[{m.title_zh} · {m.title_en}](../posts/{m.slug}.md)" for m in used_by),
        "",
    ]
    for path in files:
        rel = _repo_path(path)
        source = path.read_text(encoding="utf-8")
        longest = max((len(m) for m in re.findall(r"`+", source)), default=0)
        fence = "`" * max(3, longest + 1)
        where = f"[`{rel}`]({repo_url.rstrip('/')}/{rel})" if repo_url else f"`{rel}`"
        parts += [
            f"## {path.name}",
            "",
            f"源文件 · Source: {where}",
            "",
            f"{fence}python",
            source.rstrip("\n"),
            fence,
            "",
        ]
    return "\n".join(parts)


# -- staging a post --------------------------------------------------------------------------
class _Fragments:
    """Writes HTML fragments to ``fragments/`` and hands back their placeholder paragraphs."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def add(self, html_text: str) -> str:
        self.count += 1
        key = f"SHIYANFRAG-{self.count}"
        (self.root / f"{key}.html").write_text(html_text, encoding="utf-8")
        return key


def _fill_body(
    post: Post,
    meta: TopicMeta,
    run: Any | None,
    bench: Any | None,
    has_bench: bool,
    frags: _Fragments,
    strict: bool,
) -> str:
    """The post body with its markers replaced by placeholders, results at the marker or the end."""
    figures = {f["name"]: f for f in (run.figures if run is not None else [])}
    placed: set[str] = set()
    lines: list[str] = []
    results_marker = False
    fence: str | None = None
    for lineno, line in enumerate(post.body.splitlines(), start=post.body_line):
        m = _FENCE.match(line)
        if m is not None:
            if fence is None:
                fence = m["fence"]
            elif m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) and not line.strip().strip(fence[0]):
                fence = None
            lines.append(line)
            continue
        if fence is not None:
            lines.append(line)
            continue
        fig = _FIGURE_MARKER.match(line)
        if fig is not None:
            name = fig["name"]
            if run is None:
                html_text = R.missing_figure_html(meta.slug, name, post.lang)
            elif name in figures:
                html_text = R.figure_html(meta.slug, figures[name], post.lang)
                placed.add(name)
            elif strict:
                have = ", ".join(sorted(figures)) or "none"
                raise PostError(
                    f"{post.path}:{lineno}: figure {name!r} is not in the latest run of {meta.slug!r} (it has: {have})"
                )
            else:
                html_text = R.missing_figure_html(meta.slug, name, post.lang)
            lines += ["", frags.add(html_text), ""]
            continue
        if _RESULTS_MARKER.match(line):
            if results_marker:
                raise PostError(f"{post.path}:{lineno}: <!-- shiyan:results --> appears twice")
            results_marker = True
            lines += ["", _RESULTS_SLOT, ""]
            continue
        if _ANY_MARKER.search(line):
            raise PostError(
                f"{post.path}:{lineno}: unknown shiyan marker {line.strip()!r} "
                "(use <!-- shiyan:figure NAME --> or <!-- shiyan:results --> on a line of its own)"
            )
        lines.append(line)
    unplaced = [f for name, f in figures.items() if name not in placed]
    html_text = R.results_html(
        meta.slug, post.lang, run, bench, has_bench=has_bench, unplaced_figures=unplaced, heading=not results_marker
    )
    key = frags.add(html_text)
    if results_marker:
        lines = [key if ln == _RESULTS_SLOT else ln for ln in lines]
    else:
        lines += ["", key, ""]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(("    " + ln) if ln.strip() else "" for ln in text.splitlines())


def _post_page(meta: TopicMeta, bodies: dict[str, str], repo_links: dict[str, str]) -> str:
    """The staged Markdown of one post: META on top (the feed's excerpt), then a tab per language."""
    title = f"{meta.title_zh} · {meta.title_en}"
    front = {
        "title": title,
        "date": meta.date,
        "categories": [meta.category],
        "slug": meta.slug,
        "description": f"{meta.summary_zh} {meta.summary_en}",
        "hide": ["toc"],
    }
    out = ["---", yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip(), "---", ""]
    out += [f"# {title}", "", meta.summary_zh, "{ .shiyan-summary-zh }", "", meta.summary_en, "{ .shiyan-summary-en }"]
    out += ["", "<!-- more -->", ""]
    impl_label = {"zh": "实现", "en": "Implementation"}
    for lang in LANGS:
        links = []
        for name in meta.implements:
            link = f"[`{name}`](../code/{name}.md)"
            if name in repo_links:
                link += f" ([{'仓库' if lang == 'zh' else 'repository'}]({repo_links[name]}))"
            links.append(link)
        head = f"**{impl_label[lang]}:** " + ", ".join(links) if links else ""
        out += [f'=== "{TAB_LABELS[lang]}"', ""]
        if head:
            out += [_indent(head + "\n{ .shiyan-implements }"), ""]
        out += [_indent(bodies[lang]), ""]
    return "\n".join(out)


# -- mkdocs.yml ------------------------------------------------------------------------------
def _mkdocs_config(staging: Path, page_size: int, site_url: str) -> dict[str, Any]:
    """The ``mkdocs.yml`` of the staged project (a dict, dumped as YAML)."""
    return {
        "site_name": "shiyan 实验",
        "site_description": "实现、检验、复现：一本机器学习笔记 · An ML notebook, implemented and checked",
        "site_url": site_url,
        "docs_dir": "docs",
        "use_directory_urls": True,
        "theme": {
            "name": "material",
            "language": "zh",
            "font": False,
            "features": [
                "content.tabs.link",
                "content.code.copy",
                "navigation.top",
                "navigation.footer",
                "search.highlight",
            ],
            "palette": [
                {
                    "media": "(prefers-color-scheme: light)",
                    "scheme": "default",
                    "primary": "teal",
                    "accent": "deep orange",
                    "toggle": {"icon": "material/weather-night", "name": "暗色 · Dark"},
                },
                {
                    "media": "(prefers-color-scheme: dark)",
                    "scheme": "slate",
                    "primary": "teal",
                    "accent": "deep orange",
                    "toggle": {"icon": "material/weather-sunny", "name": "亮色 · Light"},
                },
            ],
        },
        "extra_css": ["assets/shiyan.css"],
        "nav": [{"最新 · Latest": "index.md"}],
        "not_in_nav": "/code/\n",
        "markdown_extensions": MARKDOWN_EXTENSIONS,
        "hooks": [str(HOOKS_FILE)],
        "plugins": [
            {
                "search": {
                    # Chinese is cut into words by jieba at build time (joined by U+200B); the
                    # browser segments Chinese queries against the index. No stemmer or trimmer:
                    # they drop Chinese tokens and break prefix matches of English words.
                    "separator": SEARCH_SEPARATOR,
                    "pipeline": ["stopWordFilter"],
                }
            },
            {
                "blog": {
                    "blog_dir": ".",
                    "blog_toc": False,
                    "post_url_format": "posts/{slug}",
                    "post_excerpt": "required",
                    "post_readtime": False,
                    "post_date_format": "long",
                    "archive_date_format": "yyyy",
                    "archive_url_format": "archive/{date}",
                    "categories_allowed": list(CATEGORIES),
                    "categories_url_format": "category/{slug}",
                    "authors": False,
                    "pagination_per_page": page_size,
                    "pagination_url_format": "page/{page}",
                    "pagination_if_single_page": False,
                }
            },
            {
                "rss": {
                    "match_path": r"posts/.*",
                    "date_from_meta": {"as_creation": "date", "as_update": "date"},
                    "categories": ["categories"],
                    "use_git": False,
                    "use_material_social_cards": False,
                    "cache_dir": str(staging / ".cache-rss"),
                    "feed_title": "shiyan 实验 · latest updates",
                    "feed_description": "实现、检验、复现 · implemented, checked, reproduced",
                    "json_feed_enabled": True,
                    "length": 50,
                    "image": f"{site_url}assets/images/favicon.png",
                }
            },
        ],
    }


# -- the build -------------------------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


@contextlib.contextmanager
def _quiet_mkdocs() -> Iterator[_Capture]:
    """Collect MkDocs warnings (to report them) instead of printing them; silence jieba's banner."""
    mk = logging.getLogger("mkdocs")
    cap = _Capture()
    old_propagate, old_jieba = mk.propagate, logging.getLogger("jieba").level
    mk.addHandler(cap)
    mk.propagate = False
    logging.getLogger("jieba").setLevel(logging.WARNING)
    try:
        with contextlib.suppress(ImportError):
            import jieba

            jieba.setLogLevel(logging.WARNING)
        yield cap
    finally:
        mk.removeHandler(cap)
        mk.propagate = old_propagate
        logging.getLogger("jieba").setLevel(old_jieba)


def _run_mkdocs(config_file: Path, site_dir: Path, strict: bool) -> list[str]:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    with _quiet_mkdocs() as cap:
        try:
            cfg = load_config(config_file=str(config_file), strict=strict, site_dir=str(site_dir))
            cfg.plugins.on_startup(command="build", dirty=False)
            try:
                build(cfg)
            finally:
                cfg.plugins.on_shutdown()
        except PostError:
            raise
        except (MkDocsException, Exception) as e:
            details = "\n".join(cap.messages[-20:])
            raise SiteError(f"mkdocs build failed: {e}" + (f"\n{details}" if details else "")) from e
    return cap.messages


def _check_out_dir(out_dir: Path, posts_dir: Path) -> None:
    """Refuse an ``out_dir`` whose replacement would destroy something that is not a built site."""
    for p in (posts_dir, posts_dir.parent):
        if out_dir == p or p.is_relative_to(out_dir):
            raise SiteError(f"out_dir {out_dir} would replace the posts folder {posts_dir}")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SiteError(f"out_dir {out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / SITE_MARKER).exists():
            raise SiteError(
                f"out_dir {out_dir} is a non-empty folder that is not a built shiyan site; refusing to replace it"
            )


_RESOURCE = re.compile(r"<(?P<tag>script|link|img|iframe|source|video|audio|embed|object)\b(?P<attrs>[^>]*)>", re.I)
_URL_ATTR = re.compile(r"\b(?:src|href|data|srcset|poster)\s*=\s*[\"']?\s*((?:https?:)?//[^\"'\s>]+)", re.I)


def find_external_resources(site_dir: Path) -> list[tuple[str, str]]:
    """``(page, url)`` for every script, stylesheet, image or frame a built page would fetch from
    another host (``<a>`` links and ``<link rel="canonical">`` are not fetched, so they pass)."""
    found = []
    for page in sorted(site_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for m in _RESOURCE.finditer(text):
            if m["tag"].lower() == "link" and re.search(r"\brel\s*=\s*[\"']?canonical", m["attrs"], re.I):
                continue
            for url in _URL_ATTR.findall(m["attrs"]):
                if not re.match(r"^(?:https?:)?//(?:127\.0\.0\.1|localhost)(?::\d+)?(?:/|$)", url):
                    found.append((page.relative_to(site_dir).as_posix(), url))
    return found


def _swap_in(built: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``built`` (both on the same file system) with two renames."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "site")
    try:
        os.replace(built, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old / "site", out_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _copy_figures(run: Any, data_root: Path, dest: Path, strict: bool) -> None:
    """Copy the SVG figures of ``run`` into the staged docs (``figures/<slug>/<name>.svg``)."""
    for fig in run.figures:
        src = data_root / fig["path"]
        if not src.is_file():
            if strict:
                raise SiteError(f"topic {run.topic!r}: figure file {src} of run {run.run_id} is missing")
            log.warning("topic %r: figure file %s of run %s is missing", run.topic, src, run.run_id)
            continue
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / f"{fig['name']}.svg")


def _latest(store: Any | None, slug: str, kind: str) -> Any | None:
    return store.latest(slug, kind) if store is not None else None


def _open_store(data_dir: Path | None) -> Any | None:
    """The results store, or None when there is none yet (building never creates one)."""
    from shiyan.core.store import Store
    from shiyan.core.store import data_dir as resolve

    root = resolve(data_dir)
    return Store(root) if (root / "shiyan.sqlite").is_file() else None


def stage_project(
    staging: Path,
    metas: Sequence[TopicMeta],
    posts: dict[str, dict[str, Post]],
    store: Any | None,
    has_bench: dict[str, bool],
    *,
    page_size: int,
    strict: bool,
    site_url: str,
    repo_url: str | None,
) -> Path:
    """Write the complete MkDocs project into ``staging``; returns the path of ``mkdocs.yml``."""
    docs = staging / "docs"
    (docs / "posts").mkdir(parents=True)
    (docs / "assets").mkdir()
    (docs / "code").mkdir()
    frags = _Fragments(staging / "fragments")
    for asset in sorted(ASSETS_DIR.iterdir()):
        if asset.is_file():
            shutil.copy2(asset, docs / "assets" / asset.name)
    index = [
        "# 最新动态 · Latest updates",
        "",
        "每篇文章：一个方法的实现、可能失败的检验、可复现的论断与基准测试。"
        "Each post: one method, implemented, checked against an oracle, with measured claims and a benchmark.",
        "{ .shiyan-intro }",
        "",
    ]
    (docs / "index.md").write_text("\n".join(index), encoding="utf-8")
    used_by: dict[str, list[TopicMeta]] = {}
    for meta in metas:
        if meta.slug not in posts:
            continue
        _check_meta_math(meta)
        run = _latest(store, meta.slug, "run")
        bench = _latest(store, meta.slug, "bench")
        if run is not None:
            _copy_figures(run, store.root, docs / "figures" / meta.slug, strict)
        repo_links: dict[str, str] = {}
        for name in meta.implements:
            used_by.setdefault(name, []).append(meta)
            if repo_url:
                repo_links[name] = f"{repo_url.rstrip('/')}/{_repo_path(_module_files(name, meta.slug)[0])}"
        bodies = {
            lang: _fill_body(post, meta, run, bench, has_bench.get(meta.slug, False), frags, strict)
            for lang, post in posts[meta.slug].items()
        }
        (docs / "posts" / f"{meta.slug}.md").write_text(_post_page(meta, bodies, repo_links), encoding="utf-8")
    for name, users in used_by.items():
        files = _module_files(name, users[0].slug)
        (docs / "code" / f"{name}.md").write_text(_code_page(name, files, users, repo_url), encoding="utf-8")
    config_file = staging / "mkdocs.yml"
    config = _mkdocs_config(staging, page_size, site_url)
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return config_file


def build_site(
    out_dir: Path = Path("site"),
    *,
    data_dir: Path | None = None,
    posts_dir: Path | None = None,
    topics: list[Any] | None = None,
    page_size: int = 10,
    strict: bool = True,
    site_url: str | None = None,
    repo_url: str | None = None,
) -> Path:
    """Build the static feed into ``out_dir`` and return its resolved path.

    ``topics`` (``Topic`` or ``TopicMeta`` objects) defaults to every registered topic;
    ``posts_dir`` to :func:`default_posts_dir`; ``data_dir`` is the results store folder
    (``$SHIYAN_DATA_DIR`` or ``./results`` when None; a missing store means "no runs yet").
    ``page_size`` posts per feed page. ``strict`` makes every MkDocs warning an error, requires
    both posts of every topic and every figure a post places. ``site_url`` (default
    ``$SHIYAN_SITE_URL`` or ``http://127.0.0.1:8000/``) is used in the RSS feed and sitemap;
    ``repo_url`` (default ``$SHIYAN_REPO_URL``), a prefix such as
    ``https://github.com/ORG/shiyan/blob/main``, adds repository links next to the code pages.
    The RSS feed is ``<out_dir>/feed_rss_created.xml`` (JSON Feed: ``feed_json_created.json``).
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive int; got {page_size!r}")
    out_dir = Path(out_dir).resolve()
    posts_dir = Path(posts_dir).resolve() if posts_dir is not None else default_posts_dir()
    site_url = site_url or os.environ.get("SHIYAN_SITE_URL") or DEFAULT_SITE_URL
    if not re.match(r"^https?://[^/\s]+", site_url):
        raise ValueError(f"site_url must start with http:// or https://; got {site_url!r}")
    site_url = site_url.rstrip("/") + "/"
    repo_url = repo_url or os.environ.get("SHIYAN_REPO_URL") or None
    if topics is None:
        from shiyan.topics import catalog

        topics = catalog()
    metas = [_meta_of(t) for t in topics]
    slugs = [m.slug for m in metas]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise ValueError(f"topics: slug {dupes[0]!r} appears more than once")
    has_bench = {_meta_of(t).slug: _has_bench(t) for t in topics}
    _check_out_dir(out_dir, posts_dir)

    posts = collect_posts(posts_dir, slugs, require_all=strict)
    for by_lang in posts.values():
        for post in by_lang.values():
            check_math(post)
    store = _open_store(data_dir)
    metas = sorted((m for m in metas if m.slug in posts), key=lambda m: (m.date, m.slug), reverse=True)
    if not metas:
        raise SiteError(f"no posts to publish in {posts_dir}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="shiyan-site-"))
    building = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        config_file = stage_project(
            staging,
            metas,
            posts,
            store,
            has_bench,
            page_size=page_size,
            strict=strict,
            site_url=site_url,
            repo_url=repo_url,
        )
        warnings = _run_mkdocs(config_file, building, strict)
        for w in warnings:
            log.warning(w)
        external = find_external_resources(building)
        if external:
            listing = "\n".join(f"  {page}: {url}" for page, url in external[:20])
            if strict:
                raise SiteError(f"the site would fetch resources from other hosts:\n{listing}")
            log.warning("the site fetches resources from other hosts:\n%s", listing)
        if not (building / RSS_FEED).is_file():
            raise SiteError(f"the RSS feed {RSS_FEED} was not written")
        (building / SITE_MARKER).write_text(
            f"built by shiyan.site at {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n",
            encoding="utf-8",
        )
        _swap_in(building, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(building, ignore_errors=True)
    return out_dir
