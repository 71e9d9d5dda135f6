"""Compact semantic evidence per voxel: a leading class, a challenger and the total votes.

Each voxel keeps ``labels = (l1, l2)`` and ``counts = (c1, c2, total)``. A vote for class
``l`` with weight ``w`` (the fused measurement weight, times the class probability when the
frame carries probabilities) is counted as follows: add to the matching slot, else fill an
empty slot, else weaken the challenger by ``min(w, c2)`` and, if it is exhausted, make ``l``
the new challenger with the remainder; when the challenger's count passes the leader's, the
two swap. The challenger slot runs a weighted Boyer-Moore majority vote over the votes not
for the leader, so a class holding more than half of the evidence always ends up leading:
the label converges to the majority of the observations. The leader's count is never
decremented, so ``c1 / total`` (the confidence) is the share of the evidence that voted for
the leader since it took the lead. ``total`` is capped at ``max_total`` by scaling all three
counts, so old votes fade and a relabelled surface can switch class.

Class 0 (unknown) never votes.
"""

from __future__ import annotations

import torch


def update_evidence(
    labels: torch.Tensor,
    counts: torch.Tensor,
    vote: torch.Tensor,
    weight: torch.Tensor,
    max_total: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add one vote per element.

    labels: (..., 2) uint8; counts: (..., 3) float32 (c1, c2, total); vote: (...) int class
    ids; weight: (...) float32, 0 where the element gets no vote. Returns new (labels, counts).
    """
    zero = torch.zeros_like(weight)
    l1, l2 = labels[..., 0].to(torch.int64), labels[..., 1].to(torch.int64)
    c1, c2, total = counts[..., 0], counts[..., 1], counts[..., 2]
    vote = vote.to(torch.int64)
    has = weight > 0
    total = total + weight
    m1 = has & (c1 > 0) & (l1 == vote)
    m2 = has & ~m1 & (c2 > 0) & (l2 == vote)
    c1 = c1 + torch.where(m1, weight, zero)
    c2 = c2 + torch.where(m2, weight, zero)
    other = has & ~m1 & ~m2
    e1 = other & (c1 <= 0)
    e2 = other & ~e1 & (c2 <= 0)
    full = other & ~e1 & ~e2
    dec = torch.where(full, torch.minimum(c2, weight), zero)
    c2 = c2 - dec
    rest = weight - dec
    refill = full & (rest > 0)
    l1 = torch.where(e1, vote, l1)
    c1 = torch.where(e1, weight, c1)
    l2 = torch.where(e2 | refill, vote, l2)
    c2 = torch.where(e2, weight, torch.where(refill, rest, c2))
    swap = c2 > c1
    l1, l2 = torch.where(swap, l2, l1), torch.where(swap, l1, l2)
    c1, c2 = torch.where(swap, c2, c1), torch.where(swap, c1, c2)
    over = total > max_total
    scale = torch.where(over, max_total / torch.where(over, total, torch.ones_like(total)), torch.ones_like(total))
    c1 = torch.where(over, c1 * scale, c1)
    c2 = torch.where(over, c2 * scale, c2)
    total = torch.where(over, torch.full_like(total, max_total), total)
    return (
        torch.stack([l1, l2], dim=-1).to(torch.uint8),
        torch.stack([c1, c2, total], dim=-1),
    )


def evidence_label(labels: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Most likely class (..., ) int64 (0 without evidence) and its confidence c1 / total."""
    counts = counts.to(torch.float32)
    c1, total = counts[..., 0], counts[..., 2]
    has = (total > 0) & (c1 > 0)
    label = torch.where(has, labels[..., 0].to(torch.int64), torch.zeros_like(labels[..., 0], dtype=torch.int64))
    confidence = torch.where(has, c1 / torch.where(has, total, torch.ones_like(total)), torch.zeros_like(c1))
    return label, confidence


def evidence_to_probs(labels: torch.Tensor, counts: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(..., num_classes) float32 distribution: c1/total and c2/total on the two kept classes,
    the evidence not held by them spread evenly over all classes; zeros without evidence."""
    counts = counts.to(torch.float32)
    c1, c2, total = counts[..., 0], counts[..., 1], counts[..., 2]
    has = total > 0
    safe = torch.where(has, total, torch.ones_like(total))
    rest = torch.clamp(total - c1 - c2, min=0.0) / safe / num_classes
    probs = rest[..., None].expand(*rest.shape, num_classes).clone()
    probs.scatter_add_(-1, labels[..., 0:1].to(torch.int64), (c1 / safe)[..., None])
    probs.scatter_add_(-1, labels[..., 1:2].to(torch.int64), (c2 / safe)[..., None])
    return torch.where(has[..., None], probs, torch.zeros_like(probs))


def top2_votes(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two most likely classes of each pixel and their probabilities, as votes.

    probs: (H, W, C) float32 (probabilities; clamped to [0, 1], non-finite values count as 0)
    or uint8 (probability * 255), any strides. Returns (H, W, K) int64 class ids and (H, W, K)
    float32 strengths, K = min(2, C); ties go to the lower class id. The compiled kernel
    (``pixel_top2`` in native/integrate.cpp) does the same per voxel.
    """
    if probs.dtype == torch.uint8:
        p = probs.to(torch.float32) / 255.0
    else:
        p = probs.to(torch.float32)
        p = torch.where(torch.isfinite(p), p, torch.zeros_like(p)).clamp(0.0, 1.0)
    first = p.argmax(dim=-1, keepdim=True)  # the first maximum: the lowest class id
    p1 = p.gather(-1, first)
    if p.shape[-1] == 1:
        return first, p1
    second = p.scatter(-1, first, -1.0).argmax(dim=-1, keepdim=True)
    p2 = p.gather(-1, second)
    return torch.cat([first, second], dim=-1), torch.cat([p1, p2], dim=-1)
