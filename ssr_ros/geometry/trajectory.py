"""A time-indexed buffer of camera poses with interpolation (the pose-topic route to tf2).

Poses arrive from a pose topic (PoseStamped / TransformStamped / Odometry) at their own rate;
frames ask for the pose at their stamp. Between two buffered poses the pose is interpolated
(linear translation, spherical-linear rotation) provided they are at most ``max_gap_s``
apart; a stamp within ``tolerance_s`` of a buffered pose takes that pose. Anything else
raises ``PoseUnavailable`` saying why, so that the frame is dropped rather than misplaced.
"""

from __future__ import annotations

import bisect
import threading
import time

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from ssr_ros.errors import ConfigError, PoseUnavailable
from ssr_ros.geometry.pose import validate_pose


class PoseBuffer:
    """Camera-to-world poses by stamp (integer nanoseconds), thread-safe."""

    def __init__(self, max_gap_s: float = 0.5, tolerance_s: float = 0.005, capacity: int = 2000):
        if not (max_gap_s > 0 and tolerance_s >= 0 and capacity >= 2):
            raise ConfigError(
                f"PoseBuffer needs max_gap_s > 0, tolerance_s >= 0, capacity >= 2; got "
                f"{max_gap_s}, {tolerance_s}, {capacity}"
            )
        self._max_gap_ns = int(max_gap_s * 1e9)
        self._tolerance_ns = int(tolerance_s * 1e9)
        self._capacity = capacity
        self._stamps: list[int] = []
        self._poses: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._stamps)

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._poses.clear()

    def add(self, stamp_ns: int, T_world_cam: np.ndarray) -> None:
        """Insert a pose (validated; InvalidPose otherwise). Same stamp replaces; oldest evicted."""
        T = validate_pose(T_world_cam, "T_world_cam")
        with self._lock:
            index = bisect.bisect_left(self._stamps, stamp_ns)
            if index < len(self._stamps) and self._stamps[index] == stamp_ns:
                self._poses[index] = T
                return
            self._stamps.insert(index, int(stamp_ns))
            self._poses.insert(index, T)
            if len(self._stamps) > self._capacity:
                del self._stamps[0], self._poses[0]
            self._arrived.notify_all()

    def wait_until_covered(self, stamp_ns: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a pose at or after ``stamp_ns`` (poses may arrive after
        the images they belong to); returns whether one is there."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not self._stamps or self._stamps[-1] < stamp_ns:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(remaining)
            return True

    def lookup(self, stamp_ns: int) -> np.ndarray:
        """Pose at ``stamp_ns``: nearest within tolerance, else interpolated across a short gap."""
        with self._lock:
            if not self._stamps:
                raise PoseUnavailable("no camera pose received yet")
            index = bisect.bisect_left(self._stamps, stamp_ns)
            for neighbour in (index - 1, index):
                if 0 <= neighbour < len(self._stamps) and abs(self._stamps[neighbour] - stamp_ns) <= self._tolerance_ns:
                    return self._poses[neighbour].copy()
            if index == 0:
                raise PoseUnavailable(
                    f"frame stamp {stamp_ns * 1e-9:.3f} s is older than the oldest pose "
                    f"({self._stamps[0] * 1e-9:.3f} s)"
                )
            if index == len(self._stamps):
                raise PoseUnavailable(
                    f"frame stamp {stamp_ns * 1e-9:.3f} s is newer than the latest pose "
                    f"({self._stamps[-1] * 1e-9:.3f} s)"
                )
            t0, t1 = self._stamps[index - 1], self._stamps[index]
            if t1 - t0 > self._max_gap_ns:
                raise PoseUnavailable(
                    f"no pose near {stamp_ns * 1e-9:.3f} s: neighbouring poses are {(t1 - t0) * 1e-9:.3f} s apart "
                    f"(max gap {self._max_gap_ns * 1e-9:.3f} s)"
                )
            T0, T1 = self._poses[index - 1], self._poses[index]
        alpha = (stamp_ns - t0) / (t1 - t0)
        rotations = Rotation.from_matrix(np.stack([T0[:3, :3], T1[:3, :3]]))
        T = np.eye(4)
        T[:3, :3] = Slerp([0.0, 1.0], rotations)([alpha]).as_matrix()[0]
        T[:3, 3] = (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
        return T
