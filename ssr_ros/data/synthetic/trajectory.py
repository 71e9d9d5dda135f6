"""Camera trajectories through a scene: handheld scans and robot drives.

Both walk a smooth path through the free floor space of the room (away from furniture and
walls by ``clearance``) through random waypoints, so parts of the room stay unseen:

- ``handheld``: eye height 1.3-1.7 m with slow bobbing, the camera looking at a slowly
  changing sequence of points on furniture and walls, a little roll.
- ``robot``: a fixed low height (0.4-0.9 m), the camera looking along the direction of
  travel, pitched down, panning slowly left and right.
- ``tour``: through every room of a multi-room floor (see :mod:`~ssr_ros.data.synthetic.floor`).

Poses are camera-to-world (OpenCV optical frame: z forward, x right, y down), world z up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.geometry.pose import look_at


@dataclass
class TrajectoryConfig:
    """Parameters of the camera path."""

    kind: str = param("handheld", "path style; 'tour' visits every room of a multi-room floor",
                      choices=["handheld", "robot", "tour"])
    num_frames: int = param(120, "number of poses", low=1, high=100000)
    frame_rate: float = param(15.0, "frames per second of the stamps", low=0.1, high=1000.0)
    speed: float = param(0.35, "mean camera speed, metres per second", low=0.01, high=5.0)
    clearance: float = param(0.4, "smallest distance of the path to walls and furniture footprints, metres", low=0.05, high=2.0)
    start_stamp_ns: int = param(1_700_000_000_000_000_000, "stamp of the first frame, nanoseconds", low=0)

    def validate(self) -> "TrajectoryConfig":
        return validate_config(self)


@dataclass
class Trajectory:
    """poses: (N, 4, 4) float64 camera-to-world; stamps_ns: (N,) int64 nanoseconds."""

    poses: np.ndarray
    stamps_ns: np.ndarray


def free_space_grid(scene, clearance: float, resolution: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (nx, ny) grid of floor cells at least ``clearance`` from walls and object footprints.

    Returns ``(free, xs, ys)`` with the cell-centre coordinates along x and y.
    """
    W, D, _ = scene.room_size
    xs = np.arange(resolution / 2, W, resolution)
    ys = np.arange(resolution / 2, D, resolution)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    free = (gx > clearance) & (gx < W - clearance) & (gy > clearance) & (gy < D - clearance)
    shell = set(scene.shell.values())
    lo, hi = scene.boxes.aabbs()
    for obj in scene.objects:
        idx = [i for i in obj.box_indices if i not in shell]
        if not idx:
            continue
        olo, ohi = lo[idx].min(axis=0), hi[idx].max(axis=0)
        if olo[2] > 2.0:
            continue
        free &= ~((gx > olo[0] - clearance) & (gx < ohi[0] + clearance) & (gy > olo[1] - clearance) & (gy < ohi[1] + clearance))
    return free, xs, ys


