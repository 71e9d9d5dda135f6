"""Preview cameras: a bird's-eye view of the whole map, outside-in views from the trajectory's side,
and a probable ceiling cut away."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ssr_ros.preview import _below, cut_height, overview_poses


def room_map(height_m: float = 2.8):
    """A stand-in map of 6 x 4 m blocks (0.4 m each) from z = 0 to ``height_m``."""
    nz = int(round(height_m / 0.4))
    coords = np.stack(np.meshgrid(np.arange(15), np.arange(10), np.arange(nz), indexing="ij"), -1).reshape(-1, 3)
    return SimpleNamespace(voxel_size=0.05, block_size=8,
                           allocated_block_coords=lambda: torch.from_numpy(coords))


def test_birds_eye_sees_the_whole_footprint_and_the_others_look_in_from_outside():
    tsdf = room_map()
    cameras = np.array([[1.0, 2.0, 1.5], [1.1, 2.05, 1.5], [1.2, 2.1, 1.5]])  # a short sweep at one end
    poses = overview_poses(tsdf, 3, cameras=cameras, fov_deg=70.0, aspect=4 / 3)
    assert len(poses) == 3
    top = poses[0]
    assert top[:3, 2] @ np.array([0, 0, -1.0]) > 0.999  # looking straight down
    # every corner of the footprint projects inside the image
    focal = 0.5 * 480 / np.tan(np.radians(35.0))
    for x in (0.0, 6.0):
        for y in (0.0, 4.0):
            p = (np.array([x, y, 0.0]) - top[:3, 3]) @ top[:3, :3]
            u, v = focal * p[0] / p[2] + 239.5, focal * p[1] / p[2] + 179.5
            assert p[2] > 0 and 0 <= u < 480 and 0 <= v < 360
    centre = np.array([3.0, 2.0])
    directions = []
    for T in poses[1:]:
        eye = T[:3, 3]
        assert eye[2] > 2.8  # above the map
        assert abs(eye[0] - 3.0) > 3.0 or abs(eye[1] - 2.0) > 2.0  # outside its footprint
        horizontal = (eye[:2] - centre) / np.linalg.norm(eye[:2] - centre)
        directions.append(horizontal)
        assert T[:3, 2] @ np.array([0, 0, -1.0]) > 0.5  # looking down into it
    # from the trajectory's side first, then turned 90 degrees rather than repeating the view
    assert directions[0] @ (cameras[0, :2] - centre) / np.linalg.norm(cameras[0, :2] - centre) > 0.99
    assert abs(directions[0] @ directions[1]) < 0.01


def test_a_probable_ceiling_is_cut_away_and_a_low_map_kept_whole():
    assert cut_height(room_map(2.8)) < 2.8 - 0.3
    assert cut_height(room_map(1.6)) == 1.6
    mesh = SimpleNamespace(vertices=np.array([[0, 0, 0.1], [1, 0, 0.1], [0, 1, 0.1], [0, 0, 2.7], [1, 0, 2.7], [0, 1, 2.7]], float),
                           triangles=np.array([[0, 1, 2], [3, 4, 5]]))
    import dataclasses

    @dataclasses.dataclass
    class Mesh:
        vertices: np.ndarray
        triangles: np.ndarray

    kept = _below(Mesh(mesh.vertices, mesh.triangles), cut_height(room_map(2.8)))
    assert kept.triangles.tolist() == [[0, 1, 2]]


def test_outside_in_views_follow_a_long_trajectory():
    cameras = np.array([[1.0, 2.0, 1.5], [3.0, 3.5, 1.5], [5.0, 3.5, 1.5]])  # from one end round to the other
    poses = overview_poses(room_map(), 3, cameras=cameras)
    centre = np.array([3.0, 2.0])
    first, second = [(T[:3, 3][:2] - centre) / np.linalg.norm(T[:3, 3][:2] - centre) for T in poses[1:]]
    assert first @ np.array([-1.0, 0.0]) > 0.99  # towards the first camera
    assert second @ (np.array([2.0, 1.5]) / 2.5) > 0.99  # towards the last
