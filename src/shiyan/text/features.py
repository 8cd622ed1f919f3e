r"""n-grams as features: signed hashed n-gram counts for a linear text classifier.

A document $d$ becomes a vector $x(d) \in \mathbb{R}^m$ without storing a vocabulary (the *hashing
trick*, Weinberger et al. 2009). Every n-gram $g$ of the document, for $n$ in a range such as 1..2,
is hashed to a 64-bit integer $h(g)$; its column and sign are

$$j(g) = h(g) \bmod m, \qquad \xi(g) = \begin{cases} +1 & \text{bit 63 of } h(g) = 0 \\ -1 & \text{otherwise}
\end{cases}, \qquad x_j(d) = \sum_{g \in d,\ j(g) = j} \xi(g)\,c(g, d).$$

The random sign makes collisions cancel in expectation, so inner products are unbiased:
$\mathbb{E}[x(d)^\top x(d')] = \sum_g c(g,d)\,c(g,d')$. With ``signed=False`` the plain count is added.

**A stable hash.** Python's ``hash(str)`` changes from process to process, so it cannot name a
column of a saved model. Here every token type $w$ gets $h(w)$ = the first 8 bytes (little-endian)
of BLAKE2b over ``seed`` (8 bytes, little-endian) followed by the UTF-8 bytes of $w$, and an
n-gram's hash extends its prefix's one token at a time,

$$h(w_1^n) = \operatorname{mix}\big(h(w_1^{n-1}) \cdot P + h(w_n)\big) \bmod 2^{64},$$

with $P$ = ``0x9E3779B97F4A7C15`` and $\operatorname{mix}$ the SplitMix64 finaliser (xor-shift by 30,
multiply by ``0xBF58476D1CE4E5B9``, xor-shift by 27, multiply by ``0x94D049BB133111EB``, xor-shift by
31). Only the distinct token types go through BLAKE2b; the recursion runs on whole numpy arrays
(``uint64`` arithmetic wraps modulo $2^{64}$).

**scikit-learn's convention** (``hashing="murmur3"``): the n-gram is the string $w_1 \dots w_n$
joined by single spaces, $h$ = signed 32-bit MurmurHash3 of its UTF-8 bytes with ``seed``,
$j = |h| \bmod m$ and $\xi = +1$ iff $h \ge 0$ -- what ``sklearn.feature_extraction.text.HashingVectorizer``
(``alternate_sign=True, norm=None``) computes for the same n-grams.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

HASHINGS = ("stable", "murmur3")
_P = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser on a uint64 array (a bijection that spreads every input bit)."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def token_hashes(tokens: Sequence[str], seed: int = 0) -> np.ndarray:
    """(len(tokens),) uint64 $h(w)$: BLAKE2b-64 of ``seed`` then the token's UTF-8 bytes."""
    _check_seed(seed)
    prefix = int(seed).to_bytes(8, "little")
    digests = b"".join(hashlib.blake2b(prefix + t.encode("utf-8"), digest_size=8).digest() for t in tokens)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _flatten(docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Type ids of all tokens back to back (T,), document offsets (D + 1,), the distinct types."""
    index: dict[str, int] = {}
    lengths = np.zeros(len(docs), dtype=np.int64)
    flat: list[int] = []
    for i, doc in enumerate(docs):
        if isinstance(doc, str):
            raise TypeError("docs must be token sequences, not str; tokenise first (e.g. english_words)")
        for tok in doc:
            if not isinstance(tok, str):
                raise TypeError(f"docs: tokens must be str; got {type(tok).__name__}")
            flat.append(index.setdefault(tok, len(index)))
        lengths[i] = len(doc)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.asarray(flat, dtype=np.int64), offsets, list(index)


def ngram_hashes(
    type_hash: np.ndarray, ids: np.ndarray, offsets: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of every n-gram window inside a document.

    Args:
        type_hash: (K,) uint64 $h(w)$ of each token type.
        ids: (T,) int64 type ids of all documents back to back.
        offsets: (D + 1,) int64 document boundaries.
        n: the n-gram length.

    Returns:
        h: (W,) uint64 $h(w_{j-n+1}^j)$; doc: (W,) int64 document of each window; end: (W,) position $j$.
    """
    T = ids.shape[0]
    starts = np.repeat(offsets[:-1], np.diff(offsets))  # (T,)
    end = np.flatnonzero(np.arange(T) - (n - 1) >= starts)  # (W,) windows of length n inside a document
    h = type_hash[ids[end - (n - 1)]]  # (W,) h(w_1)
    for m in range(n - 2, -1, -1):
        h = splitmix64(h * _P + type_hash[ids[end - m]])  # h(w_1^k) = mix(h(w_1^{k-1}) P + h(w_k))
    doc = np.searchsorted(offsets, end, side="right") - 1  # (W,)
    return h, doc, end


def hashed_ngram_counts(
    docs: Sequence[Sequence[str]],
    n_features: int = 2**18,
    ngram_range: tuple[int, int] = (1, 2),
    signed: bool = True,
    seed: int = 0,
    hashing: str = "stable",
) -> sp.csr_matrix:
    """(D, n_features) float64 CSR matrix $x_j(d)$ of signed hashed n-gram counts.

    Args:
        docs: D documents, each a sequence of str tokens (words, or characters for char n-grams).
        n_features: m, the number of columns.
        ngram_range: (lo, hi), n-gram lengths lo..hi inclusive.
        signed: multiply each count by the sign $\\xi(g)$ (the alternate-sign trick).
        seed: hash seed.
        hashing: ``"stable"`` (BLAKE2b + SplitMix64, see the module docstring) or ``"murmur3"``
            (scikit-learn's HashingVectorizer convention; ``seed`` must fit in 32 bits).
    """
    if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer) or not 1 <= n_features < 2**31:
        raise ValueError(f"n_features must be an integer in [1, 2**31); got {n_features!r}")
    lo, hi = _check_range(ngram_range)
    if hashing not in HASHINGS:
        raise ValueError(f"hashing must be one of {HASHINGS}; got {hashing!r}")
    _check_seed(seed)
    if hashing == "murmur3" and seed >= 2**32:
        raise ValueError(f"seed must be < 2**32 for hashing='murmur3'; got {seed}")
    if isinstance(docs, str):
        raise TypeError("docs must be a sequence of token sequences, not one str")
    docs = list(docs)
    ids, offsets, types = _flatten(docs)
    type_hash = token_hashes(types, seed)  # (K,)
    rows, cols, vals = [], [], []
    for n in range(lo, hi + 1):
        h, doc, end = ngram_hashes(type_hash, ids, offsets, n)
        if hashing == "stable":
            col = (h % np.uint64(n_features)).astype(np.int64)  # (W,)
            sign = np.where(h >> np.uint64(63), -1.0, 1.0)  # (W,)
        else:
            col, sign = _murmur_columns(h, end, n, ids, types, n_features, seed)
        rows.append(doc)
        cols.append(col)
        vals.append(sign if signed else np.ones_like(sign))
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    val = np.concatenate(vals) if vals else np.zeros(0)
    x = sp.coo_matrix((val, (row, col)), shape=(len(docs), int(n_features))).tocsr()  # sums duplicates
    x.eliminate_zeros()  # collisions of opposite sign that cancelled
    x.sort_indices()
    return x


