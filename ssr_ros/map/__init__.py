"""The semantic TSDF map: block-sparse voxels with TSDF, weight, color and class evidence.

Public API::

    from ssr_ros.map import SemanticTSDF, TSDFConfig, MeshUpdate, BlockMesh, DenseChunk
    from ssr_ros.map import export_mesh_ply, export_voxels_ply

- ``SemanticTSDF(config, num_classes, device)``: ``integrate(frame)``; ``extract_chunk(origin,
  size) -> DenseChunk``; ``write_predictions(origin, tsdf, color, semantics_probs,
  confidence=None) -> int``; ``changed_blocks(since)`` / ``allocated_block_coords()`` /
  ``update_counter``; ``query(points)``; ``raycast(intrinsics, T_world_cam)``;
  ``update_mesh() -> MeshUpdate``; ``mesh() -> BlockMesh``; ``save(path)`` /
  ``SemanticTSDF.load(path, device)``; ``reset()``, ``memory_bytes()``, ``bytes_per_voxel()``,
  ``num_blocks``, ``stats()``.
- Storage: ``voxel_layer`` (:class:`VoxelLayer`, ``tsdf.layer``: hash, blocks, seen-free layer,
  config and public observed/predicted accessors), which every module below takes as an argument.
- Modules: ``config`` (TSDFConfig), ``block_hash`` (sorted-key block hash), ``voxel_blocks``
  (per-voxel storage, 15 B/voxel), ``semantic_evidence`` (top-2 class evidence),
  ``integration`` (torch kernels), ``native`` (compiled CPU kernels), ``meshing``,
  ``rendering`` (query, raycast), ``chunk_io`` (chunk extraction, prediction write-back),
  ``voxel_export`` (voxel maps, occupancy), ``map_file`` (save/load), ``ply_export``, ``chunk``,
  ``free_space`` (the seen-free layer, ``tsdf.free_space``).
"""

from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.meshing import BlockMesh, MeshUpdate
from ssr_ros.map.ply_export import export_mesh_ply, export_voxels_ply
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.map.voxel_layer import VoxelLayer

__all__ = [
    "BlockMesh",
    "DenseChunk",
    "MeshUpdate",
    "SemanticTSDF",
    "TSDFConfig",
    "VoxelLayer",
    "export_mesh_ply",
    "export_voxels_ply",
]
