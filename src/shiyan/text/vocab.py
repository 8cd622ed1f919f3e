"""A vocabulary: the map between tokens and the integer ids every model in ``shiyan.text`` works on.

Three special tokens hold fixed ids so that models and files agree on them:

=========  ====  ==========================================================================
token      id    meaning
=========  ====  ==========================================================================
``<unk>``  0     any token that is not in the vocabulary (or was rarer than ``min_count``)
``<s>``    1     the start of a sentence: a context, never predicted
``</s>``   2     the end of a sentence: predicted like a word
=========  ====  ==========================================================================

The other tokens follow in order of decreasing count $c(w)$ in the corpus the vocabulary was built
from; ties keep the order in which the tokens first appeared, so the ids are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, count, repeat

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)


class Vocab:
    """Tokens <-> ids with ``<unk>`` = 0, ``<s>`` = 1, ``</s>`` = 2.

    Build one from tokenised sentences with :meth:`build`, or from a token list with the
    constructor (the specials are put first when missing).

    Attributes:
        itos: tuple of tokens; ``itos[i]`` is the token with id ``i``.
        counts: (V,) int64 corpus counts $c(w)$ (zeros when unknown, e.g. for the specials).
    """

    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID

    def __init__(self, tokens: Iterable[str], counts: Sequence[int] | np.ndarray | None = None):
        tokens = list(tokens)
        if any(not isinstance(t, str) for t in tokens):
            raise TypeError("tokens must all be str")
        if counts is not None and len(counts) != len(tokens):
            raise ValueError(f"counts must have one entry per token; got {len(counts)} for {len(tokens)} tokens")
        count_of = dict(zip(tokens, counts)) if counts is not None else {}
        rest = [t for t in tokens if t not in SPECIALS]
        if len(set(rest)) != len(rest):
            raise ValueError("tokens must not repeat")
        self.itos: tuple[str, ...] = (*SPECIALS, *rest)
        self.counts = np.array([int(count_of.get(t, 0)) for t in self.itos], dtype=np.int64)  # (V,)
        self._stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary of tokenised ``sentences``: every token seen at least ``min_count`` times.

        Args:
            sentences: iterable of token sequences (one per sentence).
            min_count: tokens seen fewer times map to ``<unk>``.
            max_size: keep at most this many tokens besides the three specials (the most frequent).
        """
        return cls.build_encoded(sentences, min_count, max_size)[0]

    @classmethod
    def build_encoded(
        cls,
        sentences: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
        bos: bool = True,
        eos: bool = True,
    ) -> tuple[Vocab, np.ndarray, np.ndarray]:
        """:meth:`build` and :meth:`encode_batch` in one pass over the tokens: ``(vocab, ids, offsets)``."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1; got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0):
            raise ValueError(f"max_size must be None or an integer >= 0; got {max_size!r}")
        sents = [_check_sentence(s) for s in sentences]
        lengths = np.fromiter(map(len, sents), dtype=np.int64, count=len(sents))  # (S,)
        # Each token gets the position of the first occurrence of its type (dict.setdefault keeps the first);
        # numbering the distinct first positions in order gives type indices 0..n_types-1 in first-seen order.
        first_seen: dict[str, int] = {}
        n_words = int(lengths.sum())
        pos = np.fromiter(
            map(first_seen.setdefault, chain.from_iterable(sents), count()), dtype=np.int64, count=n_words
        )  # (T_words,)
        types = list(first_seen)
        is_first = np.zeros(n_words, dtype=bool)
        is_first[pos] = True
        local = (np.cumsum(is_first) - 1)[pos]  # (T_words,) type index of every token
        counts = np.bincount(local, minlength=len(types))  # (n_types,)
        is_special = np.array([t in SPECIALS for t in types], dtype=bool)
        by_count = np.argsort(-counts, kind="stable")  # ties keep first-seen order
        kept = by_count[(counts[by_count] >= min_count) & ~is_special[by_count]]
        if max_size is not None:
            kept = kept[:max_size]
        vocab = cls([types[i] for i in kept.tolist()], counts[kept])
        remap = np.full(len(types), UNK_ID, dtype=np.int64)
        remap[kept] = np.arange(len(SPECIALS), len(SPECIALS) + kept.shape[0])
        for i in np.flatnonzero(is_special).tolist():
            remap[i] = SPECIALS.index(types[i])
        ids, offsets = _assemble(remap[local], lengths, bos, eos)
        return vocab, ids, offsets

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"

    def index(self, token: str) -> int:
        """The id of ``token`` (``<unk>``'s id when it is unknown)."""
        return self._stoi.get(token, UNK_ID)

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> np.ndarray:
        """(len(tokens) + bos + eos,) int64 ids; unknown tokens get ``<unk>``'s id."""
        get = self._stoi.get
        ids = [get(t, UNK_ID) for t in _check_sentence(tokens)]
        if bos:
            ids.insert(0, BOS_ID)
        if eos:
            ids.append(EOS_ID)
        return np.array(ids, dtype=np.int64)

    def encode_batch(
        self, sentences: Iterable[Sequence[str]], bos: bool = True, eos: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """All sentences as one flat id array and the offsets where each begins.

        Returns:
            ids: (T,) int64, sentence ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` (with ``<s>``/``</s>``
                when ``bos``/``eos``).
            offsets: (n_sentences + 1,) int64.
        """
        sents = [_check_sentence(s) for s in sentences]
        lengths = np.fromiter(map(len, sents), dtype=np.int64, count=len(sents))  # (S,)
        words = np.fromiter(
            map(self._stoi.get, chain.from_iterable(sents), repeat(UNK_ID)), dtype=np.int64, count=int(lengths.sum())
        )  # (T_words,)
        return _assemble(words, lengths, bos, eos)

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Tokens of ``ids`` (a 1-D sequence of ints in ``[0, len(self))``)."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D; got shape {arr.shape}")
        if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= len(self)):
            raise ValueError(f"ids must be integers in [0, {len(self)}); got values outside it or dtype {arr.dtype}")
        return [self.itos[i] for i in arr.tolist()]


def _assemble(words: np.ndarray, lengths: np.ndarray, bos: bool, eos: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flat ids with ``<s>``/``</s>`` around each sentence, and the sentence offsets."""
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths + (int(bos) + int(eos)), out=offsets[1:])
    ids = np.empty(int(offsets[-1]), dtype=np.int64)  # (T,)
    is_word = np.ones(ids.shape[0], dtype=bool)
    if bos:
        ids[offsets[:-1]] = BOS_ID
        is_word[offsets[:-1]] = False
    if eos:
        ids[offsets[1:] - 1] = EOS_ID
        is_word[offsets[1:] - 1] = False
    ids[is_word] = words
    return ids, offsets


def _check_sentence(tokens: Sequence[str]) -> Sequence[str]:
    """A sentence must be a sequence of str tokens (a bare str would silently become characters)."""
    if isinstance(tokens, str):
        raise TypeError("a sentence must be a sequence of tokens, not a str; split it first (e.g. text.split())")
    return tokens


__all__ = ["BOS", "BOS_ID", "EOS", "EOS_ID", "SPECIALS", "UNK", "UNK_ID", "Vocab"]
