"""Chunk extraction and prediction write-back: the completion network's access to the map.

Both functions take the map's :class:`~ssr_ros.map.voxel_layer.VoxelLayer`; see
:class:`~ssr_ros.map.chunk.DenseChunk` for the chunk convention.
"""

from __future__ import annotations

import torch

from ssr_ros.errors import InvalidInput
from ssr_ros.map.block_hash import check_coord_range
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.semantic_evidence import evidence_to_probs
from ssr_ros.map.voxel_layer import PREDICTED_WEIGHT
from ssr_ros.map.voxel_blocks import LAYERS


def chunk_voxels(layer, origin_voxel, size) -> tuple[torch.Tensor, tuple[int, int, int]]:
    origin = torch.as_tensor(origin_voxel, dtype=torch.int64, device=layer.device).reshape(-1)
    if origin.numel() != 3:
        raise InvalidInput(f"origin_voxel must have 3 entries, got {origin.tolist()}")
    size = tuple(int(n) for n in size)
    if len(size) != 3 or min(size) <= 0:
        raise InvalidInput(f"chunk size must be 3 positive integers, got {size}")
    axes = [torch.arange(n, device=layer.device) for n in size]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return grid + origin, size


def extract_chunk(layer, origin_voxel, size) -> DenseChunk:
    """Dense copy of the box of ``size = (X, Y, Z)`` voxels starting at ``origin_voxel``.

    Follows :class:`~ssr_ros.map.chunk.DenseChunk`: fused values only (tsdf = +truncation,
    weight 0, color 0, semantics 0 where nothing was fused); what the network wrote earlier
    is in ``predicted`` and the ``predicted_*`` fields; ``free`` marks the voxels not
    observed by fusion whose cell the free-space layer saw free (None when it is off).
    """
    voxels, size = chunk_voxels(layer, origin_voxel, size)
    values = layer.read(voxels)
    trunc = layer.truncation
    weight_stored = values["weight"]
    fused = weight_stored > 0
    predicted = weight_stored < 0
    tsdf = torch.where(fused, values["tsdf"] * trunc, torch.full_like(weight_stored, trunc))
    color = values["color"].to(torch.float32) / 255.0
    semantics = evidence_to_probs(values["labels"], values["counts"], layer.num_classes)
    semantics = torch.where(predicted[:, None], torch.zeros_like(semantics), semantics)
    nan = torch.full_like(weight_stored, float("nan"))
    shape = size
    observed = layer.observed(weight_stored)
    free = None
    if layer.free_space is not None:
        free = (layer.free_space.query(voxels) & ~observed).reshape(shape)
    return DenseChunk(
        origin_voxel=voxels[0].clone() if voxels.shape[0] else torch.zeros(3, dtype=torch.int64),
        voxel_size=layer.voxel_size,
        truncation=trunc,
        tsdf=tsdf.reshape(shape),
        weight=weight_stored.clamp(min=0.0).reshape(shape),
        observed=observed.reshape(shape),
        color=torch.where(fused[:, None], color, torch.zeros_like(color)).reshape(shape + (3,)),
        semantics=semantics.reshape(shape + (layer.num_classes,)),
        predicted=predicted.reshape(shape),
        predicted_tsdf=torch.where(predicted, values["tsdf"] * trunc, nan).reshape(shape),
        predicted_color=torch.where(predicted[:, None], color, torch.zeros_like(color)).reshape(shape + (3,)),
        predicted_label=torch.where(predicted, values["label"], torch.zeros_like(values["label"])).reshape(shape),
        predicted_confidence=torch.where(predicted, values["confidence"], torch.zeros_like(nan)).reshape(shape),
        free=free,
    )


