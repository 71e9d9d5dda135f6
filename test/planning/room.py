"""A small analytic room for the planner outputs: a floor at FLOOR_Z, a box standing on it, and a
predicted wall where no camera looked."""

from __future__ import annotations

import numpy as np
import torch

from scenes import Box, Plane, frame_of, look_at, small_camera
from ssr_ros.map import SemanticTSDF, TSDFConfig

VOXEL = 0.05
FLOOR_Z = 0.32
BOX_LO = (1.0, -0.3, FLOOR_Z)
BOX_HI = (1.4, 0.3, FLOOR_Z + 0.7)
WALL_X = -2.0  # predicted wall x = WALL_X, |y| < 0.5, floor to 1 m above it
WALL_CONFIDENCE = 0.6


def shapes(lift: float = 0.0):
    return [Plane((0.0, 0.0, -1.0), -(FLOOR_Z + lift), label=2),
            Box(tuple(np.add(BOX_LO, (0, 0, lift))), tuple(np.add(BOX_HI, (0, 0, lift))), label=5)]


def camera_poses(lift: float = 0.0):
    target = np.array([1.2, 0.0, FLOOR_Z + 0.3 + lift])
    poses = []
    for angle in np.radians([-60, -30, 0, 30, 60]):
        eye = target + np.array([-1.6 * np.cos(angle), 1.6 * np.sin(angle), 1.0])
        poses.append(look_at(eye, target))
    return poses


def fused_room(lift: float = 0.0, predicted_wall: bool = True) -> SemanticTSDF:
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=VOXEL, max_depth=5.0), num_classes=21)
    camera = small_camera(128, 96)
    for T in camera_poses(lift):
        tsdf_map.integrate(frame_of(shapes(lift), camera, T))
    if predicted_wall:
        write_wall(tsdf_map, lift)
    return tsdf_map


def write_wall(tsdf_map: SemanticTSDF, lift: float = 0.0) -> None:
    origin = np.array([round((WALL_X - 0.4) / VOXEL), -12, round((FLOOR_Z + lift) / VOXEL) + 1])
    size = (16, 24, 20)
    centres_x = (origin[0] + np.arange(size[0]) + 0.5) * VOXEL
    tsdf = np.clip(np.abs(centres_x - WALL_X), None, 0.2)[:, None, None] - 0.03
    tsdf = torch.as_tensor(np.broadcast_to(tsdf, size).copy(), dtype=torch.float32)
    probs = torch.zeros(size + (21,))
    probs[..., 1] = 1.0
    confidence = torch.full(size, WALL_CONFIDENCE)
    tsdf_map.write_predictions(torch.as_tensor(origin), tsdf, torch.zeros(size + (3,)), probs, confidence)
