"""MarkerArray written as CDR from arrays: what rclpy reads back equals the generated messages the
node built before (one object per corner), at the length rclpy's own serialisation has."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import Point
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.marker import (
    block_part_records, control_marker, control_record, mesh_to_part_records, triangle_list_record,
)
from ssr_ros.ros.conversions.marker_cdr import MarkerRecord, marker_array_cdr, records_to_msg, split_marker_records
from ssr_ros.ros.conversions.time import ns_to_stamp


def reference_triangle_marker(vertices, triangles, colors, frame_id, stamp_ns, namespace, marker_id, alpha) -> Marker:
    """The generated-message TRIANGLE_LIST marker as the node built it before (one object per corner)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    corners = np.asarray(triangles).reshape(-1)
    marker = Marker()
    marker.header.frame_id = frame_id
    marker.header.stamp = ns_to_stamp(stamp_ns)
    marker.ns = namespace
    marker.id = int(marker_id)
    marker.type = Marker.TRIANGLE_LIST
    marker.action = Marker.ADD
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color.a = float(alpha)
    marker.frame_locked = True
    marker.points = [Point(x=x, y=y, z=z) for x, y, z in vertices[corners].tolist()]
    rgba = colors[corners].astype(np.float32) / 255.0
    marker.colors = [ColorRGBA(r=r, g=g, b=b, a=float(alpha)) for r, g, b in rgba.tolist()]
    return marker


ROS_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=7)  # no NUL in ROS strings


def random_mesh(rng, n_vertices, n_triangles):
    vertices = rng.uniform(-5, 5, (n_vertices, 3)).astype(np.float32)
    triangles = rng.integers(0, n_vertices, (n_triangles, 3))
    colors = rng.integers(0, 256, (n_vertices, 3)).astype(np.uint8)
    return vertices, triangles, colors


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_vertices=st.integers(1, 40), n_triangles=st.integers(0, 30),
       frame=ROS_TEXT, namespace=ROS_TEXT, stamp_ns=st.integers(0, 2**31 * 10**9 - 1),
       alpha=st.floats(0.0, 1.0), marker_id=st.integers(-(2**31), 2**31 - 1))
def test_triangle_list_bytes_read_back_as_the_previous_messages(seed, n_vertices, n_triangles, frame,
                                                             namespace, stamp_ns, alpha, marker_id):
    rng = np.random.default_rng(seed)
    vertices, triangles, colors = random_mesh(rng, n_vertices, n_triangles)
    record = triangle_list_record(vertices, triangles, colors, frame, stamp_ns, namespace, marker_id, alpha)
    control = control_record(Marker.DELETE, frame, stamp_ns, namespace, marker_id)
    expected = MarkerArray(markers=[
        control_marker(Marker.DELETEALL, frame, stamp_ns, namespace),
        reference_triangle_marker(vertices, triangles, colors, frame, stamp_ns, namespace, marker_id, alpha),
        control_marker(Marker.DELETE, frame, stamp_ns, namespace, marker_id),
    ])
    records = [control_record(Marker.DELETEALL, frame, stamp_ns, namespace), record, control]
    written = marker_array_cdr(records)
    # rclpy leaves alignment padding uninitialised, so bytes are compared through its reader
    assert len(written) == len(serialize_message(expected))
    # (compared as read back: float32 fields hold what the generated message rounds to on the wire)
    assert deserialize_message(written, MarkerArray) == deserialize_message(serialize_message(expected), MarkerArray)
    assert (deserialize_message(serialize_message(records_to_msg(records)), MarkerArray)
            == deserialize_message(serialize_message(expected), MarkerArray))


