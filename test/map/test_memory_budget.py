"""Memory budget with eviction to the on-disk block store, and the clear radius."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ssr_ros.map import SemanticTSDF, TSDFConfig
from ssr_ros.map.block_store import BlockStoreError
from ssr_ros.map.map_file import _arrays
from ssr_ros.map.voxel_export import block_layers, select_voxels

from scenes import Box, Plane, frame_of, look_at, small_camera

CORRIDOR = [
    Plane((0.0, 1.0, 0.0), 1.2, label=2, color=(60, 200, 60)),   # wall at y = 1.2
    Plane((0.0, -1.0, 0.0), 1.2, label=3, color=(200, 60, 60)),  # wall at y = -1.2
    Plane((0.0, 0.0, -1.0), 0.0, label=1, color=(90, 90, 90)),   # floor z = 0
    Box((3.0, 0.6, 0.0), (3.6, 1.2, 0.8), label=5),
    Box((9.0, -1.2, 0.0), (9.8, -0.5, 1.0), label=6),
]


def corridor_frames(count: int = 32, length: float = 24.0):
    """A camera walking down the corridor and back, looking at the walls in turn."""
    camera = small_camera(48, 36)
    xs = np.concatenate([np.linspace(0.5, length, count // 2), np.linspace(length, 0.5, count - count // 2)])
    frames = []
    for k, x in enumerate(xs):
        side = 1.0 if k % 2 == 0 else -1.0
        eye = (x, 0.0, 0.9)
        frames.append(frame_of(CORRIDOR, camera, look_at(eye, (x + 0.8, side * 1.2, 0.5)), with_labels=True))
    return frames


def config(**kwargs) -> TSDFConfig:
    return TSDFConfig(voxel_size=0.05, max_depth=2.5, backend="torch", **kwargs)


@pytest.fixture(scope="module")
def frames():
    return corridor_frames()


@pytest.fixture(scope="module")
def unlimited(frames):
    tsdf_map = SemanticTSDF(config(), num_classes=8)
    for frame in frames:
        tsdf_map.integrate(frame)
    return tsdf_map


def budget_map(frames, tmp_path, budget_mb: float, record=None) -> SemanticTSDF:
    tsdf_map = SemanticTSDF(config(memory_budget_mb=budget_mb, block_store_dir=str(tmp_path / "store")), num_classes=8)
    for frame in frames:
        tsdf_map.integrate(frame)
        if record is not None:
            record.append((tsdf_map.layer.memory_bytes(), tsdf_map.residency.over_budget,
                           tsdf_map.layer.blocks.reserved_bytes()))
    return tsdf_map


def same_arrays(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_budget_holds_and_the_whole_map_equals_the_unlimited_one(frames, unlimited, tmp_path):
    budget = 0.45 * unlimited.layer.memory_bytes() / 1e6
    record = []
    tsdf_map = budget_map(frames, tmp_path, budget, record)
    stats = tsdf_map.stats()
    assert stats["blocks_evicted"] > 0 and stats["blocks_reloaded"] > 0  # the walk back revisits evicted regions
    assert stats["blocks_on_disk"] > 0 and tsdf_map.num_blocks < unlimited.num_blocks
    assert not any(over for _, over, _ in record)
    assert max(bytes_ for bytes_, _, _ in record) <= budget * 1e6
    # the tensors' spare capacity follows the budget too (doubling would reserve up to twice the
    # blocks' high-water mark); past it only by one frame's blocks and a sixteenth of the budget
    assert max(reserved for _, _, reserved in record) <= 1.25 * budget * 1e6
    # every revisited block came back bit for bit, and fusion met exactly the voxels it would have
    assert same_arrays(_arrays(tsdf_map.complete_layer()), _arrays(unlimited))


def test_evict_then_read_back_is_bit_identical(unlimited, tmp_path):
    tsdf_map = SemanticTSDF(config(memory_budget_mb=1000.0, block_store_dir=str(tmp_path / "store")), num_classes=8)
    tsdf_map.layer.insert_block_data(unlimited.layer.block_data(torch.arange(unlimited.num_blocks)))
    tsdf_map.free_space.insert_blocks(unlimited.free_space.state())
    before = _arrays(tsdf_map)
    residency = tsdf_map.residency
    residency.budget_bytes = 1  # everything not protected goes
    residency.after_frame(np.array([0.5, 0.0, 0.9]), None)
    assert tsdf_map.num_blocks == 0 and residency.blocks_on_disk == unlimited.num_blocks
    assert tsdf_map.free_space.num_blocks == 0
    residency.ensure_resident(np.full(3, -10**6), np.full(3, 10**6))
    assert residency.blocks_on_disk == 0
    assert same_arrays(_arrays(tsdf_map), before)


def test_save_with_evicted_blocks_saves_all_of_it(frames, unlimited, tmp_path):
    tsdf_map = budget_map(frames[:12], tmp_path, 0.2 * unlimited.layer.memory_bytes() / 1e6)
    reference = SemanticTSDF(config(), num_classes=8)
    for frame in frames[:12]:
        reference.integrate(frame)
    assert tsdf_map.residency.blocks_on_disk > 0
    tsdf_map.save(tmp_path / "budget.ssrmap")
    reference.save(tmp_path / "plain.ssrmap")
    assert tsdf_map.residency.blocks_on_disk > 0  # saving did not change what is in memory
    saved = SemanticTSDF.load(tmp_path / "budget.ssrmap")
    assert same_arrays(_arrays(saved), _arrays(SemanticTSDF.load(tmp_path / "plain.ssrmap")))
    copy = tsdf_map.copy()  # a copy holds it all too, in memory, without the budget
    assert copy.residency is None and same_arrays(_arrays(copy), _arrays(saved))


def test_outputs_cover_memory_and_a_region_reads_back_from_disk(frames, unlimited, tmp_path):
    tsdf_map = budget_map(frames[:12], tmp_path, 0.2 * unlimited.layer.memory_bytes() / 1e6)
    coords, _ = block_layers(tsdf_map)
    assert len(coords) == tsdf_map.num_blocks  # outputs: the blocks in memory
    lo, hi = (0.0, -1.5, -0.5), (2.0, 1.5, 2.0)  # the start of the corridor, evicted by now
    region = tsdf_map.region_layer(lo, hi)
    assert tsdf_map.residency.blocks_on_disk > 0 and tsdf_map.num_blocks < region.num_blocks + tsdf_map.num_blocks
    reference = SemanticTSDF(config(), num_classes=8)
    for frame in frames[:12]:
        reference.integrate(frame)
    expected = reference.region_layer(lo, hi)
    assert region.num_blocks == expected.num_blocks > 0
    got, want = block_layers(region), block_layers(expected)
    order_got, order_want = np.lexsort(got[0].T), np.lexsort(want[0].T)
    assert np.array_equal(got[0][order_got], want[0][order_want])
    for name in want[1]:
        assert np.array_equal(got[1][name][order_got], want[1][name][order_want], equal_nan=name == "tsdf")


def test_corrupt_block_store_file_is_named_and_loses_nothing_else(frames, unlimited, tmp_path):
    tsdf_map = budget_map(frames[:12], tmp_path, 0.2 * unlimited.layer.memory_bytes() / 1e6)
    store = tsdf_map.residency.store
    regions = sorted(store.regions)
    assert len(regions) >= 2
    victim = store.path_of(regions[0])
    raw = bytearray(victim.read_bytes())
    raw[-10] ^= 0xFF
    victim.write_bytes(bytes(raw))
    lost = store.regions[regions[0]]
    on_disk = store.num_blocks
    resident = tsdf_map.num_blocks
    with pytest.raises(BlockStoreError, match=victim.name):
        tsdf_map.residency.ensure_resident(np.full(3, -10**6), np.full(3, 10**6))
    assert victim.with_name(victim.name + ".corrupt").exists()
    assert tsdf_map.num_blocks == resident + on_disk - lost  # every other region came back
    tsdf_map.integrate(frames[12])  # mapping goes on
    tsdf_map.save(tmp_path / "after.ssrmap")
    assert SemanticTSDF.load(tmp_path / "after.ssrmap").num_blocks >= resident + on_disk - lost


def test_clear_radius_drops_far_blocks(frames, unlimited):
    tsdf_map = SemanticTSDF(config(clear_radius_m=3.0), num_classes=8)
    for frame in frames[:12]:
        tsdf_map.integrate(frame)
    camera = frames[11].T_world_cam[:3, 3]
    centres = (tsdf_map.allocated_block_coords().double() + 0.5) * tsdf_map.config.block_extent
    assert (centres - torch.as_tensor(camera)).norm(dim=1).max() <= 3.0
    assert tsdf_map.stats()["blocks_cleared"] > 0 and tsdf_map.residency.blocks_on_disk == 0
    tsdf_map.update_mesh()
    assert all(np.linalg.norm((np.array(mesh.index) + 0.5) * tsdf_map.config.block_extent - camera) <= 3.0
               for mesh in tsdf_map.block_meshes())


def test_load_applies_the_runs_storage_settings(unlimited, tmp_path):
    unlimited.save(tmp_path / "m.ssrmap")
    loaded = SemanticTSDF.load(tmp_path / "m.ssrmap", overrides={"memory_budget_mb": 0.05})
    assert loaded.residency is not None and loaded.config.memory_budget_mb == 0.05
    assert dataclasses.asdict(loaded.config)["voxel_size"] == unlimited.config.voxel_size


def test_mesh_follows_eviction_and_comes_back_identical(frames, tmp_path):
    tsdf_map = SemanticTSDF(config(memory_budget_mb=1000.0, block_store_dir=str(tmp_path / "store")), num_classes=8)
    for frame in frames[:6]:
        tsdf_map.integrate(frame)
    before = tsdf_map.mesh()
    meshed = {m.index for m in tsdf_map.block_meshes()}
    residency = tsdf_map.residency
    residency.budget_bytes = 1
    residency.after_frame(np.array([100.0, 0.0, 0.9]), None)  # a camera far away: everything goes
    update = tsdf_map.update_mesh()
    assert {tuple(v) for v in update.vanished} == meshed and not update.blocks
    residency.ensure_resident(np.full(3, -10**6), np.full(3, 10**6))
    again = tsdf_map.update_mesh()
    assert set(again.blocks) == meshed
    after = tsdf_map.mesh()
    np.testing.assert_array_equal(after.vertices, before.vertices)
    np.testing.assert_array_equal(after.triangles, before.triangles)
    np.testing.assert_array_equal(after.colors, before.colors)


def test_pipeline_reports_what_outputs_cover_and_reads_regions(frames, tmp_path):
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.taxonomy import ClassTaxonomy

    pipeline_config = PipelineConfig(device="cpu")
    pipeline_config.map = config(memory_budget_mb=2.0, block_store_dir=str(tmp_path / "store"))
    taxonomy = ClassTaxonomy.load()
    pipeline = MappingPipeline(pipeline_config, taxonomy, model=None)
    for frame in frames[:12]:
        pipeline.integrate(dataclasses.replace(frame, labels=np.minimum(frame.labels, taxonomy.num_classes - 1)))
    stats = pipeline.stats()
    assert stats["blocks_on_disk"] > 0 and stats["outputs_cover"] == "blocks in memory"
    assert stats["map_bytes"] <= 2.0e6 or stats["over_budget"]
    voxels, (coords, _) = pipeline.voxel_outputs()
    assert len(coords) == pipeline.map.num_blocks and len(voxels["points"]) > 0
    region_coords, region_layers = pipeline.voxel_blocks_in_region((0.0, -1.5, -0.5), (2.0, 1.5, 2.0))
    assert len(region_coords) > 0 and region_layers["tsdf"].shape[0] == len(region_coords)
    store = pipeline.map.residency.store.directory
    pipeline.close()
    assert not any(store.glob("*.ssrblk"))


def predict_behind_the_wall(tsdf_map: SemanticTSDF) -> int:
    """Write a completion-style prediction (a surface at y = 2.0 m, class 4, confidence 0.7) into
    the unseen space behind the corridor's wall at y = 1.2 m; returns the voxels written."""
    origin = torch.tensor([20, 26, 0])  # voxels: x 1.0-2.6 m, y 1.3-2.9 m, z 0-1.6 m
    size = (32, 32, 32)
    y = (origin[1] + torch.arange(size[1]) + 0.5) * 0.05
    tsdf = (2.0 - y).clamp(-0.2, 0.2).reshape(1, -1, 1).expand(size).contiguous()
    color = torch.full(size + (3,), 0.25)
    probs = torch.full(size + (8,), 0.2 / 7)
    probs[..., 4] = 0.8
    return tsdf_map.write_predictions(origin, tsdf, color, probs, torch.full(size, 0.7))


