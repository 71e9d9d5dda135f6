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
