"""Vocab and the tokenisers: ids, <unk> handling, sentence boundaries, English and Chinese units."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiyan.text import BOS, EOS, UNK, Vocab, chinese_chars, english_chars, english_words, pos_tagged, strip_pos_tags
from shiyan.text.vocab import BOS_ID, EOS_ID, UNK_ID


def test_specials_have_fixed_ids_and_order_follows_counts():
    v = Vocab.build([["b", "a", "b"], ["c", "a", "b"], ["d"]])
    assert v.itos[:3] == (UNK, BOS, EOS) and (UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2)
    assert v.itos[3:] == ("b", "a", "c", "d")  # counts 3, 2, 1, 1: ties keep first-seen order
    assert v.counts.tolist() == [0, 0, 0, 3, 2, 1, 1]
    assert v.index("zzz") == UNK_ID and "zzz" not in v and "a" in v
    assert v.encode(["a", "zzz"], bos=True, eos=True).tolist() == [BOS_ID, 4, UNK_ID, EOS_ID]
    assert v.decode([4, 0, 2]) == ["a", UNK, EOS]


def test_min_count_and_max_size_send_rare_words_to_unk():
    sents = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert Vocab.build(sents, min_count=2).itos[3:] == ("a", "b", "c")
    assert Vocab.build(sents, max_size=2).itos[3:] == ("a", "b")
    v, ids, offsets = Vocab.build_encoded(sents, min_count=3)
    assert ids.tolist() == [BOS_ID] + [3] * 5 + [4] * 3 + [UNK_ID] * 3 + [EOS_ID]
    assert offsets.tolist() == [0, 13]


@given(st.lists(st.lists(st.sampled_from(["x", "y", "z", "w", "<s>", "</s>"]), max_size=8), max_size=12))
def test_build_encoded_equals_build_then_encode(sents):
    for min_count in (1, 2):
        v, ids, offsets = Vocab.build_encoded(sents, min_count=min_count)
        v2 = Vocab.build(sents, min_count=min_count)
        assert v == v2
        expected = [v.encode(s, bos=True, eos=True) for s in sents]
        assert ids.tolist() == [i for e in expected for i in e.tolist()]
        assert np.diff(offsets).tolist() == [len(e) for e in expected]
        ids2, offsets2 = v.encode_batch(sents)
        assert ids2.tolist() == ids.tolist() and offsets2.tolist() == offsets.tolist()
        counts = Counter(t for s in sents for t in s)
        for tok, c in zip(v.itos[3:], v.counts[3:].tolist()):
            assert counts[tok] == c and c >= min_count


def test_vocab_rejects_bad_input():
    with pytest.raises(ValueError, match="min_count"):
        Vocab.build([["a"]], min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build([["a"]], max_size=-1)
    with pytest.raises(TypeError, match="sentence"):
        Vocab.build(["abc"])
    with pytest.raises(TypeError, match="tokens"):
        Vocab(["a", 3])
    with pytest.raises(ValueError, match="repeat"):
        Vocab(["a", "a"])
    with pytest.raises(ValueError, match="counts"):
        Vocab(["a"], counts=[1, 2])
    with pytest.raises(ValueError, match="ids"):
        Vocab(["a"]).decode([7])


def test_english_words_and_chars():
    text = "Nay, answer me: stand, and unfold yourself. O'er the hill -- who's there?"
    assert english_words(text)[:4] == ["nay", "answer", "me", "stand"]
    assert "o'er" in english_words(text) and "who's" in english_words(text)
    kept = english_words(text, punctuation="keep")
    assert kept[1] == "," and "--" in kept and kept[-1] == "?"
    assert english_words("The THE the", lowercase=False) == ["The", "THE", "the"]
    assert english_chars("to  be\n or") == list("to_be_or")
    assert english_chars(" to be ", space=None) == list("tobe")
    assert english_chars("   ") == []
    with pytest.raises(ValueError, match="punctuation"):
        english_words("a", punctuation="strip")
    with pytest.raises(ValueError, match="space"):
        english_chars("a b", space="")
    with pytest.raises(TypeError, match="text"):
        english_words(["a"])


@settings(max_examples=60)
@given(st.text(max_size=60))
def test_english_words_are_the_word_runs(text):
    """Joining the words never creates letters out of nothing, and each word is letters/digits/apostrophes."""
    words = english_words(text, lowercase=False)
    for w in words:
        assert w and all(c.isalnum() or c in "'\u2019" for c in w) and w[0].isalnum() and w[-1].isalnum()
    assert sum(c.isalnum() and c != "_" for c in text) >= sum(c.isalnum() for w in words for c in w)


def test_chinese_chars_and_segmented_words():
    line = "迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w  一九九八年/t  （/w  附/v  图片/n  １/m  张/q  ）/w"
    words = strip_pos_tags(line)
    assert words[:4] == ["迈向", "充满", "希望", "的"]
    assert "——" in words and "——" not in strip_pos_tags(line, drop_tags=("w",))
    assert strip_pos_tags(line, normalize=True)[-3] == "1"
    assert pos_tagged("a/b/nx") == [("a/b", "nx")]
    chars = chinese_chars("".join(words))
    assert chars[:4] == ["迈", "向", "充", "满"] and len(chars) == sum(map(len, words))
    assert "（" not in chinese_chars("（附图片）", punctuation="drop")
    assert chinese_chars("１９９８年", normalize=True) == ["1", "9", "9", "8", "年"]
    with pytest.raises(ValueError, match="word/tag"):
        pos_tagged("迈向 充满/v")


def test_roundtrip_random_tokens():
    rng = random.Random(0)
    sents = [[rng.choice("甲乙丙丁戊") for _ in range(rng.randint(0, 6))] for _ in range(50)]
    v = Vocab.build(sents)
    for s in sents:
        assert v.decode(v.encode(s)) == s
    assert (BOS, EOS) == ("<s>", "</s>")
