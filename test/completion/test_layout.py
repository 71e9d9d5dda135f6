"""Room layout completion: planes found from the map, the rules that keep it off furniture and out
of seen-free space, and what it adds to a generated room."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssr_ros.completion.layout import Layout, LayoutConfig, Plane, complete_layout, find_layout, room_prediction
from ssr_ros.map.chunk import DenseChunk

VOXEL = 0.1


def _samples(points, normals, free_points=None):
    points = np.asarray(points, np.float32).reshape(-1, 3)
    normals = np.broadcast_to(np.asarray(normals, np.float32), points.shape).copy()
    return {"points": points, "normals": normals, "colors": np.full(points.shape, 0.5, np.float32),
            "labels": np.zeros(len(points), np.int64),
            "free_points": np.zeros((0, 3), np.float32) if free_points is None else np.asarray(free_points, np.float32)}


def _grid(xs, ys, z):
    x, y = np.meshgrid(xs, ys, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], axis=1)


def test_the_floor_is_the_lowest_large_up_facing_plane_below_the_cameras():
    step = np.arange(0.0, 2.0, VOXEL)
    floor = _grid(step, step, 0.0)
    table = _grid(step[:8], step[:8], 0.75)
    samples = _samples(np.concatenate([table, floor]), [0, 0, 1])
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), np.array([[1.0, 1.0, 1.5], [1.2, 1.0, 1.3],
                                                                                  [1.4, 1.0, 1.4]]))
    assert layout.floor is not None and abs(layout.floor.offset) < 0.02
    assert layout.view_height == pytest.approx(1.4 - layout.floor.offset), "the cameras' median height above it"
    assert np.allclose(layout.path, [[1.0, 1.0], [1.2, 1.0], [1.4, 1.0]])
    assert find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), None).view_height is None


def test_a_table_top_is_not_taken_for_the_floor_when_the_cameras_saw_under_it():
    step = np.arange(0.0, 1.0, VOXEL)
    table = _grid(step, step, 0.75)
    cameras = np.array([[0.5, 0.5, 1.6]])
    config = LayoutConfig(min_plane_area=0.3)
    # without any seen-free space below it, the only up-facing plane is taken for the floor ...
    assert find_layout(_samples(table, [0, 0, 1]), VOXEL, config, cameras).floor is not None
    # ... but not when the cameras saw free space under it
    under = _grid(step, step, 0.4)
    layout = find_layout(_samples(table, [0, 0, 1], free_points=under), VOXEL, config, cameras)
    assert layout.floor is None


@pytest.mark.parametrize("door_share", [0.0, 0.6])
def test_a_wall_lies_at_the_back_of_what_stands_on_it(door_share):
    """A wall at x = 0 (5 cm voxels, 4 m wide, 2.4 m high, samples with 3 mm noise) with a door,
    cupboard backs and pictures 3 cm in front of it over ``door_share`` of its samples: the wall is
    fitted at x = 0, not pulled into the room towards them (a least-squares line through all the
    samples lies 1.8 cm in front)."""
    voxel = 0.05
    rng = np.random.default_rng(3)
    y, z = np.meshgrid(np.arange(0.0, 4.0, voxel), np.arange(0.0, 2.4, voxel), indexing="ij")
    x = rng.normal(0.0, 0.003, y.size) + np.where(rng.uniform(size=y.size) < door_share, 0.03, 0.0)
    samples = _samples(np.stack([x, y.ravel(), z.ravel()], axis=1), [1, 0, 0])
    layout = find_layout(samples, voxel, LayoutConfig(min_plane_area=0.3, min_walls=0), np.array([[2.0, 2.0, 1.5]]))
    wall = layout.walls[0]
    assert wall.normal[0] > 0.999 and abs(wall.offset) < 0.003


@pytest.mark.parametrize("spacing", [0.02, 0.006])
def test_a_wall_with_a_door_in_front_of_part_of_it_keeps_its_direction(spacing):
    """A wall at x = 0 seen from y = 0.8 to 3.4 m (5 cm voxels, 2 mm noise; sparsely at its left
    end) with a door 3 cm in front of it from y = 1.3 to 2.3 m, seen densely: the wall is fitted
    square at x = 0 (a least-squares line through all the samples leans 1 degree towards the door,
    and through the samples at its back it stayed leaning: 5 cm over the 2.5 m seen). With samples
    every 6 mm (120,000 of them) the direction is searched on a subset, as precisely."""
    voxel = 0.05
    rng = np.random.default_rng(5)
    y, z = np.meshgrid(np.arange(0.8, 3.3, spacing), np.arange(0.0, 2.4, spacing), indexing="ij")
    y, z = y.ravel(), z.ravel()
    door = (y >= 1.3) & (y < 2.3)
    x = rng.normal(0.0, 0.002, y.size) + np.where(door, 0.03, 0.0)
    keep = rng.uniform(size=y.size) < np.where(door, 1.0, np.where(y < 1.3, 0.2, 0.7))
    samples = _samples(np.stack([x, y, z], axis=1)[keep], [1, 0, 0])
    layout = find_layout(samples, voxel, LayoutConfig(min_plane_area=0.3, min_walls=0), np.array([[2.0, 2.0, 1.5]]))
    wall = max(layout.walls, key=lambda w: w.area)
    assert abs(np.degrees(np.arctan2(wall.normal[1], wall.normal[0]))) < 0.15
    assert abs(wall.offset) < 0.005


def _wall_samples(start, end, normal, z_lo, z_hi, voxel):
    """Samples of a vertical wall from ``start`` to ``end`` (x, y) between two heights."""
    t = np.arange(0.0, 1.0, voxel / np.linalg.norm(np.subtract(end, start)))
    z = np.arange(z_lo, z_hi, voxel)
    xy = np.asarray(start) + t[:, None] * np.subtract(end, start)
    points = np.concatenate([np.c_[xy, np.full(len(xy), h)] for h in z])
    return points, np.broadcast_to(np.asarray(normal, np.float32), points.shape)


def test_a_wall_seen_over_a_short_stretch_a_few_degrees_off_square_is_squared_to_the_room():
    """A wide wall at x = 0 and a short piece of the y = 4 m wall whose samples tilt by 4 degrees
    (a fit through them puts its far end 20 cm off): the short wall is turned square to the room, whose
    direction the wide wall sets (the walls' directions are averaged by the square of their seen
    area: the short piece moves it by a fifth of a degree)."""
    voxel = 0.05
    wide, wide_n = _wall_samples((0.0, 0.0), (0.0, 4.0), [1, 0, 0], 0.0, 2.4, voxel)
    tilt = np.radians(4.0)
    start = np.array([0.3, 4.0])
    short, _ = _wall_samples(start, start + 0.9 * np.array([np.cos(tilt), -np.sin(tilt)]), [0, -1, 0], 0.0, 2.4, voxel)
    short_n = np.broadcast_to(np.array([-np.sin(tilt), -np.cos(tilt), 0.0], np.float32), short.shape)
    samples = _samples(np.concatenate([wide, short]), [0, 0, 1])
    samples["normals"] = np.concatenate([wide_n, short_n]).astype(np.float32)
    layout = find_layout(samples, voxel, LayoutConfig(min_plane_area=0.3, min_walls=0), np.array([[2.0, 2.0, 1.5]]))
    back = [w for w in layout.walls if w.normal[1] < -0.9][0]
    side = [w for w in layout.walls if w.normal[0] > 0.9][0]
    assert abs(back.normal @ side.normal) < 1e-6, "turned exactly square to the room"
    assert abs(back.normal[0]) < np.sin(np.radians(0.25)) and abs(side.normal[1]) < np.sin(np.radians(0.25))
    assert abs(-back.offset - 3.96) < 0.05, "through the middle of its samples' stretch, at their back"


def test_a_long_wall_fitted_a_degree_off_is_squared_to_the_room():
    """Two long walls square to each other and a third, as long, whose samples run 1 degree off
    square (its far end 7 cm off over 4 m): it is turned square too. Walls under 1.5 degrees off
    were left as fitted before, and such a wall put the room's far corner beyond 5 cm."""
    voxel = 0.05
    a, a_n = _wall_samples((0.0, 0.0), (0.0, 4.0), [1, 0, 0], 0.0, 2.4, voxel)
    b, b_n = _wall_samples((0.0, 0.0), (4.0, 0.0), [0, 1, 0], 0.0, 2.4, voxel)
    tilt = np.radians(1.0)
    start = np.array([0.0, 4.0])
    c, _ = _wall_samples(start, start + 4.0 * np.array([np.cos(tilt), -np.sin(tilt)]), [0, -1, 0], 0.0, 2.4, voxel)
    c_n = np.broadcast_to(np.array([-np.sin(tilt), -np.cos(tilt), 0.0], np.float32), c.shape)
    samples = _samples(np.concatenate([a, b, c]), [0, 0, 1])
    samples["normals"] = np.concatenate([a_n, b_n, c_n]).astype(np.float32)
    layout = find_layout(samples, voxel, LayoutConfig(min_plane_area=0.3, min_walls=0), np.array([[2.0, 2.0, 1.5]]))
    back = [w for w in layout.walls if w.normal[1] < -0.9][0]
    assert abs(back.normal[0]) < np.sin(np.radians(0.5)), "square to the two walls that agree"


