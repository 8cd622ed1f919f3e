"""LaTeX to MathML: valid formulas give well-formed MathML, bad ones raise naming the formula."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from latex2mathml.converter import convert as latex2mathml

from shiyan.site.mathml import MathError, convert_html, find_formulas, inline_text_to_html, to_mathml

M = "{http://www.w3.org/1998/Math/MathML}"


def _tags(mathml: str) -> set[str]:
    return {el.tag.removeprefix(M) for el in ET.fromstring(mathml).iter()}


@pytest.mark.parametrize(
    ("tex", "must_have"),
    [
        (r"\frac{1}{2}", {"mfrac"}),
        (r"\binom{n}{k} p^k q^{n-k}", {"mfrac", "msup"}),
        (r"\sum_{i=1}^n x_i", {"msubsup"}),
        (r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}", {"mtable", "mtd"}),
        (r"\begin{aligned} a &= b \\ c &= d \end{aligned}", {"mtable"}),
        (r"\hat\theta = \arg\max_\theta \log p(x \mid \theta)", {"mover", "msub"}),
        (r"\mathbf{x}^\top \nabla f", {"msup"}),
        (r"\sqrt{x}", {"msqrt"}),
    ],
)
def test_valid_formulas(tex, must_have):
    out = to_mathml(tex)
    root = ET.fromstring(out)
    assert root.tag == f"{M}math" and root.get("display") == "inline"
    assert must_have <= _tags(out)
    assert "\\" not in "".join(root.itertext())  # no command left unconverted
    assert ET.fromstring(to_mathml(tex, display=True)).get("display") == "block"


def test_latex2mathml_alone_lets_mistakes_through():
    # Why to_mathml validates: the library renders an unknown command as text, closes a missing
    # brace and drops an unknown environment without complaint.
    assert r"<mi>\foo</mi>" in latex2mathml(r"\foo x")
    latex2mathml("x^{2")
    latex2mathml(r"\begin{foo}x\end{foo}")


@pytest.mark.parametrize(
    ("tex", "reason"),
    [
        (r"\frac{1}{", "unbalanced braces"),
        (r"x^{2", "unbalanced braces"),
        (r"a}", "unbalanced braces"),
        (r"\foo x", r"unknown command '\\foo'"),
        (r"\mathbf{x} + \nablaa", r"unknown command '\\nablaa'"),
        (r"\begin{foo} x \end{foo}", "unsupported environment 'foo'"),
        (r"\begin{pmatrix} 1 \end{bmatrix}", "does not match"),
        (r"\begin{pmatrix} 1 ", "never closed"),
        (r"a & b", "invalid MathML"),
        (r"\sqrt", "NoAvailableTokensError"),
        (r"a_", "MissingSuperScriptOrSubscriptError"),
        ("  ", "empty formula"),
    ],
)
def test_bad_formulas_raise(tex, reason):
    with pytest.raises(MathError, match=reason) as info:
        to_mathml(tex)
    assert info.value.formula == tex
    assert repr(tex) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_to_mathml_rejects_non_strings():
    with pytest.raises(TypeError, match="tex must be a str"):
        to_mathml(3)


def test_convert_html_replaces_arithmatex_marks():
    html = (
        '<p>If <span class="arithmatex">\\(x &lt; y\\)</span> then</p>\n'
        '<div class="arithmatex">\\[\\frac{1}{2}\\]</div>\n<pre><code>$a$</code></pre>'
    )
    assert find_formulas(html) == [("x < y", False), (r"\frac{1}{2}", True)]
    out = convert_html(html)
    assert "arithmatex" not in out
    assert out.count("<math") == 2
    assert '<div class="shiyan-math"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in out
    assert "<mo>&#x0003C;</mo>" in out  # the escaped < was unescaped before converting
    assert "<pre><code>$a$</code></pre>" in out
    with pytest.raises(MathError, match="foo"):
        convert_html('<span class="arithmatex">\\(\\foo\\)</span>')


def test_inline_text_to_html():
    out = inline_text_to_html("error $\\|p - q\\|_\\infty$ <= 0.01 & costs $5")
    assert out.startswith("error <math")
    assert out.endswith("</math> &lt;= 0.01 &amp; costs $5")
    assert inline_text_to_html("no math <b>") == "no math &lt;b&gt;"
