"""Fixtures shared by the topic tests."""

from __future__ import annotations

import pytest

from shiyan.core import Store


@pytest.fixture(scope="module")
def store(request, tmp_path_factory) -> Store:
    """One result store per test module, so a module's quick run and bench share records but modules do not."""
    return Store(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-results"))
