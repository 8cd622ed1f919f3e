"""Hashed n-gram features against a plain-Python version of the same equations and scikit-learn's HashingVectorizer."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer

from shiyan.text.features import char_ngram_docs, hashed_ngram_counts, splitmix64

MASK = 2**64 - 1


def naive_hash(gram: tuple[str, ...], seed: int) -> int:
    """h(w_1^n) with Python ints: BLAKE2b-64 per token, h = mix(h * P + h(w)) mod 2^64."""

    def token(w: str) -> int:
        return int.from_bytes(
            hashlib.blake2b(seed.to_bytes(8, "little") + w.encode(), digest_size=8).digest(), "little"
        )

    def mix(x: int) -> int:
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
        return x ^ (x >> 31)

    h = token(gram[0])
    for w in gram[1:]:
        h = mix((h * 0x9E3779B97F4A7C15 + token(w)) & MASK)
    return h


def naive_counts(docs, m, lo, hi, signed, seed) -> np.ndarray:
    x = np.zeros((len(docs), m))
    for i, doc in enumerate(docs):
        for n in range(lo, hi + 1):
            for k in range(len(doc) - n + 1):
                h = naive_hash(tuple(doc[k : k + n]), seed)
                x[i, h % m] += (-1.0 if h >> 63 else 1.0) if signed else 1.0
    return x


docs_st = st.lists(st.lists(st.sampled_from(["a", "b", "c", "ä", "门", "the"]), max_size=12), max_size=8)


@settings(max_examples=40)
@given(
    docs=docs_st,
    m=st.sampled_from([1, 7, 64, 2**12]),
    lo=st.integers(1, 3),
    extra=st.integers(0, 2),
    signed=st.booleans(),
    seed=st.sampled_from([0, 1, 2**40]),
)
def test_equals_naive_python(docs, m, lo, extra, signed, seed):
    x = hashed_ngram_counts(docs, n_features=m, ngram_range=(lo, lo + extra), signed=signed, seed=seed)
    assert sp.isspmatrix_csr(x) and x.shape == (len(docs), m) and x.dtype == np.float64
    np.testing.assert_array_equal(x.toarray(), naive_counts(docs, m, lo, lo + extra, signed, seed))


def test_splitmix_is_the_published_finaliser():
    # SplitMix64's first outputs from state 0 (state += golden gamma, then the finaliser).
    state = np.arange(1, 4, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    assert splitmix64(state).tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def _ngrams(doc, lo, hi):
    return [" ".join(doc[k : k + n]) for n in range(lo, hi + 1) for k in range(len(doc) - n + 1)]


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 3), (2, 2)])
def test_murmur3_equals_sklearn_hashing_vectorizer(ngram_range, signed):
    rng = random.Random(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "迈向", "希望"]
    docs = [[rng.choice(words) for _ in range(rng.randint(0, 30))] for _ in range(40)]
    lo, hi = ngram_range
    ref = HashingVectorizer(
        analyzer=lambda d: _ngrams(d, lo, hi), n_features=2**10, alternate_sign=signed, norm=None
    ).transform(docs)
    ours = hashed_ngram_counts(docs, n_features=2**10, ngram_range=ngram_range, signed=signed, hashing="murmur3")
    np.testing.assert_array_equal(ours.toarray(), ref.toarray())


def test_char_ngrams_and_unbiased_inner_products():
    docs = char_ngram_docs(["to be  or\nnot", "质疑"])
    assert docs == [list("to be or not"), ["质", "疑"]]
    rng = random.Random(1)
    a = [rng.choice("abcdefgh") for _ in range(300)]
    b = [rng.choice("abcdefgh") for _ in range(300)]
    exact = hashed_ngram_counts([a, b], n_features=2**24, ngram_range=(3, 3), signed=False)
    truth = float(exact[0].multiply(exact[1]).sum())
    # over seeds, signed hashing into few columns estimates the same inner product without bias
    est = [
        float((lambda x: x[0].multiply(x[1]).sum())(hashed_ngram_counts([a, b], 64, (3, 3), seed=s)))
        for s in range(200)
    ]
    assert abs(np.mean(est) - truth) < 4 * np.std(est) / np.sqrt(len(est))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n_features"):
        hashed_ngram_counts([["a"]], n_features=0)
    with pytest.raises(ValueError, match="ngram_range"):
        hashed_ngram_counts([["a"]], ngram_range=(2, 1))
    with pytest.raises(ValueError, match="hashing"):
        hashed_ngram_counts([["a"]], hashing="md5")
    with pytest.raises(ValueError, match="seed"):
        hashed_ngram_counts([["a"]], seed=-1)
    with pytest.raises(TypeError, match="docs"):
        hashed_ngram_counts(["a b"])
    with pytest.raises(TypeError, match="texts"):
        char_ngram_docs([3])
