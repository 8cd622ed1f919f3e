"""One module per article. The registry is built by importing every module in this package.

Modules named in ``$SHIYAN_EXTRA_TOPICS`` (comma-separated import paths) join the registry too.

Importing every topic pulls in torch, scikit-learn, numba, ... so what only needs the feed (``shiyan
list``, ``show``, the site) reads :func:`catalog` instead: each module's ``META = TopicMeta(...)`` is
read from its source without executing it (the module is imported only when its META is not made of
literals). :func:`get_topic` imports just the one module asked for.

A topic module defines ``META`` (:class:`shiyan.core.TopicMeta`), ``Config`` (a
:class:`shiyan.core.TopicConfig`), ``run(cfg, ctx) -> Result`` and optionally
``bench(cfg, ctx) -> list[BenchRow]``. Topics import the library, never another topic.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import difflib
import functools
import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path

from shiyan.core.topic import Topic, TopicMeta, load_topic_module


class UnknownTopicError(KeyError):
    """No topic has this slug; ``suggestions`` lists the closest slugs."""

    def __init__(self, slug: str, suggestions: list[str]):
        self.slug = slug
        self.suggestions = suggestions
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown topic {slug!r}{hint}")

    def __str__(self) -> str:
        return self.args[0]


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """What the feed needs about a topic, known without running its module."""

    meta: TopicMeta
    module: str
    """Import path of the topic module."""
    has_bench: bool
    """Whether the module defines ``bench``."""

    @property
    def slug(self) -> str:
        return self.meta.slug


def _module_names() -> list[str]:
    names = [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    # Topics outside the package (a user's own, or test fixtures): comma-separated module names.
    names += [n.strip() for n in os.environ.get("SHIYAN_EXTRA_TOPICS", "").split(",") if n.strip()]
    return names


def _literal(node: ast.expr):
    """A literal, or ``dt.date(y, m, d)`` / ``datetime.date(...)`` / ``date(...)`` with literal arguments."""
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "date":
            return dt.date(*(ast.literal_eval(a) for a in node.args))
    return ast.literal_eval(node)


def _static_entry(module_name: str) -> CatalogEntry | None:
    """Read ``META = TopicMeta(...)`` and ``def bench`` from the module's source; None when it is not literal."""
    try:
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        meta_call, has_bench = None, False
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "bench":
                has_bench = True
            targets = node.targets if isinstance(node, ast.Assign) else []
            if [getattr(t, "id", None) for t in targets] == ["META"] and isinstance(node.value, ast.Call):
                meta_call = node.value
        if meta_call is None or meta_call.args or any(kw.arg is None for kw in meta_call.keywords):
            return None
        fields = {kw.arg: _literal(kw.value) for kw in meta_call.keywords}
        if "implements" in fields:
            fields["implements"] = tuple(fields["implements"])
        return CatalogEntry(TopicMeta(**fields), module_name, has_bench)
    except (ValueError, TypeError, SyntaxError, AttributeError, ImportError):
        return None


def _imported_entry(module_name: str) -> CatalogEntry:
    topic = _load(module_name)
    return CatalogEntry(topic.meta, module_name, topic.bench is not None)


def _sorted_unique(entries: list, module_of) -> list:
    seen: dict[str, str] = {}
    for e in entries:
        if e.slug in seen:
            raise ValueError(f"slug {e.slug!r} is used by {seen[e.slug]} and {module_of(e)}")
        seen[e.slug] = module_of(e)
    return sorted(entries, key=lambda e: (e.meta.date, e.slug), reverse=True)


@functools.cache
def _catalog() -> tuple[CatalogEntry, ...]:
    entries = [_static_entry(name) or _imported_entry(name) for name in _module_names()]
    return tuple(_sorted_unique(entries, lambda e: e.module))


def catalog(category: str | None = None) -> list[CatalogEntry]:
    """Every topic's META, newest first, read without importing the topic modules where possible."""
    return [e for e in _catalog() if category is None or e.meta.category == category]


@functools.cache
def _load(module_name: str) -> Topic:
    return load_topic_module(importlib.import_module(module_name))


@functools.cache
def registry() -> dict[str, Topic]:
    """slug -> Topic, for every module in this package (and ``$SHIYAN_EXTRA_TOPICS``), newest first."""
    topics = _sorted_unique([_load(name) for name in _module_names()], lambda t: t.module.__name__)
    return {t.slug: t for t in topics}


def get_topic(slug: str) -> Topic:
    """The topic with this slug; only its own module is imported."""
    by_slug = {e.slug: e for e in _catalog()}
    if slug not in by_slug:
        raise UnknownTopicError(slug, difflib.get_close_matches(slug, list(by_slug), n=3, cutoff=0.4))
    topic = _load(by_slug[slug].module)
    if topic.slug != slug:  # the source said one slug and the module another: trust the module, loudly
        raise ValueError(f"{by_slug[slug].module}: META.slug is {topic.slug!r} once imported, {slug!r} in its source")
    return topic


def all_topics(category: str | None = None) -> list[Topic]:
    return [t for t in registry().values() if category is None or t.meta.category == category]


def clear_caches() -> None:
    """Forget what was read and imported (after ``$SHIYAN_EXTRA_TOPICS`` changes)."""
    for cached in (_catalog, _load, registry):
        cached.cache_clear()