def _segment_free(free: np.ndarray, xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    res = xs[1] - xs[0] if len(xs) > 1 else 0.05
    n = max(2, int(np.linalg.norm(b - a) / (res / 2)))
    pts = a[None] + np.linspace(0, 1, n)[:, None] * (b - a)[None]
    i = np.clip(np.round((pts[:, 0] - xs[0]) / res).astype(int), 0, len(xs) - 1)
    j = np.clip(np.round((pts[:, 1] - ys[0]) / res).astype(int), 0, len(ys) - 1)
    return bool(np.all(free[i, j]))


def generate_trajectory(scene, config: TrajectoryConfig | None = None, seed: int = 0) -> Trajectory:
    """A smooth camera path through ``scene``, identical for identical ``(scene, config, seed)``."""
    config = (config or TrajectoryConfig()).validate()
    if config.kind == "tour":
        from ssr_ros.data.synthetic.floor import tour_trajectory

        poses, stamps = tour_trajectory(scene, config.num_frames, config.frame_rate, config.start_stamp_ns,
                                        speed=config.speed)
        return Trajectory(poses, stamps)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7A3]))
    free, xs, ys = free_space_grid(scene, config.clearance)
    clearance = config.clearance
    while not free.any() and clearance > 0.1:
        clearance *= 0.7
        free, xs, ys = free_space_grid(scene, clearance)
    if not free.any():
        raise ConfigError(f"scene (seed {scene.seed}) has no free floor space for a camera path")
    cells = np.argwhere(free)
    points = np.stack([xs[cells[:, 0]], ys[cells[:, 1]]], axis=1)
    n = config.num_frames
    length = config.speed * max(n - 1, 1) / config.frame_rate

    waypoints = [points[rng.integers(len(points))]]
    travelled = 0.0
    for _ in range(400):
        if travelled >= length:
            break
        choice = points[rng.integers(len(points), size=40)]
        dist = np.linalg.norm(choice - waypoints[-1], axis=1)
        ok = [c for c, dd in zip(choice, dist) if 0.6 < dd < 3.0 and _segment_free(free, xs, ys, waypoints[-1], c)]
        if not ok:
            ok = [c for c, dd in zip(choice, dist) if dd > 0.05 and _segment_free(free, xs, ys, waypoints[-1], c)]
        if not ok:
            continue
        waypoints.append(ok[0])
        travelled += float(np.linalg.norm(ok[0] - waypoints[-2]))
    waypoints = np.array(waypoints)
    if len(waypoints) == 1:  # nowhere to go: turn on the spot
        waypoints = np.vstack([waypoints, waypoints + 1e-3])

    seg = np.linalg.norm(np.diff(waypoints, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    speed_profile = 1.0 + 0.3 * np.sin(np.linspace(0, rng.uniform(2, 6), n) + rng.uniform(0, 6.28))
    s = np.concatenate([[0.0], np.cumsum(speed_profile[1:])])
    s = s / max(s[-1], 1e-9) * min(length, cum[-1])
    xy = np.stack([np.interp(s, cum, waypoints[:, 0]), np.interp(s, cum, waypoints[:, 1])], axis=1)
    sigma = max(1.0, n / 40)
    xy = gaussian_filter1d(xy, sigma, axis=0, mode="nearest")
    t = np.arange(n)

    if config.kind == "handheld":
        height = rng.uniform(1.3, 1.7) + 0.05 * np.sin(t / max(n, 1) * rng.uniform(4, 10) + rng.uniform(0, 6.28))
        targets = _look_targets(scene, rng, n)
        targets = gaussian_filter1d(targets, max(2.0, n / 15), axis=0, mode="nearest")
        roll = gaussian_filter1d(rng.normal(0, 0.08, n), max(1.0, n / 30))
        positions = np.column_stack([xy, height])
        poses = [look_at(p, _keep_distance(p, q), r) for p, q, r in zip(positions, targets, roll)]
    else:
        height = np.full(n, rng.uniform(0.4, 0.9))
        positions = np.column_stack([xy, height])
        heading = np.gradient(xy, axis=0) if n > 1 else np.array([[1.0, 0.0]])
        heading = gaussian_filter1d(heading, max(2.0, n / 20), axis=0, mode="nearest")
        yaw = np.unwrap(np.arctan2(heading[:, 1], heading[:, 0]))
        yaw = yaw + 0.5 * np.sin(t / max(n, 1) * rng.uniform(3, 8) + rng.uniform(0, 6.28))
        pitch = -rng.uniform(0.1, 0.3)
        forward = np.column_stack([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.full(n, np.sin(pitch))])
        poses = [look_at(p, p + f) for p, f in zip(positions, forward)]
    stamps = config.start_stamp_ns + np.round(np.arange(n) * 1e9 / config.frame_rate).astype(np.int64)
    return Trajectory(np.array(poses), stamps)


def _look_targets(scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) piecewise-constant look-at points on objects and walls."""
    shell = set(scene.shell.values())
    lo, hi = scene.boxes.aabbs()
    centres = []
    for obj in scene.objects:
        idx = [i for i in obj.box_indices if i not in shell]
        if idx:
            c = (lo[idx].min(axis=0) + hi[idx].max(axis=0)) / 2
            centres.append(c)
    W, D, H = scene.room_size
    n_targets = max(2, n // 25)
    targets = []
    for _ in range(n_targets):
        if centres and rng.uniform() < 0.7:
            c = centres[rng.integers(len(centres))].copy()
        else:
            c = np.array([rng.uniform(0, W), rng.uniform(0, D), rng.uniform(0.5, 1.5)])
        c[2] = np.clip(c[2], 0.2, H - 0.5)
        targets.append(c)
    index = np.minimum((np.arange(n) * n_targets) // max(n, 1), n_targets - 1)
    return np.array(targets)[index]


def _keep_distance(position: np.ndarray, target: np.ndarray, min_distance: float = 1.0, max_pitch: float = 1.1) -> np.ndarray:
    """Move a look-at target so it is at least ``min_distance`` away and not too steep."""
    d = target - position
    horizontal = np.linalg.norm(d[:2])
    if horizontal < 1e-3:
        d = np.array([1.0, 0.0, -0.5])
        horizontal = 1.0
    if horizontal < min_distance:
        d[:2] *= min_distance / horizontal
        horizontal = min_distance
    max_dz = np.tan(max_pitch) * horizontal
    d[2] = np.clip(d[2], -max_dz, max_dz)
    return position + d
