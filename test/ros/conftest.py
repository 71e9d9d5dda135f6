"""Fixtures for tests that need rclpy and the generated ssr_ros interfaces."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test` to set up ROS 2 wheels)")
pytest.importorskip("ssr_ros.msg", reason="ssr_ros interfaces are not built (run `make test`)")


@pytest.fixture(scope="session")
def ros_context():
    """An initialised rclpy context shared by the session's ROS tests."""
    from ssr_ros.ros.dds_transport import apply_transport_profile

    apply_transport_profile()  # the node processes the tests start apply it too
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def node_factory(ros_context, tmp_path, monkeypatch):
    """``make(defaults, **overrides)``: an in-process MapperNode with these parameters (started in
    ``tmp_path``), stopped and destroyed after the test."""
    from rclpy.parameter import Parameter

    from ssr_ros.ros.mapper_node import MapperNode

    monkeypatch.chdir(tmp_path)
    nodes = []

    def make(defaults: dict, **overrides):
        values = {**defaults, **overrides}
        node = MapperNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()
        node.destroy_node()
