"""Gravity: where "up" is in a recording's world frame, and the rotation that makes it z.

The completion network learned rooms with z up and walls along x and y. Many recordings
(7-Scenes, TUM, raw ScanNet) use a camera's frame as the world frame, so their "up" is some
other direction. This module estimates it once for a recording and gives the rotation
``T_aligned_world`` into a gravity-aligned frame (z up, and optionally walls along x / y):

1. the cameras: hand-held and robot cameras are held roughly upright, with little roll, so up
   is near their -y axes and perpendicular to their x axes (:func:`mean_camera_up`);
2. refined by the floor: the largest plane among back-projected depth points whose normal is
   within ``max_floor_angle_deg`` of (1) and which lies below the cameras
   (:func:`fit_floor_plane`, a vectorised RANSAC followed by a least-squares fit);
3. optionally a yaw from the dominant wall directions (Manhattan world): the histogram of the
   horizontal surface normals' azimuth modulo 90 degrees (:func:`wall_yaw`).

:func:`gravity_alignment` turns (up, yaw) into the 4x4 rotation ``T_aligned_world``
(aligned <- world, no translation). :func:`estimate_alignment` runs all of it on frames, as the
mapping pipeline does with the first ``GravityConfig.estimate_frames`` frames of a recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput
from ssr_ros.geometry.frame import Frame

Z_UP = np.array([0.0, 0.0, 1.0])
GRAVITY_MODES = ("z_up", "estimate", "fixed")


@dataclass
class GravityConfig:
    """Which way is up in the frame of the incoming poses, and how the map is aligned to it."""

    mode: str = param(
        "z_up",
        "'z_up': the pose frame is gravity-aligned with z up (REP 105 map frame), mapped as is; "
        "'estimate': estimate up from the first estimate_frames frames (the cameras' up refined by "
        "the floor plane) and map in a gravity-aligned frame; 'fixed': up is the 'up' vector",
        choices=list(GRAVITY_MODES),
    )
    up: list[float] = param([0.0, 0.0, 1.0], "mode 'fixed': the up direction in the pose frame (x, y, z; any length)")
    align_walls: bool = param(
        True, "modes 'estimate' / 'fixed': also turn the map about up so that the dominant walls lie "
        "along x and y (as in the rooms the completion network learned)",
    )
    estimate_frames: int = param(
        30, "frames buffered for the estimate (modes 'estimate', and 'fixed' with align_walls); they "
        "are integrated once the alignment is known", low=1, high=10000,
    )

    def validate(self) -> "GravityConfig":
        validate_config(self)
        up = np.asarray(self.up, dtype=np.float64) if _is_vector(self.up) else None
        if up is None or up.shape != (3,) or not np.all(np.isfinite(up)) or np.linalg.norm(up) < 1e-9:
            raise ConfigError(f"gravity.up={self.up!r} must be three finite numbers, not all zero")
        return self

    @property
    def aligns(self) -> bool:
        """Whether the map may live in a frame other than the pose frame."""
        return self.mode != "z_up"

    @property
    def needs_frames(self) -> bool:
        """Whether the alignment is estimated from frames (else it is known up front)."""
        return self.mode == "estimate" or (self.mode == "fixed" and self.align_walls)


def _is_vector(value: Any) -> bool:
    try:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    except TypeError:
        return False


def unit(vector: Any, name: str = "vector") -> np.ndarray:
    """``vector`` as a (3,) float64 unit vector; InvalidInput for a wrong shape, NaN or zero length."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise InvalidInput(f"{name} must be three finite numbers, got {np.asarray(vector).tolist()}")
    norm = float(np.linalg.norm(v))
    if norm < 1e-9:
        raise InvalidInput(f"{name} {v.tolist()} has zero length; expected a direction")
    return v / norm


def angle_deg(a: Any, b: Any) -> float:
    """Angle between two directions, degrees."""
    return float(np.degrees(np.arccos(np.clip(unit(a) @ unit(b), -1.0, 1.0))))


