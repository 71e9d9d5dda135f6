"""Structural labels (floor / wall / ceiling) from depth and gravity, without a model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ssr_ros.geometry import Frame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.pipeline import MappingPipeline, PipelineConfig
from ssr_ros.semantics.structure import StructuralLabeller, StructureConfig
from ssr_ros.taxonomy import ClassTaxonomy

from box_rooms import BOX, CEILING, FLOOR, WALL, orbit_poses, render_box_room

ROOM = (5.0, 4.0, 2.6)
# a tall bookshelf-like box against the x = 5 wall and a low table in the middle
BOXES = [((4.6, 1.0, 0.0), (5.0, 2.5, 2.0)), ((2.0, 1.5, 0.0), (3.0, 2.5, 0.75))]
INTRINSICS = CameraIntrinsics(fx=80.0, fy=80.0, cx=79.5, cy=59.5, width=160, height=120)


@pytest.fixture(scope="module")
def taxonomy():
    return ClassTaxonomy.load()


@pytest.fixture(scope="module")
def views():
    poses = orbit_poses(ROOM, 12)
    return [(pose, *render_box_room(ROOM, BOXES, pose, INTRINSICS)) for pose in poses]


def test_box_room_pixels_get_their_structural_class(taxonomy, views):
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    for pose, depth, _ in views:  # build the plane model
        labeller.label(depth, INTRINSICS, pose)
    floor, wall, other = taxonomy.id_of("floor"), taxonomy.id_of("wall"), taxonomy.id_of("otherfurniture")
    counts = {name: np.zeros(3) for name in (FLOOR, WALL, CEILING, BOX)}
    for pose, depth, classes in views:
        labels, confidence = labeller.label(depth, INTRINSICS, pose, update=False)
        for name in counts:
            mask = classes == name
            counts[name] += [np.sum(labels[mask] == floor), np.sum(labels[mask] == wall), mask.sum()]
        assert np.all(confidence[labels == other] < 1.0) and np.all(confidence[(labels == floor) | (labels == wall)] == 1.0)
    assert abs(labeller.floor_height) < 0.03
    assert labeller.ceiling_height == pytest.approx(ROOM[2], abs=0.05)
    floor_hits, _, floor_total = counts[FLOOR]
    _, wall_hits, wall_total = counts[WALL]
    assert floor_hits / floor_total > 0.95
    assert wall_hits / wall_total > 0.9
    box_floor, box_wall, box_total = counts[BOX]
    # the bookshelf front faces the room 0.4 m in front of its wall: not a wall
    assert (box_floor + box_wall) / box_total < 0.1
    # ScanNet-20 has no ceiling class: ceiling pixels get no vote (label 0, confidence 0)
    pose, depth, classes = views[0]
    labels, confidence = labeller.label(depth, INTRINSICS, pose, update=False)
    assert np.all(labels[classes == CEILING] != wall)


def test_no_floor_or_wall_before_the_planes_are_large_enough(taxonomy, views):
    config = StructureConfig(min_floor_area=1000.0, min_wall_area=1000.0)
    labeller = StructuralLabeller(config, taxonomy)
    pose, depth, _ = views[0]
    labels, _ = labeller.label(depth, INTRINSICS, pose)
    assert set(np.unique(labels)) <= {0, taxonomy.id_of("otherfurniture")}
    labeller = StructuralLabeller(dataclasses.replace(config, others="unknown"), taxonomy)
    labels, confidence = labeller.label(depth, INTRINSICS, pose)
    assert np.all(labels == 0) and np.all(confidence == 0)


def test_a_taxonomy_without_floor_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nclasses:\n  - {id: 0, name: unknown, color: [0, 0, 0]}\n"
                    "  - {id: 1, name: thing, color: [1, 2, 3]}\n")
    with pytest.raises(Exception, match="floor"):
        StructuralLabeller(StructureConfig(), ClassTaxonomy.load(path))


def _frames(views, with_labels: bool):
    frames = []
    for index, (pose, depth, _) in enumerate(views):
        labels = np.full(depth.shape, 5, np.int64) if with_labels else None
        frames.append(Frame(depth=depth.copy(), intrinsics=INTRINSICS, T_world_cam=pose, labels=labels,
                            stamp_ns=index))
    return frames


def _map_labels(pipeline):
    voxels = pipeline.surface_voxels()
    return voxels["labels"]


def test_pipeline_labels_structure_when_no_semantic_source(views):
    config = PipelineConfig(device="cpu")
    config.completion.type = "none"
    pipeline = MappingPipeline(config, model=None)
    for frame in _frames(views, with_labels=False):
        pipeline.integrate(frame)
    assert pipeline.semantic_source == "structure"
    assert pipeline.stats()["semantic_source"] == "structure"
    labels = _map_labels(pipeline)
    floor, wall = pipeline.taxonomy.id_of("floor"), pipeline.taxonomy.id_of("wall")
    assert np.mean(labels == wall) > 0.3 and np.mean(labels == floor) > 0.1


def test_pipeline_keeps_structure_off_with_a_semantic_source(views):
    config = PipelineConfig(device="cpu")
    config.completion.type = "none"
    with_labels = MappingPipeline(config, model=None)
    for frame in _frames(views, with_labels=True):
        with_labels.integrate(frame)
    assert with_labels.semantic_source == "frames" and with_labels.frames_structural == 0
    assert set(np.unique(_map_labels(with_labels))) <= {0, 5}

    expected = MappingPipeline(config, model=None)  # e.g. a segmenter that has not answered yet
    expected.semantic_source_expected = True
    for frame in _frames(views[:3], with_labels=False):
        expected.integrate(frame)
    assert expected.semantic_source == "none"
    assert np.all(_map_labels(expected) == 0)

    config.structure.mode = "off"
    off = MappingPipeline(config, model=None)
    for frame in _frames(views[:3], with_labels=False):
        off.integrate(frame)
    assert off.structure is None and off.semantic_source == "none"


@pytest.mark.parametrize("width, height", [(1200, 680), (640, 480), (333, 251), (31, 17), (1920, 1080)])
def test_any_image_size_gets_labels_of_its_size(taxonomy, width, height):
    from ssr_ros.geometry.pose import look_at

    K = CameraIntrinsics(fx=width / 2, fy=width / 2, cx=width / 2 - 0.5, cy=height / 2 - 0.5, width=width, height=height)
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    T = look_at(np.array([0.0, 0.0, 1.4]), np.array([1.0, 0.0, 1.0]))
    labels, confidence = labeller.label(np.full((height, width), 2.0, np.float32), K, T)
    assert labels.shape == (height, width) and confidence.shape == (height, width)


def test_a_wall_seen_only_low_down_still_bounds_the_room(taxonomy):
    # Cameras looking down see every wall only up to ~1.1 m, less than min_wall_height (no
    # ceiling in view to scale it down): each wall is still the outermost vertical surface
    # standing on the floor with no floor seen behind it. A low cabinet against the x = 0 wall
    # faces the room 0.6 m in front of it: not a wall.
    from ssr_ros.geometry.pose import look_at

    room = (5.0, 4.0, 2.6)
    cabinet = ((0.0, 1.0, 0.0), (0.6, 3.0, 0.9))
    eye = np.array([2.5, 2.0, 1.4])
    poses = []
    for angle in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        target = eye + np.array([1.5 * np.cos(angle), 1.5 * np.sin(angle), -1.4])
        poses.append(look_at(eye, target, up=np.array([0.0, 0.0, 1.0])))
    views = [(pose, *render_box_room(room, [cabinet], pose, INTRINSICS)) for pose in poses]
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    for pose, depth, _ in views:
        labeller.label(depth, INTRINSICS, pose)
    wall = taxonomy.id_of("wall")
    hits = np.zeros(2)
    box = np.zeros(2)
    for pose, depth, classes in views:
        labels, _ = labeller.label(depth, INTRINSICS, pose, update=False)
        hits += [np.sum(labels[classes == WALL] == wall), np.sum(classes == WALL)]
        box += [np.sum(labels[classes == BOX] == wall), np.sum(classes == BOX)]
    assert labeller.ceiling_height is None and abs(labeller.floor_height) < 0.03
    walls = labeller.wall_planes()
    offsets = {round(float(np.degrees(a)) % 360): float(o) for a, o in walls}
    assert set(offsets) == {0, 90, 180, 270}, walls
    assert offsets[0] == pytest.approx(0.0, abs=0.06) and offsets[180] == pytest.approx(-5.0, abs=0.06)
    assert hits[0] / hits[1] > 0.9
    assert box[1] > 0 and box[0] / box[1] < 0.1


def test_a_bed_top_is_not_the_floor_while_its_sides_reach_lower(taxonomy):
    # Early frames see a bed top (0.5 m high, 3 m^2), the bed's sides down to the floor and only
    # a sliver of the floor: the bed top must not be taken for the floor (its floor votes would
    # stay in the map). Once enough floor is seen, the floor is found.
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    rng = np.random.default_rng(0)

    def patch(count, z_lo, z_hi, normal, area):
        points = np.column_stack([rng.uniform(0, 2, count), rng.uniform(0, 1.5, count), rng.uniform(z_lo, z_hi, count)])
        return points, np.tile(normal, (count, 1)).astype(np.float64), np.full(count, area / count)

    top = patch(3000, 0.5, 0.5, [0.0, 0.0, 1.0], 3.0)
    side = patch(1000, 0.0, 0.5, [1.0, 0.0, 0.0], 1.0)
    sliver = patch(200, 0.0, 0.0, [0.0, 0.0, 1.0], 0.2)
    for world, normals, area in (top, side, sliver):
        labeller.update(world, normals, area, camera_z=1.4)
    assert labeller.floor_height is None
    labeller.update(*patch(3000, 0.0, 0.0, [0.0, 0.0, 1.0], 3.0), camera_z=1.4)
    assert labeller.floor_height == pytest.approx(0.0, abs=0.03)


def test_a_floor_seen_only_far_ahead_gets_normals_and_its_area(taxonomy):
    # A camera 1.6 m up looking level sees the floor only at grazing angles, far ahead: its
    # pixels still get up-facing normals, and they weigh the area they cover on the floor.
    from ssr_ros.geometry.pose import look_at

    room = (12.0, 12.0, 3.0)
    eye = np.array([1.0, 6.0, 1.6])
    pose = look_at(eye, eye + np.array([1.0, 0.0, -0.1]), up=np.array([0.0, 0.0, 1.0]))
    depth, classes = render_box_room(room, [], pose, INTRINSICS)
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    world, normals, d, area, _ = labeller._points_normals(depth, INTRINSICS, pose, 2)
    floor = (d > 0) & (world[..., 2] < 0.01)
    assert floor.sum() > 200
    up = floor & (normals[..., 2] > 0.95)
    assert up.sum() > 0.8 * floor[2:-2, 2:-2].sum()  # all but the image border
    # each floor pixel covers (depth * stride / f)^2 / cos(view angle) on the floor
    ray = world[up] - eye
    cos = np.abs(ray[:, 2]) / np.linalg.norm(ray, axis=1)
    expected = (d[up] * 2) ** 2 / (INTRINSICS.fx * INTRINSICS.fy) / np.clip(cos, 0.25, 1.0)
    assert np.allclose(area[up], expected, rtol=0.1)


def _wall_patch(start, end, z_lo, z_hi, azimuth_deg, area_per_m2=1.0, spacing=0.05):
    """Points of a vertical rectangle from ``start`` to ``end`` (xy) between two heights, with the
    inward normal at ``azimuth_deg``, each carrying its share of the area."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    length = float(np.linalg.norm(end - start))
    s, z = np.meshgrid(np.arange(spacing / 2, length, spacing) / length, np.arange(z_lo + spacing / 2, z_hi, spacing),
                       indexing="ij")
    xy = start + s.reshape(-1, 1) * (end - start)
    points = np.column_stack([xy, z.reshape(-1)])
    a = np.radians(azimuth_deg)
    normals = np.tile([np.cos(a), np.sin(a), 0.0], (len(points), 1))
    return points, normals, np.full(len(points), area_per_m2 * length * (z_hi - z_lo) / len(points))


