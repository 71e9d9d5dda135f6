"""Multi-view plane-sweep refinement of a predicted depth image (known poses, no training).

CDRNet and NeuralRecon get depth from several posed key frames by warping one image into
another over a sweep of depth hypotheses (homographies of fronto-parallel planes) and keeping
the hypothesis where the images agree. This is the light, learning-free form of that step: for
each pixel of the new key frame the hypotheses lie around the network's depth, spread by its
predicted uncertainty (log-spaced over +-``span``); the gray images of the last few key frames
are sampled at each hypothesis's reprojection and compared by zero-mean normalised
cross-correlation (ZNCC) over a small window, averaged over the frames that see the point. Where the best hypothesis is clearly good
(ZNCC >= ``min_zncc``, enough texture, not at the edge of the sweep) it replaces the prediction
and its uncertainty shrinks to the sweep's resolution; elsewhere (texture-less walls,
occlusions, no parallax) the network's depth stands there, with one correction: the network's
depth of a single image is right in shape more than in scale, and its scale drifts from frame to
frame (10 % and more within one room), so where enough pixels matched, the median ratio of their
swept depth to the network's (:func:`match_scale`) rescales the pixels that did not match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.geometry.camera import CameraIntrinsics


@dataclass
class StereoView:
    """A key frame kept for the next one: gray (h, w) float32 tensor in [0, 1] at the sweep's size,
    its intrinsics at that size, T_world_cam (4, 4) float64."""

    gray: torch.Tensor
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray


def sweep_size(intrinsics: CameraIntrinsics, max_width: int) -> tuple[CameraIntrinsics, int]:
    """Intrinsics of the image shrunk by the smallest integer factor that makes it at most
    ``max_width`` wide (:meth:`CameraIntrinsics.scaled`), and that factor."""
    factor = max(1, -(-intrinsics.width // max_width))
    return (intrinsics.scaled(1.0 / factor) if factor > 1 else intrinsics), factor


def gray_image(rgb: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (height, width) float32 luminance in [0, 1], area-averaged."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    g = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    if tuple(g.shape[-2:]) != (height, width):
        g = F.interpolate(g, size=(height, width), mode="area")
    return g[0, 0]


def _window_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    return F.avg_pool2d(x, window, stride=1, padding=window // 2, count_include_pad=False)


def _zncc(reference: StereoView, source: StereoView, hypotheses: torch.Tensor, rays: torch.Tensor,
          window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, h, w) window ZNCC of the reference against the source warped by each depth hypothesis,
    and (P, h, w) whether the hypothesis projects into the source image."""
    planes = hypotheses.shape[0]
    T = torch.from_numpy(np.linalg.inv(source.T_world_cam) @ reference.T_world_cam).float()
    R, t = T[:3, :3], T[:3, 3]
    Rr = torch.einsum("ij,jhw->ihw", R, rays)  # rotated rays
    points = hypotheses[:, None] * Rr[None] + t[None, :, None, None]  # (P, 3, h, w) in the source camera
    z = points[:, 2]
    Ks = source.intrinsics
    front = (z > 1e-3)[:, None]
    us, vs = Ks.project_xy(torch.where(front, points, torch.ones_like(points)).movedim(1, -1))
    inside = (z > 1e-3) & (us >= 0) & (us <= Ks.width - 1) & (vs >= 0) & (vs <= Ks.height - 1)
    grid = torch.stack([2 * us / (Ks.width - 1) - 1, 2 * vs / (Ks.height - 1) - 1], dim=-1)
    warped = F.grid_sample(source.gray[None, None].expand(planes, 1, -1, -1), grid, mode="bilinear",
                           padding_mode="border", align_corners=True)  # (P, 1, h, w)
    ref = reference.gray[None, None]
    mean_r, mean_w = _window_mean(ref, window), _window_mean(warped, window)
    var_r = (_window_mean(ref * ref, window) - mean_r**2).clamp_min(0)
    var_w = (_window_mean(warped * warped, window) - mean_w**2).clamp_min(0)
    cov = _window_mean(ref * warped, window) - mean_r * mean_w
    return (cov / torch.sqrt(var_r * var_w + 1e-8))[:, 0], inside


