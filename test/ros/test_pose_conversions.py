"""PoseStamped / TransformStamped / Odometry <-> 4x4, checked against scipy and tf_transformations."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, TransformStamped
from hypothesis import given, settings
from hypothesis import strategies as st
from nav_msgs.msg import Odometry
from scipy.spatial.transform import Rotation

from ssr_ros.errors import InvalidPose
from ssr_ros.geometry import invert_pose, validate_pose
from ssr_ros.ros.conversions.pose import (
    matrix_to_pose_stamped,
    matrix_to_transform_stamped,
    odometry_to_matrix,
    pose_stamped_to_matrix,
    pose_with_covariance_stamped_to_matrix,
    transform_stamped_to_matrix,
)

quaternions = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)
translations = st.lists(st.floats(-100, 100), min_size=3, max_size=3)


def _unit(q):
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q)


@settings(max_examples=100, deadline=None)
@given(q=quaternions, t=translations)
def test_pose_stamped_matches_scipy_rotation(q, t):
    q = _unit(q)
    msg = PoseStamped()
    msg.header.frame_id = "map"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = t
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    T = pose_stamped_to_matrix(msg)
    np.testing.assert_allclose(T[:3, :3], Rotation.from_quat(q).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], t)
    np.testing.assert_array_equal(T[3], [0, 0, 0, 1])


@settings(max_examples=100, deadline=None)
@given(q=quaternions, t=translations, stamp=st.integers(0, 2**62))
def test_matrix_round_trips_through_pose_transform_and_odometry(q, t, stamp):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(_unit(q)).as_matrix()
    T[:3, 3] = t
    pose = matrix_to_pose_stamped(T, "map", stamp)
    assert pose.header.stamp.sec * 10**9 + pose.header.stamp.nanosec == stamp
    assert pose.pose.orientation.w >= 0
    np.testing.assert_allclose(pose_stamped_to_matrix(pose), T, atol=1e-9)
    transform = matrix_to_transform_stamped(T, "map", "camera", stamp)
    assert transform.child_frame_id == "camera"
    np.testing.assert_allclose(transform_stamped_to_matrix(transform), T, atol=1e-9)
    odometry = Odometry()
    odometry.pose.pose = pose.pose
    np.testing.assert_allclose(odometry_to_matrix(odometry), T, atol=1e-9)
    with_covariance = PoseWithCovarianceStamped()
    with_covariance.pose.pose = pose.pose
    np.testing.assert_allclose(pose_with_covariance_stamped_to_matrix(with_covariance), T, atol=1e-9)
    np.testing.assert_allclose(invert_pose(T) @ T, np.eye(4), atol=1e-9)


def test_nan_pose_is_refused():
    msg = PoseStamped()
    msg.header.frame_id = "map"
    msg.pose.position.x = float("nan")
    msg.pose.orientation.w = 1.0
    with pytest.raises(InvalidPose, match="PoseStamped in 'map' is not finite"):
        pose_stamped_to_matrix(msg)


def test_non_unit_quaternion_is_refused():
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = "odom", "camera"
    msg.transform.rotation.w = 0.5
    with pytest.raises(InvalidPose, match="'odom' -> 'camera' quaternion .* norm 0.500000"):
        transform_stamped_to_matrix(msg)


def test_zero_quaternion_is_refused():
    odometry = Odometry()
    odometry.pose.pose.orientation.w = 0.0
    with pytest.raises(InvalidPose, match="norm 0.000000"):
        odometry_to_matrix(odometry)


@pytest.mark.parametrize(
    "matrix,match",
    [
        (np.eye(3), "4x4"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "not a proper rotation"),
        (np.diag([2.0, 1.0, 1.0, 1.0]), "not a proper rotation"),
        (np.vstack([np.eye(4)[:3], [0, 0, 1, 1]]), "bottom row"),
    ],
)
def test_invalid_matrices_are_refused(matrix, match):
    with pytest.raises(InvalidPose, match=match):
        validate_pose(matrix)


@settings(max_examples=30, deadline=None)
@given(q=quaternions, t=translations)
def test_matches_tf_transformations_where_installed(q, t):
    tf = pytest.importorskip("tf_transformations", reason="tf_transformations is only present in a ROS 2 installation")
    q = _unit(q)
    msg = PoseStamped()
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = t
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    expected = tf.concatenate_matrices(tf.translation_matrix(t), tf.quaternion_matrix(q))
    np.testing.assert_allclose(pose_stamped_to_matrix(msg), expected, atol=1e-9)
