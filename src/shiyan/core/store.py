"""The results store: one SQLite file (stdlib ``sqlite3``, WAL mode) in the data directory.

Data directory: ``$SHIYAN_DATA_DIR`` if set, else ``./results``. Layout::

    results/
      shiyan.sqlite          every run (this module)
      figures/<run_id>/      the figures of one run (SVG + PNG), moved in atomically

Each run is written as one row in one transaction, after its figures are in place, so a run
killed at any moment leaves either a complete record or none. Several processes may write at
once: every write is ``BEGIN IMMEDIATE`` with a generous busy timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,            -- 'run' or 'bench'
    topic       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    config      TEXT NOT NULL,            -- JSON
    config_hash TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    git_commit  TEXT,
    versions    TEXT NOT NULL,            -- JSON: python, shiyan, torch, numpy, ...
    device      TEXT NOT NULL,
    started     TEXT NOT NULL,            -- ISO 8601, UTC
    ended       TEXT NOT NULL,
    seconds     REAL NOT NULL,
    status      TEXT NOT NULL,            -- 'passed', 'failed' (a claim failed), 'error'
    metrics     TEXT NOT NULL,            -- JSON list
    claims      TEXT NOT NULL,            -- JSON list
    tables      TEXT NOT NULL,            -- JSON list
    figures     TEXT NOT NULL,            -- JSON list, paths relative to the data dir
    bench       TEXT NOT NULL,            -- JSON list
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_topic ON runs(topic, kind, ended);
CREATE INDEX IF NOT EXISTS runs_reuse ON runs(topic, kind, profile, config_hash, code_hash);
"""

_JSON_FIELDS = ("config", "versions", "metrics", "claims", "tables", "figures", "bench")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path``, else ``$SHIYAN_DATA_DIR``, else ``./results``."""
    if path is None:
        path = os.environ.get("SHIYAN_DATA_DIR") or "results"
    return Path(path).resolve()


@dataclasses.dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str
    topic: str
    profile: str
    seed: int
    config: dict[str, Any]
    config_hash: str
    code_hash: str
    git_commit: str | None
    versions: dict[str, str]
    device: str
    started: str
    ended: str
    seconds: float
    status: str
    metrics: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    figures: list[dict[str, Any]]
    bench: list[dict[str, Any]]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Store:
    """``Store(data_dir)`` opens (and creates) ``data_dir/shiyan.sqlite``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = data_dir(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "shiyan.sqlite"
        self.figures_dir = self.root / "figures"
        self.staging_dir = self.root / ".staging"
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("PRAGMA synchronous=NORMAL")
            yield con
        finally:
            con.close()

    # -- writing ----------------------------------------------------------------------------
    def new_staging(self, run_id: str) -> Path:
        """A private folder for a run's figures; :meth:`add` moves it into ``figures/``."""
        path = self.staging_dir / run_id
        path.mkdir(parents=True, exist_ok=False)
        return path

    def add(self, record: RunRecord, staging: Path | None = None) -> None:
        """Move the staged figures in place, then insert the record in one transaction."""
        if staging is not None and staging.exists():
            if any(staging.iterdir()):
                self.figures_dir.mkdir(parents=True, exist_ok=True)
                os.replace(staging, self.figures_dir / record.run_id)
            else:
                staging.rmdir()
        row = dataclasses.asdict(record)
        for k in _JSON_FIELDS:
            row[k] = json.dumps(row[k], sort_keys=True, allow_nan=False)
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def clean_orphans(self) -> list[str]:
        """Remove staging folders of killed runs and figure folders without a record."""
        removed = []
        if self.staging_dir.exists():
            for p in self.staging_dir.iterdir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(str(p))
        if self.figures_dir.exists():
            with self._connect() as con:
                known = {r[0] for r in con.execute("SELECT run_id FROM runs")}
            for p in self.figures_dir.iterdir():
                if p.name not in known:
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(str(p))
        return removed

    # -- reading ----------------------------------------------------------------------------
    def _select(self, where: str = "", params: tuple = (), tail: str = "") -> list[RunRecord]:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(f"SELECT * FROM runs {where} {tail}", params).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for k in _JSON_FIELDS:
                d[k] = json.loads(d[k])
            out.append(RunRecord(**d))
        return out

    def runs(self, topic: str | None = None, kind: str | None = None) -> list[RunRecord]:
        clauses, params = [], []
        if topic is not None:
            clauses.append("topic = ?")
            params.append(topic)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, tuple(params), "ORDER BY ended, run_id")

    def latest(self, topic: str, kind: str = "run", profile: str | None = None) -> RunRecord | None:
        """The newest finished record of ``topic`` (errors excluded)."""
        where = "WHERE topic = ? AND kind = ? AND status != 'error'"
        params: tuple = (topic, kind)
        if profile is not None:
            where += " AND profile = ?"
            params += (profile,)
        rows = self._select(where, params, "ORDER BY ended DESC LIMIT 1")
        return rows[0] if rows else None

    def find_reusable(self, topic: str, kind: str, profile: str, config_hash: str, code_hash: str) -> RunRecord | None:
        rows = self._select(
            "WHERE topic = ? AND kind = ? AND profile = ? AND config_hash = ? AND code_hash = ? AND status != 'error'",
            (topic, kind, profile, config_hash, code_hash),
            "ORDER BY ended DESC LIMIT 1",
        )
        return rows[0] if rows else None

    def integrity_ok(self) -> bool:
        with self._connect() as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def count(self) -> int:
        with self._connect() as con:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
