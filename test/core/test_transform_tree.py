"""Fixed transforms chained between named frames, and the camera pose of a body-frame pose."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssr_ros.errors import TransformUnavailable
from ssr_ros.geometry.transform_tree import CameraPoseResolver, StaticTransforms


def random_pose(rng):
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.normal(size=3)
    return T


@pytest.fixture
def tree():
    rng = np.random.default_rng(0)
    links = {("map", "odom"): random_pose(rng), ("odom", "base_link"): random_pose(rng),
             ("base_link", "camera_link"): random_pose(rng), ("camera_link", "camera_optical"): random_pose(rng),
             ("base_link", "lidar"): random_pose(rng)}
    transforms = StaticTransforms()
    for (parent, child), T in links.items():
        transforms.add(parent, "/" + child if child == "lidar" else child, T)  # a leading '/' is ignored
    return transforms, links


def test_lookups_compose_along_the_chain_in_both_directions(tree):
    transforms, L = tree
    T_map_camera = L["map", "odom"] @ L["odom", "base_link"] @ L["base_link", "camera_link"] @ L["camera_link", "camera_optical"]
    np.testing.assert_allclose(transforms.lookup("map", "camera_optical"), T_map_camera, atol=1e-12)
    np.testing.assert_allclose(transforms.lookup("camera_optical", "map"), np.linalg.inv(T_map_camera), atol=1e-12)
    T_lidar_camera = np.linalg.inv(L["base_link", "lidar"]) @ L["base_link", "camera_link"] @ L["camera_link", "camera_optical"]
    np.testing.assert_allclose(transforms.lookup("lidar", "camera_optical"), T_lidar_camera, atol=1e-12)
    np.testing.assert_allclose(transforms.lookup("odom", "odom"), np.eye(4))


def test_frames_of_separate_trees_have_no_transform(tree):
    transforms, _ = tree
    assert transforms.lookup("map", "elsewhere") is None


def test_the_resolver_composes_map_frame_pose_and_extrinsic(tree):
    transforms, L = tree
    resolver = CameraPoseResolver("map", transforms.lookup)
    T_odom_base = np.eye(4)
    T_odom_base[:3, 3] = [1.0, 2.0, 0.0]
    expected = transforms.lookup("map", "odom") @ T_odom_base @ transforms.lookup("base_link", "camera_optical")
    np.testing.assert_allclose(resolver.camera_pose(T_odom_base, "odom", "base_link", "camera_optical"), expected,
                               atol=1e-12)
    np.testing.assert_allclose(resolver.camera_pose(T_odom_base, "map", "", "camera_optical"), T_odom_base)
    explicit = CameraPoseResolver("map", transforms.lookup, camera_in_pose_frame=np.diag([1.0, -1.0, -1.0, 1.0]))
    np.testing.assert_allclose(explicit.camera_extrinsic("base_link", "camera_optical"), np.diag([1.0, -1.0, -1.0, 1.0]))


def test_missing_transforms_name_the_frames_and_the_remedy():
    resolver = CameraPoseResolver("map")
    with pytest.raises(TransformUnavailable, match="map <- odom"):
        resolver.pose_in_map(np.eye(4), "odom")
    with pytest.raises(TransformUnavailable, match="camera_in_pose_frame"):
        resolver.camera_extrinsic("base_link", "camera_optical")
