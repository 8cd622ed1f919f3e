from __future__ import annotations

import multiprocessing as mp

from shiyan.core.store import RunRecord, Store


def make_record(i: int, worker: int = 0, topic: str = "t") -> RunRecord:
    return RunRecord(
        run_id=f"w{worker}-{i:04d}",
        kind="run",
        topic=topic,
        profile="quick",
        seed=i,
        config={"seed": i},
        config_hash="c",
        code_hash="k",
        git_commit=None,
        versions={"python": "3"},
        device="cpu",
        started=f"2024-01-01T00:00:{i % 60:02d}",
        ended=f"2024-01-01T00:01:{i % 60:02d}",
        seconds=0.1,
        status="passed",
        metrics=[{"name": "m", "value": float(i), "unit": ""}],
        claims=[],
        tables=[],
        figures=[],
        bench=[],
    )


def _writer(root: str, worker: int, n: int) -> None:
    store = Store(root)
    for i in range(n):
        store.add(make_record(i, worker))


def test_two_processes_write_100_runs_each(tmp_path):
    root = str(tmp_path / "store")
    Store(root)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, w, 100)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = Store(root)
    runs = store.runs()
    assert len(runs) == 200
    assert {r.run_id for r in runs} == {f"w{w}-{i:04d}" for w in range(2) for i in range(100)}
    assert store.integrity_ok()
    assert runs[0].metrics[0]["value"] in (0.0, 1.0) or isinstance(runs[0].metrics[0]["value"], float)


def test_record_roundtrip_latest_and_reuse(tmp_path):
    store = Store(tmp_path)
    a, b = make_record(1), make_record(2)
    store.add(a)
    store.add(b)
    assert store.runs(topic="t") == [a, b]
    assert store.latest("t") == b
    assert store.latest("missing") is None
    assert store.find_reusable("t", "run", "quick", "c", "k") == b
    assert store.find_reusable("t", "run", "quick", "other", "k") is None


def test_staged_figures_move_in_and_orphans_are_cleaned(tmp_path):
    store = Store(tmp_path)
    staging = store.new_staging("r1")
    (staging / "f.svg").write_text("<svg/>")
    rec = make_record(1)
    rec = RunRecord(**{**rec.to_dict(), "run_id": "r1"})
    store.add(rec, staging)
    assert (store.figures_dir / "r1" / "f.svg").exists()
    assert not staging.exists()
    # an interrupted run: staging left behind, and a figure folder with no record
    store.new_staging("dead")
    (store.figures_dir / "ghost").mkdir()
    removed = store.clean_orphans()
    assert len(removed) == 2
    assert (store.figures_dir / "r1").exists()
    assert not (store.figures_dir / "ghost").exists()
