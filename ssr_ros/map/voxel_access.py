"""Reading voxels by global index: block lookup, local index, and decoded layer values."""

from __future__ import annotations

import torch

from ssr_ros.map.block_hash import BlockHash
from ssr_ros.map.semantic_evidence import evidence_label
from ssr_ros.map.voxel_blocks import VoxelBlocks


def locate_voxels(
    hash_table: BlockHash, block_size: int, voxels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) int64 global voxel indices -> (slot (N,) int64, -1 if unallocated; local (N,))."""
    block = torch.div(voxels, block_size, rounding_mode="floor")
    local = voxels - block * block_size
    slot = hash_table.lookup(block)
    local_index = local[:, 0] + block_size * (local[:, 1] + block_size * local[:, 2])
    return slot, local_index


def gather_layer(
    blocks: VoxelBlocks, name: str, slot: torch.Tensor, local: torch.Tensor, fill: float
) -> torch.Tensor:
    """Values of a layer at (slot, local); ``fill`` where slot < 0."""
    layer = blocks.layers[name]
    found = slot >= 0
    values = layer[slot.clamp(min=0), local]
    if values.dim() > 1:
        return torch.where(found[:, None], values, torch.full_like(values, fill))
    return torch.where(found, values, torch.full_like(values, fill))


def read_voxels(
    hash_table: BlockHash, blocks: VoxelBlocks, voxels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Raw decoded values of voxels (N, 3): tsdf (normalised, float32), weight (stored, float32,
    negative = predicted), color (uint8), label, confidence, labels (N, 2), counts (N, 3)."""
    slot, local = locate_voxels(hash_table, blocks.block_size, voxels)
    tsdf = gather_layer(blocks, "tsdf", slot, local, 1.0).to(torch.float32)
    weight = gather_layer(blocks, "weight", slot, local, 0.0).to(torch.float32)
    color = gather_layer(blocks, "color", slot, local, 0)
    labels = gather_layer(blocks, "sem_label", slot, local, 0)
    counts = gather_layer(blocks, "sem_count", slot, local, 0.0).to(torch.float32)
    label, confidence = evidence_label(labels, counts)
    return {
        "slot": slot, "local": local, "tsdf": tsdf, "weight": weight, "color": color,
        "labels": labels, "counts": counts, "label": label, "confidence": confidence,
    }
