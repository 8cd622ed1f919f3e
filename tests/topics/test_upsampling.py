"""The upsampling topic: its quick profile runs through the runner and every claim passes."""

from __future__ import annotations

import math

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "upsampling"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    record = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert record.status == "passed", record.error or [c for c in record.claims if not c["passed"]]
    assert record.claims and all(math.isfinite(c["value"]) for c in record.claims)
    assert record.figures
    for f in record.figures:
        assert (tmp_path / f["path"]).stat().st_size > 0


def test_bad_config_is_rejected():
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError):
        topic.config_cls.quick().replace(n_cases=0)
