"""Color frame -> predicted depth, per-pixel fusion weight and class probabilities.

:class:`MonoPredictor` runs the monocular network on an (H, W, 3) uint8 image: it resizes the
image to the network's working size, predicts, rescales the depth to the camera's focal ratio
and resizes everything back to (H, W). The Laplace scale b of log depth gives the relative
uncertainty ``sigma = sqrt(2) * b`` (the standard deviation of log depth, about the relative
depth error); a pixel fuses with weight ``1 / (1 + (sigma / sigma_ref)^2)`` and pixels with
``sigma > max_relative_uncertainty`` are dropped (depth 0). Semantics come back as each pixel's
most likely class and its probability (computed at the network's size, resized by nearest
pixel: cheap at any camera size), which the map fuses as label votes weighted by confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput, MapFileError
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.mono.data import depth_scale
from ssr_ros.package_files import SOURCE_ROOT, find_package_file

DEFAULT_MONO_WEIGHTS = "mono_small.pt"
INPUT_MODES = ("rgbd", "rgb")


def default_mono_weights() -> Path:
    """The packaged monocular weights (source checkout, else the ROS share directory)."""
    return find_package_file("models", DEFAULT_MONO_WEIGHTS) or SOURCE_ROOT / "models" / DEFAULT_MONO_WEIGHTS


@dataclass
class MonoConfig:
    """Monocular input (``input_mode: rgb``): depth and semantics predicted from color."""

    weights: str = param("", "monocular weights file (ssr train-mono); empty = the packaged models/mono_small.pt")
    device: str = param("auto", "'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:N'")
    max_relative_uncertainty: float = param(
        0.3, "pixels whose predicted relative depth uncertainty exceeds this are not fused", low=0.001, high=10.0)
    reference_uncertainty: float = param(
        0.05, "relative uncertainty at which a pixel fuses with half weight", low=0.001, high=10.0)
    min_depth: float = param(0.2, "predicted depth below this is not fused, metres", low=0.0, high=100.0)
    max_depth: float = param(5.0, "predicted depth beyond this is not fused, metres", low=0.01, high=1000.0)
    flip_average: bool = param(
        True, "predict each key frame and its mirror image (one batch of two) and average the two (log depth, "
        "uncertainty and class scores; the network was trained on mirrored images too)")
    semantics: bool = param(True, "feed the predicted class (its probability as the vote's confidence) to the semantic fusion "
                            "(unless the frame already has 2D semantics)")
    key_frame_rotation_deg: float = param(15.0, "a frame is predicted and fused when the camera turned this much "
                                          "since the last key frame, degrees (0 and 0: every frame)", low=0.0, high=180.0)
    key_frame_translation_m: float = param(0.1, "... or moved this far, metres", low=0.0, high=100.0)
    stereo: bool = param(True, "refine each key frame's predicted depth by a plane sweep against the previous key "
                         "frames (textured surfaces seen from several places)")
    stereo_planes: int = param(32, "depth hypotheses of the plane sweep", low=3, high=256)
    stereo_sources: int = param(4, "earlier key frames the sweep compares with", low=1, high=16)
    stereo_min_baseline_m: float = param(0.05, "no sweep when the two key frames are closer than this, metres",
                                         low=0.0, high=100.0)
    stereo_min_zncc: float = param(0.8, "a sweep match replaces the prediction when its window correlation "
                                   "(ZNCC) reaches this", low=-1.0, high=1.0)
    stereo_max_width: int = param(160, "the sweep runs on images shrunk to at most this width, pixels", low=16, high=8192)
    stereo_scale_min_fraction: float = param(
        0.02, "where at least this fraction of a key frame's pixels found a clear sweep match, the others are "
        "rescaled by the median ratio of the matched depth to the network's (the network's scale drifts from frame "
        "to frame; at most 4/3 either way); 0: off", low=0.0, high=1.0)
    consistency_views: int = param(3, "earlier key frames each key frame's depth is checked against (multi-view "
                                   "consistency: a pixel fuses fully only where enough of them agree); 0: no check",
                                   low=0, high=64)
    consistency_min_views: int = param(1, "earlier key frames that must agree with a pixel's depth for it to fuse",
                                       low=1, high=64)
    consistency_tolerance: float = param(0.05, "a view agrees when the pixel's point lies within this relative depth "
                                         "difference of that view's depth", low=0.0, high=10.0)
    consistency_failed_weight: float = param(0.2, "fusion weight factor of pixels too few views agree with (0: not "
                                             "fused)", low=0.0, high=1.0)

    def validate(self) -> "MonoConfig":
        validate_config(self)
        if self.min_depth >= self.max_depth:
            raise ConfigError(f"mono.min_depth={self.min_depth} must be below mono.max_depth={self.max_depth}")
        if self.consistency_views and self.consistency_min_views > self.consistency_views:
            raise ConfigError(f"mono.consistency_min_views={self.consistency_min_views} exceeds "
                              f"mono.consistency_views={self.consistency_views}: no pixel could ever fuse")
        return self

    def weights_path(self) -> Path:
        return Path(self.weights) if self.weights else default_mono_weights()


def confidence_weights(depth: torch.Tensor, sigma: torch.Tensor, config: MonoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(depth with dropped pixels 0, fusion weight in [0, 1]) from depth (metres) and relative uncertainty."""
    keep = (sigma <= config.max_relative_uncertainty) & (depth >= config.min_depth) & (depth <= config.max_depth)
    weight = torch.where(keep, 1.0 / (1.0 + (sigma / config.reference_uncertainty) ** 2), torch.zeros_like(sigma))
    return torch.where(keep, depth, torch.zeros_like(depth)), weight


