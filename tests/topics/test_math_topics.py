"""The three Math topics end to end: the quick profile through the runner into a temporary store,
the benchmark, the config contract and the posts' figure markers."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from shiyan.core import ConfigError, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUGS = ("random-walk", "quadratic-form", "directional-derivative")
FIGURES = {
    "random-walk": {"pmf", "return", "first-passage"},
    "quadratic-form": {"contours"},
    "directional-derivative": {"gradient-field", "angle-sweep", "fd-error"},
}
POSTS = Path(__file__).resolve().parents[2] / "docs" / "posts"


@pytest.fixture(scope="module")
def records(store):
    out = {}
    for slug in SLUGS:
        topic = get_topic(slug)
        out[slug] = execute(topic, build_config(topic, "quick"), store, profile="quick")
    return out


@pytest.mark.parametrize("slug", SLUGS)
def test_quick_profile_passes_with_measured_claims(slug, records, store):
    rec = records[slug]
    assert rec.error is None, rec.error
    failed = [c["name"] for c in rec.claims if not c["passed"]]
    assert rec.status == "passed", f"failed claims: {failed}"
    assert len(rec.claims) >= 5
    for c in rec.claims:
        assert c["value"] is not None and math.isfinite(c["value"]), c
        assert c["text_zh"], f"claim {c['name']} lacks a Chinese statement"
    for m in rec.metrics:
        assert m["value"] is not None and math.isfinite(m["value"]), m
    names = {f["name"] for f in rec.figures}
    assert names == FIGURES[slug]
    for f in rec.figures:
        for key in ("path", "png"):
            path = store.root / f[key]
            assert path.is_file() and path.stat().st_size > 1000, path
    assert store.latest(slug, profile="quick").run_id == rec.run_id


@pytest.mark.parametrize("slug", SLUGS)
def test_benchmark_rows_are_finite_ratios(slug, store):
    topic = get_topic(slug)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert rec.bench
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0
        assert row["ratio"] is not None and math.isfinite(row["ratio"]) and row["ratio"] > 0
        assert row["reference_name"]


@pytest.mark.parametrize("slug", SLUGS)
def test_config_contract(slug):
    cls = get_topic(slug).config_cls
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        assert docs.get(f.name), f"{cls.__module__}.Config.{f.name} has no docstring"
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    # every validate() rejects a bad value and names the field
    first = next(f for f in dataclasses.fields(cls) if f.name != "seed")
    with pytest.raises(ConfigError, match=first.name):
        cls(**{first.name: -1})


def test_meta_is_math_with_distinct_dates():
    metas = [get_topic(s).meta for s in SLUGS]
    assert all(m.category == "Math" for m in metas)
    dates = [m.date for m in metas]
    assert len(set(dates)) == 3 and all(2023 <= d.year <= 2024 for d in dates)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("slug", SLUGS)
def test_posts_have_front_matter_and_markers_for_real_figures(slug, lang):
    text = (POSTS / f"{slug}.{lang}.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "missing YAML front matter"
    front = dict(line.split(": ", 1) for line in match.group(1).splitlines())
    assert front == {"slug": slug, "lang": lang}
    body = text[match.end() :]
    assert not re.search(r"^# ", body, re.M), "the title comes from META; no H1 in the body"
    assert "<!-- shiyan:results -->" in body
    shown = set(re.findall(r"<!-- shiyan:figure ([\w-]+) -->", body))
    assert shown == FIGURES[slug]
    assert body.count("$$") % 2 == 0
    assert len(body) > (2500 if lang == "zh" else 5000)
