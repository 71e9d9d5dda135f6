"""SemanticVoxelMap written as one CDR buffer equals the generated message of the same blocks."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from ssr_ros.errors import InconsistentMessage
from ssr_ros.msg import SemanticVoxelMap
from ssr_ros.ros.conversions.semantic_map import boxes_to_map_msg, map_msg_to_boxes
from ssr_ros.ros.conversions.semantic_map_cdr import voxel_map_cdr
from ssr_ros.ros.map_outputs import voxel_blocks_to_boxes
from ssr_ros.taxonomy import ClassTaxonomy, SemanticClass

SMALL = ClassTaxonomy("small", (SemanticClass(0, "unknown", (0, 0, 0)), SemanticClass(1, "ab", (1, 2, 3))))  # other padding


def random_block_layers(seed: int, count: int, B: int):
    """Dense block layers as ``block_layers`` returns them (NaN tsdf where unknown)."""
    rng = np.random.default_rng(seed)
    shape = (count, B, B, B)
    tsdf = rng.uniform(-0.2, 0.2, shape).astype(np.float32)
    tsdf[rng.random(shape) < 0.3] = np.nan
    layers = {
        "tsdf": tsdf, "weight": rng.uniform(0, 50, shape).astype(np.float32),
        "color": rng.integers(0, 256, shape + (3,)).astype(np.uint8), "label": rng.integers(0, 21, shape).astype(np.uint16),
        "confidence": rng.random(shape).astype(np.float32), "flags": rng.integers(0, 8, shape).astype(np.uint8),
    }
    coords = rng.integers(-50, 50, (count, 3))
    return coords, layers


@pytest.mark.parametrize("count, B, frame", [(0, 8, "map"), (1, 8, "map_gravity_aligned"), (7, 8, "m"), (5, 3, "odom"),
                                             (4, 5, "")])
def test_voxel_map_bytes_read_back_as_the_generated_message(count, B, frame):
    taxonomy = SMALL if B == 3 else ClassTaxonomy.load()
    coords, layers = random_block_layers(count + B, count, B)
    expected = boxes_to_map_msg(voxel_blocks_to_boxes(coords, layers, 0.05, B), 0.05, 0.2, taxonomy, frame, 1_234_567_890_123)
    written = voxel_map_cdr(coords, layers, 0.05, B, 0.2, taxonomy, frame, 1_234_567_890_123)
    assert len(written) == len(serialize_message(expected))  # rclpy leaves padding uninitialised: compare read back
    back = deserialize_message(written, SemanticVoxelMap)
    reference = deserialize_message(serialize_message(expected), SemanticVoxelMap)
    assert back.header == reference.header and back.classes == reference.classes
    assert (back.voxel_size, back.truncation, back.is_full_map) == (reference.voxel_size, reference.truncation, True)
    boxes, reference_boxes = map_msg_to_boxes(back)["boxes"], map_msg_to_boxes(reference)["boxes"]
    assert len(boxes) == len(reference_boxes) == count
    for box, other in zip(boxes, reference_boxes):  # NaN (unknown tsdf) compares equal here
        for name in ("origin", "tsdf", "weight", "color", "label", "confidence", "flags"):
            np.testing.assert_array_equal(getattr(box, name), getattr(other, name), err_msg=name)
            assert getattr(box, name).dtype == getattr(other, name).dtype
    for k, box in enumerate(boxes):
        np.testing.assert_array_equal(box.tsdf, layers["tsdf"][k])
        np.testing.assert_array_equal(box.color, layers["color"][k])
        np.testing.assert_array_equal(box.origin, coords[k] * B * 0.05)


def test_voxel_map_refuses_layers_of_another_block_count():
    coords, layers = random_block_layers(1, 3, 4)
    layers["label"] = layers["label"][:2]
    with pytest.raises(InconsistentMessage, match="label"):
        voxel_map_cdr(coords, layers, 0.05, 4, 0.2, SMALL, "map")
