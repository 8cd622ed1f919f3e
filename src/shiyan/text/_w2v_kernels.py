"""Compiled (numba) kernels of :mod:`shiyan.text.word2vec`; read that module's docstring for the maths.

Glossary (code name -> symbol of Mikolov et al. 2013):

- ``w_in``  (V, D): the input vectors $v_w$ (gensim's ``syn0`` / ``wv.vectors``).
- ``w_ns``  (V, D): the output vectors $v'_w$ of negative sampling (``syn1neg``).
- ``w_hs``  (V - 1, D): the vectors $v'_n$ of the inner nodes of the Huffman tree (``syn1``).
- ``h``     (D,): the hidden vector: $v_{w_I}$ (skip-gram) or the mean of the context vectors (CBOW).
- ``rows``/``labels``: the output rows of one update and their targets $y \\in \\{0, 1\\}$.
- ``lr``:   the learning rate $\\alpha_t$ of the current sentence.

Training is Hogwild (Recht et al. 2011): the threads of ``prange`` update the shared matrices
without locks; every thread owns a contiguous block of sentence chunks and its own random stream.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Fast-math without "no NaN / no Inf": exp(-s) may overflow to inf for very negative s, and
# 1 / (1 + inf) = 0 must stay exact.
_FM = {"nsz", "arcp", "contract", "afn", "reassoc"}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_INV53 = 1.0 / 9007199254740992.0  # 2^-53


@njit(inline="always")
def splitmix64(state):
    """One step of the SplitMix64 generator: ``(new_state, 64 random bits)`` (all uint64)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@njit(inline="always")
def _uniform(bits):
    """A float64 in [0, 1) from 64 random bits (the top 53)."""
    return np.float64(bits >> _S11) * _INV53


@njit(cache=True)
def stream_seed(seed, epoch, chunk):
    """The starting state of the random stream of one (epoch, chunk): a hash of the three integers."""
    state = np.uint64(seed)
    state, a = splitmix64(state)
    state = a ^ np.uint64(epoch)
    state, b = splitmix64(state)
    state = b ^ (np.uint64(chunk) << _S32) ^ np.uint64(chunk)
    state, c = splitmix64(state)
    return c


@njit(cache=True)
def alias_table(weights):
    """Walker's alias table of the distribution $p_i = w_i / \\sum_j w_j$ (Vose's construction).

    Returns ``(prob, alias)``: draw $i$ uniformly from $\\{0..n-1\\}$ and $u \\sim U[0, 1)$; the sample
    is $i$ when $u <$ ``prob[i]`` and ``alias[i]`` otherwise. Exact, O(1) per draw, n entries.
    """
    n = weights.shape[0]
    scaled = weights * (n / weights.sum())  # (n,) mean 1
    prob = np.ones(n, np.float64)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0  # g gives away 1 - scaled[s] of its mass
        if scaled[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    return prob, alias  # leftovers keep prob 1 (round-off)


@njit(inline="always")
def _draw(prob, alias, bits):
    u = _uniform(bits) * prob.shape[0]
    i = np.int64(u)
    if u - i < prob[i]:
        return i
    return np.int64(alias[i])


@njit(cache=True)
def draw_many(prob, alias, n, seed):
    """``n`` draws from an alias table (for tests of the sampler)."""
    out = np.empty(n, np.int64)
    state = np.uint64(seed)
    for k in range(n):
        state, bits = splitmix64(state)
        out[k] = _draw(prob, alias, bits)
    return out


@njit(nogil=True, fastmath=_FM, cache=True)
def logistic_rows_update(h, w_out, rows, labels, n, lr, grad_h, with_loss):
    """One SGD step on $L = -\\sum_k [y_k \\log\\sigma(s_k) + (1 - y_k)\\log\\sigma(-s_k)]$, $s_k = v'_{r_k}{}^\\top h$.

    For k = 0..n-1 with $r$ = ``rows[k]``: $g = \\alpha (y_k - \\sigma(s_k))$, ``grad_h`` $\\mathrel{+}= g\\,v'_r$
    (with $v'_r$ before its own update), $v'_r \\mathrel{+}= g\\,h$. ``h`` is not changed: the caller adds
    ``grad_h`` $= -\\alpha\\,\\partial L/\\partial h$ to the input vectors afterwards. Returns $L$ when
    ``with_loss`` (else 0: the logarithms cost time).
    """
    dim = h.shape[0]
    loss = 0.0
    for k in range(n):
        r = rows[k]
        s = np.float32(0.0)
        for d in range(dim):
            s += w_out[r, d] * h[d]
        f = np.float32(1.0) / (np.float32(1.0) + np.exp(-s))
        y = labels[k]
        g = (y - f) * lr
        for d in range(dim):
            grad_h[d] += g * w_out[r, d]
            w_out[r, d] += g * h[d]
        if with_loss:
            loss -= np.log(max(f if y > 0.5 else np.float32(1.0) - f, np.float32(1e-30)))
    return loss


@njit(inline="always")
def _fill_targets(target, hs, ns, negative, hs_points, hs_codes, hs_off, prob, alias, rows, labels, state):
    """Rows and labels of one prediction of ``target``: its Huffman path (labels 1 - code) and/or
    the target (label 1) followed by up to ``negative`` negatives (label 0; draws equal to the
    target are skipped, as word2vec.c does). Returns ``(n_hs, n_total, state)``."""
    n = 0
    if hs:
        for p in range(hs_off[target], hs_off[target + 1]):
            rows[n] = hs_points[p]
            labels[n] = np.float32(1.0) - np.float32(hs_codes[p])
            n += 1
    n_hs = n
    if ns:
        rows[n] = target
        labels[n] = np.float32(1.0)
        n += 1
        for _ in range(negative):
            state, bits = splitmix64(state)
            r = _draw(prob, alias, bits)
            if r == target:
                continue
            rows[n] = r
            labels[n] = np.float32(0.0)
            n += 1
    return n_hs, n, state


@njit(nogil=True, fastmath=_FM, cache=True)
def train_chunk(
    ids, offsets, s_lo, s_hi, w_in, w_ns, w_hs, keep, prob, alias, hs_points, hs_codes, hs_off, max_code,
    sg, hs, negative, window, cbow_mean, alpha, min_alpha, words_before, total_words, state, with_loss,
):  # fmt: skip
    """Train on sentences ``s_lo..s_hi-1`` (``ids[offsets[s]:offsets[s+1]]``); returns (words kept, loss)."""
    dim = w_in.shape[1]
    ns = negative > 0
    max_len = 0
    for s in range(s_lo, s_hi):
        max_len = max(max_len, offsets[s + 1] - offsets[s])
    sent = np.empty(max_len, np.int64)
    m = max(negative + 1, 1) + (max_code if hs else 0)
    rows = np.empty(m, np.int64)
    labels = np.empty(m, np.float32)
    grad_h = np.empty(dim, np.float32)
    h = np.empty(dim, np.float32)
    kept = 0
    loss = 0.0
    for s in range(s_lo, s_hi):
        a = offsets[s]
        b = offsets[s + 1]
        # linear decay of the learning rate over all words of all epochs
        lr = alpha - (alpha - min_alpha) * (words_before + a) / total_words
        lr = np.float32(max(lr, min_alpha))
        # frequent-word subsampling: keep w with probability keep[w]
        n = 0
        for t in range(a, b):
            w = ids[t]
            if keep[w] < 1.0:
                state, bits = splitmix64(state)
                if _uniform(bits) >= keep[w]:
                    continue
            sent[n] = w
            n += 1
        kept += n
        for i in range(n):
            state, bits = splitmix64(state)
            reduced = np.int64(bits % np.uint64(window))  # dynamic window: c' uniform on 1..window
            lo = max(0, i - window + reduced)
            hi = min(n, i + window + 1 - reduced)
            if sg:
                # every pair (centre, context) in the window is one example; as in word2vec.c and gensim the
                # context word's input vector h = v_{w_j} scores the centre word's outputs (Huffman path or
                # target + negatives), which covers the same pairs as "the centre predicts the context"
                for j in range(lo, hi):
                    if j == i:
                        continue
                    v_in = w_in[sent[j]]  # (D,)
                    n_hs, n_all, state = _fill_targets(
                        sent[i], hs, ns, negative, hs_points, hs_codes, hs_off, prob, alias, rows, labels, state
                    )
                    grad_h[:] = 0.0
                    if n_hs > 0:
                        loss += logistic_rows_update(v_in, w_hs, rows, labels, n_hs, lr, grad_h, with_loss)
                    if n_all > n_hs:
                        loss += logistic_rows_update(
                            v_in, w_ns, rows[n_hs:], labels[n_hs:], n_all - n_hs, lr, grad_h, with_loss
                        )
                    for d in range(dim):
                        v_in[d] += grad_h[d]
            else:
                h[:] = 0.0
                count = 0
                for j in range(lo, hi):
                    if j != i:
                        c = sent[j]
                        for d in range(dim):
                            h[d] += w_in[c, d]
                        count += 1
                if count == 0:
                    continue
                if cbow_mean:
                    inv = np.float32(1.0 / count)
                    for d in range(dim):
                        h[d] *= inv
                n_hs, n_all, state = _fill_targets(
                    sent[i], hs, ns, negative, hs_points, hs_codes, hs_off, prob, alias, rows, labels, state
                )
                grad_h[:] = 0.0
                if n_hs > 0:
                    loss += logistic_rows_update(h, w_hs, rows, labels, n_hs, lr, grad_h, with_loss)
                if n_all > n_hs:
                    loss += logistic_rows_update(
                        h, w_ns, rows[n_hs:], labels[n_hs:], n_all - n_hs, lr, grad_h, with_loss
                    )
                # word2vec.c's rule: every context vector receives the whole gradient of h
                for j in range(lo, hi):
                    if j != i:
                        c = sent[j]
                        for d in range(dim):
                            w_in[c, d] += grad_h[d]
    return kept, loss


@njit(parallel=True, nogil=True, cache=True)
def train_epoch(
    ids, offsets, chunks, w_in, w_ns, w_hs, keep, prob, alias, hs_points, hs_codes, hs_off, max_code,
    sg, hs, negative, window, cbow_mean, alpha, min_alpha, words_before, total_words, seed, epoch, with_loss,
    n_workers,
):  # fmt: skip
    r"""One epoch: the sentence chunks ``chunks[c]..chunks[c+1]-1`` are dealt round-robin to ``n_workers``
    threads (``prange``, lock-free updates): thread $t$ trains chunks $t, t + W, t + 2W, \dots$, so that the
    threads work on neighbouring parts of the corpus at any moment, as gensim's job queue does (handing each
    thread one contiguous half of the corpus trained worse on small corpora). Returns (words kept after
    subsampling, summed loss)."""
    n_chunks = chunks.shape[0] - 1
    kept = np.zeros(n_chunks, np.int64)
    losses = np.zeros(n_chunks, np.float64)
    for t in prange(n_workers):
        for c in range(t, n_chunks, n_workers):
            k, loss = train_chunk(
                ids, offsets, chunks[c], chunks[c + 1], w_in, w_ns, w_hs, keep, prob, alias, hs_points, hs_codes,
                hs_off, max_code, sg, hs, negative, window, cbow_mean, alpha, min_alpha, words_before, total_words,
                stream_seed(seed, epoch, c), with_loss,
            )  # fmt: skip
            kept[c] = k
            losses[c] = loss
    return kept.sum(), losses.sum()
