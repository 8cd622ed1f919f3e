"""What a run returns: metrics, claims, tables, figures and benchmark rows.

A :class:`Claim` is a statement about a *measured* value: ``value op threshold``. Its pass/fail
is computed from the value, never stored as a constant. A NaN or infinite value fails.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any, Literal

Op = Literal["<", "<=", ">", ">=", "==", "!="]
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclasses.dataclass(frozen=True)
class Metric:
    """A named measurement with a unit."""

    name: str
    value: float
    unit: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"value": _json_float(self.value)}


@dataclasses.dataclass(frozen=True)
class Claim:
    """``value op threshold`` -- e.g. "max |exact - Monte Carlo| <= 0.01".

    ``text_en``/``text_zh`` state the claim in words; ``value`` is what this run measured.
    For ``op == "=="`` the claim holds when ``|value - threshold| <= tol``.
    """

    name: str
    text_en: str
    value: float
    op: Op
    threshold: float
    unit: str = ""
    text_zh: str = ""
    tol: float = 0.0

    def __post_init__(self) -> None:
        if self.op not in ("<", "<=", ">", ">=", "==", "!="):
            raise ValueError(f"Claim {self.name!r}: op must be one of < <= > >= == !=, got {self.op!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "threshold", float(self.threshold))

    @property
    def passed(self) -> bool:
        v, t = self.value, self.threshold
        if not math.isfinite(v):
            return False
        if self.op == "==":
            return abs(v - t) <= self.tol
        if self.op == "!=":
            return abs(v - t) > self.tol
        return bool(_OPS[self.op](v, t))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value"] = _json_float(self.value)
        d["passed"] = self.passed
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Claim:
        d = {k: v for k, v in d.items() if k != "passed"}
        if d.get("value") is None:
            d["value"] = math.nan
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class Table:
    """A small table for the post (e.g. a comparison across variants)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption_en: str = ""
    caption_zh: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": list(self.columns),
            "rows": [[_json_float(c) if isinstance(c, float) else c for c in r] for r in self.rows],
            "caption_en": self.caption_en,
            "caption_zh": self.caption_zh,
        }


@dataclasses.dataclass(frozen=True)
class FigureRef:
    """A figure written by the run: ``path`` (SVG) and ``png`` are relative to the data dir."""

    name: str
    path: str
    png: str
    caption_en: str = ""
    caption_zh: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class BenchRow:
    """One benchmark comparison: our time vs the reference's, measured in the same process.

    ``ratio = ours / reference`` for times (lower is better for us) unless stated otherwise.
    """

    name: str
    ours: float
    reference: float
    reference_name: str
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ratio"] = _json_float(self.ratio)
        return d


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclasses.dataclass
class Result:
    """What ``run()`` returns. The runner adds provenance (config, seed, versions, timings)."""

    metrics: list[Metric] = dataclasses.field(default_factory=list)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)
    figures: list[FigureRef] = dataclasses.field(default_factory=list)
    bench: list[BenchRow] = dataclasses.field(default_factory=list)

    def metric(self, name: str, value: float, unit: str = "", description: str = "") -> float:
        self.metrics.append(Metric(name, float(value), unit, description))
        return float(value)

    def claim(
        self,
        name: str,
        text_en: str,
        value: float,
        op: Op,
        threshold: float,
        *,
        unit: str = "",
        text_zh: str = "",
        tol: float = 0.0,
    ) -> Claim:
        c = Claim(name, text_en, value, op, threshold, unit, text_zh, tol)
        self.claims.append(c)
        return c

    def table(self, name: str, columns, rows, caption_en: str = "", caption_zh: str = "") -> Table:
        t = Table(name, tuple(columns), tuple(tuple(r) for r in rows), caption_en, caption_zh)
        self.tables.append(t)
        return t

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.claims)
