"""Continuous pose refinement against an exact shape: it must undo a known yaw and offset error."""

from __future__ import annotations

import math

import numpy as np
import torch

from ssr_ros.data.synthetic.furniture import TEMPLATES
from ssr_ros.objects.alignment import AlignmentConfig, refine_pose, refine_poses, sample_sdf
from ssr_ros.objects.observation import object_sdf, simulate_observation, template_boxes
from ssr_ros.objects.shape_classes import class_size_range, shape_grid


def _yaw(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_sample_sdf_matches_the_exact_sdf_inside_the_grid_and_is_empty_outside():
    rng = np.random.default_rng(0)
    template = TEMPLATES["table"](rng)
    grid = shape_grid(1.8, 32)
    sdf = object_sdf(grid.centers().reshape(-1, 3), template_boxes(template)).reshape(32, 32, 32)
    q = torch.tensor([[0.0, 0.0, 0.3], [0.2, 0.1, 0.74], [5.0, 0.0, 0.0]], dtype=torch.float32)
    d = sample_sdf(sdf, grid, q)
    exact = object_sdf(q[:2].numpy(), template_boxes(template))
    assert torch.allclose(d[:2], exact, atol=grid.cell)
    assert d[2] == sdf.max()


def _chair_seen_partially():
    """A chair turned by 0.8 rad and placed at (2, 1): its yaw, position, observed surface and
    seen-free points, the shape grid and the exact SDF on it (object frame, anchored at its origin)."""
    rng = np.random.default_rng(4)
    template = TEMPLATES["chair"](rng)
    surface_obj, free_obj = simulate_observation(template, rng)
    theta, T = 0.8, np.array([2.0, 1.0, 0.0])
    grid = shape_grid(1.05, 32)
    sdf = object_sdf(grid.centers().reshape(-1, 3), template_boxes(template)).reshape(32, 32, 32)
    return theta, T, surface_obj @ _yaw(theta).T + T, free_obj @ _yaw(theta).T + T, grid, sdf


def test_refinement_recovers_yaw_and_position_of_a_chair_seen_partially():
    theta, T, surface, free, grid, sdf = _chair_seen_partially()
    start_yaw, start_anchor = theta + math.radians(12), T + np.array([0.06, -0.05, 0.0])
    config = AlignmentConfig(refine_steps=150)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    yaw, offset, scale, cost = refine_pose(sdf, grid, start_yaw, start_anchor, f(surface), f(free), f(np.zeros((0, 3))), 0.05, config)
    assert abs(math.degrees(math.remainder(yaw - theta, 2 * math.pi))) < 3.0
    # within one 5 cm voxel: the voxel-snapped view fits a slightly rescaled, shifted chair as well
    assert np.linalg.norm((start_anchor + offset - T)[:2]) < 0.05
    assert np.all(np.abs(scale - 1) < 0.1)
    # and the starting pose was clearly worse
    _, _, _, start_cost = refine_pose(sdf, grid, start_yaw, start_anchor, f(surface), f(free), f(np.zeros((0, 3))), 0.05,
                                      AlignmentConfig(refine_steps=0))
    assert cost < 0.7 * start_cost


def test_footprint_axis_of_a_turned_rectangle_and_snapping_to_it():
    from ssr_ros.objects.alignment import footprint_yaw, snap_yaw

    rng = np.random.default_rng(2)
    # an L of two seen sides of a 0.8 x 0.5 box (a partial view), turned by 1.9 rad
    side_a = np.stack([rng.uniform(-0.4, 0.4, 200), np.full(200, 0.25), rng.uniform(0, 0.7, 200)], axis=1)
    side_b = np.stack([np.full(100, 0.4), rng.uniform(-0.25, 0.25, 100), rng.uniform(0, 0.7, 100)], axis=1)
    pts = np.concatenate([side_a, side_b]) @ _yaw(1.9).T + [3.0, 1.0, 0.0]
    axis = footprint_yaw(pts)
    assert abs(math.degrees(math.remainder(axis - 1.9, math.pi / 2))) < 1.0
    # a head estimate 30 degrees off snaps onto the true yaw; one 60 degrees off onto a quarter turn
    assert abs(math.remainder(snap_yaw(1.9 + math.radians(30), axis) - 1.9, 2 * math.pi)) < math.radians(1)
    assert abs(abs(math.remainder(snap_yaw(1.9 + math.radians(60), axis) - 1.9, 2 * math.pi)) - math.pi / 2) < math.radians(1)


def test_the_refinement_turns_the_object_at_most_max_yaw_change_from_its_candidate():
    theta, T, surface, free, grid, sdf = _chair_seen_partially()
    start_yaw = theta + math.radians(20)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    turned = {}
    for limit in (0.0, 5.0):
        config = AlignmentConfig(refine_steps=150, max_yaw_change=limit)
        yaw, _, _, _ = refine_pose(sdf, grid, start_yaw, T, f(surface), f(free), f(np.zeros((0, 3))), 0.05, config)
        turned[limit] = abs(math.degrees(yaw - start_yaw))
    assert turned[0.0] > 10.0, "without a limit the fit turns the chair back towards its true yaw"
    assert turned[5.0] <= 5.0 + 1e-3


def test_a_footprint_that_says_little_takes_the_axis_of_the_wall_it_touches():
    from ssr_ros.objects.alignment import footprint_cost, snap_to_wall, wall_axis

    rng = np.random.default_rng(3)
    # the observed top of a cluttered desk: a near-round blob of points, no clear axis of its own
    r, phi = 0.35 * np.sqrt(rng.uniform(0, 1, 400)), rng.uniform(0, 2 * np.pi, 400)
    blob = np.stack([1.0 + r * np.cos(phi), 0.5 + r * np.sin(phi), np.full(400, 0.75)], axis=1)
    # the wall y = 0 it stands against (0.15 m from the blob), and a far wall x = 4 m
    wall = np.stack([rng.uniform(0.0, 2.0, 300), np.zeros(300), rng.uniform(0.0, 2.0, 300)], axis=1)
    far = np.stack([np.full(300, 4.0), rng.uniform(0.0, 3.0, 300), rng.uniform(0.0, 2.0, 300)], axis=1)
    axis = wall_axis(blob, np.concatenate([wall, far]), 0.3)
    assert axis is not None and abs(math.remainder(axis, math.pi / 2)) < math.radians(1.0)
    assert wall_axis(blob, far, 0.3) is None, "a wall out of reach is not the one the object touches"
    own = math.radians(40.0)
    assert abs(footprint_cost(blob, np.array([own]))[0] - footprint_cost(blob, np.array([0.0]))[0]) < 0.025
    assert snap_to_wall(blob, own, axis, 0.05, 20.0) == axis, "40 degrees off the wall, the blob fits both: the wall's"
    assert snap_to_wall(blob, own, axis, 0.05, 0.0) == own, "0: off"
    assert snap_to_wall(blob, math.radians(8.0), axis, 0.05, 20.0) == math.radians(8.0), "small disagreements stay"
    # a long box seen clearly along 40 degrees keeps its own axis even next to the wall
    t = rng.uniform(-0.8, 0.8, 400)
    box = np.stack([1.0 + t * math.cos(own), 0.8 + t * math.sin(own), np.full(400, 0.5)], axis=1)
    box[:200, :2] += 0.3 * np.array([-math.sin(own), math.cos(own)])
    assert snap_to_wall(box, own, axis, 0.05, 20.0) == own


def test_a_chair_completed_without_its_legs_is_as_high_as_its_back_and_reaches_the_floor():
    """The prior's legs come out thinner than a cell (no cell centre inside them, distances just over
    zero down to the floor). The size pull must measure the chair from the floor to its back, not its
    seat and back alone (it stretched such chairs 1.5x upwards), and the shape's bottom is the floor."""
    from ssr_ros.objects.alignment import AlignedShape, standing_size
    from ssr_ros.objects.shape_classes import class_size_range

    theta, T, surface, free, grid, sdf = _chair_seen_partially()
    seat = TEMPLATES["chair"](np.random.default_rng(4)).parts[0]
    seat_bottom = seat.center[2] - seat.half[2]
    below = grid.centers()[..., 2] < seat_bottom
    legless = np.where(below, np.maximum(sdf, 0.01), sdf).astype(np.float32)  # legs: 1 cm outside, never inside
    occupied = legless < 0
    assert np.argwhere(occupied)[:, 2].min() * grid.cell + grid.lo[2] >= seat_bottom - grid.cell
    top = float(grid.lo[2] + (np.argwhere(occupied)[:, 2].max() + 1) * grid.cell)
    assert abs(standing_size(occupied, grid)[2] - top) < 1e-6

    seen = surface[surface[:, 2] > seat_bottom]  # the seat and the back; the legs hidden
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    _, _, scale, _ = refine_pose(torch.from_numpy(legless), grid, theta, T, f(seen), f(free), f(np.zeros((0, 3))), 0.05,
                                 AlignmentConfig(refine_steps=150), class_size_range("chair"))
    assert abs(scale[2] - 1.0) < 0.15, f"height scaled by {scale[2]:.2f}"

    shape = AlignedShape(grid, torch.from_numpy(legless), theta, T, np.zeros(3), np.ones(3), theta, 0.0, 0.0, 1.0)
    centre, extents, _ = shape.box()
    assert centre[2] - extents[2] / 2 > seat_bottom - grid.cell  # its occupied cells start at the seat
    assert shape.bottom() < grid.cell  # but it reaches the floor
    # and so does its box in the object list planners get
    from ssr_ros.objects.instances import Instance
    from ssr_ros.objects.refinement import _record

    inst = Instance(1, 5, "chair", np.zeros((4, 3), np.int64), np.ones(4, bool), T - 0.3, T + 0.9, 0.9)
    record = _record(inst, shape, True, 0)
    assert record.center[2] - record.extents[2] / 2 < grid.cell
    assert abs(record.center[2] + record.extents[2] / 2 - (centre[2] + extents[2] / 2)) < 1e-6


def test_candidates_refined_together_end_where_each_refined_alone_ends():
    theta, T, surface, free, grid, sdf = _chair_seen_partially()
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    starts = [(theta + 0.2, T + np.array([0.06, -0.05, 0.0])), (theta - 0.5, T), (theta + 3.0, T + 0.1)]
    shrunk = torch.where(sdf < 0, sdf + 0.02, sdf)  # a second completion of the same chair, thinner
    sdfs = [sdf, shrunk, sdf]
    config = AlignmentConfig(refine_steps=40)
    together = refine_poses(torch.stack(sdfs), grid, [y for y, _ in starts], [a for _, a in starts], f(surface), f(free),
                            f(np.zeros((0, 3))), 0.05, config, class_size_range("chair"))
    for (yaw0, anchor), shape_sdf, (yaw, offset, scale, cost) in zip(starts, sdfs, together):
        alone = refine_pose(shape_sdf, grid, yaw0, anchor, f(surface), f(free), f(np.zeros((0, 3))), 0.05, config,
                            class_size_range("chair"))
        assert abs(alone[0] - yaw) < 1e-6 and np.allclose(alone[1], offset, atol=1e-6)
        assert np.allclose(alone[2], scale, atol=1e-6) and abs(alone[3] - cost) < 1e-6
    # the three ended in different places: each moved by its own cost only
    assert len({round(t[0], 3) for t in together}) == 3
