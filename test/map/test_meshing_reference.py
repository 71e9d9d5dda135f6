"""Meshing reads vertex attributes per vertex and splits blocks in one pass: its block meshes stay
equal, array for array, to those of the previous implementation (``meshing_reference``) on fused
maps, with and without predicted voxels, after blocks were removed and in incremental updates."""

from __future__ import annotations

import numpy as np
import torch
from meshing_reference import reference_mesh_blocks
from scenes import ORBIT_BOX, ORBIT_SPHERE, frame_of, orbit_poses, orbit_sphere_map, small_camera

from ssr_ros.map.meshing import mesh_blocks

FIELDS = ("vertices", "triangles", "colors", "labels", "confidence", "observed", "predicted")


def assert_same_meshes(new: dict, old: dict) -> None:
    assert list(new) == list(old)  # the same blocks, in the same order
    for index in old:
        for name in FIELDS:
            a, b = getattr(new[index], name), getattr(old[index], name)
            assert a.dtype == b.dtype and np.array_equal(a, b), (index, name)
        assert new[index].index == old[index].index


def test_block_meshes_equal_the_previous_implementation_on_a_fused_map():
    tsdf_map = orbit_sphere_map(frames=6)
    layer = tsdf_map.layer
    coords = layer.block_coords().clone()
    for include_predicted in (True, False):
        old = reference_mesh_blocks(layer, coords, include_predicted)
        assert sum(m.num_triangles for m in old.values()) > 500
        assert_same_meshes(mesh_blocks(layer, coords, include_predicted), old)
    # a subset (neighbours outside it are still read from the map) and an unallocated block
    part = torch.cat([coords[::3], torch.tensor([[40, 40, 40]])])
    assert_same_meshes(mesh_blocks(layer, part), reference_mesh_blocks(layer, part))


def test_block_meshes_equal_the_previous_implementation_with_predicted_voxels_and_removed_blocks():
    tsdf_map = orbit_sphere_map(frames=6)
    layer = tsdf_map.layer
    weight = layer.blocks.weight[: layer.num_blocks]
    rng = np.random.default_rng(0)
    predicted = torch.from_numpy(rng.random(tuple(weight.shape)) < 0.3) & (weight > 0)
    weight[predicted] = -weight[predicted]  # as the completion network writes them
    counts = layer.blocks.sem_count[: layer.num_blocks]
    counts[torch.from_numpy(rng.random(tuple(counts.shape[:2])) < 0.2)] = 0  # voxels without semantic evidence
    coords = layer.block_coords().clone()
    removed = torch.from_numpy(rng.random(layer.num_blocks) < 0.25)
    layer.remove_blocks(removed)  # neighbours of the remaining blocks go missing: unknown voxels, color 0
    for include_predicted in (True, False):
        old = reference_mesh_blocks(layer, coords, include_predicted)
        assert any(m.predicted.any() for m in old.values()) == include_predicted
        assert_same_meshes(mesh_blocks(layer, coords, include_predicted), old)


def test_incremental_updates_equal_the_previous_implementation_of_the_changed_blocks():
    tsdf_map = orbit_sphere_map(frames=2)
    tsdf_map.update_mesh()
    for T in orbit_poses(ORBIT_SPHERE.center, 1.5, 8)[2:5]:
        tsdf_map.integrate(frame_of([ORBIT_SPHERE, ORBIT_BOX], small_camera(), T))
    snapshot = tsdf_map.prepare_mesh_update()  # the changed blocks and their -x/-y/-z neighbours, copied
    old = reference_mesh_blocks(snapshot.blocks, snapshot.candidates, snapshot.include_predicted)
    update = tsdf_map.finish_mesh_update(snapshot)
    assert len(update.blocks) > 10
    assert_same_meshes(update.blocks, old)
