"""Training and evaluation images of the monocular network.

Two sources, both reduced to the network's working size:

- generated rooms (:mod:`ssr_ros.data.synthetic`): color, *exact* depth and class ids along a
  camera path, by scene seed;
- real RGB-D folders (7-Scenes, TUM, ScanNet, Replica, Redwood layouts via
  :func:`ssr_ros.data.folders.open_folder`): the recorded depth supervises the depth head (no
  labels: the semantic head learns from generated rooms only). The first ``real_train_fraction``
  of each sequence trains, the rest is held out for validation.

Depth targets are stored *canonical*: divided by ``scale = (fx / width) / focal_ratio`` of the
image's camera, so that ``canonical * scale`` is metres (see :mod:`ssr_ros.mono.network`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, DatasetError
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.package_files import SOURCE_ROOT

SHARED_DIR_VARIABLE = "SSR_SHARED_DIR"


@dataclass
class MonoDataConfig:
    """Which generated rooms and real folders the monocular network learns from."""

    train_seeds: list = param([0, 1, 2, 3], "generated room seeds for training")
    val_seeds: list = param([1000], "generated room seeds for validation (never for training)")
    frames_per_scene: int = param(24, "frames along each room's camera path", low=1, high=100000)
    path_frame_rate: float = param(2.0, "frames per second along the path (lower: frames further apart)", low=0.01, high=1000.0)
    real_folders: list = param([], "RGB-D folders (depth supervises the depth head); '${SSR_SHARED_DIR}' "
                               "expands to the shared data directory (default: ../shared beside the repo)")
    real_train_fraction: float = param(0.8, "first part of each real sequence used for training; the rest validates",
                                       low=0.0, high=1.0)
    real_stride: int = param(2, "use every n-th frame of the real folders", low=1, high=10000)
    real_max_depth: float = param(6.0, "real depth beyond this is not a target, metres", low=0.1, high=100.0)
    real_fraction: float = param(0.3, "chance that a training image comes from the real folders (when both exist)",
                                 low=0.0, high=1.0)
    flip_probability: float = param(0.5, "chance to mirror a training image left-right", low=0.0, high=1.0)
    color_jitter: float = param(0.15, "brightness / contrast / channel gain jitter, relative", low=0.0, high=1.0)
    render_scale: int = param(1, "render generated rooms at this multiple of the working size and area-average the "
                              "color down, as camera images are at run time (1 = render at the working size)",
                              low=1, high=8)
    workers: int = param(1, "processes that render generated rooms in parallel (1 = in this process)", low=1, high=256)

    def validate(self) -> "MonoDataConfig":
        validate_config(self)
        if set(map(int, self.train_seeds)) & set(map(int, self.val_seeds)):
            raise ConfigError("mono data: val_seeds overlap train_seeds")
        return self


@dataclass
class ImageSet:
    """Images at the working size. rgb (N, H, W, 3) uint8; depth (N, H, W) float32 canonical metres
    (0 = no target); labels (N, H, W) int16 (0 = none); scale (N,) float32 (canonical -> metres);
    source: one name per image (e.g. 'synthetic:1000', a folder path)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    labels: torch.Tensor
    scale: torch.Tensor
    source: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    @staticmethod
    def empty(height: int, width: int) -> "ImageSet":
        return ImageSet(torch.zeros(0, height, width, 3, dtype=torch.uint8), torch.zeros(0, height, width),
                        torch.zeros(0, height, width, dtype=torch.int16), torch.zeros(0), [])

    @staticmethod
    def concat(parts: Sequence["ImageSet"], height: int, width: int) -> "ImageSet":
        parts = [p for p in parts if len(p)]
        if not parts:
            return ImageSet.empty(height, width)
        return ImageSet(torch.cat([p.rgb for p in parts]), torch.cat([p.depth for p in parts]),
                        torch.cat([p.labels for p in parts]), torch.cat([p.scale for p in parts]),
                        [s for p in parts for s in p.source])

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.rgb.to(device), self.depth.to(device), self.labels.to(device), self.scale.to(device),
                        list(self.source))

    def subset(self, keep: Sequence[bool] | torch.Tensor) -> "ImageSet":
        keep = torch.as_tensor(keep, dtype=torch.bool)
        return ImageSet(self.rgb[keep], self.depth[keep], self.labels[keep], self.scale[keep],
                        [s for s, k in zip(self.source, keep.tolist()) if k])


def resolve_data_path(path: str) -> Path:
    """``path`` with ``${SSR_SHARED_DIR}`` expanded (default: the ``shared`` directory beside the repo)."""
    shared = os.environ.get(SHARED_DIR_VARIABLE, str(SOURCE_ROOT.parent / "shared"))
    return Path(str(path).replace("${" + SHARED_DIR_VARIABLE + "}", shared).replace("$" + SHARED_DIR_VARIABLE, shared))


