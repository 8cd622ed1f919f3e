"""The built site: feed, pagination, categories, archive, RSS, posts with injected results, math,
no external requests, and failures that leave ``out_dir`` untouched."""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from site_fixtures import SVG, TOPICS, make_store, post_text, run_record, write_posts

from shiyan.site import RSS_FEED, PostError, SiteError, build_site, make_server
from shiyan.site.build import SITE_MARKER, _fill_body, _Fragments
from shiyan.site.posts import parse_post

RW, LS, SM = "fake-random-walk", "fake-least-squares", "fake-softmax"


def _read(site: Path, rel: str) -> str:
    return (site / rel).read_text(encoding="utf-8")


def _excerpts(page: str) -> list[tuple[str, str, str]]:
    """(post link, date, category) of each excerpt in a feed page, in order."""
    out = []
    for art in page.split('<article class="md-post md-post--excerpt">')[1:]:
        link = re.search(r'<a class="toclink" href="([^"]+)"', art)[1]
        date = re.search(r"<time[^>]*>([^<]+)</time>", art)[1]
        cats = re.findall(r'class="md-meta__link">([^<]+)</a>', art)
        out.append((link, date, ",".join(cats)))
    return out


def _tabs(page: str) -> dict[str, str]:
    """The HTML of the 中文 and English tabs of a post page."""
    labels = re.findall(r'<label for="__tabbed_1_\d">([^<]+)</label>', page)
    assert labels == ["中文", "English"]
    blocks = page.split('<div class="tabbed-block">')[1:]
    assert len(blocks) == 2
    return {"zh": blocks[0], "en": blocks[1]}


# -- the feed ---------------------------------------------------------------------------------
def test_feed_lists_posts_newest_first_with_dates_and_categories(built_site):
    page1 = _read(built_site, "index.html")
    assert _excerpts(page1) == [
        (f"posts/{SM}/", "2024年3月1日", "DL"),
        (f"posts/{LS}/", "2024年2月1日", "ML"),
    ]
    # Excerpts: both titles and both summaries from META.
    assert "归一化指数函数 · Softmax" in page1
    assert "把分数变成概率。" in page1 and "Turning scores into probabilities." in page1
    page2 = _read(built_site, "page/2/index.html")
    assert _excerpts(page2) == [(f"../../posts/{RW}/", "2024年1月5日", "Math")]
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML"' in page2  # $n$ in the summary


def test_category_and_archive_pages(built_site):
    for cat, slug in (("math", RW), ("ml", LS), ("dl", SM)):
        links = [e[0] for e in _excerpts(_read(built_site, f"category/{cat}/index.html"))]
        assert links == [f"../../posts/{slug}/"]
    archive = [e[0] for e in _excerpts(_read(built_site, "archive/2024/index.html"))]
    archive += [e[0] for e in _excerpts(_read(built_site, "archive/2024/page/2/index.html"))]
    assert [a.rsplit("/", 2)[-2] for a in archive] == [SM, LS, RW]


def test_rss_feed(built_site):
    root = ET.parse(built_site / RSS_FEED).getroot()
    items = root.findall("./channel/item")
    assert [i.findtext("link").rstrip("/").rsplit("/", 1)[-1] for i in items] == [SM, LS, RW]
    assert [i.findtext("category") for i in items] == ["DL", "ML", "Math"]
    assert items[2].findtext("title") == "随机游走 · Random walks"
    assert items[2].findtext("pubDate").startswith("Fri, 05 Jan 2024")
    assert 'type="application/rss+xml"' in _read(built_site, "index.html")


def test_search_index_has_segmented_chinese(built_site):
    index = json.loads(_read(built_site, "search/search_index.json"))
    post = next(d for d in index["docs"] if d["location"] == f"posts/{RW}/")
    assert "随机\u200b游走" in post["title"]
    assert not any(d["location"].startswith("code/") for d in index["docs"])


# -- a post -----------------------------------------------------------------------------------
def test_post_has_titles_tabs_and_code_link(built_site):
    page = _read(built_site, f"posts/{RW}/index.html")
    assert "<h1" in page and "随机游走 · Random walks" in page
    tabs = _tabs(page)
    assert "一维简单随机游走" in tabs["zh"] and "A simple random walk" not in tabs["zh"]
    assert "A simple random walk" in tabs["en"] and "一维简单随机游走" not in tabs["en"]
    assert '<a href="../../code/shiyan.core.result/"><code>shiyan.core.result</code></a>' in page
    code = _read(built_site, "code/shiyan.core.result/index.html")
    assert "src/shiyan/core/result.py" in code
    assert html.escape("class Claim:", quote=False) in re.sub(r"<[^>]+>", "", code)


