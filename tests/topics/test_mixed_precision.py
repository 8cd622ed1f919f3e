"""The mixed-precision topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import pytest

from topics.contract import check_config_contract, check_post, run_quick_bench, run_quick_profile

SLUG = "mixed-precision"
FIGURES = {"bit-layouts", "gradient-histogram", "loss-scale"}


def test_quick_profile_passes(store):
    run_quick_profile(store, SLUG, FIGURES, min_claims=5)


def test_benchmark_rows_are_finite_ratios(store):
    run_quick_bench(store, SLUG)


def test_config_contract():
    check_config_contract(SLUG)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
