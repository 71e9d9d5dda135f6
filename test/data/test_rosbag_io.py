"""rosbag2 writer and reader: round trips, topic layout, synchronisation and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_frames import small_frames  # noqa: E402

from ssr_ros.data.rosbag_reader import RosbagReader, read_bag  # noqa: E402
from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS, RosbagWriter, typestore, write_bag  # noqa: E402
from ssr_ros.errors import DatasetError, InvalidInput  # noqa: E402


def assert_same_frames(written, read, pose_atol=1e-12):
    assert len(read) == len(written)
    for a, b in zip(written, read):
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.labels, b.labels)
        # poses travel as translation + quaternion: equal up to float64 round-off
        np.testing.assert_allclose(a.T_world_cam, b.T_world_cam, atol=pose_atol, rtol=0)
        assert a.stamp_ns == b.stamp_ns and a.intrinsics == b.intrinsics and a.frame_id == b.frame_id


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_round_trip_is_frame_for_frame_identical(tmp_path, storage):
    frames = small_frames()
    assert write_bag(frames, tmp_path / "bag", storage=storage) == len(frames)
    reader = RosbagReader(tmp_path / "bag")
    assert_same_frames(frames, list(reader))
    assert not reader.skipped
    assert_same_frames(frames, read_bag(tmp_path / "bag", pose_source="tf"))


def test_bag_has_the_driver_topics_encodings_and_frames(tmp_path):
    from rosbags.rosbag2 import Reader

    frames = small_frames()
    write_bag(frames, tmp_path / "bag")
    store = typestore()
    seen = {}
    with Reader(tmp_path / "bag") as reader:
        for connection, t, raw in reader.messages():
            msg = store.deserialize_cdr(raw, connection.msgtype)
            seen.setdefault(connection.topic, (connection.msgtype, msg, t))
    expected = {
        DEFAULT_TOPICS.color: "sensor_msgs/msg/Image",
        DEFAULT_TOPICS.depth: "sensor_msgs/msg/Image",
        DEFAULT_TOPICS.camera_info: "sensor_msgs/msg/CameraInfo",
        DEFAULT_TOPICS.labels: "sensor_msgs/msg/Image",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/camera/pose": "geometry_msgs/msg/PoseStamped",
    }
    assert {k: v[0] for k, v in seen.items()} == expected
    assert seen[DEFAULT_TOPICS.color][1].encoding == "rgb8"
    assert seen[DEFAULT_TOPICS.depth][1].encoding == "16UC1"
    assert seen[DEFAULT_TOPICS.labels][1].encoding == "mono8"
    for topic in (DEFAULT_TOPICS.color, DEFAULT_TOPICS.depth, DEFAULT_TOPICS.camera_info, DEFAULT_TOPICS.labels):
        assert seen[topic][1].header.frame_id == "camera_color_optical_frame"
    tf = seen["/tf"][1].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == ("map", "camera_color_optical_frame")
    assert seen["/camera/pose"][1].header.frame_id == "map"
    stamp = seen[DEFAULT_TOPICS.depth][1].header.stamp
    assert stamp.sec * 10**9 + stamp.nanosec == frames[0].stamp_ns == seen[DEFAULT_TOPICS.depth][2]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_compressed_bag_round_trip(tmp_path, storage):
    frames = small_frames()
    write_bag(frames, tmp_path / "plain", storage=storage)
    write_bag(frames, tmp_path / "zstd", storage=storage, compress=True)
    assert_same_frames(frames, read_bag(tmp_path / "zstd"))
    size = lambda p: sum(f.stat().st_size for f in p.iterdir())  # noqa: E731
    assert size(tmp_path / "zstd") < 0.8 * size(tmp_path / "plain")


def test_32fc1_depth_round_trip(tmp_path):
    frames = small_frames()
    write_bag(frames, tmp_path / "bag", depth_encoding="32FC1")
    assert_same_frames(frames, read_bag(tmp_path / "bag"))


def test_color_and_labels_are_matched_by_nearest_stamp(tmp_path):
    frames = small_frames()
    with RosbagWriter(tmp_path / "bag") as writer:
        for i, frame in enumerate(frames):
            shifted = 4_000_000 if i != 2 else 50_000_000  # frame 2's color is 50 ms late
            t = frame.stamp_ns + shifted
            writer.write_message("color", writer.image_message(t, frame.rgb, "rgb8"), t)
            stripped = type(frame)(depth=frame.depth, intrinsics=frame.intrinsics, T_world_cam=frame.T_world_cam,
                                   labels=frame.labels, stamp_ns=frame.stamp_ns, frame_id=frame.frame_id)
            writer.write(stripped)
    reader = RosbagReader(tmp_path / "bag", max_sync_ns=10_000_000)
    read = list(reader)
    assert [f.stamp_ns for f in read] == [f.stamp_ns for i, f in enumerate(frames) if i != 2]
    assert reader.skipped == {"no color image within max_sync_ns": 1}
    np.testing.assert_array_equal(read[2].rgb, frames[3].rgb)


def test_truncated_bag_names_the_bag(tmp_path):
    frames = small_frames()
    write_bag(frames, tmp_path / "bag", storage="mcap")
    data = next((tmp_path / "bag").glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(DatasetError, match="bag"):
        read_bag(tmp_path / "bag")


def test_truncated_sqlite_bag_names_the_bag(tmp_path):
    frames = small_frames()
    write_bag(frames, tmp_path / "bag")
    data = next((tmp_path / "bag").glob("*.db3"))
    data.write_bytes(data.read_bytes()[:3000])
    with pytest.raises(DatasetError, match=str(tmp_path / "bag")):
        read_bag(tmp_path / "bag")


def test_unknown_encoding_names_topic_and_encoding(tmp_path):
    frame = small_frames()[0]
    with RosbagWriter(tmp_path / "bag") as writer:
        writer.write(frame)
        msg = writer.image_message(frame.stamp_ns + 1, frame.rgb, "rgb8")
        msg.encoding = "yuv422"
        writer.write_message("depth", msg, frame.stamp_ns + 1)
    with pytest.raises(DatasetError, match=r"/camera/aligned_depth_to_color/image_raw.*yuv422"):
        read_bag(tmp_path / "bag")


def test_bag_without_poses_is_refused(tmp_path):
    from rosbags.rosbag2 import Writer

    frame = small_frames()[0]
    store = typestore()
    with RosbagWriter(tmp_path / "src") as writer:
        writer.write(frame)
    with Writer(tmp_path / "bag", version=8) as out:
        from rosbags.rosbag2 import Reader

        with Reader(tmp_path / "src") as reader:
            conns = {c.topic: out.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections if c.topic not in ("/tf", "/camera/pose")}
            for c, t, raw in reader.messages():
                if c.topic in conns:
                    out.write(conns[c.topic], t, raw)
    with pytest.raises(DatasetError, match="has no poses"):
        RosbagReader(tmp_path / "bag")


def test_not_a_bag_and_bad_options(tmp_path):
    with pytest.raises(DatasetError, match="not a rosbag2 directory"):
        RosbagReader(tmp_path)
    write_bag(small_frames(), tmp_path / "bag")
    with pytest.raises(DatasetError, match="no topic '/nope'"):
        RosbagReader(tmp_path / "bag", depth_topic="/nope")
    with pytest.raises(InvalidInput, match="storage 'zip'"):
        RosbagWriter(tmp_path / "other", storage="zip")
    with pytest.raises(DatasetError, match="already exists"):
        RosbagWriter(tmp_path / "bag")


@pytest.mark.ros
def test_messages_deserialize_with_the_real_ros_2_type_support(tmp_path):
    """What `ros2 bag play` publishes is the recorded CDR; ROS 2's own decoder must accept it."""
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    geometry_msgs = pytest.importorskip("geometry_msgs.msg")
    types = {"sensor_msgs/msg/Image": sensor_msgs.Image, "sensor_msgs/msg/CameraInfo": sensor_msgs.CameraInfo,
             "geometry_msgs/msg/PoseStamped": geometry_msgs.PoseStamped}
    try:
        from tf2_msgs.msg import TFMessage

        types["tf2_msgs/msg/TFMessage"] = TFMessage
    except ImportError:
        pass
    frames = small_frames()
    write_bag(frames, tmp_path / "bag", storage="mcap")
    decoded = 0
    with Reader(tmp_path / "bag") as reader:
        for connection, _, raw in reader.messages():
            if connection.msgtype not in types:
                continue
            msg = deserialize_message(bytes(raw), types[connection.msgtype])
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec in {f.stamp_ns for f in frames}
            decoded += 1
    assert decoded >= 4 * len(frames)


