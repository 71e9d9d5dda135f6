"""Point queries and sphere-traced raycasting of the map (plain torch, any device).

Values between voxel centres are trilinear (TSDF, color) over the eight surrounding voxels;
a point is unknown (NaN) when one of them holds nothing. Class, confidence and the
observed / predicted flags come from the nearest voxel. The TSDF interpolation is written
with differentiable torch ops, so gradients flow from rendered depth back to voxel values of
a dense copy when the caller substitutes one.
"""

from __future__ import annotations

import torch

from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.pose import validate_pose
from ssr_ros.errors import InvalidInput

CORNERS = torch.tensor([[dx, dy, dz] for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)], dtype=torch.int64)


def _trilinear(layer, points: torch.Tensor, include_predicted: bool, with_color: bool):
    """Trilinear TSDF (metres, NaN unknown) and color (float 0..255) at points (N, 3)."""
    s = layer.voxel_size
    g = points / s - 0.5
    base = torch.floor(g)
    frac = g - base
    base = base.to(torch.int64)
    corners = (base[:, None, :] + CORNERS.to(points.device)[None]).reshape(-1, 3)
    values = layer.read(corners)
    weight = values["weight"].reshape(-1, 8)
    known = weight > 0
    if include_predicted:
        known |= weight < 0
    c = CORNERS.to(points.device).to(points.dtype)
    w = torch.prod(torch.where(c[None] > 0, frac[:, None, :], 1 - frac[:, None, :]), dim=-1)  # (N, 8)
    tsdf = (values["tsdf"].reshape(-1, 8) * w).sum(1) * layer.truncation
    all_known = known.all(1)
    tsdf = torch.where(all_known, tsdf, torch.full_like(tsdf, float("nan")))
    color = None
    if with_color:
        color = (values["color"].reshape(-1, 8, 3).to(points.dtype) * w[..., None]).sum(1)
    return tsdf, color, all_known


def query_points(layer, points: torch.Tensor, include_predicted: bool = True) -> dict[str, torch.Tensor]:
    """Map values at world points.

    points: (N, 3) float metres, map frame. Returns a dict of tensors on the map's device:
    tsdf (N,) float32 metres, trilinear, NaN where unknown; color (N, 3) float32 in [0, 1],
    trilinear; label (N,) int64 and confidence (N,) float32 of the nearest voxel; weight (N,)
    fused weight of the nearest voxel; observed (N,) / predicted (N,) bool of the nearest voxel.
    With ``include_predicted=False`` predicted voxels count as unknown.
    """
    points = torch.as_tensor(points, device=layer.device, dtype=torch.float32)
    if points.dim() != 2 or points.shape[1] != 3:
        raise InvalidInput(f"points must have shape (N, 3), got {tuple(points.shape)}")
    tsdf, color, known = _trilinear(layer, points, include_predicted, with_color=True)
    nearest = torch.floor(points / layer.voxel_size).to(torch.int64)
    values = layer.read(nearest)
    weight = values["weight"]
    predicted = weight < 0
    label, confidence = values["label"], values["confidence"]
    if not include_predicted:
        label = torch.where(predicted, torch.zeros_like(label), label)
        confidence = torch.where(predicted, torch.zeros_like(confidence), confidence)
    return {
        "tsdf": tsdf,
        "color": torch.where(known[:, None], color / 255.0, torch.zeros_like(color)),
        "label": label,
        "confidence": confidence,
        "weight": weight.clamp(min=0.0),
        "observed": layer.observed(weight),
        "predicted": predicted,
    }


