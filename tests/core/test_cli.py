"""The CLI on the toy topic: run, json, errors, reproduce with reuse, kill-safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shiyan.cli import main
from shiyan.core.store import Store

TESTS = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_json_records_claims(toy_registry, data_dir, capsys):
    code, out, _ = run_cli(capsys, "run", "toy-mean", "--json", "--seed", "3")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == 1
    run = doc["run"]
    assert run["topic"] == "toy-mean" and run["seed"] == 3 and run["status"] == "passed"
    assert run["claims"][0]["passed"] is True and run["claims"][0]["value"] > 0
    fig = run["figures"][0]
    assert (data_dir / fig["path"]).exists() and (data_dir / fig["png"]).exists()
    assert Store(data_dir).latest("toy-mean").run_id == run["run_id"]


def test_same_seed_same_numbers(toy_registry, data_dir, capsys):
    values = []
    for _ in range(2):
        _, out, _ = run_cli(capsys, "run", "toy-mean", "--json")
        values.append(json.loads(out)["run"]["metrics"])
    assert values[0] == values[1]


def test_failed_claim_exits_1(toy_registry, data_dir, capsys):
    code, out, _ = run_cli(capsys, "run", "toy-mean", "--set", "fail_claim=true", "--json")
    assert code == 1
    assert json.loads(out)["run"]["status"] == "failed"


def test_unknown_slug_exits_2_with_suggestions(toy_registry, data_dir, capsys):
    code, _, err = run_cli(capsys, "run", "toy-maen")
    assert code == 2
    assert "unknown topic 'toy-maen'" in err and "toy-mean" in err


def test_bad_set_names_field_and_type(toy_registry, data_dir, capsys):
    code, _, err = run_cli(capsys, "run", "toy-mean", "--set", "n=many")
    assert code == 2 and "'n'" in err and "int" in err
    code, _, err = run_cli(capsys, "run", "toy-mean", "--set", "bogus=1")
    assert code == 2 and "unknown field 'bogus'" in err


def test_list_json_and_pagination(toy_registry, data_dir, capsys):
    code, out, _ = run_cli(capsys, "list", "--json", "--page-size", "1")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == 1 and doc["pages"] == doc["total"] >= 1
    assert len(doc["topics"]) == 1
    keys = {"slug", "title_zh", "title_en", "category", "date", "summary_zh", "summary_en"}
    assert keys <= set(doc["topics"][0])
    dates = []
    for page in range(1, doc["pages"] + 1):
        _, out, _ = run_cli(capsys, "list", "--json", "--page-size", "1", "--page", str(page))
        dates.append(json.loads(out)["topics"][0]["date"])
    assert dates == sorted(dates, reverse=True)
    code, _, err = run_cli(capsys, "list", "--page", "999")
    assert code == 2 and "--page" in err
    code, _, err = run_cli(capsys, "list", "--category", "Cooking")
    assert code == 2 and "--category" in err


def test_reproduce_reuses_finished_runs_and_survives_errors(toy_registry, data_dir, capsys, monkeypatch):
    import shiyan.topics

    toy = [e for e in shiyan.topics.catalog() if e.slug == "toy-mean"]
    monkeypatch.setattr("shiyan.topics.catalog", lambda category=None: toy)
    code, out, _ = run_cli(capsys, "reproduce", "--profile", "quick", "--jobs", "1", "--json")
    first = json.loads(out)
    assert code == 0 and first["passed"] and len(first["runs"]) == 1
    code, out, _ = run_cli(capsys, "reproduce", "--profile", "quick", "--jobs", "1", "--json")
    second = json.loads(out)
    assert second["runs"][0]["run_id"] == first["runs"][0]["run_id"]  # reused, not rerun
    code, out, _ = run_cli(capsys, "reproduce", "--profile", "quick", "--jobs", "1", "--json", "--force")
    assert json.loads(out)["runs"][0]["run_id"] != first["runs"][0]["run_id"]


def test_error_in_topic_is_recorded_not_raised(toy_registry, data_dir, capsys):
    code, out, _ = run_cli(capsys, "run", "toy-mean", "--set", "explode=true", "--json")
    run = json.loads(out)["run"]
    assert code == 1 and run["status"] == "error" and "boom" in run["error"]
    assert run["figures"] == []


def test_bench_json_reports_ratio(toy_registry, data_dir, capsys):
    code, out, _ = run_cli(capsys, "bench", "toy-mean", "--profile", "quick", "--json")
    row = json.loads(out)["benchmarks"][0]["bench"][0]
    assert code == 0 and row["reference_name"] == "numpy.mean" and row["ratio"] > 0


def test_sigkill_mid_run_leaves_no_record_then_reproduce_completes(toy_registry, data_dir, tmp_path):
    env = {**os.environ, "SHIYAN_DATA_DIR": str(data_dir), "SHIYAN_EXTRA_TOPICS": "fixtures.toy_topics"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "shiyan", "run", "toy-mean", "--profile", "quick", "--set", "sleep_s=30"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    staging = data_dir / ".staging"
    deadline = time.time() + 60
    # wait until the figure has been staged, i.e. the run is mid-way
    while time.time() < deadline and not any(staging.glob("*/hist.svg")):
        time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()
    assert any(staging.glob("*/hist.svg")), "run never reached the middle"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = Store(data_dir)
    assert store.runs() == []
    assert not (data_dir / "figures").exists() or not any((data_dir / "figures").iterdir())
    assert store.integrity_ok()
    # reproduce afterwards cleans the leftovers and completes the topic
    script = (
        "import shiyan.topics as T, shiyan.cli as C;"
        "toy = [e for e in T.catalog() if e.slug == 'toy-mean'];"
        "T.catalog = lambda category=None: toy;"
        "raise SystemExit(C.main(['reproduce', '--profile', 'quick', '--jobs', '1']))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = store.runs()
    assert len(runs) == 1 and runs[0].status == "passed"
    assert not any(staging.iterdir())
    assert {p.name for p in (data_dir / "figures").iterdir()} == {runs[0].run_id}
