r"""Word2Vec (Mikolov et al. 2013): skip-gram and CBOW, negative sampling and hierarchical softmax.

Every word $w$ of a vocabulary of $V$ words has an *input* vector $v_w \in \mathbb{R}^D$ (the
embedding that is kept, ``wv.vectors``) and the model has *output* parameters $v'$. A training
example is a word and its context inside a window of $c$ words on either side:

- **skip-gram** predicts each context word $w_O = w_{t+j}$, $-c \le j \le c$, $j \ne 0$, from the
  centre word $w_I = w_t$: the hidden vector is $h = v_{w_I}$. Like word2vec.c and gensim, the kernel
  trains each such pair the other way round (the context word's $v_{w_{t+j}}$ scores the outputs of
  $w_t$): the same set of pairs, and the same update order as gensim's.
- **CBOW** predicts the centre word $w_O = w_t$ from the mean of its context vectors,
  $h = \frac{1}{2c}\sum_{j \ne 0} v_{w_{t+j}}$.

A full softmax $p(w_O \mid h) = \exp(v'^\top_{w_O} h) / \sum_{w} \exp(v'^\top_{w} h)$ costs $O(V)$
per example; the paper replaces it with one of two $O(\log V)$ or $O(k)$ objectives.

**Negative sampling (SGNS).** With $k$ words $w_1..w_k$ drawn from the noise distribution
$P_n(w) \propto U(w)^{3/4}$ ($U$ the unigram counts), maximise

$$
\log\sigma(v'^\top_{w_O} h) + \sum_{i=1}^{k} \mathbb{E}_{w_i \sim P_n}\bigl[\log\sigma(-v'^\top_{w_i} h)\bigr].
$$

Writing $t_w = 1$ for $w_O$ and $t_w = 0$ for the negatives, the loss
$L = -\sum_{w} [t_w \log\sigma(v'^\top_w h) + (1 - t_w)\log\sigma(-v'^\top_w h)]$ has the gradients

$$
\frac{\partial L}{\partial v'_w} = \bigl(\sigma(v'^\top_w h) - t_w\bigr)\,h, \qquad
\frac{\partial L}{\partial h} = \sum_{w} \bigl(\sigma(v'^\top_w h) - t_w\bigr)\,v'_w .
$$

**Hierarchical softmax (HS).** The words are the leaves of a binary Huffman tree built from the
counts (frequent words get short paths). With $n(w, j)$ the $j$-th node on the path from the root to
$w$, $L(w)$ the path's length, $\operatorname{ch}(n)$ a fixed child of $n$ and $[\![x]\!] = 1$ if $x$
is true and $-1$ otherwise,

$$
p(w \mid h) = \prod_{j=1}^{L(w)-1} \sigma\Bigl([\![n(w, j+1) = \operatorname{ch}(n(w, j))]\!]\;
v'^\top_{n(w,j)} h\Bigr),
$$

which sums to one over the leaves. Each factor is a logistic regression at an inner node with
target $t_j = 1$ when the path turns to $\operatorname{ch}$ and $0$ otherwise, so $-\log p(w\mid h)$
has exactly the form and the gradients of the SGNS loss, with the path's inner nodes in place of
$w_O$ and the negatives ($t_j = 1 - d_j$ for the Huffman code bit $d_j$).

**One update.** Stochastic gradient descent with learning rate $\alpha$ moves every output row by
$-\alpha\,\partial L/\partial v'$ and the input side by $-\alpha\,\partial L/\partial h$: in skip-gram
$v_{w_I}$ itself, in CBOW *each* context vector receives the whole $-\alpha\,\partial L/\partial h$
(word2vec.c's rule, kept by gensim; the exact gradient of the mean would be $\tfrac{1}{2c}$ of it).
:func:`logistic_loss_grads` and :func:`sgd_step` are the pure numpy versions of one update that
the compiled kernel (:func:`shiyan.text._w2v_kernels.logistic_rows_update`) mirrors. The kernel
updates the output rows one after the other; when a negative is drawn twice in one update it
therefore sees its first update, which an exact gradient step would not (word2vec.c does the same).

**Details that follow word2vec.c and gensim.**

- *Subsampling* of frequent words: with threshold $s$ (``sample``) and $T$ words in the corpus, a
  word with count $c(w)$ is kept with probability
  $\min\bigl(1, (\sqrt{c(w)/(sT)} + 1)\,\frac{sT}{c(w)}\bigr)$, the form the C code uses for the
  paper's $1 - \sqrt{t/f(w)}$. Dropped words are removed from the sentence *before* the windows are
  formed, which widens the effective window.
- *Dynamic window*: for each centre word the window is $c' \sim \mathrm{Uniform}\{1..c\}$, so
  near words are seen more often than far ones.
- *Learning rate*: $\alpha_t = \alpha - (\alpha - \alpha_{\min})\,t/(E\,T)$, linear in the
  position $t$ of the sentence among the $E\,T$ words of all epochs.
- *Initialisation*: $v_w \sim \mathrm{U}[-\frac{1}{D}, \frac{1}{D})$ as gensim 4 (word2vec.c draws from half that
  range), output vectors zero.
- Negatives are drawn through Walker's alias table of $U(w)^{3/4}$ (exact, $O(1)$ per draw, $V$
  entries) rather than word2vec.c's $10^8$-entry table or gensim's binary search; a draw equal to
  the target is skipped. The sigmoid is computed exactly (no 1000-entry lookup table, no clipping at
  $\pm 6$; word2vec.c and gensim read a 1000-entry table and skip a Huffman node whose score is
  beyond $\pm 6$).
- *Hogwild*: the corpus is cut into chunks of about 10,000 words, dealt round-robin to the threads of
  a numba ``prange`` (thread $t$ of $W$ takes chunks $t, t + W, \dots$), which update the shared
  matrices without locks (Recht et al. 2011). With
  one worker the result is a deterministic function of the seed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shiyan.text import _w2v_kernels as K
from shiyan.text.vocab import SPECIALS, Vocab

MAX_SENTENCE = 10_000
"""Longer sentences are cut into pieces of this many words (gensim's limit per sentence)."""


# -- the maths of one update, in numpy -----------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def logistic_loss_grads(h: np.ndarray, v_out: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    r"""The loss shared by SGNS and HS and its gradients, for one hidden vector.

    $L = -\sum_k [t_k \log\sigma(s_k) + (1 - t_k)\log\sigma(-s_k)]$ with $s_k = v'^\top_k h$.

    Args:
        h: (D,) hidden vector ($v_{w_I}$ in skip-gram).
        v_out: (n, D) output rows: $v'_{w_O}$ and the negatives (SGNS) or the path's inner nodes (HS).
        labels: (n,) targets $t_k \in \{0, 1\}$.

    Returns:
        ``(L, dL/dh (D,), dL/dv_out (n, D))``.
    """
    h = np.asarray(h, dtype=np.float64)
    v_out = np.asarray(v_out, dtype=np.float64)
    t = np.asarray(labels, dtype=np.float64)
    if h.ndim != 1 or v_out.ndim != 2 or v_out.shape[1] != h.shape[0]:
        raise ValueError(f"h must be (D,) and v_out (n, D); got {h.shape} and {v_out.shape}")
    if t.shape != (v_out.shape[0],):
        raise ValueError(f"labels must have shape ({v_out.shape[0]},); got {t.shape}")
    s = v_out @ h  # (n,)
    loss = -float(np.sum(t * np.log(_sigmoid(s)) + (1.0 - t) * np.log(_sigmoid(-s))))
    e = _sigmoid(s) - t  # (n,) sigma(s_k) - t_k
    return loss, e @ v_out, np.outer(e, h)


def sgd_step(
    w_in: np.ndarray, w_out: np.ndarray, centre: int, rows: Sequence[int], labels: Sequence[float], alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """One skip-gram SGD update, returned as new arrays: $v \\leftarrow v - \\alpha\\,\\nabla L$.

    ``h = w_in[centre]``; ``rows`` index ``w_out`` (negative sampling: the target then the
    negatives; hierarchical softmax: the inner nodes on the target's path). A row listed twice gets
    both gradients (the compiled kernel differs there, see the module docstring).
    """
    rows = np.asarray(rows, dtype=np.int64)
    _, g_h, g_out = logistic_loss_grads(w_in[centre], w_out[rows], np.asarray(labels))
    new_in = w_in.astype(np.float64)
    new_out = w_out.astype(np.float64)
    new_in[centre] -= alpha * g_h
    np.add.at(new_out, rows, -alpha * g_out)
    return new_in.astype(w_in.dtype), new_out.astype(w_out.dtype)


# -- Huffman tree, noise table, subsampling ------------------------------------------------------------------------


@dataclass(frozen=True)
class HuffmanTree:
    """The Huffman tree of the vocabulary in flat (CSR) form.

    The inner nodes are numbered ``0..V-2`` in the order they are created (the root is ``V-2``).
    Word ``w``'s path from the root is ``points[offsets[w]:offsets[w+1]]`` and the code bits
    ``codes[...]`` say at each node whether the path goes to the second (1) or first (0) child.
    """

    points: np.ndarray  # (sum of code lengths,) int64 inner-node ids
    codes: np.ndarray  # (sum of code lengths,) uint8 bits d_j
    offsets: np.ndarray  # (V + 1,) int64

    def path(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[w], self.offsets[w + 1]
        return self.points[a:b], self.codes[a:b]


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """Build the Huffman tree of ``counts`` (V,) ``>= 1``, ``V >= 2``: repeatedly merge the two
    least frequent nodes (ties: the node created first); the smaller becomes child 0."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.shape[0] < 2 or np.any(counts < 1):
        raise ValueError(f"counts must be a 1-D array of at least 2 counts >= 1; got shape {counts.shape}")
    v = counts.shape[0]
    heap = [(int(c), i) for i, c in enumerate(counts.tolist())]  # node ids: leaves 0..V-1, inner V..2V-2
    heapq.heapify(heap)
    parent = np.empty(2 * v - 1, dtype=np.int64)
    bit = np.zeros(2 * v - 1, dtype=np.uint8)
    for node in range(v, 2 * v - 1):
        c0, first = heapq.heappop(heap)
        c1, second = heapq.heappop(heap)
        parent[first], parent[second] = node, node
        bit[second] = 1
        heapq.heappush(heap, (c0 + c1, node))
    # paths top-down: parents are created after their children, so walk the inner nodes backwards
    root = 2 * v - 2
    path: dict[int, tuple[list[int], list[int]]] = {root: ([], [])}
    for node in range(root - 1, -1, -1):
        pts, cds = path[int(parent[node])]
        path[node] = ([*pts, int(parent[node]) - v], [*cds, int(bit[node])])
    lengths = np.array([len(path[w][0]) for w in range(v)], dtype=np.int64)
    offsets = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    points = np.fromiter((p for w in range(v) for p in path[w][0]), dtype=np.int64, count=int(offsets[-1]))
    codes = np.fromiter((d for w in range(v) for d in path[w][1]), dtype=np.uint8, count=int(offsets[-1]))
    return HuffmanTree(points, codes, offsets)


def hs_probabilities(h: np.ndarray, w_hs: np.ndarray, tree: HuffmanTree) -> np.ndarray:
    r"""(V,) $p(w \mid h) = \prod_j \sigma([\![\cdot]\!]\,v'^\top_{n(w,j)} h)$ for every word (sums to 1)."""
    s = np.asarray(w_hs, dtype=np.float64) @ np.asarray(h, dtype=np.float64)  # (V-1,) one score per inner node
    sign = 1.0 - 2.0 * tree.codes.astype(np.float64)  # [[next node = child 0]] = +1 for bit 0
    log_terms = np.log(_sigmoid(sign * s[tree.points]))  # (sum of lengths,)
    return np.exp(np.add.reduceat(log_terms, tree.offsets[:-1]))


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """(V,) $P_n(w) = U(w)^{e} / \\sum_u U(u)^{e}$."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) probability of keeping each word under subsampling threshold ``sample`` (0 keeps all)."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


# -- keyed vectors -------------------------------------------------------------------------------------------------


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _check_topn(topn: int) -> None:
    if isinstance(topn, bool) or not isinstance(topn, int) or topn < 1:
        raise ValueError(f"topn must be an integer >= 1; got {topn!r}")


class KeyedVectors:
    """Words and their vectors, with gensim's ``KeyedVectors`` query API.

    Attributes:
        index_to_key: list of words, most frequent first (the order of the rows).
        key_to_index: word -> row.
        vectors: (V, D) float32.
        counts: (V,) int64 corpus counts (zeros when unknown, e.g. after loading a file).
    """

    def __init__(self, keys: Sequence[str], vectors: np.ndarray, counts: np.ndarray | None = None):
        keys = list(keys)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"vectors must have shape ({len(keys)}, D); got {vectors.shape}")
        if any(not isinstance(k, str) for k in keys):
            raise TypeError("keys must all be str")
        if len(set(keys)) != len(keys):
            raise ValueError("keys must not repeat")
        self.index_to_key = keys
        self.key_to_index = {k: i for i, k in enumerate(keys)}
        self.vectors = vectors.astype(np.float32, copy=False)
        self.counts = np.zeros(len(keys), np.int64) if counts is None else np.asarray(counts, dtype=np.int64)

    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: object) -> bool:
        return key in self.key_to_index

    def get_index(self, key: str) -> int:
        try:
            return self.key_to_index[key]
        except KeyError:
            raise KeyError(f"word {key!r} not in vocabulary") from None

    def __getitem__(self, key: str) -> np.ndarray:
        return self.vectors[self.get_index(key)]

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words' vectors."""
        a, b = self[w1].astype(np.float64), self[w2].astype(np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def _query(self, positive: Sequence[str], negative: Sequence[str], unit: np.ndarray) -> tuple[np.ndarray, set]:
        idx = [self.get_index(w) for w in positive] + [self.get_index(w) for w in negative]
        weights = np.array([1.0] * len(positive) + [-1.0] * len(negative))
        mean = weights @ unit[idx]  # (D,) sum of +-unit vectors
        return mean / np.linalg.norm(mean), set(idx)

    def most_similar(
        self,
        positive: str | Sequence[str] = (),
        negative: str | Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """The ``topn`` words with the largest cosine to the normalised sum of the unit vectors of
        ``positive`` minus those of ``negative`` (the query words themselves excluded), as gensim.

        ``restrict_vocab`` limits the candidates to the first (most frequent) words.
        """
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ValueError("positive and negative must not both be empty")
        _check_topn(topn)
        unit = _unit_rows(self.vectors.astype(np.float64))
        query, exclude = self._query(positive, negative, unit)
        limit = len(self) if restrict_vocab is None else min(len(self), restrict_vocab)
        sims = unit[:limit] @ query  # (limit,)
        order = np.argsort(-sims, kind="stable")[: topn + len(exclude)]
        return [(self.index_to_key[i], float(sims[i])) for i in order.tolist() if i not in exclude][:topn]

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word furthest (in cosine) from the mean of the words' unit vectors."""
        words = [w for w in words if w in self]
        if len(words) < 2:
            raise ValueError("words must hold at least two words of the vocabulary")
        unit = _unit_rows(self.vectors[[self.key_to_index[w] for w in words]].astype(np.float64))
        mean = unit.mean(axis=0)
        return words[int(np.argmin(unit @ (mean / np.linalg.norm(mean))))]

    def _ok_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
        """gensim's restricted vocabulary: the first ``restrict_vocab`` words (upper-cased when case
        does not matter, the most frequent spelling winning)."""
        ok: dict[str, int] = {}
        for i, k in enumerate(self.index_to_key[:restrict_vocab]):
            ok.setdefault(k.upper() if case_insensitive else k, i)
        return ok

    def evaluate_word_analogies(
        self,
        questions: str | Path | Mapping[str, Sequence[tuple[str, str, str, str]]],
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> tuple[float, list[dict]]:
        """Analogy accuracy ``a : b :: c : ?`` answered by ``most_similar([b, c], [a])``, as gensim.

        Questions with a word outside the first ``restrict_vocab`` words are skipped.

        Args:
            questions: a file in the ``questions-words.txt`` format, or ``{section: [(a, b, c, d)]}``
                (:func:`shiyan.text.corpora.analogy_questions`).

        Returns:
            ``(accuracy over the answered questions, sections)``; every section is a dict with
            ``section``, ``correct`` and ``incorrect`` counts; the last one is ``"Total accuracy"``.
        """
        if isinstance(questions, str | Path):
            questions = parse_analogy_file(questions)
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        limit = min(len(self), restrict_vocab)
        unit = _unit_rows(self.vectors[:limit].astype(np.float64))  # (limit, D)
        norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
        sections = []
        for name, items in questions.items():
            qs = [tuple(norm(w) for w in q) for q in items]
            qs = [q for q in qs if all(w in ok for w in q)]
            correct = 0
            for start in range(0, len(qs), 512):
                batch = qs[start : start + 512]
                ia, ib, ic = (np.array([ok[q[k]] for q in batch]) for k in range(3))
                query = _unit_rows(unit[ib] + unit[ic] - unit[ia])  # (B, D)
                sims = query @ unit.T  # (B, limit)
                for k, q in enumerate(batch):
                    s = sims[k]
                    s[[ia[k], ib[k], ic[k]]] = -np.inf
                    top = np.argsort(-s, kind="stable")[:5]
                    predicted = None
                    for i in top.tolist():
                        predicted = norm(self.index_to_key[i])
                        if predicted in ok and predicted not in q[:3]:
                            break
                    correct += predicted == q[3]
            sections.append({"section": name, "correct": correct, "incorrect": len(qs) - correct})
        total_c = sum(s["correct"] for s in sections)
        total_i = sum(s["incorrect"] for s in sections)
        sections.append({"section": "Total accuracy", "correct": total_c, "incorrect": total_i})
        return (total_c / (total_c + total_i) if total_c + total_i else 0.0), sections

    def evaluate_word_pairs(
        self,
        pairs: str | Path | Sequence[tuple[str, str, float]],
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> tuple[float, float, float]:
        """Pearson and Spearman correlation between human scores and cosine similarities, as gensim.

        Args:
            pairs: ``[(w1, w2, score)]`` (:func:`shiyan.text.corpora.wordsim353`) or a tab-separated
                file of such lines (``#`` comments allowed).

        Returns:
            ``(pearson r, spearman rho, percentage of pairs skipped as out of vocabulary)``.
        """
        from scipy import stats

        if isinstance(pairs, str | Path):
            pairs = parse_pairs_file(pairs)
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
        gold, model = [], []
        for a, b, score in pairs:
            a, b = norm(a), norm(b)
            if a in ok and b in ok:
                gold.append(float(score))
                x, y = self.vectors[ok[a]].astype(np.float64), self.vectors[ok[b]].astype(np.float64)
                model.append(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))))
        if len(gold) < 3:
            raise ValueError("pairs: fewer than 3 pairs have both words in the vocabulary")
        oov = 100.0 * (len(pairs) - len(gold)) / len(pairs)
        return float(stats.pearsonr(gold, model)[0]), float(stats.spearmanr(gold, model)[0]), oov

    # -- the word2vec file formats --

    def save_word2vec_format(self, path: str | Path, binary: bool = False) -> None:
        """Write ``"V D"`` then one line per word: the word and its D numbers as text (9 significant
        digits, exact for float32) or, with ``binary``, as D little-endian float32 (word2vec.c's format)."""
        for k in self.index_to_key:
            if not k or any(ch.isspace() for ch in k):
                raise ValueError(f"keys must be non-empty and without whitespace to be saved; got {k!r}")
        v, d = self.vectors.shape
        with open(path, "wb") as f:
            f.write(f"{v} {d}\n".encode())
            if binary:
                rows = self.vectors.astype("<f4")
                for k, row in zip(self.index_to_key, rows, strict=True):
                    f.write(k.encode("utf-8") + b" " + row.tobytes() + b"\n")
            else:
                for k, row in zip(self.index_to_key, self.vectors.tolist(), strict=True):
                    f.write((k + " " + " ".join(f"{x:.9g}" for x in row) + "\n").encode("utf-8"))

    @classmethod
    def load_word2vec_format(cls, path: str | Path, binary: bool = False) -> KeyedVectors:
        """Read a file in the word2vec text or binary format (as written by word2vec.c, gensim or
        :meth:`save_word2vec_format`)."""
        data = Path(path).read_bytes()
        end = data.index(b"\n")
        header = data[:end].split()
        if len(header) != 2:
            raise ValueError(f"path: the first line must be 'V D'; got {data[:end][:80]!r}")
        v, d = int(header[0]), int(header[1])
        keys: list[str] = []
        vectors = np.empty((v, d), dtype=np.float32)
        pos = end + 1
        if binary:
            for i in range(v):
                space = data.index(b" ", pos)
                keys.append(data[pos:space].lstrip(b"\n").decode("utf-8"))
                vectors[i] = np.frombuffer(data, dtype="<f4", count=d, offset=space + 1)
                pos = space + 1 + 4 * d
        else:
            lines = data[pos:].decode("utf-8").splitlines()
            if len(lines) < v:
                raise ValueError(f"path: the header announces {v} words but the file has {len(lines)} lines")
            for i, line in enumerate(lines[:v]):
                parts = line.rstrip().split(" ")
                if len(parts) != d + 1:
                    raise ValueError(f"path: line {i + 2} has {len(parts) - 1} numbers, expected {d}")
                keys.append(parts[0])
                vectors[i] = np.array(parts[1:], dtype=np.float32)
        return cls(keys, vectors)


def parse_analogy_file(path: str | Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """``{section: [(a, b, c, d)]}`` from a file in the ``questions-words.txt`` format."""
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            current = sections.setdefault(line[1:].strip(), [])
        elif line.strip():
            words = line.split()
            if current is None or len(words) != 4:
                raise ValueError(f"questions: unexpected line {line!r}")
            current.append((words[0], words[1], words[2], words[3]))
    return sections


def parse_pairs_file(path: str | Path) -> list[tuple[str, str, float]]:
    """``[(w1, w2, score)]`` from a tab-separated word-pair file (``#`` lines are comments)."""
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            a, b, score = line.split("\t")[:3]
            pairs.append((a, b, float(score)))
    return pairs


# -- the model -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """A tokenised corpus encoded for training: word ids (vocabulary words only) and sentence offsets."""

    vocab: list[str]  # words, most frequent first
    counts: np.ndarray  # (V,) int64
    ids: np.ndarray  # (T,) int32
    offsets: np.ndarray  # (S + 1,) int64; sentence s is ids[offsets[s]:offsets[s+1]], all non-empty

    @property
    def n_words(self) -> int:
        return int(self.ids.shape[0])


def encode_corpus(sentences: Iterable[Sequence[str]], min_count: int = 5, max_vocab: int | None = None) -> Corpus:
    """Count the words of ``sentences`` (lists of str), keep those seen ``min_count`` times or more
    (at most ``max_vocab`` of them, the most frequent), drop the rest from the sentences, cut
    sentences longer than :data:`MAX_SENTENCE` and drop the empty ones.

    The vocabulary is counted by :meth:`shiyan.text.vocab.Vocab.build_encoded` (ties in count keep the
    order of first appearance); the tokens ``<unk>``, ``<s>`` and ``</s>`` are treated as unknown.
    """
    if isinstance(sentences, str):
        raise TypeError("sentences must be an iterable of token lists, not a str")
    try:
        vocab, ids, offsets = Vocab.build_encoded(
            sentences, min_count=min_count, max_size=max_vocab, bos=False, eos=False
        )
    except (TypeError, ValueError) as err:
        raise type(err)(f"sentences: {err}") from None
    n_special = len(SPECIALS)
    keep = ids >= n_special  # (T_raw,)
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # (T_raw + 1,)
    bounds = kept_before[offsets]  # (S + 1,) sentence offsets among the kept words
    lengths = np.diff(bounds)
    pieces = [bounds[:-1][lengths > 0]]
    for s in np.flatnonzero(lengths > MAX_SENTENCE).tolist():
        pieces.append(np.arange(bounds[s] + MAX_SENTENCE, bounds[s + 1], MAX_SENTENCE))
    starts = np.unique(np.concatenate(pieces))
    new_offsets = np.append(starts, kept_before[-1]).astype(np.int64)
    words = list(vocab.itos[n_special:])
    return Corpus(words, vocab.counts[n_special:].copy(), (ids[keep] - n_special).astype(np.int32), new_offsets)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")


class Word2Vec:
    """Word2Vec trained with compiled, multi-threaded Hogwild SGD (gensim's parameter names).

    Args:
        vector_size: dimension $D$ of the word vectors.
        window: maximal window $c$ (the window of each word is drawn from $1..c$).
        min_count: words seen fewer times are dropped from the corpus.
        sg: skip-gram (True) or CBOW (False).
        hs: train with hierarchical softmax.
        negative: negatives $k$ per example (0: no negative sampling; ``hs`` is then required).
        ns_exponent: exponent of the noise distribution $U(w)^{e}$ (0.75 in the paper).
        sample: subsampling threshold $s$ (0 disables it).
        alpha, min_alpha: learning rate at the start and at the end of training (linear decay).
        epochs: passes over the corpus $E$.
        workers: threads (at most numba's thread count, the number of cores).
        seed: seed of the initial vectors and of every random draw.
        cbow_mean: CBOW uses the mean (True) or the sum (False) of the context vectors.
        max_vocab: keep at most this many words (the most frequent).
        chunk_words: words per unit of work handed to a thread.
        compute_loss: also sum the loss of every update (costs some speed); see ``epoch_loss``.

    After :meth:`fit`: ``wv`` (:class:`KeyedVectors`, the input vectors), ``syn1neg`` (V, D) and
    ``syn1`` (V - 1, D) output vectors, ``tree`` (:class:`HuffmanTree` or None), and per epoch
    ``epoch_words`` (words trained on after subsampling) and ``epoch_loss``.
    """

    def __init__(
        self,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        sg: bool = False,
        hs: bool = False,
        negative: int = 5,
        ns_exponent: float = 0.75,
        sample: float = 1e-3,
        alpha: float = 0.025,
        min_alpha: float = 1e-4,
        epochs: int = 5,
        workers: int = 2,
        seed: int = 1,
        cbow_mean: bool = True,
        max_vocab: int | None = None,
        chunk_words: int = 10_000,
        compute_loss: bool = False,
    ):
        _check_int("vector_size", vector_size, 1)
        _check_int("window", window, 1)
        _check_int("min_count", min_count, 1)
        _check_int("negative", negative, 0)
        _check_int("epochs", epochs, 1)
        _check_int("workers", workers, 1)
        _check_int("seed", seed, 0)
        _check_int("chunk_words", chunk_words, 1)
        if max_vocab is not None:
            _check_int("max_vocab", max_vocab, 2)
        if not hs and negative == 0:
            raise ValueError("negative must be >= 1 when hs is False (no training objective otherwise)")
        if not (isinstance(sample, int | float) and math.isfinite(sample) and 0 <= sample < 1):
            raise ValueError(f"sample must be a number in [0, 1); got {sample!r}")
        if not (isinstance(ns_exponent, int | float) and math.isfinite(ns_exponent)):
            raise ValueError(f"ns_exponent must be a finite number; got {ns_exponent!r}")
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a number > 0; got {alpha!r}")
        if not (isinstance(min_alpha, int | float) and math.isfinite(min_alpha) and 0 <= min_alpha <= alpha):
            raise ValueError(f"min_alpha must be a number in [0, alpha]; got {min_alpha!r}")
        self.vector_size, self.window, self.min_count = int(vector_size), int(window), int(min_count)
        self.sg, self.hs, self.negative, self.ns_exponent = bool(sg), bool(hs), int(negative), float(ns_exponent)
        self.sample, self.alpha, self.min_alpha, self.epochs = (
            float(sample),
            float(alpha),
            float(min_alpha),
            int(epochs),
        )
        self.workers, self.seed, self.cbow_mean = int(workers), int(seed), bool(cbow_mean)
        self.max_vocab, self.chunk_words, self.compute_loss = max_vocab, int(chunk_words), bool(compute_loss)
        self.wv: KeyedVectors | None = None
        self.syn1neg: np.ndarray | None = None
        self.syn1: np.ndarray | None = None
        self.tree: HuffmanTree | None = None
        self.epoch_words: list[int] = []
        self.epoch_loss: list[float] = []

    def fit(
        self, sentences: Iterable[Sequence[str]] | Corpus, callback: Callable[[int, Word2Vec], None] | None = None
    ) -> Word2Vec:
        """Build the vocabulary and train ``epochs`` epochs; ``callback(epoch, self)`` runs after each."""
        corpus = (
            sentences if isinstance(sentences, Corpus) else encode_corpus(sentences, self.min_count, self.max_vocab)
        )
        v, d = len(corpus.vocab), self.vector_size
        if v < 2:
            raise ValueError(f"sentences: only {v} word(s) occur at least min_count={self.min_count} times; need 2")
        rng = np.random.default_rng(self.seed)
        w_in = ((2.0 * rng.random((v, d), dtype=np.float32) - 1.0) / d).astype(np.float32)  # (V, D) U[-1/D, 1/D)
        w_ns = np.zeros((v if self.negative else 1, d), np.float32)  # (V, D) v'_w
        w_hs = np.zeros((v - 1 if self.hs else 1, d), np.float32)  # (V-1, D) v'_n
        self.tree = huffman_tree(corpus.counts) if self.hs else None
        tree = self.tree or HuffmanTree(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(v + 1, np.int64))
        max_code = int(np.diff(tree.offsets).max()) if self.hs else 0
        prob, alias = K.alias_table(noise_distribution(corpus.counts, self.ns_exponent))
        keep = keep_probabilities(corpus.counts, self.sample)
        chunks = _chunk_bounds(corpus.offsets, self.chunk_words)
        self.wv = KeyedVectors(corpus.vocab, w_in, corpus.counts)
        self.wv.vectors = w_in  # trained in place
        self.syn1neg = w_ns if self.negative else None
        self.syn1 = w_hs if self.hs else None
        self.epoch_words, self.epoch_loss = [], []
        total = float(self.epochs * corpus.n_words)
        import numba

        previous = numba.get_num_threads()
        n_threads = min(self.workers, numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(n_threads)
        try:
            for epoch in range(self.epochs):
                kept, loss = K.train_epoch(
                    corpus.ids, corpus.offsets, chunks, w_in, w_ns, w_hs, keep, prob, alias, tree.points,
                    tree.codes, tree.offsets, max_code, self.sg, self.hs, self.negative, self.window,
                    self.cbow_mean, self.alpha, self.min_alpha, float(epoch * corpus.n_words), total,
                    self.seed, epoch, self.compute_loss, n_threads,
                )  # fmt: skip
                self.epoch_words.append(int(kept))
                self.epoch_loss.append(float(loss))
                if callback is not None:
                    callback(epoch, self)
        finally:
            numba.set_num_threads(previous)
        return self


def _chunk_bounds(offsets: np.ndarray, chunk_words: int) -> np.ndarray:
    """Sentence indices cutting the corpus into runs of about ``chunk_words`` words."""
    cuts = np.searchsorted(offsets, np.arange(0, offsets[-1], chunk_words), side="left")
    return np.unique(np.append(cuts, offsets.shape[0] - 1)).astype(np.int64)


__all__ = [
    "MAX_SENTENCE",
    "Corpus",
    "HuffmanTree",
    "KeyedVectors",
    "Word2Vec",
    "encode_corpus",
    "hs_probabilities",
    "huffman_tree",
    "keep_probabilities",
    "logistic_loss_grads",
    "noise_distribution",
    "parse_analogy_file",
    "parse_pairs_file",
    "sgd_step",
]
