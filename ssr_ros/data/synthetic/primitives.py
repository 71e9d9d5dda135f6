"""Oriented boxes: the one primitive synthetic scenes are built from.

A :class:`BoxSet` holds N oriented boxes in the world frame (z up, metres). Box ``i`` is the
set of points ``c_i + R_i p`` with ``|p_k| <= h_ik`` for k = x, y, z, where ``c`` is the
centre, ``R`` the box-to-world rotation and ``h`` the half extents. Every box carries the
semantic class id and instance id it belongs to and a material (see ``materials``).

Functions here are vectorised over points and boxes (torch, any device) and have no
per-point Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.errors import InvalidInput


def yaw_rotation(yaw: float) -> np.ndarray:
    """(3, 3) rotation about the world z axis by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class BoxSet:
    """N oriented boxes with their semantics and materials (NumPy, float64 geometry).

    centers: (N, 3) world-frame centres, metres.
    half_extents: (N, 3) half side lengths along the box axes, metres (> 0).
    rotations: (N, 3, 3) box-to-world rotations.
    class_ids: (N,) int64 taxonomy class of each box.
    instance_ids: (N,) int64 object instance each box belongs to (0 = none).
    materials: (N,) int64 material kind (``materials.Material``).
    colors: (N, 3) float32 base color in [0, 1].
    secondary_colors: (N, 3) float32 second color of two-tone patterns, [0, 1].
    pattern_scales: (N,) float32 characteristic pattern length, metres.
    pattern_seeds: (N,) float32 per-box random phase of the procedural pattern.
    """

    centers: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    half_extents: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    rotations: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    instance_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    materials: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.float32))
    secondary_colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.float32))
    pattern_scales: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    pattern_seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return int(self.centers.shape[0])

    def validate(self) -> "BoxSet":
        n = len(self)
        expected = {
            "centers": (n, 3), "half_extents": (n, 3), "rotations": (n, 3, 3), "class_ids": (n,),
            "instance_ids": (n,), "materials": (n,), "colors": (n, 3), "secondary_colors": (n, 3),
            "pattern_scales": (n,), "pattern_seeds": (n,),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise InvalidInput(f"BoxSet.{name} has shape {getattr(self, name).shape}; expected {shape}")
        if n and np.min(self.half_extents) <= 0:
            raise InvalidInput(f"BoxSet half extents must be positive, got min {np.min(self.half_extents)}")
        return self

    def corners(self) -> np.ndarray:
        """(N, 8, 3) world-frame corners."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs[None] * self.half_extents[:, None, :]
        return np.einsum("nij,nkj->nki", self.rotations, local) + self.centers[:, None, :]

    def aabbs(self) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounds ``(lo, hi)``, each (N, 3)."""
        corners = self.corners()
        return corners.min(axis=1), corners.max(axis=1)

    @staticmethod
    def concatenate(sets: list["BoxSet"]) -> "BoxSet":
        names = [f for f in BoxSet.__dataclass_fields__]
        return BoxSet(**{name: np.concatenate([getattr(s, name) for s in sets], axis=0) for name in names}).validate()

    def subset(self, index: np.ndarray) -> "BoxSet":
        names = [f for f in BoxSet.__dataclass_fields__]
        return BoxSet(**{name: getattr(self, name)[index] for name in names})

    def to_torch(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Geometry as float32 tensors: ``centers, half_extents, rotations`` on ``device``."""
        return {
            "centers": torch.as_tensor(self.centers, dtype=torch.float32, device=device),
            "half_extents": torch.as_tensor(self.half_extents, dtype=torch.float32, device=device),
            "rotations": torch.as_tensor(self.rotations, dtype=torch.float32, device=device),
        }


def box_sdf(points: torch.Tensor, centers: torch.Tensor, half_extents: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Signed distance from points to each box: (P, 3) x N boxes -> (P, N), metres.

    Exact Euclidean distance outside a box, minus the distance to the nearest face inside.
    """
    local = torch.einsum("pnj,nji->pni", points[:, None, :] - centers[None], rotations)  # R^T (p - c)
    q = local.abs() - half_extents[None]
    outside = q.clamp(min=0).norm(dim=-1)
    inside = q.max(dim=-1).values.clamp(max=0)
    return outside + inside


def union_sdf(
    points: torch.Tensor,
    centers: torch.Tensor,
    half_extents: torch.Tensor,
    rotations: torch.Tensor,
    chunk: int = 1 << 14,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance to the union of N boxes and the index of the nearest box.

    points: (P, 3) world-frame points. Returns ``sdf`` (P,) float32 (exact outside the union,
    a lower bound on the depth inside it) and ``nearest`` (P,) int64 box index (argmin).
    Points are processed in chunks of ``chunk`` to bound memory.
    """
    sdf = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
    nearest = torch.empty(points.shape[0], dtype=torch.int64, device=points.device)
    budget = max(1, (chunk * 64) // max(1, centers.shape[0]))
    for start in range(0, points.shape[0], budget):
        d = box_sdf(points[start : start + budget], centers, half_extents, rotations)
        value, index = d.min(dim=1)
        sdf[start : start + budget] = value
        nearest[start : start + budget] = index
    return sdf, nearest
