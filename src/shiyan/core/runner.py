"""Run a topic (or its benchmark) and record it in the store, with full provenance."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import platform
import shutil
import subprocess
import time
import traceback
import uuid
from pathlib import Path

from shiyan.core.config import TopicConfig, apply_overrides
from shiyan.core.context import RunContext
from shiyan.core.device import describe_device, select_device
from shiyan.core.result import Result
from shiyan.core.seeding import seed_everything
from shiyan.core.store import RunRecord, Store
from shiyan.core.topic import Topic


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@functools.cache
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("shiyan", "torch", "numpy", "scipy", "scikit-learn", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_config(topic: Topic, profile: str = "quick", seed: int | None = None, overrides=()) -> TopicConfig:
    cfg = topic.config_cls.profile(profile)
    if seed is not None:
        cfg = cfg.replace(seed=seed)
    if overrides:
        cfg = apply_overrides(cfg, list(overrides) if not isinstance(overrides, dict) else overrides)
    return cfg


def execute(
    topic: Topic,
    cfg: TopicConfig,
    store: Store,
    *,
    profile: str,
    kind: str = "run",
    device: str = "auto",
    show_progress: bool = False,
    reuse: bool = False,
) -> RunRecord:
    """Run ``topic`` (``kind="run"``) or its benchmark (``kind="bench"``) and record it.

    With ``reuse=True`` a finished record with the same topic, profile, config and code is
    returned instead of running again. An exception inside the topic is recorded as
    ``status="error"`` with its traceback (and returned), never raised.
    """
    if kind not in ("run", "bench"):
        raise ValueError(f"kind must be 'run' or 'bench'; got {kind!r}")
    if kind == "bench" and topic.bench is None:
        raise ValueError(f"topic {topic.slug!r} has no benchmark")
    code_hash = topic.code_digest()
    config_hash = cfg.digest()
    if reuse:
        found = store.find_reusable(topic.slug, kind, profile, config_hash, code_hash)
        if found is not None:
            return found
    run_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{topic.slug}-{uuid.uuid4().hex[:8]}"
    staging = store.new_staging(run_id)
    dev = select_device(device)
    ctx = RunContext(
        seed=cfg.seed,
        profile=profile,
        out_dir=staging,
        figure_prefix=f"figures/{run_id}/",
        device=dev,
        show_progress=show_progress,
    )
    started, t0 = _now(), time.perf_counter()
    error = None
    result = Result()
    try:
        seed_everything(cfg.seed)
        if kind == "run":
            result = topic.run(cfg, ctx)
            if not isinstance(result, Result):
                raise TypeError(f"{topic.slug}.run() returned {type(result).__name__}, not Result")
        else:
            result = Result(bench=list(topic.bench(cfg, ctx)))
    except Exception:  # recorded, not raised: one topic's failure never stops the rest
        error = traceback.format_exc()
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    seconds = time.perf_counter() - t0
    figures = result.figures or ctx._figures
    if error is not None:
        status = "error"
    else:
        status = "passed" if result.passed else "failed"
    record = RunRecord(
        run_id=run_id,
        kind=kind,
        topic=topic.slug,
        profile=profile,
        seed=cfg.seed,
        config=cfg.to_dict(),
        config_hash=config_hash,
        code_hash=code_hash,
        git_commit=git_commit(),
        versions=package_versions(),
        device=describe_device(dev),
        started=started,
        ended=_now(),
        seconds=seconds,
        status=status,
        metrics=[m.to_dict() for m in result.metrics],
        claims=[c.to_dict() for c in result.claims],
        tables=[t.to_dict() for t in result.tables],
        figures=[f.to_dict() for f in figures] if error is None else [],
        bench=[b.to_dict() for b in result.bench],
        error=error,
    )
    store.add(record, staging)
    return record
