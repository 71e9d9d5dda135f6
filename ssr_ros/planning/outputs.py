"""Every planner output of a map at once, and writing them to files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np

from ssr_ros.atomic_file import atomic_write
from ssr_ros.map.voxel_export import OccupancyGrid2D
from ssr_ros.planning.config import PlanningConfig
from ssr_ros.planning.esdf import DistanceField2D, DistanceField3D, esdf_2d, esdf_3d
from ssr_ros.planning.floor import FloorEstimate, band_levels, estimate_floor
from ssr_ros.planning.grids import band_occupancy, predicted_cost
from ssr_ros.planning.nav2_map import write_nav2_map
from ssr_ros.planning.volume import PlanningVolume, planning_volume

OCCUPANCY_NAME = "occupancy"
COST_NAME = "occupancy_predicted"
ESDF_FILE = "esdf.npz"


@dataclass
class PlanningOutputs:
    """The tiers of a map for planners, all in the map's (gravity-aligned, z-up) frame.

    occupancy: the height band's grid, measured obstacles only unless ``include_predicted``;
    cost: the same band with predicted obstacles as their confidence in percent (1..99);
    esdf_2d / esdf_2d_predicted: signed distance on the band's grid, measured obstacles only /
    with predictions of at least ``min_confidence``; esdf_3d / esdf_3d_predicted: the same in
    3D. An output not asked for (``wanted`` of :func:`outputs_of_volume`; the 3D fields unless
    ``with_3d``) is None.
    """

    floor: FloorEstimate
    band: tuple[float, float]
    occupancy: OccupancyGrid2D | None
    cost: OccupancyGrid2D | None
    esdf_2d: DistanceField2D | None
    esdf_2d_predicted: DistanceField2D | None
    esdf_3d: DistanceField3D | None = None
    esdf_3d_predicted: DistanceField3D | None = None

    def summary(self) -> dict:
        """Counts for logs and summary.json."""
        def cells(grid, value):
            return int((np.asarray(grid.data) == value).sum())

        predicted_cells = int(((self.cost.data > 0) & (self.cost.data < 100)).sum())
        return {"floor": self.floor.to_dict(), "band_m": [round(v, 4) for v in self.band],
                "occupancy": {"occupied": cells(self.occupancy, 100), "free": cells(self.occupancy, 0),
                              "unknown": cells(self.occupancy, -1)},
                "cost": {"measured_occupied": cells(self.cost, 100), "predicted_occupied": predicted_cells}}


def planning_outputs(tsdf_map, config: PlanningConfig, with_3d: bool = True) -> PlanningOutputs:
    """Floor, band grids, and distance fields of ``tsdf_map`` (a SemanticTSDF) per ``config``."""
    return outputs_of_volume(planning_volume(tsdf_map), config, with_3d)


GRID_NAMES = ("occupancy", "cost", "esdf_2d", "esdf_2d_predicted")
FIELD_NAMES = ("esdf_3d", "esdf_3d_predicted")


def outputs_of_volume(volume: PlanningVolume, config: PlanningConfig, with_3d: bool = True,
                      wanted: Collection[str] | None = None) -> PlanningOutputs:
    """:func:`planning_outputs` of a :class:`PlanningVolume` already read from a map.

    ``wanted``: the outputs to compute, named as the fields of :class:`PlanningOutputs`
    (``GRID_NAMES``, ``FIELD_NAMES``); the others are None (the floor is always estimated). None:
    every 2D output, and the 3D fields where ``with_3d``."""
    config.validate()
    if wanted is None:
        wanted = GRID_NAMES + (FIELD_NAMES if with_3d else ())
    unknown = set(wanted) - set(GRID_NAMES + FIELD_NAMES)
    if unknown:
        raise ValueError(f"unknown planner outputs {sorted(unknown)}; choose from {GRID_NAMES + FIELD_NAMES}")
    floor = estimate_floor(volume, config)
    band = band_levels(volume, floor, config.min_height, config.max_height)
    z = floor.height + config.min_height
    # the band's occupancy from measured voxels only, and with confident predictions; the main
    # grid is one of the two (``include_predicted``), each computed once and only where needed
    measured = with_predictions = None
    if "esdf_2d" in wanted or ("occupancy" in wanted and not config.include_predicted):
        measured = band_occupancy(volume, band)
    if "esdf_2d_predicted" in wanted or ("occupancy" in wanted and config.include_predicted):
        with_predictions = band_occupancy(volume, band, True, config.min_confidence)
    occupancy = with_predictions if config.include_predicted else measured
    outputs = PlanningOutputs(
        floor=floor, band=(floor.height + config.min_height, floor.height + config.max_height),
        occupancy=occupancy if "occupancy" in wanted else None,
        cost=predicted_cost(volume, band) if "cost" in wanted else None,
        esdf_2d=esdf_2d(measured, z, config.esdf_max_distance) if "esdf_2d" in wanted else None,
        esdf_2d_predicted=esdf_2d(with_predictions, z, config.esdf_max_distance) if "esdf_2d_predicted" in wanted else None,
    )
    if "esdf_3d" in wanted:
        outputs.esdf_3d = esdf_3d(volume, False, config.min_confidence, config.esdf_max_distance)
    if "esdf_3d_predicted" in wanted:
        outputs.esdf_3d_predicted = esdf_3d(volume, True, config.min_confidence, config.esdf_max_distance)
    return outputs


def write_nav2_maps(outputs: PlanningOutputs, directory: str | Path) -> list[Path]:
    """``occupancy.{pgm,yaml}`` (trinary, measured unless include_predicted) and
    ``occupancy_predicted.{pgm,yaml}`` (raw: the predicted cost grid) for Nav2's map_server."""
    return (write_nav2_map(outputs.occupancy, directory, OCCUPANCY_NAME, "trinary")
            + write_nav2_map(outputs.cost, directory, COST_NAME, "raw"))


