"""Voxel-level views of the map for publishing and export: per-block layers, surface voxels,
and a 2D occupancy projection for Nav2-style planners.

All functions take the map's storage (a :class:`~ssr_ros.map.voxel_layer.VoxelLayer`, or the
map whose layer it is) and read it (see :mod:`ssr_ros.map.voxel_blocks`) in bulk, without
Python loops over voxels. Flags follow ``ssr_ros/SemanticVoxelChunk``: 1 observed,
2 predicted, 4 occupied, where *occupied* means the surface passes within the voxel
(:func:`ssr_ros.map.surface_voxels.occupied_voxels`: ``-voxel_size < tsdf <= voxel_size / 2``, or
a voxel behind a surface next to one in front of it, as on a surface seen at a grazing angle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssr_ros.map.chunk_io import extract_chunk
from ssr_ros.map.semantic_evidence import evidence_label
from ssr_ros.map.surface_voxels import occupied_voxels
from ssr_ros.map.voxel_layer import as_layer

FLAG_OBSERVED = 1
FLAG_PREDICTED = 2
FLAG_OCCUPIED = 4


def flat_layers(layer) -> dict[str, torch.Tensor]:
    """Per-voxel values of every allocated voxel, flattened slot-major: (S * V, ...). Pass them to
    :func:`select_voxels` and :func:`block_layers` of the same layer to decode the map once."""
    weight_stored = layer.used("weight").to(torch.float32).reshape(-1)
    known = weight_stored != 0
    tsdf = layer.used("tsdf").to(torch.float32).reshape(-1) * layer.truncation
    labels, confidence = evidence_label(
        layer.used("sem_label").reshape(-1, 2), layer.used("sem_count").reshape(-1, 3)
    )
    observed = layer.observed(weight_stored)
    predicted = weight_stored < 0
    occupied = occupied_flat(layer, tsdf, known)
    flags = observed.to(torch.uint8) * FLAG_OBSERVED + predicted.to(torch.uint8) * FLAG_PREDICTED
    flags = flags + occupied.to(torch.uint8) * FLAG_OCCUPIED
    return {
        "tsdf": torch.where(known, tsdf, torch.full_like(tsdf, float("nan"))),
        "weight": weight_stored.clamp(min=0.0),
        "color": layer.used("color").reshape(-1, 3),
        "label": labels,
        "confidence": confidence,
        "flags": flags,
        "known": known,
        "observed": observed,
        "predicted": predicted,
        "occupied": occupied,
    }


def voxel_indices(layer, flat_index: torch.Tensor) -> torch.Tensor:
    """(N, 3) int64 global voxel indices of voxels given by slot-major flat indices."""
    B = layer.block_size
    V = B**3
    slot, local = flat_index // V, flat_index % V
    ijk = torch.stack([local % B, (local // B) % B, local // (B * B)], dim=1)
    return layer.block_coords()[slot] * B + ijk


def voxel_centres(layer, flat_index: torch.Tensor) -> torch.Tensor:
    """(N, 3) float32 map-frame centres of voxels given by slot-major flat indices."""
    return (voxel_indices(layer, flat_index).to(torch.float32) + 0.5) * layer.voxel_size


def occupied_flat(layer, tsdf: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(S * V,) bool over the slot-major voxels of ``layer`` (see :func:`flat_layers`):
    :func:`~ssr_ros.map.surface_voxels.occupied_voxels` of its known voxels, ``tsdf`` in metres."""
    index = torch.nonzero(known).squeeze(1)
    occupied = torch.zeros_like(known)
    if index.numel() == 0:
        return occupied
    coords = voxel_indices(layer, index).cpu().numpy()
    lo = coords.min(axis=0)
    shape = tuple(int(n) for n in coords.max(axis=0) - lo + 1)
    values = tsdf[index].cpu().numpy().astype(np.float32)
    occupied[index] = torch.from_numpy(occupied_voxels(coords - lo, shape, values, float(layer.voxel_size))).to(known.device)
    return occupied


