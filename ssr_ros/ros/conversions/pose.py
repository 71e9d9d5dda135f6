"""geometry_msgs PoseStamped / PoseWithCovarianceStamped / TransformStamped / nav_msgs Odometry <-> 4x4 poses
(tf_transformations role)."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Pose, PoseStamped, PoseWithCovarianceStamped, Transform, TransformStamped
from nav_msgs.msg import Odometry

from ssr_ros.geometry import matrix_from_quaternion, quaternion_from_matrix
from ssr_ros.ros.conversions.time import ns_to_stamp


def pose_to_matrix(pose: Pose, name: str = "pose") -> np.ndarray:
    """4x4 float64 matrix of a geometry_msgs/Pose; InvalidPose if not finite or not unit."""
    p, q = pose.position, pose.orientation
    return matrix_from_quaternion((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), name)


def transform_to_matrix(transform: Transform, name: str = "transform") -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform (maps child-frame points into the parent frame)."""
    t, q = transform.translation, transform.rotation
    return matrix_from_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w), name)


def pose_stamped_to_matrix(msg: PoseStamped) -> np.ndarray:
    """Pose of the camera in ``msg.header.frame_id`` (camera-to-world) as 4x4."""
    return pose_to_matrix(msg.pose, f"PoseStamped in '{msg.header.frame_id}'")


def pose_with_covariance_stamped_to_matrix(msg: PoseWithCovarianceStamped) -> np.ndarray:
    """Pose of the camera in ``msg.header.frame_id`` (camera-to-world) as 4x4; the covariance is not used."""
    return pose_to_matrix(msg.pose.pose, f"PoseWithCovarianceStamped in '{msg.header.frame_id}'")


def transform_stamped_to_matrix(msg: TransformStamped) -> np.ndarray:
    """T_parent_child of a TransformStamped (parent = header.frame_id, child = child_frame_id)."""
    return transform_to_matrix(
        msg.transform, f"transform '{msg.header.frame_id}' -> '{msg.child_frame_id}'"
    )


def odometry_to_matrix(msg: Odometry) -> np.ndarray:
    """Pose of ``child_frame_id`` in ``header.frame_id`` of an Odometry message as 4x4."""
    return pose_to_matrix(msg.pose.pose, f"Odometry '{msg.header.frame_id}' -> '{msg.child_frame_id}'")


def matrix_to_pose(T: np.ndarray) -> Pose:
    """geometry_msgs/Pose of a 4x4 rigid transform (quaternion with w >= 0)."""
    t, q = quaternion_from_matrix(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def matrix_to_pose_stamped(T: np.ndarray, frame_id: str, stamp_ns: int = 0) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.pose = matrix_to_pose(T)
    return msg


def matrix_to_transform_stamped(T: np.ndarray, parent: str, child: str, stamp_ns: int = 0) -> TransformStamped:
    t, q = quaternion_from_matrix(T)
    msg = TransformStamped()
    msg.header.frame_id = parent
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in t)
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg
