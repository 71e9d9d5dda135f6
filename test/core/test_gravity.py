"""Gravity estimation: up from camera poses and the floor, wall yaw, the aligning rotation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, InvalidInput
from ssr_ros.geometry import look_at
from ssr_ros.geometry.gravity import (
    GravityConfig,
    angle_deg,
    estimate_alignment,
    estimate_up,
    fit_floor_plane,
    gravity_alignment,
    mean_camera_up,
    wall_yaw,
)


def upright_cameras(rng: np.random.Generator, count: int = 20, pitch_deg=(-30.0, 5.0), roll_sigma_deg: float = 5.0):
    """Hand-held cameras in a z-up room: any heading, pitched mostly down, slightly rolled."""
    poses = []
    for _ in range(count):
        heading, pitch = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(*pitch_deg))
        position = np.array([rng.uniform(0.5, 3.5), rng.uniform(0.5, 2.5), 1.4 + rng.normal(0, 0.1)])
        direction = np.array([np.cos(heading) * np.cos(pitch), np.sin(heading) * np.cos(pitch), np.sin(pitch)])
        poses.append(look_at(position, position + direction, roll=np.radians(rng.normal(0, roll_sigma_deg))))
    return np.array(poses)


def room_points(rng: np.random.Generator, n: int = 6000):
    """Points and normals of a z-up room: a 4 x 3 m floor, two walls, a table top and a ceiling."""
    def patch(origin, u, v, normal, count):
        a, b = rng.uniform(0, 1, (2, count))
        points = origin + a[:, None] * u + b[:, None] * v + rng.normal(0, 0.005, (count, 1)) * normal
        return points, np.repeat(np.asarray(normal, float)[None], count, axis=0)

    parts = [
        patch(np.zeros(3), [4.0, 0, 0], [0, 3.0, 0], [0, 0, 1.0], n),  # floor
        patch(np.zeros(3), [4.0, 0, 0], [0, 0, 2.5], [0, 1.0, 0], n),  # wall y = 0
        patch(np.zeros(3), [0, 3.0, 0], [0, 0, 2.5], [1.0, 0, 0], n),  # wall x = 0
        patch(np.array([1.5, 1.0, 0.75]), [1.0, 0, 0], [0, 0.8, 0], [0, 0, 1.0], n // 10),  # table
    ]
    return np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts])


def rotate(R: np.ndarray, poses: np.ndarray | None = None, points: np.ndarray | None = None):
    T = np.eye(4)
    T[:3, :3] = R
    return (None if poses is None else T @ poses), (None if points is None else points @ R.T)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_up_recovers_a_rotated_world_up_within_two_degrees(seed):
    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=seed).as_matrix()
    points, normals = room_points(rng)
    poses, points = rotate(R, upright_cameras(rng), points)
    true_up = R @ np.array([0.0, 0.0, 1.0])

    estimate = estimate_up(poses, points, normals @ R.T)
    assert estimate.source == "floor"
    assert angle_deg(estimate.up, true_up) < 2.0
    # the cameras alone are biased by their downward pitch; the floor is what makes it exact
    assert angle_deg(estimate.camera_up, true_up) < 30.0
    # without normals the RANSAC still finds the floor
    assert angle_deg(estimate_up(poses, points).up, true_up) < 2.0


def test_cameras_alone_give_up_when_pitch_is_symmetric():
    rng = np.random.default_rng(3)
    poses = upright_cameras(rng, count=200, pitch_deg=(-15.0, 15.0))
    estimate = estimate_up(poses)
    assert estimate.source == "cameras" and estimate.floor is None
    assert angle_deg(estimate.up, [0, 0, 1]) < 3.0


def test_the_floor_is_below_the_cameras_and_near_their_up():
    """A bigger ceiling above the cameras and a bigger wall are both refused."""
    rng = np.random.default_rng(4)
    poses = upright_cameras(rng)
    points, _ = room_points(rng)
    a, b = rng.uniform(0, 1, (2, 20000))
    ceiling = np.stack([4 * a, 3 * b, np.full_like(a, 2.5)], axis=1)
    floor = fit_floor_plane(np.concatenate([points, ceiling]), poses[:, :3, 3], np.array([0.0, 0.0, 1.0]))
    assert floor is not None and angle_deg(floor.normal, [0, 0, 1]) < 1.0
    assert abs(floor.offset) < 0.02 and 1.2 < floor.camera_height < 1.6


def test_no_floor_when_only_walls_are_seen():
    rng = np.random.default_rng(5)
    poses = upright_cameras(rng)
    points, normals = room_points(rng)
    walls = np.abs(normals[:, 2]) < 0.5
    estimate = estimate_up(poses, points[walls], normals[walls])
    assert estimate.floor is None and estimate.source == "cameras"


@pytest.mark.parametrize("yaw_deg", [0.0, 17.0, -33.0, 44.0])
def test_wall_yaw_is_found_modulo_ninety_degrees(yaw_deg):
    rng = np.random.default_rng(6)
    _, normals = room_points(rng)
    R = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    clutter = rng.normal(size=(500, 3))
    normals = np.concatenate([normals @ R.T, clutter / np.linalg.norm(clutter, axis=1, keepdims=True)])
    yaw = wall_yaw(normals, [0.0, 0.0, 1.0])
    difference = (np.degrees(yaw) - yaw_deg + 45.0) % 90.0 - 45.0
    assert abs(difference) < 0.5


def test_gravity_alignment_is_a_rotation_taking_up_to_z_then_turning_by_minus_yaw():
    rng = np.random.default_rng(7)
    for up in [*rng.normal(size=(20, 3)), np.array([0, 0, -2.0]), np.array([0, 0, 3.0])]:
        yaw = float(rng.uniform(-np.pi / 4, np.pi / 4))
        T = gravity_alignment(up, yaw)
        R = T[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1.0)
        assert np.allclose(T[:3, 3], 0) and np.allclose(T[3], [0, 0, 0, 1])
        assert np.allclose(R @ (up / np.linalg.norm(up)), [0, 0, 1], atol=1e-12)
        # a horizontal direction at azimuth `yaw` in the levelled frame ends on the x axis
        level = gravity_alignment(up)[:3, :3]
        wall = level.T @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
        assert np.allclose(R @ wall, [1, 0, 0], atol=1e-12)
    assert np.allclose(gravity_alignment([0, 0, 1]), np.eye(4))


def test_a_rotated_room_is_aligned_back_up_to_a_quarter_turn_about_z():
    rng = np.random.default_rng(8)
    _, normals = room_points(rng)
    R = Rotation.from_euler("zyx", [40, 25, -60], degrees=True).as_matrix()
    up = R @ np.array([0, 0, 1.0])
    T = gravity_alignment(up, wall_yaw(normals @ R.T, up))
    M = Rotation.from_matrix(T[:3, :3] @ R)  # upright room -> aligned frame
    turns = np.round(np.degrees(np.arctan2(M.as_matrix()[1, 0], M.as_matrix()[0, 0])) / 90.0)
    residual = M.inv() * Rotation.from_euler("z", 90.0 * turns, degrees=True)
    assert np.degrees(residual.magnitude()) < 0.5


def test_degenerate_inputs_are_refused_with_a_reason():
    with pytest.raises(InvalidInput, match="no camera pose"):
        mean_camera_up(np.zeros((0, 4, 4)))
    with pytest.raises(InvalidInput, match="zero length"):
        gravity_alignment([0.0, 0.0, 0.0])
    with pytest.raises(InvalidInput, match="three finite numbers"):
        gravity_alignment([0.0, np.nan, 1.0])
    upright, upside_down = np.eye(4), np.diag([1.0, -1.0, -1.0, 1.0])
    with pytest.raises(InvalidInput, match="cancel out"):
        mean_camera_up([upright, upside_down])
    with pytest.raises(InvalidInput, match="needs frames"):
        estimate_alignment([], GravityConfig(mode="estimate"))
    with pytest.raises(ConfigError, match="gravity.up"):
        GravityConfig(mode="fixed", up=[0.0, 0.0, 0.0]).validate()
    with pytest.raises(ConfigError, match="mode='sideways'"):
        config_from_dict(GravityConfig, {"mode": "sideways"})


def test_fixed_mode_without_walls_needs_no_frames():
    estimate = estimate_alignment([], GravityConfig(mode="fixed", up=[0.0, -2.0, 0.0], align_walls=False))
    assert estimate.source == "fixed" and not estimate.is_identity
    assert np.allclose(estimate.T_aligned_world[:3, :3] @ [0, -1, 0], [0, 0, 1])
    assert estimate_alignment([], GravityConfig()).is_identity
