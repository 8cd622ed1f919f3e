"""The static feed of shiyan: mkdocs-material with its blog, search and RSS, built offline.

``build_site(out_dir)`` stages a MkDocs project from the topics' META, the bilingual posts in
``docs/posts/<slug>.<lang>.md`` and the latest records of the results store, then builds it;
``serve_site(out_dir)`` serves the result on 127.0.0.1; ``read_post(slug, lang)`` returns a post's
Markdown body for the terminal.
"""

from shiyan.site.build import RSS_FEED, SiteError, build_site
from shiyan.site.mathml import MathError, to_mathml
from shiyan.site.posts import LANGS, PostError, default_posts_dir, read_post
from shiyan.site.serve import make_server, serve_site

__all__ = [
    "LANGS",
    "RSS_FEED",
    "MathError",
    "PostError",
    "SiteError",
    "build_site",
    "default_posts_dir",
    "make_server",
    "read_post",
    "serve_site",
    "to_mathml",
]
