"""ROS parameters declared from config dataclasses: descriptors, overrides, validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import rclpy
from rclpy.parameter import Parameter

from ssr_ros.config import param
from ssr_ros.errors import ConfigError
from ssr_ros.ros.parameters import declare_config, parameter_table, read_config


@dataclass
class Inner:
    voxel_size: float = param(0.05, "voxel edge, metres", low=0.01, high=0.5)
    mode: str = param("rgb", "mesh coloring", choices=["rgb", "label"])


@dataclass
class Outer:
    period_s: float = param(1.0, "how often, seconds", low=0.0)
    max_chunks: int = param(4, "per run", low=1, high=64)
    enabled: bool = param(True, "switch")
    inner: Inner = field(default_factory=Inner)


def test_declared_parameters_carry_description_and_range(ros_context):
    node = rclpy.create_node("param_test", context=ros_context)
    try:
        declare_config(node, Outer)
        descriptor = node.describe_parameter("inner.voxel_size")
        assert descriptor.description == "voxel edge, metres"
        assert (descriptor.floating_point_range[0].from_value, descriptor.floating_point_range[0].to_value) == (0.01, 0.5)
        assert node.describe_parameter("max_chunks").integer_range[0].to_value == 64
        assert "one of: rgb, label" in node.describe_parameter("inner.mode").description
        config = read_config(node, Outer)
        assert config == Outer()
    finally:
        node.destroy_node()


def test_overrides_from_launch_or_yaml_are_read_back(ros_context):
    node = rclpy.create_node(
        "param_test2", context=ros_context,
        parameter_overrides=[Parameter("inner.voxel_size", value=0.1), Parameter("inner.mode", value="label"),
                             Parameter("max_chunks", value=8)],
    )
    try:
        declare_config(node, Outer)
        config = read_config(node, Outer)
        assert (config.inner.voxel_size, config.inner.mode, config.max_chunks) == (0.1, "label", 8)
    finally:
        node.destroy_node()


def test_override_outside_the_range_is_refused_with_the_parameter_named(ros_context):
    node = rclpy.create_node("param_test3", context=ros_context,
                             parameter_overrides=[Parameter("inner.mode", value="depth")])
    try:
        declare_config(node, Outer)
        with pytest.raises(ConfigError, match=r"inner.mode='depth' is not allowed"):
            read_config(node, Outer)
    finally:
        node.destroy_node()


def test_parameter_table_lists_every_leaf():
    table = parameter_table(Outer)
    assert "| `inner.voxel_size` | float | `0.05` | [0.01, 0.5] | voxel edge, metres |" in table
    assert "| `inner.mode` | str | `'rgb'` | `rgb`, `label` | mesh coloring |" in table
    assert table.count("\n") == 1 + 5
