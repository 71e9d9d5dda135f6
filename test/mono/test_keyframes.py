"""Key-frame selection by rotation / translation since the last key frame."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssr_ros.errors import InvalidPose
from ssr_ros.mono.keyframes import KeyFrameConfig, KeyFrameSelector, relative_motion


def pose(x: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix()
    T[0, 3] = x
    return T


def test_relative_motion_measures_angle_and_distance():
    rotation, translation = relative_motion(pose(0.0, 0.0), pose(0.3, 20.0))
    assert rotation == pytest.approx(20.0) and translation == pytest.approx(0.3)


def test_a_new_key_frame_needs_enough_rotation_or_translation_since_the_last_key_frame():
    selector = KeyFrameSelector(KeyFrameConfig(rotation_deg=15.0, translation_m=0.1))
    assert selector.is_key(pose())  # the first frame
    assert not selector.is_key(pose(0.05))
    assert not selector.is_key(pose(0.09, 10.0))
    assert selector.is_key(pose(0.11))  # measured from the last *key* frame, not the last frame
    assert not selector.is_key(pose(0.11, 14.0))
    assert selector.is_key(pose(0.11, 16.0))
    assert (selector.frames_seen, selector.key_frames) == (6, 3)
    selector.reset()
    assert selector.is_key(pose(0.11, 16.0))


def test_zero_thresholds_make_every_frame_a_key_frame_and_bad_poses_are_refused():
    selector = KeyFrameSelector(KeyFrameConfig(rotation_deg=0.0, translation_m=0.0))
    assert all(selector.is_key(pose()) for _ in range(3))
    bad = pose()
    bad[0, 0] = 2.0
    with pytest.raises(InvalidPose):
        selector.is_key(bad)
