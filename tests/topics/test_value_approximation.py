"""The value-approximation topic end to end: quick profile through the runner (claims on seed means), the
benchmark rows (wall time, CPU time and return over seeds against SB3), the config contract and the posts."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError
from shiyan.topics import get_topic
from topics.contract import check_config_contract, check_post, run_quick_bench, run_quick_profile

SLUG = "value-approximation"
FIGURES = {"feature-order", "value-maps", "dqn-curves"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=4)
    names = {c["name"] for c in rec.claims}
    assert {"td_linear_reaches_fixed_point", "fourier_error_falls_with_order", "dqn_learns_cartpole"} <= names
    assert "mean over 2 seed" in next(c["text_en"] for c in rec.claims if c["name"] == "dqn_learns_cartpole")


def test_benchmark_rows_cover_time_cpu_and_return(store):
    rec = run_quick_bench(store, SLUG)
    assert [row["unit"] for row in rec.bench] == ["s", "s", "return"]
    assert all("over 3 seeds" in row["name"] for row in rec.bench)


def test_config_contract():
    check_config_contract(SLUG)
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="orders"):
        topic.config_cls(orders=(2,))
    with pytest.raises(ConfigError, match="bench_seeds"):
        topic.config_cls(bench_seeds=0)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
