"""The conditional shape prior: a small 3D U-Net over an object's canonical grid.

Input ``(B, 2, G, G, G)`` (observed surface, observed free; see
:func:`ssr_ros.objects.observation.observation_grid`) and the class index ``(B,)``. The class
embedding modulates every level (feature-wise scale and shift). Outputs:

- ``sdf``: ``(B, G, G, G)`` truncated signed distance in units of ``truncation_cells`` cells
  (tanh, in [-1, 1]; negative inside the object), in the input grid's frame;
- ``yaw_logits``: ``(B, yaw_bins)`` the object's yaw in the grid frame, bin ``k`` centred on
  ``-pi + (k + 0.5) * 2 pi / yaw_bins`` (the object's front is its +y axis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssr_ros.config import param, validate_config


@dataclass
class ShapePriorNetworkConfig:
    """Shape of the shape-prior network."""

    grid_size: int = param(32, "cells per side of the canonical object grid (a multiple of 8)", low=16, high=128)
    base_width: int = param(16, "channels of the first level (doubling per level, capped at 4x)", low=2, high=128)
    class_embedding: int = param(16, "size of the class embedding", low=1, high=256)
    yaw_bins: int = param(36, "bins of the yaw head over the full turn", low=4, high=360)
    truncation_cells: float = param(3.0, "SDF truncation of the output, cells", low=1.0, high=16.0)

    def validate(self) -> "ShapePriorNetworkConfig":
        validate_config(self)
        if self.grid_size % 8:
            from ssr_ros.errors import ConfigError

            raise ConfigError(f"grid_size={self.grid_size} must be a multiple of 8 (three poolings)")
        return self


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, embed: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(min(8, cout), cout)
        self.norm2 = nn.GroupNorm(min(8, cout), cout)
        self.film = nn.Linear(embed, 2 * cout)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        scale, shift = self.film(e).chunk(2, dim=1)
        x = x * (1 + scale[:, :, None, None, None]) + shift[:, :, None, None, None]
        return F.relu(self.norm2(self.conv2(x)))


class ShapePriorNet(nn.Module):
    """Three-level 3D U-Net with class conditioning and a yaw head (see the module docstring)."""

    def __init__(self, num_classes: int, config: ShapePriorNetworkConfig | None = None) -> None:
        super().__init__()
        self.config = (config or ShapePriorNetworkConfig()).validate()
        self.num_classes = int(num_classes)
        c, e = self.config.base_width, self.config.class_embedding
        w = [c, 2 * c, 4 * c, 4 * c]
        self.embed = nn.Embedding(self.num_classes, e)
        self.enc = nn.ModuleList([_Block(2, w[0], e), _Block(w[0], w[1], e), _Block(w[1], w[2], e), _Block(w[2], w[3], e)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(w[3], w[2], 2, stride=2), nn.ConvTranspose3d(w[2], w[1], 2, stride=2),
                                 nn.ConvTranspose3d(w[1], w[0], 2, stride=2)])
        self.dec = nn.ModuleList([_Block(2 * w[2], w[2], e), _Block(2 * w[1], w[1], e), _Block(2 * w[0], w[0], e)])
        self.out = nn.Conv3d(w[0], 1, 1)
        self.yaw_head = nn.Sequential(nn.Linear(w[3] + e, 64), nn.ReLU(), nn.Linear(64, self.config.yaw_bins))

    def forward(self, inputs: torch.Tensor, class_index: torch.Tensor) -> dict[str, torch.Tensor]:
        e = self.embed(class_index)
        skips = []
        x = inputs
        for i, block in enumerate(self.enc):
            x = block(x, e)
            if i < 3:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        yaw_logits = self.yaw_head(torch.cat([x.mean(dim=(2, 3, 4)), e], dim=1))
        for up, block in zip(self.up, self.dec):
            x = block(torch.cat([up(x), skips.pop()], dim=1), e)
        return {"sdf": torch.tanh(self.out(x)[:, 0]), "yaw_logits": yaw_logits}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def yaw_bin_centers(bins: int) -> torch.Tensor:
    """(bins,) yaw of each bin centre, radians in (-pi, pi)."""
    return -math.pi + (torch.arange(bins, dtype=torch.float32) + 0.5) * (2 * math.pi / bins)


def yaw_targets(yaw: torch.Tensor, bins: int, sigma_bins: float = 1.0) -> torch.Tensor:
    """(B, bins) soft targets: a wrapped Gaussian of ``sigma_bins`` bins around each yaw (B,)."""
    centers = yaw_bin_centers(bins).to(yaw.device)
    diff = torch.remainder(yaw[:, None] - centers[None] + math.pi, 2 * math.pi) - math.pi
    weight = torch.exp(-0.5 * (diff / (sigma_bins * 2 * math.pi / bins)) ** 2)
    return weight / weight.sum(dim=1, keepdim=True)


def yaw_peaks(logits: torch.Tensor, count: int = 2, min_separation: float = math.radians(45)) -> list[tuple[float, float]]:
    """Up to ``count`` (yaw radians, probability mass) peaks of one (bins,) yaw distribution,
    each refined to the circular mean of its bin and neighbours, at least ``min_separation``
    apart."""
    probs = torch.softmax(logits.float(), dim=0)
    bins = probs.numel()
    centers = yaw_bin_centers(bins)
    order = torch.argsort(probs, descending=True).tolist()
    peaks: list[tuple[float, float]] = []
    for k in order:
        yaw_k = float(centers[k])
        if any(abs(math.remainder(yaw_k - y, 2 * math.pi)) < min_separation for y, _ in peaks):
            continue
        idx = [(k + d) % bins for d in (-1, 0, 1)]
        p = probs[idx]
        ang = centers[idx]
        mean = math.atan2(float((p * torch.sin(ang)).sum()), float((p * torch.cos(ang)).sum()))
        peaks.append((mean, float(p.sum())))
        if len(peaks) == count:
            break
    return peaks