def test_pose_from_a_tf_chain_with_a_static_link(tmp_path):
    """map -> base_link (dynamic, /tf) -> camera (static, /tf_static) composes to the camera pose."""
    from ssr_ros.geometry.pose import invert_pose, quaternion_from_matrix

    frames = small_frames()
    store = typestore()
    T_base_cam = np.eye(4)
    T_base_cam[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # optical frame on a z-up body
    T_base_cam[:3, 3] = [0.1, 0.0, 0.3]

    def tf_message(parent, child, T, stamp):
        t, q = quaternion_from_matrix(T)
        ts = store.types["geometry_msgs/msg/TransformStamped"](
            header=store.types["std_msgs/msg/Header"](stamp=store.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=parent),
            child_frame_id=child,
            transform=store.types["geometry_msgs/msg/Transform"](
                translation=store.types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
                rotation=store.types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])),
        )
        return store.types["tf2_msgs/msg/TFMessage"](transforms=[ts])

    from rosbags.rosbag2 import Writer

    with RosbagWriter(tmp_path / "src") as writer:
        for f in frames:
            writer.write(f)
    with Writer(tmp_path / "bag", version=8) as out:
        from rosbags.rosbag2 import Reader

        with Reader(tmp_path / "src") as reader:
            keep = [c for c in reader.connections if c.topic not in ("/tf", "/camera/pose")]
            conns = {c.topic: out.add_connection(c.topic, c.msgtype, typestore=store) for c in keep}
            for c, t, raw in reader.messages(connections=keep):
                out.write(conns[c.topic], t, raw)
        tf = out.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=store)
        static = out.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=store)
        out.write(static, frames[0].stamp_ns, store.serialize_cdr(tf_message("base_link", "camera_color_optical_frame", T_base_cam, frames[0].stamp_ns), "tf2_msgs/msg/TFMessage"))
        for f in frames:
            T_map_base = f.T_world_cam @ invert_pose(T_base_cam)
            out.write(tf, f.stamp_ns, store.serialize_cdr(tf_message("map", "base_link", T_map_base, f.stamp_ns), "tf2_msgs/msg/TFMessage"))
    read = read_bag(tmp_path / "bag")
    assert len(read) == len(frames)
    for a, b in zip(frames, read):
        np.testing.assert_allclose(b.T_world_cam, a.T_world_cam, atol=1e-9)