@pytest.mark.parametrize("side", [0.55, 0.2])
def test_a_floor_seen_too_little_on_its_own_is_taken_where_the_walls_end(side):
    """0.3 m^2 (or 0.04 m^2, a bathroom floor seen past a bathtub) of floor at z = 0 (less than
    min_plane_area 0.5) and a desk top of 1 m^2 at 0.75 m with free space seen under it: the floor
    alone is too small, but two walls facing different ways reach down to it, so it is the floor;
    without the walls there is no floor."""
    voxel = 0.05
    floor = _grid(np.arange(1.0, 1.0 + side, voxel), np.arange(1.0, 1.0 + side, voxel), 0.0)
    desk = _grid(np.arange(2.0, 3.0, voxel), np.arange(2.0, 3.0, voxel), 0.75)
    under = _grid(np.arange(2.0, 3.0, voxel), np.arange(2.0, 3.0, voxel), 0.4)
    wall_x, nx = _wall_samples((0.0, 0.0), (0.0, 4.0), [1, 0, 0], 0.1, 2.4, voxel)
    wall_y, ny = _wall_samples((0.0, 0.0), (4.0, 0.0), [0, 1, 0], 0.15, 2.4, voxel)
    cameras = np.array([[2.0, 2.0, 1.5]])
    config = LayoutConfig(min_plane_area=0.5, min_walls=0)
    alone = _samples(np.concatenate([floor, desk]), [0, 0, 1], free_points=under)
    assert find_layout(alone, voxel, config, cameras).floor is None
    samples = _samples(np.concatenate([floor, desk, wall_x, wall_y]), [0, 0, 1], free_points=under)
    samples["normals"] = np.concatenate([np.tile([0, 0, 1], (len(floor) + len(desk), 1)), nx, ny]).astype(np.float32)
    layout = find_layout(samples, voxel, config, cameras)
    assert layout.floor is not None and abs(layout.floor.offset) < 0.02


@pytest.mark.parametrize("height, other_top, found", [(2.7, 2.7, True), (2.7, 2.2, True), (2.1, 2.1, False)])
def test_a_ceiling_seen_over_a_sliver_is_taken_where_a_wall_reaches_up_to_it(height, other_top, found):
    """0.09 m^2 of ceiling (less than a fifth of min_plane_area 0.5) where walls facing different ways end
    above: the ceiling, at 2.7 m, also when only one of them reaches it (the view ended lower on the
    other, 2.2 m); at 2.1 m, less than min_room_height above the floor, the walls may end only where
    the cameras' view ends, and a sliver there (a shelf's underside) is no ceiling. Without the walls
    there is no ceiling either."""
    voxel = 0.05
    floor = _grid(np.arange(0.5, 2.0, voxel), np.arange(0.5, 2.0, voxel), 0.0)
    ceiling = _grid(np.arange(0.5, 0.8, voxel), np.arange(0.5, 0.8, voxel), height)
    wall_x, nx = _wall_samples((0.0, 0.0), (0.0, 4.0), [1, 0, 0], 0.1, height, voxel)
    wall_y, ny = _wall_samples((0.0, 0.0), (4.0, 0.0), [0, 1, 0], 0.1, other_top, voxel)
    cameras = np.array([[2.0, 2.0, 1.5]])
    config = LayoutConfig(min_plane_area=0.5, min_walls=0, min_room_height=2.3)
    horizontal = np.concatenate([np.tile([0, 0, 1], (len(floor), 1)), np.tile([0, 0, -1], (len(ceiling), 1))])
    alone = _samples(np.concatenate([floor, ceiling]), [0, 0, 1])
    alone["normals"] = horizontal.astype(np.float32)
    assert find_layout(alone, voxel, config, cameras).ceiling is None
    samples = _samples(np.concatenate([floor, ceiling, wall_x, wall_y]), [0, 0, 1])
    samples["normals"] = np.concatenate([horizontal, nx, ny]).astype(np.float32)
    layout = find_layout(samples, voxel, config, cameras)
    assert layout.floor is not None
    if found:
        assert layout.ceiling is not None and abs(-layout.ceiling.offset - height) < 0.02
    else:
        assert layout.ceiling is None


def test_only_walls_with_every_camera_in_front_bound_the_room():
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 2.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)  # x = 0, facing +x
    samples = _samples(wall, [1, 0, 0])
    config = LayoutConfig(min_plane_area=0.3)
    in_front = find_layout(samples, VOXEL, config, np.array([[1.0, 1.0, 1.5], [2.0, 0.5, 1.5]]))
    assert [w.bounding for w in in_front.walls] == [True]
    assert np.allclose(in_front.walls[0].normal, [1, 0, 0], atol=1e-3) and abs(in_front.walls[0].offset) < 0.02
    both_sides = find_layout(samples, VOXEL, config, np.array([[1.0, 1.0, 1.5], [-1.0, 1.0, 1.5]]))
    assert [w.bounding for w in both_sides.walls] == [False]


def test_a_wall_whose_normals_tilt_is_found_where_its_samples_lie():
    # a wall seen far off: its normals tilt by up to 10 degrees (within the tolerance), which
    # scatters offsets taken along each sample's own normal over several voxels on a 3 m wall
    rng = np.random.default_rng(4)
    xs, zs = np.meshgrid(np.arange(5.0, 8.0, VOXEL), np.arange(0.0, 0.6, VOXEL), indexing="ij")
    wall = np.stack([xs.ravel(), np.full(xs.size, 20.0), zs.ravel()], axis=1)  # y = 20, facing -y
    tilt = np.radians(rng.uniform(-10.0, 10.0, len(wall)))
    normals = np.stack([np.sin(tilt), -np.cos(tilt), np.zeros_like(tilt)], axis=1)
    samples = _samples(wall, [0, -1, 0])
    samples["normals"] = normals.astype(np.float32)
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.9), np.array([[6.5, 18.0, 1.5]]))
    assert len(layout.walls) == 1 and layout.walls[0].bounding
    assert np.allclose(layout.walls[0].normal, [0, -1, 0], atol=1e-3) and abs(layout.walls[0].offset + 20.0) < 0.02
    assert layout.walls[0].area == pytest.approx(len(wall) * VOXEL * VOXEL)


def test_of_parallel_walls_facing_the_same_way_only_the_outermost_bounds_the_room():
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 1.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    cupboard = wall + [0.6, 0.0, 0.0]
    samples = _samples(np.concatenate([wall, cupboard]), [1, 0, 0])
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), np.array([[2.0, 1.0, 1.5]]))
    bounding = {round(w.offset, 1): w.bounding for w in layout.walls}
    assert bounding == {0.0: True, 0.6: False}


