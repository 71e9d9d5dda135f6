"""Training and evaluation volumes from generated rooms: fused noisy input beside exact labels.

A room of ``seed`` is generated and captured (noisy depth, 2D-predictor labels from the label
noise model, or exact labels with ``label_source: gt``); a subset of the frames (contiguous
segments, ``keep_fraction``) is fused into a semantic TSDF, and the whole room is extracted as
one dense chunk. The exact ground truth on the same grid gives every voxel's label (free space
0, else the class of the solid) and the voxels that count in the loss and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.config import TSDFConfig


def _default_map() -> TSDFConfig:
    return TSDFConfig(backend="torch")


@dataclass
class RoomCaptureConfig:
    """How a generated room is captured and fused into the regulariser's input."""

    frames_per_scene: int = param(24, "frames captured per room", low=2, high=10000)
    image_width: int = param(160, "captured image width, pixels", low=8, high=4096)
    image_height: int = param(120, "captured image height, pixels", low=8, high=4096)
    frame_rate: float = param(1.5, "frames per second along the camera path", low=0.01, high=1000.0)
    keep_fraction: float = param(0.6, "fraction of frames fused (the rest leaves regions without data)", low=0.05, high=1.0)
    drop_segment_frames: int = param(4, "frames are kept or dropped in contiguous segments of this length", low=1, high=10000)
    label_source: str = param("noisy", "2D labels fused: 'noisy' (2D-predictor noise model) or 'gt' (exact)", choices=["noisy", "gt"])
    map: TSDFConfig = field(default_factory=_default_map)

    def validate(self) -> "RoomCaptureConfig":
        validate_config(self)
        self.map.validate()
        return self

    @property
    def voxel_size(self) -> float:
        return self.map.voxel_size


@dataclass
class RoomVolume:
    """A fused room and its exact labels on one grid.

    chunk: the fused map over the room's grid (DenseChunk, CPU).
    labels: (X, Y, Z) int64 ground-truth label (0 free space, c >= 1 the class of the solid).
    in_room: (X, Y, Z) bool, voxels a camera inside the room could see (loss and metrics region).
    surface: (X, Y, Z) bool, occupied voxels next to a free voxel of the room (the GT surface).
    """

    name: str
    chunk: DenseChunk
    labels: torch.Tensor
    in_room: torch.Tensor
    surface: torch.Tensor


def surface_voxels(occupied: np.ndarray, in_room: np.ndarray) -> np.ndarray:
    """Occupied voxels of the room with a 6-neighbour that is free and in the room."""
    free = ~occupied & in_room
    near = np.zeros_like(occupied)
    for axis in range(3):
        for shift in (1, -1):
            rolled = np.roll(free, shift, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
            rolled[tuple(edge)] = False
            near |= rolled
    return occupied & in_room & near


def build_room(seed: int, capture: RoomCaptureConfig, num_classes: int = 21) -> RoomVolume:
    """Generate, capture, fuse and label the room of ``seed`` (see module docstring)."""
    from ssr_ros.completion.scenes import fuse, kept_frames
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
    from ssr_ros.data.synthetic.ground_truth import gt_volume

    scene = generate_scene(int(seed))
    sequence = SyntheticSequence(scene, SequenceConfig(
        width=capture.image_width, height=capture.image_height,
        trajectory=TrajectoryConfig(num_frames=capture.frames_per_scene, frame_rate=capture.frame_rate),
    ), seed=int(seed))
    frames = []
    for view in sequence.views():
        frame = view.frame
        if capture.label_source == "gt":
            import dataclasses

            frame = dataclasses.replace(frame, labels=np.asarray(view.rendering.class_ids).astype(frame.labels.dtype))
        frames.append(frame)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EC]))
    kept = kept_frames(len(frames), capture.keep_fraction, capture.drop_segment_frames, rng)
    tsdf_map = fuse([frames[i] for i in kept], capture.map, num_classes)
    gt = gt_volume(scene, capture.voxel_size)
    chunk = tsdf_map.extract_chunk(gt.origin_voxel, gt.shape)
    labels = np.where(gt.occupied, gt.class_ids, 0).astype(np.int64)
    in_room = gt.in_room & ~(gt.occupied & (gt.class_ids == 0))
    return RoomVolume(f"room-{seed}", chunk, torch.from_numpy(labels), torch.from_numpy(in_room),
                      torch.from_numpy(surface_voxels(gt.occupied, in_room)))


_CHUNK_FIELDS = ("origin_voxel", "tsdf", "weight", "observed", "semantics", "predicted", "free")


def save_room(room: RoomVolume, path: str | Path) -> None:
    """Cache a room (float16 class evidence) with an atomic write."""
    c = room.chunk
    document = {name: getattr(c, name) for name in _CHUNK_FIELDS if getattr(c, name) is not None}
    document["semantics"] = c.semantics.to(torch.float16)
    document.update(name=room.name, voxel_size=c.voxel_size, truncation=c.truncation,
                    labels=room.labels, in_room=room.in_room, surface=room.surface)
    with atomic_write(path, "room cache") as handle:
        torch.save(document, handle)


def load_room(path: str | Path) -> RoomVolume:
    d = torch.load(path, map_location="cpu", weights_only=True)
    shape = tuple(d["tsdf"].shape)
    chunk = DenseChunk(
        origin_voxel=d["origin_voxel"], voxel_size=float(d["voxel_size"]), truncation=float(d["truncation"]),
        tsdf=d["tsdf"], weight=d["weight"], observed=d["observed"], color=torch.zeros(shape + (3,)),
        semantics=d["semantics"].to(torch.float32), predicted=d["predicted"], free=d.get("free"),
    )
    return RoomVolume(d["name"], chunk, d["labels"], d["in_room"], d["surface"])


def cached_room(seed: int, capture: RoomCaptureConfig, cache_dir: str | Path | None, num_classes: int = 21) -> RoomVolume:
    """:func:`build_room`, read from / written to ``cache_dir/room-<seed>-<key>.pt`` when given
    (the key changes with the capture settings)."""
    if cache_dir is None:
        return build_room(seed, capture, num_classes)
    import hashlib
    import json

    from ssr_ros.config import config_to_dict

    key = hashlib.sha1(json.dumps([config_to_dict(capture), num_classes], sort_keys=True).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"room-{int(seed)}-{key}.pt"
    if path.exists():
        try:
            return load_room(path)
        except Exception as error:  # a damaged cache file is rebuilt
            raise ConfigError(f"room cache '{path}' is unreadable ({error}); delete it to rebuild") from error
    room = build_room(seed, capture, num_classes)
    save_room(room, path)
    return room
