"""MkDocs hooks used by :func:`shiyan.site.build_site` (loaded by file path from ``mkdocs.yml``).

* ``on_page_content``: replace the placeholder paragraphs left in the staged posts by the HTML
  fragments (results, figures) written next to ``mkdocs.yml`` in ``fragments/``.
* ``on_post_page``: turn the arithmatex marks into MathML on every page (posts and the excerpts
  in the feed), so no JavaScript or CDN is needed to show equations.
"""

from __future__ import annotations

import re
from pathlib import Path

from shiyan.site.mathml import MathError, convert_html
from shiyan.site.results import ROOT

PLACEHOLDER = re.compile(r"<p>(SHIYANFRAG-[A-Za-z0-9-]+)</p>")


class HookError(RuntimeError):
    """A placeholder without its fragment or a formula that fails on a rendered page."""


def _root(url: str) -> str:
    """The relative path from a page's URL (``posts/slug/``) to the site root (``../../``)."""
    return "../" * url.count("/") if url else ""


def fill_placeholders(html_text: str, fragments: Path, url: str) -> str:
    def repl(m: re.Match) -> str:
        path = fragments / f"{m[1]}.html"
        if not path.is_file():
            raise HookError(f"page {url!r}: no fragment {m[1]}")
        return path.read_text(encoding="utf-8")

    return PLACEHOLDER.sub(repl, html_text).replace(ROOT, _root(url))


def on_page_content(html, page, config, files):  # noqa: ANN001 -- the MkDocs hook signature
    fragments = Path(config.config_file_path).parent / "fragments"
    return fill_placeholders(html, fragments, page.url)


def on_post_page(output, page, config):  # noqa: ANN001
    try:
        return convert_html(output)
    except MathError as e:
        raise HookError(f"{page.file.src_path}: {e}") from e
