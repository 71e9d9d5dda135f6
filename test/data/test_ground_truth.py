"""Ground-truth volumes and meshes against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.data.synthetic import GTVolume, generate_scene, gt_mesh, gt_volume, look_at, simple_scene, visible_voxels
from ssr_ros.errors import InvalidInput
from ssr_ros.geometry import CameraIntrinsics


def _area(mesh) -> float:
    v = mesh.vertices.astype(np.float64)
    a, b, c = v[mesh.faces[:, 0]], v[mesh.faces[:, 1]], v[mesh.faces[:, 2]]
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def test_volume_lies_on_the_map_voxel_grid():
    scene = simple_scene((2.0, 1.5, 1.2))
    vol = gt_volume(scene, 0.1, bounds=((0.03, -0.21, 0.0), (1.0, 0.5, 0.95)))
    np.testing.assert_array_equal(vol.origin_voxel, [0, -3, 0])  # floor(0.03/0.1), floor(-0.21/0.1)
    assert vol.shape == (10, 8, 10)  # ceil(1.0/0.1) - 0, ceil(0.5/0.1) + 3, ceil(0.95/0.1)
    np.testing.assert_allclose(vol.centers()[0, 0, 0], [0.05, -0.25, 0.05], atol=1e-6)
    np.testing.assert_allclose(vol.origin, [0.0, -0.3, 0.0], atol=1e-12)


def test_empty_room_sdf_is_distance_to_the_nearest_wall():
    W, D, H = 2.0, 1.6, 1.2
    scene = simple_scene((W, D, H))
    vol = gt_volume(scene, 0.1)
    c = vol.centers()
    inside = np.all((c > 0) & (c < [W, D, H]), axis=-1)
    expected = np.minimum.reduce([c[..., 0], W - c[..., 0], c[..., 1], D - c[..., 1], c[..., 2], H - c[..., 2]])
    np.testing.assert_allclose(vol.sdf[inside], expected[inside], atol=1e-5)
    # walls lie on voxel faces: the surface belongs to the slab voxels, the room is free
    assert not vol.occupied[inside].any()
    assert vol.occupied[~inside].all()
    wall, floor = scene.taxonomy.id_of("wall"), scene.taxonomy.id_of("floor")
    i, j = 10, 8  # grid starts at voxel -1: x = 0.95, y = 0.75, the middle of the room
    assert vol.class_ids[i, j, 0] == floor  # z = -0.05: inside the floor slab
    assert vol.class_ids[i, j, 1] == 0 and not vol.occupied[i, j, 1]  # z = 0.05: free
    assert vol.class_ids[0, j, 5] == wall  # x = -0.05: inside the x_min wall
    assert vol.in_room[0, j, 5]
    assert vol.class_ids[i, j, -1] == 0 and vol.occupied[i, j, -1]  # z = 1.25 ceiling: occupied, class 0


def test_box_voxels_carry_class_and_instance():
    scene = simple_scene((2.0, 2.0, 2.0), [("bed", (1.0, 1.0, 0.3), (0.4, 0.3, 0.3), 0.0)])
    vol = gt_volume(scene, 0.05)
    bed = scene.taxonomy.id_of("bed")
    c = vol.centers()
    inside_box = np.all(np.abs(c - [1.0, 1.0, 0.3]) < [0.4, 0.3, 0.3], axis=-1)
    assert inside_box.sum() == 16 * 12 * 12
    assert np.all(vol.class_ids[inside_box] == bed)
    assert np.all(vol.instance_ids[inside_box] == scene.objects[-1].instance_id)
    assert np.all(vol.sdf[inside_box] < 0)


def test_volume_file_round_trip(tmp_path):
    vol = gt_volume(simple_scene((1.0, 1.0, 1.0)), 0.1)
    vol.save(tmp_path / "gt.npz")
    back = GTVolume.load(tmp_path / "gt.npz")
    for name in ("origin_voxel", "sdf", "occupied", "class_ids", "instance_ids", "in_room"):
        np.testing.assert_array_equal(getattr(back, name), getattr(vol, name))
    assert back.voxel_size == vol.voxel_size


def test_bad_voxel_size_is_refused():
    with pytest.raises(InvalidInput, match="voxel_size"):
        gt_volume(simple_scene(), 0.0)


def test_empty_room_mesh_is_the_inner_surface():
    W, D, H = 3.0, 2.0, 2.5
    mesh = gt_mesh(simple_scene((W, D, H)), resolution=0.25)
    assert _area(mesh) == pytest.approx(2 * W * D + 2 * (W + D) * H, rel=1e-6)
    assert mesh.vertices.min(0) == pytest.approx([0, 0, 0], abs=1e-6)
    assert mesh.vertices.max(0) == pytest.approx([W, D, H], abs=1e-6)


def test_box_on_the_floor_replaces_its_footprint_with_its_sides_and_top():
    W, D, H = 3.0, 2.0, 2.5
    w, d, h = 0.8, 0.6, 0.5
    scene = simple_scene((W, D, H), [("cabinet", (1.5, 1.0, h / 2), (w / 2, d / 2, h / 2), 0.0)])
    mesh = gt_mesh(scene, resolution=0.1)
    room = 2 * W * D + 2 * (W + D) * H
    assert _area(mesh) == pytest.approx(room - w * d + w * d + 2 * (w + d) * h, rel=1e-6)
    cabinet = scene.taxonomy.id_of("cabinet")
    on_box = mesh.vertex_class == cabinet
    assert on_box.any() and mesh.vertices[on_box, 2].min() == pytest.approx(0.0, abs=1e-6)
    sdf, _, _ = scene.sdf(mesh.vertices)
    assert np.abs(sdf).max() < 1e-5, "every mesh vertex lies on the surface"


def test_generated_scene_mesh_lies_on_the_surface_and_has_every_class():
    scene = generate_scene(4)
    mesh = scene.gt_mesh(resolution=0.1)
    sdf, _, _ = scene.sdf(mesh.vertices)
    # exact up to quads cut by rotated neighbours (small objects at an angle on tables)
    assert np.mean(np.abs(sdf) < 1e-4) > 0.99 and np.abs(sdf).max() < 0.1
    classes_in_scene = set(np.unique(scene.boxes.class_ids).tolist())
    assert set(np.unique(mesh.vertex_class).tolist()) == classes_in_scene
    assert mesh.faces.max() < len(mesh.vertices)


def test_visible_voxels_are_in_front_of_the_camera_only():
    scene = simple_scene((4.0, 3.0, 2.5))
    vol = gt_volume(scene, 0.1, bounds=((-0.5, -0.5, -0.5), (4.5, 3.5, 3.0)))
    K = CameraIntrinsics(50.0, 50.0, 39.5, 29.5, 80, 60)
    T = look_at(np.array([1.0, 1.5, 1.25]), np.array([4.0, 1.5, 1.25]))
    view = scene.render(T, K)
    seen = visible_voxels(vol, [view.depth], [T], K)

    def voxel(x, y, z):
        return tuple(np.floor(np.array([x, y, z]) / 0.1).astype(int) - vol.origin_voxel)

    assert seen[voxel(2.5, 1.55, 1.25)]  # on the optical axis, free space
    assert seen[voxel(3.95, 1.55, 1.25)]  # the wall's surface voxel
    assert not seen[voxel(4.25, 1.55, 1.25)]  # behind the wall (beyond the margin)
    assert not seen[voxel(0.5, 1.55, 1.25)]  # behind the camera
