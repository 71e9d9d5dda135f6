"""The seen-free layer: which cells a camera marks free, and that predictions respect them.

The scene is a box room seen from its middle: the camera at the origin looks along +z at a wall
3 m away; the floor and ceiling (1 m below / above) are seen at grazing angles near the image's
bottom and top edges; the side walls (2 m away) are outside the view.
"""

import itertools
import json
import struct
import zlib

import numpy as np
import pytest
import torch

from scenes import Plane, frame_of, small_camera
from ssr_ros.errors import InvalidPose
from ssr_ros.geometry import Frame
from ssr_ros.map import SemanticTSDF, TSDFConfig
from ssr_ros.map import free_space as free_space_module
from ssr_ros.map.free_space import FreeSpaceLayer
from ssr_ros.map.map_file import MAGIC

CAM = small_camera()
WALL = 3.0
ROOM = [
    Plane((0, 0, 1), WALL),
    Plane((0, 1, 0), 1.0),
    Plane((0, -1, 0), 1.0),
    Plane((1, 0, 0), 2.0),
    Plane((-1, 0, 0), 2.0),
]
VOXEL = 0.05
CELL = 2 * VOXEL
TRUNC = 4 * VOXEL


def room_map(backend="torch", **overrides) -> SemanticTSDF:
    overrides.setdefault("free_space_pixel_stride", 4)  # the test image is only 96x72
    config = TSDFConfig(voxel_size=VOXEL, truncation_voxels=4.0, backend=backend, **overrides)
    tsdf_map = SemanticTSDF(config, num_classes=21)
    tsdf_map.integrate(frame_of(ROOM, CAM, np.eye(4)))
    return tsdf_map


def cell_corners(cells: torch.Tensor) -> torch.Tensor:
    """(N, 3) cells -> (N, 8, 3) corner positions, metres (camera = world here)."""
    corners = torch.tensor(list(itertools.product((0, 1), repeat=3)), dtype=torch.float64)
    return (cells[:, None, :].to(torch.float64) + corners[None]) * CELL


def inside_frustum(points: torch.Tensor, margin_px: float = 0.0) -> torch.Tensor:
    """(..., 3) camera points -> (...) bool, in front and projecting into the image."""
    z = points[..., 2]
    u = CAM.fx * points[..., 0] / z + CAM.cx
    v = CAM.fy * points[..., 1] / z + CAM.cy
    return (
        (z > 0) & (u >= -0.5 + margin_px) & (u <= CAM.width - 0.5 - margin_px)
        & (v >= -0.5 + margin_px) & (v <= CAM.height - 0.5 - margin_px)
    )


