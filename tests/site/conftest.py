"""Session fixtures for the site tests (data in ``site_fixtures.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_fixtures import TOPICS, make_store, write_posts

from shiyan.site import build_site


@pytest.fixture(scope="session")
def fixture_project(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("site-project")
    posts = write_posts(root / "posts")
    make_store(root / "data")
    return {"root": root, "posts": posts, "data": root / "data"}


@pytest.fixture(scope="session")
def built_site(fixture_project) -> Path:
    """One strict build shared by the build and browser tests (page_size=2: two feed pages)."""
    return build_site(
        fixture_project["root"] / "site",
        data_dir=fixture_project["data"],
        posts_dir=fixture_project["posts"],
        topics=TOPICS,
        page_size=2,
    )
