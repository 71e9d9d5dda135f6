"""Core OccupancyGrid2D -> nav_msgs/OccupancyGrid."""

from __future__ import annotations

import numpy as np
from nav_msgs.msg import OccupancyGrid

from ssr_ros.map.voxel_export import OccupancyGrid2D
from ssr_ros.ros.conversions.arrays import to_array
from ssr_ros.ros.conversions.time import ns_to_stamp


def occupancy_to_msg(grid: OccupancyGrid2D, frame_id: str, stamp_ns: int = 0) -> OccupancyGrid:
    """Row-major (y rows, x columns) grid with its origin at the minimum corner, z = 0."""
    msg = OccupancyGrid()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.height, msg.info.width = (int(n) for n in grid.data.shape)
    msg.info.origin.position.x, msg.info.origin.position.y = (float(v) for v in grid.origin)
    msg.info.origin.orientation.w = 1.0
    msg.data = to_array(np.asarray(grid.data, dtype=np.int8), np.int8)
    return msg
