"""The regularisation stage of the mapping pipeline: run a regulariser on dense chunks of the
map and write what it finds back without touching anything measured.

Per chunk (``chunk_size`` voxels with ``margin`` voxels of context on each side, only the core
is written):

- observed voxels with fused class evidence get a regularised label and confidence in the
  :class:`~ssr_ros.regularization.labels.RegularizedLabels` store (flag ``observed``); their
  fused TSDF and evidence stay as measured;
- with ``relabel_predicted``, voxels completion predicted are relabelled in the map's predicted
  layer (their geometry is written back unchanged), with the regulariser's confidence;
- other unobserved voxels whose most likely label is a class with at least ``min_confidence``
  become *inferred* entries of the store (flag ``observed`` false).

Regularisers are chosen by ``regularization.type`` from :data:`REGULARIZERS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ssr_ros.map.chunk import DenseChunk
from ssr_ros.regularization.config import RegularizationConfig
from ssr_ros.regularization.data_cost import FREE_LABEL, DataCostConfig, data_cost, network_input
from ssr_ros.regularization.energy.tv_l1 import TVL1Config, solve_tv_l1
from ssr_ros.regularization.labels import RegularizedLabels


TIE_BREAK = 1e-4


class TVL1ChunkRegularizer:
    """Label probabilities of a chunk by multi-label TV-L1 (no training)."""

    name = "tv_l1"

    def __init__(self, tv_l1: TVL1Config, cost: DataCostConfig) -> None:
        self.tv_l1, self.cost = tv_l1, cost
        self.last_iterations = 0

    def __call__(self, chunk: DenseChunk) -> torch.Tensor:
        """(L, X, Y, Z) indicators on the simplex (ties broken by the data cost)."""
        f, _ = data_cost(chunk, self.cost)
        result = solve_tv_l1(f, self.tv_l1)
        self.last_iterations = result.iterations
        # The simplex projection leaves exact zeros (e.g. every class of a free voxel); a trace
        # of the data cost's own preference breaks those ties without changing any decision.
        return (result.u + TIE_BREAK * torch.softmax(-f, dim=0)) / (1.0 + TIE_BREAK)


class LearnedChunkRegularizer:
    """Label probabilities of a chunk by the learned primal-dual network."""

    name = "learned"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.last_iterations = model.config.iterations

    @torch.inference_mode()
    def __call__(self, chunk: DenseChunk) -> torch.Tensor:
        device = next(self.model.parameters()).device
        features = network_input(chunk, self.model.data_cost).to(device)
        return torch.softmax(self.model(features[None]), dim=1)[0].to(chunk.device)


def _build_tv_l1(config: RegularizationConfig, **_):
    return TVL1ChunkRegularizer(config.tv_l1, config.data_cost)


def _build_learned(config: RegularizationConfig, class_names=None, voxel_size=None, truncation=None, device="cpu"):
    from ssr_ros.regularization.weights import (
        check_regularizer_contract, default_regularizer_weights, load_regularizer,
    )

    model = load_regularizer(config.weights or default_regularizer_weights(), device)
    if class_names is not None:
        check_regularizer_contract(model.contract, voxel_size, truncation, class_names)
    return LearnedChunkRegularizer(model)


REGULARIZERS = {"none": lambda config, **_: None, "tv_l1": _build_tv_l1, "learned": _build_learned}
"""``regularization.type`` -> builder(config, class_names=, voxel_size=, truncation=, device=)."""


def build_regularizer(config: RegularizationConfig, class_names: list[str] | None = None,
                      voxel_size: float | None = None, truncation: float | None = None,
                      device: str | torch.device = "cpu"):
    """The chunk regulariser for ``config.type`` (None for 'none'); a learned model is checked
    against the map's voxel size, truncation and classes when they are given."""
    return REGULARIZERS[config.validate().type](
        config, class_names=class_names, voxel_size=voxel_size, truncation=truncation, device=device
    )