def test_a_short_plane_tilted_through_the_fronts_along_a_wall_does_not_hide_the_wall():
    """The wall at x = 0 and, in front of it, samples along a line 8 degrees off it (the fronts of
    a shelf, a window recess and a cupboard, one behind the other) that starts just behind the
    wall's line where it was seen first: at the map's origin the tilted plane lies behind the wall,
    over the stretch both were seen the wall lies behind it. The wall bounds the room."""
    voxel = 0.05
    wall, wall_n = _wall_samples((0.0, 0.0), (0.0, 3.4), [1, 0, 0], 0.0, 2.4, voxel)
    tilt = np.arctan2(0.42, 3.0)
    fronts, _ = _wall_samples((0.0, 0.4), (0.42, 3.4), [1, 0, 0], 0.3, 1.3, voxel)
    fronts_n = np.broadcast_to(np.array([np.cos(tilt), -np.sin(tilt), 0.0], np.float32), fronts.shape)
    samples = _samples(np.concatenate([wall, fronts]), [1, 0, 0])
    samples["normals"] = np.concatenate([wall_n, fronts_n]).astype(np.float32)
    layout = find_layout(samples, voxel, LayoutConfig(min_plane_area=0.3, min_walls=0), np.array([[2.0, 1.7, 1.5]]))
    walls = sorted(layout.walls, key=lambda w: abs(w.normal[1]))
    assert len(walls) == 2 and abs(walls[0].normal[1]) < 0.02 and abs(walls[1].normal[1]) > 0.1
    assert walls[1].offset < walls[0].offset, "the tilted plane lies behind the wall at the origin"
    assert walls[0].bounding and not walls[1].bounding


def test_a_plane_the_labels_reject_does_not_hide_the_wall_in_front_of_it():
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 1.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    behind = wall - [0.5, 0.0, 0.0]  # parallel, farther out, labelled as something else
    samples = _samples(np.concatenate([wall, behind]), [1, 0, 0])
    samples["labels"] = np.concatenate([np.full(len(wall), 1), np.full(len(behind), 14)])
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), np.array([[2.0, 1.0, 1.5]]),
                         {"wall": 1})
    bounding = {round(w.offset, 1): w.bounding for w in layout.walls}
    assert bounding == {0.0: True, -0.5: False}


def test_a_wall_mostly_seen_as_a_window_is_written_as_wall():
    """Of a wall's labelled samples 40 % are window, 35 % wall, 25 % picture: it still bounds the room
    (wall share over ``min_label_share``) and its unseen part is labelled wall, not window; a ceiling,
    which the taxonomy has no class for, keeps the label its samples carry most."""
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 1.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    samples = _samples(wall, [1, 0, 0])
    share = np.arange(len(wall)) / len(wall)
    samples["labels"] = np.where(share < 0.40, 9, np.where(share < 0.75, 1, 11))
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), np.array([[2.0, 1.0, 1.5]]),
                         {"wall": 1, "floor": 2})
    (found,) = layout.walls
    assert found.bounding and found.label == 1 and found.label_share == pytest.approx(0.35, abs=0.01)
    step = np.arange(0.0, 2.0, VOXEL)
    ceiling = _samples(_grid(step, step, 2.5), [0, 0, -1])
    ceiling["labels"][:] = 1
    plane = Plane("ceiling", np.array([0.0, 0.0, -1.0]), -2.5, 4.0)
    from ssr_ros.completion.layout import _describe
    _describe(plane, ceiling, VOXEL, LayoutConfig(), 0)
    assert plane.label == 1


@pytest.mark.parametrize("other, bounds", [("window", True), ("door", True), ("picture", True), ("cabinet", False)])
def test_what_hangs_on_a_wall_counts_as_wall_in_its_label_share(other, bounds):
    """A wall seen as 75 % window (curtains drawn back, a large window) and 25 % wall still bounds the
    room: a window, door or picture hangs on a wall. A plane seen 75 % as a cupboard front does not."""
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 1.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    samples = _samples(wall, [1, 0, 0])
    ids = {"wall": 1, "floor": 2, "window": 9, "door": 8, "picture": 11, "cabinet": 3}
    samples["labels"] = np.where(np.arange(len(wall)) / len(wall) < 0.75, ids[other], 1)
    class_ids = {name: ids[name] for name in ("wall", "floor", "window", "door", "picture")}
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), np.array([[2.0, 1.0, 1.5]]), class_ids)
    (found,) = layout.walls
    assert found.bounding is bounds
    assert found.label_share == pytest.approx(1.0 if bounds else 0.25, abs=0.01)
    assert found.label == 1


def test_a_door_seen_on_a_wall_stands_on_the_floor_and_reaches_door_height():
    """A wall at x = 0 with a door 3 cm in front of it, seen only between 0.8 and 1.5 m high over
    y 1.0-1.85 m: the door found covers those columns from the floor up to ``door_height``, at the
    distance its seen part lies from the wall. A handful of stray door votes elsewhere on the wall
    (less than ``MIN_DOOR_AREA``) make no door; ``door_height`` 0 finds none."""
    step = np.arange(0.0, 3.0, VOXEL)
    ys, zs = np.meshgrid(step, np.arange(0.0, 2.0, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    door = (wall[:, 1] >= 1.0) & (wall[:, 1] < 1.9) & (wall[:, 2] >= 0.8) & (wall[:, 2] < 1.55)
    stray = (wall[:, 1] >= 2.5) & (wall[:, 1] < 2.65) & (wall[:, 2] >= 1.0) & (wall[:, 2] < 1.15)
    wall[door, 0] = 0.03
    floor = _grid(step, step, 0.0)
    samples = _samples(np.concatenate([wall, floor]), np.r_[np.tile([1, 0, 0], (len(wall), 1)), np.tile([0, 0, 1], (len(floor), 1))])
    samples["labels"] = np.r_[np.where(door | stray, 8, 1), np.full(len(floor), 2)]
    class_ids = {"wall": 1, "floor": 2, "door": 8}
    cameras = np.array([[2.0, 1.5, 1.5]])
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, min_walls=0), cameras, class_ids)
    (found,) = layout.patches
    assert found.name == "door" and found.wall is layout.walls[0] and found.label == 8
    assert found.along == pytest.approx((1.0, 1.8), abs=1e-3)
    assert found.bottom == pytest.approx(0.0, abs=0.01) and found.top == pytest.approx(2.0, abs=0.01)
    assert found.offset == pytest.approx(0.03, abs=0.005)
    higher = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, min_walls=0, door_height=1.2), cameras, class_ids)
    assert higher.patches[0].top == pytest.approx(1.5, abs=0.01), "seen higher than door_height: as high as it was seen"
    assert find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, min_walls=0, door_height=0.0), cameras,
                       class_ids).patches == []


def test_a_window_seen_on_a_wall_spans_the_rectangle_it_was_seen_over():
    """A wall at x = 0 with a window seen over y 1.0-1.8 m and z 1.0-1.5 m, except for a hole in its
    middle (hidden behind something in front): the window found spans the seen rectangle, no more
    (not down to the floor as a door); another seen 0.5 m to its side along the same wall is a window
    of its own; ``wall_patches`` off finds none."""
    step = np.arange(0.0, 4.0, VOXEL)
    ys, zs = np.meshgrid(step, np.arange(0.0, 2.5, VOXEL), indexing="ij")
    wall = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    y, z = wall[:, 1], wall[:, 2]
    window = (y >= 1.0) & (y < 1.9) & (z >= 1.0) & (z < 1.55)
    hidden = (y >= 1.3) & (y < 1.6) & (z >= 1.1) & (z < 1.4)
    second = (y >= 2.4) & (y < 2.9) & (z >= 0.9) & (z < 1.6)
    keep = ~hidden
    floor = _grid(step, step, 0.0)
    samples = _samples(np.concatenate([wall[keep], floor]),
                       np.r_[np.tile([1, 0, 0], (keep.sum(), 1)), np.tile([0, 0, 1], (len(floor), 1))])
    samples["labels"] = np.r_[np.where((window | second)[keep], 9, 1), np.full(len(floor), 2)]
    class_ids = {"wall": 1, "floor": 2, "door": 8, "window": 9}
    cameras = np.array([[2.0, 1.5, 1.5]])
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, min_walls=0), cameras, class_ids)
    first, other = sorted(layout.patches, key=lambda p: p.along[0])
    assert first.name == "window" and first.label == 9 and first.wall is layout.walls[0]
    assert first.along == pytest.approx((1.0, 1.8), abs=1e-6)
    assert (first.bottom, first.top) == pytest.approx((1.0, 1.5), abs=1e-6)
    assert other.along == pytest.approx((2.4, 2.8), abs=1e-6) and (other.bottom, other.top) == pytest.approx((0.9, 1.5))
    assert find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, min_walls=0, wall_patches=False), cameras,
                       class_ids).patches == []