# ---------------------------------------------------------------------------- (1) cameras
class CameraUpAccumulator:
    """Up as the cameras see it, accumulated pose by pose (in the poses' frame).

    Cameras are held with little roll, so their x axes are nearly horizontal whatever their
    pitch, while their up axes (-y) lean forward when they look down. Up is therefore the unit
    vector u minimising ``sum_i (x_i . u)^2 + mu * N * (1 - (u . y_mean)^2)``: as perpendicular to
    every camera's x axis as it can be, with the mean up axis ``y_mean`` deciding what the x axes
    leave open (all cameras facing one way). ``mu`` = 0.01.
    """

    PRIOR_WEIGHT = 0.01

    def __init__(self) -> None:
        self.total = np.zeros(3)
        self.x_scatter = np.zeros((3, 3))
        self.count = 0

    def add(self, T_world_cam: np.ndarray) -> None:
        """T_world_cam: (4, 4) camera-to-world."""
        R = np.asarray(T_world_cam, dtype=np.float64)[:3, :3]
        self.total -= R[:, 1]
        self.x_scatter += np.outer(R[:, 0], R[:, 0])
        self.count += 1

    def mean_up_axis(self) -> np.ndarray:
        """(3,) unit mean of the cameras' -y axes; InvalidInput when there is none or they cancel out."""
        if self.count == 0:
            raise InvalidInput("no camera pose to estimate 'up' from; expected at least one frame")
        if np.linalg.norm(self.total) < 1e-6 * self.count:
            raise InvalidInput(f"the up axes of the {self.count} cameras cancel out; cannot tell which way is up")
        return self.total / np.linalg.norm(self.total)

    def up(self) -> np.ndarray:
        """(3,) unit up (see the class docstring); InvalidInput as :meth:`mean_up_axis`."""
        mean = self.mean_up_axis()
        prior = self.PRIOR_WEIGHT * self.count * (np.eye(3) - np.outer(mean, mean))
        vector = np.linalg.eigh(self.x_scatter + prior)[1][:, 0]
        return vector * np.sign(vector @ mean)


