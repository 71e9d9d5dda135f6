"""Projective TSDF integration of one frame, in plain PyTorch (any device).

The steps of :meth:`SemanticTSDF.integrate`:

1. :func:`clean_depth` - depth outside ``[min_depth, max_depth]`` (and NaN/Inf) becomes 0;
2. :func:`touched_blocks` - the blocks within ``truncation`` of the measured points
   (every ``allocation_stride``-th pixel), deduplicated on a dense bitmap of their bounding box;
3. :func:`carving_blocks` - allocated blocks seen in front of the measured surface;
4. :func:`integrate_blocks` - every voxel of the active blocks is projected into the image,
   and its TSDF, weight, color and semantic evidence are updated in place.

``ssr_ros.map.native`` implements steps 1, 2 and 4 as a compiled CPU kernel with the same
arithmetic; this module is the reference and the path for CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssr_ros.map.semantic_evidence import update_evidence
from ssr_ros.map.voxel_blocks import VoxelBlocks

BITMAP_LIMIT = 1 << 25
"""Largest block bounding box (cells) deduplicated with a bitmap; larger ones use unique()."""


@dataclass(frozen=True)
class Projection:
    """World-to-camera transform and pinhole parameters as Python floats (float32 maths)."""

    R: tuple[tuple[float, float, float], ...]  # rotation of T_cam_world, row-major
    t: tuple[float, float, float]
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_pose(cls, intrinsics, T_world_cam) -> "Projection":
        import numpy as np

        from ssr_ros.geometry.pose import invert_pose

        T = invert_pose(np.asarray(T_world_cam, dtype=np.float64)).astype(np.float32)
        return cls(
            tuple(tuple(float(x) for x in row) for row in T[:3, :3]),
            tuple(float(x) for x in T[:3, 3]),
            float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy),
            intrinsics.width, intrinsics.height,
        )

    @classmethod
    def camera_to_world(cls, intrinsics, T_world_cam) -> "Projection":
        """The camera-to-world rotation/translation of ``T_world_cam`` (float32) with the same
        pinhole parameters: maps camera points to world points (unprojection side)."""
        import numpy as np

        T = np.asarray(T_world_cam, dtype=np.float32)
        return cls(
            tuple(tuple(float(x) for x in row) for row in T[:3, :3]),
            tuple(float(x) for x in T[:3, 3]),
            float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy),
            intrinsics.width, intrinsics.height,
        )

    def flat(self) -> list[float]:
        """[R (9, row-major), t (3), fx, fy, cx, cy] for the native kernel."""
        return [x for row in self.R for x in row] + list(self.t) + [self.fx, self.fy, self.cx, self.cy]


def clean_depth(depth: torch.Tensor, min_depth: float, max_depth: float) -> tuple[torch.Tensor, bool]:
    """Depth with every pixel outside [min_depth, max_depth] (NaN, Inf, 0 included) set to 0.

    Returns (clean (H, W) float32, whether the input has any finite positive pixel).
    """
    has_valid = bool((torch.isfinite(depth) & (depth > 0)).any())
    keep = (depth >= min_depth) & (depth <= max_depth)
    return torch.where(keep, depth, torch.zeros_like(depth)), has_valid


def _camera_to_world_points(depth: torch.Tensor, proj_world_cam: "Projection", stride: int) -> torch.Tensor:
    """World points (P, 3) of the valid pixels on the stride grid (float32, explicit op order)."""
    sub = depth[::stride, ::stride]
    v, u = torch.nonzero(sub > 0, as_tuple=True)
    d = sub[v, u]
    u = (u * stride).to(torch.float32)
    v = (v * stride).to(torch.float32)
    p = proj_world_cam
    x = (u - p.cx) / p.fx * d
    y = (v - p.cy) / p.fy * d
    R, t = p.R, p.t
    wx = R[0][0] * x + R[0][1] * y + R[0][2] * d + t[0]
    wy = R[1][0] * x + R[1][1] * y + R[1][2] * d + t[1]
    wz = R[2][0] * x + R[2][1] * y + R[2][2] * d + t[2]
    return torch.stack([wx, wy, wz], dim=1)


def touched_blocks(
    depth: torch.Tensor,
    proj_world_cam: "Projection",
    truncation: float,
    block_extent: float,
    stride: int,
) -> torch.Tensor:
    """Sorted unique (M, 3) int64 coordinates of the blocks within ``truncation`` of a point.

    ``proj_world_cam`` carries the camera-to-world rotation/translation (not world-to-camera).
    Each point of the stride grid touches the blocks overlapping the cube
    ``[p - truncation, p + truncation]``.
    """
    points = _camera_to_world_points(depth, proj_world_cam, stride)
    if points.shape[0] == 0:
        return torch.empty(0, 3, dtype=torch.int64, device=depth.device)
    lo = torch.floor((points - truncation) / block_extent).to(torch.int64)
    hi = torch.floor((points + truncation) / block_extent).to(torch.int64)
    span = int((hi - lo).max()) + 1
    offsets = torch.stack(
        torch.meshgrid(*[torch.arange(span, device=depth.device)] * 3, indexing="ij"), dim=-1
    ).reshape(-1, 3)
    cand = lo[:, None, :] + offsets[None]
    cand = cand[(cand <= hi[:, None, :]).all(-1)]
    box_lo = lo.min(0).values
    dims = hi.max(0).values - box_lo + 1
    cells = int(dims.prod())
    if cells <= BITMAP_LIMIT:
        rel = cand - box_lo
        linear = (rel[:, 0] * dims[1] + rel[:, 1]) * dims[2] + rel[:, 2]
        bitmap = torch.zeros(cells, dtype=torch.bool, device=depth.device)
        bitmap[linear] = True
        linear = torch.nonzero(bitmap).squeeze(1)
        z = linear % dims[2]
        y = (linear // dims[2]) % dims[1]
        x = linear // (dims[1] * dims[2])
        return torch.stack([x, y, z], dim=1) + box_lo
    return torch.unique(cand, dim=0)


def carving_blocks(
    block_coords: torch.Tensor,
    depth: torch.Tensor,
    proj: "Projection",
    block_extent: float,
    min_depth: float = 0.0,
    max_depth: float = float("inf"),
) -> torch.Tensor:
    """(N,) bool: allocated blocks whose centre projects onto a pixel with depth in
    [min_depth, max_depth] and which reach in front of that depth (part of the block may be
    free space). ``depth`` may be raw or cleaned."""
    if block_coords.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool, device=depth.device)
    c = (block_coords.to(torch.float32) + 0.5) * block_extent
    R, t = proj.R, proj.t
    x = R[0][0] * c[:, 0] + R[0][1] * c[:, 1] + R[0][2] * c[:, 2] + t[0]
    y = R[1][0] * c[:, 0] + R[1][1] * c[:, 1] + R[1][2] * c[:, 2] + t[1]
    z = R[2][0] * c[:, 0] + R[2][1] * c[:, 1] + R[2][2] * c[:, 2] + t[2]
    radius = 0.8660254 * block_extent
    safe_z = torch.where(z > 1e-6, z, torch.ones_like(z))
    u = torch.round(proj.fx * x / safe_z + proj.cx)
    v = torch.round(proj.fy * y / safe_z + proj.cy)
    inside = (z > 1e-6) & (u >= 0) & (u < proj.width) & (v >= 0) & (v < proj.height)
    index = (v.clamp(0, proj.height - 1) * proj.width + u.clamp(0, proj.width - 1)).to(torch.int64)
    d = depth.reshape(-1)[index]
    return inside & (d > 0) & (d >= min_depth) & (d <= max_depth) & (z - radius < d)


@dataclass(frozen=True)
class FusionParams:
    """Scalars of one integration call."""

    voxel_size: float
    block_size: int
    truncation: float
    max_weight: float
    inverse_square: bool
    semantic_max_weight: float
    weight_dropoff: bool = True


def _voxel_offsets(block_size: int, device: torch.device) -> torch.Tensor:
    """(V, 3) int64 local voxel indices (i, j, k) in storage order (x fastest)."""
    r = torch.arange(block_size, device=device)
    k, j, i = torch.meshgrid(r, r, r, indexing="ij")
    return torch.stack([i.reshape(-1), j.reshape(-1), k.reshape(-1)], dim=1)


def integrate_blocks(
    blocks: VoxelBlocks,
    slots: torch.Tensor,
    depth: torch.Tensor,
    rgb: torch.Tensor | None,
    sem_labels: torch.Tensor | None,
    sem_weights: torch.Tensor | None,
    proj: "Projection",
    params: FusionParams,
    depth_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fuse a cleaned depth image (and color / semantics) into the voxels of ``slots``.

    depth: (H, W) float32 metres, 0 = invalid. rgb: (H, W, 3) uint8 or None.
    depth_weight: (H, W) float32 in [0, 1] scaling each pixel's fusion weight, or None.
    sem_labels: (H, W, K) int64 class ids (0 = no vote) with sem_weights (H, W, K) float32
    vote strengths, or None. Returns (M,) bool: which of the blocks changed.
    """
    M = int(slots.numel())
    device = depth.device
    if M == 0:
        return torch.zeros(0, dtype=torch.bool, device=device)
    B = params.block_size
    voxel = blocks.block_coords[slots][:, None, :] * B + _voxel_offsets(B, device)[None]
    p = (voxel.to(torch.float32) + 0.5) * params.voxel_size  # (M, V, 3) world centres
    px, py, pz = p[..., 0], p[..., 1], p[..., 2]
    R, t = proj.R, proj.t
    xc = R[0][0] * px + R[0][1] * py + R[0][2] * pz + t[0]
    yc = R[1][0] * px + R[1][1] * py + R[1][2] * pz + t[1]
    z = R[2][0] * px + R[2][1] * py + R[2][2] * pz + t[2]
    front = z > 0
    safe_z = torch.where(front, z, torch.ones_like(z))
    u = torch.round(proj.fx * xc / safe_z + proj.cx)
    v = torch.round(proj.fy * yc / safe_z + proj.cy)
    inside = front & (u >= 0) & (u < proj.width) & (v >= 0) & (v < proj.height)
    pixel = (v.clamp(0, proj.height - 1) * proj.width + u.clamp(0, proj.width - 1)).to(torch.int64)
    d = depth.reshape(-1)[pixel]
    sdf = d - z
    update = inside & (d > 0) & (sdf >= -params.truncation)
    changed = update.any(dim=1)
    rows = slots[changed]
    if rows.numel() == 0:
        return changed
    update, pixel, sdf, d = update[changed], pixel[changed], sdf[changed], d[changed]

    tsdf_old = blocks.tsdf[rows].to(torch.float32)
    weight_stored = blocks.weight[rows].to(torch.float32)
    predicted = weight_stored < 0
    weight_old = torch.where(predicted, torch.zeros_like(weight_stored), weight_stored)
    observation = torch.clamp(sdf / params.truncation, max=1.0)
    if params.inverse_square:
        w = 1.0 / (d * d)
    else:
        w = torch.ones_like(d)
    if params.weight_dropoff:
        # behind the surface the measurement is less certain: the weight falls linearly from
        # one voxel behind to zero at -truncation
        dropoff = (params.truncation + sdf) / (params.truncation - params.voxel_size)
        w = torch.where(sdf < -params.voxel_size, w * dropoff, w)
    if depth_weight is not None:  # a pixel of weight 0 updates nothing
        pixel_weight = depth_weight.reshape(-1)[pixel]
        update = update & (pixel_weight > 0)
        w = w * pixel_weight
    w = torch.where(update, w, torch.zeros_like(w))
    weight_sum = weight_old + w
    safe_sum = torch.where(update, weight_sum, torch.ones_like(weight_sum))
    tsdf_new = (tsdf_old * weight_old + observation * w) / safe_sum
    blocks.tsdf[rows] = torch.where(update, tsdf_new, tsdf_old).to(torch.float16)
    weight_new = torch.clamp(weight_sum, max=params.max_weight)
    blocks.weight[rows] = torch.where(update, weight_new, weight_stored).to(torch.float16)

    if rgb is not None:
        color_old = blocks.color[rows].to(torch.float32)
        color_obs = rgb.reshape(-1, 3)[pixel].to(torch.float32)
        color_new = torch.round(
            (color_old * weight_old[..., None] + color_obs * w[..., None]) / safe_sum[..., None]
        ).clamp(0, 255)
        blocks.color[rows] = torch.where(update[..., None], color_new, color_old).to(torch.uint8)

    labels = blocks.sem_label[rows]
    counts = blocks.sem_count[rows].to(torch.float32)
    reset = update & predicted
    counts = torch.where(reset[..., None], torch.zeros_like(counts), counts)
    if sem_labels is not None:
        near = update & (sdf < params.truncation)
        K = sem_labels.shape[-1]
        flat_labels = sem_labels.reshape(-1, K)
        flat_weights = sem_weights.reshape(-1, K) if sem_weights is not None else None
        for slot in range(K):  # K <= 2 votes per pixel
            vote = flat_labels[pixel, slot]
            strength = w if flat_weights is None else w * flat_weights[pixel, slot]
            vote_w = torch.where(near & (vote > 0), strength, torch.zeros_like(w))
            labels, counts = update_evidence(labels, counts, vote, vote_w, params.semantic_max_weight)
    blocks.sem_label[rows] = labels
    blocks.sem_count[rows] = counts.to(torch.float16)
    return changed
