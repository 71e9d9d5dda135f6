"""Cameras, poses and RGB-D frames: the types every other layer speaks.

Conventions (REP 103/105): the camera frame is the OpenCV optical frame (x right, y down,
z forward); poses are camera-to-world 4x4 matrices named ``T_world_cam``; lengths are metres.
"""

from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import (
    invert_pose,
    look_at,
    matrix_from_quaternion,
    quaternion_from_matrix,
    transform_points,
    validate_pose,
)

__all__ = [
    "CameraIntrinsics",
    "Frame",
    "invert_pose",
    "look_at",
    "matrix_from_quaternion",
    "quaternion_from_matrix",
    "transform_points",
    "validate_pose",
]