def plane_sweep(reference: StereoView, source: StereoView | list[StereoView], depth: torch.Tensor, sigma: torch.Tensor,
                planes: int = 24, min_span: float = 0.05, max_span: float = 0.6, window: int = 5,
                min_zncc: float = 0.8, min_texture: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine ``depth`` (h, w) metres of ``reference`` against one or more earlier key frames;
    returns (depth, sigma), both (h, w), changed only where the sweep found a clear match (see the
    module docstring). With several sources a hypothesis scores the mean ZNCC over the sources
    it projects into.

    sigma: (h, w) relative uncertainty of ``depth``; the sweep covers depth * exp(+-span) with
    span = clamp(3 sigma, min_span, max_span).
    """
    sources = source if isinstance(source, list) else [source]
    K = reference.intrinsics
    h, w = K.height, K.width
    span = (3.0 * sigma).clamp(min_span, max_span)
    steps = torch.linspace(-1.0, 1.0, planes)
    hypotheses = depth[None] * torch.exp(steps[:, None, None] * span[None])  # (P, h, w)
    rays = K.pixel_rays().permute(2, 0, 1)  # (3, h, w), z = 1
    total = torch.zeros(planes, h, w)
    count = torch.zeros(planes, h, w)
    for view in sources:
        zncc, inside = _zncc(reference, view, hypotheses, rays, window)
        total += torch.where(inside, zncc, torch.zeros_like(zncc))
        count += inside.float()
    score = torch.where(count > 0, total / count.clamp_min(1.0), torch.full_like(total, -2.0))
    best, k = score.max(dim=0)
    # sub-plane position from a parabola through the best and its neighbours
    k0, k1 = (k - 1).clamp(0, planes - 1), (k + 1).clamp(0, planes - 1)
    c0, c1 = score.gather(0, k0[None])[0], score.gather(0, k1[None])[0]
    curvature = c0 - 2 * best + c1
    offset = torch.where(curvature < -1e-6, 0.5 * (c0 - c1) / curvature, torch.zeros_like(best)).clamp(-0.5, 0.5)
    step = 2.0 / (planes - 1)
    s = steps[k] + offset * step
    ref = reference.gray[None, None]
    texture = torch.sqrt((_window_mean(ref * ref, window) - _window_mean(ref, window) ** 2).clamp_min(0))[0, 0]
    good = (best >= min_zncc) & (texture >= min_texture) & (k > 0) & (k < planes - 1)
    refined = torch.where(good, depth * torch.exp(s * span), depth)
    new_sigma = torch.where(good, torch.minimum(sigma, span * step), sigma)
    return refined, new_sigma


MAX_SCALE_CHANGE = 4.0 / 3.0
"""The most :func:`match_scale` rescales a key frame's depth, either way."""
MIN_SCALE_MATCHES = 50
"""Matched pixels :func:`match_scale` needs at least, whatever the image size."""


def match_scale(depth: torch.Tensor, refined: torch.Tensor, matched: torch.Tensor, min_fraction: float) -> float | None:
    """The median ratio ``refined / depth`` over the ``matched`` pixels (those the sweep moved onto a
    clear match), limited to ``MAX_SCALE_CHANGE`` either way; None where ``min_fraction`` is 0 or fewer
    pixels matched than ``min_fraction`` of them or than ``MIN_SCALE_MATCHES``."""
    count = int(matched.sum())
    if min_fraction <= 0 or count < max(MIN_SCALE_MATCHES, min_fraction * matched.numel()):
        return None
    ratio = float(torch.median(refined[matched] / depth[matched]))
    return min(max(ratio, 1.0 / MAX_SCALE_CHANGE), MAX_SCALE_CHANGE)
