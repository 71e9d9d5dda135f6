"""Training scenes from the synthetic room generator, fused by the semantic TSDF map.

``synthetic_scene(seed, data_config)`` generates a furnished room and a camera path through
it, renders RGB-D frames (sensor-noise depth, 2D-predictor labels, and the exact labels
beside them) with the data package's ``SyntheticSequence``, keeps a subset of the frames (whole
contiguous segments are dropped, so the input misses regions rather than pixels) and fuses
the kept frames into the *input* map and all frames into the *reference* map: a
:class:`TrainingScene`, the form every scene source hands to ``ssr_ros.completion.training``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from ssr_ros.geometry import Frame
from ssr_ros.map.chunk import DenseChunk


class ChunkSource(Protocol):
    def extract_chunk(self, origin_voxel: torch.Tensor, size: Sequence[int]) -> DenseChunk: ...


@dataclass
class TrainingScene:
    """A captured scene ready for training.

    frames: every frame of the sequence (rgb, depth, labels as available).
    kept: indices of the frames fused into ``input_map``; the others are held out.
    input_map: fused from the kept frames only (incomplete).
    reference_map: fused from all frames (more complete; the 3D term's target).
    min_voxel, max_voxel: global voxel box of the scene (max exclusive).
    gt_labels: exact per-frame class images where the source has them (synthetic data), else
        None; ``frames[i].labels`` are the labels a 2D predictor would give (may be noisy).
    """

    name: str
    frames: list[Frame]
    kept: list[int]
    input_map: ChunkSource
    reference_map: ChunkSource
    min_voxel: tuple[int, int, int]
    max_voxel: tuple[int, int, int]
    gt_labels: list[np.ndarray] | None = None


def kept_frames(num_frames: int, keep_fraction: float, segment: int, rng: np.random.Generator) -> list[int]:
    """Indices of frames kept for the input: random contiguous segments totalling ``keep_fraction``."""
    segments = [list(range(s, min(s + segment, num_frames))) for s in range(0, num_frames, segment)]
    n_keep = min(len(segments), max(1, int(round(keep_fraction * len(segments)))))
    chosen = sorted(rng.choice(len(segments), n_keep, replace=False).tolist())
    return [i for s in chosen for i in segments[s]]


def fuse(frames, map_config, num_classes: int = 21):
    """A :class:`~ssr_ros.map.SemanticTSDF` (configured by ``map_config``, a TSDFConfig) with ``frames`` integrated."""
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    tsdf_map = SemanticTSDF(map_config, num_classes=num_classes)
    for frame in frames:
        tsdf_map.integrate(frame)
    return tsdf_map


def scene_voxel_bounds(scene, voxel_size: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    lo, hi = scene.bounds()
    return (tuple(int(math.floor(v / voxel_size)) for v in lo), tuple(int(math.ceil(v / voxel_size)) for v in hi))


def synthetic_sequence(seed: int, data):
    """The generated room of ``seed`` and its RGB-D sequence (noisy depth, 2D-predictor labels)."""
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    scene = generate_scene(seed)
    config = SequenceConfig(
        width=data.image_width, height=data.image_height,
        trajectory=TrajectoryConfig(kind=data.trajectory, num_frames=data.frames_per_scene, frame_rate=data.frame_rate),
    )
    return scene, SyntheticSequence(scene, config, seed=seed)


def synthetic_scene(seed: int, data):
    """TrainingScene provider for generated rooms (see module docstring)."""
    scene, sequence = synthetic_sequence(seed, data)
    frames, gt_labels = [], []
    for view in sequence.views():
        frames.append(view.frame)
        gt_labels.append(np.asarray(view.rendering.class_ids, np.int64))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x55A]))
    kept = kept_frames(len(frames), data.keep_fraction, data.drop_segment_frames, rng)
    input_map = fuse([frames[i] for i in kept], data.map)
    reference_map = fuse(frames, data.map)
    lo, hi = scene_voxel_bounds(scene, data.voxel_size)
    return TrainingScene(f"synthetic-{seed}", frames, kept, input_map, reference_map, lo, hi, gt_labels)
