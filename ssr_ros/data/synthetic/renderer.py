"""Vectorised ray casting of a ``Scene``: depth, color, class, instance and normals.

One ray per pixel centre (the OpenCV pinhole model of ``CameraIntrinsics``). The room shell
is hit analytically (the ray's exit from the interior box, one pass over all pixels);
every other box is slab-tested only against the pixels of its projected bounding
rectangle, updating the depth buffer in place. No Python loop runs over pixels; the only
loop is over the boxes (tens), each step a handful of tensor operations on its rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssr_ros.data.synthetic.materials import albedo, face_coordinates, shade
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.pose import validate_pose

NEAR_PLANE = 0.05
"""Hits closer than this along the optical axis (metres) are ignored."""


@dataclass
class RenderedView:
    """A noise-free rendering.

    depth: (H, W) float32 z-depth in metres along the optical axis, 0 where no surface.
    rgb: (H, W, 3) uint8 shaded color.
    class_ids: (H, W) int32 taxonomy class per pixel (0 where no surface).
    instance_ids: (H, W) int32 object instance per pixel (0 where no surface).
    normals: (H, W, 3) float32 world-frame unit surface normals facing the camera.
    cos_incidence: (H, W) float32 cosine between the viewing ray and the surface normal.
    box_ids: (H, W) int64 index of the box seen at each pixel (-1 where none).
    """

    depth: np.ndarray
    rgb: np.ndarray
    class_ids: np.ndarray
    instance_ids: np.ndarray
    normals: np.ndarray
    cos_incidence: np.ndarray
    box_ids: np.ndarray


def _safe_inverse(d: torch.Tensor) -> torch.Tensor:
    """1 / d with exact zeros replaced by 1e-12 (the slab test only needs the magnitude)."""
    return 1.0 / torch.where(d == 0, 1e-12, d)


def _box_rectangles(corners_world: np.ndarray, T_world_cam: np.ndarray, K: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive pixel rectangles ``[u0, v0, u1, v1]`` (N, 4) covering each box's projection.

    Returns the rectangles and a (N,) bool mask of boxes that may be visible at all.
    """
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    cam = (corners_world - t) @ R  # (N, 8, 3) = R^T (p - t)
    z = cam[..., 2]
    all_behind = np.all(z < NEAR_PLANE, axis=1)
    straddle = np.any(z < NEAR_PLANE, axis=1) & ~all_behind
    u, v = K.project_xy(np.concatenate([cam[..., :2], np.maximum(cam[..., 2:], NEAR_PLANE)], axis=-1))
    rect = np.stack([np.floor(u.min(1)), np.floor(v.min(1)), np.ceil(u.max(1)), np.ceil(v.max(1))], axis=1)
    full = np.array([0, 0, K.width - 1, K.height - 1], dtype=np.float64)
    rect[straddle] = full
    visible = ~all_behind & (rect[:, 2] >= 0) & (rect[:, 3] >= 0) & (rect[:, 0] <= K.width - 1) & (rect[:, 1] <= K.height - 1)
    rect[:, 0::2] = np.clip(rect[:, 0::2], 0, K.width - 1)
    rect[:, 1::2] = np.clip(rect[:, 1::2], 0, K.height - 1)
    return rect.astype(np.int64), visible


