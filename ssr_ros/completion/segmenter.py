"""A small 2D semantic segmenter: the generic image predictor phi_seg of S4R.

S4R takes 2D pseudo-labels from a pretrained generic segmenter (MSeg). No pretrained model
can be downloaded here, so this tiny RGB U-Net is trained on synthetic renders (recorded
frames and rendered virtual views alike, ``ssr train-segmenter``) and plays that role: it
labels recorded frames and, during completion training, images rendered from the
predicted color volume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssr_ros.config import param, validate_config
from ssr_ros.errors import InvalidInput


@dataclass
class SegmenterConfig:
    """Shape of the 2D segmenter."""

    num_classes: int = param(21, "classes, id 0 = unknown included", low=2, high=1024)
    base_width: int = param(16, "channels at full resolution", low=1, high=256)
    levels: int = param(3, "resolution levels (levels-1 halvings)", low=1, high=6)

    def validate(self) -> "SegmenterConfig":
        return validate_config(self)


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with GroupNorm and LeakyReLU (same size in and out)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(1 if cout % 4 else 4, cout), nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(1 if cout % 4 else 4, cout), nn.LeakyReLU(0.2),
    )


class Segmenter2d(nn.Module):
    """RGB (B, 3, H, W) in [0, 1] -> class logits (B, N, H, W). Any H, W (padded internally)."""

    MODEL_TYPE = "segmenter2d"
    """Its ``model_type`` in a weights file (:mod:`ssr_ros.completion.weights`)."""
    CONFIG_CLASS = SegmenterConfig

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config.validate()
        widths = [config.base_width * 2**i for i in range(config.levels)]
        self.down = nn.ModuleList([conv_block(3 if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)])
        self.up = nn.ModuleList(
            [conv_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(config.levels - 1))]
        )
        self.head = nn.Conv2d(widths[0], config.num_classes, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InvalidInput(f"segmenter input must be (B, 3, H, W), got {tuple(rgb.shape)}")
        H, W = rgb.shape[-2:]
        m = 2 ** (self.config.levels - 1)
        pad_h, pad_w = (-H) % m, (-W) % m
        x = F.pad(rgb * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        for j, block in enumerate(self.up):
            skip = skips[-2 - j]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :H, :W]

    @torch.no_grad()
    def predict_probs(self, rgb_hwc: torch.Tensor) -> torch.Tensor:
        """Class probabilities (..., H, W, N) of RGB images (..., H, W, 3) in [0, 1]."""
        lead = rgb_hwc.shape[:-3]
        x = rgb_hwc.reshape(-1, *rgb_hwc.shape[-3:]).permute(0, 3, 1, 2)
        probs = torch.softmax(self(x), dim=1).permute(0, 2, 3, 1)
        return probs.reshape(*lead, *probs.shape[1:])


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 0) -> torch.Tensor:
    """Cross-entropy of (B, N, H, W) logits against (B, H, W) labels, class 0 ignored."""
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels.long(), ignore_index=ignore_index)


def pixel_accuracy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 0) -> float:
    keep = labels != ignore_index
    if not bool(keep.any()):
        return float("nan")
    return float((logits.argmax(1)[keep] == labels[keep]).float().mean())


def train_segmenter(
    model: Segmenter2d,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    learning_rate: float = 2e-3,
    log: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> list[float]:
    """Train on (rgb (B, H, W, 3) in [0, 1], labels (B, H, W) int) batches; returns the losses.

    The batch source decides what the segmenter sees (recorded frames, rendered virtual
    views, augmentations); AdamW with a cosine schedule.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    model.train()
    losses = []
    iterator = range(steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="segmenter", unit="step")
    start = time.time()
    for step in iterator:
        rgb, labels = next(batches)
        logits = model(rgb.permute(0, 3, 1, 2))
        loss = segmentation_loss(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log({"step": step, "loss": losses[-1], "pixel_accuracy": pixel_accuracy(logits.detach(), labels),
                 "seconds": time.time() - start})
    model.eval()
    return losses
