"""The Poisson baseline and the comparison table, against analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.evaluation.comparison import markdown_table, mean_scores, new_surface, outside_box, surface_scores
from ssr_ros.evaluation.mesh import sample_surface
from ssr_ros.evaluation.poisson import PoissonConfig, mesh_occupancy, poisson_surface, vertex_normals


def box_mesh(lo, hi, inward: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 12 triangles of a box, counter-clockwise seen from outside (or from inside)."""
    import open3d as o3d

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    mesh = o3d.geometry.TriangleMesh.create_box(*(hi - lo))
    vertices = np.asarray(mesh.vertices) + lo
    triangles = np.asarray(mesh.triangles, dtype=np.int64)
    return vertices, (triangles[:, ::-1].copy() if inward else triangles)


def sphere_mesh(radius: float) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh.create_sphere(radius, resolution=40)
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles, dtype=np.int64)


def test_vertex_normals_point_out_of_a_sphere():
    vertices, triangles = sphere_mesh(1.0)
    normals = vertex_normals(vertices, triangles)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    assert np.einsum("ij,ij->i", normals, vertices).min() > 0.99


def test_poisson_of_an_open_sphere_closes_it_on_the_true_surface():
    vertices, triangles = sphere_mesh(0.5)
    keep = ~(vertices[triangles][:, :, 2] > 0.35).any(axis=1)  # cut off a cap: a hole to fill
    out_vertices, out_triangles = poisson_surface(vertices, triangles[keep], PoissonConfig(depth=6, density_quantile=0.0, crop_to_input=False))
    assert len(out_triangles) > 100
    radius = np.linalg.norm(out_vertices, axis=1)
    assert np.median(np.abs(radius - 0.5)) < 0.01 and np.abs(radius - 0.5).max() < 0.1  # the fill bulges a little
    assert (out_vertices[:, 2] > 0.4).any()  # the cap is back
    # oriented like the input: normals point outwards
    assert np.einsum("ij,ij->i", vertex_normals(out_vertices, out_triangles), out_vertices).mean() > 0.4


def test_poisson_crops_to_the_input_box_and_handles_an_empty_mesh():
    vertices, triangles = sphere_mesh(0.5)
    keep = ~(vertices[triangles][:, :, 2] > 0.35).any(axis=1)
    used = np.unique(triangles[keep])
    out_vertices, _ = poisson_surface(vertices, triangles[keep], PoissonConfig(depth=6))
    assert out_vertices[:, 2].max() <= vertices[used, 2].max() + 1e-9
    empty_vertices, empty_triangles = poisson_surface(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    assert empty_vertices.shape == (0, 3) and empty_triangles.shape == (0, 3)


def test_mesh_occupancy_of_a_box_is_its_voxels_plus_half_a_voxel():
    voxel = 0.1
    vertices, triangles = box_mesh([0.2, 0.2, 0.2], [0.6, 0.6, 0.6])
    occupied = mesh_occupancy(vertices, triangles, origin_voxel=[0, 0, 0], shape=(10, 10, 10), voxel_size=voxel)
    expected = np.zeros((10, 10, 10), bool)
    expected[2:6, 2:6, 2:6] = True  # centres inside the box; those of the next layer lie exactly half a voxel out
    assert occupied[expected].all()
    grown = np.zeros_like(expected)
    grown[1:7, 1:7, 1:7] = True
    assert not occupied[~grown].any()
    # seen from inside (a room), the solid is everything outside the box
    room = mesh_occupancy(*box_mesh([0.2, 0.2, 0.2], [0.6, 0.6, 0.6], inward=True), [0, 0, 0], (10, 10, 10), voxel)
    assert not room[3:5, 3:5, 3:5].any() and room[0, 0, 0] and room[9, 9, 9]


def test_surface_scores_of_a_perfect_mesh_and_of_made_up_vertices():
    vertices, triangles = box_mesh([0, 0, 0], [1, 1, 1], inward=True)
    gt_points = sample_surface(vertices, triangles, 20_000, seed=3)
    perfect = surface_scores(vertices, triangles, None, gt_points, num_points=20_000)
    assert perfect["precision"] > 0.99 and perfect["recall"] > 0.99 and perfect["fscore"] > 0.99
    assert perfect["predicted_precision"] is None and perfect["triangles"] == 12
    # a second box 0.5 m outside the room: half its vertices are made up, all of them outside
    outside_vertices = vertices + [0, 0, 1.5]
    both = np.concatenate([vertices, outside_vertices])
    both_triangles = np.concatenate([triangles, triangles + len(vertices)])
    predicted = np.r_[np.zeros(len(vertices), bool), np.ones(len(vertices), bool)]
    scores = surface_scores(both, both_triangles, predicted, gt_points, room_box=(np.zeros(3), np.ones(3)),
                            num_points=20_000)
    assert scores["predicted_vertices"] == 8
    assert scores["predicted_precision"] == pytest.approx(0.0)  # the lowest corners are 0.5 m above the room
    assert scores["predicted_outside_room"] == pytest.approx(1.0)
    assert 0.4 < scores["precision"] < 0.6 and scores["recall"] > 0.99


def test_outside_box_and_new_surface():
    points = np.array([[0.5, 0.5, 0.5], [1.04, 0.5, 0.5], [1.2, 0.5, 0.5], [0.5, 0.5, -0.2]])
    np.testing.assert_array_equal(outside_box(points, np.zeros(3), np.ones(3), 0.05), [False, False, True, True])
    np.testing.assert_array_equal(new_surface(points, points[:2], 0.1), [False, False, True, True])
    assert new_surface(points, np.zeros((0, 3)), 0.1).all()


def test_mean_scores_skip_missing_values_and_the_table_marks_them():
    mean = mean_scores([{"fscore": 0.5, "predicted_precision": None}, {"fscore": 0.7, "predicted_precision": 0.2}])
    assert mean["fscore"] == pytest.approx(0.6) and mean["predicted_precision"] == pytest.approx(0.2)
    assert mean_scores([{"x": None}])["x"] is None
    table = markdown_table([("fusion only", {"fscore": 0.4286, "accuracy": 0.0147, "triangles": 22839})])
    lines = table.splitlines()
    assert lines[0].startswith("| method | acc (cm)") and len(lines) == 3
    assert "| 1.47 |" in lines[2] and "| 42.9 |" in lines[2] and "22,839" in lines[2] and "n/a" in lines[2]
