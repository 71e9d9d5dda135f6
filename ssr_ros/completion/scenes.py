"""Training scenes from the synthetic room generator, fused by the semantic TSDF map.

``synthetic_scene(seed, data_config)`` generates a furnished room and a camera path through
it, renders RGB-D frames with their 2D class labels, keeps a subset of the frames (whole
contiguous segments are dropped, so the input misses regions rather than pixels) and fuses
the kept frames into the *input* map and all frames into the *reference* map.
"""

from __future__ import annotations

import math

import numpy as np

from ssr_ros.geometry import CameraIntrinsics, Frame


def camera_intrinsics(width: int, height: int, horizontal_fov_deg: float = 70.0) -> CameraIntrinsics:
    """Pinhole intrinsics of a ``width`` x ``height`` camera with the given horizontal field of view."""
    f = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
    return CameraIntrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width, height)


def kept_frames(num_frames: int, keep_fraction: float, segment: int, rng: np.random.Generator) -> list[int]:
    """Indices of frames kept for the input: random contiguous segments totalling ``keep_fraction``."""
    segments = [list(range(s, min(s + segment, num_frames))) for s in range(0, num_frames, segment)]
    n_keep = min(len(segments), max(1, int(round(keep_fraction * len(segments)))))
    chosen = sorted(rng.choice(len(segments), n_keep, replace=False).tolist())
    return [i for s in chosen for i in segments[s]]


def render_frames(scene, poses: np.ndarray, intrinsics: CameraIntrinsics, stamps_ns=None) -> list[Frame]:
    """Noise-free frames (depth, rgb, GT labels) of ``scene`` from camera-to-world ``poses``."""
    frames = []
    for i, T in enumerate(poses):
        view = scene.render(T, intrinsics)
        frames.append(Frame(
            depth=np.asarray(view.depth, np.float32), intrinsics=intrinsics, T_world_cam=np.asarray(T, np.float64),
            rgb=np.asarray(view.rgb, np.uint8), labels=np.asarray(view.class_ids, np.int64),
            stamp_ns=int(stamps_ns[i]) if stamps_ns is not None else i,
        ))
    return frames


def fuse(frames, voxel_size: float, truncation_voxels: float, num_classes: int = 21, max_depth: float = 6.0):
    """A :class:`~ssr_ros.map.SemanticTSDF` with ``frames`` integrated."""
    from ssr_ros.map.config import TSDFConfig
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    tsdf_map = SemanticTSDF(
        TSDFConfig(voxel_size=voxel_size, truncation_voxels=truncation_voxels, max_depth=max_depth), num_classes=num_classes
    )
    for frame in frames:
        tsdf_map.integrate(frame)
    return tsdf_map


def scene_voxel_bounds(scene, voxel_size: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    lo, hi = scene.bounds()
    return (tuple(int(math.floor(v / voxel_size)) for v in lo), tuple(int(math.ceil(v / voxel_size)) for v in hi))


def synthetic_scene(seed: int, data):
    """TrainingScene provider for generated rooms (see module docstring)."""
    from ssr_ros.completion.training import TrainingScene
    from ssr_ros.data.synthetic.layout import generate_scene
    from ssr_ros.data.synthetic.trajectory import TrajectoryConfig, generate_trajectory

    scene = generate_scene(seed)
    trajectory = generate_trajectory(
        scene, TrajectoryConfig(num_frames=data.frames_per_scene, frame_rate=data.frame_rate), seed=seed
    )
    intrinsics = camera_intrinsics(data.image_width, data.image_height)
    frames = render_frames(scene, trajectory.poses, intrinsics, trajectory.stamps_ns)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x55A]))
    kept = kept_frames(len(frames), data.keep_fraction, data.drop_segment_frames, rng)
    input_map = fuse([frames[i] for i in kept], data.voxel_size, data.truncation_voxels)
    reference_map = fuse(frames, data.voxel_size, data.truncation_voxels)
    lo, hi = scene_voxel_bounds(scene, data.voxel_size)
    return TrainingScene(f"synthetic-{seed}", frames, kept, input_map, reference_map, lo, hi)
