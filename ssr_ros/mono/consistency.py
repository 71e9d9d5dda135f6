"""Multi-view geometric consistency of predicted depth (the MVS fusion check).

A key frame's predicted depth is trusted where it agrees with what earlier key frames
predicted for the same surface: each pixel is lifted to 3D with its depth, projected into an
earlier key frame, and *agrees* with it when the point's depth in that camera lies within a
relative ``tolerance`` of the depth that frame predicted at the pixel it lands on. Depth that is
wrong by a different amount in each view (the monocular network's typical error: a scale that
drifts from frame to frame) finds no partner and fuses with less weight (or not at all), so that
surfaces on which several views agree dominate the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssr_ros.geometry.camera import CameraIntrinsics


@dataclass
class DepthView:
    """A key frame's final depth kept for the check: depth (h, w) float32 tensor in metres (0 =
    none), its intrinsics at that size and T_world_cam (4, 4) float64."""

    depth: torch.Tensor
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray


def agreeing_views(reference: DepthView, others: list[DepthView], tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(agree, seen), both (h, w) int64: for each pixel of ``reference`` with depth, how many of
    ``others`` agree with it (see the module docstring) and how many see it at all (it projects in
    front of the camera, inside the image, onto a pixel with depth)."""
    K = reference.intrinsics
    depth = reference.depth
    points = K.pixel_rays(dtype=torch.float32) * depth[..., None]  # (h, w, 3) in the reference camera
    agree = torch.zeros(depth.shape, dtype=torch.int64)
    seen = torch.zeros(depth.shape, dtype=torch.int64)
    for other in others:
        T = torch.from_numpy(np.linalg.inv(other.T_world_cam) @ reference.T_world_cam).float()
        p = points @ T[:3, :3].T + T[:3, 3]
        z = p[..., 2]
        Ko = other.intrinsics
        ui, vi, inside = Ko.nearest_pixel(p)
        inside &= (z > 1e-3) & (depth > 0)
        found = other.depth[vi.clamp(0, Ko.height - 1), ui.clamp(0, Ko.width - 1)]
        hit = inside & (found > 0)
        seen += hit
        agree += hit & ((z - found).abs() <= tolerance * found)
    return agree, seen
