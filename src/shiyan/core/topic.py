"""The topic contract: ``META``, ``Config`` and ``run(cfg, ctx) -> Result`` in one module per
article under :mod:`shiyan.topics`; an optional ``bench(cfg, ctx) -> list[BenchRow]``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from shiyan.core.config import TopicConfig
from shiyan.core.context import RunContext
from shiyan.core.result import BenchRow, Result

CATEGORIES: tuple[str, ...] = ("Math", "ML", "DL", "LLM", "RL", "NLP", "CV")
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class TopicMeta:
    """What the feed shows about a topic."""

    slug: str
    category: str
    date: dt.date
    title_en: str
    title_zh: str
    summary_en: str
    summary_zh: str
    implements: tuple[str, ...] = ()
    """Public modules that implement the method (linked from the post, hashed for reuse)."""

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug):
            raise ValueError(f"TopicMeta.slug {self.slug!r} must be lowercase words joined by '-'")
        if self.category not in CATEGORIES:
            raise ValueError(f"TopicMeta.category {self.category!r} must be one of {', '.join(CATEGORIES)}")
        if not isinstance(self.date, dt.date):
            raise ValueError(f"TopicMeta.date must be a datetime.date; got {self.date!r}")
        for name in ("title_en", "title_zh", "summary_en", "summary_zh"):
            if not getattr(self, name).strip():
                raise ValueError(f"TopicMeta.{name} of {self.slug!r} is empty")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["date"] = self.date.isoformat()
        d["implements"] = list(self.implements)
        return d


@dataclasses.dataclass(frozen=True)
class Topic:
    """A loaded topic module."""

    meta: TopicMeta
    config_cls: type[TopicConfig]
    run: Callable[[TopicConfig, RunContext], Result]
    bench: Callable[[TopicConfig, RunContext], list[BenchRow]] | None
    module: ModuleType

    @property
    def slug(self) -> str:
        return self.meta.slug

    def code_digest(self) -> str:
        """Hash of the topic module and of the modules it implements: a change to any of them
        invalidates earlier runs for ``reproduce``'s reuse."""
        h = hashlib.sha256()
        for path in sorted(self.source_files()):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()[:16]

    def source_files(self) -> set[Path]:
        files = {Path(self.module.__file__)}
        for name in self.meta.implements:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                raise ValueError(f"{self.slug}: META.implements names {name!r}, which does not import")
            origin = Path(spec.origin)
            if origin.name == "__init__.py":
                files |= set(origin.parent.rglob("*.py"))
            else:
                files.add(origin)
        return files


def load_topic_module(module: ModuleType) -> Topic:
    for attr in ("META", "Config", "run"):
        if not hasattr(module, attr):
            raise TypeError(f"topic module {module.__name__} lacks {attr}")
    if not (isinstance(module.Config, type) and issubclass(module.Config, TopicConfig)):
        raise TypeError(f"{module.__name__}.Config must subclass shiyan.core.TopicConfig")
    return Topic(module.META, module.Config, module.run, getattr(module, "bench", None), module)
