"""Shared test set-up: the real-data directory, and an isolated DDS domain for ROS tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Every test run talks DDS on loopback only, in a domain of its own, so that parallel runs
# (or other ROS 2 processes on the machine) never see each other's topics.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))


def shared_data_dir() -> Path | None:
    """``$SSR_SHARED_DIR`` or ``<repo>/../shared/data``'s parent, if it exists."""
    candidate = Path(os.environ.get("SSR_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return candidate if (candidate / "data").is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    """The real RGB-D sequences (``../shared/data``); skips the test when absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("real sequences not available: ../shared/data is absent (set SSR_SHARED_DIR)")
    return root / "data"