def mean_camera_up(T_world_cams: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """(3,) unit up in the world frame as upright-held cameras see it (:class:`CameraUpAccumulator`).

    T_world_cams: (N, 4, 4) camera-to-world poses.
    """
    poses = np.asarray(T_world_cams, dtype=np.float64).reshape(-1, 4, 4)
    accumulator = CameraUpAccumulator()
    for T in poses:
        accumulator.add(T)
    return accumulator.up()


# ---------------------------------------------------------------------------- (2) the floor
@dataclass(frozen=True)
class FloorPlane:
    """The plane ``normal . p = offset`` (world frame, metres), normal pointing up."""

    normal: np.ndarray
    offset: float
    inliers: int
    camera_height: float
    """Median height of the cameras above the plane, metres."""


def fit_floor_plane(
    points: np.ndarray,
    camera_positions: np.ndarray,
    up_guess: np.ndarray,
    normals: np.ndarray | None = None,
    *,
    max_angle_deg: float = 30.0,
    max_normal_deviation_deg: float = 20.0,
    inlier_distance: float = 0.03,
    min_camera_height: float = 0.3,
    min_inliers: int = 200,
    min_inlier_fraction: float = 0.02,
    hypotheses: int = 20000,
    scored: int = 600,
    seed: int = 0,
) -> FloorPlane | None:
    """The largest plane below the cameras whose normal is within ``max_angle_deg`` of ``up_guess``.

    points: (N, 3) world-frame points, metres (a subsample of the depth; a few 10k is plenty).
    camera_positions: (M, 3) world-frame camera centres. normals: (N, 3) unit surface normals
    of the points (NaN where unknown) or None; with them a point supports a plane only if its
    normal is within ``max_normal_deviation_deg`` of the plane's, so planes slicing through
    walls and furniture do not collect support. Returns None when no plane has at least
    ``min_inliers`` and ``min_inlier_fraction`` of the points as inliers.

    RANSAC: random triplets (from the points below the median camera height) give candidate
    planes; those whose normal is too far from ``up_guess`` or that do not lie at least
    ``min_camera_height`` below the median camera are dropped before scoring, the best of the
    first ``scored`` survivors by inlier count is refitted to its inliers by least squares.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    finite = np.all(np.isfinite(points), axis=1)
    point_normals = None
    if normals is not None:
        point_normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
        if len(point_normals) != len(points):
            raise InvalidInput(f"got {len(point_normals)} normals for {len(points)} points; expected one per point")
        point_normals = point_normals[finite]
    points = points[finite]
    cameras = np.asarray(camera_positions, dtype=np.float64).reshape(-1, 3)
    up_guess = unit(up_guess, "up_guess")
    if len(points) < 3 or len(cameras) == 0:
        return None
    rng = np.random.default_rng(seed)
    camera_height = float(np.median(cameras @ up_guess))
    pool = np.flatnonzero(points @ up_guess < camera_height)
    if len(pool) < 3:
        return None
    triplets = points[pool[rng.integers(0, len(pool), size=(hypotheses, 3))]]
    candidates = np.cross(triplets[:, 1] - triplets[:, 0], triplets[:, 2] - triplets[:, 0])
    lengths = np.linalg.norm(candidates, axis=1)
    ok = lengths > 1e-9
    candidates = candidates[ok] / lengths[ok, None]
    candidates *= np.sign(candidates @ up_guess)[:, None]
    offsets = np.einsum("ij,ij->i", candidates, triplets[ok, 0])
    cos_max = np.cos(np.radians(max_angle_deg))
    heights = np.median(cameras @ candidates.T, axis=0) - offsets  # median camera height above each plane
    keep = (candidates @ up_guess >= cos_max) & (heights >= min_camera_height)
    candidates, offsets = candidates[keep][:scored], offsets[keep][:scored]
    if len(candidates) == 0:
        return None
    cos_normal = np.cos(np.radians(max_normal_deviation_deg))

    def supports(plane_normals: np.ndarray, plane_offsets: np.ndarray) -> np.ndarray:
        """(N, K) bool: point n is an inlier of plane k."""
        inlier = np.abs(points @ plane_normals.T - plane_offsets) < inlier_distance
        if point_normals is not None:
            with np.errstate(invalid="ignore"):
                inlier &= np.abs(point_normals @ plane_normals.T) > cos_normal  # NaN normals never support
        return inlier

    counts = np.zeros(len(candidates), dtype=np.int64)
    for start in range(0, len(candidates), 64):  # (N, 64) blocks keep memory small
        counts[start:start + 64] = supports(candidates[start:start + 64], offsets[start:start + 64]).sum(axis=0)
    best = int(np.argmax(counts))
    normal, offset = candidates[best], offsets[best]
    for _ in range(2):  # least-squares refit to the inliers, then once more with the refined plane
        inliers = points[supports(normal[None], np.array([offset]))[:, 0]]
        if len(inliers) < 3:
            return None
        centre = inliers.mean(axis=0)
        refined = np.linalg.svd(inliers - centre, full_matrices=False)[2][2]
        normal = refined * np.sign(refined @ up_guess)
        offset = float(normal @ centre)
    count = int(supports(normal[None], np.array([offset])).sum())
    height = float(np.median(cameras @ normal) - offset)
    if count < max(min_inliers, min_inlier_fraction * len(points)) or height < min_camera_height:
        return None
    if normal @ up_guess < cos_max:
        return None
    return FloorPlane(normal, offset, count, height)


@dataclass(frozen=True)
class UpEstimate:
    """Up (world frame, unit) and where it came from: the cameras, refined by the floor if found."""

    up: np.ndarray
    camera_up: np.ndarray
    floor: FloorPlane | None

    @property
    def source(self) -> str:
        return "floor" if self.floor is not None else "cameras"


def estimate_up(T_world_cams: Sequence[np.ndarray] | np.ndarray, points: np.ndarray | None = None,
                normals: np.ndarray | None = None, **floor_options: Any) -> UpEstimate:
    """Up in the world frame of the poses: the cameras' up, refined by the floor plane.

    T_world_cams: (N, 4, 4) camera-to-world poses (N >= 1). points: (P, 3) world-frame points
    back-projected from depth (subsampled), or None for the cameras alone; normals: their (P, 3)
    unit normals (NaN where unknown) or None, see :func:`fit_floor_plane`. ``floor_options``
    go to :func:`fit_floor_plane`. The floor's normal is taken as up when a floor is found.
    """
    poses = np.asarray(T_world_cams, dtype=np.float64).reshape(-1, 4, 4)
    camera_up = mean_camera_up(poses)
    floor = None
    if points is not None and len(points):
        floor = fit_floor_plane(points, poses[:, :3, 3], camera_up, normals, **floor_options)
    return UpEstimate(floor.normal if floor is not None else camera_up, camera_up, floor)


# ---------------------------------------------------------------------------- (3) the walls
def wall_yaw(normals: np.ndarray, up: np.ndarray, *, max_tilt_deg: float = 15.0, min_normals: int = 100,
             bin_deg: float = 1.0) -> float | None:
    """Azimuth (radians, in [-pi/4, pi/4)) of the dominant wall direction about ``up``, modulo 90 deg.

    normals: (N, 3) world-frame unit surface normals. Only normals within ``max_tilt_deg`` of
    horizontal count. The azimuth is measured in the frame levelled by
    ``gravity_alignment(up)``: turning that frame by ``-yaw`` about z puts the walls along x and
    y. None when fewer than ``min_normals`` horizontal normals exist.
    """
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    normals = normals[np.all(np.isfinite(normals), axis=1)]
    level = gravity_alignment(up)[:3, :3]
    n = normals @ level.T
    horizontal = np.abs(n[:, 2]) < np.sin(np.radians(max_tilt_deg))
    if int(horizontal.sum()) < min_normals:
        return None
    n = n[horizontal]
    azimuth = np.mod(np.arctan2(n[:, 1], n[:, 0]), np.pi / 2)  # walls at right angles fold together
    bins = int(round(90.0 / bin_deg))
    histogram = np.bincount((azimuth / (np.pi / 2) * bins).astype(np.int64) % bins, minlength=bins).astype(float)
    smooth = sum(np.roll(histogram, shift) for shift in range(-3, 4))  # circular box filter
    peak = (np.argmax(smooth) + 0.5) * (np.pi / 2) / bins
    # refine: circular mean (period 90 deg) of the azimuths within 10 deg of the peak
    offset = np.angle(np.exp(4j * (azimuth - peak))) / 4
    near = np.abs(offset) < np.radians(10.0)
    yaw = peak + float(np.mean(offset[near])) if near.any() else peak
    return float(np.mod(yaw + np.pi / 4, np.pi / 2) - np.pi / 4)


# ---------------------------------------------------------------------------- the alignment
def gravity_alignment(up: Any, yaw: float = 0.0) -> np.ndarray:
    """(4, 4) float64 ``T_aligned_world``: the rotation taking ``up`` to +z, then ``-yaw`` about z.

    up: (3,) the world's up direction in world coordinates (any length > 0). The first rotation
    is the smallest one taking ``up`` to z; ``yaw`` (radians, see :func:`wall_yaw`) then turns
    the levelled frame so that the walls lie along x and y. No translation.
    """
    up = unit(up, "up")
    axis = np.cross(up, Z_UP)
    sin, cos = float(np.linalg.norm(axis)), float(up @ Z_UP)
    if sin < 1e-12:
        level = Rotation.identity() if cos > 0 else Rotation.from_rotvec([np.pi, 0.0, 0.0])
    else:
        level = Rotation.from_rotvec(axis / sin * np.arctan2(sin, cos))
    T = np.eye(4)
    T[:3, :3] = (Rotation.from_euler("z", -float(yaw)) * level).as_matrix()
    return T


def frame_points_normals(frame: Frame, max_points: int = 2000, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A subsample of a frame's depth as world-frame points (N, 3) and unit normals (N, 3), float64.

    Pixels are taken on a regular grid of about ``max_points``; normals come from the
    neighbours ``step`` pixels to the right and below (pixels at a depth jump get NaN normals).
    """
    depth = np.asarray(frame.depth, dtype=np.float32)
    height, width = depth.shape
    stride = max(1, int(np.sqrt(height * width / max(max_points, 1))))
    cam = frame.intrinsics.backproject(torch.from_numpy(np.ascontiguousarray(depth))).numpy().astype(np.float64)
    v, u = np.meshgrid(np.arange(0, height - step, stride), np.arange(0, width - step, stride), indexing="ij")
    p, right, below = cam[v, u], cam[v, u + step], cam[v + step, u]
    valid = np.isfinite(depth[v, u]) & (depth[v, u] > 0)
    normals = np.cross(below - p, right - p)  # optical frame: x right, y down -> normal faces the camera
    lengths = np.linalg.norm(normals, axis=-1)
    z = p[..., 2]
    smooth = (np.abs(right[..., 2] - z) < 0.05 * z + 0.02) & (np.abs(below[..., 2] - z) < 0.05 * z + 0.02)
    smooth &= (right[..., 2] > 0) & (below[..., 2] > 0) & (lengths > 1e-12)
    normals = np.where(smooth[..., None], normals / np.where(lengths > 0, lengths, 1.0)[..., None], np.nan)
    R, t = np.asarray(frame.T_world_cam, dtype=np.float64)[:3, :3], np.asarray(frame.T_world_cam, dtype=np.float64)[:3, 3]
    return (p[valid] @ R.T + t), normals[valid] @ R.T


@dataclass(frozen=True)
class GravityEstimate:
    """The alignment of a recording: ``T_aligned_world`` and how it was found (world = pose frame)."""

    T_aligned_world: np.ndarray
    up: np.ndarray
    yaw: float
    source: str
    """'z_up', 'fixed', 'cameras' (the cameras alone) or 'floor' (refined by the floor plane)."""
    camera_up: np.ndarray | None = None
    floor: FloorPlane | None = None
    frames: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_identity(self) -> bool:
        return bool(np.allclose(self.T_aligned_world, np.eye(4), atol=1e-12))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (angles in degrees)."""
        out: dict[str, Any] = {
            "source": self.source, "frames": self.frames, "up": self.up.tolist(),
            "up_angle_to_world_z_deg": angle_deg(self.up, Z_UP), "wall_yaw_deg": float(np.degrees(self.yaw)),
            "T_aligned_world": self.T_aligned_world.tolist(),
        }
        if self.camera_up is not None:
            out["camera_up"] = self.camera_up.tolist()
            out["up_angle_to_camera_up_deg"] = angle_deg(self.up, self.camera_up)
        if self.floor is not None:
            out["floor"] = {"normal": self.floor.normal.tolist(), "offset_m": self.floor.offset,
                            "inliers": self.floor.inliers, "camera_height_m": self.floor.camera_height}
        return out


def estimate_alignment(frames: Sequence[Frame], config: GravityConfig, points_per_frame: int = 2000) -> GravityEstimate:
    """The gravity alignment of ``frames`` (world = their pose frame) under ``config``.

    'z_up' gives the identity; 'fixed' uses ``config.up``; 'estimate' uses :func:`estimate_up`
    on the frames' poses and depth. With ``align_walls`` (not 'z_up') the walls' yaw is
    estimated from the depth normals (no yaw when too few walls are seen).
    """
    config.validate()
    if config.mode == "z_up":
        return GravityEstimate(np.eye(4), Z_UP.copy(), 0.0, "z_up")
    if config.needs_frames and not frames:
        raise InvalidInput(f"gravity mode '{config.mode}' needs frames to estimate from; got none")
    samples = [frame_points_normals(frame, points_per_frame) for frame in frames] if config.needs_frames else []
    points = np.concatenate([s[0] for s in samples]) if samples else np.zeros((0, 3))
    normals = np.concatenate([s[1] for s in samples]) if samples else np.zeros((0, 3))
    camera_up, floor = None, None
    if config.mode == "fixed":
        up, source = unit(config.up, "gravity.up"), "fixed"
    else:
        estimate = estimate_up([f.T_world_cam for f in frames], points, normals)
        up, camera_up, floor, source = estimate.up, estimate.camera_up, estimate.floor, estimate.source
    yaw = (wall_yaw(normals, up) or 0.0) if config.align_walls else 0.0
    return GravityEstimate(gravity_alignment(up, yaw), up, yaw, source, camera_up, floor, len(frames),
                           {"points": int(len(points))})
