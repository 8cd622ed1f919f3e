"""The role-of-bias topic end to end: quick profile through the runner, config validation."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic

SLUG = "role-of-bias"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert rec.error is None, rec.error
    assert rec.status == "passed", [c for c in rec.claims if not c["passed"]]
    names = {c["name"] for c in rec.claims}
    assert {"no_bias_stuck_at_majority", "bias_before_batchnorm_has_no_gradient", "novikoff_bound_holds"} <= names
    assert [f["name"] for f in rec.figures] == ["perceptron"]


@pytest.mark.parametrize("override", ["max_epochs=1", "logreg_C=0", "bn_batch=0"])
def test_bad_config_names_the_field(override):
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        build_config(topic, "quick", None, [override])


def test_benchmark_rows_are_finite_ratios(tmp_path):
    from topics.contract import run_quick_bench

    rec = run_quick_bench(Store(tmp_path), SLUG)
    assert rec.bench[0]["reference_name"] == "sklearn.linear_model.Perceptron"
