"""PoseBuffer: exact hits, interpolation, and refusals with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from ssr_ros.errors import InvalidPose, PoseConflict, PoseUnavailable
from ssr_ros.geometry.trajectory import PoseBuffer

S = 1_000_000_000


def pose(yaw_deg: float, x: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    T[0, 3] = x
    return T


def test_stamp_within_tolerance_returns_the_buffered_pose():
    buffer = PoseBuffer(tolerance_s=0.01)
    buffer.add(1 * S, pose(10, 1.0))
    np.testing.assert_allclose(buffer.lookup(1 * S + 5_000_000), pose(10, 1.0))


@settings(max_examples=50, deadline=None)
@given(alpha=st.floats(0.0, 1.0), yaw0=st.floats(-170, 170), yaw1=st.floats(-170, 170))
def test_interpolation_is_linear_in_translation_and_slerp_in_rotation(alpha, yaw0, yaw1):
    buffer = PoseBuffer(max_gap_s=1.0, tolerance_s=0.0)
    buffer.add(0, pose(yaw0, 0.0))
    buffer.add(S // 2, pose(yaw1, 2.0))
    T = buffer.lookup(int(alpha * S / 2))
    expected = Rotation.from_euler("z", yaw0, degrees=True) * Rotation.from_euler(
        "z", alpha * (((yaw1 - yaw0) + 180) % 360 - 180), degrees=True
    )
    np.testing.assert_allclose(T[:3, :3], expected.as_matrix(), atol=1e-6)
    assert T[0, 3] == pytest.approx(2.0 * int(alpha * S / 2) / (S / 2), abs=1e-9)


def test_refusals_say_why():
    buffer = PoseBuffer(max_gap_s=0.5, tolerance_s=0.0)
    with pytest.raises(PoseUnavailable, match="no camera pose received yet"):
        buffer.lookup(0)
    buffer.add(10 * S, pose(0, 0))
    buffer.add(11 * S, pose(0, 1))
    with pytest.raises(PoseUnavailable, match="older than the oldest pose"):
        buffer.lookup(9 * S)
    with pytest.raises(PoseUnavailable, match="newer than the latest pose"):
        buffer.lookup(12 * S)
    with pytest.raises(PoseUnavailable, match="1.000 s apart"):
        buffer.lookup(10 * S + S // 2)


def test_capacity_evicts_the_oldest_and_invalid_poses_are_refused():
    buffer = PoseBuffer(capacity=3, tolerance_s=0.0)
    for i in range(5):
        buffer.add(i * S, pose(0, i))
    assert len(buffer) == 3
    with pytest.raises(PoseUnavailable, match="older"):
        buffer.lookup(1 * S)
    with pytest.raises(InvalidPose):
        buffer.add(9 * S, np.full((4, 4), np.nan))
    assert len(buffer) == 3


def test_waiting_for_a_late_pose_returns_when_it_arrives():
    import threading

    buffer = PoseBuffer(tolerance_s=0.0)
    buffer.add(0, pose(0, 0))
    assert not buffer.wait_until_covered(S, timeout_s=0.05)
    threading.Timer(0.05, lambda: buffer.add(S, pose(0, 1))).start()
    assert buffer.wait_until_covered(S, timeout_s=5.0)
    assert buffer.lookup(S)[0, 3] == 1.0


def test_a_second_different_pose_for_a_stamp_is_refused_and_the_stamp_becomes_unusable():
    """Two frames sent with one stamp: the second pose must not replace the first (the first
    frame's images would be fused at the second frame's pose), and no frame at that stamp
    may take either pose, since nothing tells which one its images belong to."""
    buffer = PoseBuffer(max_gap_s=1.0, tolerance_s=0.0)
    buffer.add(1 * S, pose(0, 0.0))
    buffer.add(2 * S, pose(10, 1.0))
    with pytest.raises(PoseConflict, match="different pose"):
        buffer.add(2 * S, pose(90, 5.0))
    with pytest.raises(PoseConflict):
        buffer.lookup(2 * S)
    with pytest.raises(PoseConflict):
        buffer.lookup(1 * S + S // 2)  # interpolation would use the ambiguous pose too
    np.testing.assert_allclose(buffer.lookup(1 * S), pose(0, 0.0))


def test_the_same_pose_again_for_a_stamp_is_accepted():
    buffer = PoseBuffer(tolerance_s=0.0)
    buffer.add(1 * S, pose(10, 1.0))
    buffer.add(1 * S, pose(10, 1.0))
    assert len(buffer) == 1
    np.testing.assert_allclose(buffer.lookup(1 * S), pose(10, 1.0))


def test_a_backwards_clock_jump_forgets_the_old_timeline():
    buffer = PoseBuffer(max_gap_s=1.0, tolerance_s=0.0, jump_threshold_s=2.0)
    for k in range(10, 20):
        assert not buffer.add(k * S, pose(0, float(k)))
    assert not buffer.add(18 * S + 1, pose(0, 18.0))  # late, but within the threshold: kept
    assert buffer.add(1 * S, pose(45, -1.0))  # restarted simulator
    assert buffer.time_jumps == 1 and len(buffer) == 1
    buffer.add(1 * S + S // 2, pose(45, -2.0))
    np.testing.assert_allclose(buffer.lookup(1 * S)[:3, 3], [-1.0, 0.0, 0.0])
    with pytest.raises(PoseUnavailable, match="newer than the latest"):
        buffer.lookup(15 * S)


def test_discard_after_drops_only_newer_poses():
    buffer = PoseBuffer(tolerance_s=0.0)
    for k in range(5):
        buffer.add(k * S, pose(0, float(k)))
    assert buffer.discard_after(2 * S) == 2
    assert len(buffer) == 3
