"""Outputs read the map from copies taken under its lock, and give what the map held at that moment.

The mesher copies the changed blocks (with their +x/+y/+z neighbours) when it prepares an update and
meshes the copy later; statistics copy the two per-voxel arrays they count; planning reads a
snapshot of the voxel layer. Frames fused after the copy must not leak into the result.
"""

from __future__ import annotations

import numpy as np
import torch

from scenes import ORBIT_BOX, ORBIT_SPHERE, frame_of, orbit_poses, orbit_sphere_map, small_camera

CAM = small_camera()
SPHERE, BOX = ORBIT_SPHERE, ORBIT_BOX

fused_map = orbit_sphere_map


def meshes_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(a[k].vertices, b[k].vertices) and np.array_equal(a[k].triangles, b[k].triangles)
               and np.array_equal(a[k].colors, b[k].colors) and np.array_equal(a[k].labels, b[k].labels) for k in a)


def test_layer_snapshot_of_some_blocks_holds_exactly_their_voxels():
    tsdf_map = fused_map()
    layer = tsdf_map.layer
    coords = layer.block_coords()
    chosen = coords[::3]
    wanted = torch.cat([chosen, chosen[:2], torch.tensor([[500, 500, 500]])])  # repeats and an unallocated block
    part = layer.snapshot(wanted)
    assert part.num_blocks == len(chosen) and part.free_space is None
    assert part.voxel_size == layer.voxel_size and part.update_counter == layer.update_counter
    assert bool((part.lookup(torch.tensor([[500, 500, 500]])) < 0).all())
    assert bool((part.lookup(coords[1::3][:5]) < 0).all())  # blocks not asked for are not there
    voxels = (chosen[:, None, :] * layer.block_size + torch.tensor([[0, 0, 0], [3, 5, 7], [7, 7, 7]])).reshape(-1, 3)
    original, copied = layer.read(voxels), part.read(voxels)
    for name in original:
        if name != "slot":  # where a block is stored differs; what it holds does not
            assert torch.equal(original[name], copied[name]), name
    # a copy: writing into the map afterwards leaves it as it was
    before = {name: part.used(name).clone() for name in ("tsdf", "weight")}
    for T in orbit_poses(SPHERE.center, 1.5, 8)[4:]:
        tsdf_map.integrate(frame_of([SPHERE, BOX], CAM, T))
    assert all(torch.equal(before[name], part.used(name)) for name in before)


def test_mesh_update_prepared_before_more_frames_meshes_the_map_as_it_was():
    tsdf_map = fused_map()
    reference = fused_map()  # the same frames fused again: the same map
    snapshot = tsdf_map.prepare_mesh_update()
    for T in orbit_poses(SPHERE.center, 1.5, 8)[4:]:  # the map goes on changing before the meshing
        tsdf_map.integrate(frame_of([SPHERE, BOX], CAM, T))
    update = tsdf_map.finish_mesh_update(snapshot)
    expected = reference.update_mesh()
    assert len(expected.blocks) > 10
    assert meshes_equal(update.blocks, expected.blocks)
    # the next update brings the mesh up to date with the later frames, like an uninterrupted map's
    tsdf_map.update_mesh()
    for T in orbit_poses(SPHERE.center, 1.5, 8)[4:]:
        reference.integrate(frame_of([SPHERE, BOX], CAM, T))
    reference.update_mesh()
    assert meshes_equal({m.index: m for m in tsdf_map.block_meshes()}, {m.index: m for m in reference.block_meshes()})


def test_stats_counted_from_the_copy_are_those_of_the_moment_it_was_taken():
    tsdf_map = fused_map()
    expected = tsdf_map.stats()
    assert expected["observed_voxels"] > 0 and expected["free_cells"] > 0
    prepared = tsdf_map.prepare_stats()
    for T in orbit_poses(SPHERE.center, 1.5, 8)[4:]:
        tsdf_map.integrate(frame_of([SPHERE, BOX], CAM, T))
    assert tsdf_map.finish_stats(prepared) == expected
    later = tsdf_map.stats()
    assert later["observed_voxels"] > expected["observed_voxels"] and later["num_blocks"] > expected["num_blocks"]
    weight = tsdf_map.blocks.used("weight").to(torch.float32)
    assert later["observed_voxels"] == int(tsdf_map.layer.observed(weight).sum())
    assert later["predicted_voxels"] == int((weight < 0).sum())
    assert later["free_cells"] == tsdf_map.free_space.num_free_cells()


def test_known_voxel_states_are_select_voxels_known_without_colors_and_labels():
    from test_chunks import predicted_sphere

    from ssr_ros.map.voxel_export import known_voxel_states, select_voxels

    tsdf_map = fused_map()
    probs = torch.zeros(16, 16, 16, 21)
    probs[..., 5], probs[..., 7] = 0.6, 0.4
    tsdf_map.write_predictions(torch.tensor([10, -8, -8]), predicted_sphere(center_vox=8.3), None, probs)
    states, reference = known_voxel_states(tsdf_map), select_voxels(tsdf_map, "known")
    assert states["predicted"].any() and (~states["predicted"]).any()
    np.testing.assert_allclose((states["voxel"] + 0.5) * tsdf_map.voxel_size, reference["points"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(states["tsdf"], reference["tsdf"])
    np.testing.assert_array_equal(states["predicted"], reference["predicted"])
    predicted = reference["predicted"]
    np.testing.assert_array_equal(states["confidence"][predicted], reference["confidence"][predicted])
    assert (states["confidence"][predicted] > 0).any() and not states["confidence"][~predicted].any()
