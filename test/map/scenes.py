"""Analytic test scenes (planes, spheres, boxes) rendered to depth / labels by ray casting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.geometry import CameraIntrinsics, Frame


@dataclass
class Sphere:
    center: tuple[float, float, float]
    radius: float
    label: int = 1
    color: tuple[int, int, int] = (200, 50, 50)

    def intersect(self, origin, dirs):
        oc = origin - np.asarray(self.center)
        b = dirs @ oc
        a = np.einsum("ij,ij->i", dirs, dirs)
        c = oc @ oc - self.radius**2
        disc = b * b - a * c
        t = (-b - np.sqrt(np.maximum(disc, 0))) / a
        return np.where((disc >= 0) & (t > 0), t, np.inf)

    def distance(self, points):
        return np.linalg.norm(points - np.asarray(self.center), axis=-1) - self.radius


@dataclass
class Plane:
    """Points x with normal . x = offset; the camera side is where normal . x < offset."""

    normal: tuple[float, float, float]
    offset: float
    label: int = 2
    color: tuple[int, int, int] = (50, 200, 50)

    def intersect(self, origin, dirs):
        n = np.asarray(self.normal, dtype=np.float64)
        denom = dirs @ n
        t = (self.offset - origin @ n) / np.where(np.abs(denom) > 1e-12, denom, 1e-12)
        return np.where(t > 0, t, np.inf)

    def distance(self, points):
        return np.abs(points @ np.asarray(self.normal) - self.offset)


@dataclass
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int = 3
    color: tuple[int, int, int] = (50, 50, 200)

    def intersect(self, origin, dirs):
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (lo - origin) / dirs
            t2 = (hi - origin) / dirs
        tmin = np.nanmax(np.minimum(t1, t2), axis=1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=1)
        return np.where((tmax >= tmin) & (tmin > 0), tmin, np.inf)

    def distance(self, points):
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        c, h = (lo + hi) / 2, (hi - lo) / 2
        q = np.abs(points - c) - h
        outside = np.linalg.norm(np.maximum(q, 0), axis=-1)
        inside = np.minimum(np.max(q, axis=-1), 0)
        return np.abs(outside + inside)


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world pose (OpenCV optical frame) at ``eye`` looking at ``target``."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def small_camera(width: int = 96, height: int = 72, fov_scale: float = 0.9) -> CameraIntrinsics:
    f = fov_scale * width
    return CameraIntrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width, height)


def render(shapes, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray):
    """(depth float32 metres (0 = no hit), rgb uint8, labels int64) of the scene."""
    rays = intrinsics.pixel_rays().numpy().reshape(-1, 3).astype(np.float64)
    R, origin = T_world_cam[:3, :3], T_world_cam[:3, 3]
    dirs = rays @ R.T
    hits = np.stack([s.intersect(origin, dirs) for s in shapes], axis=1)
    nearest = np.argmin(hits, axis=1)
    t = hits[np.arange(len(rays)), nearest]
    hit = np.isfinite(t)
    depth = np.where(hit, t, 0.0).astype(np.float32)  # dirs have z = 1 in the camera: t = depth
    labels = np.array([s.label for s in shapes])[nearest] * hit
    colors = np.array([s.color for s in shapes], dtype=np.uint8)[nearest] * hit[:, None].astype(np.uint8)
    shape = intrinsics.shape
    return depth.reshape(shape), colors.reshape(shape + (3,)), labels.reshape(shape).astype(np.int64)


def frame_of(shapes, intrinsics, T_world_cam, with_labels=True) -> Frame:
    depth, rgb, labels = render(shapes, intrinsics, T_world_cam)
    return Frame(depth, intrinsics, T_world_cam, rgb=rgb, labels=labels if with_labels else None)


def orbit_poses(target, radius, count, height=0.3):
    poses = []
    for k in range(count):
        a = 2 * np.pi * k / count
        eye = np.asarray(target) + np.array([radius * np.cos(a), radius * np.sin(a), height * ((-1) ** k)])
        poses.append(look_at(eye, target))
    return poses


def map_state(tsdf_map) -> dict:
    """Copies of everything that defines the map's content (for 'unchanged' checks)."""
    n = tsdf_map.num_blocks
    state = {name: t[:n].clone() for name, t in tsdf_map.blocks.layers.items()}
    state["coords"] = tsdf_map.blocks.block_coords[:n].clone()
    state["stamp"] = tsdf_map.blocks.block_stamp[:n].clone()
    state["keys"] = tsdf_map.hash.sorted_keys.clone()
    state["counter"] = tsdf_map.update_counter
    return state


def same_state(a: dict, b: dict) -> bool:
    import torch

    if a.keys() != b.keys():
        return False
    for k in a:
        if isinstance(a[k], torch.Tensor):
            if a[k].shape != b[k].shape or not torch.equal(a[k], b[k]):
                return False
        elif a[k] != b[k]:
            return False
    return True


ORBIT_SPHERE = Sphere((0.0, 0.0, 0.0), 0.35)
ORBIT_BOX = Box((0.5, -0.3, -0.3), (0.8, 0.3, 0.3))


def orbit_sphere_map(frames: int = 4):
    """A 4 cm map of ``ORBIT_SPHERE`` fused from the first ``frames`` of 8 orbit views
    (``small_camera``); the later views with ``ORBIT_BOX`` change it in the tests that use it."""
    from ssr_ros.map import SemanticTSDF, TSDFConfig

    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    for T in orbit_poses(ORBIT_SPHERE.center, 1.5, 8)[:frames]:
        tsdf_map.integrate(frame_of([ORBIT_SPHERE], small_camera(), T))
    return tsdf_map