def grid_cells(lo, hi) -> torch.Tensor:
    axes = [torch.arange(a, b) for a, b in zip(lo, hi)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def test_cells_between_camera_and_wall_are_free_and_nothing_else():
    tsdf_map = room_map(free_space_pixel_stride=1)
    layer = tsdf_map.free_space
    cells = grid_cells((-25, -15, -5), (25, 15, 40))  # the room and beyond the wall
    free = layer.cell_hits(cells) >= 1
    corners = cell_corners(cells)
    # every cell well inside the view, from 0.2 m to truncation + a cell diagonal (+ a cell of
    # slack) before the wall, away from the floor and ceiling, was crossed by a ray
    clear = (
        inside_frustum(corners, margin_px=2.0).all(1)
        & (corners[..., 2].min(1).values >= 0.2)
        & (corners[..., 2].max(1).values <= WALL - TRUNC - np.sqrt(3) * CELL - CELL)
        & (corners[..., 1].abs().max(1).values <= 1.0 - TRUNC - 2 * CELL)
    )
    assert int(clear.sum()) > 1000
    assert free[clear].all()
    # nothing free within the truncation band of the wall, or behind it
    assert not free[corners[..., 2].max(1).values > WALL - TRUNC].any()
    # free cells lie in the room's empty inside, none within truncation of any measured point
    # (floor and ceiling are seen at grazing angles: rays pass close to other pixels' points)
    assert (corners[free][..., 1].abs() <= 1.0).all()
    depth = torch.from_numpy(frame_of(ROOM, CAM, np.eye(4)).depth)
    measured = (CAM.pixel_rays() * depth[..., None]).reshape(-1, 3).to(torch.float64)
    lo = cells[free].to(torch.float64) * CELL
    for part in torch.split(torch.arange(lo.shape[0]), 256):
        gap = torch.maximum(lo[part, None] - measured[None], measured[None] - (lo[part, None] + CELL))
        assert gap.clamp(min=0).norm(dim=-1).min() >= TRUNC - 1e-6
    # nothing free entirely outside the view
    outside = ~inside_frustum(corners).any(1) & (corners[..., 2].min(1).values > 0.5)
    assert outside.sum() > 1000
    assert not free[outside].any()
    assert tsdf_map.stats()["free_cells"] == int(free.sum()) == layer.num_free_cells()


def test_coarse_rays_near_the_camera_still_cover_every_cell():
    # at 96x72 a stride of 4 pixels is 8 cm apart at 1.8 m; near the camera only every 2nd,
    # 4th, ... ray marches, yet every cell in view up to 1.8 m is crossed
    layer = room_map().free_space
    cells = grid_cells((-25, -15, 2), (25, 15, 18))  # 0.2 m to 1.8 m
    corners = cell_corners(cells)
    clear = inside_frustum(corners, margin_px=2.0).all(1)
    assert (layer.cell_hits(cells[clear]) >= 1).all()


def test_query_by_voxel_and_chunk_free_mask():
    tsdf_map = room_map()
    layer = tsdf_map.free_space
    assert bool(layer.query(torch.tensor([[0, 0, 20]])))  # 1.0 m in front of the camera
    assert not bool(layer.query(torch.tensor([[0, 0, 58]])))  # 2.9 m: in the wall's band
    assert not bool(layer.query(torch.tensor([[0, 0, 70]])))  # behind the wall
    origin = torch.tensor([-4, -4, 30])
    chunk = tsdf_map.extract_chunk(origin, (8, 8, 32))  # 1.5 m to 3.1 m along the axis
    voxels = chunk.voxel_centers().reshape(-1, 3).div(VOXEL).floor().to(torch.int64)
    expected = layer.query(voxels).reshape(chunk.size) & ~chunk.observed
    assert chunk.free is not None and torch.equal(chunk.free, expected)
    assert chunk.free[:, :, :10].all()  # up to 2.0 m
    assert not chunk.free[:, :, 26:].any()  # from 2.8 m: the band and the wall itself
    assert not (chunk.free & chunk.observed).any()
    assert torch.equal(chunk.known(), chunk.observed | chunk.free)
    assert room_map(free_space=False).extract_chunk(origin, (8, 8, 32)).free is None


def slab(size=(16, 16, 16)) -> torch.Tensor:
    """A predicted horizontal surface through the middle of a chunk (tsdf in metres)."""
    z = (torch.arange(size[2], dtype=torch.float32) + 0.5 - size[2] / 2) * VOXEL
    return z.clamp(-TRUNC, TRUNC).expand(size).clone()


def test_predicted_surface_in_seen_free_space_is_refused():
    tsdf_map = room_map()
    blocks_before, counter = tsdf_map.num_blocks, tsdf_map.update_counter
    assert tsdf_map.write_predictions(torch.tensor([-8, -8, 22]), slab()) == 0  # 1.1 m to 1.9 m
    assert tsdf_map.num_blocks == blocks_before
    assert not tsdf_map.extract_chunk(torch.tensor([-8, -8, 22]), (16, 16, 16)).predicted.any()
    # the same slab behind the wall is unseen space: written
    written = tsdf_map.write_predictions(torch.tensor([-8, -8, 66]), slab())  # 3.3 m to 4.1 m
    assert written > 0 and tsdf_map.num_blocks > blocks_before
    assert tsdf_map.update_counter > counter
    # the refusal is the free-space layer's doing: without it the slab is written
    no_layer = room_map(free_space=False)
    assert no_layer.write_predictions(torch.tensor([-8, -8, 22]), slab()) > 1000


def test_free_space_prediction_that_stays_free_is_accepted():
    tsdf_map = room_map()
    origin = torch.tensor([-8, -8, 22])
    empty = torch.full((16, 16, 16), TRUNC)  # "nothing here": agrees with the layer
    assert tsdf_map.write_predictions(origin, empty) == 0  # no blocks there, nothing to allocate
    mixed = slab()
    mixed[:8] = TRUNC  # half the chunk free-space values, half a surface
    blocks_before = tsdf_map.num_blocks
    assert tsdf_map.write_predictions(origin, mixed) == 0
    assert tsdf_map.num_blocks == blocks_before


def test_native_and_torch_paths_mark_the_same_cells():
    native = pytest.importorskip("ssr_ros.map.native")
    if native.load() is None:
        pytest.skip(f"native kernel unavailable: {native.build_error()}")
    a, b = room_map("torch"), room_map("native")
    assert a.backend == "torch" and b.backend == "native"
    assert torch.equal(a.free_space.free_cells(), b.free_space.free_cells())
    assert a.free_space.num_free_cells() > 1000


def test_counts_grow_per_frame_and_a_surface_clears_them():
    tsdf_map = room_map()
    cell = torch.tensor([[0, 0, 15]])  # 1.5 m along the axis
    assert int(tsdf_map.free_space.cell_hits(cell)) == 1
    tsdf_map.integrate(frame_of(ROOM, CAM, np.eye(4)))
    assert int(tsdf_map.free_space.cell_hits(cell)) == 2
    # a wall moves in at 1.5 m: its truncation band is no longer free
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 1.52)], CAM, np.eye(4)))
    assert int(tsdf_map.free_space.cell_hits(cell)) == 0
    assert int(tsdf_map.free_space.cell_hits(torch.tensor([[0, 0, 8]]))) == 3


