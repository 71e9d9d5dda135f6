"""Self-supervised training of the SSR 3D U-Net from RGB-D frames only (S4R / SSR-2D).

One training scene is a sequence of RGB-D frames. A subset of them (``keep_fraction``) is
fused into the *input* map, so the input is incomplete; all frames are fused into a more
complete *reference* map. Chunks are cut from both. For each chunk the network predicts
TSDF, color and semantic logits, which are rendered differentiably from

- the recorded views (kept and held-out frames) that see the chunk: depth L1, color L1 and
  cross-entropy against the frames' 2D pseudo-labels (ground-truth labels, a 2D predictor's
  noisy labels, or a 2D segmenter applied to the recorded color);
- virtual views with a wider field of view, pulled back from a surface of the chunk: the
  rendered semantics must match the 2D segmenter applied to the rendered color;

plus an L1 term between the predicted TSDF and the reference TSDF where that is known (fused,
or seen free along the rays of all frames: predicted surface there is penalised), and
a term pulling the predicted TSDF to zero at the recorded surface points. 2D terms only
count pixels where the prediction has a surface and the recorded surface lies inside the
chunk. No 3D label is used anywhere.

Scenes come from a *scene provider* (``seed -> TrainingScene``); the default one generates
synthetic rooms and fuses them with the map (``ssr_ros.completion.scenes``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ssr_ros.completion.contract import INPUT_KNOWN, ModelContract
from ssr_ros.completion.graphs import memory_format
from ssr_ros.completion.losses import (
    color_l1,
    depth_l1,
    masked_mean,
    semantic_cross_entropy,
    surface_point_l1,
)
from ssr_ros.completion.network import CompletionOutput, SSRUNet, SSRUNetConfig, chunk_inputs
from ssr_ros.completion.renderer import _sample, _to_grid, look_at, render_chunk, widened_intrinsics
from ssr_ros.completion.scenes import TrainingScene, synthetic_scene
from ssr_ros.config import param, validate_config
from ssr_ros.devices import resolve_device
from ssr_ros.errors import ConfigError, MapFileError
from ssr_ros.geometry import CameraIntrinsics, Frame
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.config import TSDFConfig
from ssr_ros.training_run import RunClock, TrainingRun, cosine_schedule


# --- configuration ------------------------------------------------------------------------


@dataclass
class SceneDataConfig:
    """Which scenes, how they are captured and fused, and how chunks and views are chosen."""

    provider: str = param("synthetic", "scene provider: 'synthetic' (generated rooms fused by the map)", choices=["synthetic"])
    train_seeds: list = param([0, 1, 2, 3], "scene seeds used for training")
    val_seeds: list = param([1000], "scene seeds used for validation (never for training)")
    frames_per_scene: int = param(24, "frames captured per scene", low=2, high=10000)
    image_width: int = param(160, "captured image width, pixels", low=8, high=4096)
    image_height: int = param(120, "captured image height, pixels", low=8, high=4096)
    render_stride: int = param(2, "losses use every n-th pixel of the frames (renders at 1/n)", low=1, high=16)
    frame_rate: float = param(1.5, "frames per second along the camera path (lower = frames farther apart)", low=0.01, high=1000.0)
    trajectory: str = param("handheld", "camera path style: 'handheld' (a person walking, camera 1.3-1.7 m high) or 'robot' "
                            "(a ground robot's camera, 0.4-0.9 m high, looking ahead)", choices=["handheld", "robot"])
    keep_fraction: float = param(0.5, "fraction of frames fused into the (incomplete) input", low=0.05, high=1.0)
    drop_segment_frames: int = param(4, "frames are kept or dropped in contiguous segments of this length", low=1, high=10000)
    map: TSDFConfig = field(default_factory=TSDFConfig)
    chunk_size: int = param(32, "training chunk side, voxels (multiple of 2^(levels-1))", low=16, high=256)
    chunks_per_scene: int = param(16, "chunks cut from each scene", low=1, high=10000)
    min_observed_fraction: float = param(0.01, "chunks need this fraction of observed input voxels", low=0.0, high=1.0)
    origin_jitter: bool = param(
        True, "shift each chunk's origin by a random offset below the candidate stride, so floors and walls fall "
        "anywhere in a chunk as they do on the map's chunk grid (off: origins on a lattice from the scene's corner)")
    min_completion_fraction: float = param(0.0, "chunks need this fraction of voxels known to the reference but not the input", low=0.0, high=1.0)
    views_per_chunk: int = param(3, "recorded views rendered per chunk and step", low=0, high=64)
    min_view_overlap: float = param(0.05, "a view is used if this fraction of its pixels sees the chunk", low=0.0, high=1.0)
    virtual_views_per_chunk: int = param(1, "virtual views rendered per chunk and step", low=0, high=64)
    virtual_fov_scale: float = param(1.5, "virtual views widen the field of view by this factor", low=1.0, high=4.0)
    virtual_distance: list = param([1.0, 2.0], "virtual cameras are pulled back [min, max] metres from a surface")
    label_source: str = param("gt", "2D pseudo-labels of recorded frames: 'gt', 'noisy' (2D predictor model) or 'segmenter'", choices=["gt", "noisy", "segmenter"])
    segmenter_weights: str = param("", "2D segmenter weights (.pt) for 'segmenter' labels and virtual views; empty = none")
    workers: int = param(1, "processes that render and fuse scenes in parallel (1 = in this process)", low=1, high=256)

    def validate(self) -> "SceneDataConfig":
        validate_config(self)
        if len(self.virtual_distance) != 2 or not (0 < self.virtual_distance[0] <= self.virtual_distance[1]):
            raise ConfigError(f"virtual_distance={self.virtual_distance} must be [min, max] with 0 < min <= max")
        overlap = set(map(int, self.train_seeds)) & set(map(int, self.val_seeds))
        if overlap:
            raise ConfigError(f"val_seeds {sorted(overlap)} are also train_seeds; validation scenes must be unseen")
        if self.label_source == "segmenter" and not self.segmenter_weights:
            raise ConfigError("label_source='segmenter' needs segmenter_weights")
        return self

    @property
    def voxel_size(self) -> float:
        return self.map.voxel_size

    @property
    def truncation(self) -> float:
        return self.map.truncation


@dataclass
class LossWeights:
    """Weights of the loss terms (0 switches a term off)."""

    depth: float = param(1.0, "depth L1 on recorded views (normalised by truncation)", low=0.0, high=100.0)
    color: float = param(1.0, "color L1 on recorded views", low=0.0, high=100.0)
    semantic: float = param(0.5, "cross-entropy against 2D pseudo-labels of recorded views", low=0.0, high=100.0)
    virtual_semantic: float = param(0.25, "cross-entropy against the segmenter on rendered virtual views", low=0.0, high=100.0)
    tsdf_3d: float = param(1.0, "L1 against the TSDF fused from all frames (normalised by truncation)", low=0.0, high=100.0)
    surface_points: float = param(0.5, "|TSDF| at recorded surface points (normalised by truncation)", low=0.0, high=100.0)
    surface_band_3d_weight: float = param(4.0, "extra weight of reference voxels within the truncation band in the 3D term", low=0.0, high=100.0)
    observed_3d_weight: float = param(0.25, "relative weight of input-observed voxels in the 3D term", low=0.0, high=10.0)


@dataclass
class OptimConfig:
    """Optimiser and schedule."""

    steps: int = param(2000, "optimisation steps", low=1, high=10_000_000)
    batch_size: int = param(2, "chunks per step (per process)", low=1, high=256)
    learning_rate: float = param(1e-3, "AdamW learning rate (cosine decay to 5%)", low=1e-7, high=1.0)
    weight_decay: float = param(1e-4, "AdamW weight decay", low=0.0, high=1.0)
    grad_clip: float = param(5.0, "gradient norm clip (0 = off)", low=0.0, high=1e6)
    log_every: int = param(10, "steps between log lines", low=1, high=100000)
    validate_every: int = param(200, "steps between validations", low=1, high=10_000_000)
    checkpoint_every: int = param(200, "steps between checkpoints", low=1, high=10_000_000)
    max_seconds: float = param(0.0, "stop training (checkpoint and weights kept) after this many seconds of "
                               "optimisation; 0 = run all steps", low=0.0, high=1e7)


@dataclass
class TrainingConfig:
    """Everything ``ssr train CONFIG`` reads (yaml sections mirror the fields)."""

    network: SSRUNetConfig = field(default_factory=SSRUNetConfig)
    data: SceneDataConfig = field(default_factory=SceneDataConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)
    out_dir: str = param("out/train", "checkpoints, log and final weights go here")
    device: str = param("auto", "'auto', 'cpu', 'cuda' or 'cuda:N' (torchrun sets the rank's GPU)")
    seed: int = param(0, "random seed", low=0, high=2**31 - 1)
    threads: int = param(0, "CPU threads for torch (0 = torch default)", low=0, high=512)
    init_weights: str = param("", "start from these weights (fine-tuning; same network shape); empty = random")

    def validate(self) -> "TrainingConfig":
        validate_config(self)
        self.network.validate()
        self.data.validate()
        if self.data.chunk_size % self.network.size_multiple:
            raise ConfigError(
                f"data.chunk_size={self.data.chunk_size} must be a multiple of {self.network.size_multiple} "
                f"(network.levels={self.network.levels})"
            )
        return self


# --- scenes and chunk samples -------------------------------------------------------------


SceneProvider = Callable[[int, SceneDataConfig], TrainingScene]


@dataclass
class ViewSet:
    """Downsampled recorded views of a scene used as 2D targets (one entry per frame).

    depth (F, h, w) metres (0 invalid); rgb (F, h, w, 3) in [0, 1] or None; labels (F, h, w)
    int64 pseudo-labels (0 = none); poses (F, 4, 4) camera-to-world; intrinsics of (h, w).
    """

    depth: torch.Tensor
    rgb: torch.Tensor | None
    labels: torch.Tensor
    poses: torch.Tensor
    intrinsics: CameraIntrinsics
    kept: torch.Tensor  # (F,) bool


@dataclass
class ChunkSample:
    """One training chunk: the network input, the 3D reference and the views that see it."""

    chunk: DenseChunk
    reference_tsdf: torch.Tensor  # (X, Y, Z) metres
    reference_known: torch.Tensor  # (X, Y, Z) bool
    views: ViewSet
    view_ids: torch.Tensor  # (k,) indices into views
    scene: str


def strided_intrinsics(intrinsics: CameraIntrinsics, stride: int) -> tuple[CameraIntrinsics, int]:
    """Intrinsics of the image made of every ``stride``-th pixel starting at ``offset``.

    Pixel u' of the strided image is pixel u = stride * u' + offset of the original, so
    fx' = fx / stride and cx' = (cx - offset) / stride exactly.
    """
    offset = (stride - 1) // 2
    width = len(range(offset, intrinsics.width, stride))
    height = len(range(offset, intrinsics.height, stride))
    return CameraIntrinsics(
        intrinsics.fx / stride, intrinsics.fy / stride,
        (intrinsics.cx - offset) / stride, (intrinsics.cy - offset) / stride, width, height,
    ), offset


def build_view_set(frames: Sequence[Frame], kept: Sequence[int], labels: Sequence[np.ndarray | None], stride: int) -> ViewSet:
    """Stack frames (same intrinsics) into strided tensors; ``labels`` are the pseudo-labels."""
    intrinsics, offset = strided_intrinsics(frames[0].intrinsics, stride)
    sl = (slice(offset, None, stride), slice(offset, None, stride))
    depth = torch.stack([torch.from_numpy(np.nan_to_num(np.asarray(f.depth, np.float32)[sl], nan=0.0, posinf=0.0)) for f in frames])
    depth[depth < 0] = 0
    rgb = None
    if all(f.rgb is not None for f in frames):
        rgb = torch.stack([torch.from_numpy(np.asarray(f.rgb)[sl].astype(np.float32) / 255.0) for f in frames])
    label_images = []
    for f, lab in zip(frames, labels):
        label_images.append(torch.from_numpy(np.asarray(lab)[sl].astype(np.int64)) if lab is not None
                            else torch.zeros(intrinsics.shape, dtype=torch.int64))
    kept_mask = torch.zeros(len(frames), dtype=torch.bool)
    kept_mask[list(kept)] = True
    poses = torch.stack([torch.from_numpy(np.asarray(f.T_world_cam, np.float64)).float() for f in frames])
    return ViewSet(depth, rgb, torch.stack(label_images), poses, intrinsics, kept_mask)


def backproject_views(views: ViewSet, index: torch.Tensor) -> torch.Tensor:
    """World points (k, h, w, 3) of the recorded depth of views ``index`` (invalid -> camera centre)."""
    rays = views.intrinsics.pixel_rays(dtype=torch.float32)  # (h, w, 3)
    depth = views.depth[index]
    cam = rays[None] * depth[..., None]
    poses = views.poses[index]
    return torch.einsum("kab,khwb->khwa", poses[:, :3, :3], cam) + poses[:, None, None, :3, 3]


def inside_chunk(points: torch.Tensor, origin: torch.Tensor, voxel_size: float, size: Sequence[int], margin: float = 1.0) -> torch.Tensor:
    """Points (..., 3) strictly inside the chunk's voxel-centre box shrunk by ``margin`` voxels."""
    lo = origin + (0.5 + margin) * voxel_size
    hi = origin + (torch.tensor(size, dtype=points.dtype, device=points.device) - 0.5 - margin) * voxel_size
    return ((points > lo) & (points < hi)).all(-1)


