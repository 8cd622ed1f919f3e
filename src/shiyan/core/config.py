"""Typed, frozen configuration dataclasses with profiles.

Every topic declares ``Config(TopicConfig)``: a frozen dataclass whose fields carry a one-line
docstring directly under them (attribute docstrings, read with :func:`field_docs`). Three
profiles exist for every config:

* ``quick``   -- seconds; used by the tests and CI;
* ``default`` -- about a minute on 2 CPU cores; used by ``shiyan reproduce``;
* ``full``    -- paper-like scale (GPU when present).

``TopicConfig.quick()`` and ``full()`` default to ``default()`` (the class defaults) and are
overridden by topics whose scale differs. Command-line overrides (``--set key=value``) are
parsed against the field's annotation by :func:`apply_overrides`, which names the field and
its type on error.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import textwrap
import types
import typing
from typing import Any, Literal, get_args, get_origin

PROFILES: tuple[str, ...] = ("quick", "default", "full")


class ConfigError(ValueError):
    """A configuration value or override is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """Base class of every topic configuration."""

    seed: int = 0
    """Seed of every random generator the run creates."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = _type_hints(type(self))[f.name]
            if not _matches(value, hint):
                raise ConfigError(f"{type(self).__qualname__}.{f.name} = {value!r} is not of type {_type_name(hint)}")
        self.validate()

    def validate(self) -> None:
        """Range checks; subclasses raise :class:`ConfigError` naming the field."""

    @classmethod
    def quick(cls) -> TopicConfig:
        return cls()

    @classmethod
    def default(cls) -> TopicConfig:
        return cls()

    @classmethod
    def full(cls) -> TopicConfig:
        return cls.default()

    @classmethod
    def profile(cls, name: str) -> TopicConfig:
        if name not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}; got {name!r}")
        return getattr(cls, name)()

    def replace(self, **changes: Any) -> TopicConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def digest(self) -> str:
        """Stable hash of the configuration (used to reuse finished runs)."""
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(hint))
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if hint is type(None):
        return value is None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring written under each dataclass field, for ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        stmts = body.body
        for prev, nxt in zip(stmts, stmts[1:]):
            if (
                isinstance(prev, ast.AnnAssign)
                and isinstance(prev.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[prev.target.id] = " ".join(nxt.value.value.split())
    return docs


def parse_value(text: str, hint: Any, name: str) -> Any:
    """Parse ``text`` into a value of type ``hint``; raise :class:`ConfigError` naming ``name``."""
    origin = get_origin(hint)
    expected = _type_name(hint)
    try:
        if hint is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            value = float(text)
            return value
        if hint is str:
            return text
        if origin is Literal:
            for option in get_args(hint):
                if str(option) == text:
                    return option
            raise ValueError(text)
        if origin in (typing.Union, types.UnionType):
            args = get_args(hint)
            if type(None) in args and text.strip().lower() in ("none", "null", ""):
                return None
            for a in args:
                if a is type(None):
                    continue
                try:
                    return parse_value(text, a, name)
                except ConfigError:
                    continue
            raise ValueError(text)
        if origin is tuple:
            args = get_args(hint)
            parts = [p for p in text.strip().strip("()[]").split(",") if p.strip()]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(parse_value(p.strip(), args[0], name) for p in parts)
            if len(parts) != len(args):
                raise ValueError(text)
            return tuple(parse_value(p.strip(), a, name) for p, a in zip(parts, args))
    except (ValueError, TypeError):
        raise ConfigError(f"field {name!r} expects {expected}; cannot parse {text!r}") from None
    raise ConfigError(f"field {name!r} has type {expected}, which --set cannot parse")


def apply_overrides(cfg: TopicConfig, overrides: dict[str, str] | list[str]) -> TopicConfig:
    """Return ``cfg`` with ``key=value`` overrides applied, each parsed against its field type."""
    if isinstance(overrides, list):
        pairs: dict[str, str] = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set expects key=value; got {item!r}")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value
        overrides = pairs
    hints = _type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in names:
            import difflib

            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            fields = ", ".join(f"{n}: {_type_name(hints[n])}" for n in names)
            raise ConfigError(f"unknown field {key!r} for {type(cfg).__qualname__}{hint} (fields: {fields})")
        changes[key] = parse_value(text, hints[key], key)
    try:
        return dataclasses.replace(cfg, **changes)
    except ConfigError:
        raise


def describe(cfg_cls: type[TopicConfig]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, doc) for every field; used by ``shiyan show`` and the tests."""
    docs = field_docs(cfg_cls)
    hints = _type_hints(cfg_cls)
    default = cfg_cls.default()
    return [
        (f.name, _type_name(hints[f.name]), getattr(default, f.name), docs.get(f.name, ""))
        for f in dataclasses.fields(cfg_cls)
    ]
