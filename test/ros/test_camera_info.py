"""sensor_msgs/CameraInfo -> intrinsics, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo

from ssr_ros.errors import InvalidIntrinsics
from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.ros.conversions.camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info


@settings(max_examples=60, deadline=None)
@given(
    fx=st.floats(50, 2000), fy=st.floats(50, 2000), cx=st.floats(0, 1000), cy=st.floats(0, 800),
    width=st.integers(1, 2000), height=st.integers(1, 2000),
)
def test_intrinsics_round_trip_through_camera_info(fx, fy, cx, cy, width, height):
    intrinsics = CameraIntrinsics(fx, fy, cx, cy, width, height)
    msg = intrinsics_to_camera_info(intrinsics, frame_id="cam")
    assert list(msg.d) == [0.0] * 5 and msg.distortion_model == "plumb_bob"
    assert camera_info_to_intrinsics(msg) == intrinsics


def _info(**overrides) -> CameraInfo:
    msg = intrinsics_to_camera_info(CameraIntrinsics(525.0, 525.0, 319.5, 239.5, 640, 480))
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


def test_distortion_is_refused_unless_ignored():
    msg = _info(d=[0.1, -0.2, 0.0, 0.0, 0.0])
    with pytest.raises(InvalidIntrinsics, match="plumb_bob.*0.1, -0.2"):
        camera_info_to_intrinsics(msg)
    assert camera_info_to_intrinsics(msg, ignore_distortion=True).fx == 525.0


def test_uncalibrated_camera_is_refused():
    with pytest.raises(InvalidIntrinsics, match="not calibrated"):
        camera_info_to_intrinsics(_info(k=[0.0] * 9))


def test_binning_and_roi_are_refused():
    with pytest.raises(InvalidIntrinsics, match="binning 2x2"):
        camera_info_to_intrinsics(_info(binning_x=2, binning_y=2))
    msg = _info()
    msg.roi.width, msg.roi.height, msg.roi.x_offset = 320, 240, 10
    with pytest.raises(InvalidIntrinsics, match="region of interest 320x240\\+10\\+0"):
        camera_info_to_intrinsics(msg)


def test_full_image_roi_is_accepted():
    msg = _info()
    msg.roi.width, msg.roi.height = 640, 480
    assert camera_info_to_intrinsics(msg).width == 640


@pytest.mark.parametrize(
    "k,match",
    [
        ([525.0, 1.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0], "skew"),
        ([-525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0], "positive"),
        ([float("nan"), 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0], "not finite"),
    ],
)
def test_bad_camera_matrices_are_refused(k, match):
    with pytest.raises(InvalidIntrinsics, match=match):
        camera_info_to_intrinsics(_info(k=k))


def test_zero_size_image_is_refused():
    with pytest.raises(InvalidIntrinsics, match="size must be positive"):
        camera_info_to_intrinsics(_info(width=0))


def test_backprojection_inverts_projection():
    intrinsics = CameraIntrinsics(500.0, 480.0, 160.0, 120.0, 320, 240)
    import torch

    depth = torch.rand(240, 320) * 4 + 0.5
    points = intrinsics.backproject(depth)
    uv, z = intrinsics.project(points)
    v, u = torch.meshgrid(torch.arange(240.0), torch.arange(320.0), indexing="ij")
    np.testing.assert_allclose(uv[..., 0].numpy(), u.numpy(), atol=1e-3)
    np.testing.assert_allclose(uv[..., 1].numpy(), v.numpy(), atol=1e-3)
    np.testing.assert_allclose(z.numpy(), depth.numpy(), rtol=1e-6)
