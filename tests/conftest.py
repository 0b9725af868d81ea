"""Shared fixtures: the search path onto ../shared, real images, small sizes, one torch thread pool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()
os.environ.setdefault("STYLIZER_PATH", f"{SHARED / 'weights'}{os.pathsep}{SHARED / 'images'}")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need the shared weights and images beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def content_path(shared: Path) -> Path:
    return shared / "images" / "content" / "chicago.jpg"


@pytest.fixture(scope="session")
def style_path(shared: Path) -> Path:
    return shared / "images" / "styles" / "starry_night.jpg"


@pytest.fixture(scope="session")
def video_path(shared: Path) -> Path:
    return shared / "video" / "cutBunny.mp4"


@pytest.fixture()
def store(tmp_path: Path):
    """A weight store on the shared search path with a private, empty cache and no downloads."""
    from models.registry import default_store

    s = default_store()
    s.cache_dir = tmp_path / "cache"
    s.allow_download = False
    return s
