"""Parameters of the planner outputs (occupancy grids, floor, distance fields)."""

from __future__ import annotations

from dataclasses import dataclass

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError

FLOOR_MODES = ("estimate", "fixed")


@dataclass
class PlanningConfig:
    """How the 3D map becomes 2D grids and distance fields for planners.

    Heights are measured along the map frame's z axis, which is gravity-aligned (z up): the
    REP 105 ``map`` frame with ``gravity.mode: z_up``, or the map's own aligned frame otherwise.
    They are relative to the floor: estimated from the map (the lowest large upward-facing
    measured surface) or the fixed ``floor_height``.
    """

    floor: str = param(
        "estimate", "'estimate': the floor is the lowest large upward-facing measured surface of the map "
        "(floor_height until one is found); 'fixed': the floor is at floor_height", choices=list(FLOOR_MODES))
    floor_height: float = param(0.0, "floor height in the map frame (z, metres): the fixed floor, or the fallback "
                                "while no floor has been estimated; objects completed where no floor was seen stand "
                                "on it, and so does the room layout of a room whose floor no camera saw "
                                "(layout.unseen_floor) (REP 105: a ground robot's map frame lies on the ground)", low=-1000.0, high=1000.0)
    floor_min_area: float = param(0.5, "an estimated floor must cover at least this horizontal area, square metres",
                                  low=0.0, high=10000.0)
    min_height: float = param(0.1, "lowest height above the floor that counts as an obstacle in the 2D grids and "
                              "the 2D distance field, metres", low=-100.0, high=100.0)
    max_height: float = param(1.8, "highest height above the floor that counts as an obstacle in the 2D grids and "
                              "the 2D distance field (the robot's height), metres", low=-100.0, high=100.0)
    include_predicted: bool = param(
        False, "let predicted voxels (completion) of at least min_confidence mark cells of the main occupancy grid; "
        "off: it holds measured space only (the predicted cost grid always shows predictions)")
    min_confidence: float = param(
        0.9, "predicted voxels count as obstacles in the main grid (with include_predicted) and in the "
        "distance fields with predictions only from this confidence on (the predicted cost grid shows every "
        "predicted voxel, weighted by its confidence)", low=0.0, high=1.0)
    esdf_max_distance: float = param(2.0, "distances in the distance fields are clipped at this value, metres",
                                     low=0.05, high=100.0)

    def validate(self) -> "PlanningConfig":
        validate_config(self)
        if self.max_height <= self.min_height:
            raise ConfigError(f"planning.max_height={self.max_height} must be above planning.min_height="
                              f"{self.min_height} (heights above the floor, metres)")
        return self
