from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Two pytest-xdist workers share two cores: one torch thread each avoids oversubscription.
torch.set_num_threads(1)

# Property tests: no per-example deadline (CI machines are shared) and a fixed example stream.
settings.register_profile("shiyan", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("shiyan")

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def toy_registry(monkeypatch):
    """The registry with the toy topic of tests/fixtures/toy_topics.py added."""
    from shiyan.topics import clear_caches, registry

    monkeypatch.setenv("SHIYAN_EXTRA_TOPICS", "fixtures.toy_topics")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    clear_caches()
    yield registry()
    clear_caches()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "results"
    monkeypatch.setenv("SHIYAN_DATA_DIR", str(d))
    return d
