"""Slow, independent references for the n-gram tests: plain Python dicts, straight from the formulas.

Nothing here imports shiyan.text's counting or estimation code; every quantity is recomputed from
the sentences with tuples as keys, so a bug in the vectorised keys/ranks cannot hide in both.
Also: a line-by-line ARPA reader that does not use shiyan.text.arpa.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK = (0.5, 1.0, 1.5)


def raw_ngram_counts(sentences: Sequence[Sequence[str]], order: int) -> dict[int, Counter]:
    """c(w_1^n) for n = 1..order over windows inside ``<s> w_1 ... w_m </s>``."""
    counts = {n: Counter() for n in range(1, order + 1)}
    for s in sentences:
        padded = [BOS, *s, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                counts[n][tuple(padded[i : i + n])] += 1
    return counts


class BruteKneserNey:
    """Interpolated (modified) Kneser-Ney the way lmplz estimates it, one n-gram at a time.

    adjusted count a = raw count at the top order or after <s>, else the number of distinct left
    neighbours; D_n(k) = k - (k+1) Y t_{k+1}/t_k with Y = t_1/(t_1 + 2 t_2) (or D = Y for plain KN);
    p(w|h) = (a(hw) - D(a(hw)))/sum_x a(hx) + gamma(h) p(w|h[1:]), gamma(h) = sum_x D(a(hx)) / sum_x a(hx);
    unigrams interpolate with the uniform distribution over the vocabulary without <s>.
    """

    def __init__(self, sentences: Sequence[Sequence[str]], order: int, modified: bool = True):
        self.order = N = order
        raw = raw_ngram_counts(sentences, order)
        self.adjusted: dict[int, dict[tuple[str, ...], int]] = {}
        for n in range(1, N + 1):
            left: dict[tuple[str, ...], set[str]] = defaultdict(set)
            if n < N:
                for gram in raw[n + 1]:
                    left[gram[1:]].add(gram[0])
            self.adjusted[n] = {g: c if (n == N or g[0] == BOS) else len(left[g]) for g, c in raw[n].items()}
        del self.adjusted[1][(BOS,)]
        self.discounts: dict[int, tuple[float, float, float]] = {}
        self.used_fallback: dict[int, bool] = {}
        for n in range(1, N + 1):
            t = Counter(self.adjusted[n].values())
            d = None
            if modified and all(t[k] > 0 for k in (1, 2, 3)):
                Y = t[1] / (t[1] + 2 * t[2])
                d = tuple(k - (k + 1) * Y * t[k + 1] / t[k] for k in (1, 2, 3))
                if any(x < 0 or x > k for k, x in zip((1, 2, 3), d)):
                    d = None
            elif not modified and t[1] > 0 and t[2] > 0:
                Y = t[1] / (t[1] + 2 * t[2])
                d = (Y, Y, Y)
            self.used_fallback[n] = d is None
            self.discounts[n] = d if d is not None else (FALLBACK if modified else (FALLBACK[0],) * 3)
        self.words = sorted({g[0] for g in raw[1]} - {BOS} | {UNK})
        self.total: dict[int, dict[tuple[str, ...], float]] = {n: defaultdict(float) for n in range(1, N + 1)}
        self.discount_mass: dict[int, dict[tuple[str, ...], float]] = {n: defaultdict(float) for n in range(1, N + 1)}
        for n in range(1, N + 1):
            for g, a in self.adjusted[n].items():
                self.total[n][g[:-1]] += a
                self.discount_mass[n][g[:-1]] += self.D(n, a)

    def D(self, n: int, a: int) -> float:
        return 0.0 if a == 0 else self.discounts[n][min(a, 3) - 1]

    def prob(self, word: str, context: Sequence[str]) -> float:
        """p(word | context), context cut to the last order - 1 words."""
        h = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        return self._prob(word, h)

    def _prob(self, w: str, h: tuple[str, ...]) -> float:
        n = len(h) + 1
        if n == 1:
            a = self.adjusted[1].get((w,), 0)
            T = self.total[1][()]
            return (a - self.D(1, a)) / T + self.discount_mass[1][()] / T / len(self.words)
        lower = self._prob(w, h[1:])
        T = self.total[n].get(h, 0.0)
        if T == 0:
            return lower
        a = self.adjusted[n].get(h + (w,), 0)
        return (a - self.D(n, a)) / T + self.discount_mass[n][h] / T * lower

    def backoff(self, h: tuple[str, ...]) -> float:
        """gamma(h) (1 when h is never a context)."""
        T = self.total[len(h) + 1].get(h, 0.0)
        return self.discount_mass[len(h) + 1][h] / T if T else 1.0


class BruteAddK:
    """p(w|h) = (c(hw) + k) / (sum_x c(hx) + k (|V| - 1)) with the full (cut) context."""

    def __init__(self, sentences: Sequence[Sequence[str]], order: int, k: float):
        self.order, self.k = order, k
        self.raw = raw_ngram_counts(sentences, order)
        self.words = sorted({g[0] for g in self.raw[1]} - {BOS} | {UNK})
        self.total: dict[tuple[str, ...], float] = defaultdict(float)
        for n in range(1, order + 1):
            for g, c in self.raw[n].items():
                if n == 1 and g == (BOS,):
                    continue
                self.total[g[:-1]] += c

    def prob(self, word: str, context: Sequence[str]) -> float:
        h = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        c = self.raw[len(h) + 1].get(h + (word,), 0)
        return (c + self.k) / (self.total.get(h, 0.0) + self.k * len(self.words))


def sentence_log10(model: BruteKneserNey | BruteAddK, sentence: Sequence[str]) -> float:
    """log10 p(sentence </s> | <s>) with out-of-vocabulary words read as <unk>."""
    known = set(model.words)
    padded = [BOS, *(w if w in known else UNK for w in sentence), EOS]
    return sum(math.log10(model.prob(padded[i], padded[:i])) for i in range(1, len(padded)))


def read_arpa_dict(text: str) -> dict[tuple[str, ...], tuple[float, float | None]]:
    """n-gram -> (log10 prob, log10 backoff or None), parsed line by line without shiyan."""
    out: dict[tuple[str, ...], tuple[float, float | None]] = {}
    order = 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1 : line.index("-")])
            continue
        if order and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            out[tuple(parts[1].split(" "))] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else None)
    return out