def test_invalid_depth_marks_nothing():
    depth, _, _ = (np.zeros(CAM.shape, np.float32),) * 3
    depth[:, : CAM.width // 2] = 2.0
    depth[:, CAM.width // 2 :] = np.nan  # no return: not evidence of free space
    depth[:10] = 50.0  # beyond max_depth: also no free space
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=VOXEL), num_classes=21)
    tsdf_map.integrate(Frame(depth, CAM, np.eye(4)))
    cells = tsdf_map.free_space.free_cells()
    assert cells.shape[0] > 100
    # every free cell meets a ray of a valid pixel on the stride grid: columns <= 44, rows >= 12
    corners = cell_corners(cells)
    assert (corners[..., 2] > 0).all()
    u = CAM.fx * corners[..., 0] / corners[..., 2] + CAM.cx
    v = CAM.fy * corners[..., 1] / corners[..., 2] + CAM.cy
    assert (u.min(1).values <= 44 + 1e-6).all()
    assert (v.max(1).values >= 12 - 1e-6).all()


def test_refused_frame_leaves_the_layer_unchanged():
    for backend in ("torch", "auto"):
        tsdf_map = room_map(backend)
        before = tsdf_map.free_space.state()
        bad_pose = np.eye(4)
        bad_pose[0, 3] = np.nan
        depth, _, _ = frame_of(ROOM, CAM, np.eye(4)).depth, None, None
        with pytest.raises(InvalidPose):
            tsdf_map.integrate(Frame(depth, CAM, bad_pose))
        with pytest.raises(Exception):
            tsdf_map.integrate(Frame(np.zeros_like(depth), CAM, np.eye(4)))
        after = tsdf_map.free_space.state()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_reset_clears_the_layer():
    tsdf_map = room_map()
    assert tsdf_map.stats()["free_cells"] > 0 and tsdf_map.stats()["free_space_bytes"] > 0
    tsdf_map.reset()
    assert tsdf_map.stats()["free_cells"] == 0 and tsdf_map.stats()["free_space_bytes"] == 0
    assert not tsdf_map.free_space.query(torch.tensor([[0, 0, 20]])).any()
    tsdf_map.integrate(frame_of(ROOM, CAM, np.eye(4)))
    assert tsdf_map.free_space.query(torch.tensor([[0, 0, 20]])).all()


