"""Per-pixel depth weights in fusion (monocular mode's confidence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from scenes import Plane, frame_of, small_camera
from ssr_ros.errors import InvalidFrame
from ssr_ros.map import SemanticTSDF, TSDFConfig

CAM = small_camera()
SURFACE = torch.tensor([[0.013, -0.021, 2.0], [0.2, 0.1, 1.98]])


def new_map() -> SemanticTSDF:
    return SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21, device="cpu")


def wall_frame():
    return frame_of([Plane((0, 0, 1), 2.0)], CAM, np.eye(4))


def test_a_pixel_weight_scales_the_fusion_weight_and_leaves_the_distance_alone():
    full, half = new_map(), new_map()
    frame = wall_frame()
    full.integrate(frame)
    half.integrate(dataclasses.replace(frame, depth_weight=np.full(CAM.shape, 0.5, np.float32)))
    a, b = full.query(SURFACE), half.query(SURFACE)
    assert torch.allclose(b["weight"], 0.5 * a["weight"], atol=1e-3)
    assert torch.allclose(b["tsdf"], a["tsdf"], atol=2e-3)
    # a second, fully trusted frame counts twice as much as the half-trusted one
    half.integrate(frame)
    assert torch.allclose(half.query(SURFACE)["weight"], 1.5 * a["weight"], atol=1e-3)


def test_pixels_of_weight_zero_change_nothing():
    weights = np.ones(CAM.shape, np.float32)
    weights[:, : CAM.width // 2] = 0.0  # the left half of the image (x < 0 on the wall)
    tsdf_map = new_map()
    tsdf_map.integrate(dataclasses.replace(wall_frame(), depth_weight=weights))
    values = tsdf_map.query(torch.tensor([[-0.3, 0.0, 2.0], [0.3, 0.0, 2.0]]))
    assert values["weight"][0] == 0 and not values["observed"][0]
    assert values["weight"][1] > 0.9 and bool(torch.isfinite(values["tsdf"][1]))


@pytest.mark.parametrize("weights", [np.full((3, 3), 0.5, np.float32), np.full(CAM.shape, 1.5, np.float32),
                                     np.full(CAM.shape, np.nan, np.float32), np.ones(CAM.shape, np.int32)])
def test_bad_depth_weights_are_refused(weights):
    with pytest.raises(InvalidFrame, match="depth_weight"):
        dataclasses.replace(wall_frame(), depth_weight=weights).validate()