def render_view(
    scene,
    T_world_cam: np.ndarray,
    intrinsics: CameraIntrinsics,
    device: torch.device | str = "cpu",
    exclude_boxes: tuple[int, ...] = (),
) -> RenderedView:
    """Render ``scene`` from camera pose ``T_world_cam`` ((4, 4) camera-to-world, OpenCV optical).

    ``exclude_boxes`` leaves boxes out (e.g. the ceiling, for a view into the room from
    above). Works on any torch ``device``; results come back as NumPy arrays.
    """
    T = validate_pose(T_world_cam, "T_world_cam")
    boxes = scene.boxes
    geometry = scene.torch_boxes(device)
    centers, halves, rotations = geometry["centers"], geometry["half_extents"], geometry["rotations"]
    H, W = intrinsics.height, intrinsics.width
    P = H * W
    R_wc = torch.as_tensor(T[:3, :3], dtype=torch.float32, device=device)
    origin = torch.as_tensor(T[:3, 3], dtype=torch.float32, device=device)
    dirs = intrinsics.pixel_rays(device).reshape(-1, 3) @ R_wc.T  # (P, 3) world, camera z = 1

    zbuf = torch.full((P,), float("inf"), device=device)
    index = torch.full((P,), -1, dtype=torch.int64, device=device)
    interior_lo, interior_hi = scene.interior_bounds()
    inside = bool(np.all(T[:3, 3] > interior_lo) and np.all(T[:3, 3] < interior_hi)) and not exclude_boxes
    shell_ids = np.array(sorted(scene.shell.values()), dtype=np.int64)
    if inside:
        # Exit point of each ray from the interior box = the inner face of a shell slab.
        inv = _safe_inverse(dirs)
        lo = torch.as_tensor(interior_lo, dtype=torch.float32, device=device)
        hi = torch.as_tensor(interior_hi, dtype=torch.float32, device=device)
        t_exit_axis = torch.maximum((lo - origin) * inv, (hi - origin) * inv)
        t_exit, axis = t_exit_axis.min(dim=1)
        positive = dirs.gather(1, axis[:, None])[:, 0] > 0
        lookup = torch.as_tensor(
            [[scene.shell["x_min"], scene.shell["x_max"]], [scene.shell["y_min"], scene.shell["y_max"]], [scene.shell["floor"], scene.shell["ceiling"]]],
            dtype=torch.int64, device=device,
        )
        index = lookup[axis, positive.long()]
        zbuf = torch.where(t_exit > NEAR_PLANE, t_exit, torch.full_like(t_exit, float("inf")))
        index = torch.where(torch.isfinite(zbuf), index, torch.full_like(index, -1))
        candidates = np.setdiff1d(np.arange(len(boxes)), shell_ids)
    else:
        candidates = np.arange(len(boxes))

    candidates = np.setdiff1d(candidates, np.asarray(exclude_boxes, dtype=np.int64))
    rect, visible = _box_rectangles(boxes.corners()[candidates], T, intrinsics)
    candidates, rect = candidates[visible], rect[visible]
    # One pass per box over the pixels of its projected rectangle (views into the buffers):
    # few boxes, many pixels each, so the Python loop costs little and no gather is needed.
    dirs_image = dirs.reshape(H, W, 3)
    zbuf_image = zbuf.reshape(H, W)
    index_image = index.reshape(H, W)
    o_local_all = torch.einsum("nj,nji->ni", origin[None] - centers, rotations)  # R^T (o - c)
    for b, (u0, v0, u1, v1) in zip(candidates.tolist(), rect.tolist()):
        d_local = dirs_image[v0 : v1 + 1, u0 : u1 + 1] @ rotations[b]  # R^T d, (h, w, 3)
        inv = _safe_inverse(d_local)
        o, h = o_local_all[b], halves[b]
        t1 = (-h - o) * inv
        t2 = (h - o) * inv
        t_near = torch.minimum(t1, t2).amax(dim=-1)
        t_far = torch.maximum(t1, t2).amin(dim=-1)
        z_view = zbuf_image[v0 : v1 + 1, u0 : u1 + 1]
        closer = (t_near <= t_far) & (t_near > NEAR_PLANE) & (t_near < z_view)
        z_view.copy_(torch.where(closer, t_near, z_view))
        i_view = index_image[v0 : v1 + 1, u0 : u1 + 1]
        i_view.copy_(torch.where(closer, b, i_view))
    zbuf, index = zbuf_image.reshape(-1), index_image.reshape(-1)

    return _shade_pixels(scene, origin, dirs, zbuf, index, intrinsics, device)


def _shade_pixels(scene, origin, dirs, zbuf, index, intrinsics: CameraIntrinsics, device) -> RenderedView:
    H, W = intrinsics.height, intrinsics.width
    boxes = scene.boxes
    geometry = scene.torch_boxes(device)
    valid = index >= 0
    pix = torch.nonzero(valid)[:, 0]
    b = index[pix]
    t = zbuf[pix]
    d = dirs[pix]
    world = origin[None] + t[:, None] * d
    Rb = geometry["rotations"][b]
    h = geometry["half_extents"][b]
    local = torch.einsum("pj,pji->pi", world - geometry["centers"][b], Rb)
    axis = (local.abs() / h).argmax(dim=1)
    normal_local = torch.zeros_like(local)
    normal_local.scatter_(1, axis[:, None], torch.sign(local.gather(1, axis[:, None])))
    normal = torch.einsum("pij,pj->pi", Rb, normal_local)
    u, v = face_coordinates(local, axis, h)
    b_np = b.cpu().numpy()

    def col(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array[b_np], device=device)

    color = albedo(col(boxes.materials), col(boxes.colors), col(boxes.secondary_colors), col(boxes.pattern_scales), col(boxes.pattern_seeds), u, v, world)
    color = shade(color, world, normal, torch.as_tensor(scene.light_position, dtype=torch.float32, device=device))
    cos_incidence = (-(d * normal).sum(dim=1) / d.norm(dim=1)).clamp(0, 1)

    depth = np.zeros(H * W, dtype=np.float32)
    rgb = np.zeros((H * W, 3), dtype=np.uint8)
    normals = np.zeros((H * W, 3), dtype=np.float32)
    cosines = np.zeros(H * W, dtype=np.float32)
    pix_np = pix.cpu().numpy()
    depth[pix_np] = t.cpu().numpy()
    rgb[pix_np] = np.round(color.cpu().numpy() * 255.0).astype(np.uint8)
    normals[pix_np] = normal.cpu().numpy()
    cosines[pix_np] = cos_incidence.cpu().numpy()
    box_ids = index.cpu().numpy()
    class_ids = np.zeros(H * W, dtype=np.int32)
    instance_ids = np.zeros(H * W, dtype=np.int32)
    class_ids[pix_np] = boxes.class_ids[b_np]
    instance_ids[pix_np] = boxes.instance_ids[b_np]
    return RenderedView(
        depth=depth.reshape(H, W),
        rgb=rgb.reshape(H, W, 3),
        class_ids=class_ids.reshape(H, W),
        instance_ids=instance_ids.reshape(H, W),
        normals=normals.reshape(H, W, 3),
        cos_incidence=cosines.reshape(H, W),
        box_ids=box_ids.reshape(H, W),
    )