def test_predicted_and_observed_voxels_come_back_identical_after_eviction(frames, tmp_path):
    tsdf_map = SemanticTSDF(config(memory_budget_mb=1000.0, block_store_dir=str(tmp_path / "store")), num_classes=8)
    for frame in frames[:6]:
        tsdf_map.integrate(frame)
    assert predict_behind_the_wall(tsdf_map) > 0
    known = select_voxels(tsdf_map.layer, "known")
    assert known["predicted"].sum() > 1000 and known["observed"].sum() > 1000  # both layers present
    before, mesh_before = _arrays(tsdf_map), tsdf_map.mesh()
    assert mesh_before.predicted.any() and mesh_before.observed.any()
    residency = tsdf_map.residency
    residency.budget_bytes = 1
    residency.after_frame(np.array([100.0, 0.0, 0.9]), None)  # a camera far away: every region goes to disk
    assert tsdf_map.num_blocks == 0 and residency.blocks_on_disk > 0
    residency.ensure_resident(np.full(3, -10**6), np.full(3, 10**6))  # the camera returns
    assert residency.blocks_on_disk == 0
    assert same_arrays(_arrays(tsdf_map), before)  # weights (sign = predicted), labels, confidences: bit for bit
    again = select_voxels(tsdf_map.layer, "known")  # in slot order, which reloading changes: compare sorted
    order_before, order_after = np.lexsort(known["points"].T), np.lexsort(again["points"].T)
    for name in ("points", "predicted", "observed", "labels", "confidence", "colors", "tsdf"):
        np.testing.assert_array_equal(again[name][order_after], known[name][order_before])
    mesh_after = tsdf_map.mesh()
    for name in ("vertices", "triangles", "predicted", "observed", "labels", "confidence"):
        np.testing.assert_array_equal(getattr(mesh_after, name), getattr(mesh_before, name))


