"""The actor-critic topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "actor-critic"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    names = {c["name"] for c in record.claims}
    assert {"pg_estimator_unbiased", "baseline_cuts_variance", "qac_approaches_optimum", "a2c_learns_cartpole"} <= names
    assert record.figures


def test_config_rejects_bad_values():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="min_gap_closed"):
        topic.config_cls(min_gap_closed=0.0)
    with pytest.raises(ConfigError, match="a2c_steps"):
        topic.config_cls(a2c_steps=10)
