"""Marching cubes over the sparse grid: accuracy, no cracks, orientation, incremental updates."""

from collections import Counter

import numpy as np
import torch

from scenes import Box, Plane, Sphere, frame_of, look_at, orbit_poses, small_camera
from test_chunks import predicted_sphere
from ssr_ros.map import SemanticTSDF, TSDFConfig

CAM = small_camera()


def test_sphere_mesh_vertices_lie_on_the_true_surface():
    sphere = Sphere((0.1, -0.05, 0.0), 0.4)
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    for T in orbit_poses(sphere.center, 1.5, 8):
        tsdf_map.integrate(frame_of([sphere], CAM, T))
    mesh = tsdf_map.mesh()
    assert mesh.num_triangles > 500
    error = np.abs(sphere.distance(mesh.vertices.astype(np.float64)))
    # every vertex the orbit sees well (latitude within 30 deg) is within half a voxel; near
    # the poles, seen only at grazing angles, projective distances bias the surface slightly
    unit = (mesh.vertices - np.asarray(sphere.center)) / np.linalg.norm(mesh.vertices - np.asarray(sphere.center), axis=1, keepdims=True)
    seen_well = np.abs(unit[:, 2]) < 0.5
    assert error[seen_well].max() < 0.5 * tsdf_map.voxel_size
    assert np.quantile(error, 0.99) < 0.5 * tsdf_map.voxel_size and error.max() < 0.75 * tsdf_map.voxel_size
    assert np.median(error) < 0.1 * tsdf_map.voxel_size
    assert (mesh.labels == 1).mean() > 0.95
    assert (np.abs(mesh.colors.astype(int) - np.array(sphere.color)) <= 2).all(axis=1).mean() > 0.95
    assert mesh.observed.all() and not mesh.predicted.any()
    # triangles are counter-clockwise seen from outside: normals point away from the centre
    v = mesh.vertices[mesh.triangles]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    outward = np.einsum("ij,ij->i", normals, v.mean(1) - np.asarray(sphere.center))
    assert (outward > 0).mean() > 0.99


def test_box_mesh_vertices_lie_on_the_true_surface():
    box = Box((-0.3, -0.25, -0.2), (0.3, 0.25, 0.2))
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    for T in orbit_poses((0, 0, 0), 1.6, 8, height=0.8):
        tsdf_map.integrate(frame_of([box], CAM, T))
    mesh = tsdf_map.mesh()
    error = box.distance(mesh.vertices.astype(np.float64))
    # marching cubes rounds the box's edges and corners; faces are within half a voxel
    assert np.quantile(error, 0.9) < 0.5 * tsdf_map.voxel_size
    assert (mesh.labels == 3).mean() > 0.95


def test_fully_known_sphere_mesh_is_closed_across_block_borders():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    tsdf_map.write_predictions(torch.tensor([-8, -8, -8]), predicted_sphere(center_vox=8.3))
    update = tsdf_map.update_mesh()
    assert len(update.blocks) >= 8  # the sphere crosses block borders on every axis
    mesh = tsdf_map.mesh()
    assert mesh.predicted.all() and not mesh.observed.any()
    # merge the copies of border vertices; a crack would leave edges with a single triangle
    _, merged = np.unique(np.round(mesh.vertices / 1e-5).astype(np.int64), axis=0, return_inverse=True)
    tri = merged.reshape(-1)[mesh.triangles]
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    counts = Counter(map(tuple, edges))
    assert set(counts.values()) == {2}


def test_update_mesh_is_incremental_and_reports_vanished_blocks():
    wall = Plane((0, 0, 1), 2.0)
    box = Box((-0.2, -0.2, 1.4), (0.2, 0.2, 1.7))
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04, max_weight=5.0), num_classes=21)
    tsdf_map.integrate(frame_of([wall, box], CAM, np.eye(4)))
    first = tsdf_map.update_mesh()
    assert len(first.blocks) > 0 and first.vanished.shape == (0, 3)
    assert len(tsdf_map.update_mesh().blocks) == 0  # nothing changed since
    # a far-away frame changes only its own blocks
    side = look_at((6.0, 0.0, 2.0), (8.0, 0.0, 2.0), up=(0, 0, 1))
    tsdf_map.integrate(frame_of([Plane((1, 0, 0), 8.0)], CAM, side))
    second = tsdf_map.update_mesh()
    assert len(second.blocks) > 0
    assert all(index[0] * tsdf_map.config.block_extent > 5.0 for index in second.blocks)
    # the box disappears: its blocks lose their mesh
    for _ in range(6):
        tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    third = tsdf_map.update_mesh()
    vanished = {tuple(v) for v in third.vanished}
    box_blocks = {k for k, m in first.blocks.items() if (np.abs(m.vertices[:, 2] - 2.0) > 0.1).all()}
    assert box_blocks and box_blocks <= vanished
    full = tsdf_map.mesh()
    assert sum(m.num_vertices for m in tsdf_map._mesher.meshes.values()) == full.num_vertices


def test_reset_reports_every_block_as_vanished():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 2.0)], CAM, np.eye(4)))
    meshed = set(tsdf_map.update_mesh().blocks)
    tsdf_map.reset()
    update = tsdf_map.update_mesh()
    assert {tuple(v) for v in update.vanished} == meshed and not update.blocks
