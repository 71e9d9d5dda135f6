"""ssr_ros/SemanticVoxelMap of dense map blocks as a serialised CDR buffer, all chunks at once.

The voxel map of a 78 MB map is ~10,000 chunks of six voxel layers each; building a generated
SemanticVoxelChunk per block (six array conversions, a message object) and letting rclpy
serialise them took ~0.55 s of CPU every ``voxel_period_s``. Chunks of one map all have the same
size, so their CDR has one layout: it is filled as one NumPy structured array. What rclpy reads
back equals :func:`~ssr_ros.ros.conversions.semantic_map.boxes_to_map_msg` of
:func:`~ssr_ros.ros.map_outputs.voxel_blocks_to_boxes` of the same layers (tests compare them).
"""

from __future__ import annotations

import numpy as np

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.cdr import CdrWriter, aligned
from ssr_ros.taxonomy import ClassTaxonomy

# (field, dtype, values per voxel) in SemanticVoxelChunk order after origin and size
_LAYERS = (("tsdf", "<f4", 1), ("weight", "<f4", 1), ("color", "u1", 3), ("label", "<u2", 1),
           ("confidence", "<f4", 1), ("flags", "u1", 1))


def _chunk_dtype(voxels: int) -> tuple[np.dtype, int]:
    """The structured dtype of one chunk starting 8-aligned (itemsize padded to the next chunk)
    and the length of the chunk itself (without the padding after it)."""
    names, formats, offsets = ["origin", "size"], [("<f8", (3,)), ("<u4", (3,))], [0, 24]
    offset = 36
    for name, dtype, channels in _LAYERS:
        offset = aligned(offset, 4)
        names.append(f"{name}_count")
        formats.append("<u4")
        offsets.append(offset)
        offset = aligned(offset + 4, np.dtype(dtype).itemsize)
        names.append(name)
        formats.append((dtype, (voxels * channels,)))
        offsets.append(offset)
        offset += voxels * channels * np.dtype(dtype).itemsize
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": aligned(offset, 8)}), offset


def _per_chunk(values: np.ndarray, count: int, channels: int, name: str) -> np.ndarray:
    """Dense block layer (K, X, Y, Z[, C]) -> (K, X*Y*Z*C) in the message's voxel order (x fastest)."""
    values = np.asarray(values)
    if values.ndim != 4 + (channels > 1) or values.shape[0] != count:
        raise InconsistentMessage(f"voxel layer '{name}' has shape {values.shape} for {count} blocks")
    if channels == 1:
        return values.transpose(0, 3, 2, 1).reshape(count, -1)
    return values.transpose(0, 3, 2, 1, 4).reshape(count, -1)


def voxel_map_cdr(coords: np.ndarray, layers: dict[str, np.ndarray], voxel_size: float, block_size: int,
                  truncation: float, taxonomy: ClassTaxonomy, frame_id: str, stamp_ns: int = 0,
                  is_full_map: bool = True) -> bytes:
    """The serialised SemanticVoxelMap of dense block layers (as :func:`ssr_ros.map.voxel_export.block_layers`
    returns them: coords (K, 3), tsdf / weight / confidence (K, B, B, B) float32, color (K, B, B, B, 3)
    uint8, label uint16, flags uint8), one chunk per block with its origin at ``coords * block_size
    * voxel_size``."""
    coords = np.asarray(coords).reshape(-1, 3)
    count = coords.shape[0]
    out = CdrWriter()
    out.stamp(stamp_ns)
    out.string(frame_id)
    out.pack("ff", 4, float(voxel_size), float(truncation))
    out.pack("I", 4, len(taxonomy.classes))
    for c in taxonomy.classes:
        out.pack("H", 2, int(c.id))
        out.string(c.name)
        out.pack("BBB", 1, *(int(v) for v in c.color))
    out.pack("?", 1, bool(is_full_map))
    out.pack("I", 4, count)
    if not count:
        return out.bytes()
    size = tuple(int(n) for n in np.shape(layers["tsdf"])[1:])
    if len(size) != 3:
        raise InconsistentMessage(f"tsdf must be (K, X, Y, Z), got shape {np.shape(layers['tsdf'])}")
    voxels = size[0] * size[1] * size[2]
    dtype, length = _chunk_dtype(voxels)
    out.align(8)  # the first chunk's origin
    head = out.bytes()
    # one buffer for the whole message, the chunks filled in place as a structured array (the
    # 90 MB of a large map are copied once more, into the bytes rclpy publishes)
    buffer = np.zeros(len(head) + count * dtype.itemsize, dtype=np.uint8)
    buffer[: len(head)] = np.frombuffer(head, dtype=np.uint8)
    chunks = buffer[len(head) :].view(dtype)
    chunks["origin"] = coords.astype(np.float64) * block_size * voxel_size
    chunks["size"] = size
    for name, _, channels in _LAYERS:
        chunks[f"{name}_count"] = voxels * channels
        chunks[name] = _per_chunk(layers[name], count, channels, name)
    return memoryview(buffer)[: len(head) + (count - 1) * dtype.itemsize + length].tobytes()
