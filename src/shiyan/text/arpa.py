"""The ARPA back-off language-model format, read and written as text.

An ARPA file lists, for every order $n$, the n-grams $w_1^n$ a model stores with
$\\log_{10} p(w_n \\mid w_1^{n-1})$ and, for all but the highest order, the back-off weight
$\\log_{10} b(w_1^n)$ that is used when $w_1^n$ is the context of an n-gram the file does not hold:

$$\\log_{10} p(w \\mid h) = \\begin{cases} \\log_{10} p_{\\text{stored}}(h\\,w) & h\\,w \\text{ stored} \\\\
\\log_{10} b(h) + \\log_{10} p(w \\mid h_{2:}) & \\text{otherwise} \\end{cases}$$

with $\\log_{10} b(h) = 0$ when $h$ itself is not stored. The layout written here is the one KenLM's
``lmplz`` writes: ``\\data\\``, one ``ngram n=COUNT`` line per order, a blank line, then per order a
``\\n-grams:`` header, one ``log10prob<TAB>w1 w2 ...<TAB>log10backoff`` line per n-gram (no back-off
column at the highest order) and a blank line, and finally ``\\end\\``. Numbers are written with the
shortest decimal form that reads back to the same float64, so a model survives a round trip exactly.

Reading accepts any whitespace between fields (SRILM and other toolkits) and checks the counts in
the header. Words are indices into the unigram list, in file order.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

import numpy as np

_HEADER_RE = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)$")
_SECTION_RE = re.compile(r"^\\(\d+)-grams:$")


@dataclasses.dataclass(frozen=True)
class ArpaModel:
    """The content of an ARPA file.

    Attributes:
        vocab: the unigram words in file order; word ids below index this tuple.
        grams: per order n = 1..N, an (U_n, n) int64 array of word ids.
        log10_prob: per order, (U_n,) float64 $\\log_{10} p(w_n \\mid w_1^{n-1})$.
        log10_backoff: per order, (U_n,) float64 $\\log_{10} b(w_1^n)$ (zeros where the file has none).
    """

    vocab: tuple[str, ...]
    grams: tuple[np.ndarray, ...]
    log10_prob: tuple[np.ndarray, ...]
    log10_backoff: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.grams:
            raise ValueError("an ARPA model needs at least the unigrams")
        if not (len(self.grams) == len(self.log10_prob) == len(self.log10_backoff)):
            raise ValueError("grams, log10_prob and log10_backoff must have one entry per order")
        for n, (g, p, b) in enumerate(zip(self.grams, self.log10_prob, self.log10_backoff), start=1):
            if g.ndim != 2 or g.shape[1] != n:
                raise ValueError(f"grams[{n - 1}] must have shape (U, {n}); got {g.shape}")
            if p.shape != (g.shape[0],) or b.shape != (g.shape[0],):
                raise ValueError(f"log10_prob/log10_backoff of order {n} must have shape ({g.shape[0]},)")
        if self.grams[0].shape[0] != len(self.vocab):
            raise ValueError("the unigrams must be exactly the vocabulary")

    @property
    def order(self) -> int:
        return len(self.grams)


def format_number(x: float) -> str:
    """Shortest decimal text that reads back to the same float64 (``0`` and ``-1`` without ``.0``)."""
    if not math.isfinite(x):
        raise ValueError(f"ARPA values must be finite; got {x}")
    text = repr(float(x))
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _format_numbers(values: np.ndarray) -> list[str]:
    """:func:`format_number` for a whole array (checked once, formatted in one pass)."""
    if not np.all(np.isfinite(values)):
        raise ValueError("ARPA values must be finite")
    texts = list(map(repr, (values + 0.0).tolist()))  # + 0.0 turns -0.0 into 0.0
    return [t[:-2] if t.endswith(".0") else t for t in texts]


def format_arpa(model: ArpaModel) -> str:
    """The ARPA text of ``model`` in lmplz's layout (see the module docstring)."""
    words = np.array(model.vocab, dtype=object)
    out = ["\\data\\"]
    out += [f"ngram {n}={g.shape[0]}" for n, g in enumerate(model.grams, start=1)]
    for n, (g, lp, bo) in enumerate(zip(model.grams, model.log10_prob, model.log10_backoff), start=1):
        out.append("")
        out.append(f"\\{n}-grams:")
        columns = [words[g[:, m]].tolist() for m in range(n)]
        texts = columns[0] if n == 1 else list(map(" ".join, zip(*columns)))
        fields = [_format_numbers(lp), texts]
        if n < model.order:
            fields.append(_format_numbers(bo))
        out += list(map("\t".join, zip(*fields)))
    out.append("")
    out.append("\\end\\")
    return "\n".join(out) + "\n"


