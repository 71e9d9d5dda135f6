"""Where the floor is: the lowest large upward-facing measured surface of a gravity-aligned map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.planning.config import PlanningConfig
from ssr_ros.planning.volume import PlanningVolume


@dataclass
class FloorEstimate:
    """Floor height (map-frame z, metres) and where it came from: 'map' (estimated), 'fixed'
    (``planning.floor: fixed``) or 'fallback' (no large enough floor seen yet: ``floor_height``).
    area_m2: horizontal area of the measured floor surface (0 unless estimated)."""

    height: float
    source: str
    area_m2: float = 0.0

    def to_dict(self) -> dict:
        return {"height_m": round(float(self.height), 4), "source": self.source, "area_m2": round(float(self.area_m2), 3)}


def upward_surface(volume: PlanningVolume) -> np.ndarray:
    """(X, Y, Z) bool: measured surface voxels with measured free space right above them."""
    up = np.zeros(volume.shape, dtype=bool)
    up[:, :, :-1] = volume.measured_occupied[:, :, :-1] & volume.measured_free[:, :, 1:]
    return up


def surface_heights(volume: PlanningVolume, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Map-frame z (metres) of the upward surface at voxels ``(x, y, z)`` (NaN where unknown):
    the zero crossing of the measured TSDF between the voxel and the one above or below it
    (inside below, free above), interpolated linearly; ``z_centre - tsdf`` where neither pair
    crosses. Interpolating is exact for a plane whatever the angle it was seen at, where the
    TSDF itself overstates the distance of a floor seen at a grazing angle."""
    offset = volume.surface_offset
    top = offset.shape[2] - 1
    here = offset[x, y, z]
    heights = volume.z_of_level(z) - here
    for below in (z - 1, z):  # the pair (below, below + 1)
        ok = (below >= 0) & (below < top)
        b = np.clip(below, 0, top - 1)
        lower, upper = offset[x, y, b], offset[x, y, b + 1]
        crosses = ok & (lower <= 0) & (upper > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = volume.z_of_level(b) + volume.voxel_size * lower / (lower - upper)
        heights = np.where(crosses, at, heights)
    return heights


def estimate_floor(volume: PlanningVolume, config: PlanningConfig) -> FloorEstimate:
    """The floor of ``volume`` (z up) per ``config``.

    Estimate: per voxel level, the area of upward-facing measured surface (a surface voxel with
    seen-free space above it), summed with the levels just below and above (a slightly tilted or
    noisy floor spreads over two or three levels). The floor is the lowest level whose area
    reaches ``floor_min_area`` and a quarter of the largest level's area (so that a few stray
    voxels under the floor do not count); its height is the median surface position of those
    voxels, placed below voxel size (:func:`surface_heights`).
    """
    if config.floor == "fixed":
        return FloorEstimate(config.floor_height, "fixed")
    fallback = FloorEstimate(config.floor_height, "fallback")
    if volume.is_empty or volume.shape[2] < 2:
        return fallback
    up = upward_surface(volume)
    cell_area = volume.voxel_size**2
    per_level = up.sum(axis=(0, 1)).astype(np.float64) * cell_area
    padded = np.pad(per_level, 1)
    smoothed = padded[:-2] + padded[1:-1] + padded[2:]
    threshold = max(config.floor_min_area, 0.25 * smoothed.max())
    candidates = np.nonzero((smoothed >= threshold) & (smoothed > 0))[0]
    if candidates.size == 0:
        return fallback
    level = int(candidates[0])
    # the level within the window that holds most of the surface, then its window
    window = [k for k in (level - 1, level, level + 1) if 0 <= k < len(per_level)]
    level = max(window, key=lambda k: per_level[k])
    lo, hi = max(level - 1, 0), min(level + 2, len(per_level))
    x, y, z = np.nonzero(up[:, :, lo:hi])
    heights = surface_heights(volume, x, y, z + lo)
    heights = heights[np.isfinite(heights)]
    if heights.size == 0:
        return fallback
    return FloorEstimate(float(np.median(heights)), "map", float(len(heights) * cell_area))


def band_levels(volume: PlanningVolume, floor: FloorEstimate, min_height: float, max_height: float) -> slice:
    """The voxel levels whose centres lie between ``min_height`` and ``max_height`` above the floor."""
    if volume.is_empty:
        return slice(0, 0)
    k = np.arange(volume.shape[2])
    z = volume.z_of_level(k) - floor.height
    inside = np.nonzero((z >= min_height) & (z <= max_height))[0]
    if inside.size == 0:
        return slice(0, 0)
    return slice(int(inside[0]), int(inside[-1]) + 1)