def test_an_empty_array_and_a_split_mesh_round_trip_through_rclpy():
    assert deserialize_message(marker_array_cdr([]), MarkerArray).markers == []
    rng = np.random.default_rng(3)
    vertices, triangles, colors = random_mesh(rng, 200, 250)
    records = mesh_to_part_records(vertices, triangles, colors, "map", 12_345, "ssr_mesh", [4, 9, 11], max_triangles=100)
    assert [r.marker_id for r in records] == [4, 9, 11]
    back = deserialize_message(marker_array_cdr(records), MarkerArray)
    corners = np.array([(p.x, p.y, p.z) for m in back.markers for p in m.points])
    np.testing.assert_array_equal(corners, vertices[triangles.reshape(-1)].astype(np.float64))
    rgb = np.array([(c.r, c.g, c.b) for m in back.markers for c in m.colors], dtype=np.float32)
    np.testing.assert_array_equal(np.round(rgb * 255).astype(np.uint8), colors[triangles.reshape(-1)])
    assert [len(m.points) for m in back.markers] == [300, 300, 150]


def test_records_refuse_mismatched_arrays_and_negative_stamps():
    with pytest.raises(InconsistentMessage, match="points must be"):
        marker_array_cdr([MarkerRecord("map", 0, "ns", 0, points=np.zeros((3, 2)))])
    with pytest.raises(InconsistentMessage, match="negative"):
        marker_array_cdr([MarkerRecord("map", -1, "ns", 0)])


def test_split_records_keep_their_order_and_stay_under_the_size():
    rng = np.random.default_rng(5)
    vertices, triangles, colors = random_mesh(rng, 300, 400)
    records = [control_record(Marker.DELETEALL, "map", 0, "m")]
    records += mesh_to_part_records(vertices, triangles, colors, "map", 0, "m", range(1, 9), max_triangles=50)
    records += [control_record(Marker.DELETE, "map", 0, "m", 99)]
    parts = split_marker_records(records, 8_000)
    assert len(parts) > 2 and [r for part in parts for r in part] == records
    for part in parts:
        assert len(part) == 1 or len(marker_array_cdr(part)) <= 8_000
    assert split_marker_records([], 100) == [[]]
    assert split_marker_records(records, 10**9) == [records]


def test_block_part_records_equal_those_made_block_by_block():
    rng = np.random.default_rng(8)
    meshes = [random_mesh(rng, int(rng.integers(3, 40)), int(rng.integers(1, 60))) for _ in range(12)]
    ids = [[3 * k + 1, 3 * k + 2, 3 * k + 3][: -(-len(m[1]) // 20)] for k, m in enumerate(meshes)]
    together = block_part_records([m[0] for m in meshes], [m[1] for m in meshes], [m[2] for m in meshes], ids,
                                  "map", 5, "ssr_mesh", max_triangles=20, alpha=0.5)
    assert len(together) == len(meshes)
    for (vertices, triangles, colors), block_ids, records in zip(meshes, ids, together):
        alone = mesh_to_part_records(vertices, triangles, colors, "map", 5, "ssr_mesh", block_ids, max_triangles=20,
                                     alpha=0.5)
        assert len(records) == len(alone)
        for a, b in zip(records, alone):
            assert (a.marker_id, a.type, a.action, a.scale, a.color, a.frame_locked) == (
                b.marker_id, b.type, b.action, b.scale, b.color, b.frame_locked)
            assert a.points.dtype == b.points.dtype and np.array_equal(a.points, b.points)
            assert a.colors.dtype == b.colors.dtype and np.array_equal(a.colors, b.colors)
    assert block_part_records([], [], [], [], "map", 0, "m") == []
    with pytest.raises(InconsistentMessage, match="beyond its own"):
        block_part_records([np.zeros((3, 3)), np.zeros((3, 3))], [np.array([[0, 1, 4]]), np.array([[0, 1, 2]])],
                           [np.zeros((3, 3), np.uint8)] * 2, [[1], [2]], "map", 0, "m")


def test_the_serialised_layout_is_checked_against_the_installed_marker(monkeypatch):
    from ssr_ros.ros.conversions import marker_cdr

    monkeypatch.setattr(marker_cdr, "_LAYOUT_OK", None)
    assert marker_cdr.cdr_layout_matches()  # the installed distribution: the layout written here
    # a writer that leaves out a field (as on a distribution without mesh_file) is caught
    monkeypatch.setattr(marker_cdr, "_LAYOUT_OK", None)
    original = marker_cdr._tail
    monkeypatch.setattr(marker_cdr, "_tail", lambda offset: original(offset)[:-5])
    assert not marker_cdr.cdr_layout_matches()