def test_save_load_keeps_the_layer(tmp_path):
    tsdf_map = room_map()
    tsdf_map.integrate(frame_of(ROOM, CAM, np.eye(4)))
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 1.52)], CAM, np.eye(4)))
    path = tmp_path / "room.ssrmap"
    tsdf_map.save(path)
    loaded = SemanticTSDF.load(path)
    cells = grid_cells((-25, -15, -5), (25, 15, 40))
    assert torch.equal(loaded.free_space.cell_hits(cells), tsdf_map.free_space.cell_hits(cells))
    assert loaded.stats()["free_cells"] == tsdf_map.stats()["free_cells"] > 0
    assert loaded.stats()["free_space_bytes"] == tsdf_map.stats()["free_space_bytes"]
    # and it keeps working after the load
    loaded.integrate(frame_of(ROOM, CAM, np.eye(4)))
    assert int(loaded.free_space.cell_hits(torch.tensor([[0, 0, 8]]))) == 4


def write_version_1(tsdf_map, path):
    """The map as the version-1 format stored it: no seen-free arrays, no free-space options."""
    from ssr_ros.map.map_file import _arrays

    arrays = {k: v for k, v in _arrays(tsdf_map).items() if not k.startswith("free_")}
    config = {k: v for k, v in json.loads(json.dumps(tsdf_map.config.__dict__)).items() if not k.startswith("free_space")}
    entries, offset = [], 0
    for name, array in arrays.items():
        data = array.tobytes()
        entries.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                        "offset": offset, "nbytes": len(data), "crc32": zlib.crc32(data)})
        offset += len(data)
    header = json.dumps({
        "format": "ssr_ros semantic TSDF", "version": 1, "config": config,
        "num_classes": tsdf_map.num_classes, "num_blocks": tsdf_map.num_blocks,
        "update_counter": tsdf_map.update_counter, "frames_integrated": tsdf_map.frames_integrated,
        "arrays": entries,
    }).encode()
    path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header + b"".join(a.tobytes() for a in arrays.values()))


def test_version_1_file_loads_with_an_empty_layer(tmp_path):
    tsdf_map = room_map()
    path = tmp_path / "old.ssrmap"
    write_version_1(tsdf_map, path)
    loaded = SemanticTSDF.load(path)
    assert loaded.num_blocks == tsdf_map.num_blocks > 0
    assert torch.equal(loaded.blocks.layers["tsdf"][: loaded.num_blocks], tsdf_map.blocks.layers["tsdf"][: tsdf_map.num_blocks])
    assert loaded.free_space is not None and loaded.stats()["free_cells"] == 0
    assert loaded.config.free_space_cell_voxels == TSDFConfig().free_space_cell_voxels


def test_large_frustum_path_matches_the_bitmap_path(monkeypatch):
    reference = room_map().free_space
    monkeypatch.setattr(free_space_module, "BITMAP_LIMIT", 0)
    sparse = room_map().free_space
    assert torch.equal(reference.free_cells(), sparse.free_cells())
    assert torch.equal(reference.state()["free_hits"], sparse.state()["free_hits"])


def test_standalone_layer_integrate_matches_the_map():
    layer = FreeSpaceLayer(VOXEL, cell_voxels=2, pixel_stride=4)
    frame = frame_of(ROOM, CAM, np.eye(4))
    seen = layer.integrate(torch.from_numpy(frame.depth), CAM, np.eye(4), TRUNC, 0.1, 5.0)
    assert seen == layer.num_free_cells() > 0
    assert torch.equal(layer.free_cells(), room_map().free_space.free_cells())
    assert layer.memory_bytes() == layer.num_blocks * (512 + 16)