def test_results_injected_from_the_latest_run(built_site):
    tabs = _tabs(_read(built_site, f"posts/{RW}/index.html"))
    zh, en = tabs["zh"], tabs["en"]
    # Claims in the post's language, with value, op, threshold and verdict.
    assert "蒙特卡洛频率与精确分布一致" in zh and "Monte Carlo frequencies" not in zh
    assert "Monte Carlo frequencies match the exact pmf" in en and "蒙特卡洛" not in en
    row = re.search(r"<tr><td>Monte Carlo frequencies match the exact pmf</td>(.*?)</tr>", en)[1]
    assert re.findall(r"<td>(.*?)</td>", row)[:3] == ["0.0031", "&lt;=", "0.01"]
    assert "✓ pass" in row
    bad = re.search(r"<tr><td>Sampling takes under a microsecond</td>(.*?)</tr>", en)[1]
    assert "0.5 s" in bad and "1e-06 s" in bad and "✗ fail" in bad
    assert "✗ 不成立" in zh
    # Metrics, tables (caption per language), benchmark with the ratio.
    assert "<code>max_abs_err</code>" in en and "<math" in en.split("max_abs_err")[1].split("</tr>")[0]
    assert "Error against the number of walks" in en and "误差与游走次数" in zh
    assert "<td>0.000456</td>" in en
    assert "scipy.stats.binom.pmf" in en and "<strong>2×</strong>" in en
    # Provenance of the run.
    for token in ("0123456789ab", "<code>quick</code>", "<code>1234</code>", "cpu (2 threads)", "2024-01-05 10:00:03"):
        assert token in en and token in zh
    assert "0123456789abc" not in en  # the commit is shortened


def test_figures_at_markers_and_in_results(built_site):
    zh = _tabs(_read(built_site, f"posts/{RW}/index.html"))["zh"]
    walk = zh.index(f'<img src="../../figures/{RW}/walk.svg"')
    results = zh.index('<div class="shiyan-results">')
    extra = zh.index(f'<img src="../../figures/{RW}/extra.svg"')
    assert walk < zh.index("<h2", walk) < results < extra  # marker placed, unplaced one in the results
    assert "图注 walk 中文" in zh and "Caption walk en" not in zh
    assert zh.count('<div class="shiyan-results">') == 1
    for name in ("walk", "extra"):
        assert (built_site / "figures" / RW / f"{name}.svg").read_text(encoding="utf-8") == SVG


def test_post_without_run_says_so(built_site):
    tabs = _tabs(_read(built_site, f"posts/{SM}/index.html"))
    assert "还没有运行记录" in tabs["zh"] and "shiyan run fake-softmax" in tabs["zh"]
    assert "No run recorded yet" in tabs["en"]
    assert '<h2 id="shiyan-results-en">Results</h2>' in tabs["en"]  # appended: no marker in this post


def test_math_is_mathml_and_code_is_left_alone(built_site):
    for path in built_site.rglob("*.html"):
        assert 'class="arithmatex"' not in path.read_text(encoding="utf-8"), path
    page = _read(built_site, f"posts/{SM}/index.html")
    assert '<div class="shiyan-math"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in page
    assert "<mfrac>" in page
    code = re.search(r"<code>(.*?)</code></pre>", page, re.S)[1]
    assert "$5 and $6" in re.sub(r"<[^>]+>", "", code)


_EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*\b(?:src|href)=[\"']((?:https?:)?//[^\"']+)", re.I
)


def test_no_external_resources(built_site):
    offenders = []
    for path in built_site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for url in _EXTERNAL.findall(text):
            is_canonical = re.search(rf'<link rel="canonical" href="{re.escape(url)}"', text)
            if not url.startswith(("http://127.0.0.1", "http://localhost")) and not is_canonical:
                offenders.append((path.name, url))
        assert "fonts.googleapis" not in text and "cdn.jsdelivr" not in text
    for path in built_site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//", path.read_text(encoding="utf-8")), path
    assert offenders == []


