"""The partial view of one object as the shape prior sees it, and simulated views for training.

An observation is two point sets in the map frame (z up): ``surface`` (centres of observed
surface voxels of the instance) and ``free`` (centres of voxels or cells a camera saw empty
near it). :func:`observation_grid` bins both into the class's canonical grid placed by a yaw
and an anchor; training (:func:`simulate_observation`) and the map (``refinement``) both go
through it, so the network sees the same kind of input in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssr_ros.data.synthetic.furniture import ObjectTemplate
from ssr_ros.data.synthetic.primitives import union_sdf
from ssr_ros.objects.shape_classes import CLASS_TEMPLATES, ShapeGrid, class_template


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation about z by ``yaw`` radians (object frame -> map frame)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def anchor_point(surface: np.ndarray, yaw: float, floor_z: float) -> np.ndarray:
    """(3,) map-frame origin of the canonical grid for a frame turned by ``yaw``: the centre of
    the observed points' footprint in that frame, on the floor at ``floor_z``."""
    local = surface @ yaw_matrix(yaw)  # R^T p for each row
    centre = (local[:, :2].min(axis=0) + local[:, :2].max(axis=0)) / 2
    anchor_local = np.array([centre[0], centre[1], 0.0])
    anchor = yaw_matrix(yaw) @ anchor_local
    anchor[2] = floor_z
    return anchor


def to_grid_frame(points: np.ndarray, yaw: float, anchor: np.ndarray) -> np.ndarray:
    """Map-frame points (P, 3) -> anchored grid frame, ``R(yaw)^T (p - anchor)``."""
    return (np.asarray(points, dtype=np.float64) - anchor) @ yaw_matrix(yaw)


def from_grid_frame(points: np.ndarray, yaw: float, anchor: np.ndarray) -> np.ndarray:
    """Anchored grid frame (P, 3) -> map frame."""
    return np.asarray(points, dtype=np.float64) @ yaw_matrix(yaw).T + anchor


def _bin(points_grid: np.ndarray, grid: ShapeGrid) -> np.ndarray:
    index = np.floor((points_grid - grid.lo) / grid.cell).astype(np.int64)
    inside = np.all((index >= 0) & (index < grid.size), axis=1)
    mask = np.zeros((grid.size,) * 3, dtype=bool)
    i = index[inside]
    mask[i[:, 0], i[:, 1], i[:, 2]] = True
    return mask


def observation_grid(surface: np.ndarray, free: np.ndarray, yaw: float, anchor: np.ndarray, grid: ShapeGrid) -> torch.Tensor:
    """(2, G, G, G) float32 network input: channel 0 = a surface point fell in the cell,
    channel 1 = a free point fell in it and no surface point did."""
    s = _bin(to_grid_frame(surface, yaw, anchor), grid)
    f = _bin(to_grid_frame(free, yaw, anchor), grid) & ~s if len(free) else np.zeros_like(s)
    return torch.from_numpy(np.stack([s, f]).astype(np.float32))


# --- simulated observations of template objects ----------------------------------------

@dataclass
class SimulationConfigValues:
    """Numbers of the simulated capture (see :func:`simulate_observation`)."""

    voxel_size: float = 0.05
    views: tuple[int, int] = (1, 3)
    rays: int = 40
    distance: tuple[float, float] = (1.2, 3.5)
    height: tuple[float, float] = (0.9, 1.8)
    depth_noise: float = 0.01
    dropout: float = 0.2
    free_margin: float = 0.075


def template_boxes(template: ObjectTemplate) -> dict[str, torch.Tensor]:
    """Object-frame boxes of a template as float32 tensors (centers, half_extents, rotations)."""
    centers = torch.tensor([p.center for p in template.parts], dtype=torch.float32)
    half = torch.tensor([p.half for p in template.parts], dtype=torch.float32)
    rot = torch.eye(3).expand(len(template.parts), 3, 3).contiguous()
    return {"centers": centers, "half_extents": half, "rotations": rot}


def object_sdf(points: np.ndarray | torch.Tensor, boxes: dict[str, torch.Tensor]) -> torch.Tensor:
    """Signed distance (P,) metres of object-frame points to the union of the object's boxes."""
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(-1, 3)
    sdf, _ = union_sdf(pts, boxes["centers"], boxes["half_extents"], boxes["rotations"])
    return sdf


def _trace(origins: torch.Tensor, dirs: torch.Tensor, boxes, t_max: torch.Tensor, steps: int = 48) -> torch.Tensor:
    """Sphere-trace rays against the boxes; returns hit distance (R,) (inf where none before t_max)."""
    t = torch.zeros(origins.shape[0])
    hit = torch.zeros(origins.shape[0], dtype=torch.bool)
    for _ in range(steps):
        active = ~hit & (t < t_max)
        if not bool(active.any()):
            break
        d = object_sdf(origins[active] + t[active, None] * dirs[active], boxes)
        t[active] += d
        hit[active] = d < 2e-3
    return torch.where(hit & (t < t_max), t, torch.full_like(t, float("inf")))


