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
