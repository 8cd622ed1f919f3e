"""The rnn-lstm-gru topic end to end: quick profile through the runner, benchmark rows, config and posts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from shiyan.core import ConfigError, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic
from topics.contract import check_post, run_quick_profile

SLUG = "rnn-lstm-gru"
FIGURES = {"gradient-through-time", "bpc-vs-seconds"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=7)
    race = next(t for t in rec.tables if t["name"] == "transformer_vs_lstm")
    assert len(race["rows"]) == 3 and all(r[2] < math.log2(256) for r in race["rows"])


def test_char_lstm_core_can_be_torch_lstm():
    """The topic's LSTM LM gives the same logits with our cells and with torch.nn.LSTM holding the same weights."""
    module = get_topic(SLUG).module
    g = torch.Generator().manual_seed(0)
    ours = module.CharLSTM(20, 8, 12, generator=g)
    ref = module.CharLSTM(20, 8, 12, core=module._torch_core(ours.core))
    ref.load_state_dict(ours.state_dict())
    idx = torch.randint(0, 20, (3, 9), generator=g)
    torch.testing.assert_close(ours(idx), ref(idx), atol=1e-6, rtol=1e-5)


def test_rate_fit_recovers_a_geometric_sequence():
    module = get_topic(SLUG).module
    norms = torch.tensor([0.7**k for k in range(30)][::-1])  # norms[t], distance T - t = 30 - t
    assert module._rate(norms) == pytest.approx(math.log(0.7), abs=1e-9)
    assert module._time_to_reach([(1.0, 5.0), (2.0, 3.0)], 4.0) == pytest.approx(1.5)
    assert module._time_to_reach([(1.0, 5.0)], 4.0) is None


def test_benchmark_rows_are_finite_ratios(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert len(rec.bench) == 2
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    with pytest.raises(ConfigError, match="radii"):
        cls(radii=(0.0,))
    with pytest.raises(ConfigError, match="d_model"):
        cls(d_model=30, n_heads=4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
