"""The write-back gate on analytic scenes: predictions stay inside what the cameras saw."""

import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.gating import GateSettings, dilate, enclosure_count, gate, known_ahead

VOXEL = 0.05
TRUNC = 0.15
SETTINGS = GateSettings(min_confidence=0.5, max_distance=0.5, min_enclosure=5, enclosure_radius=1.5)
CALIBRATION = Calibration(scale=8.0, bias=0.0, min_confidence=0.5, fitted_on="test")


def room(shape=(60, 60, 40)):
    """A box room seen from inside: walls at x = 10 and x = 50 (and y, z likewise), the interior
    seen free, the walls observed with a truncation band, everything outside unknown."""
    X, Y, Z = shape
    idx = torch.stack(torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij"), -1)
    lo, hi = torch.tensor([10, 10, 5]), torch.tensor([50, 50, 35])
    inside_dist = torch.minimum(idx - lo, hi - idx).amin(-1).float()  # voxels to the nearest wall, + inside
    sdf = inside_dist * VOXEL
    observed = (sdf.abs() <= TRUNC)
    free = (sdf > TRUNC)
    observed_tsdf = torch.where(observed, sdf, torch.full_like(sdf, TRUNC))
    return observed, observed_tsdf, free, sdf


HOLE = (slice(8, 13), slice(25, 31), slice(15, 21))
"""A hole in the wall x = 10 of :func:`room`: the camera never saw it."""


def room_with_a_hole():
    """:func:`room` with :data:`HOLE` unknown, a predicted TSDF that continues the wall through it
    (truncation elsewhere), and the wall's face in the hole (where the camera looks)."""
    observed, observed_tsdf, free, sdf = room()
    observed[HOLE] = False
    free[HOLE] = False
    tsdf = torch.full(observed.shape, TRUNC)
    tsdf[HOLE] = sdf[HOLE].clamp(-TRUNC, TRUNC)
    hole_surface = torch.zeros_like(observed)
    hole_surface[HOLE] = sdf[HOLE].abs() <= 0.5 * VOXEL
    return observed, observed_tsdf, free, sdf, tsdf, hole_surface


def test_known_ahead_and_enclosure_count_on_a_line():
    mask = torch.zeros(10, 1, 1, dtype=torch.bool)
    mask[7] = True
    ahead = known_ahead(mask, 0, 3)[:, 0, 0]
    assert ahead.tolist() == [False, False, False, False, True, True, True, False, False, False]
    known = torch.zeros(9, 9, 9, dtype=torch.bool)
    known[0], known[-1], known[:, 0], known[:, -1], known[:, :, 0] = True, True, True, True, True
    count = enclosure_count(known, 8)
    assert int(count[4, 4, 4]) == 5  # open only towards +z


def test_dilate_is_a_chebyshev_ball():
    mask = torch.zeros(9, 9, 9, dtype=torch.bool)
    mask[4, 4, 4] = True
    grown = dilate(mask, 2)
    assert int(grown.sum()) == 125 and grown[2, 6, 2] and not grown[1, 4, 4]


def test_surface_behind_walls_and_in_seen_free_space_is_refused_holes_are_filled():
    # The wall continued through a hole, a slab behind the wall x = 50, and a slab floating in
    # the seen-free middle of the room.
    observed, observed_tsdf, free, sdf, tsdf, hole_surface = room_with_a_hole()
    tsdf[54:56, 20:40, 10:30] = -0.02                    # behind the wall x = 50
    tsdf[30:32, 20:40, 10:30] = -0.02                    # in the seen-free middle
    result = gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, SETTINGS)
    assert hole_surface.any() and result.keep[hole_surface].all()
    assert not result.kept_surface[8].any()                  # the inside of the wall behind the hole
    assert not result.keep[54:56].any()
    assert not result.keep[30:32].any()
    assert not (result.keep & (observed | free)).any()


def test_far_from_observed_surface_and_unlikely_predictions_are_refused():
    observed, observed_tsdf, free, sdf = room()
    unknown_box = (slice(15, 45), slice(15, 45), slice(10, 30))
    free[unknown_box] = False  # a big unseen region inside the room, 5+ voxels from any wall
    tsdf = torch.full(observed.shape, TRUNC)
    tsdf[30, 22:38, 17:23] = -0.02                        # > 0.5 m from every observed surface
    tsdf[15, 20:40, 10:30] = 0.02                         # near a wall but P(occupied) < 0.5
    result = gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, SETTINGS)
    assert not result.keep[30].any()
    assert not result.keep[15].any()
    near = torch.zeros_like(tsdf, dtype=torch.bool)
    near[16, 20:40, 10:30] = True
    tsdf2 = torch.where(near, torch.full_like(tsdf, -0.02), tsdf)
    assert gate(tsdf2, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, SETTINGS).keep[near].all()


def test_no_free_value_is_written_right_behind_an_observed_surface():
    observed, observed_tsdf, free, sdf = room()
    hole = (slice(8, 13), slice(25, 31), slice(15, 21))
    observed[hole] = False
    free[hole] = False
    tsdf = torch.full(observed.shape, TRUNC)   # the network says "free" everywhere outside
    tsdf[hole] = sdf[hole].clamp(-TRUNC, TRUNC)
    result = gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, SETTINGS)
    behind = dilate(observed & (observed_tsdf < 0), 1)
    written_free = result.keep & (tsdf > 0.5 * VOXEL)
    assert not (written_free & behind).any()


def test_no_free_value_is_written_behind_a_kept_surface():
    """The network puts the wall a voxel into the room where the camera missed a patch of it: the
    kept surface must be meshed from the room's side only, not closed from behind by a free value
    the network predicted between it and the real wall (a back face, out of the room)."""
    observed, observed_tsdf, free, sdf = room()
    hole = (slice(9, 12), slice(25, 31), slice(15, 21))  # the wall's face x = 10 and a voxel either side
    observed[hole] = False
    free[hole] = False
    tsdf = torch.full(observed.shape, TRUNC)
    ys, zs = hole[1], hole[2]
    tsdf[11, ys, zs] = -0.2 * VOXEL     # the predicted face, one voxel into the room
    tsdf[10, ys, zs] = 0.8 * VOXEL      # free behind it, where the real wall is
    tsdf[9, ys, zs] = -TRUNC
    result = gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, SETTINGS)
    assert result.kept_surface[11, ys, zs].all()
    assert not result.keep[10, ys, zs].any()


def test_a_lone_predicted_surface_voxel_is_refused_a_continued_wall_is_kept():
    observed, observed_tsdf, free, sdf, tsdf, hole_surface = room_with_a_hole()
    unknown_box = (slice(20, 40), slice(20, 40), slice(12, 28))
    free[unknown_box] = False
    tsdf[20, 30, 20] = -0.02                              # one voxel of surface in unseen space, 0.5 m from the wall
    supported = GateSettings(SETTINGS.min_confidence, 1.0, SETTINGS.min_enclosure, SETTINGS.enclosure_radius, min_support=3)
    loose = GateSettings(SETTINGS.min_confidence, 1.0, SETTINGS.min_enclosure, SETTINGS.enclosure_radius)
    assert gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, loose).kept_surface[20, 30, 20]
    result = gate(tsdf, observed, observed_tsdf, free, VOXEL, TRUNC, CALIBRATION, supported)
    assert not result.keep[19:22, 29:32, 19:22].any()
    assert result.keep[hole_surface].all()
