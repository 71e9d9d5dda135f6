"""Meshes -> RViz TRIANGLE_LIST markers and MarkerArray splitting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from visualization_msgs.msg import Marker

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.marker import marker_to_mesh, mesh_to_marker, mesh_to_marker_array


def random_mesh(seed: int, n_vertices: int, n_triangles: int):
    rng = np.random.default_rng(seed)
    vertices = rng.uniform(-5, 5, (n_vertices, 3))
    triangles = rng.integers(0, n_vertices, (n_triangles, 3))
    colors = rng.integers(0, 256, (n_vertices, 3)).astype(np.uint8)
    return vertices, triangles, colors


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_vertices=st.integers(1, 60), n_triangles=st.integers(0, 80))
def test_marker_holds_every_triangle_corner_with_its_vertex_color(seed, n_vertices, n_triangles):
    vertices, triangles, colors = random_mesh(seed, n_vertices, n_triangles)
    marker = mesh_to_marker(vertices, triangles, colors, "map", namespace="mesh", marker_id=3)
    assert marker.type == Marker.TRIANGLE_LIST and marker.id == 3 and marker.header.frame_id == "map"
    corners, corner_colors = marker_to_mesh(marker)
    np.testing.assert_allclose(corners, vertices[triangles.reshape(-1)])
    np.testing.assert_array_equal(corner_colors, colors[triangles.reshape(-1)])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_triangles=st.integers(0, 50), max_triangles=st.integers(1, 17))
def test_marker_array_splits_into_bounded_parts_that_reassemble_the_mesh(seed, n_triangles, max_triangles):
    vertices, triangles, colors = random_mesh(seed, 40, n_triangles)
    array = mesh_to_marker_array(vertices, triangles, colors, "map", max_triangles=max_triangles)
    assert array.markers[0].action == Marker.DELETEALL
    parts = array.markers[1:]
    assert len(parts) == -(-n_triangles // max_triangles)
    assert [m.id for m in parts] == list(range(len(parts)))
    assert all(len(m.points) <= 3 * max_triangles for m in parts)
    corners = np.concatenate([marker_to_mesh(m)[0] for m in parts]) if parts else np.zeros((0, 3))
    np.testing.assert_allclose(corners, vertices[triangles.reshape(-1)].reshape(-1, 3))


def test_out_of_range_triangle_index_is_refused():
    vertices, triangles, colors = random_mesh(0, 4, 2)
    triangles[1, 2] = 4
    with pytest.raises(InconsistentMessage, match="span \\[.*, 4\\] but there are 4 vertices"):
        mesh_to_marker(vertices, triangles, colors, "map")


def test_colors_must_be_uint8_per_vertex():
    vertices, triangles, colors = random_mesh(0, 4, 2)
    with pytest.raises(InconsistentMessage, match="colors must be uint8 of shape \\(4, 3\\)"):
        mesh_to_marker(vertices, triangles, colors.astype(np.float32), "map")