def chunk_origins(block_coords: torch.Tensor, block_size: int, core: int) -> torch.Tensor:
    """(K, 3) int64 global voxel origins of the cores (side ``core``) that hold allocated blocks."""
    if block_coords.numel() == 0:
        return torch.zeros((0, 3), dtype=torch.int64)
    lo = block_coords.to(torch.int64).cpu() * block_size
    first = torch.div(lo, core, rounding_mode="floor")
    last = torch.div(lo + block_size - 1, core, rounding_mode="floor")
    cells = [first]
    for corner in range(1, 8):
        pick = torch.tensor([(corner >> a) & 1 for a in range(3)], dtype=torch.bool)
        cells.append(torch.where(pick, last, first))
    return torch.unique(torch.cat(cells), dim=0) * core


@dataclass
class RegularizationReport:
    chunks: int = 0
    observed: int = 0
    inferred: int = 0
    predicted_relabelled: int = 0
    seconds: float = 0.0
    iterations: int = 0


def regularize_chunk(regularizer, chunk: DenseChunk, margin: int, config: RegularizationConfig):
    """Run ``regularizer`` on ``chunk`` and split its core into what is written where.

    Returns (core DenseChunk, probs (L, *core), class label (*core), class confidence (*core),
    observed entries mask, inferred entries mask).
    """
    probs = regularizer(chunk)
    core = tuple(slice(margin, n - margin) for n in chunk.size)
    probs = probs[(slice(None),) + core]
    classes = probs[FREE_LABEL + 1:]
    class_mass = classes.sum(0).clamp(min=1e-12)
    best, label = classes.max(0)
    label = label + 1
    confidence = best / class_mass  # how sure the class is, given the voxel is surface
    observed = chunk.observed[core] & (chunk.semantics[core].sum(-1) > 0)
    inferred = ~chunk.observed[core] & ~chunk.predicted[core] & (probs.argmax(0) != FREE_LABEL) & (best >= config.min_confidence)
    if chunk.free is not None:
        inferred &= ~chunk.free[core]
    return core, probs, label, confidence, observed, inferred


def regularize_map(regularizer, access, block_coords: torch.Tensor, block_size: int, config: RegularizationConfig,
                   store: RegularizedLabels, num_classes: int) -> RegularizationReport:
    """Regularise every chunk core holding one of ``block_coords`` (see the module docstring).

    ``access`` provides ``extract_chunk(origin_voxel, size)`` and ``write_predictions(origin_voxel,
    tsdf, semantics_probs=, confidence=)`` (a :class:`~ssr_ros.map.SemanticTSDF` or the pipeline's
    locked access).
    """
    report = RegularizationReport()
    if regularizer is None:
        return report
    start = time.perf_counter()
    margin = config.margin
    core_side = config.chunk_size - 2 * margin
    for origin in chunk_origins(block_coords, block_size, core_side):
        chunk = access.extract_chunk(origin - margin, (config.chunk_size,) * 3)
        core, probs, label, confidence, observed, inferred = regularize_chunk(regularizer, chunk, margin, config)
        report.iterations = max(report.iterations, int(getattr(regularizer, "last_iterations", 0)))
        axes = [torch.arange(n, device=label.device) for n in label.shape]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1) + origin.to(label.device)
        keep = observed | inferred
        store.replace_box(origin, origin + core_side, grid[keep], label[keep], confidence[keep], observed[keep])
        report.observed += int(observed.sum())
        report.inferred += int(inferred.sum())
        if config.relabel_predicted and chunk.predicted_tsdf is not None and bool(chunk.predicted[core].any()):
            tsdf = torch.where(chunk.predicted[core], chunk.predicted_tsdf[core], torch.full_like(label, float("nan"), dtype=torch.float32))
            taxonomy_probs = torch.cat([torch.zeros_like(probs[:1]), probs[1:]]).movedim(0, -1)
            taxonomy_probs = taxonomy_probs / taxonomy_probs.sum(-1, keepdim=True).clamp(min=1e-12)
            report.predicted_relabelled += access.write_predictions(
                origin, tsdf, semantics_probs=taxonomy_probs[..., :num_classes], confidence=confidence
            )
        report.chunks += 1
    report.seconds = time.perf_counter() - start
    return report