def test_a_door_is_written_over_its_wall_with_its_label_at_its_distance():
    """The wall of ``_layout_with_wall`` (x = 0.05) with a door 10 cm in front of it over y 0.52-0.98 m
    and z 0-1.48 m: there the written surface lies at x = 0.15 and is labelled door; beside and above
    it the wall is written as before."""
    chunk = _box_chunk()
    chunk.free[3:, :, :] = True  # the room in front of the wall was seen
    layout = _layout_with_wall()
    config = LayoutConfig(reach=1.0, min_walls=0, solid_side=False)
    plain = room_prediction(layout, chunk, config, 21)
    from ssr_ros.completion.layout import WallPatch
    layout.patches = [WallPatch(layout.walls[0], (0.52, 0.98), 0.0, 1.48, 0.1, 8, np.array([0.2, 0.1, 0.0], np.float32))]
    tsdf, color, probs, _ = room_prediction(layout, chunk, config, 21)
    door = np.zeros((20, 20, 20), bool)
    door[:, 5:10, :15] = True  # voxel centres within half a voxel of the door's rectangle
    written = torch.isfinite(tsdf).numpy()
    labels = probs.argmax(-1).numpy()
    assert written[:, door[0]].any() and (labels[written & door] == 8).all()
    assert (labels[written & ~door] == 1).all()
    # the door's surface: layer 1 (centre 0.15 m) on it, the wall's (layer 0, centre 0.05 m) elsewhere
    assert torch.allclose(tsdf[1, 5:10, :15], torch.zeros(()), atol=1e-5)
    assert torch.equal(tsdf[:, 12:, :].nan_to_num(9.0), plain[0][:, 12:, :].nan_to_num(9.0)) and torch.allclose(tsdf[1, 12:, :], torch.tensor(0.1))
    assert torch.allclose(color[1, 7, 3], torch.tensor([0.2, 0.1, 0.0]))


def test_the_room_reaches_as_far_as_the_cameras_and_the_space_they_saw_free():
    step = np.arange(0.0, 2.0, VOXEL)
    floor = _grid(step, step, 0.0)
    free = _grid(step, np.arange(2.0, 3.0, VOXEL), 2.2)  # seen free beyond the observed floor, up high
    cameras = np.array([[1.0, 1.0, 1.5], [1.0, 3.5, 1.5]])
    samples = _samples(floor, [0, 0, 1], free_points=free)
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, margin=0.0, min_room_height=0.0), cameras)
    assert np.allclose(layout.hi, [1.9, 3.5, 2.2], atol=1e-6) and np.allclose(layout.lo, [0.0, 0.0, 0.0], atol=1e-6)
    # beyond it by the margin sideways, and at least min_room_height above the floor
    wider = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3, margin=0.5, min_room_height=2.5), cameras)
    assert np.allclose(wider.lo, [-0.5, -0.5, 0.0], atol=1e-6) and np.allclose(wider.hi, [2.4, 4.0, 2.5], atol=1e-6)


def _box_chunk(size=(20, 20, 20)) -> DenseChunk:
    """2 m cube of unknown voxels starting at the origin, 0.1 m voxels."""
    X, Y, Z = size
    return DenseChunk(
        origin_voxel=torch.zeros(3, dtype=torch.int64), voxel_size=VOXEL, truncation=0.3,
        tsdf=torch.full(size, 0.3), weight=torch.zeros(size), observed=torch.zeros(size, dtype=torch.bool),
        color=torch.zeros(size + (3,)), semantics=torch.zeros(size + (21,)), predicted=torch.zeros(size, dtype=torch.bool),
        free=torch.zeros(size, dtype=torch.bool))


def _layout_with_wall() -> Layout:
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 2.0, VOXEL), indexing="ij")
    seen = np.stack([np.full(ys.size, 0.05), ys.ravel(), zs.ravel()], axis=1)[:40]  # a piece of it was observed
    wall = Plane("wall", np.array([1.0, 0.0, 0.0]), 0.05, 4.0, label=1, inliers=seen)
    return Layout([wall], np.zeros(3), np.full(3, 2.0))


def test_the_room_surface_is_written_in_unknown_space_only_and_never_behind_an_object():
    chunk = _box_chunk()
    # an observed cupboard front 0.4 m in front of the wall for y < 1 m: solid behind its front face
    chunk.observed[3:5, :10, :] = True
    chunk.tsdf[3:5, :10, :] = -0.05
    # the room beyond the cupboard was seen free, and so was the space right at the wall for z >= 1.5 m
    chunk.free[6:, :, :] = True
    chunk.free[:3, 10:, 15:] = True
    # nothing seen in front of the wall for y >= 1.8 m: a place no camera looked at
    chunk.free[:, 18:, :] = False
    config = LayoutConfig(reach=1.0, min_walls=0, solid_side=False)
    tsdf, color, probs, confidence = room_prediction(_layout_with_wall(), chunk, config, 21)
    written = torch.isfinite(tsdf)
    surface = written & (tsdf.abs() < 0.5 * VOXEL)
    assert surface[:, 10:18, :15].any(), "the open stretch of the wall is written"
    assert not surface[:, :10, :].any(), "the wall behind the cupboard is hidden by it"
    assert not surface[:, 18:, :].any(), "nothing is written where no camera saw the room in front of the wall"
    assert not (surface & chunk.free).any(), "no surface where the cameras saw free space"
    assert not (written & chunk.observed).any()
    assert torch.all(probs[surface].argmax(-1) == 1) and torch.allclose(confidence[surface], torch.tensor(0.8))


def test_where_the_room_was_not_seen_in_front_only_its_solid_side_is_marked():
    chunk = _box_chunk()
    chunk.observed[3:5, :10, :] = True  # the cupboard of the test above
    chunk.tsdf[3:5, :10, :] = -0.05
    chunk.free[6:, :, :] = True
    chunk.free[:3, 10:, 15:] = True
    chunk.free[:, 18:, :] = False
    both = room_prediction(_layout_with_wall(), chunk, LayoutConfig(reach=1.0, min_walls=0, solid_side=False), 21)[0]
    tsdf = room_prediction(_layout_with_wall(), chunk, LayoutConfig(reach=1.0, min_walls=0), 21)[0]
    written, written_both = torch.isfinite(tsdf), torch.isfinite(both)
    # where the cameras saw the room in front of the wall, both sides as before
    assert torch.equal(written[:, 10:18, :15], written_both[:, 10:18, :15])
    assert torch.equal(tsdf[written_both], both[written_both])
    added = written & ~written_both
    behind_cupboard, unseen = added[:, :10, :], added[:, 18:, :]
    assert behind_cupboard[0].all() and unseen[0].all(), "the wall's solid side is marked occupied behind the cupboard and where no camera looked"
    # solid side only: nothing on the room's side, so no sign change and no surface is drawn there
    assert bool((tsdf[added] < 0).all()) and not added[1:].any()
    assert not (added & chunk.observed).any() and not (added & chunk.free).any()


def test_unseen_in_front_the_voxel_the_surface_passes_through_is_marked_solid_too():
    """A wall at x = 0.12 m passes through voxel layer 1 (0.1-0.2 m, centre 2 cm in front of the
    wall): the map's occupancy rule counts that layer occupied, so where nobody saw the room in
    front of the wall it is marked solid with layer 0, all negative; layer 2 stays unknown."""
    chunk = _box_chunk()
    ys, zs = np.meshgrid(np.arange(0.0, 2.0, VOXEL), np.arange(0.0, 2.05, VOXEL), indexing="ij")  # seen all up
    seen = np.stack([np.full(ys.size, 0.12), ys.ravel(), zs.ravel()], axis=1)
    wall = Plane("wall", np.array([1.0, 0.0, 0.0]), 0.12, 4.0, label=1, inliers=seen)
    tsdf = room_prediction(Layout([wall], np.zeros(3), np.full(3, 2.0)), chunk, LayoutConfig(reach=1.0, min_walls=0), 21)[0]
    assert torch.isfinite(tsdf[:2]).all() and bool((tsdf[:2] < 0).all())
    assert not torch.isfinite(tsdf[2:]).any(), "nothing on the room's side of the voxel holding the surface"


