"""The topic contract, for every registered topic: META, a documented Config, both posts, and a
test of its own that runs the quick profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shiyan.core.config import PROFILES, field_docs
from shiyan.topics import all_topics, get_topic

TOPICS = [t.slug for t in all_topics()]


def test_registry_is_not_empty():
    assert len(TOPICS) >= 3


@pytest.mark.parametrize("slug", TOPICS)
def test_contract(slug):
    topic = get_topic(slug)
    docs = field_docs(topic.config_cls)
    missing = [f.name for f in dataclasses.fields(topic.config_cls) if not docs.get(f.name)]
    assert not missing, f"{slug}: Config fields without a one-line docstring: {missing}"
    for profile in PROFILES:
        cfg = topic.config_cls.profile(profile)
        assert isinstance(cfg, topic.config_cls)
    topic.code_digest()  # every module in META.implements imports


@pytest.mark.parametrize("slug", TOPICS)
def test_posts_exist_in_both_languages(slug):
    from shiyan.site import default_posts_dir

    for lang in ("zh", "en"):
        path = default_posts_dir() / f"{slug}.{lang}.md"
        assert path.exists(), f"missing post {path}"


@pytest.mark.parametrize("slug", TOPICS)
def test_every_topic_has_a_test_running_its_quick_profile(slug):
    """Each topic's own test module (tests/topics/) runs the quick profile and checks its claims;
    this keeps the contract without running every topic twice."""
    here = Path(__file__).resolve().parent / "topics"
    texts = [p.read_text() for p in here.glob("test_*.py")]
    runs = ("execute(", "run_quick_profile(")
    assert any(slug in t and any(r in t for r in runs) for t in texts), f"no test in tests/topics runs {slug!r}"


@pytest.mark.parametrize("slug", TOPICS)
def test_catalog_reads_the_same_meta_as_the_module(slug):
    """`shiyan list` and the site read META from the source; it must be what the module defines."""
    from shiyan.topics import catalog

    entry = {e.slug: e for e in catalog()}[slug]
    topic = get_topic(slug)
    assert entry.meta == topic.meta
    assert entry.module == topic.module.__name__
    assert entry.has_bench == (topic.bench is not None)


def test_catalog_falls_back_to_import_for_computed_meta(tmp_path, monkeypatch):
    from shiyan.topics import _static_entry, catalog, clear_caches

    (tmp_path / "computed_meta_topic.py").write_text(
        "from fixtures.toy_topics import *  # noqa\n"
        "from fixtures import toy_topics as _t\n"
        "META = _t.META.__class__(**{**_t.META.__dict__, 'slug': 'computed-' + 'meta'})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _static_entry("computed_meta_topic") is None  # not literal: needs an import
    monkeypatch.setenv("SHIYAN_EXTRA_TOPICS", "computed_meta_topic")
    clear_caches()
    try:
        assert "computed-meta" in {e.slug for e in catalog()}
    finally:
        monkeypatch.delenv("SHIYAN_EXTRA_TOPICS")
        clear_caches()


@pytest.mark.parametrize("slug", TOPICS)
def test_readme_lists_the_topic(slug):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"`{slug}`" in readme, f"README.md's topic table does not list {slug!r}"