def _murmur_columns(
    h: np.ndarray, end: np.ndarray, n: int, ids: np.ndarray, types: list[str], n_features: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Columns and signs by MurmurHash3 of the space-joined n-gram, computed once per distinct n-gram."""
    from sklearn.utils import murmurhash3_32

    uniq, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    col_u = np.empty(uniq.shape[0], dtype=np.int64)
    sign_u = np.empty(uniq.shape[0])
    for k, j in enumerate(end[first].tolist()):
        text = " ".join(types[t] for t in ids[j - n + 1 : j + 1].tolist())
        m = int(murmurhash3_32(text.encode("utf-8"), seed=seed, positive=False))
        col_u[k] = abs(m) % n_features
        sign_u[k] = 1.0 if m >= 0 else -1.0
    inverse = inverse.reshape(-1)
    return col_u[inverse], sign_u[inverse]


def char_ngram_docs(texts: Sequence[str]) -> list[list[str]]:
    """Each text as a list of its characters (whitespace runs -> one space), for character n-grams."""
    out = []
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"texts must be str; got {type(t).__name__}")
        out.append(list(" ".join(t.split())))
    return out


def _check_range(ngram_range: tuple[int, int]) -> tuple[int, int]:
    try:
        lo, hi = ngram_range
    except (TypeError, ValueError):
        raise ValueError(f"ngram_range must be a pair (lo, hi); got {ngram_range!r}") from None
    if any(isinstance(x, bool) or not isinstance(x, int) for x in (lo, hi)) or not 1 <= lo <= hi:
        raise ValueError(f"ngram_range must be integers 1 <= lo <= hi; got {ngram_range!r}")
    return lo, hi


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64); got {seed!r}")


__all__ = ["HASHINGS", "char_ngram_docs", "hashed_ngram_counts", "ngram_hashes", "splitmix64", "token_hashes"]
