"""The SSR 3D U-Net: geometry + color encoders, a fused latent, TSDF / color / semantic decoders.

Architecture (after S4R / SSR-2D, Huang et al.): two encoders of ``levels`` resolution
levels of residual blocks each, one for geometry (normalised TSDF + observed mask) and one
for appearance (RGB, optionally the fused per-class semantic evidence). Their coarsest
codes are concatenated and fused by a small bank of convolutions; three decoders (TSDF,
color, semantic logits) upsample that latent back to full resolution, each level receiving
the skip features of *both* encoders at that resolution. The depth-only variant
(``use_color=False``) drops the color encoder and the color decoder.

A chunk side must be a multiple of ``2 ** (levels - 1)`` (16 for the default 5 levels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput
from ssr_ros.map.chunk import DenseChunk


@dataclass
class SSRUNetConfig:
    """Shape of the SSR 3D U-Net. The CPU preset and the GPU preset differ only in numbers."""

    num_classes: int = param(21, "semantic classes predicted per voxel, id 0 = unknown included", low=2, high=1024)
    base_width: int = param(8, "feature channels at full resolution", low=1, high=256)
    max_width: int = param(64, "channel cap at the coarse levels", low=1, high=1024)
    levels: int = param(5, "resolution levels per encoder (levels-1 halvings)", low=1, high=7)
    blocks_per_level: int = param(1, "residual blocks per level in encoders and decoders", low=1, high=8)
    fusion_blocks: int = param(1, "residual blocks fusing the geometry and color codes", low=0, high=8)
    use_color: bool = param(True, "use the color encoder/decoder; False gives the depth-only variant")
    use_semantics_input: bool = param(False, "feed the fused per-class semantic evidence to the color encoder")
    norm_groups: int = param(4, "GroupNorm groups (1 = LayerNorm-like; channels not divisible use 1)", low=1, high=64)

    def validate(self) -> "SSRUNetConfig":
        validate_config(self)
        if self.use_semantics_input and not self.use_color:
            raise ConfigError("use_semantics_input=True needs use_color=True (semantics enter via the color encoder)")
        return self

    def widths(self) -> list[int]:
        """Channels per level, full resolution first."""
        return [min(self.base_width * 2**level, self.max_width) for level in range(self.levels)]

    @property
    def size_multiple(self) -> int:
        """Every chunk side must be a multiple of this."""
        return 2 ** (self.levels - 1)

    @property
    def geometry_channels(self) -> int:
        return 2

    @property
    def color_channels(self) -> int:
        if not self.use_color:
            return 0
        return 3 + (self.num_classes if self.use_semantics_input else 0)


PRESETS: dict[str, dict] = {
    # Runs a 32^3 chunk in well under a second on a laptop CPU; trainable on CPU.
    "small": dict(base_width=8, max_width=32, levels=5, blocks_per_level=1, fusion_blocks=1),
    # The GPU model: 64^3 chunks, wider and deeper.
    "large": dict(base_width=16, max_width=128, levels=5, blocks_per_level=2, fusion_blocks=2),
}


def preset_config(name: str, **overrides) -> SSRUNetConfig:
    """A named preset (``small`` for CPU, ``large`` for GPU) with optional field overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown network preset '{name}'; expected one of {sorted(PRESETS)}")
    return SSRUNetConfig(**{**PRESETS[name], **overrides}).validate()


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups if channels % groups == 0 else 1, channels)


