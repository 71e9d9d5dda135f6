"""Triangle meshes -> visualization_msgs Marker (TRIANGLE_LIST) / MarkerArray for RViz.

RViz draws a TRIANGLE_LIST marker from unindexed vertices (3 per triangle) with one color
per vertex. Large meshes are split into several markers of at most ``max_triangles``
triangles each, so that no single message grows beyond what DDS and RViz handle well.
"""

from __future__ import annotations

import numpy as np
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.marker_cdr import MarkerRecord
from ssr_ros.ros.conversions.time import ns_to_stamp

DEFAULT_MAX_TRIANGLES = 65_536


def _check_mesh(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles)
    colors = np.asarray(colors)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InconsistentMessage(f"vertices must have shape (N, 3), got {vertices.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3 or not np.issubdtype(triangles.dtype, np.integer):
        raise InconsistentMessage(f"triangles must be integer (M, 3), got {triangles.dtype} {triangles.shape}")
    if colors.shape != (vertices.shape[0], 3) or colors.dtype != np.uint8:
        raise InconsistentMessage(
            f"colors must be uint8 of shape ({vertices.shape[0]}, 3), got {colors.dtype} {colors.shape}"
        )
    if triangles.size and (triangles.min() < 0 or triangles.max() >= vertices.shape[0]):
        raise InconsistentMessage(
            f"triangle indices span [{triangles.min()}, {triangles.max()}] but there are {vertices.shape[0]} vertices"
        )
    return vertices, triangles, colors


def triangle_list_record(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    frame_id: str,
    stamp_ns: int = 0,
    namespace: str = "mesh",
    marker_id: int = 0,
    alpha: float = 1.0,
) -> MarkerRecord:
    """One TRIANGLE_LIST marker as arrays (see :mod:`ssr_ros.ros.conversions.marker_cdr`): the
    corners of every triangle, (3M, 3) float64, with their vertex colors as RGBA float32."""
    points, rgba = _triangle_corners(*_check_mesh(vertices, triangles, colors), alpha)
    return _triangle_record(frame_id, stamp_ns, namespace, marker_id, alpha, points, rgba)


def _triangle_corners(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray,
                      alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The corner of every triangle (3M, 3) and its vertex's color as RGBA float32 (3M, 4)."""
    corners = triangles.reshape(-1)
    rgba = np.empty((corners.shape[0], 4), dtype=np.float32)
    rgba[:, :3] = colors[corners].astype(np.float32) / 255.0
    rgba[:, 3] = np.float32(alpha)
    return vertices[corners], rgba


def _triangle_record(frame_id: str, stamp_ns: int, namespace: str, marker_id: int, alpha: float,
                     points: np.ndarray, rgba: np.ndarray) -> MarkerRecord:
    """A TRIANGLE_LIST marker of triangle corners and their colors (identity pose, frame locked)."""
    return MarkerRecord(frame_id, stamp_ns, namespace, int(marker_id), Marker.TRIANGLE_LIST, Marker.ADD,
                        (1.0, 1.0, 1.0), (0.0, 0.0, 0.0, float(alpha)), True, points, rgba)


def mesh_to_marker(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    frame_id: str,
    stamp_ns: int = 0,
    namespace: str = "mesh",
    marker_id: int = 0,
    alpha: float = 1.0,
) -> Marker:
    """One TRIANGLE_LIST marker: vertices (N, 3) metres, triangles (M, 3), colors (N, 3) uint8."""
    return triangle_list_record(vertices, triangles, colors, frame_id, stamp_ns, namespace, marker_id, alpha).to_msg()


def control_record(action: int, frame_id: str, stamp_ns: int = 0, namespace: str = "mesh", marker_id: int = 0) -> MarkerRecord:
    """:func:`control_marker` as a :class:`MarkerRecord`."""
    return MarkerRecord(frame_id, stamp_ns, namespace, int(marker_id), Marker.ARROW, int(action))


def control_marker(action: int, frame_id: str, stamp_ns: int = 0, namespace: str = "mesh", marker_id: int = 0) -> Marker:
    """A marker that only acts: DELETEALL (of ``namespace``) or DELETE (of ``marker_id``)."""
    marker = Marker(ns=namespace, id=int(marker_id), action=action)
    marker.header.frame_id = frame_id
    marker.header.stamp = ns_to_stamp(stamp_ns)
    return marker


def part_count(num_triangles: int, max_triangles: int) -> int:
    """How many markers :func:`mesh_to_part_markers` makes of ``num_triangles`` triangles."""
    if max_triangles < 1:
        raise InconsistentMessage(f"max_triangles must be >= 1, got {max_triangles}")
    return -(-int(num_triangles) // max_triangles)


def mesh_to_part_records(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    frame_id: str,
    stamp_ns: int,
    namespace: str,
    marker_ids,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    alpha: float = 1.0,
) -> list[MarkerRecord]:
    """TRIANGLE_LIST markers (as records) of a mesh split into runs of at most ``max_triangles``
    triangles (:func:`part_count` of them), ids from ``marker_ids``."""
    return block_part_records([vertices], [triangles], [colors], [marker_ids], frame_id, stamp_ns, namespace,
                              max_triangles, alpha)[0]


def block_part_records(
    vertices: list[np.ndarray],
    triangles: list[np.ndarray],
    colors: list[np.ndarray],
    marker_ids: list[list[int]],
    frame_id: str,
    stamp_ns: int,
    namespace: str,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    alpha: float = 1.0,
) -> list[list[MarkerRecord]]:
    """:func:`mesh_to_part_records` of many meshes at once (block k: ``vertices[k]``, ...,
    ids ``marker_ids[k]``): the triangle corners and their colors of all blocks are gathered in
    one pass and every marker holds a slice of them."""
    part_count(1, max_triangles)  # refuses max_triangles < 1
    if not vertices:
        return []
    counts = np.array([len(v) for v in vertices], dtype=np.int64)
    tri_counts = np.array([len(t) for t in triangles], dtype=np.int64)
    all_vertices, all_triangles, all_colors = _check_mesh(
        np.concatenate(vertices), np.concatenate([np.asarray(t).reshape(-1, 3) for t in triangles]),
        np.concatenate(colors))
    offsets = np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), tri_counts)
    corners = (all_triangles + offsets[:, None]).reshape(-1)
    if corners.size and (corners.max() >= len(all_vertices) or (all_triangles.max(axis=1) >= np.repeat(counts, tri_counts)).any()):
        raise InconsistentMessage("a block's triangle indexes a vertex beyond its own")
    points, rgba = _triangle_corners(all_vertices, corners, all_colors, alpha)
    starts = np.concatenate([[0], np.cumsum(tri_counts)]).tolist()
    out = []
    for k, ids in enumerate(marker_ids):
        records = []
        for marker_id, first in zip(ids, range(starts[k], starts[k + 1], max_triangles)):
            last = min(first + max_triangles, starts[k + 1])
            records.append(_triangle_record(frame_id, stamp_ns, namespace, marker_id, alpha,
                                            points[3 * first : 3 * last], rgba[3 * first : 3 * last]))
        out.append(records)
    return out


def mesh_to_part_markers(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    frame_id: str,
    stamp_ns: int,
    namespace: str,
    marker_ids,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    alpha: float = 1.0,
) -> list[Marker]:
    """:func:`mesh_to_part_records` as generated messages."""
    return [record.to_msg() for record in mesh_to_part_records(vertices, triangles, colors, frame_id, stamp_ns,
                                                                namespace, marker_ids, max_triangles, alpha)]


def mesh_to_marker_array(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    frame_id: str,
    stamp_ns: int = 0,
    namespace: str = "mesh",
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    alpha: float = 1.0,
) -> MarkerArray:
    """MarkerArray: a DELETEALL marker (clears what an earlier array showed), then
    ceil(M / max_triangles) TRIANGLE_LIST markers with ids 0, 1, ..."""
    count = part_count(np.asarray(triangles).reshape(-1, 3).shape[0], max_triangles)
    parts = mesh_to_part_markers(vertices, triangles, colors, frame_id, stamp_ns, namespace, range(count), max_triangles,
                                 alpha)
    array = MarkerArray()
    array.markers = [control_marker(Marker.DELETEALL, frame_id, stamp_ns, namespace), *parts]
    return array


def marker_to_mesh(marker: Marker) -> tuple[np.ndarray, np.ndarray]:
    """Unindexed triangle corners (3M, 3) float64 and their colors (3M, 3) uint8 of a TRIANGLE_LIST."""
    if marker.type != Marker.TRIANGLE_LIST:
        raise InconsistentMessage(f"marker type {marker.type} is not TRIANGLE_LIST ({Marker.TRIANGLE_LIST})")
    if len(marker.points) % 3:
        raise InconsistentMessage(f"TRIANGLE_LIST has {len(marker.points)} points, not a multiple of 3")
    corners = np.array([(p.x, p.y, p.z) for p in marker.points], dtype=np.float64).reshape(-1, 3)
    if len(marker.colors) not in (0, len(marker.points)):
        raise InconsistentMessage(f"TRIANGLE_LIST has {len(marker.colors)} colors for {len(marker.points)} points")
    colors = np.array([(c.r, c.g, c.b) for c in marker.colors], dtype=np.float64).reshape(-1, 3)
    return corners, np.round(colors * 255.0).astype(np.uint8)
