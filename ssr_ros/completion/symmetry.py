"""The completion network averaged over a chunk's symmetries about the vertical axis.

A room looks the same mirrored in x or y or turned a quarter about z (gravity stays down), and
the network was trained with exactly these augmentations, yet its predictions differ with
them: a surface continued from what was seen lands a voxel to one side or the other depending
on where in the chunk it falls and which way it runs. Averaging the TSDF and the class
probabilities over the mirrored and turned copies of each chunk (each mapped back) cancels much
of that: on calibration rooms 1500-1505 the predicted surface the gate writes was 74.9 -> 79.9 %
right with all eight symmetries (83.1 -> 85.6 % at confidence 0.8, the same surface model), with
four (the mirror images) 79.1 % (84.7 %).

The copies go through the network in groups as large as the device runs well (on a GPU all at
once; on the CPU about eight 32^3 chunks a pass, :mod:`ssr_ros.completion.graphs`) and are
summed as they come back.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

SYMMETRY_COUNTS = (1, 2, 4, 8)
"""How many symmetries may be averaged: the chunk alone; and its mirror image in x; and in y
and in both; and all of these transposed in x and y (the quarter turns)."""

Symmetry = tuple[bool, bool, bool]
"""(transpose x and y, flip x, flip y), applied in this order."""


def chunk_symmetries(count: int) -> list[Symmetry]:
    """The first ``count`` (1, 2, 4 or 8) symmetries of a chunk about its vertical axis, identity first."""
    if count not in SYMMETRY_COUNTS:
        raise ValueError(f"symmetry count {count}; expected one of {SYMMETRY_COUNTS}")
    flips = [(False, False), (True, False), (False, True), (True, True)]
    every = [(False, fx, fy) for fx, fy in flips] + [(True, fx, fy) for fx, fy in flips]
    return every[:count]


def transform(volume: torch.Tensor, symmetry: Symmetry, x_axis: int) -> torch.Tensor:
    """``volume`` with ``symmetry`` applied to its axes ``x_axis`` and ``x_axis + 1`` (x and y)."""
    transpose, flip_x, flip_y = symmetry
    if transpose:
        volume = volume.transpose(x_axis, x_axis + 1)
    dims = [axis for axis, flip in ((x_axis, flip_x), (x_axis + 1, flip_y)) if flip]
    return volume.flip(dims) if dims else volume


def untransform(volume: torch.Tensor, symmetry: Symmetry, x_axis: int) -> torch.Tensor:
    """The inverse of :func:`transform`."""
    transpose, flip_x, flip_y = symmetry
    dims = [axis for axis, flip in ((x_axis, flip_x), (x_axis + 1, flip_y)) if flip]
    if dims:
        volume = volume.flip(dims)
    return volume.transpose(x_axis, x_axis + 1) if transpose else volume


class SymmetricOutput(NamedTuple):
    """The network averaged over a batch's symmetric copies (see :func:`symmetric_forward`)."""

    tsdf: torch.Tensor
    """(B, X, Y, Z) the mean TSDF."""
    color: torch.Tensor | None
    """(B, 3, X, Y, Z) the mean color, or None for a depth-only network."""
    probs: torch.Tensor
    """(B, N, X, Y, Z) the mean class probabilities."""
    tsdf_spread: torch.Tensor
    """(B, X, Y, Z) the standard deviation of the copies' TSDF in units of the truncation: how
    much the copies disagree (0 for a single copy)."""


def symmetric_forward(forward: Callable, geometry: torch.Tensor, color: torch.Tensor | None, truncation: float,
                      count: int, max_batch: int | None = None) -> SymmetricOutput:
    """Run ``forward(geometry, color, truncation)`` (a :class:`~ssr_ros.completion.network.CompletionOutput`
    per batch) on the ``count`` symmetric copies of a batch of chunks and average them back
    (:class:`SymmetricOutput`). The copies go through ``forward`` as many at a time as fit in
    ``max_batch`` chunks (at least one copy of the batch; None: all at once). Chunks must be
    square in x and y for the quarter turns (count 8)."""
    symmetries = chunk_symmetries(count)
    if count == 8 and geometry.shape[2] != geometry.shape[3]:
        raise ValueError(f"quarter turns need chunks square in x and y, got {tuple(geometry.shape[2:])}")
    batch = geometry.shape[0]
    per_call = count if max_batch is None else max(1, min(count, max_batch // batch))
    tsdf = squares = rgb = probs = None
    for first in range(0, count, per_call):
        group = symmetries[first:first + per_call]
        out = forward(torch.cat([transform(geometry, s, 2) for s in group]).contiguous(),
                      None if color is None else torch.cat([transform(color, s, 2) for s in group]).contiguous(),
                      truncation)
        for i, s in enumerate(group):
            part = slice(i * batch, (i + 1) * batch)
            t = untransform(out.tsdf[part], s, 1) / truncation
            p = untransform(torch.softmax(out.semantic_logits[part], dim=1), s, 2)
            tsdf = t if tsdf is None else tsdf + t
            squares = t * t if squares is None else squares + t * t
            probs = p if probs is None else probs + p
            if out.color is not None:
                c = untransform(out.color[part], s, 2)
                rgb = c if rgb is None else rgb + c
    mean = tsdf / count
    spread = (squares / count - mean * mean).clamp(min=0.0).sqrt()
    return SymmetricOutput(mean * truncation, None if rgb is None else rgb / count, probs / count, spread)
