"""Outputs for planners, computed from the map without ROS: tiered 2D occupancy (measured only,
or with predictions weighted by their confidence), the floor and the height band above it,
2D and 3D Euclidean signed distance fields, and the Nav2 map_server file format."""

from ssr_ros.planning.config import PlanningConfig
from ssr_ros.planning.esdf import DistanceField2D, DistanceField3D, esdf_2d, esdf_3d
from ssr_ros.planning.floor import FloorEstimate, estimate_floor
from ssr_ros.planning.grids import OccupancyGrid2D, band_occupancy, predicted_cost
from ssr_ros.planning.nav2_map import read_nav2_map, write_nav2_map
from ssr_ros.planning.outputs import PlanningOutputs, planning_outputs
from ssr_ros.planning.volume import PlanningVolume, planning_volume

__all__ = [
    "DistanceField2D", "DistanceField3D", "FloorEstimate", "OccupancyGrid2D", "PlanningConfig", "PlanningOutputs",
    "PlanningVolume", "band_occupancy", "esdf_2d", "esdf_3d", "estimate_floor", "planning_outputs",
    "planning_volume", "predicted_cost", "read_nav2_map", "write_nav2_map",
]
