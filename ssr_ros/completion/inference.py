"""Running the completion network over a region of the map and writing predictions back.

The region is tiled by chunks that overlap by ``overlap`` voxels; chunks run through the
network in batches; overlapping predictions are blended with weights that ramp linearly
from a chunk's faces to its interior (so seams between chunks vanish); the blended TSDF,
color, class probabilities and a confidence (the largest class probability) go back into
the map's predicted layer through ``write_predictions``, which never overwrites observed
voxels.

The map is duck-typed: anything with

- ``extract_chunk(origin_voxel, size) -> DenseChunk`` and
- ``write_predictions(origin_voxel, tsdf, color, semantics_probs, confidence=None)``

works (``ssr_ros.map``'s ``SemanticTSDF`` in the package, a fake in tests).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput
from ssr_ros.map.chunk import DenseChunk


class ChunkMap(Protocol):
    def extract_chunk(self, origin_voxel: torch.Tensor, size: Sequence[int]) -> DenseChunk: ...

    def write_predictions(
        self,
        origin_voxel: torch.Tensor,
        tsdf: torch.Tensor,
        color: torch.Tensor,
        semantics_probs: torch.Tensor,
        confidence: torch.Tensor | None = None,
    ) -> None: ...


@dataclass
class CompletionConfig:
    """How the map is completed: which model, weights, chunking and device."""

    type: str = param("ssr_unet", "completion model: 'ssr_unet' (the SSR 3D U-Net) or 'none' (fusion only)", choices=["ssr_unet", "none"])
    weights: str = param("", "weights file (.pt); empty = the packaged default models/ssr_unet_small.pt")
    chunk_size: int = param(32, "chunk side, voxels (a multiple of the network's 2^(levels-1))", low=16, high=256)
    overlap: int = param(8, "overlap between neighbouring chunks, voxels (blended linearly)", low=0, high=128)
    batch_size: int = param(4, "chunks per network batch", low=1, high=256)
    device: str = param("auto", "'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'")
    min_confidence: float = param(0.0, "predictions below this confidence are not written", low=0.0, high=1.0)

    def validate(self) -> "CompletionConfig":
        validate_config(self)
        if self.overlap >= self.chunk_size:
            raise ConfigError(f"overlap={self.overlap} must be smaller than chunk_size={self.chunk_size}")
        return self


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available else cpu; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"device {device!r} is not a torch device: {error}") from error


@dataclass
class RegionPrediction:
    """Blended network predictions on a box of voxels starting at ``origin_voxel``.

    tsdf: (X, Y, Z) metres; color: (X, Y, Z, 3) in [0, 1] (zeros for a depth-only model);
    semantics_probs: (X, Y, Z, N) class probabilities; confidence: (X, Y, Z) in [0, 1].
    """

    origin_voxel: torch.Tensor
    tsdf: torch.Tensor
    color: torch.Tensor
    semantics_probs: torch.Tensor
    confidence: torch.Tensor


def chunk_origins(min_voxel: Sequence[int], max_voxel: Sequence[int], chunk_size: int, overlap: int) -> list[tuple[int, int, int]]:
    """Origins of overlapping chunks of side ``chunk_size`` covering [min_voxel, max_voxel).

    Chunks advance by ``chunk_size - overlap``; the last one on an axis may reach past
    ``max_voxel`` (the map reports unknown space there).
    """
    stride = chunk_size - overlap
    if stride <= 0:
        raise InvalidInput(f"overlap {overlap} must be smaller than chunk size {chunk_size}")
    per_axis = []
    for lo, hi in zip(min_voxel, max_voxel):
        extent = int(hi) - int(lo)
        if extent <= 0:
            raise InvalidInput(f"empty region: min_voxel {list(min_voxel)} max_voxel {list(max_voxel)}")
        count = 1 + max(0, math.ceil((extent - chunk_size) / stride))
        per_axis.append([int(lo) + i * stride for i in range(count)])
    return list(itertools.product(*per_axis))


def blend_weights(chunk_size: int, overlap: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(S, S, S) float32 product of per-axis linear ramps over ``overlap`` voxels at each face."""
    i = torch.arange(chunk_size, dtype=torch.float32, device=device)
    edge = torch.minimum(i, chunk_size - 1 - i) + 1.0
    ramp = (edge / (overlap + 1.0)).clamp(max=1.0)
    return ramp[:, None, None] * ramp[None, :, None] * ramp[None, None, :]


