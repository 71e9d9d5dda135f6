"""The multi-room floor generator and the tour trajectory through it."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.cli.main import main
from ssr_ros.data.folders import ScanNetFolder
from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig
from ssr_ros.data.synthetic.floor import FloorConfig, generate_floor, tour_trajectory
from ssr_ros.errors import ConfigError


@pytest.fixture(scope="module")
def floor():
    return generate_floor(5)


def test_default_floor_is_large_with_rooms_on_both_sides_of_a_corridor(floor):
    W, D, _ = floor.room_size
    assert W >= 20.0 and D >= 20.0
    assert floor.room_type == "floor" and len(floor.rooms) == 8
    assert {room.side for room in floor.rooms} == {-1, 1}
    for room in floor.rooms:  # every room fits inside the floor and is at least 2 m across
        assert np.all(np.asarray(room.lo) >= 0) and room.hi[0] <= W + 1e-9 and room.hi[1] <= D + 1e-9
        assert min(np.asarray(room.hi) - np.asarray(room.lo)) >= 1.8
    # furniture comes in, and nothing but the shell and walls sits in the corridor
    names = {obj.name for obj in floor.objects}
    assert "wall" in names and "door" in names and len(floor.objects) > 30
    assert generate_floor(5).boxes.centers.tobytes() == floor.boxes.centers.tobytes()  # deterministic


def test_doors_are_open_and_walls_closed(floor):
    for room in floor.rooms:
        door_x, wall_y = room.door
        through = np.array([[door_x, wall_y, 1.0]])
        beside = np.array([[room.lo[0] + 0.05 if abs(door_x - room.lo[0]) > 1.5 else room.hi[0] - 0.05, wall_y, 1.0]])
        assert floor.sdf(through)[0][0] > 0.2  # the opening: free space, away from every surface
        assert floor.sdf(beside)[0][0] <= 0.0 + 1e-6 or floor.sdf(beside)[0][0] < 0.06  # inside / on the wall


def test_tour_enters_every_room_and_returns_to_the_start(floor):
    poses, stamps = tour_trajectory(floor, num_frames=600, frame_rate=10.0, start_stamp_ns=0)
    positions = poses[:, :3, 3]
    for room in floor.rooms:
        lo, hi = np.asarray(room.lo), np.asarray(room.hi)
        inside = np.all((positions[:, :2] > lo + 0.3) & (positions[:, :2] < hi - 0.3), axis=1)
        assert inside.any(), f"the tour never enters the {room.room_type} at {room.lo}..{room.hi}"
    assert np.linalg.norm(positions[0] - positions[-1]) < 1e-6
    assert np.all(np.diff(stamps) == 100_000_000) and np.allclose(positions[:, 2], positions[0, 2])
    # the camera stays in free space: never inside a wall or an object
    distance, _, _ = floor.sdf(positions)
    assert distance.min() > 0.1


def test_small_floor_renders_and_ssr_synth_writes_it(tmp_path):
    config = FloorConfig(width=8.0, depth=7.0, rooms_per_side=2, furniture=False)
    scene = generate_floor(1, config)
    sequence = SyntheticSequence(scene, SequenceConfig(width=32, height=24, trajectory=TrajectoryConfig(kind="tour", num_frames=4)))
    for view in sequence.views():  # a closed floor: every ray hits a surface
        assert (view.rendering.depth > 0).all() and (view.frame.depth > 0).mean() > 0.3
    out = tmp_path / "floor"
    assert main(["synth", "--layout", "floor", "--seed", "2", "--out", str(out), "--frames", "3", "--width", "32",
                 "--height", "24", "--format", "folder", "--no-gt"]) == 0
    assert len(list(ScanNetFolder(out / "folder"))) == 3


def test_floor_config_refuses_rooms_that_do_not_fit():
    with pytest.raises(ConfigError, match="rooms per side"):
        FloorConfig(width=10.0, rooms_per_side=6).validate()
    with pytest.raises(ConfigError, match="tour"):
        from ssr_ros.data.synthetic import generate_scene

        tour_trajectory(generate_scene(0), 10, 10.0, 0)


def test_large_floor_has_twenty_rooms_and_the_tour_visits_them_all():
    from ssr_ros.data.synthetic.floor import FLOOR_SIZES

    large = generate_floor(1, FloorConfig(**FLOOR_SIZES["large"]))
    W, D, _ = large.room_size
    assert W >= 20.0 and D >= 20.0 and W * D >= 2.5 * 24.0 * 20.0  # several times the default floor's area
    assert len(large.rooms) == 20 and {room.side for room in large.rooms} == {-1, 1}
    poses, _ = tour_trajectory(large, num_frames=2000, frame_rate=10.0, start_stamp_ns=0)
    positions = poses[:, :3, 3]
    for room in large.rooms:
        inside = np.all((positions[:, :2] > np.asarray(room.lo) + 0.3) & (positions[:, :2] < np.asarray(room.hi) - 0.3), axis=1)
        assert inside.any(), f"the tour never enters the room at {room.lo}..{room.hi}"
    assert large.sdf(positions)[0].min() > 0.1