def test_serve_site_serves_the_folder(built_site):
    server = make_server(built_site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/figures/{RW}/walk.svg", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/svg+xml"
            assert r.read().decode() == SVG
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FileNotFoundError, match="no built site"):
        make_server(built_site / "figures")


# -- failures leave out_dir untouched ---------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    posts = write_posts(tmp_path / "posts")
    make_store(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    (out / SITE_MARKER).write_text("old\n")
    (out / "index.html").write_text("old site\n")
    return {"posts": posts, "data": tmp_path / "data", "out": out, "root": tmp_path}


def _untouched(project) -> None:
    out = project["out"]
    assert sorted(p.name for p in out.iterdir()) == sorted([SITE_MARKER, "index.html"])
    assert (out / "index.html").read_text() == "old site\n"
    leftovers = [p.name for p in project["root"].iterdir() if p.name.startswith(".out.")]
    assert leftovers == []


def _build(project, **kw):
    kw.setdefault("topics", TOPICS)
    return build_site(project["out"], data_dir=project["data"], posts_dir=project["posts"], **kw)


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        (f"{LS}.en.md", "---\nslug: [oops\n---\nbody\n", "not valid YAML"),
        (f"{LS}.en.md", f"---\nslug: {LS}\nlang: en\ndate: 2024-01-01\n---\nbody\n", "unexpected date"),
        (f"{LS}.en.md", f"---\nslug: {SM}\nlang: en\n---\nbody\n", "does not match the file name"),
        (f"{LS}.en.md", f"---\nslug: {LS}\nlang: de\n---\nbody\n", "lang must be one of"),
        ("unknown-topic.zh.md", "---\nslug: unknown-topic\nlang: zh\n---\nbody\n", "no topic has the slug"),
    ],
)
def test_bad_post_fails_the_build(project, name, text, expect):
    bad = project["posts"] / name
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PostError, match=expect) as info:
        _build(project)
    assert str(bad) in str(info.value)
    _untouched(project)


def test_missing_translation_fails_the_build(project):
    (project["posts"] / f"{SM}.zh.md").unlink()
    with pytest.raises(PostError, match="missing translation") as info:
        _build(project)
    assert f"{SM}.zh.md" in str(info.value)
    _untouched(project)


def test_bad_formula_fails_the_build_naming_file_and_formula(project):
    path = project["posts"] / f"{LS}.en.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nAnd $\\frac{1}{$ or so.\n", encoding="utf-8")
    with pytest.raises(PostError) as info:
        _build(project)
    assert str(path) in str(info.value) and "\\\\frac{1}{" in str(info.value)
    _untouched(project)
    path.write_text(post_text(LS, "en") + "\n$$\n\\foo{x}\n$$\n", encoding="utf-8")
    with pytest.raises(PostError, match=r"unknown command '\\foo'") as info:
        _build(project)
    assert str(path) in str(info.value)
    _untouched(project)


def test_figure_marker_for_a_figure_the_run_lacks(project):
    path = project["posts"] / f"{RW}.zh.md"
    path.write_text(path.read_text(encoding="utf-8").replace("figure walk", "figure nope"), encoding="utf-8")
    with pytest.raises(PostError, match="figure 'nope' is not in the latest run") as info:
        _build(project)
    lineno = path.read_text(encoding="utf-8").splitlines().index("<!-- shiyan:figure nope -->") + 1
    assert f"{path}:{lineno}:" in str(info.value)
    _untouched(project)


def test_mkdocs_warning_fails_a_strict_build(project):
    path = project["posts"] / f"{SM}.en.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nSee [this](no-such-page.md).\n", encoding="utf-8")
    with pytest.raises(SiteError, match="no-such-page.md"):
        _build(project)
    _untouched(project)


def test_external_image_fails_a_strict_build(project):
    path = project["posts"] / f"{LS}.zh.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n![logo](https://example.com/logo.png)\n", encoding="utf-8")
    with pytest.raises(
        SiteError, match=r"other hosts:\n  posts/fake-least-squares/index.html: https://example.com/logo.png"
    ):
        _build(project)
    _untouched(project)