def write_predictions(
    layer,
    origin_voxel,
    tsdf: torch.Tensor,
    color: torch.Tensor | None = None,
    semantics_probs: torch.Tensor | None = None,
    confidence: torch.Tensor | None = None,
) -> int:
    """Write the network's output for a chunk into the predicted layer.

    tsdf: (X, Y, Z) metres (NaN = no prediction for that voxel); color: (X, Y, Z, 3) in
    [0, 1] or None; semantics_probs: (X, Y, Z, N) class probabilities or None; confidence:
    (X, Y, Z) in [0, 1] or None (then the top probability). Observed voxels are never
    touched; unobserved ones (including voxels with some fused weight below
    ``observed_min_weight``) take the prediction and the ``predicted`` flag. A voxel a
    camera saw free (see :attr:`VoxelLayer.free_space`) never takes a predicted surface: where its
    predicted tsdf is below +truncation (surface or inside) it is left as it is, and no
    block is allocated for it. Blocks are allocated where the accepted prediction has a
    surface (|tsdf| < truncation). Returns the number of voxels written.
    """
    tsdf = torch.as_tensor(tsdf, device=layer.device, dtype=torch.float32)
    if tsdf.dim() != 3:
        raise InvalidInput(f"tsdf must be (X, Y, Z), got shape {tuple(tsdf.shape)}")
    size = tuple(tsdf.shape)
    if color is not None:
        color = torch.as_tensor(color, device=layer.device, dtype=torch.float32)
        if tuple(color.shape) != size + (3,):
            raise InvalidInput(f"color must have shape {size + (3,)}, got {tuple(color.shape)}")
    if semantics_probs is not None:
        semantics_probs = torch.as_tensor(semantics_probs, device=layer.device, dtype=torch.float32)
        if tuple(semantics_probs.shape) != size + (layer.num_classes,):
            raise InvalidInput(
                f"semantics_probs must have shape {size + (layer.num_classes,)}, got {tuple(semantics_probs.shape)}"
            )
    if confidence is not None:
        confidence = torch.as_tensor(confidence, device=layer.device, dtype=torch.float32)
        if tuple(confidence.shape) != size:
            raise InvalidInput(f"confidence must have shape {size}, got {tuple(confidence.shape)}")
    voxels, _ = chunk_voxels(layer, origin_voxel, size)
    flat_tsdf = tsdf.reshape(-1)
    valid = torch.isfinite(flat_tsdf)
    trunc = layer.truncation
    if layer.free_space is not None and layer.free_space.num_blocks:
        valid &= ~(layer.free_space.query(voxels) & (flat_tsdf < trunc))
    B = layer.block_size
    surface = valid & (flat_tsdf.abs() < trunc)
    stamp = layer.next_stamp()
    if bool(surface.any()):
        need = torch.unique(torch.div(voxels[surface], B, rounding_mode="floor"), dim=0)
        check_coord_range(need)
        layer.allocate(need, stamp)
    slot, local = layer.locate(voxels)
    weight_stored = layer.blocks.weight[slot.clamp(min=0), local].to(torch.float32)
    write = valid & (slot >= 0) & ~layer.observed(weight_stored)
    idx = torch.nonzero(write).squeeze(1)
    if idx.numel() == 0:
        return 0
    s, l = slot[idx], local[idx]
    layer.blocks.tsdf[s, l] = (flat_tsdf[idx] / trunc).clamp(-1.0, 1.0).to(torch.float16)
    layer.blocks.weight[s, l] = PREDICTED_WEIGHT
    if color is not None:
        rgb = torch.round(color.reshape(-1, 3)[idx].clamp(0.0, 1.0) * 255.0).to(torch.uint8)
        layer.blocks.color[s, l] = rgb
    if semantics_probs is not None:
        probs = semantics_probs.reshape(-1, layer.num_classes)[idx]
        top = torch.topk(probs, k=min(2, layer.num_classes), dim=-1)
        p1 = top.values[:, 0].clamp(0.0, 1.0)
        p2 = top.values[:, 1].clamp(0.0, 1.0) if layer.num_classes > 1 else torch.zeros_like(p1)
        l2 = top.indices[:, 1] if layer.num_classes > 1 else torch.zeros_like(top.indices[:, 0])
        c1 = confidence.reshape(-1)[idx].clamp(0.0, 1.0) if confidence is not None else p1
        c2 = torch.minimum(p2, 1.0 - c1)
        layer.blocks.sem_label[s, l] = torch.stack([top.indices[:, 0], l2], dim=1).to(torch.uint8)
        layer.blocks.sem_count[s, l] = torch.stack([c1, c2, torch.ones_like(c1)], dim=1).to(torch.float16)
    else:
        layer.blocks.sem_count[s, l] = 0.0
    layer.blocks.block_stamp[torch.unique(s)] = stamp
    return int(idx.numel())


def clear_predictions(layer, voxels: torch.Tensor) -> int:
    """Return the predicted voxels among ``voxels`` ((N, 3) int64 global indices) to unknown: the
    initial values of every layer. Observed and never-written voxels are left as they are (a
    voxel observed since it was predicted stays observed); fused evidence too weak to count as
    observed, which the prediction replaced, does not come back. Returns the number cleared."""
    voxels = torch.as_tensor(voxels, device=layer.device, dtype=torch.int64).reshape(-1, 3)
    if voxels.numel() == 0:
        return 0
    slot, local = layer.locate(voxels)
    found = slot >= 0
    predicted = torch.zeros_like(found)
    predicted[found] = layer.blocks.weight[slot[found], local[found]] == PREDICTED_WEIGHT
    idx = torch.nonzero(predicted).squeeze(1)
    if idx.numel() == 0:
        return 0
    s, l = slot[idx], local[idx]
    for name, (_, _, initial) in LAYERS.items():
        layer.blocks.layers[name][s, l] = initial
    layer.blocks.block_stamp[torch.unique(s)] = layer.next_stamp()
    return int(idx.numel())
