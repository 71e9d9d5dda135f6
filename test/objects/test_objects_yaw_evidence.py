"""Front-aware yaw from the evidence, and shapes completed too small from a partial view."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from ssr_ros.data.synthetic.furniture import TEMPLATES
from ssr_ros.objects.alignment import AlignmentConfig, align_object, refine_pose, view_term, wall_term
from ssr_ros.objects.observation import object_sdf, simulate_observation
from ssr_ros.objects.shape_classes import class_size_range, shape_grid


def _yaw(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_view_term_is_zero_in_front_one_behind_and_none_out_of_range():
    centre = np.array([1.0, 1.0, 0.0])
    # at yaw 0 the front is +y
    assert view_term(centre, 0.0, np.array([[1.0, 3.0, 1.5]]), 5.0) == pytest.approx(0.0)
    assert view_term(centre, 0.0, np.array([[1.0, -1.0, 1.5]]), 5.0) == pytest.approx(1.0)
    assert view_term(centre, 0.0, np.array([[3.0, 1.0, 1.5]]), 5.0) == pytest.approx(0.5)
    # turned a quarter (front along -x), a camera at -x is in front
    assert view_term(centre, math.pi / 2, np.array([[-1.0, 1.0, 1.5]]), 5.0) == pytest.approx(0.0, abs=1e-9)
    assert view_term(centre, 0.0, np.array([[1.0, 9.0, 1.5]]), 5.0) is None


def test_wall_term_is_the_gap_behind_the_back_over_the_distance():
    centre, extents = np.array([0.0, 0.0, 0.5]), np.array([1.0, 0.4, 1.0])
    wall = np.stack(np.meshgrid(np.linspace(-1, 1, 21), [-0.3], np.linspace(0.1, 1.5, 8), indexing="ij"), -1).reshape(-1, 3)
    # back face at y = -0.2, wall at y = -0.3: gap 0.1 of 0.3
    assert wall_term(centre, 0.0, extents, 0.0, wall, 0.3) == pytest.approx(0.1 / 0.3)
    # turned around, the wall is in front: nothing behind
    assert wall_term(centre, math.pi, extents, 0.0, wall, 0.3) == 1.0
    assert wall_term(centre, 0.0, extents, 0.0, np.zeros((0, 3)), 0.3) == 1.0


@pytest.fixture(scope="module")
def prior():
    from ssr_ros.objects.weights import default_shape_prior_weights, load_shape_prior

    return load_shape_prior(default_shape_prior_weights())


@pytest.mark.parametrize("template,class_name,seed", [("chair", "chair", 1), ("cabinet", "cabinet", 3), ("toilet", "toilet", 4),
                                                      ("bookshelf", "bookshelf", 5)])
def test_object_seen_from_its_front_is_never_turned_around(prior, template, class_name, seed):
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    # standing against a wall, seen by cameras in front of it (the wall stops rays behind it)
    obj = dataclasses.replace(TEMPLATES[template](rng), placement="wall")
    surface, free = simulate_observation(obj, rng)
    lo, hi = obj.local_bounds()
    wx, wz = np.meshgrid(np.arange(lo[0] - 0.3, hi[0] + 0.3, 0.05), np.arange(0.025, hi[2] + 0.3, 0.05))
    wall = np.stack([wx.ravel(), np.full(wx.size, lo[1] - 0.025), wz.ravel()], axis=1)
    theta = float(rng.uniform(-math.pi, math.pi))
    move = lambda p: p @ _yaw(theta).T + np.array([2.0, 1.0, 0.0])  # noqa: E731
    shape = align_object(prior, class_name, move(surface), move(free), move(wall), 0.0, 0.05, AlignmentConfig(), rng,
                         viewpoints=None, walls=move(wall))
    error = math.degrees(abs(math.remainder(shape.yaw - theta, 2 * math.pi)))
    assert error < 45.0, f"{template} turned by {error:.0f} degrees"
    # every candidate was scored on the evidence; the one facing away from the viewpoints scores worst on view
    assert len(shape.candidates) in (4, 8)
    facing_away = max(shape.candidates, key=lambda c: abs(math.remainder(c["yaw"] - theta, 2 * math.pi)))
    assert facing_away["view"] == max(c["view"] for c in shape.candidates)


def _bottom_of_a_bookshelf(rng):
    obj = TEMPLATES["bookshelf"](rng)
    surface, free = simulate_observation(obj, rng)
    return obj, surface[surface[:, 2] < 0.5], free[free[:, 2] < 0.5]


def test_shape_completed_too_small_grows_into_the_class_size_unless_seen_free_space_stops_it():
    """A bookshelf seen only up to 0.5 m, completed as a 0.6 m tall box: with the size term the
    refinement stretches it into the heights the class spans; free space seen above 1.2 m holds it
    back."""
    rng = np.random.default_rng(3)
    obj, surface, free = _bottom_of_a_bookshelf(rng)
    lo, hi = obj.local_bounds()
    grid = shape_grid(2.2, 32)
    low_box = {"centers": torch.tensor([[(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.3]], dtype=torch.float32),
               "half_extents": torch.tensor([[(hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, 0.3]], dtype=torch.float32),
               "rotations": torch.eye(3)[None]}
    sdf = object_sdf(grid.centers().reshape(-1, 3), low_box).reshape(32, 32, 32)
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32).reshape(-1, 3)  # noqa: E731
    size_range = tuple(np.asarray(v) for v in class_size_range("bookshelf"))
    config = AlignmentConfig(refine_steps=150, refine_yaw=False, size_weight=0.5, max_log_scale=1.2)
    _, _, plain, _ = refine_pose(sdf, grid, 0.0, np.zeros(3), f(surface), f(free), f([]), 0.05,
                                 dataclasses.replace(config, size_weight=0.0, max_log_scale=0.3))
    _, _, grown, _ = refine_pose(sdf, grid, 0.0, np.zeros(3), f(surface), f(free), f([]), 0.05, config, size_range)
    height = lambda scale: 0.6 * scale[2]  # noqa: E731
    assert height(plain) < 0.85
    assert height(grown) > 0.95 * size_range[0][2]
    # seen free from 1.2 m up over the whole footprint: the shape stops below it
    xs, ys, zs = np.meshgrid(np.arange(lo[0], hi[0], 0.05), np.arange(lo[1], hi[1], 0.05), np.arange(1.225, 2.3, 0.05))
    ceiling = np.stack([xs.ravel(), ys.ravel(), zs.ravel()], axis=1)
    _, _, capped, _ = refine_pose(sdf, grid, 0.0, np.zeros(3), f(surface), f(np.concatenate([free, ceiling])), f([]), 0.05,
                                  config, size_range)
    # (softly: the fit trades the size against the free space; the write never fills seen-free voxels)
    assert height(capped) < height(grown) - 0.3 * (height(grown) - 1.2)
