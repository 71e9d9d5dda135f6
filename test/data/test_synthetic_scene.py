"""Scene generator, renderer and trajectories: determinism, geometry that agrees with itself."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.data.synthetic import (
    SceneConfig,
    TrajectoryConfig,
    generate_scene,
    generate_trajectory,
    look_at,
    render_view,
    simple_scene,
)
from ssr_ros.data.synthetic.layout import object_class_of
from ssr_ros.errors import ConfigError
from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.geometry.pose import validate_pose

K = CameraIntrinsics(100.0, 100.0, 79.5, 59.5, 160, 120)


def _object_aabbs(scene):
    shell = set(scene.shell.values())
    lo, hi = scene.boxes.aabbs()
    out = []
    for obj in scene.objects:
        idx = [i for i in obj.box_indices if i not in shell]
        if idx:
            out.append((obj, lo[idx].min(0), hi[idx].max(0)))
    return out


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = generate_scene(7), generate_scene(7), generate_scene(8)
    np.testing.assert_array_equal(a.boxes.centers, b.boxes.centers)
    np.testing.assert_array_equal(a.boxes.colors, b.boxes.colors)
    assert a.summary() == b.summary()
    assert a.summary() != c.summary()


@pytest.mark.parametrize("seed", range(6))
def test_objects_do_not_interpenetrate_and_stay_in_the_room(seed):
    scene = generate_scene(seed)
    W, D, H = scene.room_size
    objects = _object_aabbs(scene)
    assert len(objects) >= 4, "a furnished room has a door and furniture"
    for obj, lo, hi in objects:
        assert np.all(lo > [-0.11, -0.11, -1e-6]) and np.all(hi < [W + 0.11, D + 0.11, H + 1e-6]), obj.name
    # furniture (not doors/windows/curtains set into walls) must not overlap by more than contact
    free_standing = [(o, lo, hi) for o, lo, hi in objects if o.name not in ("door", "window", "curtain")]
    for i, (oa, la, ha) in enumerate(free_standing):
        for ob, lb, hb in free_standing[i + 1 :]:
            overlap = np.clip(np.minimum(ha, hb) - np.maximum(la, lb), 0, None)
            assert np.prod(overlap) < 1e-6, f"{oa.name} and {ob.name} overlap in seed {seed}"


@pytest.mark.parametrize("room_type, must_have", [("bedroom", "bed"), ("kitchen", "counter"), ("bathroom", "toilet"), ("office", "desk"), ("living_room", "sofa")])
def test_room_types_contain_their_key_furniture(room_type, must_have):
    scene = generate_scene(1, SceneConfig(room_type=room_type))
    names = scene.taxonomy.names
    present = {names[c] for c in np.unique(scene.boxes.class_ids)}
    assert must_have in present
    assert {"wall", "floor", "door"} <= present
    ceiling = scene.shell["ceiling"]
    assert scene.boxes.class_ids[ceiling] == 0  # ScanNet-20 has no ceiling class


def test_an_object_is_the_class_of_most_of_its_volume():
    """A kitchen counter with a sink basin and a tap in it (two counter parts, two sink parts) is a
    counter object: its boxes keep their own classes, the object takes the class of most of its volume."""
    scene = generate_scene(1520)
    names = scene.taxonomy.names
    with_sink = [o for o in scene.objects if o.name == "counter" and "sink" in {names[c] for c in scene.boxes.class_ids[o.box_indices]}]
    assert with_sink, "seed 1520 is a kitchen whose counters have sinks"
    for obj in with_sink:
        assert names[obj.class_id] == "counter"
        assert sorted(names[c] for c in scene.boxes.class_ids[obj.box_indices]) == ["counter", "counter", "sink", "sink"]
    assert object_class_of([18, 12, 18, 12], [0.01, 0.3, 0.001, 0.02]) == 12
    assert object_class_of([5, 7], [0.1, 0.1]) == 5  # a tie: the lower id


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="min_room_size"):
        generate_scene(0, SceneConfig(min_room_size=7.0, max_room_size=5.0))
    with pytest.raises(ConfigError, match="room_type"):
        generate_scene(0, SceneConfig(room_type="garage"))


def test_depth_of_a_wall_facing_the_camera_is_its_distance():
    scene = simple_scene((4.0, 3.0, 2.5))
    T = look_at(np.array([1.0, 1.5, 1.2]), np.array([4.0, 1.5, 1.2]))  # facing the x = 4 wall
    view = render_view(scene, T, K)
    centre = view.depth[40:80, 60:100]
    np.testing.assert_allclose(centre, 3.0, atol=1e-5)
    assert np.all(view.class_ids[40:80, 60:100] == scene.taxonomy.id_of("wall"))
    np.testing.assert_allclose(view.normals[60, 80], [-1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(view.cos_incidence[60, 80], 1.0, atol=1e-4)


def test_box_in_front_of_the_wall_occludes_it_with_its_class_and_instance():
    scene = simple_scene((4.0, 3.0, 2.5), [("cabinet", (3.0, 1.5, 1.2), (0.25, 0.3, 0.3), 0.0)])
    T = look_at(np.array([1.0, 1.5, 1.2]), np.array([4.0, 1.5, 1.2]))
    view = render_view(scene, T, K)
    # front face at x = 2.75: 1.75 m ahead; half-width 0.3 m at 1.75 m spans 100 * 0.3 / 1.75 = 17 px
    np.testing.assert_allclose(view.depth[55:65, 75:85], 1.75, atol=1e-5)
    assert np.all(view.class_ids[55:65, 75:85] == scene.taxonomy.id_of("cabinet"))
    cabinet = scene.objects[-1].instance_id
    assert np.all(view.instance_ids[55:65, 75:85] == cabinet)
    assert view.instance_ids[60, 55] != cabinet and view.depth[60, 55] == pytest.approx(3.0, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 3])
def test_rendered_depth_lies_on_the_scene_surface(seed):
    """Back-projected depth of every pixel has |SDF| ~ 0: the renderer and the SDF agree."""
    scene = generate_scene(seed)
    trajectory = generate_trajectory(scene, TrajectoryConfig(num_frames=10), seed)
    for pose in trajectory.poses[::3]:
        view = render_view(scene, pose, K)
        valid = view.depth > 0
        assert valid.mean() > 0.99, "a camera inside a closed room sees a surface at every pixel"
        cam = (K.pixel_rays().numpy() * view.depth[..., None])[valid]
        world = cam @ pose[:3, :3].T + pose[:3, 3]
        sdf, classes, instances = scene.sdf(world)
        assert np.percentile(np.abs(sdf), 99) < 2e-3 and np.abs(sdf).max() < 1e-2
        # the class seen is the class of the surface there (ignoring pixels on box edges)
        agree = (classes == view.class_ids[valid]).mean()
        assert agree > 0.97


def test_camera_outside_the_room_sees_the_outside_of_the_walls():
    scene = simple_scene((4.0, 3.0, 2.5))
    T = look_at(np.array([-2.0, 1.5, 1.2]), np.array([0.0, 1.5, 1.2]))
    view = render_view(scene, T, K)
    # outer face of the x_min wall at x = -0.1
    assert view.depth[60, 80] == pytest.approx(1.9, abs=1e-5)


def test_textures_carry_information():
    """Colors vary inside one class (not a flat color per class)."""
    scene = generate_scene(3)
    trajectory = generate_trajectory(scene, TrajectoryConfig(num_frames=10), 3)
    view = render_view(scene, trajectory.poses[5], K)
    varied = 0
    for cls in np.unique(view.class_ids):
        mask = view.class_ids == cls
        if mask.sum() > 200:
            varied += int(view.rgb[mask].std(axis=0).max() > 3.0)
    assert varied >= 2


@pytest.mark.parametrize("kind", ["handheld", "robot"])
def test_trajectories_are_smooth_valid_and_in_free_space(kind):
    scene = generate_scene(2)
    config = TrajectoryConfig(kind=kind, num_frames=60, frame_rate=15.0)
    a = generate_trajectory(scene, config, seed=2)
    b = generate_trajectory(scene, config, seed=2)
    np.testing.assert_array_equal(a.poses, b.poses)
    assert a.poses.shape == (60, 4, 4) and np.all(np.abs(np.diff(a.stamps_ns) - 1e9 / 15) <= 1)
    for pose in a.poses:
        validate_pose(pose)
    positions = a.poses[:, :3, 3]
    sdf, _, _ = scene.sdf(positions)
    assert sdf.min() > 0.1, "the camera never enters furniture or walls"
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert steps.max() < 0.2, "no jumps between consecutive frames"
    if kind == "robot":
        assert np.ptp(positions[:, 2]) < 1e-9
    else:
        assert 1.2 < positions[:, 2].mean() < 1.8


def test_classes_come_from_the_taxonomy_file(tmp_path):
    from ssr_ros.taxonomy import ClassTaxonomy

    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\nclasses:\n  - {id: 0, name: unknown, color: [0, 0, 0]}\n  - {id: 1, name: floor, color: [0, 255, 0]}\n"
        "  - {id: 2, name: chair, color: [255, 0, 0]}\n  - {id: 3, name: wall, color: [0, 0, 255]}\n"
    )
    taxonomy = ClassTaxonomy.load(path)
    scene = generate_scene(2, SceneConfig(room_type="office"), taxonomy)
    assert set(np.unique(scene.boxes.class_ids)) <= {0, 1, 2, 3}
    assert scene.boxes.class_ids[scene.shell["floor"]] == 1 and scene.boxes.class_ids[scene.shell["x_min"]] == 3
    assert 2 in scene.boxes.class_ids, "offices have chairs"
    assert scene.gt_volume(0.2).class_ids.max() <= 3
