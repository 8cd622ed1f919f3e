"""The monte-carlo-control topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "monte-carlo-control"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    names = {c["name"] for c in record.claims}
    assert {
        "book_optimal_rf1",
        "book_optimal_rf10",
        "book_uniform_policy",
        "solvers_agree",
        "mc_basic_optimal",
        "episode_length_threshold",
    } <= names
    assert record.figures


def test_config_rejects_bad_values():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="gamma"):
        topic.config_cls(gamma=1.5)
