"""The robbins-monro topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "robbins-monro"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    names = {c["name"] for c in record.claims}
    assert {
        "incremental_mean_exact",
        "rm_tanh_rate",
        "rm_cubic_rate",
        "summable_steps_stall",
        "sgd_is_incremental_mean",
    } <= names
    assert record.figures


def test_config_rejects_bad_values():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="n_steps"):
        topic.config_cls(n_steps=10)
