"""ssr_ros/SemanticMesh of block meshes as a serialised CDR buffer.

Building a generated SemanticMeshBlock per block (seven array conversions and a message object)
cost ~30 us a block: ~50 ms for the ~1,800 blocks 30 frames of 640x480 change, ~0.4 s for the full
mesh every ``full_mesh_period_s``. Here each field is converted once for all blocks and every
block's bytes are slices of those arrays. What rclpy reads back equals
:func:`~ssr_ros.ros.conversions.semantic_mesh.update_to_msg` of
:func:`~ssr_ros.ros.map_outputs.mesh_blocks_to_arrays` of the same meshes (tests compare them).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from ssr_ros.ros.conversions.cdr import CdrWriter
from ssr_ros.ros.map_outputs import vertex_flags


def _field_bytes(arrays: list[np.ndarray], dtype: str) -> tuple[memoryview, np.ndarray]:
    """All blocks' values of one field as one little-endian buffer, and each block's byte offset."""
    counts = np.array([a.size for a in arrays], dtype=np.int64)
    joined = np.concatenate([a.reshape(-1) for a in arrays]).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    offsets = np.concatenate([[0], np.cumsum(counts)]) * np.dtype(dtype).itemsize
    return memoryview(np.ascontiguousarray(joined)).cast("B"), offsets


def mesh_update_cdr(meshes: Sequence, block_size: float, frame_id: str, stamp_ns: int = 0,
                    cleared_blocks: np.ndarray | None = None, clear_all: bool = False) -> bytes:
    """The serialised SemanticMesh of :class:`~ssr_ros.map.meshing.BlockMesh` es (index, vertices,
    triangles, colors, labels, confidence, observed, predicted), ``cleared_blocks`` (K, 3) and
    ``clear_all``: the message :func:`update_to_msg` makes of :func:`mesh_blocks_to_arrays` of them."""
    meshes = list(meshes)
    fields = [
        ("<f4", 4, [m.vertices for m in meshes]),
        ("<u4", 4, [m.triangles for m in meshes]),
        ("u1", 1, [m.colors for m in meshes]),
        ("<u2", 2, [m.labels for m in meshes]),
        ("<f4", 4, [m.confidence for m in meshes]),
        ("u1", 1, [vertex_flags(m) for m in meshes]),
    ]
    data = [(_field_bytes(arrays, dtype), align, np.dtype(dtype).itemsize) for dtype, align, arrays in fields]
    out = CdrWriter()
    out.stamp(stamp_ns)
    out.string(frame_id)
    out.pack("f?", 4, float(block_size), bool(clear_all))
    out.pack("I", 4, len(meshes))
    for k, mesh in enumerate(meshes):
        out.raw(struct.pack("<3i", *(int(v) for v in mesh.index)), 4)
        for (buffer, offsets), align, itemsize in data:
            start, end = int(offsets[k]), int(offsets[k + 1])
            out.pack("I", 4, (end - start) // itemsize)
            if end > start:
                out.raw(buffer[start:end], align)
    cleared = np.zeros((0, 3), np.int32) if cleared_blocks is None else np.asarray(cleared_blocks, dtype=np.int32).reshape(-1, 3)
    out.pack("I", 4, cleared.size)
    if cleared.size:
        out.raw(cleared.astype("<i4").tobytes(), 4)
    return out.bytes()
