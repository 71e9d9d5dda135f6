"""visualization_msgs/MarkerArray as a serialised CDR buffer, straight from NumPy arrays.

A TRIANGLE_LIST marker built through the generated Python message holds one
``geometry_msgs/Point`` and one ``std_msgs/ColorRGBA`` object per triangle corner: for the mesh
of the blocks that 30 frames of 640x480 change (~400k corners) that took ~2.5 s of CPU, and
rclpy's serialisation of those objects another 0.5 s, every ``mesh_period_s``. Here the markers
are written directly as the bytes rclpy would produce (``rclpy.serialization.serialize_message``:
little-endian CDR, XCDR1 alignment relative to the payload after the 4-byte encapsulation
header), the corners and colors as whole arrays; ``Publisher.publish`` accepts such a buffer.
Tests compare the bytes with rclpy's own serialisation of the equivalent messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.cdr import CdrWriter as _Writer

@dataclass
class MarkerRecord:
    """One marker of a MarkerArray, by its fields (the pose is always the identity).

    points: (N, 3) float64 metres or None; colors: (N, 4) float32 RGBA or None (as many as points).
    """

    frame_id: str
    stamp_ns: int
    namespace: str
    marker_id: int
    type: int = Marker.ARROW
    action: int = Marker.ADD
    scale: tuple[float, float, float] = (0.0, 0.0, 0.0)
    color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    frame_locked: bool = False
    points: np.ndarray | None = None
    colors: np.ndarray | None = None

    def to_msg(self) -> Marker:
        """The equivalent generated message (slow for large meshes: for tests and inspection)."""
        from geometry_msgs.msg import Point
        from std_msgs.msg import ColorRGBA

        from ssr_ros.ros.conversions.time import ns_to_stamp

        marker = Marker(ns=self.namespace, id=int(self.marker_id), type=int(self.type), action=int(self.action))
        marker.header.frame_id = self.frame_id
        marker.header.stamp = ns_to_stamp(self.stamp_ns)
        marker.scale.x, marker.scale.y, marker.scale.z = (float(v) for v in self.scale)
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = (float(v) for v in self.color)
        marker.frame_locked = bool(self.frame_locked)
        if self.points is not None:
            marker.points = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(self.points, np.float64).tolist()]
        if self.colors is not None:
            marker.colors = [ColorRGBA(r=r, g=g, b=b, a=a) for r, g, b, a in np.asarray(self.colors, np.float32).tolist()]
        return marker


_CACHE: dict[tuple, bytes] = {}


def _cached(key: tuple, offset: int, write) -> bytes:
    """The bytes ``write(writer)`` produces at payload offset ``offset``: their padding depends on
    offset % 8 only, so they are kept per (key, offset % 8) (the markers of an array share them)."""
    key = (offset % 8, *key)
    data = _CACHE.get(key)
    if data is None:
        out = _Writer()
        out.offset, out.parts = offset % 8, []
        write(out)
        data = b"".join(out.parts)
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = data
    return data


def _header(out: _Writer, record: MarkerRecord) -> None:
    out.stamp(record.stamp_ns)
    out.string(record.frame_id)
    out.string(record.namespace)


def _shape(out: _Writer, record: MarkerRecord) -> None:
    out.pack("7d", 8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # pose: identity
    out.pack("3d", 8, *(float(v) for v in record.scale))
    out.pack("4f", 4, *(float(v) for v in record.color))
    out.pack("iI", 4, 0, 0)  # lifetime: forever
    out.pack("?", 1, bool(record.frame_locked))


def _tail(offset: int) -> bytes:
    """The bytes after the colors (texture, uv coordinates, text, mesh resource and file: all empty)."""
    def write(out: _Writer) -> None:
        out.string("")  # texture_resource
        out.stamp(0)  # texture: sensor_msgs/CompressedImage (header, format, data)
        out.string("")
        out.string("")
        out.pack("I", 4, 0)
        out.pack("I", 4, 0)  # uv_coordinates
        out.string("")  # text
        out.string("")  # mesh_resource
        out.string("")  # mesh_file: filename, data
        out.pack("I", 4, 0)
        out.pack("?", 1, False)  # mesh_use_embedded_materials

    return _cached(("tail",), offset, write)


def _write_marker(out: _Writer, record: MarkerRecord) -> None:
    out.raw(_cached(("header", int(record.stamp_ns), record.frame_id, record.namespace), out.offset,
                    lambda w: _header(w, record)), 1)
    out.pack("iii", 4, int(record.marker_id), int(record.type), int(record.action))
    out.raw(_cached(("shape", tuple(float(v) for v in record.scale), tuple(float(v) for v in record.color),
                     bool(record.frame_locked)), out.offset, lambda w: _shape(w, record)), 1)
    points = np.zeros((0, 3)) if record.points is None else np.asarray(record.points)
    colors = np.zeros((0, 4)) if record.colors is None else np.asarray(record.colors)
    if points.ndim != 2 or points.shape[1] != 3 or colors.ndim != 2 or colors.shape[1] != 4:
        raise InconsistentMessage(f"marker points must be (N, 3) and colors (N, 4), got {points.shape} and {colors.shape}")
    out.pack("I", 4, points.shape[0])
    if points.shape[0]:
        out.raw(np.ascontiguousarray(points, dtype="<f8").tobytes(), 8)
    out.pack("I", 4, colors.shape[0])
    if colors.shape[0]:
        out.raw(np.ascontiguousarray(colors, dtype="<f4").tobytes(), 4)
    out.raw(_tail(out.offset), 1)


def record_bytes(record: MarkerRecord) -> int:
    """About how many bytes ``record`` takes in a serialised MarkerArray."""
    points = 0 if record.points is None else len(record.points)
    colors = 0 if record.colors is None else len(record.colors)
    return 320 + len(record.frame_id) + len(record.namespace) + 24 * points + 16 * colors


def split_marker_records(records: list[MarkerRecord], max_bytes: int) -> list[list[MarkerRecord]]:
    """Consecutive runs of ``records`` of at most ``max_bytes`` each (a larger record alone);
    at least one run, empty when ``records`` is."""
    parts: list[list[MarkerRecord]] = [[]]
    size = 0
    for record in records:
        nbytes = record_bytes(record)
        if parts[-1] and size + nbytes > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append(record)
        size += nbytes
    return parts


def marker_array_cdr(records: list[MarkerRecord]) -> bytes:
    """The serialised MarkerArray of ``records``, as ``serialize_message`` would write it."""
    out = _Writer()
    out.pack("I", 4, len(records))
    for record in records:
        _write_marker(out, record)
    return out.bytes()


def records_to_msg(records: list[MarkerRecord]) -> MarkerArray:
    """The generated MarkerArray of ``records`` (slow for large meshes: for tests and inspection)."""
    return MarkerArray(markers=[record.to_msg() for record in records])


_LAYOUT_OK: bool | None = None


def cdr_layout_matches() -> bool:
    """Whether :func:`marker_array_cdr` writes the ``visualization_msgs/MarkerArray`` of the
    installed ROS distribution: a reference array (two markers, a header, points and colors) is
    read back by rclpy and compared field by field with the generated message, and its length
    with rclpy's own serialisation. The layout written here is that of Humble and later (texture,
    uv coordinates and mesh file fields); a distribution with another Marker definition gets
    False, and the node publishes generated messages instead. Checked once per process."""
    global _LAYOUT_OK
    if _LAYOUT_OK is None:
        from rclpy.serialization import deserialize_message, serialize_message

        points = np.array([[0.5, -1.25, 2.0], [3.0, 4.5, -6.0], [1.0, 2.0, 3.0]])
        colors = np.array([[0.1, 0.2, 0.3, 1.0], [0.4, 0.5, 0.6, 0.5], [0.7, 0.8, 0.9, 0.25]], np.float32)
        records = [MarkerRecord("map_frame", 1_234_567_891, "ns", 7, Marker.TRIANGLE_LIST, Marker.ADD,
                                (1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.5), True, points, colors),
                   MarkerRecord("m", 5, "other", 3, Marker.ARROW, Marker.DELETE)]
        expected = records_to_msg(records)
        try:
            data = marker_array_cdr(records)
            _LAYOUT_OK = (len(data) == len(serialize_message(expected))
                          and deserialize_message(data, MarkerArray) == expected)
        except Exception:  # noqa: BLE001 - any failure to read it back means another layout
            _LAYOUT_OK = False
    return _LAYOUT_OK
