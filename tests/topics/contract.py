"""What every topic test checks, written once: the quick profile through the runner, the benchmark rows,
the config contract and the two posts. A topic's own test module calls these and adds what is particular
to it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from shiyan.core import ConfigError, Store, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.core.store import RunRecord
from shiyan.topics import get_topic

POSTS = Path(__file__).resolve().parents[2] / "docs" / "posts"


def run_quick_profile(store: Store, slug: str, figures: set[str], min_claims: int = 3) -> RunRecord:
    """Run the quick profile; every claim passes with a finite measured value and a Chinese text; the figures
    named are the figures written, each a real file."""
    topic = get_topic(slug)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick")
    assert rec.error is None, rec.error
    assert rec.status == "passed", [c for c in rec.claims if not c["passed"]]
    assert len(rec.claims) >= min_claims
    for c in rec.claims:
        assert c["value"] is not None and math.isfinite(c["value"]), c
        assert c["text_zh"], c["name"]
    assert {f["name"] for f in rec.figures} == figures
    for f in rec.figures:
        assert (store.root / f["path"]).stat().st_size > 1000
    return rec


def run_quick_bench(store: Store, slug: str) -> RunRecord:
    """Run the benchmark on the quick profile: every row a finite ratio of two positive measurements."""
    topic = get_topic(slug)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert rec.bench
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])
        assert row["reference_name"]
    return rec


def check_config_contract(slug: str) -> None:
    """Every field documented, every profile constructible, a negative first field rejected by name."""
    cls = get_topic(slug).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    first = next(f for f in dataclasses.fields(cls) if f.name != "seed")
    with pytest.raises(ConfigError, match=first.name):
        cls(**{first.name: -1})


def check_post(slug: str, lang: str, figures: set[str]) -> str:
    """Front matter with exactly slug and lang, no H1, the results marker, one marker per figure, balanced $$."""
    text = (POSTS / f"{slug}.{lang}.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match
    assert dict(line.split(": ", 1) for line in match.group(1).splitlines()) == {"slug": slug, "lang": lang}
    body = text[match.end() :]
    assert not re.search(r"^# ", body, re.M)
    assert "<!-- shiyan:results -->" in body
    assert set(re.findall(r"<!-- shiyan:figure ([\w-]+) -->", body)) == figures
    assert body.count("$$") % 2 == 0
    return body