def parse_arpa(text: str | Iterable[str]) -> ArpaModel:
    """Read ARPA ``text`` (a whole file as one str, or an iterable of lines).

    Raises:
        ValueError: a malformed file (missing ``\\data\\`` or ``\\end\\``, counts that disagree with
            the header, a line with the wrong number of fields, a word missing from the unigrams,
            a repeated word among the unigrams).
    """
    lines = text.splitlines() if isinstance(text, str) else [line.rstrip("\r\n") for line in text]
    marks = [i for i, line in enumerate(lines) if line.startswith("\\")]  # \data\, \n-grams:, \end\
    heads = [lines[i].strip() for i in marks]
    if not heads or heads[0] != "\\data\\" or any(line.strip() for line in lines[: marks[0]]):
        raise ValueError("ARPA text must begin with \\data\\")
    if heads[-1] != "\\end\\":
        raise ValueError("ARPA text does not end with \\end\\")
    counts: dict[int, int] = {}
    for lineno, line in enumerate(lines[marks[0] + 1 : marks[1]], start=marks[0] + 2):
        s = line.strip()
        if not s:
            continue
        m = _HEADER_RE.match(s)
        if m is None or int(m.group(1)) != len(counts) + 1:
            raise ValueError(f"ARPA line {lineno}: expected 'ngram {len(counts) + 1}=COUNT', got {s[:40]!r}")
        counts[int(m.group(1))] = int(m.group(2))
    sections = heads[1:-1]
    expected = [f"\\{n}-grams:" for n in range(1, len(counts) + 1)]
    if not counts or sections != expected:
        raise ValueError(f"ARPA sections {sections} do not match the announced orders 1..{len(counts)}")

    vocab: tuple[str, ...] = ()
    index: dict[str, int] = {}
    grams, probs, backs = [], [], []
    for n in range(1, len(counts) + 1):
        body = [line for line in lines[marks[n] + 1 : marks[n + 1]] if line.strip()]
        if len(body) != counts[n]:
            raise ValueError(f"ARPA header announces {counts[n]} {n}-grams but the section has {len(body)}")
        p, w, b = _parse_section(body, n, marks[n] + 2)
        if n == 1:
            vocab = tuple(w[0])
            index = {word: i for i, word in enumerate(vocab)}
            if len(index) != len(vocab):
                raise ValueError("ARPA unigrams repeat a word")
        try:
            ids = np.array([[index[x] for x in col] for col in w], dtype=np.int64).reshape(n, len(body)).T
        except KeyError as err:
            raise ValueError(f"ARPA {n}-gram uses the word {err.args[0]!r}, which is not among the unigrams") from None
        grams.append(np.ascontiguousarray(ids))
        probs.append(p)
        backs.append(b)
    return ArpaModel(vocab, tuple(grams), tuple(probs), tuple(backs))


def _parse_section(body: list[str], n: int, first_lineno: int) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """log10 probs (U,), the n word columns, back-offs (U,) of one section's non-blank lines."""
    fast = _parse_tab_section(body, n)
    if fast is not None:
        return fast
    split = [line.split() for line in body]
    for i, parts in enumerate(split):
        if len(parts) not in (n + 1, n + 2):
            raise ValueError(
                f"ARPA line {first_lineno + i}: expected a probability, {n} words and maybe a back-off; got {body[i]!r}"
            )
    try:
        p = np.array([float(parts[0]) for parts in split])
        b = np.array([float(parts[n + 1]) if len(parts) == n + 2 else 0.0 for parts in split])
    except ValueError as err:
        raise ValueError(f"ARPA {n}-grams: a probability or back-off is not a number ({err})") from None
    words = [[parts[m] for parts in split] for m in range(1, n + 1)]
    return p, words, b


def _parse_tab_section(body: list[str], n: int) -> tuple[np.ndarray, list[list[str]], np.ndarray] | None:
    """Fast path for lmplz/SRILM layout ``prob<TAB>w1 ... wn[<TAB>backoff]`` on every line, else None.

    Works on whole columns instead of one list per line (a million small lists cost seconds).
    """
    U = len(body)
    blob = "\t".join(body)
    tabs = blob.count("\t") - (U - 1)
    width = 3 if tabs == 2 * U else 2 if tabs == U else 0
    if not width or blob.count(" ") != (n - 1) * U:
        return None
    fields = blob.split("\t")
    texts = fields[1::width]
    if n > 1:
        spaces = [t.count(" ") for t in texts]
        if min(spaces) != n - 1 or max(spaces) != n - 1:
            return None
        flat = " ".join(texts).split(" ")
        words = [flat[m::n] for m in range(n)]
    else:
        words = [texts]
    if any("" in col for col in words):
        return None
    try:
        p = np.array(fields[0::width], dtype=np.float64)
        b = np.array(fields[2::width], dtype=np.float64) if width == 3 else np.zeros(U)
    except ValueError:
        return None
    if p.shape != (U,) or b.shape != (U,):
        return None
    return p, words, b


__all__ = ["ArpaModel", "format_arpa", "format_number", "parse_arpa"]