def select_voxels(layer, which: str = "surface", layers: dict[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
    """Voxels of one kind with their attributes, as NumPy arrays.

    which: 'surface' (occupied: the surface passes within the voxel), 'observed', or 'known'
    (observed or predicted or with any fused weight).
    Returns points (N, 3) float32 centres, colors (N, 3) uint8, labels (N,) int64,
    confidence (N,) float32, observed / predicted (N,) bool, tsdf (N,) metres, weight (N,).
    layers: :func:`flat_layers` of ``layer`` where already decoded.
    """
    layer = as_layer(layer)
    if which not in ("surface", "observed", "known"):
        raise ValueError(f"which={which!r} is not supported; expected 'surface', 'observed' or 'known'")
    layers = flat_layers(layer) if layers is None else layers
    mask = {"surface": layers["occupied"], "observed": layers["observed"], "known": layers["known"]}[which]
    index = torch.nonzero(mask).squeeze(1)
    return {
        "points": voxel_centres(layer, index).cpu().numpy(),
        "colors": layers["color"][index].cpu().numpy(),
        "labels": layers["label"][index].cpu().numpy(),
        "confidence": layers["confidence"][index].cpu().numpy().astype(np.float32),
        "observed": layers["observed"][index].cpu().numpy(),
        "predicted": layers["predicted"][index].cpu().numpy(),
        "tsdf": layers["tsdf"][index].cpu().numpy(),
        "weight": layers["weight"][index].cpu().numpy(),
    }


def known_voxel_states(layer) -> dict[str, np.ndarray]:
    """What planning reads of every known voxel (observed, predicted or with any fused weight).

    Returns voxel (N, 3) int64 global voxel indices (centre = (voxel + 0.5) * voxel_size), tsdf
    (N,) float32 metres, predicted (N,) bool, and confidence (N,) float32: the label confidence of
    predicted voxels, 0 for the others. The same voxels and values as ``select_voxels(layer,
    "known")`` without decoding colors and labels of the whole map, most of that function's cost.
    """
    layer = as_layer(layer)
    weight = layer.used("weight").reshape(-1)
    known = weight != 0
    index = torch.nonzero(known).squeeze(1)
    weight = weight[index]
    predicted = weight < 0
    voxel = voxel_indices(layer, index)
    tsdf = layer.used("tsdf").reshape(-1)[index].to(torch.float32) * layer.truncation
    confidence = torch.zeros(index.shape[0], dtype=torch.float32, device=index.device)
    chosen = index[predicted]
    if chosen.numel():
        _, conf = evidence_label(layer.used("sem_label").reshape(-1, 2)[chosen], layer.used("sem_count").reshape(-1, 3)[chosen])
        confidence[predicted] = conf
    return {"voxel": voxel.cpu().numpy(), "tsdf": tsdf.cpu().numpy(), "predicted": predicted.cpu().numpy(),
            "confidence": confidence.cpu().numpy()}


def block_layers(layer, block_coords: torch.Tensor | None = None,
                 layers: dict[str, torch.Tensor] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dense per-block layers indexed ``[block, i, j, k]`` (x, y, z), for voxel map messages.

    block_coords: (K, 3) block indices to export (unallocated ones are skipped); None = all.
    Returns the (K', 3) exported block indices and tsdf (metres, NaN unknown), weight,
    color (..., 3) uint8, label uint16, confidence float32 and flags uint8, each (K', B, B, B).
    layers: :func:`flat_layers` of ``layer`` where already decoded.
    """
    layer = as_layer(layer)
    B = layer.block_size
    if block_coords is None:
        slots = torch.arange(layer.num_blocks, device=layer.device)
    else:
        block_coords = torch.as_tensor(block_coords, dtype=torch.int64, device=layer.device).reshape(-1, 3)
        slots = layer.lookup(block_coords)
        slots = slots[slots >= 0]
    coords = layer.block_coords()[slots]
    layers = flat_layers(layer) if layers is None else layers
    V = B**3
    index = (slots[:, None] * V + torch.arange(V, device=slots.device)[None]).reshape(-1)

    def dense(values: torch.Tensor) -> np.ndarray:
        shaped = values[index].reshape((-1, B, B, B) + tuple(values.shape[1:]))  # [block, k, j, i]
        return shaped.transpose(1, 3).cpu().numpy()  # -> [block, i, j, k]

    return coords.cpu().numpy(), {
        "tsdf": dense(layers["tsdf"]).astype(np.float32),
        "weight": dense(layers["weight"]).astype(np.float32),
        "color": dense(layers["color"]).astype(np.uint8),
        "label": dense(layers["label"]).astype(np.uint16),
        "confidence": dense(layers["confidence"]).astype(np.float32),
        "flags": dense(layers["flags"]).astype(np.uint8),
    }


@dataclass
class OccupancyGrid2D:
    """A 2D occupancy grid in the map's x-y plane (ROS OccupancyGrid semantics).

    origin: (x, y) metres of cell [0, 0]'s minimum corner; resolution: metres per cell;
    data: (H, W) int8 indexed [row = y, column = x]: 100 occupied, 0 free, -1 unknown.
    """

    origin: tuple[float, float]
    resolution: float
    data: np.ndarray


def occupancy_projection(
    layer, min_z: float, max_z: float, include_predicted: bool = False, min_confidence: float = 0.0
) -> OccupancyGrid2D:
    """Project the voxels whose centres lie in [min_z, max_z] onto the x-y plane.

    A cell is occupied if any such voxel is occupied, free if it has known free voxels
    (tsdf > voxel_size / 2) and no occupied one, unknown otherwise. Only measured (fused)
    voxels count unless ``include_predicted``; then predicted voxels whose confidence
    reaches ``min_confidence`` count too. An OccupancyGrid cannot say which cells were
    predicted, so a planner gets predictions there only when it asks for them.
    """
    layer = as_layer(layer)
    voxel = layer.voxel_size
    layers = flat_layers(layer)
    usable = layers["known"] & ~layers["predicted"]
    if include_predicted:
        usable |= layers["predicted"] & (layers["confidence"] >= min_confidence)
    index = torch.nonzero(usable).squeeze(1)
    if index.numel() == 0:
        return OccupancyGrid2D((0.0, 0.0), voxel, np.full((0, 0), -1, dtype=np.int8))
    centres = voxel_centres(layer, index)
    in_band = (centres[:, 2] >= min_z) & (centres[:, 2] <= max_z)
    cells = torch.floor(centres[:, :2] / voxel).to(torch.int64)
    lo = cells.min(dim=0).values
    hi = cells.max(dim=0).values
    width, height = int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)
    grid = torch.full((height * width,), -1, dtype=torch.int8, device=centres.device)
    flat = (cells[:, 1] - lo[1]) * width + (cells[:, 0] - lo[0])
    free = in_band & (layers["tsdf"][index] > 0.5 * voxel)
    occupied = in_band & layers["occupied"][index]
    grid[flat[free]] = 0
    grid[flat[occupied]] = 100
    return OccupancyGrid2D(
        (float(lo[0]) * voxel, float(lo[1]) * voxel), voxel, grid.reshape(height, width).cpu().numpy()
    )


def dense_volume(layer, origin_voxel, size) -> dict[str, np.ndarray]:
    """The map on a dense box, observed and predicted layers combined, for evaluation.

    Returns ``origin_voxel`` (3,), ``voxel_size``, ``tsdf`` (X, Y, Z) metres (+truncation where
    unknown), ``class_ids`` (X, Y, Z) int64 (fused label where observed, the network's label
    where predicted, 0 elsewhere), ``observed`` and ``predicted`` (X, Y, Z) bool: the format of
    :mod:`ssr_ros.evaluation.report`.
    """
    layer = as_layer(layer)
    chunk = extract_chunk(layer, origin_voxel, size)
    predicted = chunk.predicted
    tsdf = chunk.tsdf
    if chunk.predicted_tsdf is not None:
        tsdf = torch.where(predicted, chunk.predicted_tsdf, tsdf)
    has_evidence = chunk.semantics.sum(dim=-1) > 0
    labels = torch.where(has_evidence, chunk.semantics.argmax(dim=-1), torch.zeros_like(has_evidence, dtype=torch.int64))
    if chunk.predicted_label is not None:
        labels = torch.where(predicted, chunk.predicted_label.to(torch.int64), labels)
    return {
        "origin_voxel": chunk.origin_voxel.cpu().numpy(),
        "voxel_size": np.float64(layer.voxel_size),
        "tsdf": tsdf.cpu().numpy(),
        "class_ids": labels.cpu().numpy(),
        "observed": chunk.observed.cpu().numpy(),
        "predicted": predicted.cpu().numpy(),
    }
