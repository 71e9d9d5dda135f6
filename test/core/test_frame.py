"""Frame validation and intrinsics helpers."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.errors import InvalidFrame, InvalidIntrinsics, InvalidPose
from ssr_ros.geometry import CameraIntrinsics, Frame

K = CameraIntrinsics(100.0, 100.0, 15.5, 11.5, 32, 24)


def make_frame(**overrides) -> Frame:
    values = {"depth": np.full((24, 32), 2.0, np.float32), "intrinsics": K, "T_world_cam": np.eye(4)}
    values.update(overrides)
    return Frame(**values)


def test_valid_frame_passes_and_depth_becomes_float32():
    frame = make_frame(depth=np.full((24, 32), 2.0), rgb=np.zeros((24, 32, 3), np.uint8), labels=np.ones((24, 32), np.int32))
    assert frame.validate().depth.dtype == np.float32


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        ({"depth": np.ones((24, 31), np.float32)}, InvalidFrame, "depth is 31x24 but the intrinsics are 32x24"),
        ({"depth": np.ones((24, 32, 1), np.float32)}, InvalidFrame, "2-D image"),
        ({"depth": np.zeros((24, 32), np.float32)}, InvalidFrame, "no valid pixel"),
        ({"depth": np.full((24, 32), np.nan, np.float32)}, InvalidFrame, "no valid pixel"),
        ({"rgb": np.zeros((24, 32, 3), np.float32)}, InvalidFrame, "rgb must be uint8"),
        ({"labels": np.zeros((24, 32), np.float32)}, InvalidFrame, "labels must be an integer image"),
        ({"label_probs": np.zeros((24, 30, 21), np.float32)}, InvalidFrame, "label_probs must have shape"),
        ({"T_world_cam": np.full((4, 4), np.nan)}, InvalidPose, "non-finite"),
    ],
)
def test_invalid_frames_are_refused_with_the_reason(overrides, error, match):
    with pytest.raises(error, match=match):
        make_frame(**overrides).validate()


def test_valid_depth_mask_excludes_zero_nan_inf_and_negative():
    depth = np.array([[0.0, np.nan, np.inf, -1.0, 1.5]], np.float32)
    np.testing.assert_array_equal(make_frame().valid_depth_mask()[:1, :1], [[True]])
    frame = Frame(depth, CameraIntrinsics(1, 1, 0, 0, 5, 1), np.eye(4))
    np.testing.assert_array_equal(frame.valid_depth_mask(), [[False, False, False, False, True]])


def test_scaled_intrinsics_keep_pixel_centres_consistent():
    half = K.scaled(0.5)
    assert (half.width, half.height) == (16, 12)
    # the principal point of a 32-pixel-wide image centred at 15.5 maps to 7.5 in 16 pixels
    assert half.cx == pytest.approx(7.5) and half.fx == pytest.approx(50.0)


@pytest.mark.parametrize(
    "args,match",
    [((0.0, 1.0, 0.0, 0.0, 2, 2), "positive"), ((1.0, 1.0, 0.0, 0.0, 0, 2), "size must be positive"),
     ((1.0, float("inf"), 0.0, 0.0, 2, 2), "not finite"), ((1.0, 1.0, 0.0, 0.0, 2.5, 2), "integer")],
)
def test_bad_intrinsics_are_refused(args, match):
    with pytest.raises(InvalidIntrinsics, match=match):
        CameraIntrinsics(*args)
