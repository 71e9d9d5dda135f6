"""Which of the network's predictions reach the map: the write-back gate.

A completion network predicts every voxel of a chunk, including space where it has nothing
to go on: behind walls, under the floor, above the ceiling, or space the camera looked
through. The gate keeps a predicted *surface* voxel (TSDF <= half a voxel) only when

- it is unknown to the map: not observed by fusion and not seen free along a camera ray;
- its calibrated confidence reaches ``min_confidence``: the probability that it lies on a real
  surface, from a logistic model over its gate features (:data:`SURFACE_FEATURES`: how far
  inside the predicted TSDF puts it, its distance to observed surface, its enclosure, and how
  much predicted surface, observed surface and known free space lie around it), fitted on
  held-out rooms by ``ssr calibrate-completion``;
- it lies within ``max_distance`` of an observed surface (completion extends what was seen);
- it is *enclosed* by space the cameras saw free: along at least ``min_enclosure`` of the six
  axis directions, observed free or seen-free space (grown by one voxel, so that surfaces
  bordering it count) lies within ``enclosure_radius``. Space behind a wall, inside it, under
  the floor or above the ceiling has such space on one side only; a floor under a table or a
  wall behind a cupboard has it on five or six;
- it continues a surface: at least ``min_support`` of its 26 neighbours are observed surface or
  predicted surface that passed the tests above (a lone voxel meshes as a blob).

Around a kept surface voxel its unknown neighbours are written too (so the kept surface can
be meshed against them), but a free value only close to space known to be free: the surface
then forms on the side the cameras look from, never as the back face of a wall or an object,
whose free side lies in space nobody saw (and never right behind an observed surface, nor
farther from the known free space than a kept surface next to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssr_ros.completion.contract import Calibration
from ssr_ros.map.chunk import seen_free_space


FREE_REACH = 2
"""Voxels from known free space within which a predicted free value may be written."""

SURFACE_FEATURES = ("depth_inside", "distance_observed", "enclosure", "predicted_around", "observed_around", "free_around",
                    "tsdf_spread")
"""Per predicted surface voxel, what the calibrated surface confidence may use:
depth_inside = -tsdf / truncation; distance_observed = Chebyshev voxels to the nearest observed
surface voxel (capped one beyond ``max_distance``); enclosure = directions enclosed (0-6);
predicted_around = fraction of the 3^3 neighbourhood that is predicted surface; observed_around
= fraction of the 5^3 neighbourhood that is observed surface; free_around = fraction of the 5^3
neighbourhood known to be free; tsdf_spread = how much the network's symmetric copies disagreed
on the voxel's TSDF (standard deviation in truncations, 0 with one copy)."""


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the gate, in metres and probabilities (from ``CompletionConfig``)."""

    min_confidence: float
    max_distance: float
    min_enclosure: int
    enclosure_radius: float
    min_support: int = 0


@dataclass
class GateResult:
    """keep: (X, Y, Z) bool voxels to write; probability: (X, Y, Z) P(occupied);
    surface: (X, Y, Z) bool predicted surface in unknown space before gating; enclosure:
    (X, Y, Z) int directions; kept_surface: (X, Y, Z) bool surface voxels that passed;
    surface_confidence: (X, Y, Z) calibrated probability that a surface voxel is right (the
    one compared with ``min_confidence``); features: SURFACE_FEATURES name -> (X, Y, Z)."""

    keep: torch.Tensor
    probability: torch.Tensor
    surface: torch.Tensor
    enclosure: torch.Tensor
    kept_surface: torch.Tensor
    surface_confidence: torch.Tensor
    features: dict


def known_ahead(mask: torch.Tensor, axis: int, reach: int) -> torch.Tensor:
    """(X, Y, Z) bool: ``mask`` holds somewhere in the next ``reach`` voxels along +``axis``."""
    n = mask.shape[axis]
    counts = torch.cumsum(mask.to(torch.int32), dim=axis)
    ahead_index = torch.clamp(torch.arange(n, device=mask.device) + reach, max=n - 1)
    shape = [1, 1, 1]
    shape[axis] = n
    ahead = torch.take_along_dim(counts, ahead_index.view(shape).expand_as(counts), dim=axis)
    return (ahead - counts) > 0


def enclosure_count(known: torch.Tensor, reach: int) -> torch.Tensor:
    """(X, Y, Z) int: of the six axis directions, how many reach ``known`` within ``reach`` voxels."""
    total = torch.zeros(known.shape, dtype=torch.int32, device=known.device)
    for axis in range(3):
        total += known_ahead(known, axis, reach).to(torch.int32)
        total += known_ahead(known.flip(axis), axis, reach).flip(axis).to(torch.int32)
    return total


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(X, Y, Z) bool: voxels within Chebyshev distance ``radius`` of ``mask`` (separable max pooling)."""
    if radius <= 0:
        return mask
    x = mask[None, None].to(torch.float32)
    k = 2 * radius + 1
    x = F.max_pool3d(x, (k, 1, 1), stride=1, padding=(radius, 0, 0))
    x = F.max_pool3d(x, (1, k, 1), stride=1, padding=(0, radius, 0))
    x = F.max_pool3d(x, (1, 1, k), stride=1, padding=(0, 0, radius))
    return x[0, 0] > 0.5


