"""Euclidean signed distance fields: 3D on the map's voxel grid (drones, arms) and 2D on a height
band's grid (ground robots), from measured obstacles only or with confident predictions.

Distances are from a voxel's (cell's) centre to the nearest obstacle voxel's centre, metres,
computed exactly by :func:`scipy.ndimage.distance_transform_edt`; positive outside obstacles,
negative inside (minus the distance to the nearest non-obstacle voxel), clipped at
``max_distance``. Space whose state is unknown counts as free for the distance; ``known`` says
where the state was measured (or predicted, for the fields with predictions), so a
conservative planner can treat the rest as blocked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from ssr_ros.map.voxel_export import OccupancyGrid2D
from ssr_ros.planning.volume import PlanningVolume


@dataclass
class DistanceField3D:
    """origin: (3,) metres, minimum corner of voxel [0, 0, 0]; distance: (X, Y, Z) float32 metres,
    indexed [x, y, z]; known: (X, Y, Z) bool."""

    origin: np.ndarray
    voxel_size: float
    distance: np.ndarray
    known: np.ndarray

    def centres(self, mask: np.ndarray) -> np.ndarray:
        """(N, 3) float32 map-frame centres of the voxels where ``mask`` holds."""
        ijk = np.stack(np.nonzero(mask), axis=1)
        return (self.origin + (ijk + 0.5) * self.voxel_size).astype(np.float32)


@dataclass
class DistanceField2D:
    """origin: (x, y) metres of cell [0, 0]'s minimum corner; distance: (H, W) float32 metres,
    indexed [row = y, column = x] like the occupancy grids; known: (H, W) bool; z: the height
    (map frame, metres) the slice is drawn at."""

    origin: tuple[float, float]
    resolution: float
    distance: np.ndarray
    known: np.ndarray
    z: float

    def centres(self, mask: np.ndarray) -> np.ndarray:
        """(N, 3) float32 map-frame centres of the cells where ``mask`` holds, at height ``z``."""
        rows, cols = np.nonzero(mask)
        x = self.origin[0] + (cols + 0.5) * self.resolution
        y = self.origin[1] + (rows + 0.5) * self.resolution
        return np.stack([x, y, np.full_like(x, self.z)], axis=1).astype(np.float32)


def signed_distance(obstacle: np.ndarray, spacing: float, max_distance: float) -> np.ndarray:
    """Signed Euclidean distance (float32, metres) of every cell of a 2D/3D bool obstacle array."""
    if obstacle.size == 0:
        return np.zeros(obstacle.shape, dtype=np.float32)
    if not obstacle.any():
        return np.full(obstacle.shape, max_distance, dtype=np.float32)
    outside = distance_transform_edt(~obstacle, sampling=spacing)
    if obstacle.all():
        inside = np.full(obstacle.shape, max_distance)
    else:
        inside = distance_transform_edt(obstacle, sampling=spacing)
    signed = np.where(obstacle, -inside, outside)
    return np.clip(signed, -max_distance, max_distance).astype(np.float32)


def esdf_3d(volume: PlanningVolume, include_predicted: bool, min_confidence: float,
            max_distance: float) -> DistanceField3D:
    """The 3D field of ``volume``'s obstacles: measured ones, plus predicted ones of at least
    ``min_confidence`` when ``include_predicted``."""
    obstacle = volume.occupied(include_predicted, min_confidence)
    return DistanceField3D(volume.origin.copy(), volume.voxel_size,
                           signed_distance(obstacle, volume.voxel_size, max_distance),
                           volume.known(include_predicted, min_confidence).copy())


def esdf_2d(grid: OccupancyGrid2D, z: float, max_distance: float) -> DistanceField2D:
    """The 2D field of a height band's occupancy grid: cells at 100 are obstacles, cells >= 0 known."""
    data = np.asarray(grid.data)
    return DistanceField2D(tuple(grid.origin), float(grid.resolution),
                           signed_distance(data == 100, float(grid.resolution), max_distance), data >= 0, float(z))
