"""Map pieces (block meshes, voxel block layers) -> the arrays our message conversions take."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ssr_ros.map.meshing import BlockMesh
from ssr_ros.ros.conversions.semantic_map import FLAG_OBSERVED, FLAG_PREDICTED, VoxelBox
from ssr_ros.ros.conversions.semantic_mesh import MeshBlockArrays


def vertex_flags(mesh: BlockMesh) -> np.ndarray:
    """(N,) uint8 message flags of a block mesh's vertices: observed / predicted."""
    return (mesh.observed.astype(np.uint8) * FLAG_OBSERVED + mesh.predicted.astype(np.uint8) * FLAG_PREDICTED).astype(np.uint8)


def mesh_blocks_to_arrays(meshes: Iterable[BlockMesh]) -> list[MeshBlockArrays]:
    """One MeshBlockArrays per block mesh; observed/predicted become the message flags."""
    out = []
    for mesh in meshes:
        flags = vertex_flags(mesh)
        out.append(MeshBlockArrays(
            index=np.asarray(mesh.index, dtype=np.int32), vertices=mesh.vertices.astype(np.float32),
            triangles=mesh.triangles.astype(np.uint32), colors=mesh.colors, labels=mesh.labels.astype(np.uint16),
            confidence=mesh.confidence.astype(np.float32), flags=flags.astype(np.uint8),
        ))
    return out


def voxel_blocks_to_boxes(coords: np.ndarray, layers: dict[str, np.ndarray], voxel_size: float,
                          block_size: int) -> list[VoxelBox]:
    """One VoxelBox (chunk message) per block of :func:`ssr_ros.map.voxel_export.block_layers`."""
    return [
        VoxelBox(
            origin=np.asarray(coords[k], dtype=np.float64) * block_size * voxel_size,
            tsdf=layers["tsdf"][k], weight=layers["weight"][k], color=layers["color"][k],
            label=layers["label"][k], confidence=layers["confidence"][k], flags=layers["flags"][k],
        )
        for k in range(len(coords))
    ]