def _floor_layout(height: float) -> Layout:
    xs, ys = np.meshgrid(np.arange(0.05, 2.0, VOXEL), np.arange(0.05, 2.0, VOXEL), indexing="ij")
    seen = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, height)], axis=1)
    return Layout([Plane("floor", np.array([0.0, 0.0, 1.0]), height, 4.0, label=2, inliers=seen)], np.zeros(3), np.full(3, 2.0))


@pytest.mark.parametrize("solid_side", [True, False])
def test_a_floor_on_a_voxel_face_occupies_only_the_voxel_below_it(solid_side):
    """A floor fitted 2 mm above the face between voxel layers 9 and 10 (z = 1 m) lies on that
    face: layer 9 (centre 0.95 m) holds it, layer 10 (centre 1.05 m, 4.8 cm from the fit) only
    touches it and must not count as occupied (tsdf <= half a voxel); a floor 3 cm into layer 10
    does occupy it."""
    chunk = _box_chunk()
    chunk.free[:, :, 13:] = True  # the room above the floor was seen free: both sides are written
    config = LayoutConfig(min_walls=0, solid_side=solid_side)
    tsdf = room_prediction(_floor_layout(1.002), chunk, config, 21)[0]
    assert torch.isfinite(tsdf[:, :, 9]).all() and bool((tsdf[:, :, 9] < 0).all())
    assert torch.isfinite(tsdf[:, :, 10]).all(), "the room side of the floor is written where the room was seen"
    assert bool((tsdf[:, :, 10] > 0.5 * VOXEL).all()), "the voxel above the face is free, not a second floor layer"
    assert abs(float(tsdf[5, 5, 11]) - (1.15 - 1.002)) < 1e-5, "farther voxels keep the plane's distance"
    # without the rule the layer above the face would be occupied
    plain = room_prediction(_floor_layout(1.002), chunk, LayoutConfig(min_walls=0, solid_side=solid_side,
                                                                      face_tolerance=0.0), 21)[0]
    assert bool((plain[:, :, 10] <= 0.5 * VOXEL).all())
    # a floor well inside layer 10 occupies it: the plane's distance is kept
    inside = room_prediction(_floor_layout(1.03), chunk, config, 21)[0]
    assert bool((inside[:, :, 10] <= 0.5 * VOXEL).all()) and abs(float(inside[5, 5, 10]) - 0.02) < 1e-5


def test_on_face_outside_moves_only_voxels_half_a_voxel_in_front():
    from ssr_ros.completion.layout import on_face_outside

    tsdf = np.array([-0.05, -0.02, 0.02, 0.035, 0.042, 0.05, 0.06, np.nan], np.float32)
    out = on_face_outside(tsdf, 0.1, 0.1)
    assert np.array_equal(out[[0, 1, 2, 3, 6]], tsdf[[0, 1, 2, 3, 6]]), "a surface through the voxel's inside stays"
    assert np.all(out[[4, 5]] > 0.05) and np.isnan(out[7])
    assert np.array_equal(on_face_outside(tsdf, 0.1, 0.0), tsdf, equal_nan=True)


def _closed_room(kinds):
    """Planes of the room 0.15 m inside ``_box_chunk``'s faces, each seen only in a small patch
    at the room's low corner; ``kinds``: which of them the layout has."""
    lo, hi = 0.15, 1.85
    planes = {"floor": ([0, 0, 1], lo), "ceiling": ([0, 0, -1], -hi), "x0": ([1, 0, 0], lo), "x1": ([-1, 0, 0], -hi),
              "y0": ([0, 1, 0], lo), "y1": ([0, -1, 0], -hi)}
    out = []
    for name in kinds:
        normal, offset = np.array(planes[name][0], float), planes[name][1]
        corner = np.full(3, 0.3)
        patch = corner + np.stack(np.meshgrid(*[np.arange(0, 0.3, VOXEL)] * 3, indexing="ij"), -1).reshape(-1, 3)
        patch -= np.outer(patch @ normal - offset, normal)  # onto the plane
        out.append(Plane("wall" if name[0] in "xy" else name, normal, offset, 1.0, label=1, inliers=patch))
    return Layout(out, np.zeros(3), np.full(3, 2.0))


def test_a_room_closed_all_round_is_written_beyond_the_extension_limit():
    chunk = _box_chunk()
    chunk.free[4:16, 4:16, 4:16] = True  # the cameras saw the middle of the room free
    config = LayoutConfig(min_walls=0, max_extension=0.3)
    far_corner = (slice(13, 18), slice(13, 18))

    def surface(kinds):
        tsdf = room_prediction(_closed_room(kinds), chunk, config, 21)[0]
        return torch.isfinite(tsdf) & (tsdf.abs() < 0.5 * VOXEL)

    closed = surface(["floor", "ceiling", "x0", "x1", "y0", "y1"])
    assert closed[far_corner + (18,)].any(), "the ceiling between walls that close the room"
    assert closed[1, 13:18, 13:18].any(), "a wall between the floor, the ceiling and its neighbours"
    open_side = surface(["floor", "ceiling", "x0", "x1", "y0"])  # no wall at y = 1.85: the room is open there
    assert not open_side[far_corner + (18,)].any() and not open_side[1, 13:18, 13:18].any()
    assert open_side[4:6, 4:6, 18].any(), "near its observed patch the ceiling is still written"
    no_ceiling = surface(["floor", "x0", "x1", "y0", "y1"])
    assert not no_ceiling[1, 13:18, 13:18].any(), "a wall is not extended upwards without a ceiling above it"
    assert no_ceiling[13:18, 13:18, 1].any(), "the floor is: the walls close the room"


def test_a_room_whose_floor_nobody_saw_gets_its_walls_and_ceiling_only_when_floorless_is_on():
    """Two walls facing different ways and a ceiling, no floor plane (the cameras saw too little of
    it): with ``floorless`` the walls and the ceiling are written and no floor; without it nothing."""
    from ssr_ros.completion.layout import is_room

    chunk = _box_chunk()
    chunk.free[4:16, 4:16, 4:16] = True
    layout = _closed_room(["ceiling", "x0", "y0"])
    assert not is_room(layout, 2) and is_room(layout, 2, floorless=True)
    assert room_prediction(layout, chunk, LayoutConfig(floorless=False), 21) is None
    tsdf = room_prediction(layout, chunk, LayoutConfig(floorless=True), 21)[0]
    written = torch.isfinite(tsdf) & (tsdf.abs() < 0.5 * VOXEL)
    assert written[1, 4:10, 4:10].any(), "the wall at x = 0.15 m"
    assert written[4:10, 1, 4:10].any(), "the wall at y = 0.15 m"
    assert written[4:10, 4:10, 18].any(), "the ceiling"
    assert not written[4:16, 4:16, :3].any(), "no floor where none was found"
    # one wall is no room, floor or not
    assert not is_room(_closed_room(["ceiling", "x0"]), 2, floorless=True)


def test_with_min_walls_1_a_floor_and_one_wall_make_a_room_a_wall_alone_does_not():
    """A kitchen seen along one wall whose other walls hide behind cupboards: with ``min_walls`` 1
    the floor and that wall are a room (written near what was seen of them); without a floor one
    wall is not (a floorless room needs a corner), nor is a floor alone. The default asks for two."""
    from ssr_ros.completion.layout import room_shortfall

    chunk = _box_chunk()
    chunk.free[4:16, 4:16, 4:16] = True
    one_wall = _closed_room(["floor", "x0"])
    config = LayoutConfig(min_walls=1)
    assert room_shortfall(one_wall, 1) == ""
    tsdf = room_prediction(one_wall, chunk, config, 21)[0]
    written = torch.isfinite(tsdf) & (tsdf.abs() < 0.5 * VOXEL)
    assert written[1, 4:10, 4:10].any() and written[4:10, 4:10, 1].any(), "the wall and the floor"
    assert room_shortfall(one_wall, LayoutConfig().min_walls) == "no room: needs 2 wall(s) facing different ways besides the floor"
    assert room_prediction(one_wall, chunk, LayoutConfig(), 21) is None
    wall_alone = _closed_room(["ceiling", "x0"])
    assert "2 walls" in room_shortfall(wall_alone, 1, floorless=True)
    assert room_prediction(wall_alone, chunk, config, 21) is None
    assert room_prediction(_closed_room(["floor"]), chunk, config, 21) is None


