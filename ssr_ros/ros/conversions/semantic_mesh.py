"""ssr_ros/SemanticMesh and SemanticMeshBlock <-> per-block NumPy meshes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssr_ros.errors import InconsistentMessage
from ssr_ros.msg import SemanticMesh, SemanticMeshBlock
from ssr_ros.ros.conversions.arrays import from_array, to_array
from ssr_ros.ros.conversions.time import ns_to_stamp, stamp_to_ns


@dataclass
class MeshBlockArrays:
    """The mesh of one map block.

    index: (3,) int block index; vertices: (N, 3) float32 metres; triangles: (M, 3) uint32
    indices into vertices; colors: (N, 3) uint8; labels: (N,) uint16; confidence: (N,)
    float32; flags: (N,) uint8 (SemanticVoxelChunk.FLAG_* bits).
    """

    index: np.ndarray
    vertices: np.ndarray
    triangles: np.ndarray
    colors: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    flags: np.ndarray


@dataclass
class MeshUpdateArrays:
    """One SemanticMesh message: replaced blocks, removed block indices (K, 3), clear_all."""

    block_size: float
    blocks: list[MeshBlockArrays] = field(default_factory=list)
    cleared_blocks: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int32))
    clear_all: bool = False


def block_to_msg(block: MeshBlockArrays) -> SemanticMeshBlock:
    vertices = np.asarray(block.vertices, dtype=np.float32)
    n = vertices.shape[0] if vertices.ndim == 2 else -1
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InconsistentMessage(f"block vertices must be (N, 3), got {vertices.shape}")
    triangles = np.asarray(block.triangles)
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise InconsistentMessage(f"block triangles must be (M, 3), got {triangles.shape}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= n):
        raise InconsistentMessage(f"triangle indices span [{triangles.min()}, {triangles.max()}] for {n} vertices")
    for name, values, shape in [
        ("colors", block.colors, (n, 3)),
        ("labels", block.labels, (n,)),
        ("confidence", block.confidence, (n,)),
        ("flags", block.flags, (n,)),
    ]:
        if np.shape(values) != shape:
            raise InconsistentMessage(f"block {name} must have shape {shape}, got {np.shape(values)}")
    msg = SemanticMeshBlock()
    msg.index = [int(v) for v in np.asarray(block.index).reshape(3)]
    msg.vertices = to_array(vertices, np.float32)
    msg.triangles = to_array(triangles, np.uint32)
    msg.colors = to_array(block.colors, np.uint8)
    msg.labels = to_array(block.labels, np.uint16)
    msg.confidence = to_array(block.confidence, np.float32)
    msg.flags = to_array(block.flags, np.uint8)
    return msg


def msg_to_block(msg: SemanticMeshBlock) -> MeshBlockArrays:
    vertices = from_array(msg.vertices, np.float32)
    triangles = from_array(msg.triangles, np.uint32)
    if vertices.size % 3 or triangles.size % 3:
        raise InconsistentMessage(
            f"mesh block {list(msg.index)}: {vertices.size} vertex floats and {triangles.size} "
            "triangle indices must both be multiples of 3"
        )
    vertices = vertices.reshape(-1, 3)
    n = vertices.shape[0]
    colors = from_array(msg.colors, np.uint8)
    labels = from_array(msg.labels, np.uint16)
    confidence = from_array(msg.confidence, np.float32)
    flags = from_array(msg.flags, np.uint8)
    if colors.size != 3 * n or labels.size != n or confidence.size != n or flags.size != n:
        raise InconsistentMessage(
            f"mesh block {list(msg.index)} has {n} vertices but {colors.size // 3} colors, "
            f"{labels.size} labels, {confidence.size} confidences, {flags.size} flags"
        )
    triangles = triangles.reshape(-1, 3)
    if triangles.size and triangles.max() >= n:
        raise InconsistentMessage(f"mesh block {list(msg.index)} indexes vertex {triangles.max()} of {n}")
    return MeshBlockArrays(
        np.array(list(msg.index), dtype=np.int32), vertices, triangles, colors.reshape(-1, 3), labels, confidence, flags
    )


def update_to_msg(update: MeshUpdateArrays, frame_id: str, stamp_ns: int = 0) -> SemanticMesh:
    msg = SemanticMesh()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.block_size = float(update.block_size)
    msg.clear_all = bool(update.clear_all)
    msg.blocks = [block_to_msg(block) for block in update.blocks]
    cleared = np.asarray(update.cleared_blocks, dtype=np.int32).reshape(-1, 3)
    msg.cleared_blocks = to_array(cleared, np.int32)
    return msg


def msg_to_update(msg: SemanticMesh) -> tuple[MeshUpdateArrays, str, int]:
    cleared = from_array(msg.cleared_blocks, np.int32)
    if cleared.size % 3:
        raise InconsistentMessage(f"cleared_blocks has {cleared.size} ints, not a multiple of 3")
    update = MeshUpdateArrays(
        float(msg.block_size), [msg_to_block(b) for b in msg.blocks], cleared.reshape(-1, 3), bool(msg.clear_all)
    )
    return update, msg.header.frame_id, stamp_to_ns(msg.header.stamp)


class MeshAssembler:
    """Keeps a copy of the mesh up to date from SemanticMesh updates (what a subscriber does)."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[int, int, int], MeshBlockArrays] = {}

    def apply(self, update: MeshUpdateArrays) -> None:
        if update.clear_all:
            self.blocks.clear()
        for index in np.asarray(update.cleared_blocks).reshape(-1, 3):
            self.blocks.pop(tuple(int(v) for v in index), None)
        for block in update.blocks:
            self.blocks[tuple(int(v) for v in block.index)] = block

    def mesh(self) -> dict[str, np.ndarray]:
        """Concatenated vertices, triangles (re-indexed), colors, labels, confidence, flags."""
        keys = sorted(self.blocks)
        parts = [self.blocks[k] for k in keys]
        offsets = np.cumsum([0] + [p.vertices.shape[0] for p in parts])
        if not parts:
            return {
                "vertices": np.zeros((0, 3), np.float32), "triangles": np.zeros((0, 3), np.int64),
                "colors": np.zeros((0, 3), np.uint8), "labels": np.zeros(0, np.uint16),
                "confidence": np.zeros(0, np.float32), "flags": np.zeros(0, np.uint8),
            }
        return {
            "vertices": np.concatenate([p.vertices for p in parts]),
            "triangles": np.concatenate([p.triangles.astype(np.int64) + o for p, o in zip(parts, offsets)]),
            "colors": np.concatenate([p.colors for p in parts]),
            "labels": np.concatenate([p.labels for p in parts]),
            "confidence": np.concatenate([p.confidence for p in parts]),
            "flags": np.concatenate([p.flags for p in parts]),
        }
