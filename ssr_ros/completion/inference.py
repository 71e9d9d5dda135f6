"""Running the completion network over a region of the map and writing predictions back.

The region is tiled by chunks that overlap by ``overlap`` voxels; chunks run through the
network in batches; overlapping predictions are blended with weights that ramp linearly
from a chunk's faces to its interior (so seams between chunks vanish). A predicted voxel's
classes come from the observed voxels around it (:func:`nearby_observed_classes`: a
Gaussian-weighted vote of their fused labels), where the network's own classes, restricted to
those the chunk observed (:func:`observed_classes_only`), serve only beyond the vote's reach
(or everywhere with ``label_sigma: 0``). The blended TSDF,
color and class probabilities pass the write-back gate (:mod:`ssr_ros.completion.gating`:
unknown space only, calibrated surface confidence, near and enclosed by what the cameras
saw) and go into the map's predicted layer through ``write_predictions``, which never
overwrites observed voxels. The confidence written with a voxel is the calibrated
probability that it is what the map now says (occupied for surface, free otherwise).

The model's contract (``model.contract``, from its weights file) says which truncation
normalises the input TSDF and which geometry mask the network reads.

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

from ssr_ros.completion.contract import UNCALIBRATED, Calibration
from ssr_ros.completion.gating import GateSettings, gate
from ssr_ros.completion.symmetry import SYMMETRY_COUNTS, symmetric_forward
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
    precision: str = param("fp32", "network arithmetic on a GPU: 'fp32' or 'fp16' (float16 autocast; slower than "
                           "fp32 for the packaged network, whose GroupNorm runs in float32); the CPU always runs "
                           "float32", choices=["fp32", "fp16"])
    cuda_graphs: bool = param(True, "on a GPU, replay the network as CUDA graphs (one per chunk batch shape): the "
                              "small network is launch-bound without them")
    compile: bool = param(False, "on a GPU, compile the network with torch.compile (inductor) inside its CUDA graphs: "
                          "a 64^3 chunk 2.6 ms instead of 6.8 ms on an H200, after about 35 s of compiling for each "
                          "chunk batch shape the first time it runs; the CPU ignores it")
    symmetries: int = param(
        0, "average the network over this many of each chunk's symmetries about the vertical axis: 1 = the "
        "chunk as it is; 2, 4 = and its mirror images in x and y; 8 = and their quarter turns (the network "
        "does 8x the work); 0 = as many as the weights' calibration used (its min_confidence holds for that "
        "many; with fewer its confidences run high, as the copies' disagreement is one of their inputs)", choices=[0, *SYMMETRY_COUNTS])
    min_confidence: float = param(
        0.0, "predicted surface is written only where its calibrated surface confidence reaches this; "
        "0 = the threshold stored with the weights (chosen for >= 85 % precision of predicted surface on "
        "held-out rooms)", low=0.0, high=1.0)
    max_distance: float = param(
        0.1, "predicted surface is written only this close to observed surface, metres", low=0.0, high=10.0)
    min_enclosure: int = param(
        5, "predicted surface needs observed or seen-free space within enclosure_radius in this many of "
        "the 6 axis directions (keeps predictions inside the observed room: not behind walls, under "
        "floors, above ceilings)", low=0, high=6)
    enclosure_radius: float = param(
        1.5, "how far the enclosure test looks along each axis, metres", low=0.05, high=20.0)
    min_support: int = param(
        3, "predicted surface needs at least this many of its 26 neighbours to be observed surface or "
        "predicted surface the gate keeps (a lone predicted voxel meshes as a blob); 0 = off", low=0, high=26)
    label_sigma: float = param(
        1.5, "classes of predicted voxels: a Gaussian-weighted vote of the fused labels of observed voxels "
        "within 3 sigma, sigma in voxels (the network's classes only beyond that reach); 0 = the "
        "network's classes everywhere", low=0.0, high=8.0)

    def validate(self) -> "CompletionConfig":
        validate_config(self)
        if self.overlap >= self.chunk_size:
            raise ConfigError(f"overlap={self.overlap} must be smaller than chunk_size={self.chunk_size}")
        return self


@dataclass
class RegionPrediction:
    """Blended network predictions on a box of voxels starting at ``origin_voxel``.

    tsdf: (X, Y, Z) metres; color: (X, Y, Z, 3) in [0, 1] (zeros for a depth-only model);
    semantics_probs: (X, Y, Z, N) class probabilities; confidence: (X, Y, Z) in [0, 1].
    What the map knew there, for the write-back gate: observed (X, Y, Z) bool fused voxels,
    observed_tsdf (X, Y, Z) their TSDF in metres, free (X, Y, Z) bool seen-free voxels;
    voxel_size and model_truncation in metres; tsdf_spread (X, Y, Z): how much the network's
    symmetric copies disagreed on the TSDF (standard deviation in truncations; zeros for one copy).
    """

    origin_voxel: torch.Tensor
    tsdf: torch.Tensor
    color: torch.Tensor
    semantics_probs: torch.Tensor
    confidence: torch.Tensor
    observed: torch.Tensor
    observed_tsdf: torch.Tensor
    free: torch.Tensor
    voxel_size: float
    model_truncation: float
    tsdf_spread: torch.Tensor | None = None


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
    label_sigma: float = 0.0,
    precision: str = "fp32",
    cuda_graphs: bool = True,
    symmetries: int = 1,
    compiled: bool = False,
) -> RegionPrediction:
    """Run ``model`` (an :class:`~ssr_ros.completion.network.SSRUNet`) on cubic chunks at ``origins``.

    Chunks go through the network ``batch_size`` at a time; overlapping chunks are blended
    with :func:`blend_weights` (``overlap`` voxels of ramp); class probabilities as
    :func:`nearby_observed_classes` with ``label_sigma``. The network runs through
    :func:`~ssr_ros.completion.graphs.network_forward` (``precision``, ``cuda_graphs``, ``compiled``: GPU only),
    averaged over ``symmetries`` of each chunk's symmetries about the vertical axis
    (:mod:`ssr_ros.completion.symmetry`; 1 = the chunk as it is).
    Returns predictions on the bounding box of the chunks, on the map's device; voxels that no
    chunk covers have NaN TSDF (the map writes nothing there) and zero confidence.
    """
    from ssr_ros.completion.graphs import chunks_per_pass, network_forward
    from ssr_ros.completion.network import chunk_inputs

    config = model.config
    contract = getattr(model, "contract", None)
    if not origins:
        raise InvalidInput("predict_chunks needs at least one chunk origin")
    if chunk_size % config.size_multiple:
        raise InvalidInput(f"chunk_size {chunk_size} must be a multiple of {config.size_multiple} for this network")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    forward = network_forward(model, device, precision, cuda_graphs, compiled)
    origin_table = torch.tensor([[int(v) for v in o] for o in origins], dtype=torch.int64)
    lo = origin_table.amin(0)
    shape = tuple(int(v) for v in (origin_table.amax(0) - lo + chunk_size))
    n = config.num_classes
    geometry_input = contract.geometry_input if contract is not None else "observed"
    sums: dict[str, torch.Tensor] = {}
    ramp = None
    truncation = voxel_size = 0.0
    for start in range(0, len(origin_table), batch_size):
        batch_origins = origin_table[start : start + batch_size]
        chunks = [chunk_map.extract_chunk(o.clone(), (chunk_size,) * 3) for o in batch_origins]
        if not sums:
            out_device = chunks[0].device
            voxel_size = chunks[0].voxel_size
            truncation = contract.truncation if contract is not None else chunks[0].truncation
            sums = {
                "weight": torch.zeros(shape, device=out_device),
                "tsdf": torch.zeros(shape, device=out_device),
                "spread": torch.zeros(shape, device=out_device),
                "color": torch.zeros(shape + (3,), device=out_device),
                "probs": torch.zeros(shape + (n,), device=out_device),
                "observed": torch.zeros(shape, dtype=torch.bool, device=out_device),
                "observed_tsdf": torch.full(shape, chunks[0].truncation, device=out_device),
                "free": torch.zeros(shape, dtype=torch.bool, device=out_device),
            }
            ramp = blend_weights(chunk_size, overlap, out_device)
        geometry, color = chunk_inputs([_to(c, device) for c in chunks], config, truncation, geometry_input)
        tsdf, rgb, probs, spread = symmetric_forward(forward, geometry, color, truncation, symmetries,
                                                     chunks_per_pass(device, chunk_size ** 3))
        spread = spread.to(out_device)
        probs = probs.permute(0, 2, 3, 4, 1).to(out_device)
        tsdf = tsdf.to(out_device)
        rgb = rgb.permute(0, 2, 3, 4, 1).to(out_device) if rgb is not None else None
        for b, (o, chunk) in enumerate(zip(batch_origins, chunks)):
            s = tuple(slice(int(o[a] - lo[a]), int(o[a] - lo[a]) + chunk_size) for a in range(3))
            sums["weight"][s] += ramp
            sums["tsdf"][s] += ramp * tsdf[b]
            sums["spread"][s] += ramp * spread[b]
            sums["probs"][s] += ramp[..., None] * nearby_observed_classes(probs[b], chunk, label_sigma)
            if rgb is not None:
                sums["color"][s] += ramp[..., None] * rgb[b]
            sums["observed"][s] = chunk.observed
            sums["observed_tsdf"][s] = chunk.tsdf
            if chunk.free is not None:
                sums["free"][s] = chunk.free
    covered = sums["weight"] > 0
    w = sums["weight"].clamp(min=1e-12)
    semantics_probs = sums["probs"] / w[..., None]
    return RegionPrediction(
        origin_voxel=lo.to(w.device),
        tsdf=torch.where(covered, sums["tsdf"] / w, torch.full_like(w, float("nan"))),
        color=sums["color"] / w[..., None],
        semantics_probs=semantics_probs,
        confidence=semantics_probs.amax(-1),
        observed=sums["observed"],
        observed_tsdf=sums["observed_tsdf"],
        free=sums["free"],
        voxel_size=float(voxel_size),
        model_truncation=float(truncation),
        tsdf_spread=sums["spread"] / w,
    )


def observed_classes_only(probs: torch.Tensor, chunk: DenseChunk) -> torch.Tensor:
    """(X, Y, Z, N) class probabilities restricted to the classes the chunk's observed voxels are
    labelled with (their fused label, the class of most evidence), renormalised: the network does
    not invent a class that nothing seen nearby carries (with structural labels only, its
    continuation of a floor stays floor, not a door). Unchanged where no observed voxel of the
    chunk has class evidence."""
    evidence = chunk.semantics[chunk.observed]
    evidence = evidence[evidence.sum(-1) > 0]
    if evidence.numel() == 0:
        return probs
    present = torch.zeros(probs.shape[-1], dtype=probs.dtype, device=probs.device)
    present[evidence.argmax(-1).unique().to(probs.device)] = 1.0
    masked = probs * present
    total = masked.sum(-1, keepdim=True)
    return torch.where(total > 0, masked / total.clamp(min=1e-12), probs)


def nearby_observed_classes(probs: torch.Tensor, chunk: DenseChunk, sigma: float) -> torch.Tensor:
    """(X, Y, Z, N) class probabilities of a chunk's voxels from the observed voxels around them.

    Each observed voxel with class evidence votes for its fused label with a Gaussian weight
    of its distance (``sigma`` voxels, cut at 3 sigma); a voxel's probabilities are the shares
    of the votes it receives. Beyond the votes' reach, and everywhere when ``sigma`` is 0, the
    network's ``probs`` restricted by :func:`observed_classes_only`. On held-out generated rooms
    the network's own classes label unseen surfaces worse than their observed neighbours do.
    """
    restricted = observed_classes_only(probs, chunk)
    labelled = chunk.observed & (chunk.semantics.sum(-1) > 0)
    if sigma <= 0 or not bool(labelled.any()):
        return restricted
    n = probs.shape[-1]
    votes = torch.nn.functional.one_hot(chunk.semantics.argmax(-1), n).to(probs.dtype) * labelled[..., None]
    votes = _gaussian_blur(votes.permute(3, 0, 1, 2).unsqueeze(0), sigma)[0].permute(1, 2, 3, 0)
    total = votes.sum(-1, keepdim=True)
    return torch.where(total > 0, votes / total.clamp(min=1e-12), restricted)


def _gaussian_blur(volume: torch.Tensor, sigma: float) -> torch.Tensor:
    """(1, C, X, Y, Z) volume blurred per channel by a Gaussian of ``sigma`` voxels cut at 3 sigma
    (separable, zero outside the volume)."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=volume.dtype, device=volume.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = volume.shape[1]
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = kernel.numel()
        padding = [0, 0, 0]
        padding[axis] = radius
        weight = kernel.reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()
        volume = torch.nn.functional.conv3d(volume, weight, padding=tuple(padding), groups=channels)
    return volume