def _walls_seen_from_above(z_lo=1.0):
    """Samples of two walls (x = 0.15, y = 0.15 m) seen only above ``z_lo``, as cameras held high
    that never looked down see a room."""
    a, a_n = _wall_samples((0.15, 0.15), (0.15, 1.85), [1, 0, 0], z_lo, 1.9, VOXEL)
    b, b_n = _wall_samples((0.15, 0.15), (1.85, 0.15), [0, 1, 0], z_lo, 1.9, VOXEL)
    samples = _samples(np.concatenate([a, b]), [1, 0, 0])
    samples["normals"] = np.concatenate([a_n, b_n]).astype(np.float32)
    return samples


def test_a_room_whose_floor_nobody_saw_stands_on_the_maps_floor_height():
    """No floor seen, cameras 1.1 m above the map's floor height: the room stands on it (an assumed,
    bounding floor); its walls are written down to it and its floor's voxels marked solid, with no
    surface (although the cameras saw the room free above 1 m)."""
    config = LayoutConfig(min_plane_area=0.3)
    cameras = np.array([[1.0, 1.0, 1.3], [1.2, 0.9, 1.3]])
    layout = find_layout(_walls_seen_from_above(), VOXEL, config, cameras, floor_height=0.2)
    floor = layout.floor
    assert floor is not None and floor.assumed and floor.bounding and floor.offset == 0.2
    assert layout.lo[2] <= 0.2 and floor.as_dict()["assumed"]
    chunk = _box_chunk()
    chunk.free[4:16, 4:16, 10:16] = True  # what the cameras saw free: the room above 1 m
    tsdf = room_prediction(layout, chunk, config, 21)[0]
    solid = torch.isfinite(tsdf) & (tsdf <= 0.5 * VOXEL)
    assert solid[5:15, 5:15, 1].all(), "the floor's voxel layer below its face"
    assert not torch.isfinite(tsdf[5:15, 5:15, 2:9]).any(), "no surface: nothing above the floor's face"
    assert solid[1, 5:15, 2:9].all() and solid[5:15, 1, 2:9].all(), "the walls down to the floor"
    # without a floor height, or with the rule off: walls from the lowest thing seen, no floor
    for unknown in (find_layout(_walls_seen_from_above(), VOXEL, config, cameras),
                    find_layout(_walls_seen_from_above(), VOXEL, LayoutConfig(min_plane_area=0.3, unseen_floor=False),
                                cameras, floor_height=0.2)):
        assert unknown.floor is None and unknown.lo[2] > 0.9
        written = room_prediction(unknown, chunk, config, 21)[0]
        assert not torch.isfinite(written[:, :, :9]).any()


@pytest.mark.parametrize("case", ["camera_near_it", "surface_below", "free_below", "no_cameras"])
def test_no_floor_is_assumed_where_what_was_seen_contradicts_it(case):
    """A camera less than 0.3 m above the floor height (a recording whose frame starts at its first
    camera), surface or seen-free space well below it, or no camera path: no assumed floor."""
    samples = _walls_seen_from_above()
    cameras = np.array([[1.0, 1.0, 1.3], [1.2, 0.9, 1.3]])
    if case == "camera_near_it":
        cameras[1, 2] = 0.4
    elif case == "surface_below":  # a step down to a lower floor, seen
        step = _grid(np.arange(0.5, 1.5, VOXEL), np.arange(0.5, 1.5, VOXEL), -0.3)
        normals = np.concatenate([samples["normals"], np.broadcast_to(np.float32([0, 0, 1]), step.shape)])
        samples = _samples(np.concatenate([samples["points"], step]), [0, 0, 1])
        samples["normals"] = normals
    elif case == "free_below":
        samples["free_points"] = _grid(np.arange(0.5, 1.5, VOXEL), np.arange(0.5, 1.5, VOXEL), -0.2).astype(np.float32)
    elif case == "no_cameras":
        cameras = None
    layout = find_layout(samples, VOXEL, LayoutConfig(min_plane_area=0.3), cameras, floor_height=0.2)
    assert layout.floor is None or not layout.floor.assumed


def test_a_floor_seen_at_a_grazing_angle_keeps_its_area():
    """A projective TSDF seen at a grazing angle is stretched (here 2.5x the true distance): its
    surface voxels are found by the distance to the zero crossing, not by the raw TSDF value."""
    from ssr_ros.completion.layout import surface_samples

    chunk = _box_chunk()
    z = (torch.arange(20, dtype=torch.float32) - 10 + 0.5) * VOXEL  # the floor at z = 1 m, chunk coordinates
    chunk.tsdf[:] = (2.5 * z).clamp(-0.3, 0.3)[None, None, :]
    chunk.observed[:, :, 7:14] = True
    samples = surface_samples(chunk)
    floor = samples["normals"][:, 2] > 0.99
    assert floor.sum() >= 2 * 20 * 20  # both voxel layers next to the crossing, over the whole chunk
    assert np.allclose(samples["points"][floor, 2], 1.0, atol=0.01)
    layout = find_layout(samples, VOXEL, LayoutConfig(), np.array([[1.0, 1.0, 2.0]]))
    assert layout.floor is not None and abs(layout.floor.offset - 1.0) < 0.01 and layout.floor.area > 3.5


@pytest.fixture(scope="module")
def generated_room():
    """A generated room fused from 40 small frames (fusion only), with its scene."""
    from ssr_ros.completion_evaluation import EvaluationConfig
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    config = EvaluationConfig(frames_per_scene=40, image_width=120, image_height=90).validate()
    scene, sequence = synthetic_sequence(1510, config)
    pipeline = MappingPipeline(PipelineConfig(map=config.map, completion=CompletionConfig(type="none"),
                                              layout=LayoutConfig(type="none")), model=None)
    for frame in sequence:
        pipeline.integrate(frame)
    return scene, pipeline, pipeline.map.copy()


def test_the_layout_of_a_generated_room_matches_its_faces_and_adds_correct_surface(generated_room):
    from scipy.spatial import cKDTree

    from ssr_ros.evaluation.mesh import sample_surface

    scene, pipeline, _ = generated_room
    W, D, H = scene.room_size
    tsdf_map = pipeline.map
    before = tsdf_map.mesh(include_predicted=False)
    blocks = tsdf_map.allocated_block_coords()
    lo = blocks.min(0).values * tsdf_map.block_size
    size = tuple(int(s) for s in (blocks.max(0).values + 1) * tsdf_map.block_size - lo)
    fused = tsdf_map.extract_chunk(lo, size)
    report = complete_layout(tsdf_map, LayoutConfig(), pipeline.camera_path, {"floor": 2, "wall": 1})
    layout = report.layout
    assert report.voxels_written > 1000
    assert layout.floor is not None and abs(layout.floor.offset) < 0.03
    bounding = [w for w in layout.walls if w.bounding]
    assert len(bounding) >= 2
    for wall in bounding:
        # a bounding wall lies on one of the room's four faces: x = 0 or W, y = 0 or D
        nx, ny = wall.normal[:2]
        x_wall = abs(nx) > abs(ny)
        position = wall.offset / (nx if x_wall else ny)
        assert min(abs(position - v) for v in ((0.0, W) if x_wall else (0.0, D))) < 0.05, wall.as_dict()
    after = tsdf_map.extract_chunk(lo, size)
    assert torch.equal(after.tsdf[fused.observed], fused.tsdf[fused.observed])
    new_surface = after.predicted & (after.tsdf.abs() < 0.5 * tsdf_map.voxel_size)
    assert not (new_surface & fused.free).any()
    # the new surface is right and adds recall
    gt = scene.gt_mesh()
    gt_tree = cKDTree(sample_surface(gt.vertices, gt.faces, 100_000, seed=1))
    completed = tsdf_map.mesh()
    distance, _ = gt_tree.query(completed.vertices[completed.predicted])
    assert np.mean(distance < 0.05) > 0.85
    gt_points = sample_surface(gt.vertices, gt.faces, 20_000, seed=2)
    recall_before = np.mean(cKDTree(before.vertices).query(gt_points)[0] < 0.05)
    recall_after = np.mean(cKDTree(completed.vertices).query(gt_points)[0] < 0.05)
    assert recall_after > recall_before + 0.1, (recall_before, recall_after)


