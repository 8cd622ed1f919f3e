"""NGramLM against independent references: normalisation, a brute-force estimator, Counter, ARPA round trips."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ngram_oracles import BruteAddK, BruteKneserNey, raw_ngram_counts, read_arpa_dict, sentence_log10

from shiyan.text import NGramLM, Vocab, count_ngrams, format_arpa, ngram_matrix, parse_arpa
from shiyan.text.ngram import adjusted_counts, count_of_counts, mkn_discounts

WORDS = "a b c d e f g h".split()
SCHEMES = ("addk", "kn", "mkn")


def random_corpus(seed: int, n_sentences: int = 150, n_words: int = 8, max_len: int = 9) -> list[list[str]]:
    """Sentences over a small alphabet with a skewed (Zipf-like) choice, so counts of 1, 2, 3, 4+ all occur."""
    rng = random.Random(seed)
    words = WORDS[:n_words]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    return [rng.choices(words, weights, k=rng.randint(0, max_len)) for _ in range(n_sentences)]


def contexts(order: int, seed: int = 1) -> list[list[str]]:
    """Every context the model can meet: empty, sentence starts, seen and unseen histories, OOV words."""
    rng = random.Random(seed)
    pool = [*WORDS, "zzz"]
    out = [[], ["<s>"], ["<s>", "a"], ["a"], ["zzz"], ["h", "h", "h"], ["zzz", "a", "b"]]
    out += [[rng.choice(pool) for _ in range(rng.randint(1, order))] for _ in range(12)]
    out += [["<s>", *(rng.choice(pool) for _ in range(rng.randint(0, order)))] for _ in range(6)]
    return out


def make_lm(sentences, order: int, scheme: str) -> NGramLM:
    return NGramLM(order=order, smoothing=scheme, k=0.5).fit(sentences)


def make_ref(sentences, order: int, scheme: str):
    if scheme == "addk":
        return BruteAddK(sentences, order, 0.5)
    return BruteKneserNey(sentences, order, modified=scheme == "mkn")


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return random_corpus(0)


# -- probabilities are distributions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distribution_sums_to_one_for_every_context(corpus, scheme, order):
    lm = make_lm(corpus, order, scheme)
    for ctx in contexts(order):
        p = lm.distribution(ctx)
        assert p.shape == (len(lm.vocab_),)
        assert p[lm.vocab_.bos_id] == 0.0
        assert np.all(p[np.arange(len(p)) != lm.vocab_.bos_id] > 0), ctx
        assert abs(p.sum() - 1.0) < 1e-12, (ctx, p.sum())


@pytest.mark.parametrize("scheme", ["kn", "mkn"])
def test_every_stored_context_of_the_training_data_normalises(scheme):
    """Not just sampled contexts: every (n-1)-gram of the corpus, read off the model's own tables."""
    sents = random_corpus(3, n_sentences=60, n_words=6)
    lm = make_lm(sents, 3, scheme)
    V = len(lm.vocab_)
    for n in (1, 2):
        for gram in ngram_matrix(lm.counts_, n, V):
            ctx = lm.vocab_.decode(gram)
            if "</s>" in ctx or "<s>" in ctx[1:]:
                continue
            assert abs(lm.distribution(ctx).sum() - 1.0) < 1e-12, ctx


# -- brute-force reference -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_log_probs_equal_brute_force(corpus, scheme, order):
    lm = make_lm(corpus, order, scheme)
    ref = make_ref(corpus, order, scheme)
    for ctx in contexts(order, seed=order):
        for w in ["a", "c", "h", "zzz", "</s>"]:
            known = [x if x in lm.vocab_ else "<unk>" for x in ctx]
            expected = math.log10(ref.prob(w if w in lm.vocab_ else "<unk>", known))
            assert lm.log_prob(w, ctx) == pytest.approx(expected, abs=1e-12), (ctx, w)
    test = random_corpus(9, n_sentences=40, n_words=8) + [["zzz", "a"], [], ["a", "zzz", "zzz", "b"]]
    expected = np.array([sentence_log10(ref, s) for s in test])
    np.testing.assert_allclose(lm.scores(test), expected, rtol=0, atol=1e-11)
    np.testing.assert_allclose(lm.scores(test, base=math.e), expected * math.log(10), rtol=0, atol=1e-11)


@pytest.mark.parametrize("modified", [True, False])
def test_discounts_and_adjusted_counts_equal_brute_force(modified):
    sents = random_corpus(5, n_sentences=400, n_words=8, max_len=12)
    lm = make_lm(sents, 3, "mkn" if modified else "kn")
    ref = BruteKneserNey(sents, 3, modified=modified)
    for n in (1, 2, 3):
        np.testing.assert_allclose(lm.discounts_[n - 1], ref.discounts[n], rtol=1e-12)
        assert bool(lm.discount_fallback_used_[n - 1]) == ref.used_fallback[n]
    V = len(lm.vocab_)
    for n in (1, 2, 3):
        grams = ngram_matrix(lm.counts_, n, V)
        ours = {tuple(lm.vocab_.decode(g)): int(a) for g, a in zip(grams, lm.adjusted_counts_[n - 1]) if a > 0}
        assert ours == {g: a for g, a in ref.adjusted[n].items() if a > 0}


