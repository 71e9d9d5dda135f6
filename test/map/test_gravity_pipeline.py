"""Mapping a recording whose world frame is not z-up: the pipeline maps in a gravity-aligned frame.

A generated (z-up) room is recorded twice: as is, and with every pose rotated by an arbitrary
rotation R (the world frame of a camera-frame dataset). With ``gravity.mode: estimate`` the
second map must be the first one, up to a quarter turn about z, and its saved mesh must lie in
the rotated recording's frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plyfile import PlyData
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ssr_ros.geometry import transform_points
from ssr_ros.geometry.gravity import GravityConfig
from ssr_ros.map import TSDFConfig
from ssr_ros.pipeline import MappingPipeline, PipelineConfig

VOXEL = 0.05


@pytest.fixture(scope="module")
def room_frames():
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    scene = generate_scene(3)
    config = SequenceConfig(width=160, height=120, trajectory=TrajectoryConfig(num_frames=20))
    return [view.frame for view in SyntheticSequence(scene, config, seed=3).views()]


def rotated(frames, R: np.ndarray):
    return [dataclasses.replace(frame, T_world_cam=R @ frame.T_world_cam) for frame in frames]


def fuse(frames, gravity: GravityConfig) -> MappingPipeline:
    pipeline = MappingPipeline(PipelineConfig(device="cpu", map=TSDFConfig(voxel_size=VOXEL), gravity=gravity), model=None)
    for frame in frames:
        pipeline.integrate(frame)
    pipeline.settle_gravity()
    return pipeline


def quarter_turn_residual_deg(M: np.ndarray) -> float:
    """Angle between rotation M and the nearest multiple of 90 degrees about z."""
    turns = np.round(np.degrees(np.arctan2(M[1, 0], M[0, 0])) / 90.0)
    residual = Rotation.from_matrix(M[:3, :3]).inv() * Rotation.from_euler("z", 90.0 * turns, degrees=True)
    return float(np.degrees(residual.magnitude()))


def agreement(a: np.ndarray, b: np.ndarray, tolerance: float) -> float:
    """Fraction of the points of ``a`` within ``tolerance`` of a point of ``b``."""
    distance, _ = cKDTree(b).query(a)
    return float((distance <= tolerance).mean())


@pytest.mark.slow
@pytest.mark.parametrize("align_walls", [True, False])
def test_a_rotated_recording_maps_like_the_upright_one(room_frames, align_walls, tmp_path):
    R = np.eye(4)
    R[:3, :3] = Rotation.from_euler("xyz", [70.0, -30.0, 25.0], degrees=True).as_matrix()
    upright = fuse(room_frames, GravityConfig())
    tilted = fuse(rotated(room_frames, R), GravityConfig(mode="estimate", estimate_frames=10, align_walls=align_walls))

    assert tilted.gravity.source == "floor" and tilted.frames_integrated == len(room_frames)
    M = tilted.T_aligned_world @ R  # upright room -> the tilted map's frame: a turn about z
    assert np.degrees(np.arccos(np.clip(M[2, 2], -1, 1))) < 1.0
    if align_walls:  # the generated walls are along x and y: the turn is a multiple of 90 degrees
        assert quarter_turn_residual_deg(M) < 1.0

    # the meshes agree once the tilted one is taken back into the upright room's frame
    reference = upright.full_mesh().vertices
    back = transform_points(np.linalg.inv(M), tilted.full_mesh().vertices)
    assert agreement(back, reference, VOXEL) >= 0.95
    assert agreement(reference, back, VOXEL) >= 0.95

    # saved PLYs are in the recording's (rotated) frame, the map file in the aligned one
    tilted.save(tmp_path, ["mesh", "voxels"])
    saved = np.stack([PlyData.read(tmp_path / "mesh.ply")["vertex"][k] for k in "xyz"], axis=1)
    assert agreement(saved, transform_points(R, reference), VOXEL) >= 0.95
    voxels = np.stack([PlyData.read(tmp_path / "voxels.ply")["vertex"][k] for k in "xyz"], axis=1)
    assert agreement(transform_points(np.linalg.inv(R), voxels), reference, 2 * VOXEL) >= 0.95


def test_frames_are_held_until_the_estimate_then_fused(room_frames):
    pipeline = MappingPipeline(PipelineConfig(device="cpu", map=TSDFConfig(voxel_size=0.1),
                                              gravity=GravityConfig(mode="estimate", estimate_frames=4)), model=None)
    for frame in room_frames[:3]:
        assert pipeline.integrate(frame) == {"held": 1}
    assert pipeline.T_aligned_world is None and pipeline.frames_integrated == 0 and pipeline.map.num_blocks == 0
    assert pipeline.stats()["gravity_held_frames"] == 3
    pipeline.integrate(room_frames[3])
    assert pipeline.frames_integrated == 4 and pipeline.held_frames == 0
    # the generated room is z-up already: the estimate is a turn about z at most
    assert pipeline.T_aligned_world[2, 2] > np.cos(np.radians(1.0))
    assert np.allclose(pipeline.world_up(), [0, 0, 1], atol=0.3)
    pipeline.integrate(room_frames[4])
    assert pipeline.frames_integrated == 5


def test_frames_fused_when_the_estimate_is_settled_count_in_the_fusion_time(room_frames):
    pipeline = MappingPipeline(PipelineConfig(device="cpu", map=TSDFConfig(voxel_size=0.1),
                                              gravity=GravityConfig(mode="estimate", estimate_frames=30)), model=None)
    for frame in room_frames[:3]:
        pipeline.integrate(frame)
    held_time = pipeline.timers["integrate"].total_s
    pipeline.settle_gravity()
    assert pipeline.frames_integrated == 3
    # the fusion of the held frames is timed, so frames / time is a real fusion rate
    assert pipeline.timers["integrate"].total_s > held_time


def test_z_up_maps_in_the_pose_frame_without_holding_frames(room_frames):
    pipeline = MappingPipeline(PipelineConfig(device="cpu", map=TSDFConfig(voxel_size=0.1)), model=None)
    assert np.array_equal(pipeline.T_aligned_world, np.eye(4)) and pipeline.T_world_map is None
    assert "blocks_integrated" in pipeline.integrate(room_frames[0])
    assert pipeline.frames_integrated == 1


@pytest.mark.shared_data
@pytest.mark.slow
def test_up_of_a_real_kitchen_matches_the_datasets_gravity(shared_data):
    """7-Scenes RedKitchen: the world frame is a camera's; the dataset ships its gravity direction."""
    from ssr_ros.data.folders import SevenScenesFolder
    from ssr_ros.geometry.gravity import angle_deg, estimate_alignment

    folder = shared_data / "7scenes_tsdf_fusion" / "data"
    if not (folder / "gravity-direction.txt").exists():
        pytest.skip(f"{folder} has no gravity-direction.txt")
    reader = SevenScenesFolder(folder)
    frames = [reader.frame(index) for index in range(0, 150, 5)]
    estimate = estimate_alignment(frames, GravityConfig(mode="estimate"))
    up = -np.loadtxt(folder / "gravity-direction.txt")
    assert estimate.source == "floor"
    assert angle_deg(estimate.up, up) < 3.0
