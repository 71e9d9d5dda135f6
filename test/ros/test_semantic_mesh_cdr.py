"""SemanticMesh written as one CDR buffer equals the generated message of the same block meshes."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from ssr_ros.map.meshing import BlockMesh
from ssr_ros.msg import SemanticMesh
from ssr_ros.ros.conversions.semantic_mesh import MeshUpdateArrays, msg_to_update, update_to_msg
from ssr_ros.ros.conversions.semantic_mesh_cdr import mesh_update_cdr
from ssr_ros.ros.map_outputs import mesh_blocks_to_arrays


def random_block_mesh(rng, index, vertices: int, triangles: int) -> BlockMesh:
    return BlockMesh(
        index, rng.uniform(-3, 3, (vertices, 3)).astype(np.float32),
        rng.integers(0, max(vertices, 1), (triangles if vertices else 0, 3)).astype(np.int64),
        rng.integers(0, 256, (vertices, 3)).astype(np.uint8), rng.integers(0, 41, vertices).astype(np.int64),
        rng.random(vertices).astype(np.float32), rng.random(vertices) < 0.5, rng.random(vertices) < 0.3,
    )


@pytest.mark.parametrize("seed, blocks, clear_all, cleared", [(0, 0, True, 0), (1, 1, False, 0), (2, 9, False, 3),
                                                                (3, 25, True, 0), (4, 4, False, 1)])
def test_semantic_mesh_bytes_read_back_as_the_generated_message(seed, blocks, clear_all, cleared):
    rng = np.random.default_rng(seed)
    # odd vertex counts put the byte-sized fields (colors, flags) at every alignment
    meshes = [random_block_mesh(rng, (int(i), -int(i), 7), int(rng.integers(0, 40)), int(rng.integers(1, 50)))
              for i in range(blocks)]
    vanished = rng.integers(-100, 100, (cleared, 3))
    frame = "map_gravity_aligned"[: seed * 5]
    expected = update_to_msg(MeshUpdateArrays(0.4, mesh_blocks_to_arrays(meshes), vanished, clear_all), frame, 77_000_000_123)
    written = mesh_update_cdr(meshes, 0.4, frame, 77_000_000_123, vanished, clear_all)
    assert len(written) == len(serialize_message(expected))  # rclpy leaves padding uninitialised: compare read back
    back = deserialize_message(written, SemanticMesh)
    assert back == deserialize_message(serialize_message(expected), SemanticMesh)
    update, frame_id, stamp = msg_to_update(back)
    assert (frame_id, stamp, update.clear_all, len(update.blocks)) == (frame, 77_000_000_123, clear_all, blocks)
    for mesh, block in zip(meshes, update.blocks):
        np.testing.assert_array_equal(block.vertices, mesh.vertices)
        np.testing.assert_array_equal(block.triangles, mesh.triangles)
    np.testing.assert_array_equal(update.cleared_blocks, vanished.reshape(-1, 3))
