"""The plane sweep that refines predicted depth against the previous key frame."""

from __future__ import annotations

import numpy as np
import torch

from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.mono.stereo import StereoView, gray_image, plane_sweep, sweep_size

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
