"""Differentiable ray casting of a dense TSDF chunk into depth, color and semantic images.

Each pixel's ray is sampled at fixed steps inside the chunk; the TSDF is interpolated
trilinearly (``grid_sample``) between voxel centres. The first sample pair whose TSDF goes
from positive to non-positive brackets the surface; the crossing depth is the linear
interpolation ``t = t_k + dt * s_k / (s_k - s_{k+1})`` and any per-voxel features (color,
semantic logits) are sampled trilinearly at the crossing point. The search is done without
gradients (it is piecewise constant); the two bracketing TSDF samples and the feature
sample are recomputed with gradients, so depth is differentiable w.r.t. the TSDF voxels
around the crossing and features w.r.t. both the feature voxels and (through the hit point)
the TSDF.

Conventions: the chunk's voxel ``[i, j, k]`` has its centre at
``origin + (i + 0.5, j + 0.5, k + 0.5) * voxel_size`` in the world (map) frame; cameras are
pinhole, OpenCV optical frame, ``T_world_cam`` camera-to-world; depth is z-depth along the
optical axis (what an RGB-D camera records), metres, 0 where the ray hits nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssr_ros.errors import InvalidInput
from ssr_ros.geometry.camera import CameraIntrinsics


@dataclass
class Rendering:
    """Images of V views, each (H, W).

    depth: (V, H, W) z-depth in metres, 0 where no surface was hit.
    hit: (V, H, W) bool, a zero crossing was found along the ray.
    features: (V, H, W, C) features sampled at the surface (0 where no hit), or None.
    """

    depth: torch.Tensor
    hit: torch.Tensor
    features: torch.Tensor | None


def camera_rays(
    intrinsics: CameraIntrinsics, T_world_cam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins (V, 3) and per-pixel world directions (V, H, W, 3) with camera-z = 1.

    T_world_cam: (V, 4, 4) or (4, 4) camera-to-world poses. A point at parameter t along a
    direction has z-depth t in its camera, so t is directly the rendered depth.
    """
    if T_world_cam.ndim == 2:
        T_world_cam = T_world_cam[None]
    if T_world_cam.shape[-2:] != (4, 4):
        raise InvalidInput(f"T_world_cam must be (V, 4, 4), got {tuple(T_world_cam.shape)}")
    rays_cam = intrinsics.pixel_rays(T_world_cam.device, T_world_cam.dtype)  # (H, W, 3)
    R = T_world_cam[:, :3, :3]
    directions = torch.einsum("vab,hwb->vhwa", R, rays_cam)
    return T_world_cam[:, :3, 3], directions


def _to_grid(points: torch.Tensor, origin: torch.Tensor, voxel_size: float, size: tuple[int, int, int]) -> torch.Tensor:
    """World points (..., 3) -> grid_sample coordinates (..., 3) in [-1, 1] (align_corners=True).

    grid_sample's last axis is (W, H, D) = (z, y, x) for a volume laid out (C, X, Y, Z).
    """
    index = (points - origin) / voxel_size - 0.5  # continuous voxel index, centres at integers
    scale = torch.tensor([max(n - 1, 1) for n in size], dtype=points.dtype, device=points.device)
    normalised = 2.0 * index / scale - 1.0
    return normalised.flip(-1)


