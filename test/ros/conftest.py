"""Fixtures for tests that need rclpy and the generated ssr_ros interfaces."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test` to set up ROS 2 wheels)")
pytest.importorskip("ssr_ros.msg", reason="ssr_ros interfaces are not built (run `make test`)")


@pytest.fixture(scope="session")
def ros_context():
    """An initialised rclpy context shared by the session's ROS tests."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)
