"""The differentiable renderer agrees with the map's own ray caster on a fused scene."""

import numpy as np
import torch

from analytic_scene import CameraIntrinsics, trajectory
from ssr_ros.completion.renderer import look_at, render_chunk
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.semantic_tsdf import SemanticTSDF

VOXEL = 0.05


def test_rendered_chunk_depth_matches_the_map_raycaster():
    intrinsics = CameraIntrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=VOXEL, truncation_voxels=3.0, backend="torch"))
    for frame in trajectory(6, intrinsics):
        tsdf_map.integrate(frame)
    origin_voxel = torch.tensor([4, 4, -4])
    chunk = tsdf_map.extract_chunk(origin_voxel, (32, 32, 32))
    assert chunk.observed.any()
    T = look_at(torch.tensor([1.9, 2.0, 1.2]), torch.tensor([0.9, 0.9, 0.4])).numpy()
    ours = render_chunk(chunk.tsdf.double(), origin_voxel.double() * VOXEL, VOXEL, intrinsics, torch.from_numpy(T))
    theirs = tsdf_map.raycast(intrinsics, T, include_predicted=False)
    depth_map = theirs["depth"].double()
    # Compare where both hit and the map's surface point lies well inside the chunk.
    rays = intrinsics.pixel_rays(dtype=torch.float64)
    points = rays * depth_map[..., None] @ torch.from_numpy(T[:3, :3]).T + torch.from_numpy(T[:3, 3])
    lo = (origin_voxel.double() + 2) * VOXEL
    hi = (origin_voxel.double() + 30) * VOXEL
    inside = ((points > lo) & (points < hi)).all(-1)
    both = ours.hit[0] & theirs["hit"] & inside
    assert both.sum() > 200
    error = (ours.depth[0][both] - depth_map[both]).abs()
    print(f"pixels compared {int(both.sum())}, median {float(error.median()):.5f} m, p95 {float(np.quantile(error.numpy(), 0.95)):.5f} m")
    assert float(error.median()) < 0.1 * VOXEL
    assert float(np.quantile(error.numpy(), 0.95)) < 0.5 * VOXEL
