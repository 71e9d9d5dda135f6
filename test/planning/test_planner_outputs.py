"""Planner outputs from a fused analytic room: floor, tiered grids, distance fields, Nav2 files."""

import numpy as np
import pytest

from room import BOX_HI, BOX_LO, FLOOR_Z, VOXEL, WALL_CONFIDENCE, WALL_X, fused_room
from ssr_ros.errors import ConfigError
from ssr_ros.planning import (
    PlanningConfig,
    estimate_floor,
    planning_outputs,
    planning_volume,
    read_nav2_map,
    write_nav2_map,
)
from ssr_ros.planning.outputs import write_esdf, write_nav2_maps


@pytest.fixture(scope="module")
def room():
    return fused_room()


@pytest.fixture(scope="module")
def outputs(room):
    return planning_outputs(room, PlanningConfig())


def cell_value(grid, x, y):
    col = int(np.floor((x - grid.origin[0]) / grid.resolution))
    row = int(np.floor((y - grid.origin[1]) / grid.resolution))
    return grid.data[row, col]


def cells_where(grid, predicate):
    rows, cols = np.nonzero(predicate(grid.data))
    return grid.origin[0] + (cols + 0.5) * grid.resolution, grid.origin[1] + (rows + 0.5) * grid.resolution


def test_the_floor_is_estimated_below_voxel_size(room):
    floor = estimate_floor(planning_volume(room), PlanningConfig())
    assert floor.source == "map"
    assert floor.height == pytest.approx(FLOOR_Z, abs=0.015)
    assert floor.area_m2 > 1.0


def test_a_fixed_floor_and_the_fallback_use_floor_height(room):
    volume = planning_volume(room)
    assert estimate_floor(volume, PlanningConfig(floor="fixed", floor_height=0.7)).height == 0.7
    fallback = estimate_floor(volume, PlanningConfig(floor_min_area=1000.0, floor_height=-1.0))
    assert (fallback.source, fallback.height) == ("fallback", -1.0)


def test_the_measured_grid_holds_the_box_and_not_the_floor_or_predictions(outputs):
    grid = outputs.occupancy
    assert cell_value(grid, 1.05, 0.0) == 100  # the box's near face
    assert cell_value(grid, 0.5, 0.0) == 0  # floor in front of it: free
    x, y = cells_where(grid, lambda d: d == 100)
    inside = (x > BOX_LO[0] - 2 * VOXEL) & (x < BOX_HI[0] + 2 * VOXEL) & (np.abs(y) < BOX_HI[1] + 2 * VOXEL)
    assert inside.all(), "only the box is an obstacle"
    wall_x, _ = cells_where(outputs.cost, lambda d: (d > 0) & (d < 100))
    assert len(wall_x) and np.all(np.abs(wall_x - WALL_X) < 2 * VOXEL)
    assert cell_value(grid, WALL_X, 0.0) == -1  # predicted only: unknown in the measured grid


def test_the_cost_grid_weights_predictions_by_confidence(outputs):
    assert cell_value(outputs.cost, WALL_X, 0.0) == round(WALL_CONFIDENCE * 100)
    assert cell_value(outputs.cost, 1.05, 0.0) == 100
    assert cell_value(outputs.cost, 0.5, 0.0) == 0


def test_include_predicted_lets_confident_predictions_mark_the_main_grid(room):
    confident = planning_outputs(room, PlanningConfig(include_predicted=True, min_confidence=0.5), with_3d=False)
    assert cell_value(confident.occupancy, WALL_X, 0.0) == 100
    too_unsure = planning_outputs(room, PlanningConfig(include_predicted=True, min_confidence=0.7), with_3d=False)
    assert cell_value(too_unsure.occupancy, WALL_X, 0.0) == -1


