"""The map as a dense box of voxel states, the common input of every planner output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.map.surface_voxels import occupied_voxels
from ssr_ros.map.voxel_export import known_voxel_states


@dataclass
class PlanningVolume:
    """Dense voxel states on the map's grid, indexed ``[x, y, z]``.

    origin: (3,) metres, minimum corner of voxel [0, 0, 0] in the map frame; voxel_size: metres.
    ``measured_*``: voxels with fused weight (the camera saw them); ``predicted_*``: voxels the
    completion stage wrote, with ``predicted_confidence`` (0 elsewhere). *occupied* means the
    surface passes within the voxel (``-voxel_size < tsdf <= voxel_size / 2``, or behind a
    surface next to a voxel in front of it: :func:`ssr_ros.map.surface_voxels.occupied_voxels`),
    *free* that the voxel is known, not occupied, and on the positive side (in front of it).
    ``surface_offset`` holds the TSDF (metres) of measured voxels (NaN elsewhere), used to place
    horizontal surfaces below voxel resolution.
    """

    origin: np.ndarray
    voxel_size: float
    measured_occupied: np.ndarray
    measured_free: np.ndarray
    predicted_occupied: np.ndarray
    predicted_free: np.ndarray
    predicted_confidence: np.ndarray
    surface_offset: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.measured_occupied.shape)

    def z_of_level(self, k: np.ndarray | int) -> np.ndarray | float:
        """Map-frame z (metres) of the centres of the voxels of level ``k``."""
        return self.origin[2] + (np.asarray(k) + 0.5) * self.voxel_size

    def occupied(self, include_predicted: bool, min_confidence: float = 0.0) -> np.ndarray:
        """Measured occupied voxels, plus predicted ones of at least ``min_confidence`` if asked."""
        if not include_predicted:
            return self.measured_occupied
        return self.measured_occupied | (self.predicted_occupied & (self.predicted_confidence >= min_confidence))

    def known(self, include_predicted: bool, min_confidence: float = 0.0) -> np.ndarray:
        """Voxels whose state is known: measured, plus confident predicted ones if asked."""
        known = self.measured_occupied | self.measured_free
        if include_predicted:
            confident = self.predicted_confidence >= min_confidence
            known = known | ((self.predicted_occupied | self.predicted_free) & confident)
        return known

    @property
    def is_empty(self) -> bool:
        return self.measured_occupied.size == 0


def empty_volume(voxel_size: float) -> PlanningVolume:
    flags = np.zeros((0, 0, 0), dtype=bool)
    return PlanningVolume(np.zeros(3), float(voxel_size), flags, flags, flags, flags,
                          np.zeros((0, 0, 0), np.float32), np.zeros((0, 0, 0), np.float32))


def planning_volume(tsdf_map) -> PlanningVolume:
    """The voxel states of ``tsdf_map`` (a :class:`ssr_ros.map.SemanticTSDF`, or its voxel layer or a
    snapshot of it) on the bounding box of its known voxels. Memory: about 7 bytes per voxel of that box."""
    voxels = known_voxel_states(tsdf_map)
    voxel = float(tsdf_map.voxel_size)
    if len(voxels["voxel"]) == 0:
        return empty_volume(voxel)
    index = voxels["voxel"]
    lo = index.min(axis=0)
    shape = tuple(int(n) for n in index.max(axis=0) - lo + 1)
    # one flat index per voxel, gathered per layer: scattering through three index arrays per
    # layer took ~3x as long (six layers of a 78 MB map: ~0.25 s of every planning publication)
    flat = np.ravel_multi_index(tuple((index - lo).T), shape)
    tsdf = voxels["tsdf"].astype(np.float32)
    predicted = voxels["predicted"].astype(bool)
    measured = ~predicted
    occupied = occupied_voxels(index - lo, shape, tsdf, voxel)
    free = (tsdf > 0.5 * voxel) & ~occupied

    def layer(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        out.reshape(-1)[flat[mask]] = True
        return out

    confidence = np.zeros(shape, dtype=np.float32)
    confidence.reshape(-1)[flat[predicted]] = voxels["confidence"][predicted]
    offset = np.full(shape, np.nan, dtype=np.float32)
    offset.reshape(-1)[flat[measured]] = tsdf[measured]
    return PlanningVolume(
        origin=lo.astype(np.float64) * voxel, voxel_size=voxel,
        measured_occupied=layer(measured & occupied), measured_free=layer(measured & free),
        predicted_occupied=layer(predicted & occupied), predicted_free=layer(predicted & free),
        predicted_confidence=confidence, surface_offset=offset,
    )
