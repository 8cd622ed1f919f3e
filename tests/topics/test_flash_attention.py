"""The flash-attention topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from shiyan.attention import flash_attention, naive_attention
from shiyan.core import ConfigError, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic
from topics.contract import check_post, run_quick_profile

SLUG = "flash-attention"
FIGURES = {"memory-vs-n", "cost-vs-n", "lm-curves"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=6)
    table = next(t for t in rec.tables if t["name"] == "attention_variants")
    assert len(table["rows"]) == 8  # six attention variants, FLASH and MoE
    assert all(math.isfinite(r[1]) and r[1] < math.log(256) for r in table["rows"])  # better than uniform bytes


def test_peak_memory_probe_sees_the_score_matrix():
    """The probe behind the memory claims: naive attention's N x N matrices are counted, flash's are not."""
    module = get_topic(SLUG).module
    q, k, v = (torch.randn(1, 1, 256, 16).requires_grad_() for _ in range(3))
    naive = module._peak_bytes(naive_attention, q, k, v)
    flash = module._peak_bytes(lambda *a, **kw: flash_attention(*a, block_q=32, block_k=32, **kw), q, k, v)
    assert naive >= 2 * 4 * 256 * 256  # at least two float32 N x N matrices alive at once
    assert flash < 4 * 256 * 256  # less than one


def test_benchmark_rows_are_finite_ratios(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert len(rec.bench) >= 4
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])
        assert row["reference_name"]


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    with pytest.raises(ConfigError, match="check_lengths"):
        cls(check_lengths=(0,))
    with pytest.raises(ConfigError, match="d_model"):
        cls(d_model=30, n_heads=4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)


# -- the cost sweep's helpers ---------------------------------------------------------------------------------


def test_crossover_interpolates_in_log_log():
    module = get_topic(SLUG).module
    ns = [256, 512, 1024, 2048]
    exact = [n**2 / 1e6 for n in ns]  # quadratic
    cheap = [n * 1e-3 for n in ns]  # linear: equal to the quadratic one at N = 1000
    assert module.crossover_length(ns, cheap, exact) == pytest.approx(1000.0, rel=1e-9)
    # one noisy point at short N: the answer is where the method *stays* cheaper
    noisy = [0.5 * exact[0], *cheap[1:]]
    assert module.crossover_length(ns, noisy, exact) == pytest.approx(1000.0, rel=1e-9)
    # a straight line in log-log between the two points around the crossing
    assert module.crossover_length([100, 400], [2.0, 1.0], [1.0, 2.0]) == pytest.approx(200.0, rel=1e-9)


def test_crossover_none_and_already_cheaper():
    module = get_topic(SLUG).module
    ns = [256, 512, 1024]
    assert module.crossover_length(ns, [2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) is None  # never cheaper
    assert module.crossover_length(ns, [0.5, 3.0, 4.0], [1.0, 2.0, 3.0]) is None  # cheaper first, not at the end
    assert module.crossover_length(ns, [0.5, 1.0, 2.0], [1.0, 2.0, 3.0]) == 256.0  # cheaper from the first N
    # a skipped grid point (NaN, as naive over its memory budget) is dropped, not read as a crossing
    assert module.crossover_length(ns, [2.0, math.nan, 1.0], [1.0, 2.0, 2.0]) == pytest.approx(512.0, rel=1e-9)
    with pytest.raises(ValueError, match="increasing"):
        module.crossover_length([512, 256], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        module.crossover_length([256, 512], [0.0, 1.0], [1.0, 1.0])


def test_loglog_slope_and_sweep_claims_on_synthetic_costs():
    """The exponents are fitted on the longer half; the claims pass on ideal costs and fail on swapped ones."""
    module = get_topic(SLUG).module
    cfg = get_topic(SLUG).config_cls()
    ns = list(cfg.time_lengths)
    # quadratic only beyond N = 1024 (a flat start that the long-half fit must ignore)
    assert module.loglog_slope(ns, [max(n, 1024) ** 2 for n in ns]) == pytest.approx(2.0)
    assert math.isnan(module.loglog_slope(ns, [math.nan] * (len(ns) - 1) + [1.0]))

    def claims(quadratic: list[str]) -> dict[str, bool]:
        secs = {
            m: [n**2 * 1e-7 if m in quadratic else n * 1e-4 for n in ns] for m in module.EXACT + module.SUBQUADRATIC
        }
        res = module.Result()
        module._sweep_report(res, cfg, secs, {m: [float(n) for n in ns] for m in secs})
        return {c.name: c.passed for c in res.claims}

    good = claims(list(module.EXACT))
    assert len(good) == 8 and all(good.values())
    bad = claims([module.LINEAR, module.MIXED])  # exact attention linear, two "sub-quadratic" ones quadratic
    assert not bad["sdpa_time_quadratic"] and not bad["linear_time_linear"] and not bad["flash_gau_crossover"]
    assert bad["sparse_local_time_linear"]
    short = module.Result()
    secs = {m: [1e-3, 2e-3] for m in module.EXACT + module.SUBQUADRATIC}
    module._sweep_report(short, dataclasses.replace(cfg, time_lengths=(256, 512)), secs, secs)
    assert short.claims == []  # a sweep shorter than sweep_claim_len makes no scaling claims
    assert {t.name for t in short.tables} == {"cost_vs_n", "crossovers"}
