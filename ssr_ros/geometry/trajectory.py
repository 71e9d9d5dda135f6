"""A time-indexed buffer of camera poses with interpolation (the pose-topic route to tf2).

Poses arrive from a pose topic (PoseStamped / TransformStamped / Odometry) at their own rate;
frames ask for the pose at their stamp. Between two buffered poses the pose is interpolated
(linear translation, spherical-linear rotation) provided they are at most ``max_gap_s``
apart; a stamp within ``tolerance_s`` of a buffered pose takes that pose. Anything else
raises ``PoseUnavailable`` saying why, so that the frame is dropped rather than misplaced.

A stamp gets one pose. A repeat of the same pose is ignored; a *different* pose for a stamp
already buffered is refused (``PoseConflict``) and the stamp is marked ambiguous: a frame whose
pose would come from it is refused too, since nothing tells which of the two poses its images
were taken at. With ``jump_threshold_s`` set, a pose more than that much older than the newest
one is taken as the clock jumping back (a bag looping, a simulator restarting): the poses of
the old timeline are forgotten and counted in ``time_jumps``.
"""

from __future__ import annotations

import bisect
import threading
import time

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from ssr_ros.errors import ConfigError, PoseConflict, PoseUnavailable
from ssr_ros.geometry.pose import validate_pose


class PoseBuffer:
    """Camera-to-world poses by stamp (integer nanoseconds), thread-safe."""

    def __init__(self, max_gap_s: float = 0.5, tolerance_s: float = 0.005, capacity: int = 2000,
                 jump_threshold_s: float | None = None):
        if not (max_gap_s > 0 and tolerance_s >= 0 and capacity >= 2) or (
                jump_threshold_s is not None and not jump_threshold_s > 0):
            raise ConfigError(
                f"PoseBuffer needs max_gap_s > 0, tolerance_s >= 0, capacity >= 2, jump_threshold_s > 0 or None; "
                f"got {max_gap_s}, {tolerance_s}, {capacity}, {jump_threshold_s}"
            )
        self._max_gap_ns = int(max_gap_s * 1e9)
        self._tolerance_ns = int(tolerance_s * 1e9)
        self._jump_ns = None if jump_threshold_s is None else int(jump_threshold_s * 1e9)
        self._capacity = capacity
        self._stamps: list[int] = []
        self._poses: list[np.ndarray] = []
        self._conflicts: set[int] = set()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.time_jumps = 0
        """How often the poses jumped back in time by more than ``jump_threshold_s``."""

    def __len__(self) -> int:
        return len(self._stamps)

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._poses.clear()
            self._conflicts.clear()

    def discard_after(self, stamp_ns: int) -> int:
        """Forget the poses stamped after ``stamp_ns`` (an older timeline after the clock went
        back); returns how many were dropped."""
        with self._lock:
            index = bisect.bisect_right(self._stamps, stamp_ns)
            dropped = len(self._stamps) - index
            del self._stamps[index:], self._poses[index:]
            self._conflicts = {t for t in self._conflicts if t <= stamp_ns}
            return dropped

    def add(self, stamp_ns: int, T_world_cam: np.ndarray) -> bool:
        """Insert a pose (validated; InvalidPose otherwise); the oldest is evicted when full.

        The same pose again for a buffered stamp is ignored; a different one raises PoseConflict
        (the stamp is then ambiguous, see :meth:`lookup`). Returns True when this pose jumped
        back in time beyond ``jump_threshold_s`` and the older timeline was forgotten.
        """
        T = validate_pose(T_world_cam, "T_world_cam")
        stamp_ns = int(stamp_ns)
        jumped = False
        with self._lock:
            if self._jump_ns is not None and self._stamps and stamp_ns < self._stamps[-1] - self._jump_ns:
                self._stamps.clear()
                self._poses.clear()
                self._conflicts.clear()
                self.time_jumps += 1
                jumped = True
            index = bisect.bisect_left(self._stamps, stamp_ns)
            if index < len(self._stamps) and self._stamps[index] == stamp_ns:
                if np.allclose(self._poses[index], T, rtol=0.0, atol=1e-9):
                    return jumped
                self._conflicts.add(stamp_ns)
                raise PoseConflict(f"a different pose for stamp {stamp_ns * 1e-9:.9f} s arrived after the first; "
                                   "frames at this stamp are refused")
            self._stamps.insert(index, stamp_ns)
            self._poses.insert(index, T)
            if len(self._stamps) > self._capacity:
                self._conflicts.discard(self._stamps[0])
                del self._stamps[0], self._poses[0]
            self._arrived.notify_all()
        return jumped

    def _check_unambiguous(self, *stamps: int) -> None:
        for stamp in stamps:
            if stamp in self._conflicts:
                raise PoseConflict(f"two different poses arrived for stamp {stamp * 1e-9:.9f} s; "
                                   "the frame's own pose is unknown")

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
                    self._check_unambiguous(self._stamps[neighbour])
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
            self._check_unambiguous(t0, t1)
            T0, T1 = self._poses[index - 1], self._poses[index]
        alpha = (stamp_ns - t0) / (t1 - t0)
        rotations = Rotation.from_matrix(np.stack([T0[:3, :3], T1[:3, :3]]))
        T = np.eye(4)
        T[:3, :3] = Slerp([0.0, 1.0], rotations)([alpha]).as_matrix()[0]
        T[:3, 3] = (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
        return T