def raycast(
    layer,
    intrinsics: CameraIntrinsics,
    T_world_cam,
    min_depth: float | None = None,
    max_depth: float | None = None,
    max_steps: int = 256,
    include_predicted: bool = True,
) -> dict[str, torch.Tensor]:
    """Sphere-trace the map from a camera.

    intrinsics: image size and pinhole parameters; T_world_cam: (4, 4) camera-to-world.
    Returns (H, W) images on the map's device: depth float32 metres along the optical axis
    (0 = no surface), color (H, W, 3) uint8, label int64, confidence float32, normal (H, W, 3)
    float32 unit vectors in the map frame (0 where no hit), observed / predicted bool, hit bool.

    Each ray steps by the interpolated TSDF (at least half a voxel) where the map is known and
    by half the truncation distance where it is not; the first +/- sign change is refined by
    linear interpolation between the two samples.
    """
    T = validate_pose(T_world_cam, "T_world_cam")
    device = layer.device
    cfg = layer.config
    near = cfg.min_depth if min_depth is None else float(min_depth)
    far = cfg.max_depth if max_depth is None else float(max_depth)
    H, W = intrinsics.height, intrinsics.width
    rays_cam = intrinsics.pixel_rays(device).reshape(-1, 3)  # z = 1
    R = torch.as_tensor(T[:3, :3], dtype=torch.float32, device=device)
    origin = torch.as_tensor(T[:3, 3], dtype=torch.float32, device=device)
    dirs = rays_cam @ R.T
    ray_len = dirs.norm(dim=1)
    n = dirs.shape[0]
    t = torch.full((n,), near, device=device)
    prev_t = t.clone()
    prev_f = torch.full((n,), float("nan"), device=device)
    depth = torch.zeros(n, device=device)
    active = torch.arange(n, device=device)
    min_step = 0.5 * layer.voxel_size
    unknown_step = 0.5 * layer.truncation
    for _ in range(max_steps):
        if active.numel() == 0:
            break
        ta = t[active]
        points = origin + ta[:, None] * dirs[active]
        f, _, _ = _trilinear(layer, points, include_predicted, with_color=False)
        pf = prev_f[active]
        crossing = (pf > 0) & (f <= 0)
        entering = torch.isnan(pf) & (f <= 0)  # stepped from unknown space past the zero level
        pt = prev_t[active]
        t_hit = torch.where(crossing, pt + (ta - pt) * pf / (pf - f), ta + f / ray_len[active])
        crossing = crossing | entering
        hit_idx = active[crossing]
        depth[hit_idx] = t_hit[crossing]
        step = torch.where(torch.isnan(f), torch.full_like(f, unknown_step), torch.clamp(f, min=min_step))
        step = step / ray_len[active]
        prev_t[active] = ta
        prev_f[active] = f
        t_next = ta + step
        t[active] = t_next
        keep = ~crossing & (t_next <= far)
        active = active[keep]
    hit = depth > 0
    out_depth = depth.reshape(H, W)
    color = torch.zeros(n, 3, dtype=torch.uint8, device=device)
    label = torch.zeros(n, dtype=torch.int64, device=device)
    confidence = torch.zeros(n, device=device)
    normal = torch.zeros(n, 3, device=device)
    observed = torch.zeros(n, dtype=torch.bool, device=device)
    predicted = torch.zeros(n, dtype=torch.bool, device=device)
    idx = torch.nonzero(hit).squeeze(1)
    if idx.numel():
        points = origin + depth[idx, None] * dirs[idx]
        values = query_points(layer, points, include_predicted)
        color[idx] = torch.round(values["color"] * 255.0).clamp(0, 255).to(torch.uint8)
        label[idx] = values["label"]
        confidence[idx] = values["confidence"]
        observed[idx] = values["observed"]
        predicted[idx] = values["predicted"]
        h = layer.voxel_size
        grads = []
        for axis in range(3):
            offset = torch.zeros(3, device=device)
            offset[axis] = h
            plus, _, _ = _trilinear(layer, points + offset, include_predicted, False)
            minus, _, _ = _trilinear(layer, points - offset, include_predicted, False)
            grads.append(plus - minus)
        g = torch.stack(grads, dim=1)
        g = torch.nan_to_num(g, nan=0.0)
        normal[idx] = g / g.norm(dim=1, keepdim=True).clamp(min=1e-9)
    return {
        "depth": out_depth,
        "hit": hit.reshape(H, W),
        "color": color.reshape(H, W, 3),
        "label": label.reshape(H, W),
        "confidence": confidence.reshape(H, W),
        "normal": normal.reshape(H, W, 3),
        "observed": observed.reshape(H, W),
        "predicted": predicted.reshape(H, W),
    }