def neighbourhood_fraction(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(X, Y, Z) float: fraction of the (2 radius + 1)^3 cube around each voxel where ``mask`` holds
    (outside the region counts as not holding)."""
    k = 2 * radius + 1
    x = F.avg_pool3d(mask[None, None].to(torch.float32), k, stride=1, padding=radius, count_include_pad=True)
    return x[0, 0]


def chebyshev_distance(mask: torch.Tensor, cap: int) -> torch.Tensor:
    """(X, Y, Z) float: Chebyshev distance in voxels to the nearest ``mask`` voxel, at most ``cap``."""
    distance = torch.full(mask.shape, float(cap), device=mask.device)
    for radius in range(cap - 1, -1, -1):
        distance = torch.where(dilate(mask, radius), torch.full_like(distance, float(radius)), distance)
    return distance


def surface_features(filled: torch.Tensor, surface: torch.Tensor, observed_surface: torch.Tensor,
                     known_free: torch.Tensor, enclosure: torch.Tensor, model_truncation: float,
                     near_reach: int, tsdf_spread: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The per-voxel features of :data:`SURFACE_FEATURES` ((X, Y, Z) float32 each)."""
    return {
        "depth_inside": -filled / model_truncation,
        "distance_observed": chebyshev_distance(observed_surface, near_reach + 1),
        "enclosure": enclosure.to(torch.float32),
        "predicted_around": neighbourhood_fraction(surface, 1),
        "observed_around": neighbourhood_fraction(observed_surface, 2),
        "free_around": neighbourhood_fraction(known_free, 2),
        "tsdf_spread": (torch.zeros_like(filled) if tsdf_spread is None
                        else torch.nan_to_num(tsdf_spread.to(torch.float32), nan=0.0)),
    }


def gate(
    tsdf: torch.Tensor,
    observed: torch.Tensor,
    observed_tsdf: torch.Tensor,
    free: torch.Tensor,
    voxel_size: float,
    model_truncation: float,
    calibration: Calibration,
    settings: GateSettings,
    with_features: bool = False,
    tsdf_spread: torch.Tensor | None = None,
) -> GateResult:
    """Decide which predicted voxels of a region to write (see the module docstring).

    tsdf: (X, Y, Z) predicted TSDF, metres (NaN = no prediction); observed: fused voxels;
    observed_tsdf: their fused TSDF, metres; free: voxels seen free along camera rays;
    tsdf_spread: the disagreement of the network's symmetric copies (zeros when None).
    The surface features are computed when the calibration uses them or ``with_features``.
    """
    valid = torch.isfinite(tsdf)
    filled = torch.where(valid, tsdf, torch.full_like(tsdf, model_truncation))
    probability = calibration.occupancy_probability(filled, model_truncation) * valid
    known = observed | free
    unknown = valid & ~known
    # The map's rule for a voxel the surface passes through (``voxel_export``): deeper inside
    # there is nothing to mesh, and a wrongly closed volume would show its faces.
    surface = unknown & (filled <= 0.5 * voxel_size) & (filled > -voxel_size)
    observed_surface = observed & (observed_tsdf.abs() < voxel_size)
    near_reach = max(0, int(round(settings.max_distance / voxel_size)))
    reach = max(1, int(round(settings.enclosure_radius / voxel_size)))
    # Enclosed by space seen free (grown by a voxel so that surfaces bordering it count): the
    # inside of an observed wall band, or anything behind it, is not.
    known_free = seen_free_space(observed, observed_tsdf, free, 0.5 * voxel_size)
    enclosure = enclosure_count(dilate(known_free, 1), reach)
    features: dict[str, torch.Tensor] = {}
    surface_confidence = probability
    if calibration.surface_features or with_features:
        features = surface_features(filled, surface, observed_surface, known_free, enclosure, model_truncation,
                                    near_reach, tsdf_spread)
        near = features["distance_observed"] <= near_reach  # the same as dilating by near_reach
    else:
        near = dilate(observed_surface, near_reach)
    if calibration.surface_features:
        surface_confidence = calibration.surface_probability(features) * valid
    kept_surface = (surface & (surface_confidence >= settings.min_confidence) & near
                    & (enclosure >= settings.min_enclosure))
    if settings.min_support > 0:
        neighbours = neighbourhood_fraction(kept_surface | observed_surface, 1) * 27 - kept_surface.to(torch.float32)
        kept_surface = kept_surface & (neighbours >= settings.min_support - 0.5)
    # A predicted free value is written only within FREE_REACH voxels of space known to be free,
    # so a kept surface is meshed on the side the cameras look from, never as the back face of
    # a wall or an object (whose free side would lie in space nobody saw).
    # Nor behind a kept surface: a free value further from the known free space than a kept
    # surface voxel next to it would close that surface from behind (a back face under a floor,
    # beyond a wall).
    free_distance = chebyshev_distance(known_free, FREE_REACH + 1)
    surface_distance = torch.where(kept_surface, free_distance, torch.full_like(free_distance, float(FREE_REACH + 2)))
    nearest_surface_distance = -F.max_pool3d(-surface_distance[None, None], 3, stride=1, padding=1)[0, 0]
    free_side = ((free_distance <= FREE_REACH) & (free_distance <= nearest_surface_distance)
                 & ~dilate(observed & (observed_tsdf < 0), 1))
    inside = unknown & (filled <= -voxel_size)
    around_kept = unknown & dilate(kept_surface, 1) & (surface | inside | free_side)
    return GateResult(kept_surface | around_kept, probability, surface, enclosure, kept_surface,
                      surface_confidence, features)
