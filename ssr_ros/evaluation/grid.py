"""Bringing two dense volumes onto one voxel grid before comparing them.

Volumes follow the map's convention: global voxel ``v`` covers ``[v * s, (v + 1) * s)``; a
dense array of shape ``(X, Y, Z, ...)`` whose element ``[0, 0, 0]`` is global voxel
``origin_voxel``. Two volumes of the same voxel size align by an integer shift.
"""

from __future__ import annotations

import numpy as np

from ssr_ros.errors import InvalidInput


def align_to_grid(
    array: np.ndarray,
    origin_voxel,
    target_origin_voxel,
    target_shape: tuple[int, int, int],
    fill=0,
) -> np.ndarray:
    """Copy of ``array`` (X, Y, Z, ...) re-indexed onto the target grid.

    Voxels of the target grid that ``array`` does not cover get ``fill``; voxels of ``array``
    outside the target grid are dropped. Trailing channel dimensions are kept.
    """
    array = np.asarray(array)
    if array.ndim < 3:
        raise InvalidInput(f"volume must have at least 3 dimensions (X, Y, Z), got shape {array.shape}")
    origin = np.asarray(origin_voxel, dtype=np.int64).reshape(3)
    target_origin = np.asarray(target_origin_voxel, dtype=np.int64).reshape(3)
    target_shape = tuple(int(n) for n in target_shape)
    out = np.full(target_shape + array.shape[3:], fill, dtype=array.dtype)
    src_lo = np.maximum(origin, target_origin)
    src_hi = np.minimum(origin + np.array(array.shape[:3]), target_origin + np.array(target_shape))
    if np.any(src_hi <= src_lo):
        return out
    a = tuple(slice(lo - o, hi - o) for lo, hi, o in zip(src_lo, src_hi, origin))
    b = tuple(slice(lo - o, hi - o) for lo, hi, o in zip(src_lo, src_hi, target_origin))
    out[b] = array[a]
    return out


def check_same_shape(**arrays) -> tuple[int, ...]:
    """Raise InvalidInput naming the arrays unless all given arrays have one shape."""
    shapes = {name: np.shape(a) for name, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise InvalidInput(f"arrays must have the same shape, got {listed}")
    return next(iter(shapes.values()))
