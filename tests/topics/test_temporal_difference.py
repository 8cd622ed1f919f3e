"""The temporal-difference topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "temporal-difference"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    names = {c["name"] for c in record.claims}
    assert {
        "td0_random_policy",
        "converged_sarsa",
        "converged_expected_sarsa",
        "converged_q_learning_on_policy",
        "q_learning_off_policy_values",
    } <= names
    assert record.figures


def test_config_rejects_bad_values():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="n_step"):
        topic.config_cls(n_step=0)
