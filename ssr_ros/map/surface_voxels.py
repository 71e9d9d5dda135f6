"""Which voxels the surface passes through: the one rule every voxel-level output uses."""

from __future__ import annotations

import numpy as np


def occupied_voxels(coords: np.ndarray, shape: tuple[int, int, int], tsdf: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N,) bool over known voxels at ``coords`` ((N, 3) distinct indices in a box of ``shape``)
    with TSDF ``tsdf`` (N,, metres): occupied, meaning the surface passes within the voxel.

    A voxel is occupied when ``-voxel_size < tsdf <= voxel_size / 2``, and also when it lies
    behind a surface (``tsdf <= -voxel_size``) with a face neighbour in front of it
    (``tsdf > voxel_size / 2``): the surface crosses between them, and the band dropped it. A
    projective TSDF overstates distances by the secant of the angle between the viewing ray and
    the surface normal: a floor seen at 60 to 75 degrees from its normal steps by two to four
    voxels' worth of TSDF per voxel, and the two voxels around it can hold -0.075 and +0.04 m at
    5 cm, both outside the band. Of such a pair the voxel behind the surface is taken, so a
    voxel measured in front of a surface never becomes occupied (at most one voxel deeper into
    the object than the crossing)."""
    band = (tsdf > -voxel_size) & (tsdf <= 0.5 * voxel_size)
    behind = tsdf <= -voxel_size
    flat = np.ravel_multi_index(tuple(coords.T), shape)
    in_front = np.zeros(int(np.prod(shape)), dtype=bool)
    in_front[flat[tsdf > 0.5 * voxel_size]] = True
    candidates = np.flatnonzero(behind)
    cell = flat[candidates]
    crossed = np.zeros(len(candidates), dtype=bool)
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis in range(3):
        position = coords[candidates, axis]
        up = position < shape[axis] - 1
        crossed[up] |= in_front[cell[up] + strides[axis]]
        down = position > 0
        crossed[down] |= in_front[cell[down] - strides[axis]]
    occupied = band.copy()
    occupied[candidates[crossed]] = True
    return occupied
