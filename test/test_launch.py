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
    assert arguments == {"config", "bag", "rate", "use_sim_time", "rviz", "namespace", "map_frame", "pose_source",
                         "pose_type", "color_topic", "depth_topic", "camera_info_topic", "labels_topic", "pose_topic"}


def test_the_remapped_defaults_are_the_nodes_input_topics_and_every_argument_is_documented():
    """Read without launch_ros (absent in the pip route): the file's topic table and its arguments."""
    import ast
    import re

    from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS

    source = LAUNCH_FILE.read_text()
    table = next(node for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "INPUT_TOPICS")
    topics = ast.literal_eval(table.value)
    assert topics == {f"{name}_topic": getattr(DEFAULT_TOPICS, name)
                      for name in ("color", "depth", "camera_info", "labels", "pose")}
    names = set(re.findall(r'DeclareLaunchArgument\("(\w+)"', source)) | set(topics)
    bringup = (LAUNCH_FILE.parent.parent / "docs" / "bringup.md").read_text()
    assert [name for name in sorted(names) if f"{name}:=" not in bringup and f"`{name}`" not in bringup] == []