def simulate_observation(template: ObjectTemplate, rng: np.random.Generator, values: SimulationConfigValues | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Observed surface and free points (object frame, floor at z = 0) of ``template`` seen by
    1-3 cameras around it (in front of it when it stands against a wall), with depth noise,
    voxel snapping and random dropout, as a fused map would hold them."""
    v = values or SimulationConfigValues()
    boxes = template_boxes(template)
    lo, hi = template.local_bounds()
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo) / 2)
    surface, free = [], []
    for _ in range(int(rng.integers(v.views[0], v.views[1] + 1))):
        spread = np.deg2rad(75) if template.placement == "wall" else np.pi
        azimuth = np.pi / 2 + rng.uniform(-spread, spread)
        dist = max(rng.uniform(*v.distance), radius + 0.5)
        eye = np.array([centre[0] + dist * np.cos(azimuth), centre[1] + dist * np.sin(azimuth), rng.uniform(*v.height)])
        target = centre + rng.normal(0, 0.1, 3)
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, [0, 0, 1.0])
        right /= max(np.linalg.norm(right), 1e-6)
        up = np.cross(right, forward)
        half_angle = np.arctan(1.2 * radius / np.linalg.norm(target - eye))
        u = np.tan(half_angle) * np.linspace(-1, 1, v.rays)
        uu, vv = np.meshgrid(u, u, indexing="ij")
        dirs = forward + uu[..., None] * right + vv[..., None] * up
        dirs = dirs.reshape(-1, 3) / np.linalg.norm(dirs.reshape(-1, 3), axis=1, keepdims=True)
        d = torch.from_numpy(dirs.astype(np.float32))
        o = torch.from_numpy(np.broadcast_to(eye, dirs.shape).astype(np.float32).copy())
        # the floor (z = 0) and, for wall objects, the wall behind (y = lo_y) stop rays
        with np.errstate(divide="ignore", invalid="ignore"):
            t_floor = np.where(dirs[:, 2] < 0, -eye[2] / dirs[:, 2], np.inf)
            t_wall = np.where(dirs[:, 1] < 0, (lo[1] - eye[1]) / dirs[:, 1], np.inf) if template.placement == "wall" else np.full(len(dirs), np.inf)
        t_stop = torch.from_numpy(np.minimum(np.minimum(t_floor, t_wall), dist + 2 * radius).astype(np.float32))
        t_hit = _trace(o, d, boxes, t_stop)
        hit = torch.isfinite(t_hit).numpy()
        th = t_hit.numpy()
        pts = eye + dirs[hit] * (th[hit, None] + rng.normal(0, v.depth_noise, (int(hit.sum()), 1)))
        surface.append(pts)
        t_end = np.where(hit, th - v.free_margin, t_stop.numpy() - v.free_margin)
        samples = np.arange(0.2, float(t_end.max()) if len(t_end) else 0.2, v.voxel_size)
        if len(samples):
            ts = samples[None, :].repeat(len(dirs), 0)
            keep = ts < t_end[:, None]
            fp = eye + dirs[:, None, :] * ts[..., None]
            fp = fp[keep]
            near = np.all((fp > lo - 0.5 * radius) & (fp < hi + 0.5 * radius), axis=1)
            free.append(fp[near])
    surface_pts = np.concatenate(surface) if surface else np.zeros((0, 3))
    free_pts = np.concatenate(free) if free else np.zeros((0, 3))
    # fused maps hold voxel centres: snap to a randomly offset 5 cm grid, then drop some
    offset = rng.uniform(0, v.voxel_size, 3)
    surface_pts = np.unique(np.floor((surface_pts - offset) / v.voxel_size), axis=0) * v.voxel_size + offset + v.voxel_size / 2
    free_pts = np.unique(np.floor((free_pts - offset) / v.voxel_size), axis=0) * v.voxel_size + offset + v.voxel_size / 2
    if len(surface_pts) > 4:
        surface_pts = surface_pts[rng.uniform(size=len(surface_pts)) >= rng.uniform(0, v.dropout)]
    return surface_pts, free_pts


@dataclass
class ShapeSample:
    """One training example: network input (2, G, G, G), target SDF (G, G, G) metres in the
    grid frame, the class index and the object's yaw in the grid frame (radians)."""

    inputs: torch.Tensor
    sdf: torch.Tensor
    class_index: int
    yaw: float


def make_sample(class_name: str, class_index: int, grid: ShapeGrid, rng: np.random.Generator,
                values: SimulationConfigValues | None = None, full_turn: bool = True) -> ShapeSample | None:
    """A random object of ``class_name`` seen partially, binned in a grid turned by a random yaw
    (any angle when ``full_turn``, else within +-12 degrees); None when nothing was seen."""
    templates = CLASS_TEMPLATES[class_name]
    template = class_template(templates[int(rng.integers(len(templates)))], class_name, rng)
    surface, free = simulate_observation(template, rng, values)
    if len(surface) < 3:
        return None
    yaw = float(rng.uniform(-np.pi, np.pi)) if full_turn else float(rng.uniform(-np.deg2rad(12), np.deg2rad(12)))
    # the grid frame is the object frame turned by -yaw: the object has yaw `yaw` in it
    grid_yaw = -yaw
    anchor = anchor_point(surface, grid_yaw, floor_z=float(rng.normal(0.0, 0.01)))
    inputs = observation_grid(surface, free, grid_yaw, anchor, grid)
    cells = from_grid_frame(grid.centers().reshape(-1, 3), grid_yaw, anchor)
    sdf = object_sdf(cells, template_boxes(template)).reshape((grid.size,) * 3)
    return ShapeSample(inputs, sdf, class_index, yaw)