def test_the_pipeline_stands_a_room_seen_only_from_above_on_the_maps_floor_height():
    """Room 1510 fused from the depth of what lies above 1 m only (a scan that never looked down):
    no floor is seen, and the pipeline's layout writes the room's floor at planning.floor_height
    (0, where the generated room's floor lies) and its walls down to it; with the rule off, nothing
    below the lowest thing seen."""
    import dataclasses

    from ssr_ros.completion_evaluation import EvaluationConfig
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    config = EvaluationConfig(frames_per_scene=40, image_width=120, image_height=90).validate()
    scene, sequence = synthetic_sequence(1510, config)
    frames = []
    for frame in sequence:
        T = frame.T_world_cam
        z_world = frame.intrinsics.backproject(torch.from_numpy(frame.depth)).numpy() @ T[2, :3] + T[2, 3]
        depth = np.where(z_world > 1.0, frame.depth, 0.0).astype(np.float32)
        if np.count_nonzero(depth) > 100:  # a frame that saw nothing above 1 m is not fused
            frames.append(dataclasses.replace(frame, depth=depth))
    written = {}
    for unseen_floor in (True, False):
        pipeline = MappingPipeline(PipelineConfig(map=config.map, completion=CompletionConfig(type="none"),
                                                  layout=LayoutConfig(unseen_floor=unseen_floor)), model=None)
        for frame in frames:
            pipeline.integrate(frame)
        report = pipeline.complete_layout()
        written[unseen_floor] = (report.layout.floor, np.bincount(report.voxels[:, 2] + 2, minlength=22))
    floor, layers = written[True]  # voxels written per layer from z = -0.1 m up
    assert floor is not None and floor.assumed and floor.offset == 0.0
    assert layers[1] > 0.5 * np.prod(scene.room_size[:2]) / config.voxel_size ** 2, "the floor's solid layer"
    assert 0 < layers[5] < 0.1 * layers[1], "the walls' feet"
    assert written[False][0] is None and written[False][1][:20].sum() == 0, "nothing below 0.9 m without the rule"


def test_a_later_run_revises_the_layout_instead_of_piling_up(generated_room):
    _, pipeline, fused = generated_room
    tsdf_map = fused.copy()
    ids = {"floor": 2, "wall": 1}
    blocks = fused.allocated_block_coords()
    lo = blocks.min(0).values * fused.block_size
    size = tuple(int(s) for s in (blocks.max(0).values + 1) * fused.block_size - lo)
    first = complete_layout(tsdf_map, LayoutConfig(), pipeline.camera_path, ids)
    assert first.voxels_written > 1000 and len(first.voxels) == first.voxels_written
    assert int(tsdf_map.extract_chunk(lo, size).predicted.sum()) == first.voxels_written
    # the same map again: the same voxels are rewritten, none taken back
    again = complete_layout(tsdf_map, LayoutConfig(), pipeline.camera_path, ids, first.voxels)
    assert again.voxels_cleared == 0 and {tuple(v) for v in again.voxels} == {tuple(v) for v in first.voxels}
    # a run that no longer finds a room takes all of it back: the map is the fused one again
    gone = complete_layout(tsdf_map, LayoutConfig(min_plane_area=500.0), pipeline.camera_path, ids, again.voxels)
    assert gone.voxels_written == 0 and gone.voxels_cleared == first.voxels_written and len(gone.voxels) == 0
    now, before = tsdf_map.extract_chunk(lo, size), fused.extract_chunk(lo, size)
    assert not now.predicted.any()
    # equal but for voxels with fused weight below the observed threshold, which a prediction
    # replaces (``write_predictions``) and which come back unknown
    same = (now.tsdf == before.tsdf) & (now.weight == before.weight)
    weak = (before.weight > 0) & ~before.observed
    assert bool(torch.all(same | weak)) and bool(torch.all(same[before.observed]))
    # a run that does not look at the map keeps what was written
    complete_layout(tsdf_map, LayoutConfig(), pipeline.camera_path, ids)
    skipped = complete_layout(tsdf_map, LayoutConfig(max_voxels=1000), pipeline.camera_path, ids, first.voxels)
    assert skipped.voxels_cleared == 0 and len(skipped.voxels) == len(first.voxels)


def test_the_room_goes_on_beyond_what_was_seen_by_the_margin_solid_only(generated_room):
    scene, pipeline, fused = generated_room
    ids = {"floor": 2, "wall": 1}
    voxel = fused.voxel_size
    seen = complete_layout(fused.copy(), LayoutConfig(margin=0.0, min_room_height=0.0, walls_up=False),
                           pipeline.camera_path, ids)
    layout = seen.layout
    assert layout.hi[2] < 2.3 - 4 * voxel, "the cameras saw the room's walls only up to below 2.3 m"

    def beyond(config):
        completed = fused.copy()
        report = complete_layout(completed, config, pipeline.camera_path, ids)
        assert {tuple(v) for v in seen.voxels.tolist()} <= {tuple(v) for v in report.voxels.tolist()}
        voxels = report.voxels
        centers = (voxels + 0.5) * voxel
        outside = np.any((centers < layout.lo - voxel) | (centers > layout.hi + voxel), axis=1)
        # nobody saw the room there: only its solid side is marked, no surface is drawn
        box_lo = voxels.min(axis=0)
        chunk = completed.extract_chunk(torch.as_tensor(box_lo), tuple(int(s) for s in voxels.max(axis=0) - box_lo + 1))
        marked = tuple((voxels[outside] - box_lo).T)
        assert bool(chunk.predicted[marked].all()) and bool((chunk.predicted_tsdf[marked] < 0).all())
        # and it is right: the marked voxels lie in the room's floor and walls (the voxel the surface
        # passes through is marked too, so a plane fitted a centimetre or two off a wall lying on a
        # voxel face marks the layer in front of it: still within one voxel of the wall)
        gt = scene.gt_volume(voxel)
        index = voxels[outside] - gt.origin_voxel
        inside = np.all((index >= 0) & (index < np.array(gt.shape)), axis=1)
        assert inside.mean() > 0.9 and gt.occupied[tuple(index[inside].T)].mean() > 0.75
        assert (gt.sdf[tuple(index[inside].T)] <= 1.5 * voxel).mean() > 0.99
        return voxels, centers, outside

    voxels, centers, outside = beyond(LayoutConfig(margin=0.6, min_room_height=0.0, walls_up=False))
    assert outside.sum() > 500, "the floor and walls go on sideways beyond the seen extent"
    assert np.all(centers[:, :2] >= layout.lo[:2] - 0.6 - 2 * voxel) and np.all(centers[:, :2] <= layout.hi[:2] + 0.6 + 2 * voxel)
    assert np.all(centers[:, 2] <= layout.hi[2] + 2 * voxel), "not upwards: the margin is horizontal"
    voxels, centers, outside = beyond(LayoutConfig(margin=0.0, min_room_height=2.3, walls_up=False))
    above = centers[:, 2] > layout.hi[2] + voxel
    assert above.sum() > 300 and centers[above, 2].max() <= 2.3 + 2 * voxel, "the walls go up to 2.3 m above the floor"
    # with walls_up, the walls seen below go on up with both sides drawn, where nothing stands in front of them
    completed = fused.copy()
    report = complete_layout(completed, LayoutConfig(margin=0.0, min_room_height=2.3), pipeline.camera_path, ids)
    voxels = report.voxels
    box_lo = voxels.min(axis=0)
    chunk = completed.extract_chunk(torch.as_tensor(box_lo), tuple(int(s) for s in voxels.max(axis=0) - box_lo + 1))
    room_side = (chunk.predicted_tsdf[tuple((voxels - box_lo).T)] > 0).numpy()
    raised = room_side & ((voxels[:, 2] + 0.5) * voxel > layout.hi[2] + voxel)
    assert raised.sum() > 100, "the walls' room side is drawn above what the cameras saw"
    gt = scene.gt_volume(voxel)
    index = voxels[raised] - gt.origin_voxel
    inside = np.all((index >= 0) & (index < np.array(gt.shape)), axis=1)
    assert inside.mean() > 0.9 and (np.abs(gt.sdf[tuple(index[inside].T)]) <= 1.5 * voxel).mean() > 0.95, \
        "and they are the room's walls"


