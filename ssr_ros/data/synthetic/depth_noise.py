"""Depth-sensor noise: depth-dependent error, dropouts at grazing angles and edges, range limits.

The axial noise follows the structured-light model of Nguyen et al. (2012),
``sigma(z) = a + b * (z - 0.4)^2`` metres; pixels seen at grazing angles drop out with a
probability that rises as the cosine of incidence falls below ``grazing_cos``; pixels on
depth discontinuities drop out with ``edge_dropout``; a few random pixels drop out; depth
outside ``[min_range, max_range]`` is invalid (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config


@dataclass
class DepthNoiseConfig:
    """Parameters of the depth-sensor model."""

    enabled: bool = param(True, "apply the depth-sensor model (False: exact rendered depth)")
    sigma_base: float = param(0.0012, "axial noise at 0.4 m, metres", low=0.0, high=0.1)
    sigma_quadratic: float = param(0.0019, "growth of the axial noise with (z - 0.4 m)^2, metres per m^2", low=0.0, high=0.1)
    min_range: float = param(0.2, "closest valid depth, metres", low=0.0, high=10.0)
    max_range: float = param(5.0, "farthest valid depth, metres", low=0.1, high=100.0)
    grazing_cos: float = param(0.25, "below this cosine of incidence pixels start to drop out", low=0.0, high=1.0)
    edge_threshold: float = param(0.08, "depth jump to a neighbour pixel that counts as an edge, metres", low=0.0, high=10.0)
    edge_dropout: float = param(0.6, "probability that an edge pixel drops out", low=0.0, high=1.0)
    random_dropout: float = param(0.003, "probability that any pixel drops out", low=0.0, high=1.0)

    def validate(self) -> "DepthNoiseConfig":
        return validate_config(self)


def apply_depth_noise(depth: np.ndarray, cos_incidence: np.ndarray, config: DepthNoiseConfig, rng: np.random.Generator) -> np.ndarray:
    """Noisy copy of an exact depth image.

    depth: (H, W) float32 metres, 0 = no surface; cos_incidence: (H, W) cosine between the
    viewing ray and the surface normal. Returns (H, W) float32 metres, 0 = invalid.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if not config.enabled:
        return depth.copy()
    valid = depth > 0
    sigma = config.sigma_base + config.sigma_quadratic * (depth - 0.4) ** 2
    noisy = depth + rng.standard_normal(depth.shape).astype(np.float32) * sigma.astype(np.float32)
    drop = ~valid | (noisy < config.min_range) | (noisy > config.max_range)
    if config.grazing_cos > 0:
        p = np.clip((config.grazing_cos - cos_incidence) / config.grazing_cos, 0, 1)
        drop |= rng.random(depth.shape) < p
    if config.edge_dropout > 0:
        padded = np.pad(depth, 1, mode="edge")
        jump = np.zeros(depth.shape, dtype=bool)
        for dv, du in ((0, 1), (2, 1), (1, 0), (1, 2)):
            neighbour = padded[dv : dv + depth.shape[0], du : du + depth.shape[1]]
            jump |= np.abs(neighbour - depth) > config.edge_threshold
        drop |= jump & (rng.random(depth.shape) < config.edge_dropout)
    if config.random_dropout > 0:
        drop |= rng.random(depth.shape) < config.random_dropout
    return np.where(drop, 0.0, noisy).astype(np.float32)
