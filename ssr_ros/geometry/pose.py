"""Rigid poses as 4x4 matrices (camera-to-world, ``T_world_cam``) and quaternion conversions.

Quaternions follow ROS order ``(x, y, z, w)``. Rotations use scipy's ``Rotation``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ssr_ros.errors import InvalidPose

ROTATION_TOLERANCE = 2e-3
"""Largest |R^T R - I| entry accepted for a rotation block: float32 poses and the
slightly non-orthonormal poses stored by real datasets (7-Scenes: about 4e-4) pass."""


def validate_pose(T: np.ndarray, name: str = "pose") -> np.ndarray:
    """Check that ``T`` is a finite 4x4 rigid transform and return it as float64.

    Raises InvalidPose naming the problem: shape, non-finite entries, bottom row, or a
    rotation block that is not orthonormal with determinant +1.
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise InvalidPose(f"{name} must be a 4x4 matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise InvalidPose(f"{name} has non-finite entries: {T.tolist()}")
    if np.max(np.abs(T[3] - np.array([0.0, 0.0, 0.0, 1.0]))) > 1e-6:
        raise InvalidPose(f"{name} bottom row must be [0, 0, 0, 1], got {T[3].tolist()}")
    R = T[:3, :3]
    error = np.max(np.abs(R.T @ R - np.eye(3)))
    if error > ROTATION_TOLERANCE or np.linalg.det(R) < 0:
        raise InvalidPose(
            f"{name} rotation block is not a proper rotation (|R^T R - I| = {error:.2e}, "
            f"det = {np.linalg.det(R):.4f}); expected an orthonormal matrix with det +1"
        )
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform, computed as [R^T, -R^T t] (exact for rigid poses)."""
    T = np.asarray(T, dtype=np.float64)
    inverse = np.eye(4)
    inverse[:3, :3] = T[:3, :3].T
    inverse[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inverse


def matrix_from_quaternion(translation, quaternion_xyzw, name: str = "pose") -> np.ndarray:
    """4x4 pose from a translation (3,) and a quaternion (x, y, z, w).

    The quaternion must be finite and of norm within 1e-3 of 1 (it is then normalised);
    anything else raises InvalidPose, because a silently normalised garbage quaternion
    corrupts the map.
    """
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or q.shape != (4,):
        raise InvalidPose(f"{name}: expected translation (3,) and quaternion (4,), got {t.shape}, {q.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise InvalidPose(f"{name} is not finite: translation={t.tolist()}, quaternion={q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-3:
        raise InvalidPose(f"{name} quaternion {q.tolist()} has norm {norm:.6f}; expected a unit quaternion")
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(q / norm).as_matrix()
    T[:3, 3] = t
    return T


def quaternion_from_matrix(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation (3,) and unit quaternion (x, y, z, w) with w >= 0 of a 4x4 pose."""
    T = validate_pose(T)
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    if q[3] < 0:
        q = -q
    return T[:3, 3].copy(), q


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points mapped by the (4, 4) transform ``T`` (e.g. ``T_world_map``); keeps a float dtype."""
    points = np.asarray(points)
    T = np.asarray(T, dtype=np.float64)
    out = points @ T[:3, :3].T + T[:3, 3]
    return out.astype(points.dtype, copy=False) if np.issubdtype(points.dtype, np.floating) else out


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) camera-to-world pose at ``position`` with the optical axis towards ``target``.

    ``up`` is the world's up direction (z by default, REP 103); image "down" (camera y) points
    as close to -up as possible, then the camera is rolled by ``roll`` radians about its
    optical axis.
    """
    z = np.asarray(target, float) - np.asarray(position, float)
    z /= np.linalg.norm(z)
    up = np.asarray(up, dtype=float) / np.linalg.norm(up)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, np.roll(up, 1))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, position
    return T
