r"""LaTeX to MathML at build time, offline, with ``latex2mathml``.

``latex2mathml`` raises on some broken input (``\frac{1}{``) but silently passes through other
mistakes: an unknown command comes out as ``<mi>\foo</mi>``, an unbalanced ``{`` is closed for
you, an unknown environment is dropped. :func:`to_mathml` adds checks for these so that a bad
formula fails the build instead of showing garbage.

In the site, ``pymdownx.arithmatex`` (generic mode) marks every ``$...$`` and ``$$...$$`` outside
code as ``<span class="arithmatex">\(...\)</span>`` / ``<div class="arithmatex">\[...\]</div>``;
:func:`convert_html` replaces these marks with MathML.
"""

from __future__ import annotations

import functools
import html
import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert as _latex2mathml

# Environments latex2mathml lays out as tables; ``aligned``/``gathered`` map onto its own names.
_ENVIRONMENTS = frozenset(
    "matrix matrix* pmatrix pmatrix* bmatrix bmatrix* Bmatrix Bmatrix* vmatrix vmatrix* Vmatrix Vmatrix* "
    "array cases smallmatrix split align align* substack".split()
)
_ALIASES = {"aligned": "split", "gathered": "split", "alignat": "align", "alignat*": "align*", "dcases": "cases"}
# Common commands latex2mathml does not know, rewritten to ones it does.
_REWRITES = ((re.compile(r"\\arg(?![A-Za-z])"), r"\\operatorname{arg}"),)
_BEGIN_END = re.compile(r"\\(begin|end)\s*\{([^{}]*)\}")
_LEFTOVER = re.compile(r">[^<]*\\[A-Za-z][^<]*<")
_MARK = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">(?P<body>.*?)</(?P=tag)>',
    re.S,
)


class MathError(ValueError):
    """A formula that cannot be converted to MathML."""

    def __init__(self, formula: str, reason: str):
        self.formula = formula
        self.reason = reason
        super().__init__(f"cannot convert formula {formula!r} to MathML: {reason}")


def _check_braces(tex: str) -> None:
    depth = 0
    i = 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            i += 2  # skip the escaped character (\{, \}, \\)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise MathError(tex, "unbalanced braces: '}' without '{'")
        i += 1
    if depth:
        raise MathError(tex, f"unbalanced braces: {depth} '{{' not closed")


def _normalise_environments(tex: str) -> str:
    stack: list[str] = []

    def repl(m: re.Match) -> str:
        kind, name = m[1], m[2].strip()
        target = _ALIASES.get(name, name)
        if target not in _ENVIRONMENTS:
            raise MathError(tex, f"unsupported environment {name!r}")
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise MathError(tex, f"\\end{{{name}}} does not match the open environment")
        return f"\\{kind}{{{target}}}"

    out = _BEGIN_END.sub(repl, tex)
    if stack:
        raise MathError(tex, f"\\begin{{{stack[-1]}}} is never closed")
    return out


@functools.cache
def to_mathml(tex: str, display: bool = False) -> str:
    """``tex`` (without delimiters) as a ``<math>`` element; raises :class:`MathError`."""
    if not isinstance(tex, str):
        raise TypeError(f"tex must be a str; got {type(tex).__name__}")
    src = tex.strip()
    if not src:
        raise MathError(tex, "empty formula")
    try:
        _check_braces(src)
        src = _normalise_environments(src)
    except MathError as e:
        raise MathError(tex, e.reason) from None
    for pattern, repl in _REWRITES:
        src = pattern.sub(repl, src)
    try:
        out = _latex2mathml(src, display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises many exception types (and sometimes IndexError)
        reason = f"{type(e).__name__}: {e}".rstrip(": ")
        raise MathError(tex, reason) from e
    leftover = _LEFTOVER.search(out)
    if leftover:
        cmd = re.search(r"\\[A-Za-z]+", leftover[0])
        raise MathError(tex, f"unknown command '{cmd[0] if cmd else leftover[0]}'")
    try:
        ET.fromstring(out)
    except ET.ParseError as e:  # e.g. a stray '&' outside a table environment
        raise MathError(tex, f"invalid MathML ({e}); is there an '&' outside an aligned/matrix environment?") from e
    return out


def _strip_delimiters(body: str) -> tuple[str, bool]:
    tex = html.unescape(body).strip()
    for left, right, display in (("\\(", "\\)", False), ("\\[", "\\]", True), ("$$", "$$", True), ("$", "$", False)):
        if tex.startswith(left) and tex.endswith(right) and len(tex) >= len(left) + len(right):
            return tex[len(left) : len(tex) - len(right)], display
    return tex, False


def find_formulas(html_text: str) -> list[tuple[str, bool]]:
    """``(tex, display)`` for every arithmatex mark in ``html_text``."""
    return [_strip_delimiters(m["body"]) for m in _MARK.finditer(html_text)]


def convert_html(html_text: str) -> str:
    """Replace every arithmatex mark in ``html_text`` by MathML (raises :class:`MathError`)."""

    def repl(m: re.Match) -> str:
        tex, display = _strip_delimiters(m["body"])
        math = to_mathml(tex, display)
        if display or m["tag"] == "div":
            return f'<div class="shiyan-math">{math}</div>'
        return math

    return _MARK.sub(repl, html_text)


_INLINE_DOLLAR = re.compile(r"(?<![\\$])\$(?!\s)(?P<tex>(?:[^$\\]|\\.)+?)(?<!\s)\$(?!\$)")


def inline_text_to_html(text: str) -> str:
    """Escape plain ``text`` for HTML, turning ``$...$`` spans into MathML (claim texts, captions)."""
    out, pos = [], 0
    for m in _INLINE_DOLLAR.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(to_mathml(m["tex"], False))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)
