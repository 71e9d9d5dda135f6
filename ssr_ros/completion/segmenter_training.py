"""Training data and loop of the 2D segmenter (``ssr train-segmenter CONFIG``).

The segmenter learns class labels from synthetic renders: the frames along each scene's
camera path and *virtual views* (a wider field of view, the camera pulled back from the
path), the same kind of view completion training renders. Rendered chunks show black where
the ray hits nothing and are slightly smoother than photos, so images are augmented with
random black borders (label 0, ignored) and blur.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig, pixel_accuracy, train_segmenter
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError


@dataclass
class SegmenterDataConfig:
    """Which scenes and views the segmenter learns from."""

    train_seeds: list = param([0, 1, 2, 3], "scene seeds for training")
    val_seeds: list = param([1000], "scene seeds for validation (never for training)")
    frames_per_scene: int = param(24, "frames along each camera path", low=1, high=100000)
    frame_rate: float = param(1.5, "frames per second along the path", low=0.01, high=1000.0)
    virtual_views_per_scene: int = param(12, "extra wide, pulled-back views per scene", low=0, high=100000)
    virtual_fov_scale: float = param(1.5, "virtual views widen the field of view by this factor", low=1.0, high=4.0)
    pull_back: float = param(0.8, "virtual cameras move back along their axis by up to this, metres", low=0.0, high=10.0)
    image_width: int = param(80, "image width, pixels", low=8, high=4096)
    image_height: int = param(60, "image height, pixels", low=8, high=4096)
    black_border_probability: float = param(0.5, "chance to black out outside a random box (rendered-chunk look)", low=0.0, high=1.0)
    blur_probability: float = param(0.3, "chance to blur an image slightly", low=0.0, high=1.0)

    def validate(self) -> "SegmenterDataConfig":
        validate_config(self)
        if set(map(int, self.train_seeds)) & set(map(int, self.val_seeds)):
            raise ConfigError("segmenter val_seeds overlap train_seeds")
        return self


@dataclass
class SegmenterTrainingConfig:
    """Everything ``ssr train-segmenter CONFIG`` reads."""

    network: SegmenterConfig = field(default_factory=SegmenterConfig)
    data: SegmenterDataConfig = field(default_factory=SegmenterDataConfig)
    steps: int = param(1500, "optimisation steps", low=1, high=10_000_000)
    batch_size: int = param(8, "images per step", low=1, high=1024)
    learning_rate: float = param(2e-3, "AdamW learning rate (cosine decay)", low=1e-7, high=1.0)
    out: str = param("out/segmenter/segmenter.pt", "weights file written at the end")
    seed: int = param(0, "random seed", low=0, high=2**31 - 1)
    threads: int = param(0, "CPU threads for torch (0 = default)", low=0, high=512)

    def validate(self) -> "SegmenterTrainingConfig":
        validate_config(self)
        self.network.validate()
        self.data.validate()
        return self


def scene_images(seed: int, data: SegmenterDataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (V, H, W, 3) in [0, 1] and labels (V, H, W) of a generated scene's path and virtual views."""
    from ssr_ros.completion.renderer import widened_intrinsics
    from ssr_ros.completion.scenes import camera_intrinsics
    from ssr_ros.data.synthetic.layout import generate_scene
    from ssr_ros.data.synthetic.trajectory import TrajectoryConfig, generate_trajectory

    scene = generate_scene(seed)
    n = data.frames_per_scene + data.virtual_views_per_scene
    trajectory = generate_trajectory(scene, TrajectoryConfig(num_frames=n, frame_rate=data.frame_rate), seed=seed)
    intrinsics = camera_intrinsics(data.image_width, data.image_height)
    wide = widened_intrinsics(intrinsics, data.virtual_fov_scale)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E6]))
    lo, hi = scene.interior_bounds()
    rgb, labels = [], []
    for i, T in enumerate(trajectory.poses):
        K = intrinsics
        if i >= data.frames_per_scene:  # virtual: pull back inside the room, widen the view
            T = np.array(T, dtype=np.float64)
            back = T[:3, 3] - T[:3, 2] * rng.uniform(0.0, data.pull_back)
            T[:3, 3] = np.clip(back, lo + 0.1, hi - 0.1)
            K = wide
        view = scene.render(T, K)
        rgb.append(torch.from_numpy(np.asarray(view.rgb).astype(np.float32) / 255.0))
        labels.append(torch.from_numpy(np.asarray(view.class_ids).astype(np.int64)))
    return torch.stack(rgb), torch.stack(labels)


