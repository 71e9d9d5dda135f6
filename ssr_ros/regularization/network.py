"""The learned semantic regulariser: data-cost encoder, unrolled multi-scale primal-dual, decoder.

Input ``(B, L + 2, *grid)`` (see :func:`ssr_ros.regularization.data_cost.network_input`),
output per-label logits ``(B, L, *grid)`` (softmax = label probabilities, label 0 = free
space). Grids whose sides are not multiples of ``2^(scales - 1)`` are padded (replicate) and
cropped back. Works on 3D volumes (``dims: 3``, the map) and 2D images (``dims: 2``, the
synthetic check).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssr_ros.config import param, validate_config
from ssr_ros.regularization.context import ClassContext
from ssr_ros.regularization.primal_dual import MultiScalePrimalDual, avg_pool2, channels_last


@dataclass
class RegularizerNetworkConfig:
    """Shape of the learned regulariser."""

    iterations: int = param(10, "unrolled primal-dual iterations T", low=0, high=1000)
    scales: int = param(3, "scale levels S (each half the resolution of the previous)", low=1, high=6)
    hidden: int = param(8, "channels inside the encoder's and decoder's residual units", low=1, high=256)
    dims: int = param(3, "spatial dimensions: 3 (voxel chunks) or 2 (images)", choices=[2, 3])
    data_skip: bool = param(
        True, "add -gamma x the input data cost to the logits (learned gamma, 1 at the start): the output "
        "starts at the fused evidence's labelling, and labels the unrolled layers leave tied are decided by it",
    )
    context_levels: int = param(
        0, "levels of the class context (ssr_ros.regularization.context; 0 = none): the classes observed up to "
        "2^levels voxels away re-rank the class logits of voxels without class evidence of their own", low=0, high=8,
    )

    def validate(self) -> "RegularizerNetworkConfig":
        return validate_config(self)

    @property
    def size_multiple(self) -> int:
        """Grid sides must be multiples of this: 2^(scales-1) for the scales, 2^context_levels for
        the class context."""
        return 2 ** max(self.scales - 1, self.context_levels)


class ResidualUnit(nn.Module):
    """``skip(x) + conv(relu(conv(relu(conv(x)))))`` with 3^d kernels; skip = the first
    ``out_channels`` channels of x."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, d: int) -> None:
        super().__init__()
        conv = nn.Conv3d if d == 3 else nn.Conv2d
        self.out_channels = out_channels
        self.body = nn.Sequential(
            conv(in_channels, hidden, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True),
            conv(hidden, hidden, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True),
            conv(hidden, out_channels, 3, padding=1, padding_mode="replicate"),
        )
        with torch.no_grad():  # starts close to the identity on the skip path
            self.body[-1].weight.mul_(0.1)
            self.body[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.out_channels] + self.body(x)


class LearnedRegularizer(nn.Module):
    """Encoder (one residual unit per scale, average pooling between scales) -> unrolled
    multi-scale primal-dual -> decoder (residual unit, logits) -> class context re-ranking
    (when ``context_levels``)."""

    def __init__(self, num_labels: int, config: RegularizerNetworkConfig | None = None) -> None:
        super().__init__()
        self.config = (config or RegularizerNetworkConfig()).validate()
        c, d = self.config, self.config.dims
        self.num_labels = num_labels
        self.in_channels = num_labels + 2
        self.encoders = nn.ModuleList(
            [ResidualUnit(self.in_channels, num_labels, c.hidden, d)]
            + [ResidualUnit(num_labels, num_labels, c.hidden, d) for _ in range(c.scales - 1)]
        )
        self.primal_dual = MultiScalePrimalDual(num_labels, c.scales, c.iterations, d)
        self.decoder = ResidualUnit(num_labels, num_labels, c.hidden, d)
        self.contrast = nn.Parameter(torch.tensor(4.0))  # logits = contrast * decoded indicators
        if c.data_skip:  # logits -= gamma * data cost
            self.data_gamma = nn.Parameter(torch.tensor(1.0))
        if c.context_levels:
            self.context = ClassContext(c.context_levels, d)

    @property
    def size_multiple(self) -> int:
        return self.config.size_multiple

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Per-scale data costs ``[(B, L, *grid / 2^s)]``."""
        costs = [self.encoders[0](channels_last(features))]
        for s in range(1, self.config.scales):
            costs.append(self.encoders[s](channels_last(avg_pool2(costs[-1], self.config.dims))))
        return costs

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, L + 2, *grid) -> logits (B, L, *grid)."""
        d = self.config.dims
        if features.dim() != d + 2 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"features must be (B, {self.in_channels}, {'X, Y, Z' if d == 3 else 'H, W'}), got {tuple(features.shape)}"
            )
        grid = features.shape[2:]
        m = self.size_multiple
        pad = [(-n) % m for n in grid]
        if any(pad):
            spec = []
            for p in reversed(pad):
                spec += [0, p]
            features = F.pad(features, spec, mode="replicate")
        inplace = not torch.is_grad_enabled()
        cost = features[:, : self.num_labels]  # (the class context runs fastest on the standard layout)
        if inplace:  # one channels-last copy, used by the encoder and the data-cost skip
            features = channels_last(features)
        u = self.primal_dual(self.encode(features))
        if inplace:  # same arithmetic on the decoder's fresh output
            logits = self.decoder(u).mul_(self.contrast)
            if self.config.data_skip:
                logits.sub_(features[:, : self.num_labels] * self.data_gamma)
        else:
            logits = self.contrast * self.decoder(u)
            if self.config.data_skip:
                logits = logits - self.data_gamma * cost
        if self.config.context_levels:
            logits = self.context.rerank(logits, cost, inplace=inplace)
        if any(pad):
            logits = logits[(slice(None), slice(None)) + tuple(slice(0, n) for n in grid)]
        return logits
