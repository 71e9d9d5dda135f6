"""Static transforms between named frames, and turning a body-frame pose into the camera's pose.

A pose source rarely gives the camera's optical frame in ``map_frame`` directly: odometry tracks
``base_link`` in ``odom``, a VIO its IMU frame. :class:`StaticTransforms` holds the fixed
transforms (``/tf_static``, a robot's URDF through robot_state_publisher, or a parameter) and
chains them; :class:`CameraPoseResolver` uses them to give ``T_map_camera`` for a pose
``T_F_P`` of frame P expressed in frame F:

    T_map_camera = T_map_F @ T_F_P @ T_P_camera

where ``T_map_F`` is identity when F is ``map_frame`` (or empty) and ``T_P_camera`` identity
when P is the camera's frame (or unnamed, for a PoseStamped of the camera). Anything unknown
raises :class:`ssr_ros.errors.TransformUnavailable` naming the missing link and how to give it.
All transforms are (4, 4) float64 parent-from-child (``T_parent_child``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ssr_ros.errors import TransformUnavailable


def _name(frame: str) -> str:
    return frame.lstrip("/")


class StaticTransforms:
    """Fixed transforms by child frame: child -> (parent, T_parent_child); looked up along chains."""

    def __init__(self) -> None:
        self._links: dict[str, tuple[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._links)

    def add(self, parent: str, child: str, T_parent_child: np.ndarray) -> None:
        self._links[_name(child)] = (_name(parent), np.asarray(T_parent_child, dtype=np.float64).copy())

    def _to_root(self, frame: str) -> list[tuple[str, np.ndarray]]:
        """[(frame, T_root_frame)] for ``frame`` and every ancestor, nearest first."""
        chain, seen = [(frame, np.eye(4))], {frame}
        while frame in self._links:
            parent, T_parent_frame = self._links[frame]
            if parent in seen:  # a cycle: stop rather than loop
                break
            # T_parent_x = T_parent_frame @ T_frame_x for every x below
            chain = [(name, T_parent_frame @ T_x) for name, T_x in chain] + [(parent, np.eye(4))]
            seen.add(parent)
            frame = parent
        return chain

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source (points in ``source`` -> ``target``), or None when no chain joins them."""
        target, source = _name(target), _name(source)
        if target == source:
            return np.eye(4)
        # Each chain holds T_root_x for every frame x on the way to its root.
        source_chain = self._to_root(source)
        target_chain = self._to_root(target)
        root_source = source_chain[-1][0]
        root_target = target_chain[-1][0]
        if root_source != root_target:
            return None
        T_root_source = dict(source_chain)[source]
        T_root_target = dict(target_chain)[target]
        return np.linalg.inv(T_root_target) @ T_root_source


class CameraPoseResolver:
    """``T_map_camera`` from a pose of any frame in any frame, with known fixed transforms.

    map_frame: the map's fixed frame; transforms: where fixed transforms come from, a callable
    ``(target, source) -> T_target_source or None`` (a :class:`StaticTransforms`' lookup, or a
    tf2 buffer); camera_in_pose_frame: an explicit ``T_P_camera`` that overrides the lookup (the
    node's ``camera_in_pose_frame`` parameter) or None.
    """

    def __init__(self, map_frame: str, transforms: Callable[[str, str], np.ndarray | None] | None = None,
                 camera_in_pose_frame: np.ndarray | None = None) -> None:
        self.map_frame = _name(map_frame)
        self._transforms = transforms or (lambda target, source: None)
        self._extrinsic = None if camera_in_pose_frame is None else np.asarray(camera_in_pose_frame, dtype=np.float64)

    def pose_in_map(self, T_frame_posed: np.ndarray, frame_id: str) -> np.ndarray:
        """T_map_P of a pose given in ``frame_id``; TransformUnavailable when that frame is not
        ``map_frame`` and no fixed transform joins them."""
        frame = _name(frame_id)
        if not frame or frame == self.map_frame:
            return np.asarray(T_frame_posed, dtype=np.float64)
        T_map_frame = self._transforms(self.map_frame, frame)
        if T_map_frame is None:
            raise TransformUnavailable(
                f"pose in frame '{frame}' but map_frame is '{self.map_frame}', and no transform "
                f"{self.map_frame} <- {frame} is known: set map_frame to '{frame}', or publish the transform "
                "(static, e.g. a static_transform_publisher; with tf2 installed, pose_source 'tf' also follows moving ones)")
        return T_map_frame @ np.asarray(T_frame_posed, dtype=np.float64)

    def camera_extrinsic(self, posed_frame: str, camera_frame: str) -> np.ndarray:
        """T_P_camera: the explicit parameter if given; identity when P is unnamed or the camera's
        frame; else the fixed transform P <- camera (TransformUnavailable when unknown)."""
        if self._extrinsic is not None:
            return self._extrinsic
        posed, camera = _name(posed_frame), _name(camera_frame)
        if not posed or not camera or posed == camera:
            return np.eye(4)
        T = self._transforms(posed, camera)
        if T is None:
            raise TransformUnavailable(
                f"the pose tracks '{posed}' but the images come from '{camera}', and no transform {posed} <- {camera} "
                "is known: publish it on /tf_static (robot_state_publisher or a static_transform_publisher) or set "
                "camera_in_pose_frame")
        return T

    def camera_pose(self, T_frame_posed: np.ndarray, frame_id: str, posed_frame: str, camera_frame: str) -> np.ndarray:
        """T_map_camera of a pose of ``posed_frame`` given in ``frame_id``, for images of ``camera_frame``."""
        return self.pose_in_map(T_frame_posed, frame_id) @ self.camera_extrinsic(posed_frame, camera_frame)
