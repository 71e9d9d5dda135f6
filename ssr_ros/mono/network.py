"""The monocular network: one small encoder-decoder, a depth head with confidence and a semantic head.

Input RGB (B, 3, H, W) in [0, 1] at the network's working size (``input_height`` x
``input_width``; :class:`ssr_ros.mono.predictor.MonoPredictor` resizes camera images to it).
Outputs at the same size:

- ``log_depth`` (B, H, W): natural log of the depth in metres *for the canonical focal ratio*
  ``focal_ratio`` (fx / width). A camera with another focal ratio sees the same room larger or
  smaller; its depth is the canonical depth times ``(fx / width) / focal_ratio``.
- ``log_scale`` (B, H, W): log of the Laplace scale b of ``log_depth``; exp(log_scale) is about
  the relative depth error, so a small value means a confident pixel.
- ``logits`` (B, C, H, W): class scores over the map's taxonomy (class 0 = unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssr_ros.completion.segmenter import conv_block
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput

WIDTH_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
MIN_LOG_SCALE, MAX_LOG_SCALE = -6.0, 2.0


@dataclass
class MonoNetConfig:
    """Shape of the monocular network and the camera it was trained for (saved with the weights)."""

    num_classes: int = param(21, "classes of the semantic head, id 0 = unknown included", low=2, high=1024)
    base_width: int = param(16, "channels at half resolution (the stem)", low=4, high=256)
    levels: int = param(5, "encoder halvings after the stem (deepest features at 1/2^(levels+1))", low=2, high=6)
    input_width: int = param(160, "working width, pixels (camera images are resized to it)", low=32, high=4096)
    input_height: int = param(120, "working height, pixels", low=32, high=4096)
    focal_ratio: float = param(0.96, "canonical fx / width the depth head predicts for", low=0.2, high=5.0)
    min_depth: float = param(0.1, "smallest depth the head can predict, metres", low=0.01, high=100.0)
    max_depth: float = param(10.0, "largest depth the head can predict, metres", low=0.1, high=1000.0)

    def validate(self) -> "MonoNetConfig":
        validate_config(self)
        if self.min_depth >= self.max_depth:
            raise ConfigError(f"min_depth={self.min_depth} must be below max_depth={self.max_depth}")
        return self

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.levels + 1)


@dataclass
class MonoOutput:
    """Network outputs at the working size (see the module docstring)."""

    log_depth: torch.Tensor
    log_scale: torch.Tensor
    logits: torch.Tensor


def _down(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution: a strided 3x3 convolution then a 3x3 convolution."""
    groups = 1 if cout % 4 else 4
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(groups, cout), nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(groups, cout), nn.LeakyReLU(0.2),
    )


class MonoDepthNet(nn.Module):
    """RGB -> log depth, log Laplace scale, class logits (shapes in the module docstring)."""

    MODEL_TYPE = "mono_depth"
    """Its ``model_type`` in a weights file (:mod:`ssr_ros.completion.weights`)."""
    CONFIG_CLASS = MonoNetConfig

    def __init__(self, config: MonoNetConfig) -> None:
        super().__init__()
        self.config = config.validate()
        widths = [int(round(config.base_width * WIDTH_FACTORS[i])) for i in range(config.levels + 1)]
        self.widths = widths
        self.stem = _down(3, widths[0])  # 1/2
        self.down = nn.ModuleList([_down(widths[i], widths[i + 1]) for i in range(config.levels)])
        self.context = nn.Sequential(nn.Conv2d(widths[-1], widths[-1], 1), nn.LeakyReLU(0.2))
        self.up = nn.ModuleList(
            [conv_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(config.levels))]
        )
        self.depth_head = nn.Conv2d(widths[0], 2, 1)
        self.semantic_head = nn.Conv2d(widths[0], config.num_classes, 1)
        self._log_min = math.log(config.min_depth)
        self._log_range = math.log(config.max_depth) - self._log_min

    def forward(self, rgb: torch.Tensor) -> MonoOutput:
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InvalidInput(f"monocular network input must be (B, 3, H, W), got {tuple(rgb.shape)}")
        H, W = rgb.shape[-2:]
        m = self.config.size_multiple
        pad_h, pad_w = (-H) % m, (-W) % m
        x = F.pad(rgb * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = x + self.context(x.mean(dim=(2, 3), keepdim=True))  # whole-image context (room scale)
        for j, block in enumerate(self.up):
            skip = skips[-2 - j]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        depth = F.interpolate(self.depth_head(x), scale_factor=2.0, mode="bilinear", align_corners=False)[..., :H, :W]
        logits = F.interpolate(self.semantic_head(x), scale_factor=2.0, mode="bilinear", align_corners=False)[..., :H, :W]
        log_depth = self._log_min + self._log_range * torch.sigmoid(depth[:, 0])
        log_scale = MIN_LOG_SCALE + (MAX_LOG_SCALE - MIN_LOG_SCALE) * torch.sigmoid(depth[:, 1] + 0.4)  # starts near b = 0.3
        return MonoOutput(log_depth, log_scale, logits)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
