"""`ssr play`'s player: a rosbag2 file replayed over DDS arrives intact, in order, on time."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ssr_ros.errors import DatasetError
from ssr_ros.ros.bag_player import play_bag
from ssr_ros.ros.conversions.image import image_to_numpy

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

pytestmark = pytest.mark.ros
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
STAMPS = [1_000_000_000 + i * 50_000_000 for i in range(6)]  # 6 frames at 20 Hz


def write_bag(path, storage):
    Img = TYPESTORE.types["sensor_msgs/msg/Image"]
    Header = TYPESTORE.types["std_msgs/msg/Header"]
    Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
    TFMessage = TYPESTORE.types["tf2_msgs/msg/TFMessage"]
    images = []
    with Writer(path, version=9, storage_plugin=storage) as writer:
        cam = writer.add_connection("/camera/depth", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        tf = writer.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=TYPESTORE)
        for i, stamp in enumerate(STAMPS):
            depth = np.full((4, 5), 1000 + i, dtype=np.uint16)
            images.append(depth)
            msg = Img(
                header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam"),
                height=4, width=5, encoding="16UC1", is_bigendian=0, step=10, data=depth.view(np.uint8).reshape(-1),
            )
            writer.write(cam, stamp, TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            writer.write(tf, stamp, TYPESTORE.serialize_cdr(TFMessage(transforms=[]), "tf2_msgs/msg/TFMessage"))
    return images


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_replayed_bag_arrives_intact_in_order_and_with_recorded_timing(ros_context, tmp_path, storage):
    images = write_bag(tmp_path / "bag", storage)
    player = rclpy.create_node("player", context=ros_context)
    listener = rclpy.create_node("listener", context=ros_context)
    received = []
    arrival = []
    listener.create_subscription(
        Image, "/camera/depth", lambda m: (received.append(m), arrival.append(time.monotonic())),
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    executor.add_node(player)
    import threading

    spinning = threading.Thread(target=lambda: executor.spin_until_future_complete(done, timeout_sec=30), daemon=True)
    done = rclpy.task.Future()
    spinning.start()
    report = play_bag(player, tmp_path / "bag", rate=1.0, wait_for_subscribers_s=10)
    deadline = time.monotonic() + 10
    while len(received) < len(STAMPS) and time.monotonic() < deadline:
        time.sleep(0.02)
    done.set_result(True)
    spinning.join()
    executor.shutdown()
    player.destroy_node()
    listener.destroy_node()

    assert report.published == {"/camera/depth": 6}
    assert "tf2_msgs/msg/TFMessage" in report.skipped.get("/tf", "") or report.published.get("/tf") == 6
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received] == STAMPS
    for msg, depth in zip(received, images):
        np.testing.assert_array_equal(image_to_numpy(msg), depth)
    assert report.bag_duration_s == pytest.approx(0.25)
    assert report.wall_time_s >= 0.24  # recorded timing is respected, not flooded


def test_missing_topic_lists_what_the_bag_has(ros_context, tmp_path):
    write_bag(tmp_path / "bag", StoragePlugin.SQLITE3)
    node = rclpy.create_node("player2", context=ros_context)
    try:
        with pytest.raises(DatasetError, match=r"no topic\(s\) \['/camera/color'\]; it has \['/camera/depth', '/tf'\]"):
            play_bag(node, tmp_path / "bag", topics=["/camera/color"])
    finally:
        node.destroy_node()


def test_corrupt_and_missing_bags_are_named(ros_context, tmp_path):
    node = rclpy.create_node("player3", context=ros_context)
    try:
        with pytest.raises(DatasetError, match="does not exist"):
            play_bag(node, tmp_path / "nothing")
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag\n")
        with pytest.raises(DatasetError, match=f"cannot open bag '{broken}'"):
            play_bag(node, broken)
    finally:
        node.destroy_node()
