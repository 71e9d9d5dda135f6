"""ssr_ros/SemanticVoxelMap and SemanticVoxelChunk <-> dense NumPy voxel boxes.

Dense arrays are indexed ``[i, j, k]`` along the map's x, y, z axes (the core's chunk
convention); the message flattens them with x varying fastest (``n = i + X * (j + Y * k)``),
which is NumPy's Fortran order of an (X, Y, Z) array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.errors import InconsistentMessage
from ssr_ros.msg import ClassInfo, SemanticVoxelChunk, SemanticVoxelMap
from ssr_ros.ros.conversions.arrays import from_array, to_array
from ssr_ros.ros.conversions.time import ns_to_stamp, stamp_to_ns
from ssr_ros.taxonomy import ClassTaxonomy, SemanticClass

FLAG_OBSERVED = SemanticVoxelChunk.FLAG_OBSERVED
FLAG_PREDICTED = SemanticVoxelChunk.FLAG_PREDICTED
FLAG_OCCUPIED = SemanticVoxelChunk.FLAG_OCCUPIED


@dataclass
class VoxelBox:
    """A dense box of voxels as carried by one SemanticVoxelChunk.

    origin: (3,) float64 minimum corner of voxel [0, 0, 0], metres, map frame.
    tsdf, weight, confidence: (X, Y, Z) float32; color: (X, Y, Z, 3) uint8;
    label: (X, Y, Z) uint16; flags: (X, Y, Z) uint8 (FLAG_* bits).
    Optional layers may be None (sent as empty arrays).
    """

    origin: np.ndarray
    tsdf: np.ndarray
    weight: np.ndarray | None = None
    color: np.ndarray | None = None
    label: np.ndarray | None = None
    confidence: np.ndarray | None = None
    flags: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.tsdf.shape)  # type: ignore[return-value]


def _flatten(values: np.ndarray, size: tuple[int, int, int], channels: int, name: str) -> np.ndarray:
    expected = size if channels == 1 else size + (channels,)
    if values.shape != expected:
        raise InconsistentMessage(f"voxel layer '{name}' has shape {values.shape}; expected {expected}")
    if channels == 1:
        return values.reshape(-1, order="F")
    return values.transpose(2, 1, 0, 3).reshape(-1, channels)


def _unflatten(flat: np.ndarray, size: tuple[int, int, int], channels: int, name: str) -> np.ndarray | None:
    count = size[0] * size[1] * size[2]
    if flat.size == 0 and count:
        return None
    if flat.size != count * channels:
        raise InconsistentMessage(
            f"chunk field '{name}' has {flat.size} values; expected {count * channels} "
            f"for {size[0]}x{size[1]}x{size[2]} voxels"
        )
    if channels == 1:
        return flat.reshape(size, order="F")
    return flat.reshape(size[2], size[1], size[0], channels).transpose(2, 1, 0, 3)


def box_to_chunk_msg(box: VoxelBox) -> SemanticVoxelChunk:
    size = box.size
    if len(size) != 3:
        raise InconsistentMessage(f"tsdf must be 3-D (X, Y, Z), got shape {box.tsdf.shape}")
    msg = SemanticVoxelChunk()
    msg.origin.x, msg.origin.y, msg.origin.z = (float(v) for v in np.asarray(box.origin, dtype=np.float64))
    msg.size_x, msg.size_y, msg.size_z = size
    msg.tsdf = to_array(_flatten(np.asarray(box.tsdf), size, 1, "tsdf"), np.float32)
    layers = [
        ("weight", box.weight, 1, np.float32),
        ("color", box.color, 3, np.uint8),
        ("label", box.label, 1, np.uint16),
        ("confidence", box.confidence, 1, np.float32),
        ("flags", box.flags, 1, np.uint8),
    ]
    for name, values, channels, dtype in layers:
        if values is not None:
            setattr(msg, name, to_array(_flatten(np.asarray(values), size, channels, name), dtype))
    return msg


def chunk_msg_to_box(msg: SemanticVoxelChunk) -> VoxelBox:
    size = (int(msg.size_x), int(msg.size_y), int(msg.size_z))
    tsdf = _unflatten(from_array(msg.tsdf, np.float32), size, 1, "tsdf")
    if tsdf is None:
        raise InconsistentMessage(f"chunk of {size} voxels has an empty tsdf field")
    return VoxelBox(
        origin=np.array([msg.origin.x, msg.origin.y, msg.origin.z], dtype=np.float64),
        tsdf=tsdf,
        weight=_unflatten(from_array(msg.weight, np.float32), size, 1, "weight"),
        color=_unflatten(from_array(msg.color, np.uint8), size, 3, "color"),
        label=_unflatten(from_array(msg.label, np.uint16), size, 1, "label"),
        confidence=_unflatten(from_array(msg.confidence, np.float32), size, 1, "confidence"),
        flags=_unflatten(from_array(msg.flags, np.uint8), size, 1, "flags"),
    )


def taxonomy_to_msgs(taxonomy: ClassTaxonomy) -> list[ClassInfo]:
    return [ClassInfo(id=c.id, name=c.name, r=c.color[0], g=c.color[1], b=c.color[2]) for c in taxonomy.classes]


def msgs_to_taxonomy(classes: list[ClassInfo], name: str = "from_message") -> ClassTaxonomy:
    ordered = sorted(classes, key=lambda c: c.id)
    return ClassTaxonomy(name, tuple(SemanticClass(int(c.id), c.name, (int(c.r), int(c.g), int(c.b))) for c in ordered))


def boxes_to_map_msg(
    boxes: list[VoxelBox],
    voxel_size: float,
    truncation: float,
    taxonomy: ClassTaxonomy,
    frame_id: str,
    stamp_ns: int = 0,
    is_full_map: bool = True,
) -> SemanticVoxelMap:
    msg = SemanticVoxelMap()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.voxel_size = float(voxel_size)
    msg.truncation = float(truncation)
    msg.classes = taxonomy_to_msgs(taxonomy)
    msg.is_full_map = bool(is_full_map)
    msg.chunks = [box_to_chunk_msg(box) for box in boxes]
    return msg


def map_msg_to_boxes(msg: SemanticVoxelMap) -> dict:
    """Dict with frame_id, stamp_ns, voxel_size, truncation, taxonomy, is_full_map, boxes."""
    return {
        "frame_id": msg.header.frame_id,
        "stamp_ns": stamp_to_ns(msg.header.stamp),
        "voxel_size": float(msg.voxel_size),
        "truncation": float(msg.truncation),
        "taxonomy": msgs_to_taxonomy(list(msg.classes)) if len(msg.classes) else None,
        "is_full_map": bool(msg.is_full_map),
        "boxes": [chunk_msg_to_box(chunk) for chunk in msg.chunks],
    }
