"""Loss terms of self-supervised completion training (S4R / SSR-2D).

2D terms compare renderings of the predicted chunk with recorded or pseudo-labelled images
and are averaged over a pixel mask (pixels where the prediction has a surface *and* the
target is valid); the 3D term compares the predicted TSDF with a more complete fused TSDF
where that one is known. Every function returns a scalar tensor that is 0 (with a graph)
when its mask is empty, so a batch with nothing to compare still back-propagates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (broadcast to values' leading dims); 0 if empty."""
    mask = mask.to(values.dtype)
    while mask.ndim < values.ndim:
        mask = mask[..., None]
    weight = mask.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def depth_l1(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |rendered - target| z-depth, metres. All (..., H, W); mask bool."""
    return masked_mean((rendered - target).abs(), mask)


def color_l1(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-channel |rendered - target| of (..., H, W, 3) RGB in [0, 1]; mask (..., H, W)."""
    return masked_mean((rendered - target).abs(), mask)


def semantic_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, ignore_index: int = 0
) -> torch.Tensor:
    """Cross-entropy of rendered logits (..., H, W, N) against integer labels (..., H, W).

    Pixels labelled ``ignore_index`` (class 0, unknown) and pixels outside ``mask`` do not count.
    """
    n = logits.shape[-1]
    flat_logits = logits.reshape(-1, n)
    flat_labels = labels.reshape(-1).long()
    keep = mask.reshape(-1) & (flat_labels != ignore_index)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(flat_logits[keep], flat_labels[keep])


def soft_semantic_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against per-pixel class distributions (..., H, W, N) (e.g. a segmenter's softmax)."""
    log_probs = F.log_softmax(logits, dim=-1)
    return masked_mean(-(target_probs * log_probs).sum(-1), mask)


def tsdf_l1_3d(prediction: torch.Tensor, target: torch.Tensor, known: torch.Tensor, truncation: float) -> torch.Tensor:
    """Mean |prediction - target| / truncation over voxels where the target TSDF is known.

    prediction, target: (..., X, Y, Z) metres; known: bool of the same shape.
    """
    return masked_mean((prediction - target).abs() / truncation, known)


def surface_point_l1(tsdf_at_points: torch.Tensor, mask: torch.Tensor, truncation: float) -> torch.Tensor:
    """Mean |tsdf| / truncation at back-projected observed surface points (they lie on the surface).

    Gives the network a signal to create surface where a recorded frame saw one but the
    prediction has none, which the depth term (only defined where a surface was rendered)
    cannot.
    """
    return masked_mean(tsdf_at_points.abs() / truncation, mask)


def surface_mask_3d(tsdf: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Voxels of predicted geometry, ``tsdf < epsilon`` (metres) as in S4R."""
    return tsdf < epsilon
