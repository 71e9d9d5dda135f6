"""Fixtures of the data tests: the shared real sequences, when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """``$SSR_SHARED_DIR/data`` or ``<repo>/../shared/data``; None when neither exists."""
    root = os.environ.get("SSR_SHARED_DIR")
    candidates = [Path(root)] if root else []
    candidates.append(REPO.parent / "shared")
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate / "data"
    return None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set SSR_SHARED_DIR to the folder holding data/ (../shared by default)")
    return path
