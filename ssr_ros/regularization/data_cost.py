"""The data cost of the semantic labelling, from a dense chunk of the fused map.

Label space: ``L = num_classes`` labels; label 0 is **free space** (the taxonomy's id 0,
"unknown", never labels a surface, so its slot is reused) and label ``c >= 1`` is taxonomy
class ``c``. A labelling ``u: (L, X, Y, Z)`` holds one indicator per label and voxel.

Per voxel, the fused TSDF gives an occupancy probability (a sigmoid of the distance to the
occupied half-voxel, as the ground truth defines occupancy: ``sdf < voxel_size / 2``), the
fused class evidence splits it among the classes, and the cost of a label is its negative
log probability (occupancy and class terms capped separately, shifted so the cheapest label
costs 0), scaled by how much the voxel was observed. Voxels never observed cost nothing (``f = 0``: the regulariser fills them);
voxels a camera saw free (``chunk.free``) make every non-free label cost ``free_space_cost``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssr_ros.config import param, validate_config
from ssr_ros.map.chunk import DenseChunk

FREE_LABEL = 0
"""Label index of free space (the taxonomy's id 0 is never a surface class)."""


@dataclass
class DataCostConfig:
    """How fused TSDF and class evidence become per-label costs."""

    weight_saturation: float = param(
        4.0, "fused TSDF weight at which a voxel's data cost reaches full strength", low=0.01, high=1000.0
    )
    occupancy_width_voxels: float = param(
        0.5, "width of the TSDF -> occupancy sigmoid, voxels", low=0.05, high=10.0
    )
    class_floor: float = param(
        0.1, "share of a voxel's occupancy spread evenly over all classes (keeps unseen classes finite)",
        low=0.0, high=1.0,
    )
    max_cost: float = param(3.0, "cap of each of the occupancy and class terms of a label's cost", low=0.1, high=100.0)
    free_space_cost: float = param(
        0.5, "cost of every non-free label in voxels a camera saw free (not fused)", low=0.0, high=100.0
    )

    def validate(self) -> "DataCostConfig":
        return validate_config(self)


def data_cost(chunk: DenseChunk, config: DataCostConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-label cost ``f: (L, X, Y, Z)`` float32 and its strength ``(X, Y, Z)`` in [0, 1]
    (0 where the voxel carries no data cost), on the chunk's device; ``L = chunk.semantics.shape[-1]``."""
    config = (config or DataCostConfig()).validate()
    vs = chunk.voxel_size
    L = chunk.semantics.shape[-1]
    occupancy = torch.sigmoid((0.5 * vs - chunk.tsdf) / (config.occupancy_width_voxels * vs))
    classes = chunk.semantics[..., 1:].to(torch.float32)
    total = classes.sum(-1, keepdim=True)
    uniform = torch.full_like(classes, 1.0 / max(L - 1, 1))
    classes = torch.where(total > 0, classes / total.clamp(min=1e-12), uniform)
    classes = (1.0 - config.class_floor) * classes + config.class_floor * uniform
    # occupancy and class terms are capped separately, so the class preference survives in
    # voxels that are confidently free (the label the voxel would take as surface)
    cap = config.max_cost
    free_cost = (-torch.log((1.0 - occupancy).clamp(min=1e-6))).clamp(max=cap)
    occupied_cost = (-torch.log(occupancy.clamp(min=1e-6))).clamp(max=cap)
    class_cost = (-torch.log(classes.clamp(min=1e-6))).clamp(max=cap)
    cost = torch.cat([free_cost[..., None], occupied_cost[..., None] + class_cost], dim=-1)
    cost = cost - cost.amin(-1, keepdim=True)
    strength = torch.where(chunk.observed, (chunk.weight / config.weight_saturation).clamp(0.0, 1.0),
                           torch.zeros_like(chunk.weight))
    cost = cost * strength[..., None]
    if chunk.free is not None:
        seen_free = chunk.free & ~chunk.observed
        free_cost = torch.full_like(cost, config.free_space_cost)
        free_cost[..., FREE_LABEL] = 0.0
        cost = torch.where(seen_free[..., None], free_cost, cost)
        strength = torch.where(seen_free, torch.ones_like(strength), strength)
    return cost.permute(3, 0, 1, 2).contiguous(), strength


def network_input(chunk: DenseChunk, config: DataCostConfig | None = None) -> torch.Tensor:
    """Input features of the learned regulariser ``(L + 2, X, Y, Z)``: the data cost, its
    strength, and the observed TSDF over the truncation (0 where unobserved)."""
    cost, strength = data_cost(chunk, config)
    tsdf = torch.where(chunk.observed, chunk.tsdf / chunk.truncation, torch.zeros_like(chunk.tsdf))
    return torch.cat([cost, strength[None], tsdf[None]], dim=0)


def raw_labels(chunk: DenseChunk) -> torch.Tensor:
    """(X, Y, Z) int64 label of plain fusion: the fused class where the voxel has class
    evidence, else free space (0)."""
    has = chunk.semantics.sum(-1) > 0
    return torch.where(has, chunk.semantics.argmax(-1), torch.zeros_like(chunk.tsdf, dtype=torch.int64))


def crop_chunk(chunk: DenseChunk, start: tuple[int, int, int], size: tuple[int, int, int]) -> DenseChunk:
    """The sub-box of ``chunk`` of ``size`` voxels starting at local index ``start`` (views, no copy)."""
    sl = tuple(slice(s, s + n) for s, n in zip(start, size))

    def cut(t):
        return None if t is None else t[sl]

    return DenseChunk(
        origin_voxel=chunk.origin_voxel + torch.as_tensor(start, dtype=torch.int64, device=chunk.origin_voxel.device),
        voxel_size=chunk.voxel_size, truncation=chunk.truncation,
        tsdf=chunk.tsdf[sl], weight=chunk.weight[sl], observed=chunk.observed[sl], color=chunk.color[sl],
        semantics=chunk.semantics[sl], predicted=chunk.predicted[sl],
        predicted_tsdf=cut(chunk.predicted_tsdf), predicted_color=cut(chunk.predicted_color),
        predicted_label=cut(chunk.predicted_label), predicted_confidence=cut(chunk.predicted_confidence),
        free=cut(chunk.free),
    )
