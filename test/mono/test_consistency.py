"""Multi-view consistency of predicted depth: the check itself and the stage that drops what fails it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssr_ros.completion.weights import save_model
from ssr_ros.errors import ConfigError
from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.mono.consistency import DepthView, agreeing_views
from ssr_ros.mono.network import MonoDepthNet, MonoNetConfig
from ssr_ros.mono.predictor import MonoConfig, MonoPrediction
from ssr_ros.mono.stage import MonoDepthStage, color_frame

K = CameraIntrinsics(60.0, 60.0, 39.5, 29.5, 80, 60)
WALL = 2.0  # a wall z = 2 m in the world, cameras at (x, 0, 0) looking along +z


def pose(x: float) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = x
    return T


def wall_view(x: float, depth: torch.Tensor | None = None) -> DepthView:
    return DepthView(torch.full((K.height, K.width), WALL) if depth is None else depth, K, pose(x))


def test_pixels_agree_with_the_views_that_predicted_the_same_surface():
    depth = torch.full((K.height, K.width), WALL)
    depth[20:40, 30:50] = 1.3 * WALL  # a patch the reference got wrong
    reference = wall_view(0.15, depth)
    agree, seen = agreeing_views(reference, [wall_view(0.0), wall_view(0.3)], tolerance=0.05)
    # the wall's points 0.15 m to the side move 4.5 px: the middle is seen by both views
    assert torch.all(seen[:, 10:70] == 2) and torch.all(agree[:, 10:30] == 2)
    assert torch.all(agree[20:40, 30:50] == 0) and torch.all(seen[20:40, 30:50] == 2)
    # the leftmost columns leave the image of the camera 0.15 m to their right, and vice versa
    assert torch.all(seen[:, :2] == 1) and torch.all(seen[:, -2:] == 1)
    # a view with no depth sees nothing; a loose tolerance accepts the patch
    assert int(agreeing_views(reference, [wall_view(0.0, torch.zeros(K.height, K.width))], 0.05)[1].sum()) == 0
    assert torch.all(agreeing_views(reference, [wall_view(0.0)], tolerance=0.35)[0][20:40, 30:50] == 1)


class WallPredictor:
    """Stands in for the network: predicts the wall (with a wrong patch on request)."""

    def __init__(self) -> None:
        self.patch = False
        self.weights_path = "wall"

    def __call__(self, rgb, intrinsics, semantics=None) -> MonoPrediction:
        depth = np.full(intrinsics.shape, WALL, np.float32)
        if self.patch:
            depth[20:40, 30:50] = 1.3 * WALL
        sigma = np.full(intrinsics.shape, 0.05, np.float32)
        return MonoPrediction(depth.copy(), np.full(intrinsics.shape, 0.8, np.float32), sigma, None, None, depth)


@pytest.fixture
def stage_factory(tmp_path):
    weights = save_model(MonoDepthNet(MonoNetConfig(base_width=4, levels=2, input_width=80, input_height=60)),
                         tmp_path / "mono.pt")

    def make(**overrides) -> MonoDepthStage:
        config = MonoConfig(weights=str(weights), device="cpu", stereo=False, semantics=False, key_frame_rotation_deg=0.0,
                            key_frame_translation_m=0.0, **overrides)
        stage = MonoDepthStage(config, num_classes=21)
        stage.predictor = WallPredictor()
        return stage
    return make


def test_the_stage_fuses_only_what_earlier_key_frames_agree_with(stage_factory):
    stage = stage_factory(consistency_views=2, consistency_min_views=1, consistency_tolerance=0.05,
                          consistency_failed_weight=0.0)
    rgb = np.zeros((K.height, K.width, 3), np.uint8)
    assert stage(color_frame(rgb, K, pose(0.0))) is None  # nothing to agree with yet: nothing to fuse
    second = stage(color_frame(rgb, K, pose(0.1)))
    assert np.all(second.depth_weight[:, :-4] == np.float32(0.8)) and np.all(second.depth[:, :-4] == WALL)
    assert not np.any(second.depth_weight[:, -2:])  # points the first camera does not see
    stage.predictor.patch = True
    third = stage(color_frame(rgb, K, pose(0.2)))
    assert np.all(third.depth_weight[20:40, 30:50] == 0) and np.all(third.depth[20:40, 30:50] == 0)
    assert np.all(third.depth_weight[:20, :-4] > 0)
    summary = stage.summary()
    assert summary["consistency_frames"] == 3 and summary["empty_key_frames"] == 1
    assert 0.3 < summary["consistent_pixel_fraction"] < 0.9
    stage.reset()  # forgets the earlier views: the next key frame again has nothing to agree with
    assert stage(color_frame(rgb, K, pose(0.3))) is None


def test_pixels_that_fail_the_check_fuse_with_a_lower_weight_when_asked(stage_factory):
    stage = stage_factory(consistency_views=2, consistency_min_views=1, consistency_tolerance=0.05,
                          consistency_failed_weight=0.25)
    rgb = np.zeros((K.height, K.width, 3), np.uint8)
    first = stage(color_frame(rgb, K, pose(0.0)))  # nothing to agree with: every pixel at a quarter
    assert np.allclose(first.depth_weight, 0.25 * 0.8) and np.all(first.depth == WALL)
    stage.predictor.patch = True
    second = stage(color_frame(rgb, K, pose(0.1)))
    assert np.allclose(second.depth_weight[20:40, 30:50], 0.25 * 0.8)
    assert np.all(second.depth[20:40, 30:50] == np.float32(1.3 * WALL))  # still fused, with less weight
    assert np.all(second.depth_weight[:20, :-4] == np.float32(0.8))
    assert stage.summary()["empty_key_frames"] == 0


def test_without_the_check_every_predicted_pixel_fuses(stage_factory):
    stage = stage_factory(consistency_views=0)
    out = stage(color_frame(np.zeros((K.height, K.width, 3), np.uint8), K, pose(0.0)))
    assert np.all(out.depth_weight == np.float32(0.8)) and stage.summary()["consistency_frames"] == 0


def test_more_agreeing_views_than_views_checked_is_refused():
    with pytest.raises(ConfigError, match="consistency_min_views"):
        MonoConfig(consistency_views=2, consistency_min_views=3).validate()
