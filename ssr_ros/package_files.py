"""Locate the package's data files (config/, models/) in a source checkout or a ROS install."""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
"""The repository root of a source checkout (holds config/ and models/)."""


def find_package_file(directory: str, relative: str) -> Path | None:
    """``<checkout>/<directory>/<relative>`` if it exists, else the same file under the ROS share
    directory (``share/ssr_ros/<directory>``) of an installed package, else None."""
    candidate = SOURCE_ROOT / directory / relative
    if candidate.exists():
        return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("ssr_ros")) / directory / relative
        if shared.exists():
            return shared
    except Exception:  # noqa: BLE001 - ament index absent or package not installed
        pass
    return None
