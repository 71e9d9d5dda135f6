"""Which voxels the surface passes through: the one rule every voxel-level output uses."""

from __future__ import annotations

import numpy as np
import torch


def occupied_voxels(coords: np.ndarray, shape: tuple[int, int, int], tsdf: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N,) bool over known voxels at ``coords`` ((N, 3) distinct indices in a box of ``shape``)
    with TSDF ``tsdf`` (N,, metres): occupied, meaning the surface passes within the voxel.

    A voxel is occupied when ``-voxel_size < tsdf <= voxel_size / 2``, and also when, of two
    face neighbours whose TSDF changes sign with neither in that band, it is the one nearer to
    the zero crossing (linear interpolation). A projective TSDF overstates distances by the
    secant of the angle between the viewing ray and the surface normal: a floor seen at 60 to 75
    degrees from its normal steps by two to four voxels' worth of TSDF per voxel, and the two
    voxels around it can hold -0.075 and +0.04 m at 5 cm, both outside the band, so the band
    alone drops such a surface; the crossing between them is still where the surface is."""
    band = (tsdf > -voxel_size) & (tsdf <= 0.5 * voxel_size)
    flat = np.ravel_multi_index(tuple(coords.T), shape)
    # 1 inside, 2 in front, 0 unknown or in the band (a pair with a voxel in the band already
    # holds its surface); only pairs of opposite sides are looked at in metres
    side = np.zeros(int(np.prod(shape)), np.int8)
    outside = ~band
    side[flat[outside]] = np.where(tsdf[outside] <= 0, 1, 2).astype(np.int8)
    lower_side = side[flat]
    metres = np.empty(side.size, np.float32)  # read only where ``side`` is set
    metres[flat[outside]] = tsdf[outside]
    marked = np.zeros(side.size, dtype=bool)
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis in range(3):
        lower = np.flatnonzero((lower_side != 0) & (coords[:, axis] < shape[axis] - 1))
        upper_side = side[flat[lower] + strides[axis]]
        lower = lower[(upper_side != 0) & (upper_side != lower_side[lower])]
        if lower.size == 0:
            continue
        a = tsdf[lower]
        b = metres[flat[lower] + strides[axis]]
        nearer_lower = a / (a - b) <= 0.5
        marked[flat[lower[nearer_lower]]] = True
        marked[flat[lower[~nearer_lower]] + strides[axis]] = True
    return band | marked[flat]


def occupied_flat(layer, tsdf: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(S * V,) bool over the slot-major voxels of ``layer`` (see
    :func:`ssr_ros.map.voxel_export.flat_layers`): :func:`occupied_voxels` of its known voxels,
    ``tsdf`` in metres."""
    from ssr_ros.map.voxel_export import voxel_indices

    index = torch.nonzero(known).squeeze(1)
    occupied = torch.zeros_like(known)
    if index.numel() == 0:
        return occupied
    coords = voxel_indices(layer, index).cpu().numpy()
    lo = coords.min(axis=0)
    shape = tuple(int(n) for n in coords.max(axis=0) - lo + 1)
    values = tsdf[index].cpu().numpy().astype(np.float32)
    occupied[index] = torch.from_numpy(occupied_voxels(coords - lo, shape, values, float(layer.voxel_size))).to(known.device)
    return occupied