def chunk_origin_metres(chunk: DenseChunk) -> torch.Tensor:
    return chunk.origin_voxel.to(torch.float32).cpu() * chunk.voxel_size


def select_views(views: ViewSet, chunk: DenseChunk, min_overlap: float) -> torch.Tensor:
    """Indices of views seeing the chunk on at least ``min_overlap`` of their pixels, best first."""
    points = backproject_views(views, torch.arange(views.depth.shape[0]))
    inside = inside_chunk(points, chunk_origin_metres(chunk), chunk.voxel_size, chunk.size) & (views.depth > 0)
    fraction = inside.float().mean((1, 2))
    order = torch.argsort(fraction, descending=True)
    return order[fraction[order] >= min_overlap]


def sample_chunks(scene: TrainingScene, views: ViewSet, config: SceneDataConfig, rng: random.Random,
                  config_uses_semantics: bool = False) -> list[ChunkSample]:
    """Cut up to ``chunks_per_scene`` chunks with observed input and some views seeing them."""
    size = config.chunk_size
    stride = max(size // 2, 1)
    # Candidates on a lattice from the scene's corner put the floor and the walls at the same
    # place in every chunk; the map's chunk grid (``CompletionScheduler``) puts them anywhere.
    jitter = (lambda: rng.randrange(stride)) if config.origin_jitter else (lambda: 0)
    candidates = []
    for x in range(scene.min_voxel[0], max(scene.max_voxel[0] - size, scene.min_voxel[0]) + 1, stride):
        for y in range(scene.min_voxel[1], max(scene.max_voxel[1] - size, scene.min_voxel[1]) + 1, stride):
            for z in range(scene.min_voxel[2], max(scene.max_voxel[2] - size, scene.min_voxel[2]) + 1, stride):
                candidates.append((x - jitter(), y - jitter(), z - jitter()))
    rng.shuffle(candidates)
    samples = []
    for origin in candidates:
        if len(samples) >= config.chunks_per_scene:
            break
        o = torch.tensor(origin, dtype=torch.int64)
        chunk = scene.input_map.extract_chunk(o, (size,) * 3)
        if chunk.observed.float().mean() < config.min_observed_fraction:
            continue
        reference = scene.reference_map.extract_chunk(o, (size,) * 3)
        if (reference.observed & ~chunk.observed).float().mean() < config.min_completion_fraction:
            continue
        view_ids = select_views(views, chunk, config.min_view_overlap)
        if len(view_ids) == 0:
            continue
        samples.append(ChunkSample(
            chunk=_compact(chunk, keep_semantics=config_uses_semantics),
            reference_tsdf=reference.tsdf.cpu().clone(),
            reference_known=reference.known().cpu().clone(),  # fused or seen free by all frames
            views=views,
            view_ids=view_ids,
            scene=scene.name,
        ))
    return samples


def _compact(chunk: DenseChunk, keep_semantics: bool) -> DenseChunk:
    """A CPU copy of the base fields only (semantics dropped unless the network reads them)."""
    semantics = chunk.semantics.cpu().clone() if keep_semantics else chunk.semantics.new_zeros((0,)).cpu()
    return DenseChunk(
        origin_voxel=chunk.origin_voxel.cpu().clone(), voxel_size=chunk.voxel_size, truncation=chunk.truncation,
        tsdf=chunk.tsdf.cpu().clone(), weight=chunk.weight.cpu().clone(), observed=chunk.observed.cpu().clone(),
        color=chunk.color.cpu().clone(), semantics=semantics, predicted=chunk.predicted.cpu().clone(),
        free=chunk.free.cpu().clone() if chunk.free is not None else None,
    )


# --- losses for one chunk -----------------------------------------------------------------


@dataclass
class StepLosses:
    total: torch.Tensor
    terms: dict[str, float]


def virtual_poses(reference_tsdf: torch.Tensor, origin: torch.Tensor, voxel_size: float, count: int,
                  distance: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """(count, 4, 4) cameras looking at random surface voxels of the chunk from ``distance`` away.

    Cameras look down onto the surface from above-horizontal directions (a wider context
    than the close-up recorded frames), as S4R's virtual views.
    """
    device = origin.device  # poses are drawn on the CPU (with the CPU generator), returned on the chunk's device
    reference_tsdf, origin = reference_tsdf.cpu(), origin.cpu()
    near = (reference_tsdf.abs() < voxel_size).nonzero()
    if len(near) == 0:
        near = torch.stack(torch.meshgrid(*[torch.tensor([n // 2]) for n in reference_tsdf.shape], indexing="ij"), -1).reshape(-1, 3)
    poses = []
    for _ in range(count):
        voxel = near[torch.randint(len(near), (1,), generator=generator)][0]
        target = origin.double() + (voxel.double() + 0.5) * voxel_size
        azimuth = float(torch.rand(1, generator=generator)) * 2 * math.pi
        elevation = math.radians(15 + 45 * float(torch.rand(1, generator=generator)))
        d = distance[0] + (distance[1] - distance[0]) * float(torch.rand(1, generator=generator))
        direction = torch.tensor([math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)], dtype=torch.float64)
        poses.append(look_at(target + d * direction, target))
    return torch.stack(poses).float().to(device)


def chunk_losses(
    prediction: CompletionOutput,
    b: int,
    sample: ChunkSample,
    config: TrainingConfig,
    generator: torch.Generator,
    segmenter: torch.nn.Module | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Loss terms of chunk ``b`` of a batch prediction (unweighted, each a scalar tensor)."""
    data, weights = config.data, config.losses
    chunk = sample.chunk
    truncation = chunk.truncation
    voxel_size = chunk.voxel_size
    origin = chunk_origin_metres(chunk).to(device)
    tsdf = prediction.tsdf[b]
    num_classes = prediction.semantic_logits.shape[1]
    features = [prediction.semantic_logits[b]]
    if prediction.color is not None:
        features.insert(0, prediction.color[b])
    features = torch.cat(features, dim=0)
    terms: dict[str, torch.Tensor] = {}

    if weights.tsdf_3d > 0:
        # Voxels the input did not observe carry the completion signal; observed ones (which
        # write-back never replaces) only need to stay consistent, so they weigh less.
        # Surfaces are a small minority of the known voxels (most are carved free space), so
        # voxels inside the reference's truncation band weigh (1 + surface_band_3d_weight).
        reference = sample.reference_tsdf.to(device)
        known = sample.reference_known.to(device)
        seen = chunk.observed.to(device)
        band = 1.0 + weights.surface_band_3d_weight * (reference.abs() < 0.99 * truncation).to(tsdf.dtype)
        error = band * (tsdf - reference).abs() / truncation
        terms["tsdf_3d"] = (masked_mean(error, known & ~seen)
                            + weights.observed_3d_weight * masked_mean(error, known & seen))

    views = sample.views
    if data.views_per_chunk > 0 and len(sample.view_ids) > 0:
        # A random subset among the views that see the chunk (kept and held-out alike).
        candidates = sample.view_ids[: max(data.views_per_chunk * 3, data.views_per_chunk)]
        pick = candidates[torch.randperm(len(candidates), generator=generator)[: data.views_per_chunk]]
        poses = views.poses[pick].to(device)
        rendering = render_chunk(tsdf, origin, voxel_size, views.intrinsics, poses, features=features)
        target_depth = views.depth[pick].to(device)
        points = backproject_views(views, pick).to(device)
        in_chunk = inside_chunk(points, origin, voxel_size, chunk.size) & (target_depth > 0)
        mask = in_chunk & rendering.hit
        if weights.depth > 0:
            terms["depth"] = depth_l1(rendering.depth, target_depth, mask) / truncation
        offset = 0
        if prediction.color is not None:
            if weights.color > 0 and views.rgb is not None:
                terms["color"] = color_l1(rendering.features[..., :3], views.rgb[pick].to(device), mask)
            offset = 3
        if weights.semantic > 0:
            terms["semantic"] = semantic_cross_entropy(
                rendering.features[..., offset : offset + num_classes], views.labels[pick].to(device), mask
            )
        if weights.surface_points > 0:
            values = _sample(tsdf[None], _to_grid(points, origin, voxel_size, chunk.size))[..., 0]
            terms["surface_points"] = surface_point_l1(values, in_chunk, truncation)

    if (data.virtual_views_per_chunk > 0 and weights.virtual_semantic > 0 and segmenter is not None
            and prediction.color is not None):
        poses = virtual_poses(sample.reference_tsdf, origin.cpu(), voxel_size, data.virtual_views_per_chunk,
                              data.virtual_distance, generator).to(device)
        wide = widened_intrinsics(views.intrinsics, data.virtual_fov_scale)
        rendering = render_chunk(tsdf, origin, voxel_size, wide, poses, features=features)
        with torch.no_grad():
            rendered_rgb = rendering.features[..., :3].detach()
            labels = segmenter.predict_probs(rendered_rgb).argmax(-1)
        terms["virtual_semantic"] = semantic_cross_entropy(rendering.features[..., 3 : 3 + num_classes], labels, rendering.hit)
    return terms


def weighted_total(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    total = None
    for name, value in terms.items():
        w = getattr(weights, name)
        total = value * w if total is None else total + value * w
    return total


# --- validation metrics -------------------------------------------------------------------


@torch.no_grad()
def chunk_completion_scores(prediction_tsdf: torch.Tensor, sample: ChunkSample) -> dict[str, float]:
    """Surface-occupancy IoU/recall on voxels unobserved in the input but known in the reference.

    A voxel is *surface-occupied* when |TSDF| < one voxel (as evaluation does); fusion-only
    predicts nothing in unobserved voxels.
    """
    voxel = sample.chunk.voxel_size
    unobserved = (~sample.chunk.observed) & sample.reference_known
    truth = (sample.reference_tsdf.abs() < voxel) & unobserved
    predicted = (prediction_tsdf.cpu().abs() < voxel) & unobserved
    intersection = float((truth & predicted).sum())
    union = float((truth | predicted).sum())
    return {"intersection": intersection, "union": union, "truth": float(truth.sum())}


# --- the loop -------------------------------------------------------------------------------


def _distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment, (0, 1, 0) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def pseudo_labels(scene: TrainingScene, source: str, segmenter: torch.nn.Module | None) -> list[np.ndarray | None]:
    """2D pseudo-labels of a scene's recorded frames for the semantic loss.

    'gt': exact labels (``scene.gt_labels``, else the frames' own labels); 'noisy': the
    frames' labels (for synthetic sequences, the 2D-predictor noise model); 'segmenter':
    the 2D segmenter applied to the recorded color.
    """
    if source == "gt":
        return list(scene.gt_labels) if scene.gt_labels is not None else [f.labels for f in scene.frames]
    if source == "noisy":
        return [f.labels for f in scene.frames]
    if source == "segmenter":
        if segmenter is None:
            raise ConfigError("label_source='segmenter' needs data.segmenter_weights")
        out = []
        for f in scene.frames:
            rgb = torch.from_numpy(np.asarray(f.rgb).astype(np.float32) / 255.0).to(next(segmenter.parameters()).device)
            out.append(segmenter.predict_probs(rgb).argmax(-1).cpu().numpy())
        return out
    raise ConfigError(f"unknown label_source {source!r}")


def scene_samples(
    seed: int, config: TrainingConfig, provider: SceneProvider, segmenter: torch.nn.Module | None, rng_seed: int
) -> list[ChunkSample]:
    """Build the scene of ``seed`` and cut its chunk samples (CPU tensors)."""
    scene = provider(int(seed), config.data)
    labels = pseudo_labels(scene, config.data.label_source, segmenter)
    views = build_view_set(scene.frames, scene.kept, labels, config.data.render_stride)
    rng = random.Random(rng_seed)
    return sample_chunks(scene, views, config.data, rng, config.network.use_semantics_input)


def _scene_samples_job(job: tuple) -> list[ChunkSample]:
    seed, config, provider, rng_seed = job
    return scene_samples(seed, config, provider, None, rng_seed)


def prepare_samples(
    seeds: Sequence[int], config: TrainingConfig, provider: SceneProvider, segmenter: torch.nn.Module | None,
    rng: random.Random, progress: bool = False,
) -> list[ChunkSample]:
    """Build scenes for ``seeds`` and cut their chunk samples; ``data.workers`` processes in parallel
    (parallel workers cannot run the segmenter, so 'segmenter' labels are built in this process)."""
    from tqdm import tqdm

    from ssr_ros.worker_pool import map_in_processes

    rng_seeds = [rng.randrange(2**31) for _ in seeds]
    samples: list[ChunkSample] = []
    with tqdm(total=len(seeds), desc="scenes", unit="scene", disable=not progress) as bar:
        if config.data.label_source != "segmenter":  # worker processes cannot run the segmenter
            jobs = [(int(seed), config, provider, r) for seed, r in zip(seeds, rng_seeds)]
            for scene_list in map_in_processes(_scene_samples_job, jobs, config.data.workers):
                samples.extend(scene_list)
                bar.update(1)
        else:
            for seed, r in zip(seeds, rng_seeds):
                samples.extend(scene_samples(int(seed), config, provider, segmenter, r))
                bar.update(1)
    return samples


def training_contract(config: TrainingConfig) -> ModelContract:
    """What a model trained with ``config`` expects of a map (stored with its weights)."""
    from ssr_ros.taxonomy import ClassTaxonomy

    names: tuple[str, ...] = ()
    taxonomy = ClassTaxonomy.load(None)
    if taxonomy.num_classes == config.network.num_classes:
        names = tuple(taxonomy.names)
    return ModelContract(
        voxel_size=config.data.map.voxel_size, truncation=config.data.map.truncation,
        chunk_size=config.data.chunk_size, num_classes=config.network.num_classes, class_names=names,
        geometry_input=INPUT_KNOWN,
    )


def load_segmenter(path: str, device: torch.device) -> torch.nn.Module | None:
    if not path:
        return None
    from ssr_ros.completion.weights import load_model

    return load_model(path, device=device, expected_type="segmenter2d")


@dataclass
class TrainingResult:
    losses: list[float]
    validation: list[dict]
    model: SSRUNet
    weights_path: Path | None
    seconds: float


def train(
    config: TrainingConfig,
    provider: SceneProvider | None = None,
    resume: bool = False,
    progress: bool = True,
    command: str = "",
) -> TrainingResult:
    """Train the SSR U-Net as configured; writes ``out_dir/{log.jsonl, checkpoint.pt, model.pt}``.

    ``provider`` builds a TrainingScene from a seed (default: synthetic rooms fused by the
    map). Under ``torchrun`` each process trains on its share of the scenes with
    DistributedDataParallel; rank 0 logs and saves.
    """
    config.validate()
    rank, world, local_rank = _distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if provider is None:
        provider = synthetic_scene
    torch.manual_seed(config.seed + rank)
    rng = random.Random(config.seed + rank)
    generator = torch.Generator().manual_seed(config.seed + rank)
    is_main = rank == 0
    run = TrainingRun(config.out_dir, resume, main=is_main)
    segmenter = load_segmenter(config.data.segmenter_weights, device)

    train_seeds = list(config.data.train_seeds)[rank::world] or list(config.data.train_seeds)
    start = time.time()
    train_samples = prepare_samples(train_seeds, config, provider, segmenter, rng, progress and is_main)
    val_samples = prepare_samples(config.data.val_seeds, config, provider, segmenter, random.Random(12345), False) if is_main else []
    if not train_samples:
        raise ConfigError("no training chunk found: scenes too small for data.chunk_size or nothing observed")
    run.log({"event": "data", "train_chunks": len(train_samples), "val_chunks": len(val_samples),
               "seconds": round(time.time() - start, 2)})

    model = SSRUNet(config.network).to(device)
    if config.init_weights and not resume:
        from ssr_ros.completion.weights import load_model

        initial = load_model(config.init_weights, device, expected_type="ssr_unet")
        if initial.config != model.config:
            raise ConfigError(f"init_weights '{config.init_weights}' hold a network of another shape: {initial.config}")
        model.load_state_dict(initial.state_dict())
    # The network's fastest layout on the device (on the CPU channels-last: the small network, a
    # batch of two 32^3 chunks, forward, losses, backward and update 0.44 -> 0.37 s on 2 threads).
    layout = memory_format(device)
    model.to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay)
    steps = config.optim.steps
    clock = RunClock(steps, config.optim.max_seconds)
    scheduler = cosine_schedule(optimizer, clock)
    first_step = 0
    if resume:
        first_step = run.restore_state(model, optimizer, scheduler, device)
        generator.manual_seed(config.seed + rank + first_step)
    trained = model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    losses: list[float] = []
    validation: list[dict] = []
    iterator = range(first_step, steps)
    if progress and is_main:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="train", unit="step", initial=first_step, total=steps)
    train_start = clock.start()
    interrupted = False
    stopped_early = False
    try:
        for step in iterator:
            if config.optim.max_seconds and time.time() - train_start > config.optim.max_seconds:
                stopped_early = True
                if is_main:
                    run.save_state(model, optimizer, scheduler, step, config)
                    run.log({"event": "time_limit", "step": step, "seconds": round(time.time() - train_start, 1)})
                    if val_samples:
                        metrics = validate(model, val_samples, config, device)
                        validation.append({"step": step, **metrics})
                        run.log({"event": "validation", "step": step, **metrics})
                break
            model.train()
            batch = [train_samples[i] for i in torch.randint(len(train_samples), (config.optim.batch_size,), generator=generator).tolist()]
            geometry, color = chunk_inputs([_to_device(s.chunk, device) for s in batch], config.network, geometry_input=INPUT_KNOWN)
            geometry = geometry.contiguous(memory_format=layout)
            color = None if color is None else color.contiguous(memory_format=layout)
            prediction = trained(geometry, color, batch[0].chunk.truncation)
            totals = []
            term_sums: dict[str, float] = {}
            for b, sample in enumerate(batch):
                terms = chunk_losses(prediction, b, sample, config, generator, segmenter, device)
                totals.append(weighted_total(terms, config.losses))
                for k, v in terms.items():
                    term_sums[k] = term_sums.get(k, 0.0) + float(v.detach()) / len(batch)
            loss = torch.stack(totals).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            done = step + 1
            if is_main and (done % config.optim.log_every == 0 or done == steps):
                record = {"step": done, "loss": round(losses[-1], 5), **{k: round(v, 5) for k, v in term_sums.items()},
                          "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - train_start, 2)}
                run.log(record)
                if hasattr(iterator, "set_postfix"):
                    iterator.set_postfix(loss=f"{losses[-1]:.4f}")
            if is_main and val_samples and (done % config.optim.validate_every == 0 or done == steps):
                metrics = validate(model, val_samples, config, device)
                validation.append({"step": done, **metrics})
                run.log({"event": "validation", "step": done, **metrics})
            if is_main and (done % config.optim.checkpoint_every == 0 or done == steps):
                run.save_state(model, optimizer, scheduler, done, config)
    except KeyboardInterrupt:
        # Ctrl-C (or SIGINT) ends training early but keeps the work: checkpoint and weights.
        interrupted = True
        if is_main:
            run.save_state(model, optimizer, scheduler, first_step + len(losses), config)
            run.log({"event": "interrupted", "step": first_step + len(losses)})

    weights_path = None
    if is_main:
        from ssr_ros.completion.weights import save_model

        weights_path = save_model(model, run.weights_path, contract=training_contract(config), metadata={
            "command": command, "steps": first_step + len(losses), "interrupted": interrupted, "time_limited": stopped_early, "train_seeds": json.dumps(list(config.data.train_seeds)),
            "val_seeds": json.dumps(list(config.data.val_seeds)), "device": str(device), "world_size": world,
            "train_seconds": round(time.time() - train_start, 1), "final_loss": losses[-1] if losses else float("nan"),
        })
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return TrainingResult(losses, validation, model, weights_path, time.time() - start)


def _to_device(chunk: DenseChunk, device: torch.device) -> DenseChunk:
    from ssr_ros.completion.inference import _to

    return _to(chunk, device)


@torch.no_grad()
def validate(model: SSRUNet, samples: Sequence[ChunkSample], config: TrainingConfig, device: torch.device) -> dict[str, float]:
    """Mean loss terms on validation chunks (fixed views) and completion IoU on their unobserved voxels."""
    model.eval()
    generator = torch.Generator().manual_seed(0)
    sums: dict[str, float] = {}
    inter = union = 0.0
    inter0 = union0 = 0.0
    for sample in samples:
        geometry, color = chunk_inputs([_to_device(sample.chunk, device)], config.network, geometry_input=INPUT_KNOWN)
        prediction = model(geometry, color, sample.chunk.truncation)
        terms = chunk_losses(prediction, 0, sample, config, generator, None, device)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) / len(samples)
        scores = chunk_completion_scores(prediction.tsdf[0], sample)
        inter += scores["intersection"]
        union += scores["union"]
        baseline = chunk_completion_scores(sample.chunk.tsdf, sample)  # fusion only
        inter0 += baseline["intersection"]
        union0 += baseline["union"]
    metrics = {f"val_{k}": round(v, 5) for k, v in sums.items()}
    metrics["val_unobserved_iou"] = round(inter / union, 4) if union else float("nan")
    metrics["val_unobserved_iou_fusion"] = round(inter0 / union0, 4) if union0 else float("nan")
    return metrics


def export_checkpoint(checkpoint_path: str | Path, out_path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the network of a training checkpoint as a weights file (see ``weights.save_model``).

    For runs stopped before their last step without the interrupt handler (e.g. killed).
    """
    from ssr_ros.completion.weights import save_model
    from ssr_ros.config import config_from_dict

    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        raise MapFileError(f"checkpoint '{checkpoint_path}' not found")
    try:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        config = config_from_dict(TrainingConfig, json.loads(state["config"]))
    except Exception as error:  # noqa: BLE001 - any damage means the same to the user
        raise MapFileError(f"checkpoint '{checkpoint_path}' cannot be read: {error}") from error
    model = SSRUNet(config.network)
    model.load_state_dict(state["model"])
    return save_model(model, out_path, contract=training_contract(config),
                      metadata={"steps": int(state["step"]), "from_checkpoint": str(checkpoint_path), **(metadata or {})})
