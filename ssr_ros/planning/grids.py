"""2D grids for planners from a height band of the map, in tiers: measured obstacles only (the
default), or with predicted obstacles as costs weighted by their confidence.

Values follow nav_msgs/OccupancyGrid: 0 free, 100 occupied, -1 unknown, 1..99 an occupancy
probability in percent. Rows are y, columns x; the origin is cell [0, 0]'s minimum corner.
"""

from __future__ import annotations

import numpy as np

from ssr_ros.map.voxel_export import OccupancyGrid2D
from ssr_ros.planning.volume import PlanningVolume

__all__ = ["OccupancyGrid2D", "band_occupancy", "predicted_cost"]


def _grid(volume: PlanningVolume, values_xy: np.ndarray) -> OccupancyGrid2D:
    return OccupancyGrid2D((float(volume.origin[0]), float(volume.origin[1])), volume.voxel_size,
                           np.ascontiguousarray(values_xy.T.astype(np.int8)))


def band_occupancy(volume: PlanningVolume, band: slice, include_predicted: bool = False,
                   min_confidence: float = 0.0) -> OccupancyGrid2D:
    """Occupancy of the voxel levels ``band`` projected onto x-y.

    A cell is occupied (100) when any voxel of the band above it is occupied, free (0) when some
    are known and none occupied, unknown (-1) otherwise. Measured voxels only, unless
    ``include_predicted``: then predicted voxels of at least ``min_confidence`` count as well.
    """
    if volume.is_empty:
        return OccupancyGrid2D((0.0, 0.0), volume.voxel_size, np.full((0, 0), -1, dtype=np.int8))
    occupied = volume.occupied(include_predicted, min_confidence)[:, :, band].any(axis=2)
    known = volume.known(include_predicted, min_confidence)[:, :, band].any(axis=2)
    values = np.full(known.shape, -1, dtype=np.int8)
    values[known] = 0
    values[occupied] = 100
    return _grid(volume, values)


def predicted_cost(volume: PlanningVolume, band: slice) -> OccupancyGrid2D:
    """Occupancy of the band with predictions weighted by confidence, for an optimistic planner.

    100 where a measured voxel of the band is occupied; else, where predicted voxels are occupied,
    their highest confidence in percent (1..99: a prediction is never as sure as a measurement);
    else 0 where measured or predicted voxels are free; -1 where nothing is known.
    """
    if volume.is_empty:
        return OccupancyGrid2D((0.0, 0.0), volume.voxel_size, np.full((0, 0), -1, dtype=np.int8))
    measured = volume.measured_occupied[:, :, band].any(axis=2)
    confidence = np.where(volume.predicted_occupied, volume.predicted_confidence, 0.0)[:, :, band]
    confidence = confidence.max(axis=2) if confidence.shape[2] else np.zeros(measured.shape)
    predicted = volume.predicted_occupied[:, :, band].any(axis=2)
    known = volume.known(True)[:, :, band].any(axis=2)
    values = np.full(known.shape, -1, dtype=np.int8)
    values[known] = 0
    values[predicted] = np.clip(np.rint(confidence[predicted] * 100.0), 1, 99).astype(np.int8)
    values[measured] = 100
    return _grid(volume, values)
