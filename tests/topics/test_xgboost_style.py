"""The xgboost topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import dataclasses
import math

import pytest

from shiyan.core import ConfigError, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic
from topics.contract import check_post, run_quick_profile

SLUG = "xgboost"
FIGURES = {"convergence", "missing"}


def test_quick_profile_passes(store):
    run_quick_profile(store, SLUG, FIGURES, min_claims=4)


@pytest.mark.slow
def test_benchmark_rows_are_finite_ratios(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert rec.bench
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    with pytest.raises(ConfigError, match="rounds"):
        cls(rounds=-1)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_markers(lang):
    check_post(SLUG, lang, FIGURES)