def crop(prediction: RegionPrediction, min_voxel: Sequence[int], max_voxel: Sequence[int]) -> RegionPrediction:
    """The part of ``prediction`` inside [min_voxel, max_voxel) (which it must contain)."""
    start = [int(m) - int(o) for m, o in zip(min_voxel, prediction.origin_voxel.tolist())]
    s = tuple(slice(a, a + int(h) - int(m)) for a, m, h in zip(start, min_voxel, max_voxel))
    return dataclasses.replace(
        prediction,
        origin_voxel=torch.tensor([int(v) for v in min_voxel], dtype=torch.int64, device=prediction.tsdf.device),
        tsdf=prediction.tsdf[s], color=prediction.color[s], semantics_probs=prediction.semantics_probs[s],
        confidence=prediction.confidence[s], observed=prediction.observed[s],
        observed_tsdf=prediction.observed_tsdf[s], free=prediction.free[s],
        tsdf_spread=None if prediction.tsdf_spread is None else prediction.tsdf_spread[s],
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
    label_sigma: float = 0.0,
    precision: str = "fp32",
    cuda_graphs: bool = True,
    symmetries: int = 1,
    compiled: bool = False,
) -> RegionPrediction:
    """Tile [min_voxel, max_voxel) (global voxels, max exclusive) with overlapping chunks, run
    :func:`predict_chunks` and return exactly that box."""
    origins = chunk_origins(min_voxel, max_voxel, chunk_size, overlap)
    prediction = predict_chunks(model, chunk_map, origins, chunk_size, overlap, batch_size, device, label_sigma,
                                precision, cuda_graphs, symmetries, compiled)
    return crop(prediction, min_voxel, max_voxel)