def test_the_band_is_relative_to_the_floor():
    lifted = planning_outputs(fused_room(lift=1.0, predicted_wall=False), PlanningConfig(), with_3d=False)
    level = planning_outputs(fused_room(predicted_wall=False), PlanningConfig(), with_3d=False)
    assert lifted.floor.height == pytest.approx(level.floor.height + 1.0, abs=0.02)
    assert (lifted.occupancy.data == 100).sum() == pytest.approx((level.occupancy.data == 100).sum(), rel=0.1)
    assert cell_value(lifted.occupancy, 0.5, 0.0) == 0  # the lifted floor is not an obstacle


def test_the_2d_distance_field_measures_to_the_box(outputs):
    field = outputs.esdf_2d
    for x in (0.3, 0.5, 0.7):  # in front of the box's face at x = 1.0, centre line
        col = int((x - field.origin[0]) / field.resolution)
        row = int((0.0 - field.origin[1]) / field.resolution)
        centre_x = field.origin[0] + (col + 0.5) * field.resolution
        # nearest obstacle cell centre lies within one cell of the face
        assert field.distance[row, col] == pytest.approx(BOX_LO[0] - centre_x, abs=1.5 * VOXEL)
    assert field.distance.min() < 0  # inside the box
    assert field.distance.max() <= PlanningConfig().esdf_max_distance


def test_predictions_shorten_distances_only_in_the_fields_with_predictions(room):
    out = planning_outputs(room, PlanningConfig(min_confidence=0.5))
    near_wall = out.esdf_3d.centres(np.ones(out.esdf_3d.distance.shape, bool))
    index = np.argmin(np.linalg.norm(near_wall - np.array([WALL_X + 0.3, 0.0, FLOOR_Z + 0.5]), axis=1))
    ijk = np.unravel_index(index, out.esdf_3d.distance.shape)
    assert out.esdf_3d_predicted.distance[ijk] == pytest.approx(0.3, abs=1.5 * VOXEL)
    assert out.esdf_3d.distance[ijk] > 0.4  # the floor is 0.5 m below, the wall is not measured
    row = int((0.0 - out.esdf_2d.origin[1]) / VOXEL)
    col = int((WALL_X + 0.3 - out.esdf_2d.origin[0]) / VOXEL)
    assert out.esdf_2d_predicted.distance[row, col] < out.esdf_2d.distance[row, col]


def test_the_3d_field_measures_height_above_the_floor(outputs):
    field = outputs.esdf_3d
    for height in (0.2, 0.4):
        point = np.array([0.3, 0.0, FLOOR_Z + height])
        ijk = tuple(np.floor((point - field.origin) / VOXEL).astype(int))
        centre_z = field.origin[2] + (ijk[2] + 0.5) * VOXEL
        assert field.distance[ijk] == pytest.approx(centre_z - FLOOR_Z, abs=1.5 * VOXEL)


@pytest.mark.parametrize("mode", ["trinary", "raw"])
def test_nav2_map_files_round_trip_as_map_server_reads_them(outputs, tmp_path, mode):
    grid = outputs.occupancy if mode == "trinary" else outputs.cost
    image, meta = write_nav2_map(grid, tmp_path, "m", mode)
    header = image.read_bytes()[:20]
    assert header.startswith(b"P5\n")
    loaded = read_nav2_map(meta)
    np.testing.assert_array_equal(loaded.data, grid.data)
    assert loaded.origin == pytest.approx(grid.origin) and loaded.resolution == pytest.approx(grid.resolution)


def test_trinary_pixels_are_those_of_nav2s_map_saver():
    from ssr_ros.planning.nav2_map import grid_to_pixels

    data = np.array([[100, 0], [-1, 0]], dtype=np.int8)  # row 0 is y = 0, the image's bottom row
    np.testing.assert_array_equal(grid_to_pixels(data, "trinary"), [[205, 254], [0, 254]])


def test_saved_files_hold_both_tiers_and_both_fields(outputs, tmp_path):
    files = write_nav2_maps(outputs, tmp_path) + [write_esdf(outputs, tmp_path / "esdf.npz")]
    assert sorted(f.name for f in files) == ["esdf.npz", "occupancy.pgm", "occupancy.yaml",
                                             "occupancy_predicted.pgm", "occupancy_predicted.yaml"]
    with np.load(tmp_path / "esdf.npz") as saved:
        np.testing.assert_array_equal(saved["esdf3d"], outputs.esdf_3d.distance)
        np.testing.assert_array_equal(saved["esdf2d_predicted"], outputs.esdf_2d_predicted.distance)
        assert float(saved["floor_height"]) == pytest.approx(outputs.floor.height)