def test_label_confidence_and_probability_topics_are_read_as_the_node_takes_them(tmp_path):
    frames = small_frames()
    H, W = frames[0].depth.shape
    C = 21
    confidence = np.linspace(0.0, 1.0, H * W, dtype=np.float32).reshape(H, W)
    probabilities = np.zeros((H, W, C), np.float32)
    probabilities[..., 4] = 0.75
    with RosbagWriter(tmp_path / "bag") as writer:
        writer.add_topic("confidence", "/seg/confidence")
        writer.add_topic("probabilities", "/seg/probs")
        for frame in frames:
            writer.write(frame)
            writer.write_message("confidence", writer.image_message(frame.stamp_ns, confidence, "32FC1"), frame.stamp_ns)
            writer.write_message("probabilities", writer.image_message(frame.stamp_ns, probabilities, f"32FC{C}"),
                                 frame.stamp_ns)
    with_confidence = list(RosbagReader(tmp_path / "bag", label_confidence_topic="/seg/confidence"))
    assert len(with_confidence) == len(frames)
    np.testing.assert_array_equal(with_confidence[0].labels, frames[0].labels)
    np.testing.assert_array_equal(with_confidence[0].label_confidence, confidence)
    with_probabilities = list(RosbagReader(tmp_path / "bag", label_probabilities_topic="/seg/probs", num_classes=C))
    assert with_probabilities[0].labels is None and with_probabilities[0].label_probs.shape == (H, W, C)
    assert np.all(with_probabilities[0].label_probs.argmax(-1) == 4)
    # a taxonomy of another size: the frame is refused with the topic named
    with pytest.raises(DatasetError, match="/seg/probs.*20 classes"):
        list(RosbagReader(tmp_path / "bag", label_probabilities_topic="/seg/probs", num_classes=20))
    with pytest.raises(InvalidInput, match="num_classes"):
        RosbagReader(tmp_path / "bag", label_probabilities_topic="/seg/probs")


def test_instance_topic_is_read_into_the_frames(tmp_path):
    frames = small_frames()
    H, W = frames[0].depth.shape
    ids = np.arange(H * W, dtype=np.uint16).reshape(H, W) % 7
    with RosbagWriter(tmp_path / "bag") as writer:
        writer.add_topic("instances", "/seg/instances")
        for frame in frames:
            writer.write(frame)
            writer.write_message("instances", writer.image_message(frame.stamp_ns, ids, "mono16"), frame.stamp_ns)
    read = list(RosbagReader(tmp_path / "bag", instances_topic="/seg/instances"))
    assert len(read) == len(frames)
    np.testing.assert_array_equal(read[0].instance_ids, ids)
    np.testing.assert_array_equal(read[0].labels, frames[0].labels)
    assert list(RosbagReader(tmp_path / "bag"))[0].instance_ids is None  # not the default topic: not read
    with RosbagWriter(tmp_path / "default") as writer:
        writer.add_topic("instances", "/camera/semantic/instances")
        for frame in frames:
            writer.write(frame)
            writer.write_message("instances", writer.image_message(frame.stamp_ns, ids, "mono16"), frame.stamp_ns)
    read = RosbagReader(tmp_path / "default")
    assert read.labels_topic == DEFAULT_TOPICS.labels and read.instances_topic == "/camera/semantic/instances"
    np.testing.assert_array_equal(list(read)[0].instance_ids, ids)
    with pytest.raises(DatasetError, match="/seg/missing"):
        RosbagReader(tmp_path / "bag", instances_topic="/seg/missing")