def test_budgeted_walk_keeps_predictions_written_before_the_region_left(frames, tmp_path):
    """Under a binding budget, predictions written early survive the region's trip to disk and back
    while the walk goes on fusing, and match an unlimited map given the same predictions."""
    reference = SemanticTSDF(config(), num_classes=8)
    budgeted = SemanticTSDF(config(memory_budget_mb=1000.0, block_store_dir=str(tmp_path / "store")), num_classes=8)
    for tsdf_map in (reference, budgeted):
        for frame in frames[:4]:
            tsdf_map.integrate(frame)
        assert predict_behind_the_wall(tsdf_map) > 0
    budgeted.residency.budget_bytes = int(0.3 * reference.layer.memory_bytes())
    def predicted_in_memory() -> int:
        return int(select_voxels(budgeted.layer, "known")["predicted"].sum())

    written = predicted_in_memory()
    in_memory = []
    for frame in frames[4:]:  # down the corridor (the start is evicted) and back (it is read back)
        reference.integrate(frame)
        budgeted.integrate(frame)
        in_memory.append(predicted_in_memory())
    assert min(in_memory) == 0 and in_memory[-1] > 0.9 * written  # the predictions went to disk and came back
    stats = budgeted.stats()
    assert stats["blocks_evicted"] > 0 and stats["blocks_reloaded"] > 0
    assert same_arrays(_arrays(budgeted.complete_layer()), _arrays(reference))


def test_spare_capacity_doubles_without_a_limit_and_stops_at_it():
    from ssr_ros.map.voxel_blocks import VoxelBlocks

    blocks = VoxelBlocks(8, "cpu", capacity=4)
    blocks.add_blocks(torch.zeros(5, 3, dtype=torch.int64), 1)
    assert blocks.capacity == 8  # doubled
    assert blocks.grown_capacity(9) == 16
    blocks.capacity_limit = 12
    assert blocks.grown_capacity(9) == 12  # up to the limit, not beyond
    assert blocks.grown_capacity(13) == 14  # past it: what is needed and a sixteenth of the limit (at least 1)
    blocks.add_blocks(torch.ones(6, 3, dtype=torch.int64), 2)  # 11 blocks
    assert blocks.capacity == 12 and blocks.num_blocks == 11
    assert blocks.reserved_bytes() == 12 * (512 * blocks.bytes_per_voxel_payload() + 48)
