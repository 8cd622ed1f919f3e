"""The transformer topic end to end: quick profile through the runner, benchmark rows, config and posts; plus the
FLASH and MoE rows added to the flash-attention comparison table."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from shiyan.core import ConfigError, field_docs
from shiyan.core.runner import build_config, execute
from shiyan.data.text import char_corpus
from shiyan.topics import get_topic
from topics.contract import check_post, run_quick_profile

SLUG = "transformer"
FIGURES = {"heldout-curves"}


def test_quick_profile_passes(store):
    rec = run_quick_profile(store, SLUG, FIGURES, min_claims=5)
    samples = next(t for t in rec.tables if t["name"] == "samples")
    assert len(samples["rows"]) == 4 and all(len(r[2]) > 0 for r in samples["rows"])
    kv = next(c for c in rec.claims if c["name"] == "kv_cache_equals_recompute")
    assert kv["value"] == 0


def test_unigram_baseline_is_the_cross_entropy_of_training_frequencies():
    from shiyan.data.text import CharCorpus

    module = get_topic(SLUG).module
    corpus = CharCorpus("toy", ("a", "b"), torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1]))
    p = torch.tensor([4 / 6, 2 / 6])  # counts 3 and 1, plus one each
    assert module.unigram_bits_per_char(corpus) == pytest.approx(float(-(p.log2()).mean()))


def test_reference_encoder_lm_is_causal():
    """The benchmark's torch.nn.TransformerEncoder model must not see the future."""
    from shiyan.nn.lm import LMConfig

    module = get_topic(SLUG).module
    torch.manual_seed(0)
    ref = module.TorchEncoderLM(LMConfig(vocab_size=11, d_model=16, n_layers=2, n_heads=2, max_seq_len=12)).eval()
    idx = torch.randint(0, 11, (2, 12))
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 11
    torch.testing.assert_close(ref(idx)[:, :7], ref(changed)[:, :7])
    assert not torch.allclose(ref(idx)[:, 7:], ref(changed)[:, 7:])


def test_flash_table_block_variant_rows(tmp_path):
    """The FLASH and MoE rows of the flash-attention comparison table (off in that topic's quick profile, whose test
    expects six rows): both train on the same data and report finite numbers."""
    from shiyan.core.context import RunContext

    fa = get_topic("flash-attention")
    cfg = dataclasses.replace(build_config(fa, "quick"), block_variants=True, steps=3, text_chars=20_000, seq_len=32)
    ctx = RunContext(seed=0, profile="quick", out_dir=tmp_path)
    corpus = char_corpus("shakespeare", cfg.text_chars)
    rows = list(fa.module._block_variant_rows(cfg, ctx, corpus, torch.Generator()))
    assert [r[0].split()[0] for r in rows] == ["FLASH", "MoE"]
    for _, out, peak in rows:
        assert math.isfinite(out["held_out_loss"]) and out["held_out_loss"] < math.log(256) and peak > 0


def test_benchmark_rows_are_finite_ratios(store):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), store, profile="quick", kind="bench")
    assert rec.error is None, rec.error
    assert len(rec.bench) == 1
    for row in rec.bench:
        assert row["ours"] > 0 and row["reference"] > 0 and math.isfinite(row["ratio"])


def test_config_contract():
    cls = get_topic(SLUG).config_cls
    docs = field_docs(cls)
    assert all(docs.get(f.name) for f in dataclasses.fields(cls))
    for profile in ("quick", "default", "full"):
        cls.profile(profile)
    with pytest.raises(ConfigError, match="sample_chars"):
        cls(sample_chars=60, seq_len=64)
    with pytest.raises(ConfigError, match="d_model"):
        cls(d_model=30, n_heads=4)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_posts_have_front_matter_and_figure_markers(lang):
    check_post(SLUG, lang, FIGURES)
