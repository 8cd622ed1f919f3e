"""The value-approximation topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "value-approximation"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    names = {c["name"] for c in record.claims}
    assert {"td_linear_reaches_fixed_point", "fourier_error_falls_with_order", "dqn_learns_cartpole"} <= names
    assert record.figures


def test_config_rejects_bad_values():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="orders"):
        topic.config_cls(orders=(2,))
    with pytest.raises(ConfigError, match="gamma"):
        topic.config_cls(gamma=1.0)