def test_mkn_discount_formula_on_known_counts():
    # t = (t1, t2, t3, t4) = (10, 5, 3, 2): Y = 10/20 = 0.5, D(k) = k - (k+1) * 0.5 * t_{k+1}/t_k
    np.testing.assert_allclose(
        mkn_discounts(np.array([10, 5, 3, 2])), [1 - 2 * 0.5 * 0.5, 2 - 1.5 * 0.6, 3 - 2 * 2 / 3]
    )
    assert mkn_discounts(np.array([10, 0, 3, 2])) is None  # t2 = 0: undefined
    assert mkn_discounts(np.array([10, 5, 30, 2])) is None  # D(2) = 2 - 3 * 0.5 * 6 < 0: lmplz's range check


def test_undefined_discounts_raise_without_fallback():
    with pytest.raises(ValueError, match="discount_fallback"):
        NGramLM(order=2, discount_fallback=None).fit([["a", "b"], ["a", "b"]])


def test_scores_match_kenlm_conventions():
    """score() conditions on <s> and predicts </s>; bos/eos switch them off like kenlm.Model.score."""
    sents = random_corpus(2)
    lm = make_lm(sents, 3, "mkn")
    s = ["a", "b", "c"]
    full = lm.log_prob("a", ["<s>"]) + lm.log_prob("b", ["<s>", "a"]) + lm.log_prob("c", ["a", "b"])
    assert lm.score(s) == pytest.approx(full + lm.log_prob("</s>", ["b", "c"]), abs=1e-12)
    assert lm.score(s, eos=False) == pytest.approx(full, abs=1e-12)
    no_bos = lm.log_prob("a") + lm.log_prob("b", ["a"]) + lm.log_prob("c", ["a", "b"])
    assert lm.score(s, bos=False, eos=False) == pytest.approx(no_bos, abs=1e-12)
    assert lm.score("a b c") == lm.score(s)


def test_perplexity_and_most_plausible():
    sents = random_corpus(4)
    lm = make_lm(sents, 2, "mkn")
    test = [["a", "b"], ["zzz", "a", "zzz"]]
    lp, oov, _ = lm.token_scores(test)
    rep = lm.perplexity(test)
    assert rep.n_tokens == 3 + 4 and rep.n_oov == 2 and rep.n_sentences == 2
    assert rep.perplexity == pytest.approx(10 ** (-lp.sum() / 7))
    assert rep.perplexity_excluding_oov == pytest.approx(10 ** (-lp[~oov].sum() / 5))
    cands = [["h", "g", "h", "g"], ["a", "a", "b"], ["zzz", "zzz"]]
    assert lm.most_plausible(cands) == int(np.argmax(lm.scores(cands)))
    per_tok = lm.scores(cands) / np.array([5, 4, 3])
    assert lm.most_plausible(cands, per_token=True) == int(np.argmax(per_tok))


# -- counting equals a naive Counter ---------------------------------------------------------------------------------

sentences_st = st.lists(st.lists(st.sampled_from("abcdefg"), max_size=10), min_size=1, max_size=30)


@given(sents=sentences_st, order=st.integers(1, 5))
def test_counting_equals_counter(sents, order):
    vocab, ids, offsets = Vocab.build_encoded(sents)
    levels = count_ngrams(ids, offsets, order, len(vocab))
    expected = raw_ngram_counts(sents, order)
    for n in range(1, order + 1):
        grams = ngram_matrix(levels, n, len(vocab))
        ours = Counter({tuple(vocab.decode(g)): int(c) for g, c in zip(grams, levels[n - 1].counts) if c > 0})
        assert ours == expected[n]
        assert np.all(np.diff(levels[n - 1].keys) > 0)  # sorted, distinct


@given(sents=sentences_st, order=st.integers(2, 4))
def test_continuation_counts_equal_distinct_left_neighbours(sents, order):
    vocab, ids, offsets = Vocab.build_encoded(sents)
    levels = count_ngrams(ids, offsets, order, len(vocab))
    a = adjusted_counts(levels)
    raw = raw_ngram_counts(sents, order)
    for n in range(1, order):
        left: dict[tuple[str, ...], set[str]] = {}
        for g in raw[n + 1]:
            left.setdefault(g[1:], set()).add(g[0])
        grams = ngram_matrix(levels, n, len(vocab))
        for g, an, c in zip(grams, a[n - 1], levels[n - 1].counts):
            words = tuple(vocab.decode(g))
            if c == 0 or words == ("<s>",):
                continue
            assert an == (c if words[0] == "<s>" else len(left.get(words, ()))), words
    t = count_of_counts(a[-1])
    assert t.tolist() == [int(np.sum(a[-1] == k)) for k in (1, 2, 3, 4)]