def _sample(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of volume (C, X, Y, Z) at grid coords (..., 3) -> (..., C)."""
    shape = grid.shape[:-1]
    flat = grid.reshape(1, -1, 1, 1, 3)
    sampled = F.grid_sample(volume[None], flat, mode="bilinear", padding_mode="border", align_corners=True)
    return sampled.reshape(volume.shape[0], -1).t().reshape(*shape, volume.shape[0])


def render_chunk(
    tsdf: torch.Tensor,
    origin: torch.Tensor,
    voxel_size: float,
    intrinsics: CameraIntrinsics,
    T_world_cam: torch.Tensor,
    features: torch.Tensor | None = None,
    step: float = 0.5,
    near: float = 0.05,
    far: float = 20.0,
) -> Rendering:
    """Render a chunk's predicted TSDF (and features) from one or more cameras.

    tsdf: (X, Y, Z) signed distances (any unit, only the sign and the ratio matter), positive
        in free space. Grad flows to it.
    origin: (3,) world position of the chunk's corner (voxel [0, 0, 0]'s min corner), metres.
    voxel_size: metres.
    T_world_cam: (V, 4, 4) or (4, 4) camera-to-world poses.
    features: (C, X, Y, Z) per-voxel features (e.g. RGB, semantic logits) or None.
    step: ray step as a fraction of the voxel size (measured along the ray).
    near, far: z-depth range, metres.
    Returns :class:`Rendering` with V views of intrinsics' size, on tsdf's device and dtype.
    """
    if tsdf.ndim != 3:
        raise InvalidInput(f"tsdf must be (X, Y, Z), got {tuple(tsdf.shape)}")
    if features is not None and (features.ndim != 4 or features.shape[1:] != tsdf.shape):
        raise InvalidInput(f"features must be (C, {', '.join(map(str, tsdf.shape))}), got {tuple(features.shape)}")
    dtype, device = tsdf.dtype, tsdf.device
    size = tuple(tsdf.shape)
    origin = torch.as_tensor(origin, dtype=dtype, device=device)
    T = torch.as_tensor(T_world_cam, dtype=dtype, device=device)
    centers, directions = camera_rays(intrinsics, T)  # (V, 3), (V, H, W, 3)
    V, H, W = directions.shape[:3]

    with torch.no_grad():
        # Ray / box intersection with the box spanned by the voxel centres (slab method).
        lo = origin + 0.5 * voxel_size
        hi = origin + (torch.tensor(size, dtype=dtype, device=device) - 0.5) * voxel_size
        o = centers[:, None, None, :]
        safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
        t0, t1 = (lo - o) / safe, (hi - o) / safe
        t_enter = torch.minimum(t0, t1).amax(-1).clamp(min=near)
        t_exit = torch.maximum(t0, t1).amin(-1).clamp(max=far)
        inside = t_exit > t_enter
        # Step in z-depth units so that the step along the ray is `step` voxels.
        dt = step * voxel_size / directions.norm(dim=-1)  # (V, H, W)
        span = torch.where(inside, t_exit - t_enter, torch.zeros_like(t_enter))
        n_steps = int(torch.ceil((span / dt).max()).item()) + 2 if bool(inside.any()) else 2
        k = torch.arange(n_steps, device=device, dtype=dtype)
        t = t_enter[..., None] + dt[..., None] * k  # (V, H, W, K)
        valid = inside[..., None] & (t <= t_exit[..., None] + 1e-9)
        points = o[..., None, :] + t[..., None] * directions[..., None, :]
        values = _sample(tsdf[None], _to_grid(points, origin, voxel_size, size))[..., 0]
        crossing = (values[..., :-1] > 0) & (values[..., 1:] <= 0) & valid[..., :-1] & valid[..., 1:]
        hit = crossing.any(-1)
        first = torch.argmax(crossing.to(torch.uint8), dim=-1)  # (V, H, W), 0 where no hit
        t_k = torch.gather(t, -1, first[..., None])[..., 0]

    # Recompute the bracketing samples with gradients.
    p_k = o + t_k[..., None] * directions
    p_k1 = o + (t_k + dt)[..., None] * directions
    s = _sample(tsdf[None], _to_grid(torch.stack([p_k, p_k1], dim=-2), origin, voxel_size, size))[..., 0]
    s_k, s_k1 = s[..., 0], s[..., 1]
    denominator = torch.where(hit, s_k - s_k1, torch.ones_like(s_k))
    fraction = torch.where(hit, s_k / denominator, torch.zeros_like(s_k)).clamp(0.0, 1.0)
    t_hit = t_k + dt * fraction
    depth = torch.where(hit, t_hit, torch.zeros_like(t_hit))

    rendered = None
    if features is not None:
        p_hit = o + t_hit[..., None] * directions
        sampled = _sample(features.to(dtype), _to_grid(p_hit, origin, voxel_size, size))
        rendered = torch.where(hit[..., None], sampled, torch.zeros_like(sampled))
    return Rendering(depth=depth, hit=hit, features=rendered)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
    """(4, 4) camera-to-world pose of an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world up direction (default +z); the camera's y axis points against it.
    """
    eye = torch.as_tensor(eye, dtype=torch.float64)
    target = torch.as_tensor(target, dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) if up is None else torch.as_tensor(up, dtype=torch.float64)
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, up)
    if x.norm() < 1e-9:  # looking along up: pick any perpendicular
        x = torch.linalg.cross(z, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def widened_intrinsics(intrinsics: CameraIntrinsics, fov_scale: float) -> CameraIntrinsics:
    """Same image size, focal lengths divided by ``fov_scale`` (>1 widens the field of view)."""
    if not (fov_scale > 0 and math.isfinite(fov_scale)):
        raise InvalidInput(f"fov_scale must be positive, got {fov_scale}")
    return CameraIntrinsics(
        intrinsics.fx / fov_scale, intrinsics.fy / fov_scale, intrinsics.cx, intrinsics.cy,
        intrinsics.width, intrinsics.height,
    )