def _floor_patch(x, y, z=0.0, spacing=0.05):
    gx, gy = np.meshgrid(np.arange(x[0] + spacing / 2, x[1], spacing), np.arange(y[0] + spacing / 2, y[1], spacing))
    points = np.column_stack([gx.reshape(-1), gy.reshape(-1), np.full(gx.size, z)])
    normals = np.tile([0.0, 0.0, 1.0], (len(points), 1))
    return points, normals, np.full(len(points), spacing * spacing)


def _update(labeller, *patches, frames=6):
    world = np.concatenate([p[0] for p in patches])
    normals = np.concatenate([p[1] for p in patches])
    area = np.concatenate([p[2] for p in patches])
    for _ in range(frames):
        labeller.update(world, normals, area, camera_z=1.5)


def _wall_azimuths(labeller):
    return sorted({round(float(np.degrees(a))) % 360 for a, _ in labeller.wall_planes()})


def test_a_desk_seen_where_its_wall_never_was_is_not_a_wall(taxonomy):
    # Three walls of a 4 x 4 m room seen up to 1.8 m; of the fourth (x = 4) only a desk's front,
    # 0.7 m in front of it and 0.7 m high: the outermost surface that way, standing on the floor,
    # with no floor seen behind it (the desk hides it). It ends far below the top of what was
    # seen: furniture, not the room's boundary.
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller,
            _floor_patch((0.0, 3.3), (0.0, 4.0)),
            _wall_patch((0, 0), (0, 4), 0.0, 1.8, 0.0),
            _wall_patch((0, 0), (4, 0), 0.0, 1.8, 90.0),
            _wall_patch((0, 4), (4, 4), 0.0, 1.8, -90.0),
            _wall_patch((3.3, 1.0), (3.3, 3.0), 0.0, 0.7, 180.0))
    assert labeller.floor_height == pytest.approx(0.0, abs=0.03)
    assert _wall_azimuths(labeller) == [0, 90, 270]