def test_the_pipeline_runs_the_layout_without_a_network_and_can_leave_it_off():
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    off = MappingPipeline(PipelineConfig(completion=CompletionConfig(type="none"), layout=LayoutConfig(type="none")), model=None)
    on = MappingPipeline(PipelineConfig(completion=CompletionConfig(type="none")), model=None)
    assert not off.completion_enabled and on.completion_enabled
    assert on.complete(everything=True) == 0
    assert on.layout_report.voxels_written == 0 and on.layout_report.reason == "empty map"
    # the layout's writes mark chunks changed; with no network nothing waits for completion
    # (clients wait for pending_chunks == 0 before they call the mapper idle)
    on.scheduler.mark_changed(np.array([[0, 0, 0], [4, 0, 0]]))
    assert on.stats()["pending_chunks"] == 0
    # the layout is told the ids of every class it writes, windows and pictures on walls among them
    ids = on.structural_class_ids()
    assert {"floor", "wall", "door", "window", "picture"} <= set(ids)
    assert all(ids[name] == on.taxonomy.id_of(name) for name in ids)


def test_the_room_surface_replaces_the_networks_offset_copy_of_it(generated_room):
    """The network continued the floor 6 cm too low where nobody saw it: with ``over_network`` the
    measured floor plane replaces it (no predicted surface left under the floor there); off, the
    layout writes around the network's voxels and the offset floor stays."""
    scene, pipeline, fused = generated_room
    W, D, _ = scene.room_size
    ids = {"floor": 2, "wall": 1}
    blocks = fused.allocated_block_coords()
    lo = blocks.min(0).values * fused.block_size
    size = tuple(int(s) for s in (blocks.max(0).values + 1) * fused.block_size - lo)
    chunk = fused.extract_chunk(lo, size)
    centers = chunk.voxel_centers()
    x, y, z = centers.unbind(-1)
    unknown = ~chunk.observed & ~(chunk.free if chunk.free is not None else torch.zeros_like(chunk.observed))
    network = unknown & (z > -0.1) & (z < 0.05) & (x > 0.2) & (x < W - 0.2) & (y > 0.2) & (y < D - 0.2)
    assert int(network.sum()) > 200  # floor the cameras never saw
    fake = torch.where(network, z + 0.06, torch.full_like(z, float("nan")))  # a floor at z = -0.06

    def below_floor_after(config: LayoutConfig) -> int:
        tsdf_map = fused.copy()
        n = chunk.semantics.shape[-1]
        probs = torch.zeros(size + (n,))
        probs[..., 2] = 1.0
        tsdf_map.write_predictions(lo, fake, torch.full(size + (3,), 0.5), probs, torch.full(size, 0.9))
        complete_layout(tsdf_map, config, pipeline.camera_path, ids)
        mesh = tsdf_map.mesh()
        v = mesh.vertices[mesh.predicted]
        inside = (v[:, 0] > 0.3) & (v[:, 0] < W - 0.3) & (v[:, 1] > 0.3) & (v[:, 1] < D - 0.3)
        return int((inside & (v[:, 2] < -0.04)).sum())

    kept = below_floor_after(LayoutConfig(over_network=False))
    replaced = below_floor_after(LayoutConfig())
    assert kept > 50 and replaced < 0.2 * kept, (kept, replaced)


def test_the_floor_under_space_low_cameras_only_looked_across_gets_no_surface():
    """A floor on the face at z = 0.2 m; the room was seen free from 0.5 m up, but over x < 1 m
    (a bed nobody saw the top of) only from 1.0 m up. Cameras 0.6 m above the floor (a ground
    robot) looked across that gap, not down into it: the floor there keeps only its solid side,
    except where the robot itself drove. Cameras 1.5 m above it (hand-held) looked down into both:
    the floor is drawn everywhere."""
    chunk = _box_chunk()
    chunk.free[10:, :, 5:] = True
    chunk.free[:10, :, 10:] = True
    layout = _floor_layout(0.2)

    def room_side(view_height, **config):
        layout.view_height = view_height
        tsdf = room_prediction(layout, chunk, LayoutConfig(min_walls=0, **config), 21)[0]
        assert torch.isfinite(tsdf[:, :, 1]).all() and bool((tsdf[:, :, 1] < 0).all()), "the solid side everywhere"
        return torch.isfinite(tsdf[:, :, 2]) & (tsdf[:, :, 2] > 0)

    robot = room_side(0.6)
    assert robot[10:].all() and not robot[:10].any()
    assert room_side(1.5).all()
    assert room_side(None).all(), "no camera heights: no check"
    assert room_side(0.6, floor_view_clearance=0.0).all(), "the check off"
    # the robot drove along x = 0.55 m: nothing stands on the floor it drove over
    layout.path = np.stack([np.full(20, 0.55), np.arange(0.05, 2.0, VOXEL)], axis=1)
    driven = room_side(0.6)
    assert driven[10:].all() and driven[4:7].all() and not driven[:3].any() and not driven[8:10].any()


def test_a_wall_seen_only_low_is_drawn_up_to_the_top_of_the_room_where_nothing_stands_in_front():
    """A wall on x = 0.5 m seen only up to 0.8 m (a ground robot's camera), over 0.5 <= y < 1.5 m;
    the room in front of it seen free below 0.9 m. Above what was seen the wall goes on, drawn on
    both sides up to the top of the room, in the columns where it was seen; not where a shelf seen
    in front of it (0.5 <= y < 0.8 m, 1.2-1.4 m up) stands, nor where the cameras saw through it
    (an opening over 1.2 <= y < 1.5 m from 1.0 m up: the wall ends there), nor in columns where
    nothing of it was seen (something may stand there, hiding it), nor with the rule off."""
    chunk = _box_chunk()
    chunk.free[7:, 5:15, :9] = True
    chunk.observed[6:8, 5:8, 12:14] = True  # the shelf
    chunk.tsdf[6:8, 5:8, 12:14] = -0.05
    chunk.free[:3, 12:15, 10:] = True  # seen beyond the wall, through the opening
    ys, zs = np.meshgrid(np.arange(0.55, 1.5, VOXEL), np.arange(0.0, 0.85, VOXEL), indexing="ij")
    seen = np.stack([np.full(ys.size, 0.5), ys.ravel(), zs.ravel()], axis=1)
    wall = Plane("wall", np.array([1.0, 0.0, 0.0]), 0.5, 1.0, label=1, inliers=seen)
    layout = Layout([wall], np.zeros(3), np.full(3, 2.0))

    def room_side(**config):
        tsdf = room_prediction(layout, chunk, LayoutConfig(reach=1.0, min_walls=0, **config), 21)[0]
        assert torch.isfinite(tsdf[4]).all() and bool((tsdf[4] < 0).all()), "the solid side everywhere"
        return torch.isfinite(tsdf[5]) & (tsdf[5] > 0)

    drawn = room_side()
    assert drawn[5:15, :9].all(), "where the room was seen in front of it"
    assert drawn[8:12, 9:].all() and drawn[12:15, 9].all(), "above what was seen, up to the top of the room"
    assert not drawn[5:8, 12:14].any(), "not behind the shelf seen in front of it"
    assert drawn[5:8, 9:12].all() and drawn[5:8, 15:].all(), "above and below the shelf, the wall goes on"
    assert not drawn[12:15, 10:].any(), "not where the cameras saw through it"
    assert not drawn[:5].any() and not drawn[15:].any(), "not in columns where nothing of it was seen"
    off = room_side(walls_up=False)
    assert off[5:15, :9].all() and not off[:, 9:].any()