def _to(chunk: DenseChunk, device: torch.device) -> DenseChunk:
    if chunk.device == device:
        return chunk
    return dataclasses.replace(
        chunk, tsdf=chunk.tsdf.to(device), observed=chunk.observed.to(device),
        color=chunk.color.to(device), semantics=chunk.semantics.to(device),
        free=chunk.free.to(device) if chunk.free is not None else None,
    )


def gate_settings(config: CompletionConfig, calibration: Calibration) -> GateSettings:
    """The gate's thresholds: the config's, with ``min_confidence: 0`` meaning the calibrated one."""
    return GateSettings(
        min_confidence=config.min_confidence or calibration.min_confidence,
        max_distance=config.max_distance,
        min_enclosure=config.min_enclosure,
        enclosure_radius=config.enclosure_radius,
        min_support=config.min_support,
    )


def inference_symmetries(config: CompletionConfig, calibration: Calibration) -> int:
    """How many chunk symmetries the network is averaged over: the config's, with ``symmetries: 0``
    meaning as many as the calibration used."""
    return config.symmetries or calibration.symmetries


def model_calibration(model: torch.nn.Module | None) -> Calibration:
    """The calibration stored with the model's weights (an uncalibrated default without one)."""
    contract = getattr(model, "contract", None)
    return contract.calibration if contract is not None else UNCALIBRATED


