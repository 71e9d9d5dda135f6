"""SemanticVoxelMap / SemanticMesh conversions: exact round trips and the documented layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssr_ros.errors import InconsistentMessage
from ssr_ros.msg import SemanticVoxelChunk
from ssr_ros.ros.conversions.semantic_map import (
    FLAG_OBSERVED,
    FLAG_PREDICTED,
    VoxelBox,
    box_to_chunk_msg,
    boxes_to_map_msg,
    chunk_msg_to_box,
    map_msg_to_boxes,
)
from ssr_ros.ros.conversions.semantic_mesh import (
    MeshAssembler,
    MeshBlockArrays,
    MeshUpdateArrays,
    msg_to_update,
    update_to_msg,
)
from ssr_ros.taxonomy import ClassTaxonomy


def random_box(seed: int, size: tuple[int, int, int], voxel_size: float = 0.05) -> VoxelBox:
    rng = np.random.default_rng(seed)
    return VoxelBox(
        origin=rng.integers(-100, 100, 3) * voxel_size,
        tsdf=rng.uniform(-0.2, 0.2, size).astype(np.float32),
        weight=rng.uniform(0, 50, size).astype(np.float32),
        color=rng.integers(0, 256, size + (3,)).astype(np.uint8),
        label=rng.integers(0, 21, size).astype(np.uint16),
        confidence=rng.uniform(0, 1, size).astype(np.float32),
        flags=rng.integers(0, 8, size).astype(np.uint8),
    )


sizes = st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=sizes)
def test_voxel_chunk_round_trip_is_exact(seed, size):
    box = random_box(seed, size)
    back = chunk_msg_to_box(box_to_chunk_msg(box))
    np.testing.assert_array_equal(back.origin, box.origin)
    for name in ("tsdf", "weight", "color", "label", "confidence", "flags"):
        np.testing.assert_array_equal(getattr(back, name), getattr(box, name), err_msg=name)


def test_chunk_layout_is_x_fastest_as_documented():
    tsdf = np.zeros((3, 4, 5), dtype=np.float32)
    tsdf[2, 1, 3] = 7.0  # n = i + X * (j + Y * k) = 2 + 3 * (1 + 4 * 3) = 41
    color = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    color[2, 1, 3] = (10, 20, 30)
    msg = box_to_chunk_msg(VoxelBox(origin=np.zeros(3), tsdf=tsdf, color=color))
    assert np.flatnonzero(np.asarray(msg.tsdf)).tolist() == [41]
    assert list(msg.color[41 * 3 : 41 * 3 + 3]) == [10, 20, 30]
    assert len(msg.label) == 0 and len(msg.flags) == 0  # layers left out travel empty


def test_optional_layers_come_back_as_none():
    box = chunk_msg_to_box(box_to_chunk_msg(VoxelBox(origin=np.zeros(3), tsdf=np.ones((2, 2, 2), np.float32))))
    assert box.label is None and box.color is None and box.weight is None


def test_map_message_carries_taxonomy_and_parameters():
    taxonomy = ClassTaxonomy.load()
    boxes = [random_box(1, (2, 3, 4)), random_box(2, (5, 1, 1))]
    msg = boxes_to_map_msg(boxes, 0.05, 0.2, taxonomy, "map", stamp_ns=42, is_full_map=False)
    assert msg.header.frame_id == "map" and len(msg.classes) == 21
    assert msg.classes[5].name == "chair" and (msg.classes[5].r, msg.classes[5].g, msg.classes[5].b) == (188, 189, 34)
    back = map_msg_to_boxes(msg)
    assert back["taxonomy"].classes == taxonomy.classes
    assert back["stamp_ns"] == 42 and back["is_full_map"] is False
    assert back["voxel_size"] == pytest.approx(0.05) and back["truncation"] == pytest.approx(0.2)
    np.testing.assert_array_equal(back["boxes"][1].label, boxes[1].label)


def test_flag_constants_are_distinct_bits():
    assert {FLAG_OBSERVED, FLAG_PREDICTED, SemanticVoxelChunk.FLAG_OCCUPIED} == {1, 2, 4}


def test_chunk_with_wrong_field_length_is_refused():
    msg = box_to_chunk_msg(random_box(0, (2, 2, 2)))
    msg.size_z = 3
    with pytest.raises(InconsistentMessage, match="'tsdf' has 8 values; expected 12 for 2x2x3 voxels"):
        chunk_msg_to_box(msg)


def random_block(seed: int, index, n: int, m: int) -> MeshBlockArrays:
    rng = np.random.default_rng(seed)
    return MeshBlockArrays(
        index=np.asarray(index, dtype=np.int32),
        vertices=rng.uniform(-3, 3, (n, 3)).astype(np.float32),
        triangles=rng.integers(0, max(n, 1), (m, 3)).astype(np.uint32) if n else np.zeros((0, 3), np.uint32),
        colors=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        labels=rng.integers(0, 21, n).astype(np.uint16),
        confidence=rng.uniform(0, 1, n).astype(np.float32),
        flags=rng.integers(0, 4, n).astype(np.uint8),
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), m=st.integers(0, 40), clear_all=st.booleans())
def test_mesh_update_round_trip_is_exact(seed, n, m, clear_all):
    m = m if n else 0
    update = MeshUpdateArrays(0.4, [random_block(seed, (1, -2, 3), n, m), random_block(seed + 1, (0, 0, 0), 3, 2)],
                              np.array([[5, 5, 5], [-1, 0, 2]], np.int32), clear_all)
    back, frame_id, stamp = msg_to_update(update_to_msg(update, "map", 9))
    assert (frame_id, stamp, back.clear_all) == ("map", 9, clear_all)
    assert back.block_size == pytest.approx(0.4)
    np.testing.assert_array_equal(back.cleared_blocks, update.cleared_blocks)
    for ours, theirs in zip(update.blocks, back.blocks):
        for name in ("index", "vertices", "triangles", "colors", "labels", "confidence", "flags"):
            np.testing.assert_array_equal(getattr(theirs, name), getattr(ours, name), err_msg=name)


def test_assembler_applies_adds_replacements_clears_and_clear_all():
    assembler = MeshAssembler()
    a, b = random_block(0, (0, 0, 0), 4, 2), random_block(1, (1, 0, 0), 5, 3)
    assembler.apply(MeshUpdateArrays(0.4, [a, b]))
    mesh = assembler.mesh()
    assert mesh["vertices"].shape == (9, 3) and mesh["triangles"].shape == (5, 3)
    assert mesh["triangles"][2:].min() >= 4  # second block re-indexed after the first
    b2 = random_block(2, (1, 0, 0), 3, 1)
    assembler.apply(MeshUpdateArrays(0.4, [b2], np.array([[0, 0, 0]], np.int32)))
    assert list(assembler.blocks) == [(1, 0, 0)]
    np.testing.assert_array_equal(assembler.mesh()["vertices"], b2.vertices)
    assembler.apply(MeshUpdateArrays(0.4, [a], clear_all=True))
    assert list(assembler.blocks) == [(0, 0, 0)]


def test_mesh_block_with_mismatched_attributes_is_refused():
    block = random_block(0, (0, 0, 0), 4, 2)
    block.labels = block.labels[:3]
    with pytest.raises(InconsistentMessage, match="block labels must have shape \\(4,\\)"):
        update_to_msg(MeshUpdateArrays(0.4, [block]), "map")
