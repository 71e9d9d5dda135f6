"""sensor_msgs/PointCloud2 of semantic voxels, and a general reader for any PointCloud2.

The semantic cloud has one point per voxel with fields (offsets in bytes, 24-byte points):

=========== ======= ====== ==============================================================
field       type    offset meaning
=========== ======= ====== ==============================================================
x, y, z     FLOAT32 0,4,8  voxel centre, metres, in header.frame_id
rgb         FLOAT32 12     color packed as 0x00RRGGBB in the float's bits (RViz / PCL)
confidence  FLOAT32 16     label probability in [0, 1]
label       UINT16  20     class id of the taxonomy (0 = unknown)
observed    UINT8   22     1 = measured by the sensor, 0 = predicted by the network
=========== ======= ====== ==============================================================
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.arrays import to_array
from ssr_ros.ros.conversions.time import ns_to_stamp

_DATATYPES = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}

SEMANTIC_CLOUD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "rgb", "confidence", "label", "observed"],
        "formats": ["<f4", "<f4", "<f4", "<u4", "<f4", "<u2", "u1"],
        "offsets": [0, 4, 8, 12, 16, 20, 22],
        "itemsize": 24,
    }
)
_SEMANTIC_FIELDS = [
    ("x", PointField.FLOAT32),
    ("y", PointField.FLOAT32),
    ("z", PointField.FLOAT32),
    ("rgb", PointField.FLOAT32),
    ("confidence", PointField.FLOAT32),
    ("label", PointField.UINT16),
    ("observed", PointField.UINT8),
]


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """(N,) uint32 0x00RRGGBB of (N, 3) uint8 colors (reinterpret as float32 for the rgb field)."""
    colors = np.asarray(colors, dtype=np.uint32)
    return (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colors of packed 0x00RRGGBB values (uint32 or their float32 bit pattern)."""
    packed = np.asarray(packed)
    if packed.dtype == np.float32:
        packed = packed.view(np.uint32)
    packed = packed.astype(np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)


def semantic_cloud_to_msg(
    points: np.ndarray,
    colors: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    observed: np.ndarray,
    frame_id: str,
    stamp_ns: int = 0,
) -> PointCloud2:
    """PointCloud2 (unorganised, little-endian, dense) of N semantic voxels.

    points: (N, 3) metres; colors: (N, 3) uint8; labels: (N,) ints; confidence: (N,) [0, 1];
    observed: (N,) bool.
    """
    points = np.asarray(points, dtype=np.float32)
    n = points.shape[0] if points.ndim == 2 else -1
    if points.ndim != 2 or points.shape[1] != 3:
        raise InconsistentMessage(f"points must have shape (N, 3), got {points.shape}")
    for name, values, shape in [
        ("colors", colors, (n, 3)),
        ("labels", labels, (n,)),
        ("confidence", confidence, (n,)),
        ("observed", observed, (n,)),
    ]:
        if np.shape(values) != shape:
            raise InconsistentMessage(f"{name} must have shape {shape} for {n} points, got {np.shape(values)}")
    if not np.all(np.isfinite(points)):
        raise InconsistentMessage("points contain NaN or Inf; a dense cloud must be finite")
    cloud = np.zeros(n, dtype=SEMANTIC_CLOUD_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = points[:, 0], points[:, 1], points[:, 2]
    cloud["rgb"] = pack_rgb(colors)
    cloud["confidence"] = confidence
    cloud["label"] = labels
    cloud["observed"] = np.asarray(observed, dtype=bool)

    msg = PointCloud2()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.height, msg.width = 1, n
    msg.fields = [
        PointField(name=name, offset=SEMANTIC_CLOUD_DTYPE.fields[name][1], datatype=datatype, count=1)
        for name, datatype in _SEMANTIC_FIELDS
    ]
    msg.is_bigendian = False
    msg.point_step = SEMANTIC_CLOUD_DTYPE.itemsize
    msg.row_step = msg.point_step * n
    msg.is_dense = True
    msg.data = to_array(cloud.view(np.uint8), np.uint8)
    return msg


def point_cloud_to_structured(msg: PointCloud2) -> np.ndarray:
    """(height * width,) structured array with one field per PointField (count 1 fields only).

    Honours ``point_step``, ``row_step`` padding and ``is_bigendian``; raises
    InconsistentMessage when the layout does not fit the data.
    """
    names, formats, offsets = [], [], []
    order = ">" if msg.is_bigendian else "<"
    for field in msg.fields:
        if field.datatype not in _DATATYPES:
            raise InconsistentMessage(f"PointField '{field.name}' has unknown datatype {field.datatype}")
        if field.count != 1:
            raise InconsistentMessage(f"PointField '{field.name}' has count {field.count}; expected 1")
        dtype = _DATATYPES[field.datatype]
        if field.offset + dtype.itemsize > msg.point_step:
            raise InconsistentMessage(
                f"PointField '{field.name}' (offset {field.offset}, {dtype.itemsize} bytes) does not fit "
                f"point_step {msg.point_step}"
            )
        names.append(field.name)
        formats.append(dtype.newbyteorder(order) if dtype.itemsize > 1 else dtype)
        offsets.append(field.offset)
    if msg.row_step < msg.point_step * msg.width:
        raise InconsistentMessage(
            f"row_step {msg.row_step} is smaller than point_step * width = {msg.point_step * msg.width}"
        )
    data = np.frombuffer(msg.data, dtype=np.uint8) if len(msg.data) else np.zeros(0, np.uint8)
    if data.size != msg.row_step * msg.height:
        raise InconsistentMessage(
            f"PointCloud2 data has {data.size} bytes; expected row_step * height = {msg.row_step * msg.height}"
        )
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    rows = data.reshape(msg.height, msg.row_step)[:, : msg.point_step * msg.width]
    return np.ascontiguousarray(rows).view(dtype).reshape(-1).copy()


def msg_to_semantic_cloud(msg: PointCloud2) -> dict[str, np.ndarray]:
    """Arrays of a semantic cloud: points (N, 3) float32, colors (N, 3) uint8, labels (N,) int64,
    confidence (N,) float32, observed (N,) bool. Raises InconsistentMessage if a field is missing."""
    cloud = point_cloud_to_structured(msg)
    missing = [name for name, _ in _SEMANTIC_FIELDS if name not in (cloud.dtype.names or ())]
    if missing:
        raise InconsistentMessage(
            f"PointCloud2 lacks field(s) {missing}; has {list(cloud.dtype.names or ())}"
        )
    return {
        "points": np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float32),
        "colors": unpack_rgb(np.asarray(cloud["rgb"], dtype=np.float32)),
        "labels": cloud["label"].astype(np.int64),
        "confidence": cloud["confidence"].astype(np.float32),
        "observed": cloud["observed"].astype(bool),
    }
