"""Exact depth images of box rooms: an empty room [0, W] x [0, D] x [0, H] with solid boxes inside.

Each pixel's ray is intersected analytically with the room's six faces (from inside) and with
the boxes (from outside); the class of the nearest hit is the pixel's ground truth.
"""

from __future__ import annotations

import numpy as np

from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.pose import look_at

FLOOR, WALL, CEILING, BOX = "floor", "wall", "ceiling", "box"


def render_box_room(size, boxes, T_world_cam, intrinsics: CameraIntrinsics):
    """(depth (H, W) float32 metres, classes (H, W) object array of FLOOR/WALL/CEILING/BOX)."""
    W, D, H = size
    v, u = np.meshgrid(np.arange(intrinsics.height), np.arange(intrinsics.width), indexing="ij")
    rays_cam = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy,
                         np.ones(u.shape)], axis=-1)
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    rays = rays_cam @ R.T
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.full(u.shape, np.inf)
        classes = np.full(u.shape, WALL, dtype=object)
        for axis, (low, high) in enumerate(((0.0, W), (0.0, D), (0.0, H))):
            for plane in (low, high):
                s = (plane - t[axis]) / rays[..., axis]
                hit = (s > 0) & (s < best)
                best = np.where(hit, s, best)
                name = WALL if axis < 2 else (FLOOR if plane == low else CEILING)
                classes[hit] = name
        for lo, hi in boxes:
            lo, hi = np.asarray(lo, float), np.asarray(hi, float)
            t0 = (lo - t) / rays
            t1 = (hi - t) / rays
            near = np.nanmax(np.minimum(t0, t1), axis=-1)
            far = np.nanmin(np.maximum(t0, t1), axis=-1)
            hit = (near <= far) & (near > 0) & (near < best)
            best = np.where(hit, near, best)
            classes[hit] = BOX
    depth = (best * rays_cam[..., 2]).astype(np.float32)
    return depth, classes


def orbit_poses(size, count: int, height: float = 1.4, radius_fraction: float = 0.25):
    """Cameras on a circle about the room's centre, looking outwards, alternately down and up."""
    W, D, _ = size
    centre = np.array([W / 2, D / 2, height])
    poses = []
    for index, angle in enumerate(np.linspace(0, 2 * np.pi, count, endpoint=False)):
        direction = np.array([np.cos(angle), np.sin(angle), -0.35 if index % 2 == 0 else 0.45])
        eye = centre + radius_fraction * min(W, D) * np.array([np.cos(angle), np.sin(angle), 0.0])
        poses.append(look_at(eye, eye + direction, up=np.array([0.0, 0.0, 1.0])))
    return poses
