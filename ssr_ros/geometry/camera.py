"""Pinhole camera intrinsics and the projection between pixels and camera-frame points.

The one camera model of the package: pixel (u, v) has its centre at integer (u, v) (OpenCV);
``u = fx x / z + cx``, ``v = fy y / z + cy``; a point falls in the pixel *nearest* to its
projection, rounding halves to even (``numpy.round`` / ``torch.round`` / C++ ``nearbyint``: the
one rounding rule). :meth:`CameraIntrinsics.project_xy`, :meth:`~CameraIntrinsics.nearest_pixel`
and :meth:`~CameraIntrinsics.unproject` work on NumPy arrays and torch tensors alike. The
integration kernels (``ssr_ros.map.integration`` in torch, ``map/native/integrate.cpp``) follow
the same model in float32 with a fixed operation order, receiving it as one struct
(``integration.Projection``) so that both give bit-identical maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ssr_ros.errors import InvalidIntrinsics


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted image of ``width`` x ``height`` pixels.

    ``fx, fy`` are focal lengths and ``cx, cy`` the principal point, all in pixels, for the
    OpenCV convention where pixel (u, v) has its centre at (u, v) (integer coordinates).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise InvalidIntrinsics(f"intrinsics {name}={value!r} is not finite")
        if self.fx <= 0 or self.fy <= 0:
            raise InvalidIntrinsics(
                f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}"
            )
        if int(self.width) != self.width or int(self.height) != self.height:
            raise InvalidIntrinsics(
                f"image size must be integer, got {self.width}x{self.height}"
            )
        if self.width <= 0 or self.height <= 0:
            raise InvalidIntrinsics(
                f"image size must be positive, got {self.width}x{self.height}"
            )
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @classmethod
    def from_matrix(cls, K: np.ndarray, width: int, height: int) -> "CameraIntrinsics":
        """Build from a 3x3 camera matrix ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.

        A non-zero skew ``s`` is refused: nothing downstream models it.
        """
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise InvalidIntrinsics(f"camera matrix must be 3x3, got shape {K.shape}")
        if abs(K[0, 1]) > 1e-9 or abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) > 1e-9 or abs(K[2, 1]) > 1e-9:
            raise InvalidIntrinsics(f"camera matrix with skew is not supported: {K.tolist()}")
        if abs(K[2, 2] - 1.0) > 1e-9:
            raise InvalidIntrinsics(f"camera matrix must have K[2,2] = 1, got {K[2, 2]}")
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), width, height)

    @classmethod
    def from_camera_info(
        cls,
        width: int,
        height: int,
        k: "np.ndarray | list[float]",
        d: "np.ndarray | list[float]" = (),
        distortion_model: str = "",
        ignore_distortion: bool = False,
    ) -> "CameraIntrinsics":
        """Build from the fields of a sensor_msgs/CameraInfo (``k`` row-major 3x3, ``d``).

        Images are assumed rectified: non-zero distortion coefficients raise
        InvalidIntrinsics (ssr_ros does not undistort) unless ``ignore_distortion`` is set,
        in which case the caller is expected to warn. An all-zero ``k`` (an uncalibrated
        camera) is refused.
        """
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9:
            raise InvalidIntrinsics(f"CameraInfo.k must have 9 entries, got {k.size}")
        if not np.any(k):
            raise InvalidIntrinsics("CameraInfo.k is all zeros: the camera is not calibrated")
        d = np.asarray(d, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(d)):
            raise InvalidIntrinsics(f"CameraInfo.d has non-finite coefficients {d.tolist()}")
        if np.any(d != 0) and not ignore_distortion:
            raise InvalidIntrinsics(
                f"distortion model '{distortion_model}' with coefficients {d.tolist()} is not "
                "supported: use the driver's rectified topics (e.g. image_rect*), rectify with image_proc "
                "(depth with nearest-neighbour interpolation), or set ignore_distortion if it is small; "
                "docs/bringup.md lists the topics per camera"
            )
        return cls.from_matrix(k.reshape(3, 3), width, height)

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64 camera matrix K."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape as (height, width)."""
        return (self.height, self.width)

    def scaled(self, factor: float) -> "CameraIntrinsics":
        """Intrinsics of the image resized by ``factor`` (e.g. 0.5 halves both sides).

        Pixel centres stay consistent: cx' = (cx + 0.5) * factor - 0.5.
        """
        if not (factor > 0 and math.isfinite(factor)):
            raise InvalidIntrinsics(f"scale factor must be positive and finite, got {factor}")
        width = max(1, int(round(self.width * factor)))
        height = max(1, int(round(self.height * factor)))
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            width, height,
        )

    def project_xy(self, points_cam):
        """Pixel coordinates ``(u, v)`` (floats) of camera-frame points (..., 3) with z > 0
        (NumPy or torch; the caller keeps points with z <= 0 out)."""
        z = points_cam[..., 2]
        return self.fx * points_cam[..., 0] / z + self.cx, self.fy * points_cam[..., 1] / z + self.cy

    def nearest_pixel(self, points_cam):
        """Integer pixel ``(u, v)`` each point falls in (the one rounding rule: halves to even),
        and whether that pixel is inside the image; points with z <= 0 are outside.
        NumPy in, NumPy (int64) out; torch in, torch out."""
        z = points_cam[..., 2]
        front = z > 0
        if isinstance(points_cam, torch.Tensor):
            safe = torch.where(front[..., None], points_cam, torch.ones_like(points_cam))
            u, v = self.project_xy(safe)
            u, v = torch.round(u).to(torch.int64), torch.round(v).to(torch.int64)
        else:
            safe = np.where(front[..., None], points_cam, 1.0)
            u, v = self.project_xy(safe)
            u, v = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
        inside = front & (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)
        return u, v, inside

    def unproject(self, u, v, depth):
        """Camera-frame ``(x, y, z)`` of pixels (u, v) at z-depth ``depth`` (arrays or tensors)."""
        return (u - self.cx) / self.fx * depth, (v - self.cy) / self.fy * depth, depth

    def pixel_rays(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(H, W, 3) camera-frame directions with z = 1 through every pixel centre."""
        v, u = torch.meshgrid(
            torch.arange(self.height, device=device, dtype=dtype),
            torch.arange(self.width, device=device, dtype=dtype),
            indexing="ij",
        )
        x = (u - self.cx) / self.fx
        y = (v - self.cy) / self.fy
        return torch.stack([x, y, torch.ones_like(x)], dim=-1)

    def backproject(self, depth: torch.Tensor) -> torch.Tensor:
        """Camera-frame points of a depth image.

        depth: (H, W) metres, z-depth along the optical axis (0 = invalid).
        Returns (H, W, 3) points on depth's device and dtype; invalid pixels give z = 0.
        """
        if tuple(depth.shape) != self.shape:
            raise InvalidIntrinsics(
                f"depth of shape {tuple(depth.shape)} does not match intrinsics {self.shape}"
            )
        return self.pixel_rays(depth.device, depth.dtype) * depth[..., None]

    def project(self, points_cam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project camera-frame points (..., 3) to pixel coordinates (..., 2) (u, v) and depth (...,).

        Points with z <= 0 get NaN pixel coordinates.
        """
        z = points_cam[..., 2]
        safe = torch.where((z > 0)[..., None], points_cam, torch.full_like(points_cam, float("nan")))
        u, v = self.project_xy(safe)
        return torch.stack([u, v], dim=-1), z