def test_a_wall_seen_only_above_the_furniture_in_front_of_it_is_a_wall(taxonomy):
    # A 4 x 4 m room, three walls seen from the floor to 1.8 m; of the fourth (x = 4) a cabinet
    # front 0.4 m before it hides everything below 0.45 m, and the camera saw it up to 1.5 m: seen
    # over 1.05 m (less than min_wall_height, 1.2 m) but reaching higher than furniture does.
    # The same strip seen only up to 1.3 m could be a tall cupboard's front: not a wall.
    room = [_floor_patch((0.0, 3.5), (0.0, 4.0)),
            _wall_patch((0, 0), (0, 4), 0.0, 1.8, 0.0),
            _wall_patch((0, 0), (4, 0), 0.0, 1.8, 90.0),
            _wall_patch((0, 4), (4, 4), 0.0, 1.8, -90.0),
            _wall_patch((3.6, 1.0), (3.6, 3.0), 0.0, 0.45, 180.0)]
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller, *room, _wall_patch((4, 0), (4, 4), 0.45, 1.5, 180.0))
    assert labeller.floor_height == pytest.approx(0.0, abs=0.03)
    assert _wall_azimuths(labeller) == [0, 90, 180, 270]
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller, *room, _wall_patch((4, 0), (4, 4), 0.35, 1.3, 180.0))
    assert _wall_azimuths(labeller) == [0, 90, 270]


