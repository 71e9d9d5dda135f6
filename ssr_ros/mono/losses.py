"""Losses and depth metrics of the monocular network."""

from __future__ import annotations

import math

import torch

from ssr_ros.completion.segmenter import segmentation_loss
from ssr_ros.mono.network import MonoOutput


def laplace_nll(log_depth: torch.Tensor, log_scale: torch.Tensor, target_depth: torch.Tensor) -> torch.Tensor:
    """Mean Laplace negative log-likelihood of log depth over valid pixels (target > 0, finite).

    log_depth, log_scale: (B, H, W) predictions; target_depth: (B, H, W) metres, 0 = no
    measurement. The NLL |log d - mu| / b + log b (+ log 2) lets the network say where it is
    unsure: a large scale b costs log b but forgives the error.
    """
    valid = torch.isfinite(target_depth) & (target_depth > 0)
    if not bool(valid.any()):
        return log_depth.sum() * 0.0
    target = torch.log(torch.where(valid, target_depth, torch.ones_like(target_depth)))
    nll = (log_depth - target).abs() * torch.exp(-log_scale) + log_scale + math.log(2.0)
    return nll[valid].mean()


def mono_loss(output: MonoOutput, depth: torch.Tensor, labels: torch.Tensor | None,
              semantic_weight: float) -> dict[str, torch.Tensor]:
    """Loss terms of a batch: ``depth`` (Laplace NLL), ``semantic`` (cross-entropy, class 0 ignored;
    images without labels pass ``labels`` all 0) and their weighted ``total``."""
    terms = {"depth": laplace_nll(output.log_depth, output.log_scale, depth)}
    if labels is not None and semantic_weight > 0:
        terms["semantic"] = segmentation_loss(output.logits, labels)
    terms["total"] = terms["depth"] + semantic_weight * terms.get("semantic", terms["depth"] * 0.0)
    return terms


def depth_metrics(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """AbsRel, RMSE (metres) and delta < 1.25 over pixels with a valid target (> 0, finite).

    predicted, target: any same shape, metres. Also returns the pixel count ``pixels``.
    """
    valid = torch.isfinite(target) & (target > 0) & torch.isfinite(predicted) & (predicted > 0)
    if not bool(valid.any()):
        return {"abs_rel": float("nan"), "rmse": float("nan"), "delta1": float("nan"), "pixels": 0}
    p, t = predicted[valid].double(), target[valid].double()
    ratio = torch.maximum(p / t, t / p)
    return {"abs_rel": float(((p - t).abs() / t).mean()), "rmse": float(((p - t) ** 2).mean().sqrt()),
            "delta1": float((ratio < 1.25).double().mean()), "pixels": int(valid.sum())}
