"""A bag whose poses are odometry of base_link in odom, with the camera and odom placed by
/tf_static, reads as the camera's poses in map (what ``ssr reconstruct`` maps with)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_frames import small_frames  # noqa: E402

from ssr_ros.data.rosbag_reader import read_bag  # noqa: E402
from ssr_ros.data.rosbag_writer import RosbagWriter, typestore  # noqa: E402
from ssr_ros.geometry.pose import invert_pose, quaternion_from_matrix  # noqa: E402

T_BASE_CAM = np.array([[0.0, 0.0, 1.0, 0.1], [-1.0, 0.0, 0.0, 0.05], [0.0, -1.0, 0.0, 0.3], [0, 0, 0, 1.0]])
T_MAP_ODOM = np.array([[0.0, -1.0, 0.0, 2.0], [1.0, 0.0, 0.0, -1.0], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 1.0]])


def _header(store, frame_id, stamp):
    time = store.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
    return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def _transform(store, T):
    t, q = quaternion_from_matrix(T)
    return (store.types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
            store.types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))


def _odometry(store, T, stamp):
    position, orientation = _transform(store, T)
    point = store.types["geometry_msgs/msg/Point"](x=position.x, y=position.y, z=position.z)
    pose = store.types["geometry_msgs/msg/PoseWithCovariance"](
        pose=store.types["geometry_msgs/msg/Pose"](position=point, orientation=orientation), covariance=np.zeros(36))
    twist = store.types["geometry_msgs/msg/TwistWithCovariance"](
        twist=store.types["geometry_msgs/msg/Twist"](linear=store.types["geometry_msgs/msg/Vector3"](x=0, y=0, z=0),
                                                      angular=store.types["geometry_msgs/msg/Vector3"](x=0, y=0, z=0)),
        covariance=np.zeros(36))
    return store.types["nav_msgs/msg/Odometry"](header=_header(store, "odom", stamp), child_frame_id="base_link",
                                                  pose=pose, twist=twist)


def _static(store, links, stamp):
    transforms = []
    for parent, child, T in links:
        translation, rotation = _transform(store, T)
        transforms.append(store.types["geometry_msgs/msg/TransformStamped"](
            header=_header(store, parent, stamp), child_frame_id=child,
            transform=store.types["geometry_msgs/msg/Transform"](translation=translation, rotation=rotation)))
    return store.types["tf2_msgs/msg/TFMessage"](transforms=transforms)


def write_odometry_bag(tmp_path, frames, with_static=True):
    from rosbags.rosbag2 import Reader, Writer

    store = typestore()
    with RosbagWriter(tmp_path / "src") as writer:
        for f in frames:
            writer.write(f)
    with Writer(tmp_path / "bag", version=8) as out:
        with Reader(tmp_path / "src") as reader:
            keep = [c for c in reader.connections if c.topic not in ("/tf", "/camera/pose")]
            conns = {c.topic: out.add_connection(c.topic, c.msgtype, typestore=store) for c in keep}
            odom = out.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=store)
            if with_static:
                static = out.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=store)
                links = [("map", "odom", T_MAP_ODOM), ("base_link", "camera_color_optical_frame", T_BASE_CAM)]
                out.write(static, frames[0].stamp_ns - 1, store.serialize_cdr(_static(store, links, 0), "tf2_msgs/msg/TFMessage"))
            for f in frames:
                T_odom_base = invert_pose(T_MAP_ODOM) @ f.T_world_cam @ invert_pose(T_BASE_CAM)
                out.write(odom, f.stamp_ns, store.serialize_cdr(_odometry(store, T_odom_base, f.stamp_ns), "nav_msgs/msg/Odometry"))
            for c, t, raw in reader.messages(connections=keep):
                out.write(conns[c.topic], t, raw)
    return tmp_path / "bag"


def test_odometry_of_a_body_in_odom_reads_as_the_camera_pose_in_map(tmp_path):
    frames = small_frames()
    read = read_bag(write_odometry_bag(tmp_path, frames), pose_topic="/odom")
    assert len(read) == len(frames)
    for a, b in zip(frames, read):
        np.testing.assert_allclose(b.T_world_cam, a.T_world_cam, atol=1e-9)


def test_without_the_transforms_frames_are_skipped_with_the_reason(tmp_path):
    from ssr_ros.data.rosbag_reader import RosbagReader

    reader = RosbagReader(write_odometry_bag(tmp_path, small_frames(), with_static=False), pose_topic="/odom")
    assert list(reader) == []
    (reason, count), = reader.skipped.items()
    assert "no transform map <- odom" in reason and count == len(small_frames())
