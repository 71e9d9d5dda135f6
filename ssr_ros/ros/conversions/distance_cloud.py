"""Distance fields (:mod:`ssr_ros.planning.esdf`) -> sensor_msgs/PointCloud2 for RViz and planners.

One point per known cell / voxel, 16-byte points: ``x, y, z`` (FLOAT32, metres, its centre in
header.frame_id) and ``distance`` (FLOAT32, metres, signed: negative inside obstacles, clipped
at ``planning.esdf_max_distance``). In RViz, color the cloud by the ``distance`` channel.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.arrays import to_array
from ssr_ros.ros.conversions.time import ns_to_stamp

DISTANCE_CLOUD_DTYPE = np.dtype({"names": ["x", "y", "z", "distance"], "formats": ["<f4"] * 4,
                                 "offsets": [0, 4, 8, 12], "itemsize": 16})


def distance_cloud_to_msg(points: np.ndarray, distance: np.ndarray, frame_id: str, stamp_ns: int = 0) -> PointCloud2:
    """points: (N, 3) metres; distance: (N,) metres."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3) if np.size(points) else np.zeros((0, 3), np.float32)
    distance = np.asarray(distance, dtype=np.float32).reshape(-1)
    if len(distance) != len(points):
        raise InconsistentMessage(f"{len(distance)} distances for {len(points)} points")
    cloud = np.zeros(len(points), dtype=DISTANCE_CLOUD_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = points.T
    cloud["distance"] = distance
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.height, msg.width = 1, len(points)
    msg.fields = [PointField(name=name, offset=4 * k, datatype=PointField.FLOAT32, count=1)
                  for k, name in enumerate(DISTANCE_CLOUD_DTYPE.names)]
    msg.is_bigendian = False
    msg.point_step = DISTANCE_CLOUD_DTYPE.itemsize
    msg.row_step = msg.point_step * len(points)
    msg.is_dense = True
    msg.data = to_array(cloud.view(np.uint8), np.uint8)
    return msg


def field_to_msg(field, frame_id: str, stamp_ns: int = 0) -> PointCloud2:
    """The known cells of a DistanceField2D or voxels of a DistanceField3D as a distance cloud."""
    return distance_cloud_to_msg(field.centres(field.known), field.distance[field.known], frame_id, stamp_ns)
