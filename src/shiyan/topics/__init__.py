"""One module per article. The registry is built by importing every module in this package.

Modules named in ``$SHIYAN_EXTRA_TOPICS`` (comma-separated import paths) join the registry too.

A topic module defines ``META`` (:class:`shiyan.core.TopicMeta`), ``Config`` (a
:class:`shiyan.core.TopicConfig`), ``run(cfg, ctx) -> Result`` and optionally
``bench(cfg, ctx) -> list[BenchRow]``. Topics import the library, never another topic.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import pkgutil

from shiyan.core.topic import Topic, load_topic_module


class UnknownTopicError(KeyError):
    """No topic has this slug; ``suggestions`` lists the closest slugs."""

    def __init__(self, slug: str, suggestions: list[str]):
        self.slug = slug
        self.suggestions = suggestions
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown topic {slug!r}{hint}")

    def __str__(self) -> str:
        return self.args[0]


@functools.cache
def registry() -> dict[str, Topic]:
    """slug -> Topic, for every module in this package, newest first."""
    topics: list[Topic] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        topics.append(load_topic_module(module))
    # Topics outside the package (a user's own, or test fixtures): comma-separated module names.
    for name in filter(None, (n.strip() for n in os.environ.get("SHIYAN_EXTRA_TOPICS", "").split(","))):
        topics.append(load_topic_module(importlib.import_module(name)))
    seen: dict[str, str] = {}
    for t in topics:
        if t.slug in seen:
            raise ValueError(f"slug {t.slug!r} is used by {seen[t.slug]} and {t.module.__name__}")
        seen[t.slug] = t.module.__name__
    topics.sort(key=lambda t: (t.meta.date, t.slug), reverse=True)
    return {t.slug: t for t in topics}


def get_topic(slug: str) -> Topic:
    reg = registry()
    if slug not in reg:
        raise UnknownTopicError(slug, difflib.get_close_matches(slug, list(reg), n=3, cutoff=0.4))
    return reg[slug]


def all_topics(category: str | None = None) -> list[Topic]:
    return [t for t in registry().values() if category is None or t.meta.category == category]
