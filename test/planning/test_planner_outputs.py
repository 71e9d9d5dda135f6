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
from ssr_ros.map.surface_voxels import occupied_voxels


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
    occupied = occupied_voxels(ijk, volume.shape, tsdf, VOXEL)
    free = (tsdf > 0.5 * VOXEL) & ~occupied
    band = (tsdf > -VOXEL) & (tsdf <= 0.5 * VOXEL)
    assert (occupied & ~band).any() and not (band & ~occupied).any()  # the band and the crossings it missed
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


def _grazing_room():
    """A floor and a thin low board (a low table top, 0.30-0.34 m above the floor, too thin for
    its edges to show) seen only from 0.9 m above the floor, 1.5-3 m away: 60-75 degrees from
    their normal, where the projective TSDF steps by two to four voxels' worth per voxel."""
    from scenes import Box, Plane, frame_of, look_at, small_camera
    from ssr_ros.map import SemanticTSDF, TSDFConfig

    board = Box((2.0, -0.4, FLOOR_Z + 0.30), (2.6, 0.4, FLOOR_Z + 0.34), label=7)
    shapes = [Plane((0.0, 0.0, -1.0), -FLOOR_Z, label=2), board]
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=VOXEL, max_depth=6.0), num_classes=21)
    camera = small_camera(128, 96)
    for y in (-0.3, 0.0, 0.3):
        eye = np.array([0.0, y, FLOOR_Z + 0.9])
        tsdf_map.integrate(frame_of(shapes, camera, look_at(eye, np.array([3.0, y, FLOOR_Z]))))
    return tsdf_map


def test_a_floor_and_a_low_board_seen_at_grazing_angles_are_found():
    tsdf_map = _grazing_room()
    floor = estimate_floor(planning_volume(tsdf_map), PlanningConfig())
    assert floor.source == "map"
    assert floor.height == pytest.approx(FLOOR_Z, abs=0.01)
    grid = planning_outputs(tsdf_map, PlanningConfig()).occupancy
    # every cell of the board's middle is an obstacle, the floor in front of it free
    board = [cell_value(grid, x, y) for x in np.arange(2.075, 2.55, VOXEL) for y in np.arange(-0.175, 0.2, VOXEL)]
    assert board.count(100) == len(board)
    floor_cells = [cell_value(grid, x, y) for x in np.arange(1.275, 1.9, VOXEL) for y in np.arange(-0.175, 0.2, VOXEL)]
    assert floor_cells.count(0) == len(floor_cells)


def test_occupied_voxels_keep_the_band_and_add_the_crossing_it_missed():
    coords = np.array([[0, 0, k] for k in range(6)])
    # a floor seen at a grazing angle: the TSDF steps by 0.1 m per 5 cm voxel; the voxel behind
    # the crossing is taken, never the one measured in front of it
    stretched = np.array([-0.2, -0.15, -0.07, 0.04, 0.12, 0.2], np.float32)
    np.testing.assert_array_equal(occupied_voxels(coords, (1, 1, 6), stretched, VOXEL),
                                  [False, False, True, False, False, False])
    # seen face on, the band holds the surface and nothing is added
    straight = np.array([-0.12, -0.07, -0.02, 0.03, 0.08, 0.13], np.float32)
    np.testing.assert_array_equal(occupied_voxels(coords, (1, 1, 6), straight, VOXEL),
                                  [False, False, True, False, False, False])
    # a crossing along x is found as well as along z
    across = np.array([[k, 0, 0] for k in range(6)])
    np.testing.assert_array_equal(occupied_voxels(across, (6, 1, 1), stretched[::-1].copy(), VOXEL),
                                  [False, False, False, True, False, False])
    # no crossing with an unknown neighbour (a gap in the coordinates)
    np.testing.assert_array_equal(occupied_voxels(coords[[2, 4]], (1, 1, 6), stretched[[2, 4]], VOXEL), [False, False])


def test_the_voxel_outputs_and_planning_share_one_surface_rule():
    from ssr_ros.map.voxel_export import select_voxels

    tsdf_map = _grazing_room()
    volume = planning_volume(tsdf_map)
    surface = select_voxels(tsdf_map, "surface")
    voxels = np.floor(surface["points"] / VOXEL + 1e-3).astype(np.int64) - np.round(volume.origin / VOXEL).astype(np.int64)
    listed = np.zeros(volume.shape, bool)
    listed[tuple(voxels.T)] = True
    np.testing.assert_array_equal(listed, volume.measured_occupied)
    # the board's top, seen at 60-75 degrees, is among the surface voxels
    on_board = (np.abs(surface["points"][:, 2] - (FLOOR_Z + 0.325)) < 0.05) & (surface["points"][:, 0] > 2.05) & (surface["points"][:, 0] < 2.55)
    assert on_board.sum() >= 100
