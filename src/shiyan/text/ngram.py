r"""N-gram language models: counting in a sliding window, add-k, Kneser–Ney and modified Kneser–Ney.

A language model gives a sentence $w_1 \dots w_m$ the probability
$p(w_1^m) = \prod_{i=1}^{m+1} p(w_i \mid w_1^{i-1})$ (with $w_{m+1}$ = ``</s>``). An n-gram model makes
the **Markov assumption** that only the last $N-1$ words matter,
$p(w_i \mid w_1^{i-1}) \approx p(w_i \mid w_{i-N+1}^{i-1})$, and estimates these conditionals from
counts $c(w_1^n)$ of the n-grams seen in a corpus through a window of width $n$ that slides over each
sentence ``<s> w_1 ... w_m </s>``. At the start of a sentence the context is cut at ``<s>``: the
first word is predicted from ``<s>`` alone, the second from ``<s> w_1`` and so on.

Glossary (code name: symbol)
----------------------------
``order``: $N$; ``V``: vocabulary size $|V|$ (``<unk>``, ``<s>``, ``</s>`` included); $|V|-1$ words can
be predicted (all but ``<s>``); ``a``: adjusted count $a(w_1^n)$; ``t[n, k]``: count-of-counts
$t_{n,k}$; ``D``: discounts $D_n(k)$; ``gamma``: interpolation (back-off) weight $\gamma(w_1^{n-1})$;
``u``: discounted probability $u(w_n \mid w_1^{n-1})$.

Add-k (Laplace for $k=1$)
-------------------------
$$p(w \mid h) = \frac{c(h\,w) + k}{\sum_x c(h\,x) + k\,(|V|-1)}$$
with $h$ the full context (length $N-1$, or shorter at the start of a sentence). No back-off: an
unseen context gives the uniform distribution.

Modified Kneser–Ney as KenLM's ``lmplz`` estimates it (Heafield et al. 2013, §3; Chen & Goodman 1998)
----------------------------------------------------------------------------------------------------
**Adjusted counts.** The highest order and n-grams that start with ``<s>`` keep their counts; every
other n-gram is counted by the number of distinct words seen to its left (its *continuation count*):
$$a(w_1^n) = \begin{cases} c(w_1^n) & n = N \text{ or } w_1 = \texttt{<s>} \\
|\{v : c(v\,w_1^n) > 0\}| & \text{otherwise} \end{cases}$$

**Discounts** per order from the count-of-counts $t_{n,k} = |\{w_1^n : a(w_1^n) = k\}|$:
$$Y_n = \frac{t_{n,1}}{t_{n,1} + 2 t_{n,2}}, \qquad D_n(k) = k - (k+1)\,Y_n\,\frac{t_{n,k+1}}{t_{n,k}}
\quad (k = 1, 2, 3), \qquad D_n(k > 3) = D_n(3).$$
When a $t_{n,k}$ is zero or a discount leaves $[0, k]$ (tiny or artificial data) lmplz stops unless
told ``--discount_fallback``, which substitutes $(0.5, 1, 1.5)$ for that order; ``discount_fallback``
here does the same (``None`` raises instead).

**Discounted probability and interpolation weight** for a context $h = w_1^{n-1}$, with
$N_k(h\,\bullet)$ the number of words $x$ with $a(h\,x) = k$ ($N_{3+}$: at least 3):
$$u(w_n \mid h) = \frac{a(h\,w_n) - D_n(a(h\,w_n))}{\sum_x a(h\,x)}, \qquad
\gamma(h) = \frac{D_n(1)\,N_1(h\,\bullet) + D_n(2)\,N_2(h\,\bullet) + D_n(3)\,N_{3+}(h\,\bullet)}{\sum_x a(h\,x)}.$$

**Interpolation** with the next lower order, down to the uniform distribution over the $|V|-1$
predictable words (lmplz's default ``--interpolate_unigrams``; this is what gives ``<unk>`` its
probability $\gamma(\epsilon)/(|V|-1)$):
$$p(w_n \mid w_1^{n-1}) = u(w_n \mid w_1^{n-1}) + \gamma(w_1^{n-1})\,p(w_n \mid w_2^{n-1}),\qquad
p(w) = u(w) + \frac{\gamma(\epsilon)}{|V|-1}.$$
``<s>`` is never predicted, so it takes no part in the unigram sums; its stored log-probability is 0
(lmplz's convention). The interpolated $p$ of every stored n-gram and $\gamma$ as its back-off weight
make an ARPA back-off model whose standard back-off evaluation (see :mod:`shiyan.text.arpa`)
reproduces the interpolated probabilities exactly, for stored and unseen n-grams alike.

**Interpolated Kneser–Ney** (``smoothing="kn"``) is the same estimator with a single discount per
order, $D_n(k) = Y_n$ for every $k$.

Implementation
--------------
Counting is vectorised: an n-gram is the integer key $r_{n-1}(w_1^{n-1}) \cdot |V| + w_n$, where
$r_{n-1}$ is the rank of the prefix among the sorted distinct (n-1)-grams, so one ``np.unique`` per
order counts every window of the corpus and gives each window's rank for the next order. The same
keys, looked up with ``np.searchsorted``, serve the queries. Continuation counts are a ``bincount``
over the suffix ranks of the (n+1)-grams; context sums are ``bincount`` over prefix ranks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from shiyan.text.arpa import ArpaModel, format_arpa, parse_arpa
from shiyan.text.vocab import BOS, BOS_ID, EOS, EOS_ID, UNK_ID, Vocab

SMOOTHINGS = ("mkn", "kn", "addk")
LMPLZ_FALLBACK = (0.5, 1.0, 1.5)
_LN10 = math.log(10.0)


# -- counting --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NGramCounts:
    """The distinct n-grams of one order n with their counts, sorted by key.

    Attributes:
        order: n.
        keys: (U,) int64 sorted keys ``context * V + word`` (for n = 1 the word id itself, U = V).
        counts: (U,) int64 raw counts $c(w_1^n)$.
        context: (U,) int64 rank of $w_1^{n-1}$ among the (n-1)-grams (zeros for n = 1).
        word: (U,) int64 last word $w_n$.
        suffix: (U,) int64 rank of $w_2^n$ among the (n-1)-grams (``-1`` for n = 1).
        first: (U,) int64 first word $w_1$.
    """

    order: int
    keys: np.ndarray
    counts: np.ndarray
    context: np.ndarray
    word: np.ndarray
    suffix: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return int(self.keys.shape[0])


def sentence_starts(offsets: np.ndarray) -> np.ndarray:
    """(T,) index of the first position of the sentence each position belongs to."""
    return np.repeat(offsets[:-1], np.diff(offsets))  # (T,)


def count_ngrams(ids: np.ndarray, offsets: np.ndarray, order: int, vocab_size: int) -> list[NGramCounts]:
    """Counts of every n-gram, n = 1..order, in windows that stay inside one sentence.

    Args:
        ids: (T,) int64 word ids of all sentences back to back (with ``<s>``/``</s>`` when wanted).
        offsets: (S + 1,) int64, sentence i is ``ids[offsets[i]:offsets[i + 1]]``.
        order: N >= 1.
        vocab_size: V; ids must lie in [0, V).

    Returns:
        ``levels[n - 1]`` holds the n-grams of order n (unigrams: all V ids, zero counts included).
    """
    ids, offsets = _check_stream(ids, offsets, vocab_size)
    _check_order(order)
    V = vocab_size
    T = ids.shape[0]
    starts = sentence_starts(offsets)  # (T,)
    pos = np.arange(T, dtype=np.int64)  # (T,)
    all_ids = np.arange(V, dtype=np.int64)
    levels = [
        NGramCounts(
            1,
            all_ids,
            np.bincount(ids, minlength=V).astype(np.int64),
            np.zeros(V, np.int64),
            all_ids,
            np.full(V, -1, np.int64),
            all_ids,
        )
    ]
    rank = ids  # (T,) rank of the window of the current order that ends at each position
    for n in range(2, order + 1):
        _check_key_range(len(levels[-1]), V)
        j = pos[pos - (n - 1) >= starts]  # (W,) ends of the windows of length n inside a sentence
        key = rank[j - 1] * V + ids[j]  # (W,) prefix rank * V + last word
        uniq, inverse, cnt = np.unique(key, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        context = uniq // V
        suffix = np.empty(uniq.shape[0], dtype=np.int64)
        suffix[inverse] = rank[j]  # the (n-1)-gram w_2^n ends where w_1^n ends (any occurrence will do)
        levels.append(NGramCounts(n, uniq, cnt.astype(np.int64), context, uniq % V, suffix, levels[-1].first[context]))
        rank = np.full(T, -1, dtype=np.int64)
        rank[j] = inverse
    return levels


def ngram_matrix(levels: Sequence[NGramCounts] | Sequence[np.ndarray], n: int, vocab_size: int) -> np.ndarray:
    """(U_n, n) word ids of the n-grams of order ``n``, decoded from the keys of orders 1..n."""
    keys = [lvl.keys if isinstance(lvl, NGramCounts) else lvl for lvl in levels]
    grams = keys[0].reshape(-1, 1)
    for m in range(2, n + 1):
        k = keys[m - 1]
        grams = np.concatenate([grams[k // vocab_size], (k % vocab_size).reshape(-1, 1)], axis=1)
    return grams


# -- Kneser–Ney estimation -------------------------------------------------------------------------------------------


def adjusted_counts(levels: Sequence[NGramCounts]) -> list[np.ndarray]:
    """$a(w_1^n)$ for every order: raw counts at the top order and after ``<s>``, else continuation counts.

    The unigram ``<s>`` gets 0: it is never predicted, so it takes no part in any sum.
    """
    N = len(levels)
    out = []
    for n, lvl in enumerate(levels, start=1):
        if n == N:
            a = lvl.counts.copy()
        else:
            continuation = np.bincount(levels[n].suffix, minlength=len(lvl)).astype(np.int64)  # N1+(. w_1^n)
            a = np.where(lvl.first == BOS_ID, lvl.counts, continuation)
        if n == 1:
            a[BOS_ID] = 0
        out.append(a)
    return out


def count_of_counts(a: np.ndarray, max_k: int = 4) -> np.ndarray:
    """(max_k,) $t_k = |\\{g : a(g) = k\\}|$ for k = 1..max_k."""
    return np.bincount(a[(a >= 1) & (a <= max_k)], minlength=max_k + 1)[1:].astype(np.int64)


def mkn_discounts(t: np.ndarray) -> np.ndarray | None:
    """(3,) modified Kneser–Ney discounts $D(1), D(2), D(3+)$ from $t_1..t_4$, or ``None`` when undefined.

    $Y = t_1/(t_1 + 2t_2)$, $D(k) = k - (k+1)\\,Y\\,t_{k+1}/t_k$; undefined when some $t_k$ (k <= 3) is 0
    or a discount falls outside $[0, k]$ (lmplz's test).
    """
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (4,):
        raise ValueError(f"t must hold t_1..t_4 (shape (4,)); got shape {t.shape}")
    if np.any(t[:3] <= 0):
        return None
    Y = t[0] / (t[0] + 2.0 * t[1])
    k = np.arange(1.0, 4.0)
    D = k - (k + 1.0) * Y * t[1:] / t[:3]
    if np.any(D < 0.0) or np.any(D > k):
        return None
    return D


def kn_discount(t: np.ndarray) -> float | None:
    """Interpolated Kneser–Ney's single discount $D = t_1/(t_1 + 2t_2)$, or ``None`` when a $t_k$ is 0."""
    t = np.asarray(t, dtype=np.float64)
    if t[0] <= 0 or t[1] <= 0:
        return None
    return float(t[0] / (t[0] + 2.0 * t[1]))


def _discount_of(a: np.ndarray, D: np.ndarray) -> np.ndarray:
    """$D(a)$ elementwise: 0 for a = 0, D(1), D(2), D(3) for a >= 3."""
    return np.where(a >= 3, D[2], np.where(a == 2, D[1], np.where(a == 1, D[0], 0.0)))


@dataclasses.dataclass(frozen=True)
class NGramTable:
    """The back-off form of one order: what an ARPA section holds, indexed by sorted keys.

    Attributes:
        keys: (U,) int64 sorted keys ``rank(w_1^{n-1}) * V + w_n`` (for n = 1 the word ids 0..V-1).
        log10_prob: (U,) float64 $\\log_{10} p(w_n \\mid w_1^{n-1})$.
        log10_backoff: (U,) float64 $\\log_{10} \\gamma(w_1^n)$ (0 at the highest order and for n-grams
            that are never a context).
    """

    keys: np.ndarray
    log10_prob: np.ndarray
    log10_backoff: np.ndarray

    def __len__(self) -> int:
        return int(self.keys.shape[0])


def kneser_ney_tables(
    levels: Sequence[NGramCounts],
    modified: bool = True,
    discount_fallback: tuple[float, float, float] | None = LMPLZ_FALLBACK,
) -> tuple[list[NGramTable], np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Interpolated (modified) Kneser–Ney probabilities and back-off weights from n-gram counts.

    Returns:
        tables: one :class:`NGramTable` per order.
        discounts: (N, 3) $D_n(1), D_n(2), D_n(3+)$.
        t: (N, 4) count-of-counts of the adjusted counts.
        a: adjusted counts per order.
        fallback_used: (N,) bool, orders whose discounts were replaced by ``discount_fallback``.
    """
    N = len(levels)
    V = len(levels[0])
    a = adjusted_counts(levels)
    t = np.stack([count_of_counts(x) for x in a])  # (N, 4)
    discounts = np.empty((N, 3))
    fallback_used = np.zeros(N, dtype=bool)
    for n in range(N):
        if modified:
            D = mkn_discounts(t[n])
        else:
            d = kn_discount(t[n])
            D = None if d is None else np.full(3, d)
        if D is None:
            if discount_fallback is None:
                raise ValueError(
                    f"Kneser-Ney discounts of order {n + 1} are undefined (count-of-counts t = {t[n].tolist()}); "
                    "the corpus is too small or artificial -- pass discount_fallback (lmplz --discount_fallback)"
                )
            D = np.asarray(discount_fallback, dtype=np.float64) if modified else np.full(3, discount_fallback[0])
            fallback_used[n] = True
        discounts[n] = D

    # u and gamma per order. gamma[n] is stored on the entries of order n (the contexts of order n + 1).
    u: list[np.ndarray] = []
    gamma: list[np.ndarray] = []
    gamma0 = 0.0
    for n, lvl in enumerate(levels, start=1):
        an = a[n - 1].astype(np.float64)
        Da = _discount_of(a[n - 1], discounts[n - 1])  # (U_n,) D_n(a)
        n_ctx = 1 if n == 1 else len(levels[n - 2])
        denom = np.bincount(lvl.context, weights=an, minlength=n_ctx)  # (U_{n-1},) sum_x a(h x)
        if n == 1 and denom[0] <= 0:
            raise ValueError("the corpus has no words to predict")
        num = np.bincount(lvl.context, weights=Da, minlength=n_ctx)  # (U_{n-1},) sum_x D(a(h x))
        safe = np.where(denom > 0, denom, 1.0)
        # $u(w_n | h) = (a(h w_n) - D(a)) / \sum_x a(h x)$
        u.append((an - Da) / safe[lvl.context])
        # $\gamma(h) = \sum_k D(k) N_k(h \cdot) / \sum_x a(h x)$ ; 1 (log 0) when h has no extension
        g = np.where(denom > 0, num / safe, 1.0)
        if n == 1:
            gamma0 = float(g[0])
        else:
            gamma.append(g)
    gamma.append(np.ones(len(levels[-1])))  # the highest order is nobody's context

    # $p(w) = u(w) + \gamma(\epsilon) / (|V| - 1)$, then $p(w_n | h) = u + \gamma(h) p(w_n | w_2^{n-1})$
    probs = [u[0] + gamma0 / (V - 1)]
    for n in range(2, N + 1):
        lvl = levels[n - 1]
        probs.append(u[n - 1] + gamma[n - 2][lvl.context] * probs[n - 2][lvl.suffix])
    tables = []
    for n, lvl in enumerate(levels, start=1):
        lp = np.log10(probs[n - 1])
        if n == 1:
            lp[BOS_ID] = 0.0  # lmplz's placeholder: <s> is never predicted
        tables.append(NGramTable(lvl.keys, lp, np.log10(gamma[n - 1])))
    return tables, discounts, t, a, fallback_used


# -- queries ---------------------------------------------------------------------------------------------------------


def window_ranks(keys: Sequence[np.ndarray], ids: np.ndarray, starts: np.ndarray, vocab_size: int) -> list[np.ndarray]:
    """For each order n, (T,) rank of the stored n-gram that ends at each position, or -1.

    A window counts only when it lies inside its sentence (``position - n + 1 >= starts``) and its
    prefix is stored (ARPA models store the prefix of every n-gram).
    """
    V = vocab_size
    T = ids.shape[0]
    pos = np.arange(T, dtype=np.int64)
    ranks = [ids]
    for n in range(2, len(keys) + 1):
        prev = ranks[-1]
        r = np.full(T, -1, dtype=np.int64)
        j = pos[pos - (n - 1) >= starts]
        j = j[prev[j - 1] >= 0]
        table = keys[n - 1]
        if j.size and table.size:
            idx = _lookup(table, prev[j - 1] * V + ids[j])
            hit = idx >= 0
            r[j[hit]] = idx[hit]
        ranks.append(r)
    return ranks


def backoff_log10(
    tables: Sequence[NGramTable], ids: np.ndarray, starts: np.ndarray, targets: np.ndarray, vocab_size: int
) -> np.ndarray:
    """(len(targets),) $\\log_{10} p(w_j \\mid \\text{context})$ by standard back-off, at positions ``targets``.

    $\\log_{10} p = \\log_{10} p_{\\text{stored}}(\\text{longest stored n-gram ending at } j)
    + \\sum_m \\log_{10} b(\\text{context of length } m)$ over the context lengths $m$ whose
    (m+1)-gram is not stored.
    """
    N = len(tables)
    ranks = window_ranks([t.keys for t in tables], ids, starts, vocab_size)
    j = targets
    lp = np.zeros(j.shape[0])
    found = np.zeros(j.shape[0], dtype=np.int64)  # order of the longest stored n-gram ending at j
    for n in range(N, 0, -1):
        r = ranks[n - 1][j]
        take = (found == 0) & (r >= 0)
        lp[take] = tables[n - 1].log10_prob[r[take]]
        found[take] = n
    if np.any(found == 0):
        raise ValueError("a target word id is outside the model's unigrams")
    for m in range(1, N):
        ok = (j - m >= starts[j]) & (found <= m)
        rc = ranks[m - 1][j[ok] - 1]
        idx = np.flatnonzero(ok)[rc >= 0]
        lp[idx] += tables[m - 1].log10_backoff[rc[rc >= 0]]
    return lp


@dataclasses.dataclass(frozen=True)
class PerplexityReport:
    """Corpus perplexity the way KenLM's ``query`` reports it.

    ``perplexity`` $= 10^{-\\sum_i \\log_{10} p_i / T}$ over all T predicted tokens (``</s>`` included,
    OOVs scored as ``<unk>``); ``perplexity_excluding_oov`` leaves the OOV tokens out of both the sum
    and T.
    """

    perplexity: float
    perplexity_excluding_oov: float
    log10_prob: float
    n_tokens: int
    n_oov: int
    n_sentences: int


# -- the model -------------------------------------------------------------------------------------------------------


class NGramLM:
    """An n-gram language model of order ``order`` with add-k, Kneser–Ney or modified Kneser–Ney smoothing.

    Args:
        order: N >= 1, the n-gram length (N - 1 words of context).
        smoothing: ``"mkn"`` (modified Kneser–Ney, lmplz's estimator), ``"kn"`` (interpolated
            Kneser–Ney, one discount per order) or ``"addk"``.
        k: the pseudo-count of add-k (``k = 1`` is Laplace smoothing); ignored otherwise.
        min_count: words seen fewer times become ``<unk>`` (KenLM parity needs 1).
        discount_fallback: discounts $D(1), D(2), D(3+)$ used for an order whose count-of-counts
            leave them undefined (lmplz's ``--discount_fallback``); ``None`` raises instead. For
            ``"kn"`` the first entry is used.
        vocab: a fixed :class:`Vocab` (words outside it become ``<unk>``); built from the data if None.

    Learned attributes (after :meth:`fit` or :meth:`from_arpa`):
        vocab_, tables_ (one :class:`NGramTable` per order; back-off models), counts_ (raw
        :class:`NGramCounts` per order), adjusted_counts_, discounts_ ((N, 3)), count_of_counts_
        ((N, 4)), discount_fallback_used_ ((N,) bool).

    >>> lm = NGramLM(order=2).fit([["a", "b"], ["a", "c"], ["b", "c", "a"], ["a", "a", "b"]])
    >>> round(sum(lm.distribution(["a"])), 12)
    1.0
    """

    def __init__(
        self,
        order: int = 3,
        smoothing: str = "mkn",
        k: float = 1.0,
        min_count: int = 1,
        discount_fallback: tuple[float, float, float] | None = LMPLZ_FALLBACK,
        vocab: Vocab | None = None,
    ):
        self.order = order
        self.smoothing = smoothing
        self.k = k
        self.min_count = min_count
        self.discount_fallback = discount_fallback
        self.vocab = vocab

    def _check_params(self) -> None:
        _check_order(self.order)
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}; got {self.smoothing!r}")
        if self.smoothing == "addk" and (not isinstance(self.k, int | float) or not self.k > 0 or math.isinf(self.k)):
            raise ValueError(f"k must be a finite number > 0; got {self.k!r}")
        if self.discount_fallback is not None:
            d = tuple(self.discount_fallback)
            if len(d) != 3 or not all(isinstance(x, int | float) and 0 <= x <= i for i, x in enumerate(d, 1)):
                raise ValueError(f"discount_fallback must be (D1, D2, D3+) with 0 <= D_k <= k; got {d!r}")
        if self.vocab is not None and not isinstance(self.vocab, Vocab):
            raise TypeError(f"vocab must be a shiyan.text.Vocab or None; got {type(self.vocab).__name__}")

    # -- fitting ---------------------------------------------------------------------------------------------------

    def fit(self, sentences: Iterable[Sequence[str]]) -> NGramLM:
        """Count the n-grams of tokenised ``sentences`` (each padded with ``<s>``/``</s>``) and estimate."""
        self._check_params()
        if self.vocab is not None:
            vocab = self.vocab
            ids, offsets = vocab.encode_batch(sentences, bos=True, eos=True)
        else:
            vocab, ids, offsets = Vocab.build_encoded(sentences, min_count=self.min_count)
        _check_no_inner_boundaries(ids, offsets)
        return self.fit_ids(ids, offsets, vocab)

    def fit_ids(self, ids: np.ndarray, offsets: np.ndarray, vocab: Vocab) -> NGramLM:
        """Estimate from encoded sentences: ``ids`` (T,) with ``<s> ... </s>`` around each sentence."""
        self._check_params()
        ids, offsets = _check_stream(ids, offsets, len(vocab))
        if ids.size == 0:
            raise ValueError("sentences must not be empty")
        return self.fit_counts(count_ngrams(ids, offsets, self.order, len(vocab)), vocab)

    def fit_counts(self, levels: Sequence[NGramCounts], vocab: Vocab) -> NGramLM:
        """Estimate from n-gram counts of :func:`count_ngrams`; only ``levels[:order]`` are used.

        Counting once at the highest order and fitting every lower order from a prefix of the levels
        gives the same models as fitting each order from the sentences (the counts of order n do not
        depend on the highest order counted).
        """
        self._check_params()
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a shiyan.text.Vocab; got {type(vocab).__name__}")
        levels = list(levels)
        if len(levels) < self.order or any(not isinstance(lv, NGramCounts) for lv in levels):
            raise ValueError(f"levels must hold NGramCounts for orders 1..{self.order}; got {len(levels)} levels")
        if len(levels[0]) != len(vocab):
            raise ValueError(f"levels were counted with V={len(levels[0])} but the vocab has {len(vocab)} tokens")
        self.vocab_ = vocab
        self.counts_ = levels[: self.order]
        if self.smoothing == "addk":
            self.tables_ = None
            self.adjusted_counts_ = None
            self.discounts_ = None
            self.count_of_counts_ = np.stack([count_of_counts(lv.counts) for lv in self.counts_])
            self.discount_fallback_used_ = np.zeros(self.order, dtype=bool)
            self._context_totals = [
                np.bincount(lv.context, weights=lv.counts, minlength=len(self.counts_[n - 1]) if n else 1)
                for n, lv in enumerate(self.counts_)
            ]
            self._context_totals[0] = np.array([float(self.counts_[0].counts.sum() - self.counts_[0].counts[BOS_ID])])
        else:
            tables, D, t, a, fb = kneser_ney_tables(
                self.counts_, modified=self.smoothing == "mkn", discount_fallback=self.discount_fallback
            )
            self.tables_ = tables
            self.discounts_ = D
            self.count_of_counts_ = t
            self.adjusted_counts_ = a
            self.discount_fallback_used_ = fb
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocab_"):
            raise RuntimeError("this NGramLM is not fitted yet; call fit() or NGramLM.from_arpa() first")

    # -- ARPA ------------------------------------------------------------------------------------------------------

    def to_arpa(self) -> str:
        """The model as ARPA text (lmplz's layout); Kneser–Ney models only (add-k has no back-off form)."""
        return format_arpa(self.to_arpa_model())

    def to_arpa_model(self) -> ArpaModel:
        """The model as an :class:`shiyan.text.arpa.ArpaModel` (word-id matrices and log10 values)."""
        self._check_fitted()
        if self.tables_ is None:
            raise ValueError("add-k smoothing has no ARPA back-off form; use smoothing='kn' or 'mkn'")
        V = len(self.vocab_)
        keys = [t.keys for t in self.tables_]
        grams = tuple(ngram_matrix(keys, n, V) for n in range(1, self.order + 1))
        return ArpaModel(
            self.vocab_.itos,
            grams,
            tuple(t.log10_prob for t in self.tables_),
            tuple(t.log10_backoff for t in self.tables_),
        )

    @classmethod
    def from_arpa(cls, text: str | Iterable[str] | ArpaModel) -> NGramLM:
        """A model that scores with the back-off probabilities of an ARPA file (text or parsed).

        ``<s>`` and ``</s>`` must be among the unigrams; a missing ``<unk>`` is added with
        $\\log_{10} p = -100$ (KenLM does the same). Every stored n-gram's prefix must be stored.
        """
        model = text if isinstance(text, ArpaModel) else parse_arpa(text)
        words = model.vocab
        for special in (BOS, EOS):
            if special not in words:
                raise ValueError(f"the ARPA model has no {special} unigram")
        vocab = Vocab(words)
        V = len(vocab)
        # file word index -> our id (specials first)
        remap = np.array([vocab.index(w) for w in words], dtype=np.int64)
        uni_p = np.full(V, -100.0)
        uni_b = np.zeros(V)
        uni_p[remap] = model.log10_prob[0]
        uni_b[remap] = model.log10_backoff[0]
        tables = [NGramTable(np.arange(V, dtype=np.int64), uni_p, uni_b)]
        for n in range(2, model.order + 1):
            g = remap[model.grams[n - 1]]  # (U, n)
            r = g[:, 0]
            for m in range(2, n):
                r = _lookup(tables[m - 1].keys, r * V + g[:, m - 1])
                if np.any(r < 0):
                    bad = model.grams[n - 1][np.flatnonzero(r < 0)[0]]
                    raise ValueError(f"ARPA {n}-gram {' '.join(words[i] for i in bad)!r} has no stored prefix")
            _check_key_range(len(tables[-1]), V)
            key = r * V + g[:, n - 1]
            order_ = np.argsort(key, kind="stable")
            key = key[order_]
            if key.size > 1 and np.any(key[1:] == key[:-1]):
                raise ValueError(f"the ARPA model repeats a {n}-gram")
            tables.append(NGramTable(key, model.log10_prob[n - 1][order_], model.log10_backoff[n - 1][order_]))
        lm = cls(order=model.order, smoothing="mkn")
        lm.smoothing = "arpa"
        lm.vocab_ = vocab
        lm.tables_ = tables
        lm.counts_ = None
        lm.adjusted_counts_ = None
        lm.discounts_ = None
        lm.count_of_counts_ = None
        lm.discount_fallback_used_ = None
        return lm

    # -- scoring ---------------------------------------------------------------------------------------------------

    def _encode(self, sentences: Iterable[Sequence[str] | str], bos: bool, eos: bool) -> tuple[np.ndarray, np.ndarray]:
        sents = [s.split() if isinstance(s, str) else s for s in sentences]
        ids, offsets = self.vocab_.encode_batch(sents, bos=bos, eos=eos)
        _check_no_inner_boundaries(ids, offsets, bos=bos, eos=eos)
        return ids, offsets

    def _log10_at(self, ids: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if self.tables_ is not None:
            return backoff_log10(self.tables_, ids, starts, targets, len(self.vocab_))
        return self._addk_log10(ids, starts, targets)

    def _addk_log10(self, ids: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """$\\log_{10} (c(h w) + k) / (\\sum_x c(h x) + k(|V|-1))$ with h the full (cut) context."""
        V = len(self.vocab_)
        ranks = window_ranks([lv.keys for lv in self.counts_], ids, starts, V)
        j = targets
        n_of = np.minimum(j - starts[j], self.order - 1) + 1  # (M,) length of the n-gram used at each target
        count = np.zeros(j.shape[0])
        total = np.zeros(j.shape[0])
        for n in range(1, self.order + 1):
            sel = np.flatnonzero(n_of == n)
            if sel.size == 0:
                continue
            r = ranks[n - 1][j[sel]]
            hit = r >= 0
            count[sel[hit]] = self.counts_[n - 1].counts[r[hit]]
            if n == 1:
                total[sel] = self._context_totals[0][0]
            else:
                rc = ranks[n - 2][j[sel] - 1]
                ok = rc >= 0
                total[sel[ok]] = self._context_totals[n - 1][rc[ok]]
        return np.log10((count + self.k) / (total + self.k * (V - 1)))

    def token_scores(
        self, sentences: Iterable[Sequence[str] | str], bos: bool = True, eos: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-token log10 probabilities of many sentences at once.

        Returns:
            log10_prob: (M,) float64 over all predicted tokens (``</s>`` included when ``eos``).
            oov: (M,) bool, tokens outside the vocabulary (scored as ``<unk>``).
            offsets: (S + 1,) int64, sentence i's tokens are ``[offsets[i], offsets[i + 1])``.
        """
        self._check_fitted()
        ids, offsets = self._encode(sentences, bos, eos)
        starts = sentence_starts(offsets)
        targets = np.arange(ids.shape[0], dtype=np.int64)
        if bos:
            keep = np.ones(ids.shape[0], dtype=bool)
            keep[offsets[:-1][np.diff(offsets) > 0]] = False  # <s> is a context, not a prediction
            targets = targets[keep]
        lp = self._log10_at(ids, starts, targets)
        n_targets = np.diff(offsets) - (1 if bos else 0)
        out_offsets = np.zeros(offsets.shape[0], dtype=np.int64)
        np.cumsum(n_targets, out=out_offsets[1:])
        return lp, ids[targets] == UNK_ID, out_offsets

    def scores(
        self, sentences: Iterable[Sequence[str] | str], bos: bool = True, eos: bool = True, base: float = 10.0
    ) -> np.ndarray:
        """(S,) total log-probability of each sentence in ``base`` (10 like KenLM, or ``math.e``)."""
        lp, _, offsets = self.token_scores(sentences, bos=bos, eos=eos)
        totals = np.add.reduceat(np.append(lp, 0.0), offsets[:-1]) if lp.size else np.zeros(len(offsets) - 1)
        totals[np.diff(offsets) == 0] = 0.0
        return totals * _base_factor(base)

    def score(self, sentence: Sequence[str] | str, bos: bool = True, eos: bool = True, base: float = 10.0) -> float:
        """Log-probability of one sentence, $\\log p(w_1 \\dots w_m\\,\\texttt{</s>} \\mid \\texttt{<s>})$.

        Args:
            sentence: tokens, or a str split on whitespace (KenLM's convention).
            bos, eos: condition on ``<s>`` / predict ``</s>`` (as in ``kenlm.Model.score``).
            base: 10 (default, as KenLM and ARPA files) or ``math.e`` for the natural log.
        """
        return float(self.scores([sentence], bos=bos, eos=eos, base=base)[0])

    def log_prob(self, word: str, context: Sequence[str] = (), base: float = 10.0) -> float:
        """$\\log p(\\text{word} \\mid \\text{context})$; a context starting with ``<s>`` is a sentence start."""
        return float(np.log10(self._probs_given(context, [word]))[0] * _base_factor(base))

    def distribution(self, context: Sequence[str] = ()) -> np.ndarray:
        """(V,) $p(w \\mid \\text{context})$ for every word id (0 for ``<s>``, which is never predicted)."""
        self._check_fitted()
        p = np.zeros(len(self.vocab_))
        words = np.array([i for i in range(len(self.vocab_)) if i != BOS_ID], dtype=np.int64)
        p[words] = self._probs_given(context, words)
        return p

    def _probs_given(self, context: Sequence[str], words: Sequence[str] | np.ndarray) -> np.ndarray:
        self._check_fitted()
        if isinstance(context, str):
            raise TypeError("context must be a sequence of tokens, not a str")
        ctx = list(context)
        if BOS in ctx[1:] or EOS in ctx:
            raise ValueError("context may hold <s> only as its first token and never </s>")
        ctx_ids = self.vocab_.encode(ctx)[-(self.order - 1) :] if self.order > 1 else np.zeros(0, np.int64)
        w = np.asarray(words) if isinstance(words, np.ndarray) else self.vocab_.encode(list(words))
        L = ctx_ids.shape[0]
        rows = np.empty((w.shape[0], L + 1), dtype=np.int64)  # (M, L + 1): the context then one word
        rows[:, :L] = ctx_ids
        rows[:, L] = w
        ids = rows.reshape(-1)
        starts = np.repeat(np.arange(w.shape[0], dtype=np.int64) * (L + 1), L + 1)
        targets = np.arange(w.shape[0], dtype=np.int64) * (L + 1) + L
        return 10.0 ** self._log10_at(ids, starts, targets)

    def perplexity(self, sentences: Iterable[Sequence[str] | str]) -> PerplexityReport:
        """Perplexity with and without OOVs over ``sentences`` (each ``<s> ... </s>``), as KenLM reports it."""
        sentences = list(sentences)
        lp, oov, _ = self.token_scores(sentences)
        if lp.size == 0:
            raise ValueError("sentences must hold at least one token to score")
        total = float(lp.sum())
        n, n_oov = int(lp.size), int(oov.sum())
        inside = float(lp[~oov].sum())
        ppl_ex = 10.0 ** (-inside / (n - n_oov)) if n > n_oov else float("nan")
        return PerplexityReport(10.0 ** (-total / n), ppl_ex, total, n, n_oov, len(sentences))

    def most_plausible(self, sentences: Sequence[Sequence[str] | str], per_token: bool = False) -> int:
        """Index of the sentence the model finds most probable (by total, or per-token, log-probability)."""
        sentences = list(sentences)
        if not sentences:
            raise ValueError("sentences must not be empty")
        lp, _, offsets = self.token_scores(sentences)
        totals = np.add.reduceat(np.append(lp, 0.0), offsets[:-1])
        totals[np.diff(offsets) == 0] = 0.0
        if per_token:
            totals = totals / np.maximum(np.diff(offsets), 1)
        return int(np.argmax(totals))

    def __repr__(self) -> str:
        fitted = f", V={len(self.vocab_)}" if hasattr(self, "vocab_") else ""
        return f"NGramLM(order={self.order}, smoothing={self.smoothing!r}{fitted})"


# -- helpers ---------------------------------------------------------------------------------------------------------


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query in sorted ``keys``, -1 when absent.

    The queries are sorted first: binary searches for increasing keys reuse the previous bound and
    touch memory in order, about 3x faster than searching in corpus order.
    """
    if keys.size == 0 or query.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    order = np.argsort(query, kind="stable")
    idx = np.empty(query.shape, dtype=np.int64)
    idx[order] = np.searchsorted(keys, query[order])
    np.minimum(idx, keys.size - 1, out=idx)
    return np.where(keys[idx] == query, idx, -1)


def _base_factor(base: float) -> float:
    if not isinstance(base, int | float) or not base > 0 or base == 1 or math.isinf(base):
        raise ValueError(f"base must be a positive number other than 1 (10 or math.e); got {base!r}")
    return 1.0 if base == 10 else _LN10 / math.log(base)


def _check_order(order: int) -> None:
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an integer >= 1; got {order!r}")


def _check_key_range(n_prefixes: int, V: int) -> None:
    if n_prefixes * V >= 2**62:
        raise ValueError(f"n-gram keys would overflow int64 ({n_prefixes} prefixes x {V} words)")


def _check_stream(ids: np.ndarray, offsets: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    offsets = np.asarray(offsets)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array; got shape {ids.shape}, dtype {ids.dtype}")
    if offsets.ndim != 1 or offsets.size < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError("offsets must be a non-empty 1-D integer array")
    if offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must start at 0, end at len(ids) and never decrease")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer) or vocab_size < 3:
        raise ValueError(f"vocab_size must be an integer >= 3 (the specials <unk>, <s>, </s>); got {vocab_size!r}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, vocab_size={vocab_size})")
    return ids.astype(np.int64, copy=False), offsets.astype(np.int64, copy=False)


def _check_no_inner_boundaries(ids: np.ndarray, offsets: np.ndarray, bos: bool = True, eos: bool = True) -> None:
    """``<s>``/``</s>`` may only be the padding the model adds, never a word inside a sentence."""
    allowed = np.zeros(ids.shape[0], dtype=bool)
    nonempty = np.diff(offsets) > 0
    if bos:
        allowed[offsets[:-1][nonempty]] = True
    if eos:
        allowed[offsets[1:][nonempty] - 1] = True
    bad = ((ids == BOS_ID) | (ids == EOS_ID)) & ~allowed
    if np.any(bad):
        raise ValueError("sentences must not contain the tokens <s> or </s>; the model adds them")


__all__ = [
    "LMPLZ_FALLBACK",
    "SMOOTHINGS",
    "NGramCounts",
    "NGramLM",
    "NGramTable",
    "PerplexityReport",
    "adjusted_counts",
    "backoff_log10",
    "count_ngrams",
    "count_of_counts",
    "kn_discount",
    "kneser_ney_tables",
    "mkn_discounts",
    "ngram_matrix",
    "sentence_starts",
    "window_ranks",
]