def augmented_batches(
    rgb: torch.Tensor, labels: torch.Tensor, batch_size: int, data: SegmenterDataConfig, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random batches with black-border and blur augmentation."""
    n, H, W = labels.shape
    while True:
        index = torch.randint(n, (batch_size,), generator=generator)
        x, y = rgb[index].clone(), labels[index].clone()
        for b in range(batch_size):
            if float(torch.rand(1, generator=generator)) < data.black_border_probability:
                h0, w0 = (torch.rand(2, generator=generator) * torch.tensor([H / 2, W / 2])).long().tolist()
                h1, w1 = (torch.tensor([H, W]) - torch.rand(2, generator=generator) * torch.tensor([H / 2, W / 2])).long().tolist()
                keep = torch.zeros(H, W, dtype=torch.bool)
                keep[h0:h1, w0:w1] = True
                x[b][~keep] = 0.0
                y[b][~keep] = 0
            if float(torch.rand(1, generator=generator)) < data.blur_probability:
                x[b] = F.avg_pool2d(x[b].permute(2, 0, 1)[None], 3, stride=1, padding=1, count_include_pad=False)[0].permute(1, 2, 0)
        yield x, y


def images_for_seeds(seeds: Sequence[int], data: SegmenterDataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [scene_images(int(s), data) for s in seeds]
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])


@torch.no_grad()
def evaluate_segmenter(model: Segmenter2d, rgb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Pixel accuracy and mean IoU over classes present (class 0 ignored)."""
    model.eval()
    logits = torch.cat([model(rgb[i : i + 16].permute(0, 3, 1, 2)) for i in range(0, len(rgb), 16)])
    predicted = logits.argmax(1)
    keep = labels != 0
    ious = []
    for c in torch.unique(labels[keep]).tolist():
        t, p = (labels == c) & keep, (predicted == c) & keep
        ious.append(float((t & p).sum()) / max(float((t | p).sum()), 1.0))
    return {"pixel_accuracy": round(pixel_accuracy(logits, labels), 4), "miou": round(float(np.mean(ious)) if ious else float("nan"), 4)}


def run_segmenter_training(config: SegmenterTrainingConfig, progress: bool = True, command: str = "") -> dict:
    """Render the data, train, evaluate on the validation seeds, save weights; returns a summary."""
    from ssr_ros.completion.weights import save_model

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    start = time.time()
    rgb, labels = images_for_seeds(config.data.train_seeds, config.data)
    val_rgb, val_labels = images_for_seeds(config.data.val_seeds, config.data)
    render_seconds = time.time() - start
    model = Segmenter2d(config.network)
    out = Path(config.out)
    log_path = out.with_suffix(".log.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")

    def log(record: dict) -> None:
        if record["step"] % 20 == 0 or record["step"] == config.steps - 1:
            log_file.write(json.dumps(record) + "\n")

    batches = augmented_batches(rgb, labels, config.batch_size, config.data, torch.Generator().manual_seed(config.seed))
    train_start = time.time()
    losses = train_segmenter(model, batches, config.steps, config.learning_rate, log=log, progress=progress)
    train_seconds = time.time() - train_start
    metrics = evaluate_segmenter(model, val_rgb, val_labels)
    summary = {"event": "validation", "images": int(len(rgb)), "val_images": int(len(val_rgb)),
               "render_seconds": round(render_seconds, 1), "train_seconds": round(train_seconds, 1),
               "first_loss": round(losses[0], 4), "final_loss": round(float(np.mean(losses[-20:])), 4), **metrics}
    log_file.write(json.dumps(summary) + "\n")
    log_file.close()
    save_model(model, out, metadata={"command": command, **{k: v for k, v in summary.items() if k != "event"},
                                      "train_seeds": json.dumps(list(config.data.train_seeds))})
    summary["weights"] = str(out)
    return summary