def test_a_free_standing_tall_panel_is_not_a_wall(taxonomy):
    # A wardrobe standing diagonally in the room: its side, 2 m high and 1.4 m wide, is the only
    # vertical surface facing its way. Floor is seen behind it: it does not bound the room. Without
    # any floor found, the walls seen behind it over its width say the same.
    walls = [_wall_patch((0, 0), (0, 4), 0.0, 2.0, 0.0), _wall_patch((4, 0), (4, 4), 0.0, 2.0, 180.0),
             _wall_patch((0, 0), (4, 0), 0.0, 2.0, 90.0), _wall_patch((0, 4), (4, 4), 0.0, 2.0, -90.0)]
    panel = _wall_patch((1.5, 1.5), (2.5, 2.5), 0.0, 2.0, 135.0)
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller, _floor_patch((0.0, 4.0), (0.0, 4.0)), *walls, panel)
    assert labeller.floor_height == pytest.approx(0.0, abs=0.03)
    assert _wall_azimuths(labeller) == [0, 90, 180, 270]
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller, *walls, panel)
    assert labeller.floor_height is None
    assert _wall_azimuths(labeller) == [0, 90, 180, 270]


def test_cabinets_at_two_depths_along_a_wall_leave_the_wall_its_direction(taxonomy):
    # Two cabinet fronts along the x = 5 wall, 0.6 m and 0.4 m in front of it, hold more area
    # than the wall seen beside and above them. A line tilted by ~6 degrees passes through both
    # fronts; the wall faces the way its normals do, and it is the wall that is found.
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller,
            _floor_patch((0.0, 4.4), (0.0, 4.0)),
            _wall_patch((0, 0), (0, 4), 0.0, 2.0, 0.0),
            _wall_patch((0, 0), (5, 0), 0.0, 2.0, 90.0),
            _wall_patch((0, 4), (5, 4), 0.0, 2.0, -90.0),
            _wall_patch((5, 0.0), (5, 0.3), 0.0, 2.0, 180.0),
            _wall_patch((5, 1.5), (5, 2.0), 0.0, 2.0, 180.0),
            _wall_patch((5, 3.5), (5, 4.0), 0.0, 2.0, 180.0),
            _wall_patch((5, 0.3), (5, 3.5), 1.8, 2.0, 180.0),
            _wall_patch((4.4, 0.3), (4.4, 1.5), 0.0, 1.8, 180.0),
            _wall_patch((4.6, 2.0), (4.6, 3.5), 0.0, 1.8, 180.0))
    assert _wall_azimuths(labeller) == [0, 90, 180, 270], labeller.wall_planes()
    offsets = [float(o) for a, o in labeller.wall_planes() if round(float(np.degrees(a))) % 360 == 180]
    assert np.allclose(offsets, -5.0, atol=0.08), offsets


