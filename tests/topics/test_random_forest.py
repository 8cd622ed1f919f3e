"""The random-forest topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from shiyan.core import ConfigError, Store, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "random-forest"
FIGURES = {"oob-vs-test", "correlation"}
POSTS = Path(__file__).resolve().parents[2] / "docs" / "posts"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("random_forest-results"))


def test_quick_profile_passes(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick")
    assert rec.error is None, rec.error
    assert rec.status == "passed", [c for c in rec.claims if not c["passed"]]
    assert len(rec.claims) >= 4
    for c in rec.claims:
        assert c["value"] is not None and math.isfinite(c["value"]), c
        assert c["text_zh"], c["name"]
    assert {f["name"] for f in rec.figures} == FIGURES
    for f in rec.figures:
        assert (store.root / f["path"]).stat().st_size > 1000


def test_benchmark_rows_are_finite_ratios(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert rec.bench
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])
        assert row["reference_name"]


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    first = next(f for f in dataclasses.fields(cls) if f.name != "seed")
    with pytest.raises(ConfigError, match=first.name):
        cls(**{first.name: -1})


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    text = (POSTS / f"{SLUG}.{lang}.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match
    assert dict(line.split(": ", 1) for line in match.group(1).splitlines()) == {"slug": SLUG, "lang": lang}
    body = text[match.end() :]
    assert not re.search(r"^# ", body, re.M)
    assert "<!-- shiyan:results -->" in body
    assert set(re.findall(r"<!-- shiyan:figure ([\w-]+) -->", body)) == FIGURES
    assert body.count("$$") % 2 == 0
