"""Completion reads and writes the map holding its lock only for copies and slabs, with the same result.

Chunks are extracted from a copy of the blocks (and seen-free cells) of their box taken under the
lock; write-back goes in slabs of block layers, each under the lock. The map after completion
must be exactly the map that extraction and write-back of the whole box in one holding give.
"""

from __future__ import annotations

import torch

from scenes import ORBIT_BOX, ORBIT_SPHERE, frame_of, orbit_poses, orbit_sphere_map, small_camera
from ssr_ros.map import SemanticTSDF, TSDFConfig, chunk_io
from ssr_ros.map.block_hash import pack_block_keys
from ssr_ros.map.voxel_blocks import LAYERS

CAM = small_camera()
SPHERE, BOX = ORBIT_SPHERE, ORBIT_BOX

fused_map = orbit_sphere_map


def chunks_equal(a, b) -> None:
    for name in ("tsdf", "weight", "observed", "color", "semantics", "predicted", "predicted_tsdf", "predicted_color",
                 "predicted_label", "predicted_confidence", "free", "origin_voxel"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True, msg=name)


def map_content(tsdf_map: SemanticTSDF) -> dict[str, torch.Tensor]:
    """Every voxel layer by block coordinate (slot order and stamps aside), and the seen-free cells."""
    layer = tsdf_map.layer
    order = torch.argsort(pack_block_keys(layer.block_coords()))
    content = {name: layer.used(name)[order] for name in LAYERS}
    content["block_coords"] = layer.block_coords()[order]
    if layer.free_space is not None:
        content.update({f"free.{k}": v for k, v in layer.free_space.state().items()})
    return content


def assert_same_map(a: SemanticTSDF, b: SemanticTSDF) -> None:
    ca, cb = map_content(a), map_content(b)
    assert ca.keys() == cb.keys()
    for name in ca:
        torch.testing.assert_close(ca[name], cb[name], rtol=0, atol=0, equal_nan=True, msg=name)


def test_a_chunk_extracted_from_the_box_copy_equals_the_chunk_of_the_map():
    tsdf_map = fused_map()
    assert tsdf_map.layer.free_space is not None and tsdf_map.layer.free_space.num_blocks > 0
    boxes = [((-10, -10, -10), (20, 20, 20)),   # the sphere, off block boundaries
             ((-16, -16, -16), (32, 32, 32)),   # on block boundaries
             ((-40, -3, -9), (70, 11, 5)),      # reaching out of the map, thin
             ((-40, -40, -40), (80, 80, 80)),   # the sphere and the space seen free around it
             ((300, 300, 300), (8, 8, 8))]      # nothing there
    free = 0
    for origin, size in boxes:
        origin = torch.tensor(origin)
        copy = tsdf_map.chunk_snapshot(origin, size)
        chunks_equal(chunk_io.extract_chunk(copy, origin, size), tsdf_map.extract_chunk(origin, size))
        free += int(chunk_io.extract_chunk(copy, origin, size).free.sum())
    assert free > 0


def test_frames_fused_after_the_copy_do_not_reach_the_chunk():
    tsdf_map, reference = fused_map(), fused_map()
    origin, size = torch.tensor([-12, -12, -12]), (24, 24, 24)
    copy = tsdf_map.chunk_snapshot(origin, size)
    for T in orbit_poses(SPHERE.center, 1.5, 8)[4:]:
        tsdf_map.integrate(frame_of([SPHERE, BOX], CAM, T))
    chunks_equal(chunk_io.extract_chunk(copy, origin, size), reference.extract_chunk(origin, size))


def _prediction(size, num_classes=21, seed=0):
    g = torch.Generator().manual_seed(seed)
    tsdf = (torch.rand(size, generator=g) - 0.5) * 0.3
    tsdf[torch.rand(size, generator=g) < 0.2] = float("nan")
    color = torch.rand(size + (3,), generator=g)
    probs = torch.softmax(torch.randn(size + (num_classes,), generator=g), dim=-1)
    confidence = torch.rand(size, generator=g)
    return tsdf, color, probs, confidence


def test_write_back_in_slabs_gives_the_map_of_one_write():
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig, _LockedChunkAccess

    from ssr_ros.completion.inference import CompletionConfig

    pipeline = MappingPipeline(PipelineConfig(map=TSDFConfig(voxel_size=0.04), completion=CompletionConfig(type="none")),
                               model=None)
    for T in orbit_poses(SPHERE.center, 1.5, 8)[:4]:
        pipeline.integrate(frame_of([SPHERE], CAM, T))
    reference = pipeline.map.copy()
    access = _LockedChunkAccess(pipeline)
    total = 0
    for origin, size, seed in [((-21, -13, -18), (45, 30, 37), 0), ((-16, -16, 0), (32, 9, 8), 1), ((5, 5, 5), (3, 2, 2), 2)]:
        prediction = _prediction(size, seed=seed)
        written = access.write_predictions(torch.tensor(origin), *prediction)
        assert written == reference.write_predictions(torch.tensor(origin), *prediction)
        total += written
    assert total > 1000
    assert_same_map(pipeline.map, reference)


def test_the_pipeline_completes_to_the_map_of_whole_box_access():
    """Network chunks and the room layout, as the node's completion runs them, against the same
    calls on the map itself (extraction and write-back of each box at once)."""
    from ssr_ros.completion.contract import ModelContract
    from ssr_ros.completion_evaluation import EvaluationConfig
    from ssr_ros.completion.inference import CompletionConfig, complete_chunks
    from ssr_ros.completion.layout import complete_layout
    from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    torch.manual_seed(0)
    model = SSRUNet(SSRUNetConfig(base_width=2, max_width=4, levels=2))
    config = EvaluationConfig(frames_per_scene=30, image_width=120, image_height=90).validate()
    model.contract = ModelContract(voxel_size=config.map.voxel_size, truncation=config.map.truncation, chunk_size=32,
                                   num_classes=21)
    _, sequence = synthetic_sequence(1510, config)
    completion = CompletionConfig(min_confidence=0.0)
    pipeline = MappingPipeline(PipelineConfig(map=config.map, completion=completion), model=model)
    assert pipeline.model is not None and pipeline.config.layout.enabled
    for frame in sequence:
        pipeline.integrate(frame)
    reference = pipeline.map.copy()
    with pipeline.lock:
        pipeline._collect_changes()
        origins = [pipeline.scheduler.chunk_origin(cell) for cell in pipeline.scheduler.pending]
    camera_path = pipeline.camera_path
    assert len(origins) > 1

    chunks = pipeline.complete(everything=True)
    assert chunks == len(origins)
    assert pipeline.layout_report.voxels_written > 0

    complete_chunks(model, reference, origins, pipeline.config.completion)
    assert int((reference.layer.used("weight") < 0).sum()) > 0  # the network wrote something
    complete_layout(reference, pipeline.config.layout, camera_path, pipeline.structural_class_ids())
    assert_same_map(pipeline.map, reference)
