"""Poses from any source: a body frame's odometry with a camera offset, poses in another frame
than map_frame, and what happens when a transform is missing. Messages go to the node's
callbacks directly (in process), so every case is exact."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = [pytest.mark.ros]

S = 1_000_000_000
CAMERA = "camera_color_optical_frame"
# base_link -> optical frame of a camera 0.3 m ahead, 0.2 m left, 1.1 m up, looking along x
# (optical z = base x, optical x = -base y, optical y = -base z)
T_BASE_CAMERA = np.array([[0.0, 0.0, 1.0, 0.3], [-1.0, 0.0, 0.0, 0.2], [0.0, -1.0, 0.0, 1.1], [0.0, 0.0, 0.0, 1.0]])


def _quaternion(T):
    from scipy.spatial.transform import Rotation

    return list(T[:3, 3]) + list(Rotation.from_matrix(T[:3, :3]).as_quat())


@pytest.fixture
def make_node(node_factory):
    count = []

    def make(**overrides):
        count.append(1)
        defaults = {"completion.type": "none", "device": "cpu", "pose_wait_s": 0.0, "warn_throttle_s": 0.0,
                    "topics.color": "", "topics.labels": "",
                    "topics.pose": f"/pose_{len(count) - 1}"}  # one type per topic name
        return node_factory(defaults, **overrides)

    return make


def depth_images(node, stamp_ns):
    """A depth image of a slanted, curved surface (so that any pose error shows in the map)."""
    from ssr_ros.geometry import CameraIntrinsics
    from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
    from ssr_ros.ros.conversions.image import numpy_to_image

    K = CameraIntrinsics(fx=40.0, fy=40.0, cx=23.5, cy=17.5, width=48, height=36)
    node.assembler.set_camera_info(intrinsics_to_camera_info(K, stamp_ns, CAMERA))
    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float32)
    depth = 1.5 + 0.02 * u + 0.0005 * (v - 18) ** 2
    return {"depth": numpy_to_image(depth.astype(np.float32), "32FC1", stamp_ns, CAMERA)}


def body_poses():
    """Three poses of base_link in map: driving along x and turning a little."""
    poses = []
    for k in range(3):
        yaw = 0.1 * k
        T = np.eye(4)
        T[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        T[:3, 3] = [0.2 * k, 0.05 * k, 0.0]
        poses.append(T)
    return poses


def map_content(node):
    coords, layers = node.pipeline.voxel_blocks()
    order = np.lexsort(coords.T)
    return coords[order], np.nan_to_num(layers["tsdf"][order], nan=9.0), layers["weight"][order]


def assert_same_map(a, b):
    coords_a, tsdf_a, weight_a = map_content(a)
    coords_b, tsdf_b, weight_b = map_content(b)
    assert len(coords_a) > 10
    np.testing.assert_array_equal(coords_a, coords_b)
    np.testing.assert_allclose(tsdf_a, tsdf_b, atol=2e-3)
    np.testing.assert_allclose(weight_a, weight_b, atol=1e-3)


def feed(node, messages):
    for k, msg in enumerate(messages):
        node._on_pose(msg)
        assert node.process_images(depth_images(node, (10 + k) * S)), dict(node.counters)


def camera_pose_msgs():
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped

    return [matrix_to_pose_stamped(T @ T_BASE_CAMERA, "map", (10 + k) * S) for k, T in enumerate(body_poses())]


def odometry_msgs(frame="map", T_frame_map=np.eye(4)):
    from nav_msgs.msg import Odometry

    from ssr_ros.ros.conversions.pose import matrix_to_pose

    out = []
    for k, T in enumerate(body_poses()):
        msg = Odometry()
        msg.header.frame_id, msg.child_frame_id = frame, "base_link"
        msg.header.stamp.sec = 10 + k
        msg.pose.pose = matrix_to_pose(T_frame_map @ T)
        out.append(msg)
    return out


def tf_static(*links):
    from ssr_ros.ros.conversions.pose import matrix_to_transform_stamped

    return SimpleNamespace(transforms=[matrix_to_transform_stamped(T, parent, child) for parent, child, T in links])


@pytest.fixture
def reference(make_node):
    node = make_node()
    feed(node, camera_pose_msgs())
    return node


def test_body_frame_odometry_with_the_extrinsic_parameter_maps_like_camera_poses(make_node, reference):
    node = make_node(pose_type="Odometry", camera_in_pose_frame=_quaternion(T_BASE_CAMERA))
    feed(node, odometry_msgs())
    assert_same_map(node, reference)


def test_body_frame_odometry_with_the_extrinsic_from_tf_static_maps_like_camera_poses(make_node, reference):
    node = make_node(pose_type="Odometry")
    node.add_static_transforms(tf_static(("base_link", "camera_link", T_BASE_CAMERA),
                                         ("camera_link", CAMERA, np.eye(4))))
    feed(node, odometry_msgs())
    assert_same_map(node, reference)


def test_odometry_in_odom_is_brought_into_map_by_a_known_transform(make_node, reference):
    T_map_odom = np.eye(4)
    T_map_odom[:3, 3] = [1.0, -2.0, 0.0]
    node = make_node(pose_type="Odometry", camera_in_pose_frame=_quaternion(T_BASE_CAMERA))
    node.add_static_transforms(tf_static(("map", "odom", T_map_odom)))
    feed(node, odometry_msgs("odom", np.linalg.inv(T_map_odom)))
    assert_same_map(node, reference)


def test_a_pose_in_an_unknown_frame_is_refused_and_counted(make_node):
    node = make_node(pose_type="Odometry", camera_in_pose_frame=_quaternion(T_BASE_CAMERA))
    for msg in odometry_msgs("odom"):
        node._on_pose(msg)
    assert node.counters["poses_refused.TransformUnavailable"] == 3
    assert len(node.poses) == 0
    published = []
    node.diagnostics_pub.publish = published.append
    node.publish_diagnostics()
    status = published[-1].status[0]
    assert status.level == status.WARN and "3 poses refused" in status.message
    assert {kv.key: kv.value for kv in status.values}["poses_refused.TransformUnavailable"] == "3"
    assert node.process_images(depth_images(node, 10 * S)) is False
    assert node.counters["dropped.PoseUnavailable"] == 1


def test_a_body_pose_without_a_known_camera_transform_drops_frames_with_the_reason(make_node):
    node = make_node(pose_type="Odometry")
    node._on_pose(odometry_msgs()[0])
    assert node.process_images(depth_images(node, 10 * S)) is False
    assert node.counters["dropped.TransformUnavailable"] == 1
    assert node.pipeline.map.num_blocks == 0


def test_a_pose_stamped_of_a_named_body_frame_uses_its_transform(make_node, reference):
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped

    node = make_node(pose_child_frame="base_link")
    node.add_static_transforms(tf_static(("base_link", CAMERA, T_BASE_CAMERA)))
    feed(node, [matrix_to_pose_stamped(T, "map", (10 + k) * S) for k, T in enumerate(body_poses())])
    assert_same_map(node, reference)


def test_deprecated_occupancy_parameters_still_set_the_planning_band(make_node):
    node = make_node(occupancy_max_z=1.2, occupancy_include_predicted=True)
    assert node.pipeline.config.planning.max_height == 1.2
    assert node.pipeline.config.planning.include_predicted is True


def test_the_planner_tiers_are_published(make_node):
    node = make_node()
    received = {}
    for name in ("occupancy", "occupancy_predicted", "esdf_slice", "esdf_slice_predicted"):
        publisher = {"occupancy": node.occupancy_pub, "occupancy_predicted": node.cost_pub,
                     "esdf_slice": node.esdf_slice_pubs[""], "esdf_slice_predicted": node.esdf_slice_pubs["_predicted"]}[name]
        publisher.publish = lambda msg, n=name: received.__setitem__(n, msg)
        publisher.get_subscription_count = lambda: 1  # a planner listens
    feed(node, camera_pose_msgs())
    node.publish_voxels()
    assert set(received) == {"occupancy", "occupancy_predicted", "esdf_slice", "esdf_slice_predicted"}
    assert received["occupancy"].info.resolution == pytest.approx(node.pipeline.map.voxel_size)
    assert received["esdf_slice"].fields[3].name == "distance"


def test_only_the_planner_tiers_someone_subscribes_to_are_computed_and_published(make_node):
    node = make_node()
    received, asked = {}, []
    for publisher in node._planning_publishers().values():
        publisher.publish = lambda msg, p=publisher: received.__setitem__(p.topic_name, msg)
        publisher.get_subscription_count = lambda: 0
    node.occupancy_pub.get_subscription_count = lambda: 1  # a Nav2-only robot
    planning_outputs = node.pipeline.planning_outputs
    node.pipeline.planning_outputs = lambda **kwargs: asked.append(kwargs["wanted"]) or planning_outputs(**kwargs)
    feed(node, camera_pose_msgs())
    node.publish_voxels()
    assert asked == [["occupancy"]]
    assert list(received) == [node.occupancy_pub.topic_name] and node.last_floor is not None
    for publisher in node._planning_publishers().values():
        publisher.get_subscription_count = lambda: 0
    node.publish_voxels()  # nobody listens: nothing computed
    assert len(asked) == 1


@pytest.mark.parametrize("pose_type", ["PoseWithCovarianceStamped", "TransformStamped"])
def test_other_pose_types_of_a_body_frame_map_like_camera_poses(make_node, reference, pose_type):
    from geometry_msgs.msg import PoseWithCovarianceStamped

    from ssr_ros.ros.conversions.pose import matrix_to_pose, matrix_to_transform_stamped

    messages = []
    for k, T in enumerate(body_poses()):
        if pose_type == "TransformStamped":  # names its child: base_link
            msg = matrix_to_transform_stamped(T, "map", "base_link", (10 + k) * S)
        else:
            msg = PoseWithCovarianceStamped()
            msg.header.frame_id = "map"
            msg.header.stamp.sec = 10 + k
            msg.pose.pose = matrix_to_pose(T)
        messages.append(msg)
    overrides = {"pose_type": pose_type}
    if pose_type == "PoseWithCovarianceStamped":
        overrides["pose_child_frame"] = "base_link"
    node = make_node(**overrides)
    node.add_static_transforms(tf_static(("base_link", CAMERA, T_BASE_CAMERA)))
    feed(node, messages)
    assert_same_map(node, reference)


def test_the_3d_distance_fields_are_published_when_asked_for(make_node):
    from ssr_ros.ros.conversions.point_cloud import point_cloud_to_structured

    node = make_node(publish_esdf_3d=True)
    received = {}
    for kind, publisher in node.esdf_pubs.items():
        publisher.publish = lambda msg, k=kind: received.__setitem__(k, msg)
        publisher.get_subscription_count = lambda: 1
    feed(node, camera_pose_msgs())
    node.publish_voxels()
    assert set(received) == {"", "_predicted"}
    cloud = point_cloud_to_structured(received[""])
    assert len(cloud) > 100 and cloud["distance"].min() < 0 < cloud["distance"].max()
    assert not make_node().esdf_pubs  # off by default: the field is large


def test_outputs_nobody_subscribes_to_cost_nothing(make_node):
    # mesh, voxel and planner outputs are built only for subscribers: without any, the node
    # spends no interpreter time on them (time the integration of frames needs)
    node = make_node()
    feed(node, camera_pose_msgs())
    calls = []
    for name in ("mesh_update", "block_meshes", "voxel_outputs", "planning_outputs"):
        setattr(node.pipeline, name, lambda *a, n=name, **k: calls.append(n))
    node.publish_mesh_update()
    node.publish_mesh_update(full=True)
    node.publish_voxels()
    assert calls == []
    node.voxel_pub.get_subscription_count = lambda: 1  # someone wants the voxel cloud only
    node.voxel_pub.publish = lambda msg: None
    node.pipeline.voxel_outputs = lambda surface=True, blocks=True: calls.append((surface, blocks)) or ({"points": np.zeros((0, 3)), "colors": np.zeros((0, 3), np.uint8), "labels": np.zeros(0, np.int32), "confidence": np.zeros(0, np.float32), "observed": np.zeros(0, bool)}, None)
    node.publish_voxels()
    assert calls == [(True, False)]