def apply_gate(prediction: RegionPrediction, settings: GateSettings, calibration: Calibration = UNCALIBRATED) -> RegionPrediction:
    """``prediction`` with NaN TSDF where the gate refuses a voxel and the calibrated confidence elsewhere."""
    result = gate(
        prediction.tsdf, prediction.observed, prediction.observed_tsdf, prediction.free,
        prediction.voxel_size, prediction.model_truncation, calibration, settings,
        tsdf_spread=prediction.tsdf_spread,
    )
    confidence = torch.where(result.surface, result.surface_confidence, 1.0 - result.probability)
    return dataclasses.replace(
        prediction,
        tsdf=torch.where(result.keep, prediction.tsdf, torch.full_like(prediction.tsdf, float("nan"))),
        confidence=torch.where(result.keep, confidence, torch.zeros_like(confidence)),
    )


def write_predictions(chunk_map: ChunkMap, prediction: RegionPrediction) -> int:
    """Write a (gated) region's predictions into the map's predicted layer; returns voxels written.

    Voxels with NaN TSDF are skipped; observed voxels are kept by the map.
    """
    return chunk_map.write_predictions(
        prediction.origin_voxel, prediction.tsdf, prediction.color, prediction.semantics_probs, prediction.confidence
    )


def _gate_and_write(model: torch.nn.Module, chunk_map: ChunkMap, prediction: RegionPrediction,
                    config: CompletionConfig) -> RegionPrediction:
    """Gate ``prediction`` with the model's calibration and the config's thresholds; write it back."""
    calibration = model_calibration(model)
    gated = apply_gate(prediction, gate_settings(config, calibration), calibration)
    write_predictions(chunk_map, gated)
    return gated