def test_band_limits_are_checked():
    with pytest.raises(ConfigError, match="max_height"):
        PlanningConfig(min_height=1.0, max_height=0.5).validate()


def test_ssr_export_writes_nav2_files_of_a_saved_map(room, tmp_path, capsys):
    from ssr_ros.cli.main import main

    room.save(tmp_path / "map.ssrmap")
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "nav2"), "--formats", "nav2"]) == 0
    grid = read_nav2_map(tmp_path / "nav2" / "occupancy.yaml")
    assert grid.data[int((0.0 - grid.origin[1]) / VOXEL), int((1.05 - grid.origin[0]) / VOXEL)] == 100
    cost = read_nav2_map(tmp_path / "nav2" / "occupancy_predicted.yaml")
    assert ((cost.data > 0) & (cost.data < 100)).any()
    assert "floor at z = 0.3" in capsys.readouterr().out


def test_every_known_voxel_lands_in_its_own_cell_of_the_volume(room):
    from ssr_ros.map.voxel_export import known_voxel_states

    volume = planning_volume(room)
    voxels = known_voxel_states(room)
    ijk = voxels["voxel"] - voxels["voxel"].min(axis=0)
    i, j, k = ijk.T
    tsdf = voxels["tsdf"].astype(np.float32)
    predicted = voxels["predicted"].astype(bool)
    occupied = (tsdf > -VOXEL) & (tsdf <= 0.5 * VOXEL)
    free = tsdf > 0.5 * VOXEL
    assert predicted.any() and (~predicted).any()
    np.testing.assert_array_equal(volume.measured_occupied[i, j, k], ~predicted & occupied)
    np.testing.assert_array_equal(volume.measured_free[i, j, k], ~predicted & free)
    np.testing.assert_array_equal(volume.predicted_occupied[i, j, k], predicted & occupied)
    np.testing.assert_array_equal(volume.predicted_free[i, j, k], predicted & free)
    np.testing.assert_array_equal(volume.predicted_confidence[i, j, k], np.where(predicted, voxels["confidence"], 0))
    np.testing.assert_array_equal(volume.surface_offset[i, j, k][~predicted], tsdf[~predicted])
    assert np.isnan(volume.surface_offset[i, j, k][predicted]).all()
    # nothing outside the known voxels
    assert volume.measured_occupied.sum() == (~predicted & occupied).sum()
    assert volume.predicted_free.sum() == (predicted & free).sum()
    assert np.isnan(volume.surface_offset).sum() == volume.surface_offset.size - (~predicted).sum()


@pytest.mark.parametrize("include_predicted", [False, True])
def test_outputs_asked_for_alone_equal_those_of_all_and_the_rest_are_not_computed(room, include_predicted):
    from ssr_ros.planning.outputs import FIELD_NAMES, GRID_NAMES, outputs_of_volume

    config = PlanningConfig(include_predicted=include_predicted)
    volume = planning_volume(room)
    everything = outputs_of_volume(volume, config, with_3d=True)
    for name in GRID_NAMES + FIELD_NAMES:
        alone = outputs_of_volume(volume, config, wanted=[name])
        assert alone.floor == everything.floor and alone.band == everything.band
        for other in GRID_NAMES + FIELD_NAMES:
            value, reference = getattr(alone, other), getattr(everything, other)
            if other != name:
                assert value is None, other
                continue
            for field in ("data", "distance", "origin"):
                if hasattr(reference, field):
                    np.testing.assert_array_equal(getattr(value, field), getattr(reference, field))
    with pytest.raises(ValueError, match="unknown planner outputs"):
        outputs_of_volume(volume, config, wanted=["esdf"])
