"""Posts: ``docs/posts/<slug>.<lang>.md``, one per topic and language.

Each file starts with YAML front matter holding exactly ``slug`` and ``lang``; the rest is the
Markdown body. The title, date, category and summary live in the topic's ``META``. Everything
here raises :class:`PostError` naming the offending file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

LANGS: tuple[str, ...] = ("zh", "en")
_NAME = re.compile(r"^(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<lang>[a-z]+)\.md$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(?P<yaml>.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)


class PostError(ValueError):
    """A post file is missing, malformed, or does not match its topic."""


@dataclasses.dataclass(frozen=True)
class Post:
    """One validated post file."""

    slug: str
    lang: str
    path: Path
    body: str
    body_line: int = 1
    """Line number of the body's first line in the file (for error messages)."""


def default_posts_dir() -> Path:
    """``$SHIYAN_POSTS_DIR``, else the repository's ``docs/posts`` (found from this source file),
    else ``./docs/posts``."""
    env = os.environ.get("SHIYAN_POSTS_DIR")
    if env:
        return Path(env).resolve()
    # src/shiyan/site/posts.py -> parents[3] is the repository root of a source checkout.
    repo_posts = Path(__file__).resolve().parents[3] / "docs" / "posts"
    if repo_posts.is_dir():
        return repo_posts
    return Path("docs/posts").resolve()


def parse_post(path: Path, text: str | None = None) -> Post:
    """Read and validate one post file; the slug and language come from its name."""
    path = Path(path)
    m = _NAME.match(path.name)
    if m is None:
        raise PostError(f"{path}: a post file must be named <slug>.<lang>.md (lang zh or en)")
    if m["lang"] not in LANGS:
        raise PostError(f"{path}: language {m['lang']!r} in the file name must be one of {', '.join(LANGS)}")
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PostError(f"{path}: cannot read the post ({e})") from e
    text = text.lstrip("\ufeff")
    front = _FRONT.match(text)
    if front is None:
        raise PostError(f"{path}: the post must start with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(front["yaml"])
    except yaml.YAMLError as e:
        raise PostError(f"{path}: the front matter is not valid YAML ({e})") from e
    if not isinstance(meta, dict):
        raise PostError(f"{path}: the front matter must be a mapping with keys slug and lang")
    keys = set(map(str, meta))
    if keys != {"slug", "lang"}:
        missing, extra = sorted({"slug", "lang"} - keys), sorted(keys - {"slug", "lang"})
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise PostError(
            f"{path}: the front matter must hold exactly the keys slug and lang ({'; '.join(parts)}); "
            "title, date, category and summary come from the topic's META"
        )
    if meta["lang"] not in LANGS:
        raise PostError(f"{path}: lang must be one of {', '.join(LANGS)}; got {meta['lang']!r}")
    if meta["slug"] != m["slug"]:
        raise PostError(f"{path}: front matter slug {meta['slug']!r} does not match the file name ({m['slug']!r})")
    if meta["lang"] != m["lang"]:
        raise PostError(f"{path}: front matter lang {meta['lang']!r} does not match the file name ({m['lang']!r})")
    body = text[front.end() :]
    if not body.strip():
        raise PostError(f"{path}: the post has no body")
    return Post(slug=m["slug"], lang=m["lang"], path=path, body=body, body_line=text[: front.end()].count("\n") + 1)


def read_post(slug: str, lang: str, posts_dir: str | os.PathLike | None = None) -> str:
    """The Markdown body (front matter removed) of ``<posts_dir>/<slug>.<lang>.md``."""
    if lang not in LANGS:
        raise PostError(f"lang must be one of {', '.join(LANGS)}; got {lang!r}")
    root = Path(posts_dir) if posts_dir is not None else default_posts_dir()
    path = root / f"{slug}.{lang}.md"
    if not path.is_file():
        raise PostError(f"{path}: no such post (topic {slug!r}, language {lang!r})")
    return parse_post(path).body


def collect_posts(posts_dir: Path, slugs: Iterable[str], *, require_all: bool = True) -> dict[str, dict[str, Post]]:
    """Validate every ``*.md`` file of ``posts_dir`` against the known ``slugs``.

    Returns ``slug -> lang -> Post``. A file for an unknown slug, a malformed file or a topic with
    only one of its two languages raises :class:`PostError`; with ``require_all`` a topic with no
    post at all does too (otherwise it is left out of the result).
    """
    known = list(slugs)
    posts: dict[str, dict[str, Post]] = {}
    if posts_dir.is_dir():
        for path in sorted(posts_dir.iterdir()):
            if path.name.startswith(".") or path.suffix != ".md":
                continue
            post = parse_post(path)
            if post.slug not in known:
                raise PostError(f"{path}: no topic has the slug {post.slug!r} (known: {', '.join(sorted(known))})")
            posts.setdefault(post.slug, {})[post.lang] = post
    elif require_all and known:
        raise PostError(f"{posts_dir}: the posts folder does not exist")
    for slug in known:
        have = posts.get(slug, {})
        missing = [posts_dir / f"{slug}.{lang}.md" for lang in LANGS if lang not in have]
        if have and missing:
            raise PostError(f"{missing[0]}: missing translation of topic {slug!r} (every post needs zh and en)")
        if not have and require_all:
            raise PostError(
                f"{missing[0]}: topic {slug!r} has no post (every topic needs {slug}.zh.md and {slug}.en.md)"
            )
    return posts
