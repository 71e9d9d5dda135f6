"""The mapper's inputs node: topics resolved as the mapper resolves them, messages taken in its own thread."""

from __future__ import annotations

import time

import pytest
from rclpy.qos import QoSProfile
from std_msgs.msg import Header

rclpy = pytest.importorskip("rclpy")

from ssr_ros.ros.input_spinner import InputSpinner  # noqa: E402


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def owner(ros_context):
    node = rclpy.create_node("spinner_owner", namespace="/robot_a", context=ros_context,
                             cli_args=["--ros-args", "-r", "/robot_a/camera/depth:=/elsewhere/depth"])
    yield node
    node.destroy_node()


def test_topics_follow_the_owners_namespace_and_remappings_and_messages_arrive(owner):
    spinner = InputSpinner(owner)
    got = []
    try:
        remapped = spinner.subscribe(Header, "camera/depth", got.append, QoSProfile(depth=10))
        relative = spinner.subscribe(Header, "camera/info", lambda msg: None, QoSProfile(depth=10))
        absolute = spinner.subscribe(Header, "/tf_static", lambda msg: None, QoSProfile(depth=10))
        assert remapped.topic_name == "/elsewhere/depth"
        assert relative.topic_name == "/robot_a/camera/info"
        assert absolute.topic_name == "/tf_static"
        assert spinner.node.get_name() == "spinner_owner_inputs"
        assert spinner.node.get_namespace() == "/robot_a"
        spinner.start()
        publisher = owner.create_publisher(Header, "/elsewhere/depth", QoSProfile(depth=10))
        assert wait_until(lambda: publisher.get_subscription_count() > 0)
        for k in range(3):
            publisher.publish(Header(frame_id=f"m{k}"))
        assert wait_until(lambda: len(got) == 3), got
        assert [m.frame_id for m in got] == ["m0", "m1", "m2"]
    finally:
        spinner.close()
    spinner.close()  # idempotent
    assert spinner.node is None


def test_a_failing_callback_does_not_stop_the_inputs(owner):
    spinner = InputSpinner(owner)
    got = []

    def callback(msg):
        if msg.frame_id == "bad":
            raise RuntimeError("broken callback")
        got.append(msg.frame_id)

    try:
        spinner.subscribe(Header, "/spinner_test/in", callback, QoSProfile(depth=10))
        spinner.start()
        publisher = owner.create_publisher(Header, "/spinner_test/in", QoSProfile(depth=10))
        assert wait_until(lambda: publisher.get_subscription_count() > 0)
        publisher.publish(Header(frame_id="bad"))
        time.sleep(0.2)
        publisher.publish(Header(frame_id="good"))
        assert wait_until(lambda: got == ["good"]), got
    finally:
        spinner.close()