def test_a_corner_gives_no_wall_votes_across_its_crease(taxonomy):
    # Looking into the corner of two walls: the pixels whose normal is taken across the corner
    # face neither wall; they are marked as creases and add nothing to the wall directions.
    from ssr_ros.geometry.pose import look_at

    room = (5.0, 4.0, 2.6)
    eye = np.array([3.0, 2.0, 1.4])
    pose = look_at(eye, np.array([5.0, 4.0, 1.2]), up=np.array([0.0, 0.0, 1.0]))
    depth, _ = render_box_room(room, [], pose, INTRINSICS)
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    world, normals, d, _, creases = labeller._points_normals(depth, INTRINSICS, pose, 2)
    vertical = np.isfinite(normals[..., 2]) & (np.abs(normals[..., 2]) < 0.5)
    corner = vertical & (np.abs(world[..., 0] - 5.0) < 0.08) & (np.abs(world[..., 1] - 4.0) < 0.08)
    assert corner.sum() > 0 and creases[corner].mean() > 0.5
    assert not creases[vertical & ~corner & (world[..., 2] > 0.2) & (world[..., 2] < 2.4)].any()
    labeller.label(depth, INTRINSICS, pose)
    azimuth = np.degrees(labeller._bin_azimuth(np.nonzero(labeller._azimuth_area > 0)[0])) % 360
    assert np.all(np.minimum(np.abs(azimuth - 180), np.abs(azimuth - 270)) < 15), azimuth


def test_a_wall_behind_curtains_is_found_at_the_wall(taxonomy):
    # Curtains hang 10 cm in front of the x = 4.98 wall over most of its length: the offset
    # histogram's pooled peak lies between them. Nothing stands behind a wall, so the wall is the
    # back of that peak, not the middle.
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _update(labeller,
            _floor_patch((0.0, 4.8), (0.0, 4.0)),
            _wall_patch((0, 0), (0, 4), 0.0, 2.0, 0.0),
            _wall_patch((0, 0), (5, 0), 0.0, 2.0, 90.0),
            _wall_patch((0, 4), (5, 4), 0.0, 2.0, -90.0),
            _wall_patch((4.98, 0.0), (4.98, 1.5), 0.0, 2.0, 180.0),
            _wall_patch((4.88, 1.5), (4.88, 4.0), 0.0, 2.0, 180.0))
    offsets = [float(o) for a, o in labeller.wall_planes() if round(float(np.degrees(a))) % 360 == 180]
    assert offsets and np.allclose(offsets, -4.98, atol=0.03), offsets


def test_creases_keep_the_floor_votes(taxonomy):
    # Only the wall directions leave out normals across a crease: a floor pixel whose normal is
    # taken across its edge with a wall (or a step of the noise at a grazing angle) still counts
    # for the floor, which cameras high up may see only in a few rows.
    from ssr_ros.geometry.pose import look_at

    room = (5.0, 4.0, 2.6)
    eye = np.array([1.0, 2.0, 1.6])
    pose = look_at(eye, np.array([5.0, 4.0, 0.3]), up=np.array([0.0, 0.0, 1.0]))
    depth, _ = render_box_room(room, [], pose, INTRINSICS)
    labeller = StructuralLabeller(StructureConfig(), taxonomy)
    _, normals, _, area, creases = labeller._points_normals(depth, INTRINSICS, pose, 2)
    up = np.isfinite(normals[..., 2]) & (normals[..., 2] > np.cos(np.radians(30.0)))
    assert (up & creases).any()
    labeller.label(depth, INTRINSICS, pose)
    assert labeller._up.counts.sum() == pytest.approx(area[up].sum(), rel=1e-6)
