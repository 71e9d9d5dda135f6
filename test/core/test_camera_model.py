"""The one camera model: projection, the nearest-pixel rounding rule, unprojection; NumPy and torch alike."""

from __future__ import annotations

import numpy as np
import torch

from ssr_ros.geometry import CameraIntrinsics

K = CameraIntrinsics(fx=100.0, fy=80.0, cx=31.5, cy=23.5, width=64, height=48)


def test_unproject_then_project_returns_the_pixels():
    v, u = np.mgrid[0:48, 0:64].astype(np.float64)
    d = 0.5 + 0.01 * u
    points = np.stack(K.unproject(u, v, d), axis=-1)
    pu, pv = K.project_xy(points)
    assert np.allclose(pu, u) and np.allclose(pv, v)
    iu, iv, inside = K.nearest_pixel(points)
    assert inside.all() and np.array_equal(iu, u.astype(np.int64)) and np.array_equal(iv, v.astype(np.int64))


def test_halves_round_to_even_and_numpy_and_torch_agree():
    # projections at exactly u = 2.5 and u = 3.5 (z = 1): to 2 and 4, the one rounding rule
    K2 = CameraIntrinsics(fx=2.0, fy=2.0, cx=0.5, cy=0.5, width=8, height=8)
    points = np.array([[1.0, 0.0, 1.0], [1.5, 0.0, 1.0], [0.0, 0.0, -1.0], [10.0, 0.0, 1.0]])
    u, v, inside = K2.nearest_pixel(points)
    assert u[:2].tolist() == [2, 4]
    assert inside.tolist() == [True, True, False, False]  # behind the camera; off the image
    tu, tv, tinside = K2.nearest_pixel(torch.from_numpy(points))
    assert tu.tolist()[:2] == [2, 4] and tinside.tolist() == inside.tolist()
    assert tu.dtype == torch.int64 and tv[0].item() == v[0]