# -- ARPA ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["kn", "mkn"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_arpa_round_trip_gives_identical_scores(corpus, scheme, order):
    lm = make_lm(corpus, order, scheme)
    text = lm.to_arpa()
    back = NGramLM.from_arpa(text)
    test = random_corpus(11, n_sentences=60) + [["zzz", "q"], []]
    np.testing.assert_array_equal(back.scores(test), lm.scores(test))
    assert back.to_arpa() == text
    for ctx in contexts(order)[:8]:
        np.testing.assert_allclose(back.distribution(ctx), lm.distribution(ctx), rtol=1e-14, atol=0)


def test_arpa_text_agrees_with_a_line_by_line_reader(corpus):
    lm = make_lm(corpus, 3, "mkn")
    entries = read_arpa_dict(lm.to_arpa())
    ref = BruteKneserNey(corpus, 3)
    assert entries[("<s>",)][0] == 0.0
    for gram, (lp, bo) in entries.items():
        if gram == ("<s>",):
            continue
        assert lp == pytest.approx(math.log10(ref.prob(gram[-1], gram[:-1])), abs=1e-12), gram
        if bo is not None:
            assert bo == pytest.approx(math.log10(ref.backoff(gram)), abs=1e-12), gram
    header = lm.to_arpa().split("\n\n")[0].splitlines()
    assert header == ["\\data\\", *(f"ngram {n}={len(lm.tables_[n - 1])}" for n in (1, 2, 3))]


def test_parse_arpa_accepts_spaces_and_rejects_broken_files():
    text = "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1 <unk> 0\n0 <s> -0.5\n-0.5 </s> 0\n-0.4 a -0.1\n\n"
    text += "\\2-grams:\n-0.2 <s> a\n\n\\end\\\n"
    lm = NGramLM.from_arpa(text)
    # p(a | <s>) stored; p(</s> | a) backs off: b(a) + p(</s>)
    assert lm.score(["a"]) == pytest.approx(-0.2 + (-0.1 - 0.5))
    with pytest.raises(ValueError, match="announces"):
        parse_arpa(text.replace("ngram 2=1", "ngram 2=2"))
    with pytest.raises(ValueError, match="end"):
        parse_arpa(text.replace("\\end\\", ""))
    with pytest.raises(ValueError, match="not among the unigrams"):
        parse_arpa(text.replace("<s> a\n", "<s> b\n"))
    with pytest.raises(ValueError, match="<s>"):
        NGramLM.from_arpa(text.replace("<s>", "x"))
    assert format_arpa(parse_arpa(text)).count("\n") > 5


def test_addk_has_no_arpa_form(corpus):
    with pytest.raises(ValueError, match="add-k"):
        make_lm(corpus, 2, "addk").to_arpa()


# -- bad input names the argument ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"order": 0}, "order"),
        ({"order": 2.0}, "order"),
        ({"smoothing": "witten-bell"}, "smoothing"),
        ({"smoothing": "addk", "k": 0}, "k"),
        ({"smoothing": "addk", "k": float("nan")}, "k"),
        ({"discount_fallback": (0.5, 3.0, 1.5)}, "discount_fallback"),
        ({"min_count": 0}, "min_count"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NGramLM(**kwargs).fit([["a", "b"]])


def test_bad_inputs_name_the_argument(corpus):
    with pytest.raises(TypeError, match="vocab"):
        NGramLM(vocab=["a"]).fit([["a"]])
    with pytest.raises(TypeError, match="str"):
        NGramLM().fit(["a b c"])
    with pytest.raises(ValueError, match="<s>"):
        NGramLM().fit([["a", "<s>", "b"]])
    lm = make_lm(corpus, 2, "mkn")
    with pytest.raises(ValueError, match="base"):
        lm.score("a b", base=1)
    with pytest.raises(TypeError, match="context"):
        lm.log_prob("a", "b")
    with pytest.raises(ValueError, match="context"):
        lm.log_prob("a", ["b", "</s>"])
    with pytest.raises(ValueError, match="sentences"):
        lm.most_plausible([])
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM().score("a")
    vocab, ids, offsets = Vocab.build_encoded([["a", "b"]])
    with pytest.raises(ValueError, match="ids"):
        count_ngrams(ids + 100, offsets, 2, len(vocab))
    with pytest.raises(ValueError, match="offsets"):
        count_ngrams(ids, offsets[:-1], 2, len(vocab))
    with pytest.raises(ValueError, match="vocab_size"):
        count_ngrams(ids, offsets, 2, 2.5)
    with pytest.raises(ValueError, match="order"):
        count_ngrams(ids, offsets, 0, len(vocab))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fit_counts_from_higher_order_counts_equals_fit(corpus, scheme):
    vocab, ids, offsets = Vocab.build_encoded(corpus)
    levels = count_ngrams(ids, offsets, 5, len(vocab))
    test = random_corpus(12, n_sentences=30)
    for order in (1, 2, 3):
        a = NGramLM(order=order, smoothing=scheme).fit(corpus)
        b = NGramLM(order=order, smoothing=scheme).fit_counts(levels, vocab)
        np.testing.assert_array_equal(a.scores(test), b.scores(test))
    with pytest.raises(ValueError, match="levels"):
        NGramLM(order=3).fit_counts(levels[:2], vocab)