class ResBlock3d(nn.Module):
    """Pre-activation residual block: (norm, LeakyReLU, conv3) x 2 plus identity."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(channels, groups), nn.LeakyReLU(0.2, inplace=False), nn.Conv3d(channels, channels, 3, padding=1),
            _norm(channels, groups), nn.LeakyReLU(0.2, inplace=False), nn.Conv3d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder3d(nn.Module):
    """``levels`` levels of residual blocks; returns the features of every level (fine first)."""

    def __init__(self, in_channels: int, widths: Sequence[int], blocks: int, groups: int) -> None:
        super().__init__()
        self.stem = nn.Conv3d(in_channels, widths[0], 3, padding=1)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level, width in enumerate(widths):
            self.levels.append(nn.Sequential(*[ResBlock3d(width, groups) for _ in range(blocks)]))
            if level + 1 < len(widths):
                self.downs.append(nn.Conv3d(width, widths[level + 1], 3, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stem(x)
        for level, blocks in enumerate(self.levels):
            x = blocks(x)
            features.append(x)
            if level < len(self.downs):
                x = self.downs[level](x)
        return features


class Decoder3d(nn.Module):
    """Upsamples the fused latent, concatenating the encoders' skips at every level."""

    def __init__(self, widths: Sequence[int], skip_factor: int, out_channels: int, blocks: int, groups: int) -> None:
        super().__init__()
        self.ups = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.levels = nn.ModuleList()
        # Coarsest level: merge latent with the coarsest skips.
        for level in reversed(range(len(widths))):
            width = widths[level]
            incoming = widths[level] if level == len(widths) - 1 else widths[level + 1]
            self.ups.append(
                nn.Identity() if level == len(widths) - 1
                else nn.ConvTranspose3d(incoming, width, 2, stride=2)
            )
            self.merges.append(nn.Conv3d(width * (1 + skip_factor), width, 1))
            self.levels.append(nn.Sequential(*[ResBlock3d(width, groups) for _ in range(blocks)]))
        self.head = nn.Sequential(_norm(widths[0], groups), nn.LeakyReLU(0.2), nn.Conv3d(widths[0], out_channels, 1))

    def forward(self, latent: torch.Tensor, skips: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        x = latent
        n = len(self.levels)
        for index in range(n):
            level = n - 1 - index
            x = self.ups[index](x)
            x = torch.cat([x, *[s[level] for s in skips]], dim=1)
            x = self.levels[index](self.merges[index](x))
        return self.head(x)


@dataclass
class CompletionOutput:
    """Per-voxel predictions for a batch of B chunks of size (X, Y, Z).

    tsdf: (B, X, Y, Z) metres in (-truncation, truncation).
    color: (B, 3, X, Y, Z) RGB in (0, 1), or None for the depth-only variant.
    semantic_logits: (B, N, X, Y, Z) unnormalised class scores.
    """

    tsdf: torch.Tensor
    color: torch.Tensor | None
    semantic_logits: torch.Tensor


class SSRUNet(nn.Module):
    """The dual-encoder, triple-decoder 3D U-Net.

    forward(geometry, color, truncation):
        geometry: (B, 2, X, Y, Z) float32: TSDF / truncation in [-1, 1], observed mask.
        color: (B, 3 [+ N], X, Y, Z) float32 or None: RGB in [0, 1] [+ class probabilities].
        truncation: metres, scales the tanh TSDF output.
    """

    MODEL_TYPE = "ssr_unet"
    """Its ``model_type`` in a weights file (:mod:`ssr_ros.completion.weights`)."""
    CONFIG_CLASS = SSRUNetConfig

    def __init__(self, config: SSRUNetConfig) -> None:
        super().__init__()
        self.config = config.validate()
        widths = config.widths()
        groups = config.norm_groups
        self.geometry_encoder = Encoder3d(config.geometry_channels, widths, config.blocks_per_level, groups)
        encoders = 1
        if config.use_color:
            self.color_encoder = Encoder3d(config.color_channels, widths, config.blocks_per_level, groups)
            encoders = 2
        else:
            self.color_encoder = None
        coarse = widths[-1]
        self.fusion = nn.Sequential(
            nn.Conv3d(coarse * encoders, coarse, 1),
            *[ResBlock3d(coarse, groups) for _ in range(config.fusion_blocks)],
        )
        self.tsdf_decoder = Decoder3d(widths, encoders, 1, config.blocks_per_level, groups)
        self.semantic_decoder = Decoder3d(widths, encoders, config.num_classes, config.blocks_per_level, groups)
        self.color_decoder = Decoder3d(widths, encoders, 3, config.blocks_per_level, groups) if config.use_color else None

    def check_shape(self, geometry: torch.Tensor, color: torch.Tensor | None) -> None:
        if geometry.ndim != 5 or geometry.shape[1] != self.config.geometry_channels:
            raise InvalidInput(f"geometry input must be (B, 2, X, Y, Z), got {tuple(geometry.shape)}")
        m = self.config.size_multiple
        if any(n % m for n in geometry.shape[2:]):
            raise InvalidInput(f"chunk size {tuple(geometry.shape[2:])} must be a multiple of {m} on every axis")
        if self.config.use_color:
            expected = (geometry.shape[0], self.config.color_channels, *geometry.shape[2:])
            if color is None or tuple(color.shape) != expected:
                got = None if color is None else tuple(color.shape)
                raise InvalidInput(f"color input must have shape {expected}, got {got}")

    def forward(self, geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> CompletionOutput:
        self.check_shape(geometry, color)
        geometry_features = self.geometry_encoder(geometry)
        skips = [geometry_features]
        codes = [geometry_features[-1]]
        if self.color_encoder is not None:
            color_features = self.color_encoder(color)
            skips.append(color_features)
            codes.append(color_features[-1])
        latent = self.fusion(torch.cat(codes, dim=1))
        # The TSDF head predicts a residual on top of the (clipped) input TSDF, so an
        # untrained network already reproduces the observed surfaces.
        tsdf_raw = self.tsdf_decoder(latent, skips)[:, 0]
        tsdf = torch.tanh(tsdf_raw + _residual_base(geometry[:, 0], geometry[:, 1])) * truncation
        semantic_logits = self.semantic_decoder(latent, skips)
        color_out = torch.sigmoid(self.color_decoder(latent, skips)) if self.color_decoder is not None else None
        return CompletionOutput(tsdf=tsdf, color=color_out, semantic_logits=semantic_logits)

    def predict_chunks(self, chunks: Sequence[DenseChunk]) -> CompletionOutput:
        """Run on map chunks (all of one size, same truncation); inputs built by :func:`chunk_inputs`."""
        geometry, color = chunk_inputs(chunks, self.config)
        return self(geometry, color, chunks[0].truncation)


UNKNOWN_PRIOR = 0.5
"""Normalised TSDF an untrained network predicts in unobserved voxels: free (above the
half-voxel occupancy level) but where tanh is still steep, so training moves it quickly."""


def _residual_base(normalised_tsdf: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Pre-tanh value the TSDF head adds its output to: the input where observed, else the prior."""
    observed_base = torch.atanh(normalised_tsdf.clamp(-0.95, 0.95))
    return torch.where(observed > 0.5, observed_base, torch.full_like(observed_base, math.atanh(UNKNOWN_PRIOR)))


def chunk_inputs(
    chunks: Sequence[DenseChunk],
    config: SSRUNetConfig,
    truncation: float | None = None,
    geometry_input: str = "known",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Network inputs of a batch of chunks.

    Returns geometry (B, 2, X, Y, Z): TSDF / ``truncation`` (the model's, metres; default the
    chunks' own) clipped to [-1, 1] (unknown = +1), and the geometry mask: ``'known'`` =
    observed or seen free (so the network tells observed surface, observed free space and
    unknown space apart), ``'observed'`` = fused voxels only (weights of format version 1);
    color (B, 3 [+ N], X, Y, Z): RGB [+ class probabilities] zeroed where unobserved, or None
    for the depth-only variant. On the chunks' device.
    """
    if not chunks:
        raise InvalidInput("chunk_inputs needs at least one chunk")
    sizes = {tuple(c.tsdf.shape) for c in chunks}
    if len(sizes) != 1:
        raise InvalidInput(f"all chunks of a batch must have one size, got {sorted(sizes)}")
    if geometry_input not in ("known", "observed"):
        raise InvalidInput(f"geometry_input {geometry_input!r}; expected 'known' or 'observed'")
    geometry = torch.stack(
        [
            torch.stack([
                (c.tsdf / (truncation or c.truncation)).clamp(-1.0, 1.0),
                (c.known() if geometry_input == "known" else c.observed).to(c.tsdf.dtype),
            ])
            for c in chunks
        ]
    )
    if not config.use_color:
        return geometry, None
    colors = []
    for c in chunks:
        mask = c.observed.to(c.color.dtype)[..., None]
        parts = [c.color * mask]
        if config.use_semantics_input:
            if c.semantics.shape[-1] != config.num_classes:
                raise InvalidInput(
                    f"chunk has {c.semantics.shape[-1]} semantic channels, the network expects {config.num_classes}"
                )
            parts.append(c.semantics * mask)
        colors.append(torch.cat(parts, dim=-1).permute(3, 0, 1, 2))
    return geometry, torch.stack(colors)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_ssr_unet(config: SSRUNetConfig) -> SSRUNet:
    return SSRUNet(config)


def build_none(config: object = None) -> None:
    """The ``none`` completion model: fusion only, nothing predicted."""
    return None


COMPLETION_MODELS = {"ssr_unet": build_ssr_unet, "none": build_none}
"""Registry of completion models by their config ``type:`` key."""


def build_completion_model(model_type: str, config: SSRUNetConfig | None = None) -> nn.Module | None:
    """Resolve a ``type:`` key (``ssr_unet`` / ``none``) to a model instance (None for ``none``)."""
    if model_type not in COMPLETION_MODELS:
        raise ConfigError(f"completion model type '{model_type}' is unknown; expected one of {sorted(COMPLETION_MODELS)}")
    return COMPLETION_MODELS[model_type](config if config is not None else SSRUNetConfig())