def test_lenient_build_skips_topics_without_posts_and_replaces_the_old_site(project):
    for lang in ("zh", "en"):
        (project["posts"] / f"{SM}.{lang}.md").unlink()
    path = project["posts"] / f"{RW}.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("figure walk", "figure nope"), encoding="utf-8")
    with pytest.raises(PostError, match="has no post"):
        _build(project)
    # A Topic-like object with a benchmark function but no benchmark record yet.
    topics = [TOPICS[0], SimpleNamespace(meta=TOPICS[1], bench=lambda cfg, ctx: []), TOPICS[2]]
    repo = "https://example.org/shiyan/blob/main"
    out = _build(project, strict=False, page_size=5, topics=topics, repo_url=repo)
    assert out == project["out"].resolve()
    assert "No benchmark recorded yet" in _tabs(_read(out, f"posts/{LS}/index.html"))["en"]
    assert "No benchmark" not in _read(out, f"posts/{RW}/index.html")  # it has one
    assert f'<a href="{repo}/src/shiyan/core/result.py">' in _read(out, f"posts/{RW}/index.html")
    assert [e[0] for e in _excerpts(_read(out, "index.html"))] == [f"posts/{LS}/", f"posts/{RW}/"]
    assert not (out / "posts" / SM).exists() and (out / SITE_MARKER).is_file()
    en = _tabs(_read(out, f"posts/{RW}/index.html"))["en"]
    assert "Figure <code>nope</code>" in en  # a note instead of the missing figure
    assert [p.name for p in project["root"].iterdir() if p.name.startswith(".out.")] == []


def test_refuses_to_replace_a_folder_that_is_not_a_site(project, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError, match="not a built shiyan site"):
        build_site(precious, data_dir=project["data"], posts_dir=project["posts"], topics=TOPICS)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(SiteError, match="would replace the posts folder"):
        build_site(project["posts"].parent, data_dir=project["data"], posts_dir=project["posts"], topics=TOPICS)


@pytest.mark.parametrize("page_size", [0, -1, 2.5, True])
def test_bad_page_size(project, page_size):
    with pytest.raises(ValueError, match="page_size"):
        _build(project, page_size=page_size)


def test_topics_must_be_topics(project):
    with pytest.raises(TypeError, match="Topic or TopicMeta"):
        _build(project, topics=["fake-softmax"])
    with pytest.raises(ValueError, match="appears more than once"):
        _build(project, topics=TOPICS + TOPICS[:1])


# -- markers ------------------------------------------------------------------------------------
def _fill(tmp_path, body: str, run=None):
    path = tmp_path / f"{RW}.en.md"
    path.write_text(f"---\nslug: {RW}\nlang: en\n---\n{body}", encoding="utf-8")
    frags = _Fragments(tmp_path / "fragments")
    text = _fill_body(parse_post(path), TOPICS[0], run, None, False, frags, True)
    return text, {p.stem: p.read_text(encoding="utf-8") for p in (tmp_path / "fragments").iterdir()}


def test_markers_outside_code_only(tmp_path):
    body = "Intro\n\n````md\n<!-- shiyan:figure walk -->\n```\n````\n\n<!-- shiyan:figure walk -->\n\nEnd\n"
    text, frags = _fill(tmp_path, body, run_record())
    lines = text.splitlines()
    assert lines[3] == "<!-- shiyan:figure walk -->"  # inside the ```` fence: untouched
    assert lines.count("SHIYANFRAG-1") == 1 and lines[-1] == "SHIYANFRAG-2"  # figure, then results appended
    assert f'<img src="@SHIYAN_ROOT@/figures/{RW}/walk.svg"' in frags["SHIYANFRAG-1"]
    assert "walk.svg" not in frags["SHIYANFRAG-2"] and "extra.svg" in frags["SHIYANFRAG-2"]
    assert frags["SHIYANFRAG-2"].startswith('<div class="shiyan-results"><h2 id="shiyan-results-en">Results</h2>')


@pytest.mark.parametrize(
    ("body", "expect", "line"),
    [
        ("a\n\n<!-- shiyan:results -->\n\nb\n<!-- shiyan:results -->\n", "appears twice", 10),
        ("a\n<!-- shiyan:figures walk -->\n", "unknown shiyan marker", 6),
        ("a\n<!-- shiyan:figure walk --> and more\n", "unknown shiyan marker", 6),
    ],
)
def test_bad_markers(tmp_path, body, expect, line):
    with pytest.raises(PostError, match=expect) as info:
        _fill(tmp_path, body)
    assert f"{RW}.en.md:{line}:" in str(info.value)
