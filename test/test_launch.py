"""The launch file builds a LaunchDescription wherever launch_ros is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "mapping.launch.py"


def test_launch_description_declares_the_documented_arguments():
    pytest.importorskip("launch_ros", reason="launch_ros is only present in a ROS 2 installation")
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location("mapping_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert arguments == {"config", "bag", "rate", "use_sim_time", "rviz"}
