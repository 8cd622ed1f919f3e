"""The KenLM reference: find the ``lmplz`` estimator and run it on tokenised sentences.

KenLM (Heafield 2011; Heafield et al. 2013) is the toolkit whose modified Kneser–Ney estimates
:class:`shiyan.text.NGramLM` reproduces. Its PyPI package ``kenlm`` ships only the *query* module
(``kenlm.Model`` reads an ARPA or binary file and scores sentences); the estimator ``lmplz`` is a C++
program that ``scripts/build_lmplz.sh`` compiles from the ``kenlm`` 0.3.0 source distribution.

:func:`find_lmplz` looks, in order, at ``$KENLM_BIN`` (the binary or its folder), ``PATH``,
``$SHIYAN_DATA_DIR/tools/kenlm/bin`` and ``~/.cache/shiyan/lmplz/bin`` and returns ``None`` when no
build exists, so that tests and benchmarks can skip with a reason instead of failing.

:func:`run_lmplz` is the one place in ``shiyan.text`` that starts a process: it writes the sentences
one per line (tokens joined by single spaces, exactly as lmplz splits them) to the program's
standard input and returns the ARPA text it prints.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

BUILD_SCRIPT = "scripts/build_lmplz.sh"


def lmplz_search_path() -> list[Path]:
    """The folders (besides ``PATH``) where :func:`find_lmplz` looks for a build."""
    folders = []
    data_dir = os.environ.get("SHIYAN_DATA_DIR")
    if data_dir:
        folders.append(Path(data_dir) / "tools" / "kenlm" / "bin")
    folders.append(Path.home() / ".cache" / "shiyan" / "lmplz" / "bin")
    return folders


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_lmplz() -> Path | None:
    """Path of KenLM's ``lmplz`` binary, or ``None`` when it has not been built (see module docstring)."""
    env = os.environ.get("KENLM_BIN")
    if env:
        p = Path(env)
        for candidate in (p, p / "lmplz", p / "bin" / "lmplz"):
            if _executable(candidate):
                return candidate
    found = shutil.which("lmplz")
    if found:
        return Path(found)
    for folder in lmplz_search_path():
        if _executable(folder / "lmplz"):
            return folder / "lmplz"
    return None


def lmplz_missing_reason() -> str:
    """A one-line explanation for a skipped test or benchmark when ``lmplz`` is absent."""
    return (
        f"KenLM's lmplz is not built: run {BUILD_SCRIPT} (needs cmake, g++ and the Debian boost dev packages) "
        "or point $KENLM_BIN at an existing build"
    )


@dataclasses.dataclass(frozen=True)
class LmplzOutput:
    """What one lmplz run produced.

    Attributes:
        arpa: the ARPA text (standard output).
        discounts: order n -> $(D_n(1), D_n(2), D_n(3+))$ as lmplz printed them in its ``Statistics:`` block.
        log: lmplz's standard error.
    """

    arpa: str
    discounts: dict[int, tuple[float, float, float]]
    log: str