@dataclass
class MonoPrediction:
    """At the camera's size: depth (H, W) float32 metres (0 = dropped); weight (H, W) float32 in
    (0, 1] fusion weight (0 where dropped); sigma (H, W) float32 relative uncertainty;
    labels (H, W) int64 most likely class and label_confidence (H, W) float32 its probability, or
    None (semantics off); depth_unfiltered (H, W) float32 metres: the prediction
    before dropping (for scoring)."""

    depth: np.ndarray
    weight: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray | None
    label_confidence: np.ndarray | None
    depth_unfiltered: np.ndarray


class MonoPredictor:
    """``predictor(rgb, intrinsics) -> MonoPrediction`` (see the module docstring)."""

    def __init__(self, config: MonoConfig, num_classes: int | None = None) -> None:
        from ssr_ros.completion.weights import load_model
        from ssr_ros.devices import resolve_device
        from ssr_ros.mono.network import MonoDepthNet

        self.config = config.validate()
        self.device = resolve_device(config.device)
        path = config.weights_path()
        if not path.is_file():
            raise MapFileError(f"monocular weights '{path}' not found; train them with 'ssr train-mono CONFIG' or set "
                               "mono.weights")
        self.model = load_model(path, self.device, expected_type=MonoDepthNet)
        if num_classes is not None and self.model.config.num_classes != num_classes:
            raise ConfigError(f"monocular weights '{path}' predict {self.model.config.num_classes} classes but the "
                              f"map's taxonomy has {num_classes}; train them with this taxonomy")
        self.weights_path = path

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray, intrinsics: CameraIntrinsics, semantics: bool | None = None) -> MonoPrediction:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidInput(f"monocular input must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        H, W = rgb.shape[:2]
        if (H, W) != intrinsics.shape:
            raise InvalidInput(f"color is {W}x{H} but the intrinsics are {intrinsics.width}x{intrinsics.height}")
        net = self.model.config
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        if (H, W) != (net.input_height, net.input_width):
            x = F.interpolate(x, size=(net.input_height, net.input_width), mode="bilinear", antialias=True, align_corners=False)
        flip = self.config.flip_average
        output = self.model(torch.cat([x, x.flip(-1)]) if flip else x)
        maps = torch.stack([output.log_depth, output.log_scale], dim=1)
        logits = output.logits
        if flip:  # the mirror image's prediction mirrored back, averaged with the frame's own
            maps = 0.5 * (maps[:1] + maps[1:].flip(-1))
            logits = 0.5 * (logits[:1] + logits[1:].flip(-1))
        if (H, W) != tuple(maps.shape[-2:]):
            maps = F.interpolate(maps, size=(H, W), mode="bilinear", align_corners=False)
        depth = torch.exp(maps[0, 0]) * depth_scale(intrinsics, net.focal_ratio)
        sigma = math.sqrt(2.0) * torch.exp(maps[0, 1])
        cfg = self.config
        kept, weight = confidence_weights(depth, sigma, cfg)
        labels = confidence = None
        if cfg.semantics if semantics is None else semantics:
            best = torch.softmax(logits[0], dim=0).max(dim=0)
            votes = torch.stack([best.indices.float(), best.values])[None]
            if (H, W) != tuple(votes.shape[-2:]):
                votes = F.interpolate(votes, size=(H, W), mode="nearest")
            labels = votes[0, 0].to(torch.int64).cpu().numpy()
            confidence = votes[0, 1].cpu().numpy().astype(np.float32)
        return MonoPrediction(kept.cpu().numpy().astype(np.float32),
                              weight.cpu().numpy().astype(np.float32), sigma.cpu().numpy().astype(np.float32),
                              labels, confidence,
                              depth.cpu().numpy().astype(np.float32))
