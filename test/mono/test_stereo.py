"""The plane sweep that refines predicted depth against the previous key frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssr_ros.completion.weights import save_model
from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.mono.network import MonoDepthNet, MonoNetConfig
from ssr_ros.mono.predictor import MonoConfig, MonoPrediction
from ssr_ros.mono.stage import MonoDepthStage, color_frame
from ssr_ros.mono.stereo import MAX_SCALE_CHANGE, StereoView, gray_image, match_scale, plane_sweep, sweep_size

K = CameraIntrinsics(60.0, 60.0, 39.5, 29.5, 80, 60)
WALL = 2.0  # a textured wall z = 2 m in the world, cameras looking along +z


def texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth random pattern on the wall (world metres -> gray in [0, 1])."""
    rng = np.random.default_rng(0)
    out = np.zeros_like(x)
    for _ in range(12):
        fx, fy, phase = rng.uniform(3, 15), rng.uniform(3, 15), rng.uniform(0, 6.3)
        out += np.sin(fx * x + phase) * np.cos(fy * y + 0.5 * phase)
    return 0.5 + 0.05 * out


def view_of_wall(x_camera: float) -> tuple[StereoView, np.ndarray]:
    """Gray image and exact depth of the wall from a camera at (x_camera, 0, 0)."""
    v, u = np.mgrid[0 : K.height, 0 : K.width].astype(np.float64)
    x = x_camera + (u - K.cx) / K.fx * WALL
    y = (v - K.cy) / K.fy * WALL
    T = np.eye(4)
    T[0, 3] = x_camera
    return StereoView(torch.from_numpy(texture(x, y)).float(), K, T), np.full((K.height, K.width), WALL, np.float32)


def test_the_sweep_finds_the_wall_where_the_prediction_was_20_percent_off():
    reference, truth = view_of_wall(0.15)
    source, _ = view_of_wall(0.0)
    prior = torch.full((K.height, K.width), WALL * 1.2)
    sigma = torch.full_like(prior, 0.15)
    depth, new_sigma = plane_sweep(reference, source, prior, sigma, planes=24)
    matched = new_sigma < sigma
    assert matched.float().mean() > 0.5  # most of the image sees the wall in both views
    error = (depth[matched] - WALL).abs() / WALL
    assert float(error.median()) < 0.01 and float(error.quantile(0.95)) < 0.05
    assert float((error > 0.05).float().mean()) < 0.06  # a few false matches remain (no left-right check)
    assert torch.equal(depth[~matched], prior[~matched])  # elsewhere the prediction stands


def test_without_parallax_or_texture_nothing_changes():
    reference, _ = view_of_wall(0.0)
    prior = torch.full((K.height, K.width), 2.4)
    sigma = torch.full_like(prior, 0.15)
    flat = StereoView(torch.full((K.height, K.width), 0.5), K, reference.T_world_cam)
    moved = StereoView(torch.full((K.height, K.width), 0.5), K, view_of_wall(0.15)[0].T_world_cam)
    depth, new_sigma = plane_sweep(moved, flat, prior, sigma)
    assert torch.equal(depth, prior) and torch.equal(new_sigma, sigma)


def test_sweep_size_keeps_the_pinhole_consistent():
    K2, factor = sweep_size(CameraIntrinsics(500.0, 500.0, 319.5, 239.5, 640, 480), 160)
    assert factor == 4 and (K2.width, K2.height) == (160, 120)
    assert K2.fx == 125.0 and K2.cx == 79.5 and K2.cy == 59.5  # the image centre stays the centre
    gray = gray_image(np.full((480, 640, 3), 255, np.uint8), 120, 160)
    assert gray.shape == (120, 160) and torch.allclose(gray, torch.ones(120, 160))


def test_match_scale_is_the_median_ratio_of_the_matches_within_its_limits():
    depth = torch.full((10, 10), 2.0)
    refined = depth.clone()
    matched = torch.zeros(10, 10, dtype=torch.bool)
    matched[:6] = True
    refined[:6] = 1.6
    refined[0, 0] = 9.0  # one false match does not move the median
    assert match_scale(depth, refined, matched, 0.01) == pytest.approx(0.8)
    assert match_scale(depth, refined, matched, 0.0) is None  # off
    assert match_scale(depth, refined, matched, 0.7) is None  # too few pixels matched
    assert match_scale(depth, refined * 3, matched, 0.01) == pytest.approx(MAX_SCALE_CHANGE)
    small = torch.zeros(10, 10, dtype=torch.bool)
    small[0, :5] = True  # 5 % of the pixels but fewer than MIN_SCALE_MATCHES
    assert match_scale(depth, refined, small, 0.01) is None


class OffWallPredictor:
    """Stands in for the network: the wall's shape right, its scale 20 % too far, unsure."""

    weights_path = "wall"

    def __call__(self, rgb, intrinsics, semantics=None) -> MonoPrediction:
        depth = np.full(intrinsics.shape, 1.2 * WALL, np.float32)
        sigma = np.full(intrinsics.shape, 0.1, np.float32)
        return MonoPrediction(depth.copy(), np.full(intrinsics.shape, 0.5, np.float32), sigma, None, None, depth)


@pytest.mark.parametrize("min_fraction", [0.02, 0.0])
def test_pixels_the_sweep_cannot_match_take_the_scale_of_those_it_did(tmp_path, min_fraction):
    """The right half of the wall is blank (no texture to match): with the scale on, it moves with the
    left half's matches from 1.2 x to the wall's true depth; off, it keeps the network's depth."""
    weights = save_model(MonoDepthNet(MonoNetConfig(base_width=4, levels=2, input_width=80, input_height=60)),
                         tmp_path / "mono.pt")
    stage = MonoDepthStage(MonoConfig(weights=str(weights), device="cpu", semantics=False, flip_average=False,
                                      key_frame_rotation_deg=0.0, key_frame_translation_m=0.0, consistency_views=0,
                                      stereo_scale_min_fraction=min_fraction), num_classes=21)
    stage.predictor = OffWallPredictor()

    def frame(x: float):
        view, _ = view_of_wall(x)
        gray = view.gray.numpy().copy()
        gray[:, K.width // 2:] = 0.5
        rgb = np.repeat((255 * gray).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
        return color_frame(rgb, K, view.T_world_cam)

    stage(frame(0.0))  # nothing to sweep against yet
    out = stage(frame(0.15))
    left, right = out.depth[:, 8 : K.width // 2 - 8], out.depth[:, K.width // 2 + 8 :]
    assert np.mean(np.abs(left - WALL) < 0.05 * WALL) > 0.5  # the sweep's matches
    if min_fraction:
        assert np.allclose(right, WALL, rtol=0.03)
        assert stage.summary()["stereo_scaled_frames"] == 1
        assert stage.summary()["stereo_scale_change_mean"] == pytest.approx(0.2, abs=0.03)
    else:
        assert np.all(right == np.float32(1.2 * WALL))
        assert stage.summary()["stereo_scaled_frames"] == 0