def run_lmplz(
    sentences: Iterable[Sequence[str]],
    order: int,
    discount_fallback: bool = True,
    memory: str = "20%",
    lmplz: Path | str | None = None,
    timeout: float | None = 600.0,
) -> LmplzOutput:
    """Run lmplz (modified Kneser–Ney of order ``order``) on tokenised ``sentences``.

    Args:
        sentences: token sequences; a token must be non-empty and hold no whitespace.
        order: the n-gram order N >= 2 (lmplz refuses 1).
        discount_fallback: pass ``--discount_fallback`` (discounts (0.5, 1, 1.5) where count-of-counts
            leave them undefined; needed on tiny corpora).
        memory: lmplz's ``-S`` sort memory.
        lmplz: the binary; found with :func:`find_lmplz` when None.
        timeout: seconds before the process is killed.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 2:
        raise ValueError(f"order must be an integer >= 2 (lmplz has no unigram mode); got {order!r}")
    binary = Path(lmplz) if lmplz is not None else find_lmplz()
    if binary is None:
        raise FileNotFoundError(lmplz_missing_reason())
    lines = []
    for s in sentences:
        if isinstance(s, str):
            raise TypeError("sentences must be token sequences, not str")
        if any(not tok or any(c.isspace() for c in tok) for tok in s):
            raise ValueError("sentences: tokens must be non-empty and hold no whitespace")
        lines.append(" ".join(s))
    cmd = [str(binary), "-o", str(order), "-S", memory, "-T", tempfile.gettempdir()]
    if discount_fallback:
        cmd.append("--discount_fallback")
    proc = subprocess.run(
        cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, encoding="utf-8", timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lmplz failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return LmplzOutput(proc.stdout, parse_lmplz_statistics(proc.stderr), proc.stderr)


_STAT_RE = re.compile(r"^(\d+) \S+ D1=(\S+) D2=(\S+) D3\+=(\S+)$")


def parse_lmplz_statistics(log: str) -> dict[int, tuple[float, float, float]]:
    """Order -> discounts from the lines ``n COUNT D1=.. D2=.. D3+=..`` lmplz writes to stderr."""
    out: dict[int, tuple[float, float, float]] = {}
    for line in log.splitlines():
        m = _STAT_RE.match(line.strip())
        if m:
            out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    return out


class DictKneserNey:
    """Modified Kneser–Ney with Python dicts, one n-gram at a time: the reference when lmplz is absent.

    The same estimator as lmplz and :class:`shiyan.text.NGramLM` (adjusted counts, three discounts per
    order from count-of-counts, interpolation down to the uniform distribution over the vocabulary
    without ``<s>``), written straight from the formulas with tuple keys, so it shares no code with the
    vectorised version. Slow (seconds per 100k tokens): meant for checks and as a benchmark baseline.

    Args:
        sentences: token sequences (each padded with ``<s>``/``</s>``).
        order: N >= 1.
        fallback: discounts for an order whose count-of-counts leave them undefined.
    """

    def __init__(self, sentences: Iterable[Sequence[str]], order: int, fallback=(0.5, 1.0, 1.5)):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an integer >= 1; got {order!r}")
        self.order = order
        raw: list[Counter] = [Counter() for _ in range(order + 1)]
        for s in sentences:
            padded = ("<s>", *s, "</s>")
            for n in range(1, order + 1):
                for i in range(len(padded) - n + 1):
                    raw[n][padded[i : i + n]] += 1
        left: list[Counter] = [Counter() for _ in range(order + 1)]  # number of distinct left neighbours
        for n in range(2, order + 1):
            for gram in raw[n]:
                left[n - 1][gram[1:]] += 1
        self.adjusted: list[dict] = [{}]
        for n in range(1, order + 1):
            top = n == order
            self.adjusted.append({g: (c if top or g[0] == "<s>" else left[n][g]) for g, c in raw[n].items()})
        self.adjusted[1].pop(("<s>",), None)
        self.adjusted[1].setdefault(("<unk>",), 0)
        self.discounts = [(0.0, 0.0, 0.0)]
        for n in range(1, order + 1):
            t = Counter(a for a in self.adjusted[n].values() if a > 0)
            d = None
            if t[1] and t[2] and t[3]:
                y = t[1] / (t[1] + 2 * t[2])
                d = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
                if any(not 0 <= x <= k for k, x in zip((1, 2, 3), d)):
                    d = None
            self.discounts.append(d if d is not None else tuple(fallback))
        self.denominator: list[dict] = [{} for _ in range(order + 1)]
        self.left_over: list[dict] = [{} for _ in range(order + 1)]
        for n in range(1, order + 1):
            den, over = self.denominator[n], self.left_over[n]
            for g, a in self.adjusted[n].items():
                den[g[:-1]] = den.get(g[:-1], 0) + a
                over[g[:-1]] = over.get(g[:-1], 0.0) + self._d(n, a)
        self.n_words = len(self.adjusted[1])  # |V| - 1: every unigram but <s>, <unk> included

    def _d(self, n: int, a: int) -> float:
        return 0.0 if a == 0 else self.discounts[n][min(a, 3) - 1]

    def prob(self, word: str, context: Sequence[str]) -> float:
        """$p(w \\mid h)$ with $h$ cut to the last N - 1 tokens; unknown words are read as ``<unk>``."""
        if (word,) not in self.adjusted[1]:
            word = "<unk>"
        h = tuple(c if c == "<s>" or (c,) in self.adjusted[1] else "<unk>" for c in context)
        h = h[max(0, len(h) - self.order + 1) :] if self.order > 1 else ()
        p = 1.0 / self.n_words
        for n in range(1, len(h) + 2):
            ctx = h[len(h) - n + 1 :]
            den = self.denominator[n].get(ctx, 0)
            if den == 0:
                continue
            a = self.adjusted[n].get((*ctx, word), 0)
            p = (a - self._d(n, a)) / den + self.left_over[n][ctx] / den * p
        return p

    def sentence_log10(self, sentence: Sequence[str]) -> float:
        """$\\log_{10} p(w_1 \\dots w_m \\texttt{</s>} \\mid \\texttt{<s>})$."""
        padded = ["<s>", *sentence, "</s>"]
        return sum(math.log10(self.prob(padded[i], padded[:i])) for i in range(1, len(padded)))


__all__ = [
    "BUILD_SCRIPT",
    "DictKneserNey",
    "LmplzOutput",
    "find_lmplz",
    "lmplz_missing_reason",
    "lmplz_search_path",
    "parse_lmplz_statistics",
    "run_lmplz",
]