def write_esdf(outputs: PlanningOutputs, path: str | Path) -> Path:
    """Both distance fields (2D and, when computed, 3D; measured and with predictions) in one .npz.

    Keys: ``floor_height``, ``band`` (2,), ``esdf2d_origin`` (2,), ``esdf2d_resolution``,
    ``esdf2d_z``, ``esdf2d`` / ``esdf2d_predicted`` (H, W) float32 metres (rows = y),
    ``esdf2d_known`` / ``esdf2d_predicted_known`` (H, W) bool; with 3D: ``esdf3d_origin`` (3,),
    ``esdf3d_voxel_size``, ``esdf3d`` / ``esdf3d_predicted`` (X, Y, Z) float32 metres,
    ``esdf3d_known`` / ``esdf3d_predicted_known``.
    """
    arrays = {
        "floor_height": np.float64(outputs.floor.height), "band": np.asarray(outputs.band, dtype=np.float64),
        "esdf2d_origin": np.asarray(outputs.esdf_2d.origin), "esdf2d_resolution": np.float64(outputs.esdf_2d.resolution),
        "esdf2d_z": np.float64(outputs.esdf_2d.z),
        "esdf2d": outputs.esdf_2d.distance, "esdf2d_known": outputs.esdf_2d.known,
        "esdf2d_predicted": outputs.esdf_2d_predicted.distance, "esdf2d_predicted_known": outputs.esdf_2d_predicted.known,
    }
    if outputs.esdf_3d is not None:
        arrays.update({
            "esdf3d_origin": outputs.esdf_3d.origin, "esdf3d_voxel_size": np.float64(outputs.esdf_3d.voxel_size),
            "esdf3d": outputs.esdf_3d.distance, "esdf3d_known": outputs.esdf_3d.known,
            "esdf3d_predicted": outputs.esdf_3d_predicted.distance,
            "esdf3d_predicted_known": outputs.esdf_3d_predicted.known,
        })
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = Path(path)
    with atomic_write(path, "distance fields") as handle:
        handle.write(buffer.getvalue())
    return path
