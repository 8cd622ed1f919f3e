"""The linear-attention topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import dataclasses
import math

import pytest

from shiyan.core import ConfigError, field_docs
from shiyan.topics import get_topic
from topics.contract import check_post, run_quick_bench, run_quick_profile

SLUG = "linear-attention"
FIGURES = {"cost-vs-n", "lm-curves"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=4)
    lm = next(t for t in rec.tables if t["name"] == "language_model")
    assert all(r[2 if SLUG == "sparse-attention" else 1] < math.log(256) for r in lm["rows"])  # learned something


def test_benchmark_rows_are_finite_ratios(store):
    run_quick_bench(store, SLUG)


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    with pytest.raises(ConfigError, match="check_len"):
        cls(check_len=1)
    with pytest.raises(ConfigError, match="d_model"):
        cls(d_model=30, n_heads=4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