@torch.no_grad()
def predict_chunks(
    model: torch.nn.Module,
    chunk_map: ChunkMap,
    origins: Sequence[Sequence[int]],
    chunk_size: int = 32,
    overlap: int = 8,
    batch_size: int = 4,
    device: torch.device | str | None = None,
) -> RegionPrediction:
    """Run ``model`` (an :class:`~ssr_ros.completion.network.SSRUNet`) on cubic chunks at ``origins``.

    Overlapping chunks are blended with :func:`blend_weights` (``overlap`` voxels of ramp).
    Returns predictions on the bounding box of the chunks, on the map's device; voxels that
    no chunk covers have NaN TSDF (the map writes nothing there) and zero confidence.
    """
    from ssr_ros.completion.network import chunk_inputs

    config = model.config
    if not origins:
        raise InvalidInput("predict_chunks needs at least one chunk origin")
    if chunk_size % config.size_multiple:
        raise InvalidInput(f"chunk_size {chunk_size} must be a multiple of {config.size_multiple} for this network")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    origin_table = torch.tensor([[int(v) for v in o] for o in origins], dtype=torch.int64)
    lo = origin_table.amin(0)
    shape = tuple(int(v) for v in (origin_table.amax(0) - lo + chunk_size))
    n = config.num_classes
    weight_sum = tsdf_sum = color_sum = probs_sum = None
    ramp = None
    for start in range(0, len(origin_table), batch_size):
        batch_origins = origin_table[start : start + batch_size]
        chunks = [chunk_map.extract_chunk(o.clone(), (chunk_size,) * 3) for o in batch_origins]
        if weight_sum is None:
            out_device = chunks[0].device
            weight_sum = torch.zeros(shape, device=out_device)
            tsdf_sum = torch.zeros(shape, device=out_device)
            color_sum = torch.zeros(shape + (3,), device=out_device)
            probs_sum = torch.zeros(shape + (n,), device=out_device)
            ramp = blend_weights(chunk_size, overlap, out_device)
        geometry, color = chunk_inputs([_to(c, device) for c in chunks], config)
        out = model(geometry, color, chunks[0].truncation)
        probs = torch.softmax(out.semantic_logits, dim=1).permute(0, 2, 3, 4, 1).to(out_device)
        tsdf = out.tsdf.to(out_device)
        rgb = out.color.permute(0, 2, 3, 4, 1).to(out_device) if out.color is not None else None
        for b, o in enumerate(batch_origins):
            s = tuple(slice(int(o[a] - lo[a]), int(o[a] - lo[a]) + chunk_size) for a in range(3))
            weight_sum[s] += ramp
            tsdf_sum[s] += ramp * tsdf[b]
            probs_sum[s] += ramp[..., None] * probs[b]
            if rgb is not None:
                color_sum[s] += ramp[..., None] * rgb[b]
    covered = weight_sum > 0
    w = weight_sum.clamp(min=1e-12)
    semantics_probs = probs_sum / w[..., None]
    return RegionPrediction(
        origin_voxel=lo.to(weight_sum.device),
        tsdf=torch.where(covered, tsdf_sum / w, torch.full_like(w, float("nan"))),
        color=color_sum / w[..., None],
        semantics_probs=semantics_probs,
        confidence=semantics_probs.amax(-1),
    )


def crop(prediction: RegionPrediction, min_voxel: Sequence[int], max_voxel: Sequence[int]) -> RegionPrediction:
    """The part of ``prediction`` inside [min_voxel, max_voxel) (which it must contain)."""
    start = [int(m) - int(o) for m, o in zip(min_voxel, prediction.origin_voxel.tolist())]
    s = tuple(slice(a, a + int(h) - int(m)) for a, m, h in zip(start, min_voxel, max_voxel))
    return RegionPrediction(
        origin_voxel=torch.tensor([int(v) for v in min_voxel], dtype=torch.int64, device=prediction.tsdf.device),
        tsdf=prediction.tsdf[s], color=prediction.color[s], semantics_probs=prediction.semantics_probs[s],
        confidence=prediction.confidence[s],
    )


def predict_region(
    model: torch.nn.Module,
    chunk_map: ChunkMap,
    min_voxel: Sequence[int],
    max_voxel: Sequence[int],
    chunk_size: int = 32,
    overlap: int = 8,
    batch_size: int = 4,
    device: torch.device | str | None = None,
) -> RegionPrediction:
    """Tile [min_voxel, max_voxel) (global voxels, max exclusive) with overlapping chunks, run
    :func:`predict_chunks` and return exactly that box."""
    origins = chunk_origins(min_voxel, max_voxel, chunk_size, overlap)
    prediction = predict_chunks(model, chunk_map, origins, chunk_size, overlap, batch_size, device)
    return crop(prediction, min_voxel, max_voxel)


def _to(chunk: DenseChunk, device: torch.device) -> DenseChunk:
    if chunk.device == device:
        return chunk
    return dataclasses.replace(
        chunk, tsdf=chunk.tsdf.to(device), observed=chunk.observed.to(device),
        color=chunk.color.to(device), semantics=chunk.semantics.to(device),
    )


def write_predictions(chunk_map: ChunkMap, prediction: RegionPrediction, min_confidence: float = 0.0) -> None:
    """Write a region's predictions into the map's predicted layer (observed voxels are kept by the map).

    Voxels whose confidence is below ``min_confidence`` get confidence 0 (the map treats
    them as not predicted).
    """
    confidence = prediction.confidence
    if min_confidence > 0:
        confidence = torch.where(confidence >= min_confidence, confidence, torch.zeros_like(confidence))
    chunk_map.write_predictions(
        prediction.origin_voxel, prediction.tsdf, prediction.color, prediction.semantics_probs, confidence
    )


def complete_chunks(
    model: torch.nn.Module | None,
    chunk_map: ChunkMap,
    origins: Sequence[Sequence[int]],
    config: CompletionConfig | None = None,
) -> RegionPrediction | None:
    """Predict the chunks at ``origins`` (e.g. from the completion scheduler) and write them back."""
    if model is None or not origins:
        return None
    config = (config or CompletionConfig()).validate()
    prediction = predict_chunks(model, chunk_map, origins, config.chunk_size, config.overlap, config.batch_size)
    write_predictions(chunk_map, prediction, config.min_confidence)
    return prediction


def complete_region(
    model: torch.nn.Module | None,
    chunk_map: ChunkMap,
    min_voxel: Sequence[int],
    max_voxel: Sequence[int],
    config: CompletionConfig | None = None,
) -> RegionPrediction | None:
    """Predict a region and write it back; ``model=None`` (type ``none``) does nothing."""
    if model is None:
        return None
    config = (config or CompletionConfig()).validate()
    prediction = predict_region(
        model, chunk_map, min_voxel, max_voxel, config.chunk_size, config.overlap, config.batch_size
    )
    write_predictions(chunk_map, prediction, config.min_confidence)
    return prediction