def complete_chunks(
    model: torch.nn.Module | None,
    chunk_map: ChunkMap,
    origins: Sequence[Sequence[int]],
    config: CompletionConfig | None = None,
) -> RegionPrediction | None:
    """Predict the chunks at ``origins`` (e.g. from the completion scheduler) in batches,
    blend their overlaps, gate and write back; ``model=None`` (type ``none``) does nothing."""
    if model is None or not origins:
        return None
    config = (config or CompletionConfig()).validate()
    prediction = predict_chunks(model, chunk_map, origins, config.chunk_size, config.overlap, config.batch_size,
                                label_sigma=config.label_sigma, precision=config.precision,
                                cuda_graphs=config.cuda_graphs, compiled=config.compile,
                                symmetries=inference_symmetries(config, model_calibration(model)))
    return _gate_and_write(model, chunk_map, prediction, config)


def complete_region(
    model: torch.nn.Module | None,
    chunk_map: ChunkMap,
    min_voxel: Sequence[int],
    max_voxel: Sequence[int],
    config: CompletionConfig | None = None,
) -> RegionPrediction | None:
    """Tile a region with overlapping chunks, predict, gate and write back."""
    if model is None:
        return None
    config = (config or CompletionConfig()).validate()
    prediction = predict_region(model, chunk_map, min_voxel, max_voxel, config.chunk_size, config.overlap,
                                config.batch_size, label_sigma=config.label_sigma, precision=config.precision,
                                cuda_graphs=config.cuda_graphs, compiled=config.compile,
                                symmetries=inference_symmetries(config, model_calibration(model)))
    return _gate_and_write(model, chunk_map, prediction, config)
