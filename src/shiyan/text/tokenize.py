"""Tokenisation: cutting text into the units a language model counts.

English is cut into *words* (runs of letters or digits, with inner apostrophes kept so that
``reliev'd`` and ``who's`` stay whole) or into *characters*. Chinese is written without spaces, so
the units are either *characters* or, where a corpus has already been segmented by people (the
People's Daily corpus, whose lines look like ``迈向/v  充满/v  希望/n``), the *words* it marks, with
their part-of-speech tags stripped.

All functions take one string and return a list of str tokens; none of them reads files.
"""

from __future__ import annotations

import re
import unicodedata

# A word: letters/digits (no underscore), optionally joined by apostrophes inside ("reliev'd", "o'er").
_WORD = r"[^\W_]+(?:['\u2019][^\W_]+)*"
_WORD_RE = re.compile(_WORD)
# Words, or runs of punctuation (anything that is neither a word character nor a space), e.g. "--" or "?!".
_WORD_OR_PUNCT_RE = re.compile(rf"{_WORD}|[^\w\s]+|_+")
_SPACE_RE = re.compile(r"\s+")

PUNCTUATION_MODES = ("drop", "keep")


def english_words(text: str, lowercase: bool = True, punctuation: str = "drop") -> list[str]:
    """Word tokens of English ``text``.

    Args:
        text: the text.
        lowercase: fold case first ("The" and "the" become one token).
        punctuation: ``"drop"`` removes punctuation; ``"keep"`` makes every run of punctuation
            characters (``","``, ``"--"``, ``"?!"``) a token of its own.

    >>> english_words("Nay, answer me: stand, and unfold yourself.", punctuation="keep")
    ['nay', ',', 'answer', 'me', ':', 'stand', ',', 'and', 'unfold', 'yourself', '.']
    """
    _check_text(text)
    if punctuation not in PUNCTUATION_MODES:
        raise ValueError(f"punctuation must be one of {PUNCTUATION_MODES}; got {punctuation!r}")
    if lowercase:
        text = text.lower()
    pattern = _WORD_RE if punctuation == "drop" else _WORD_OR_PUNCT_RE
    return pattern.findall(text)


def english_chars(text: str, lowercase: bool = False, space: str | None = "_") -> list[str]:
    """Character tokens of ``text``; every run of whitespace becomes one ``space`` token.

    Args:
        text: the text.
        lowercase: fold case first.
        space: the token that stands for a run of whitespace (so word boundaries stay visible to a
            character model), or ``None`` to drop whitespace. Leading/trailing whitespace is dropped.
    """
    _check_text(text)
    if space is not None and (not isinstance(space, str) or not space):
        raise ValueError(f"space must be None or a non-empty str; got {space!r}")
    if lowercase:
        text = text.lower()
    parts = _SPACE_RE.split(text.strip())
    if parts == [""]:
        return []
    out: list[str] = []
    for i, part in enumerate(parts):
        if i and space is not None:
            out.append(space)
        out.extend(part)
    return out


def is_cjk_punctuation(ch: str) -> bool:
    """True for punctuation characters (Unicode categories P*), full-width ones included."""
    return unicodedata.category(ch).startswith("P")


def chinese_chars(text: str, punctuation: str = "keep", normalize: bool = False) -> list[str]:
    """Character tokens of Chinese ``text`` (whitespace dropped).

    Args:
        text: the text.
        punctuation: ``"keep"`` or ``"drop"`` punctuation characters (``，``, ``。``, ``“`` ...).
        normalize: apply Unicode NFKC first, which turns full-width digits and Latin letters
            (``１９９８``) into their ordinary forms (``1998``).
    """
    _check_text(text)
    if punctuation not in PUNCTUATION_MODES:
        raise ValueError(f"punctuation must be one of {PUNCTUATION_MODES}; got {punctuation!r}")
    if normalize:
        text = unicodedata.normalize("NFKC", text)
    chars = [c for c in text if not c.isspace()]
    if punctuation == "drop":
        chars = [c for c in chars if not is_cjk_punctuation(c)]
    return chars


def pos_tagged(line: str) -> list[tuple[str, str]]:
    """(word, tag) pairs of a segmented, part-of-speech-tagged line ``word/tag  word/tag ...``.

    The tag is what follows the *last* slash, so words that contain a slash keep it.
    """
    _check_text(line)
    pairs = []
    for item in line.split():
        word, sep, tag = item.rpartition("/")
        if not sep or not word:
            raise ValueError(f"line has an item without a word/tag form: {item!r}")
        pairs.append((word, tag))
    return pairs


def strip_pos_tags(line: str, normalize: bool = False, drop_tags: tuple[str, ...] = ()) -> list[str]:
    """The words of a segmented, tagged line: ``"迈向/v  充满/v  希望/n"`` -> ``["迈向", "充满", "希望"]``.

    Args:
        line: one line of a ``word/tag`` corpus (People's Daily 1998).
        normalize: apply Unicode NFKC to the words (full-width digits -> ASCII).
        drop_tags: leave out words with these tags (``("w",)`` drops punctuation in the PKU tag set).
    """
    words = [w for w, t in pos_tagged(line) if t not in drop_tags]
    if normalize:
        words = [unicodedata.normalize("NFKC", w) for w in words]
    return words


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")


__all__ = [
    "PUNCTUATION_MODES",
    "chinese_chars",
    "english_chars",
    "english_words",
    "is_cjk_punctuation",
    "pos_tagged",
    "strip_pos_tags",
]