def source_name(folder: str) -> str:
    """A short name of a real folder for logs: the dataset directory under the shared ``data/``
    (``${SSR_SHARED_DIR}/data/7scenes_tsdf_fusion/data`` -> ``7scenes_tsdf_fusion``), else the folder's name."""
    parts = Path(str(folder)).parts
    for i, part in enumerate(parts[:-1]):
        if SHARED_DIR_VARIABLE in part and i + 2 < len(parts) and parts[i + 1] == "data":
            return parts[i + 2]
    return Path(str(folder)).name


def depth_scale(intrinsics: CameraIntrinsics, focal_ratio: float) -> float:
    """Canonical depth -> metres for a camera (see the module docstring)."""
    return float(intrinsics.fx / intrinsics.width) / float(focal_ratio)


def resize_rgb(rgb: np.ndarray | torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (height, width, 3) uint8, area-averaged (antialiased bilinear)."""
    x = torch.as_tensor(np.asarray(rgb)).permute(2, 0, 1)[None].float()
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def resize_nearest(image: np.ndarray | torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(H, W) depth or labels -> (height, width), nearest pixel (no mixing across edges)."""
    x = torch.as_tensor(np.asarray(image))
    if tuple(x.shape) == (height, width):
        return x.clone()
    return F.interpolate(x[None, None].float(), size=(height, width), mode="nearest")[0, 0].to(x.dtype)


def synthetic_images(seed: int, data: MonoDataConfig, height: int, width: int, focal_ratio: float) -> ImageSet:
    """Color, exact depth and class ids of a generated room's camera path."""
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    scene = generate_scene(int(seed))
    k = int(data.render_scale)
    sequence = SyntheticSequence(scene, SequenceConfig(
        width=width * k, height=height * k, trajectory=TrajectoryConfig(num_frames=data.frames_per_scene,
                                                                        frame_rate=data.path_frame_rate)), seed=int(seed))
    scale = depth_scale(sequence.intrinsics, focal_ratio)
    rgb, depth, labels = [], [], []
    for i in range(len(sequence)):
        view = sequence.view(i).rendering
        rgb.append(resize_rgb(np.asarray(view.rgb, dtype=np.uint8), height, width))
        d = resize_nearest(np.asarray(view.depth, dtype=np.float32), height, width)
        depth.append(torch.where(torch.isfinite(d) & (d > 0), d / scale, torch.zeros_like(d)))
        labels.append(resize_nearest(np.asarray(view.class_ids).astype(np.int16), height, width))
    n = len(rgb)
    return ImageSet(torch.stack(rgb), torch.stack(depth), torch.stack(labels), torch.full((n,), scale),
                    [f"synthetic:{int(seed)}"] * n)


def _synthetic_job(job: tuple) -> ImageSet:
    return synthetic_images(*job)


def synthetic_image_set(seeds: Sequence[int], data: MonoDataConfig, height: int, width: int,
                        focal_ratio: float) -> ImageSet:
    """:func:`synthetic_images` of every seed, concatenated in seed order; ``data.workers``
    processes render in parallel."""
    from ssr_ros.worker_pool import map_in_processes

    jobs = [(int(s), data, height, width, focal_ratio) for s in seeds]
    return ImageSet.concat(list(map_in_processes(_synthetic_job, jobs, data.workers)), height, width)


def real_images(folder: str, data: MonoDataConfig, height: int, width: int, focal_ratio: float,
                part: str) -> ImageSet:
    """Frames of a real RGB-D folder at the working size: ``part`` 'train' (the first
    ``real_train_fraction``), 'val' (the rest) or 'all'."""
    from ssr_ros.data.folders import open_folder

    path = resolve_data_path(folder)
    if not path.exists():
        raise DatasetError(f"real RGB-D folder '{path}' does not exist (set {SHARED_DIR_VARIABLE} to the directory "
                           "holding data/, or remove it from data.real_folders)")
    reader = open_folder(path)
    split = int(round(len(reader) * data.real_train_fraction))
    indices = {"train": range(0, split), "val": range(split, len(reader)), "all": range(len(reader))}[part]
    rgb, depth, scales = [], [], []
    for i in list(indices)[:: data.real_stride]:
        frame = reader.frame(i)
        if frame.rgb is None:
            continue
        scale = depth_scale(frame.intrinsics, focal_ratio)
        d = resize_nearest(np.asarray(frame.depth, dtype=np.float32), height, width)
        ok = torch.isfinite(d) & (d > 0) & (d <= data.real_max_depth)
        rgb.append(resize_rgb(frame.rgb, height, width))
        depth.append(torch.where(ok, d / scale, torch.zeros_like(d)))
        scales.append(scale)
    if not rgb:
        return ImageSet.empty(height, width)
    n = len(rgb)
    return ImageSet(torch.stack(rgb), torch.stack(depth), torch.zeros(n, height, width, dtype=torch.int16),
                    torch.tensor(scales, dtype=torch.float32), [str(folder)] * n)


def build_image_sets(data: MonoDataConfig, height: int, width: int, focal_ratio: float,
                     cache_dir: Path | None = None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(synthetic train, real train, validation: synthetic val seeds + held-out real frames).

    With ``cache_dir`` the images are kept in ``cache_dir/images.pt`` (keyed by the data config
    and size) so that a resumed run does not render them again.
    """
    key = hashlib.sha1(json.dumps([data.train_seeds, data.val_seeds, data.frames_per_scene, data.path_frame_rate,
                                   data.real_folders, data.real_train_fraction, data.real_stride,
                                   data.real_max_depth, height, width, focal_ratio]
                                  + ([data.render_scale] if data.render_scale != 1 else [])).encode()).hexdigest()[:16]
    cache = cache_dir / "images.pt" if cache_dir is not None else None
    if cache is not None and cache.exists():
        stored = torch.load(cache, map_location="cpu", weights_only=True)
        if stored.get("key") == key:
            return tuple(ImageSet(**{**part, "source": json.loads(part["source"])}) for part in stored["sets"])
    synthetic = synthetic_image_set(data.train_seeds, data, height, width, focal_ratio)
    real = ImageSet.concat([real_images(f, data, height, width, focal_ratio, "train") for f in data.real_folders], height, width)
    val = ImageSet.concat([synthetic_image_set(data.val_seeds, data, height, width, focal_ratio)]
                          + [real_images(f, data, height, width, focal_ratio, "val") for f in data.real_folders], height, width)
    if cache is not None:
        sets = [{"rgb": s.rgb, "depth": s.depth, "labels": s.labels, "scale": s.scale, "source": json.dumps(s.source)}
                for s in (synthetic, real, val)]
        with atomic_write(cache, "image cache") as handle:
            torch.save({"key": key, "sets": sets}, handle)
    return synthetic, real, val


def training_batches(synthetic: ImageSet, real: ImageSet, batch_size: int, data: MonoDataConfig,
                     generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless augmented batches: rgb (B, 3, H, W) float in [0, 1], canonical depth (B, H, W), labels (B, H, W),
    on the device the image sets are on (the random draws come from ``generator`` on the CPU)."""
    if not len(synthetic) and not len(real):
        raise ConfigError("mono training has no image: give data.train_seeds or data.real_folders")
    real_share = data.real_fraction if len(synthetic) and len(real) else (1.0 if len(real) else 0.0)
    # an empty set is never chosen (real_share is 0 or 1): the other stands in for it in the draws below
    synthetic_or_real = synthetic if len(synthetic) else real
    real_or_synthetic = real if len(real) else synthetic
    device = synthetic_or_real.rgb.device

    def pick(images: ImageSet, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = index.to(images.rgb.device)
        return images.rgb[index], images.depth[index], images.labels[index]

    while True:
        from_real = torch.rand(batch_size, generator=generator) < real_share
        pick_s = torch.randint(max(len(synthetic), 1), (batch_size,), generator=generator)
        pick_r = torch.randint(max(len(real), 1), (batch_size,), generator=generator)
        s_rgb, s_depth, s_labels = pick(synthetic_or_real, pick_s)
        r_rgb, r_depth, r_labels = pick(real_or_synthetic, pick_r)
        use_real = from_real.to(device)
        rgb = torch.where(use_real[:, None, None, None], r_rgb, s_rgb)
        depth = torch.where(use_real[:, None, None], r_depth, s_depth)
        labels = torch.where(use_real[:, None, None], r_labels, s_labels).long()
        x = rgb.permute(0, 3, 1, 2).float() / 255.0
        flip = (torch.rand(batch_size, generator=generator) < data.flip_probability).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        depth = torch.where(flip[:, None, None], depth.flip(-1), depth)
        labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
        if data.color_jitter > 0:
            j = data.color_jitter
            gain = 1.0 + j * (2 * torch.rand(batch_size, 1, 1, 1, generator=generator) - 1)
            channel = 1.0 + 0.3 * j * (2 * torch.rand(batch_size, 3, 1, 1, generator=generator) - 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            contrast = 1.0 + j * (2 * torch.rand(batch_size, 1, 1, 1, generator=generator) - 1)
            x = ((x - mean) * contrast.to(device) + mean) * gain.to(device) * channel.to(device)
            x = x.clamp(0.0, 1.0)
        yield x, depth, labels
