"""A tiny analytic scene (axis-aligned boxes) with exact RGB-D rendering and a dense TSDF fusion.

Stands in for the synthetic generator and the map in the completion tests, so that these
tests check the training loop against exact geometry and run in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ssr_ros.completion.renderer import look_at
from ssr_ros.completion.scenes import TrainingScene
from ssr_ros.geometry import CameraIntrinsics, Frame  # noqa: F401 (re-exported for tests)
from ssr_ros.map.chunk import DenseChunk

# (lo, hi, rgb, class id): floor, two walls, a table top and a cabinet.
BOXES = [
    ((-0.2, -0.2, -0.2), (2.4, 2.4, 0.0), (0.6, 0.8, 0.5), 2),
    ((-0.2, -0.2, 0.0), (0.0, 2.4, 1.6), (0.7, 0.75, 0.9), 1),
    ((0.0, -0.2, 0.0), (2.4, 0.0, 1.6), (0.8, 0.7, 0.9), 1),
    ((0.8, 0.7, 0.6), (1.6, 1.5, 0.7), (0.9, 0.5, 0.5), 7),
    ((0.2, 1.6, 0.0), (0.6, 2.2, 0.9), (0.2, 0.4, 0.7), 3),
]


def render(T_world_cam: np.ndarray, intrinsics: CameraIntrinsics):
    """Exact z-depth (metres), rgb uint8 and labels of the boxes from one camera."""
    rays = intrinsics.pixel_rays(dtype=torch.float64).numpy()
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    d = rays @ R.T
    best = np.full(rays.shape[:2], np.inf)
    rgb = np.zeros(rays.shape[:2] + (3,))
    labels = np.zeros(rays.shape[:2], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo, hi, color, cls in BOXES:
            t0 = (np.array(lo) - t) / d
            t1 = (np.array(hi) - t) / d
            enter = np.nanmax(np.minimum(t0, t1), -1)
            leave = np.nanmin(np.maximum(t0, t1), -1)
            hit = (leave > enter) & (enter > 0.05) & (enter < best)
            best[hit] = enter[hit]
            rgb[hit] = color
            labels[hit] = cls
    depth = np.where(np.isfinite(best), best, 0.0).astype(np.float32)
    return depth, (rgb * 255).astype(np.uint8), labels


def trajectory(count: int, intrinsics: CameraIntrinsics, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        angle = math.pi * (0.05 + 0.4 * i / max(count - 1, 1))
        eye = np.array([1.2 + 1.0 * math.cos(angle), 1.2 + 1.0 * math.sin(angle), 1.3])
        target = np.array([0.6, 0.6, 0.4]) + rng.normal(0, 0.1, 3)
        T = look_at(torch.tensor(eye), torch.tensor(target)).numpy()
        depth, rgb, labels = render(T, intrinsics)
        frames.append(Frame(depth=depth, intrinsics=intrinsics, T_world_cam=T, rgb=rgb, labels=labels, stamp_ns=i))
    return frames


class DenseFusion:
    """Projective TSDF fusion on a dense grid covering voxels [min_voxel, max_voxel)."""

    def __init__(self, min_voxel, max_voxel, voxel_size: float, truncation: float, num_classes: int = 21):
        self.min_voxel = torch.tensor(min_voxel)
        self.shape = tuple(int(h - l) for l, h in zip(min_voxel, max_voxel))
        self.voxel_size, self.truncation = voxel_size, truncation
        self.tsdf = torch.full(self.shape, truncation)
        self.weight = torch.zeros(self.shape)
        self.color = torch.zeros(self.shape + (3,))
        self.semantics = torch.zeros(self.shape + (num_classes,))
        axes = [torch.arange(n, dtype=torch.float64) for n in self.shape]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
        self.centers = (grid + self.min_voxel.double() + 0.5) * voxel_size

    def integrate(self, frame: Frame) -> None:
        T = torch.from_numpy(frame.T_world_cam)
        cam = (self.centers - T[:3, 3]) @ T[:3, :3]
        uv, z = frame.intrinsics.project(cam)
        u = torch.round(uv[..., 0]).nan_to_num(-1).long()
        v = torch.round(uv[..., 1]).nan_to_num(-1).long()
        inside = (u >= 0) & (u < frame.intrinsics.width) & (v >= 0) & (v < frame.intrinsics.height) & (z > 0)
        depth = torch.from_numpy(frame.depth).double()
        d = torch.zeros_like(z)
        d[inside] = depth[v[inside], u[inside]]
        sdf = d - z
        update = inside & (d > 0) & (sdf > -self.truncation)
        value = sdf.clamp(max=self.truncation).float()
        w = self.weight
        self.tsdf[update] = (self.tsdf[update] * w[update] + value[update]) / (w[update] + 1)
        rgb = torch.from_numpy(frame.rgb).float() / 255
        near = update & (sdf.abs() < self.truncation)
        self.color[near] = (self.color[near] * w[near, None] + rgb[v[near], u[near]]) / (w[near, None] + 1)
        labels = torch.from_numpy(frame.labels)
        self.semantics[near, labels[v[near], u[near]]] += 1
        self.weight[update] += 1

    def extract_chunk(self, origin_voxel, size) -> DenseChunk:
        o = [int(a) - int(b) for a, b in zip(origin_voxel, self.min_voxel)]
        def take(array, fill):
            out = torch.full(tuple(size) + array.shape[3:], fill, dtype=array.dtype)
            src = tuple(slice(max(o[a], 0), max(min(o[a] + size[a], self.shape[a]), 0)) for a in range(3))
            dst = tuple(slice(s.start - o[a], s.stop - o[a]) for a, s in enumerate(src))
            out[dst] = array[src]
            return out
        weight = take(self.weight, 0.0)
        observed = weight > 0
        sem = take(self.semantics, 0.0)
        sem = sem / sem.sum(-1, keepdim=True).clamp(min=1e-9)
        tsdf = take(self.tsdf, self.truncation)
        tsdf[~observed] = self.truncation
        return DenseChunk(torch.as_tensor([int(a) for a in origin_voxel]), self.voxel_size, self.truncation, tsdf,
                          weight, observed, take(self.color, 0.0), sem, torch.zeros(size, dtype=torch.bool))


def analytic_scene(seed: int, data) -> TrainingScene:
    """TrainingScene provider: the box room captured along an arc, every other frame kept."""
    intrinsics = CameraIntrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    frames = trajectory(data.frames_per_scene, intrinsics, seed)
    rng = np.random.default_rng(seed)
    n_keep = max(1, int(round(data.keep_fraction * len(frames))))
    kept = sorted(rng.choice(len(frames), n_keep, replace=False).tolist())
    lo = tuple(int(math.floor(-0.3 / data.voxel_size)) for _ in range(3))
    hi = tuple(int(math.ceil(2.5 / data.voxel_size)) for _ in range(3))
    input_map = DenseFusion(lo, hi, data.voxel_size, data.truncation)
    reference = DenseFusion(lo, hi, data.voxel_size, data.truncation)
    for i, frame in enumerate(frames):
        reference.integrate(frame)
        if i in kept:
            input_map.integrate(frame)
    return TrainingScene(f"analytic-{seed}", frames, kept, input_map, reference, lo, hi)
