"""The topic contract, for every registered topic: META, a documented Config, both posts, and a
quick run whose claims are all measured and pass."""

from __future__ import annotations

import dataclasses
import math

import pytest

from shiyan.core.config import PROFILES, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.core.store import Store
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
def test_quick_profile_passes(slug, tmp_path):
    topic = get_topic(slug)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    assert record.claims, f"{slug} makes no claims"
    for c in record.claims:
        assert c["value"] is not None and math.isfinite(c["value"]), c
    for f in record.figures:
        assert (tmp_path / f["path"]).stat().st_size > 0
