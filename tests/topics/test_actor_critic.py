"""The actor-critic topic end to end: quick profile through the runner (claims on seed means), the benchmark
rows (wall time, CPU time and return over seeds against SB3), the config contract and the two posts."""

from __future__ import annotations

import pytest

from shiyan.core import ConfigError
from shiyan.topics import get_topic
from topics.contract import check_config_contract, check_post, run_quick_bench, run_quick_profile

SLUG = "actor-critic"
FIGURES = {"grid-actor-critic", "a2c-curves"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=5)
    names = {c["name"] for c in rec.claims}
    assert {"pg_estimator_unbiased", "baseline_cuts_variance", "qac_approaches_optimum", "a2c_learns_cartpole"} <= names
    assert all("mean over 2 seed" in c["text_en"] for c in rec.claims if c["name"].endswith(("optimum", "cartpole")))


def test_benchmark_rows_cover_time_cpu_and_return(store):
    rec = run_quick_bench(store, SLUG)
    names = [row["name"] for row in rec.bench]
    assert len(names) == 3 and all("over 3 seeds" in n for n in names)
    assert [row["unit"] for row in rec.bench] == ["s", "s", "return"]


def test_config_contract():
    check_config_contract(SLUG)
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match="min_gap_closed"):
        topic.config_cls(min_gap_closed=0.0)
    with pytest.raises(ConfigError, match="grid_seeds"):
        topic.config_cls(grid_seeds=0)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
