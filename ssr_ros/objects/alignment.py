"""Pose and shape of one object from its partial view and the shape prior.

With gravity known (the map is z-up; objects stand on the floor at ``floor_z``), only the yaw,
the position and the size are unknown. :func:`align_object`:

1. coarse rotation search: ``search: turns`` (the default) takes the axis of the rectangle the
   observed footprint hugs (:func:`footprint_yaw`: furniture is box-like, the geometry gives the
   exact angle up to quarter turns) and tries its four quarter turns, eight (the diagonals too)
   when the footprint is near square and its axis says little; where the footprint's axis lies
   more than ``wall_snap_angle`` off the walls the object touches and the footprint fits the
   walls' axis about as well, the walls' axis is taken (:func:`snap_to_wall`). ``search: head`` tries the peaks
   of the prior's yaw head (``yaw_candidates``; ``quarter_turns`` adds the best one turned by 90,
   180 and 270 degrees), snapped to the footprint's axes with ``snap_to_footprint``;
   ``search: grid`` tries ``search_yaws`` evenly spaced yaws;
2. for each candidate turns the grid to it and runs the prior, so it gets the completed SDF in a
   frame where the object is canonical; a :class:`~ssr_ros.objects.weights.ShapePriorSet` runs each
   of its priors, and every completion is a candidate of its own (a shape completed as nothing,
   without a cell inside, is none);
3. refines yaw (at most ``max_yaw_change`` from the candidate's), position (x, y, and a little
   z) and per-axis scale continuously by gradient descent (all candidates of an object in one
   batched optimisation, :func:`refine_poses`) so that the observed surface lies on the completed surface, the space seen free
   lies outside it, observed surfaces of other things (walls, other objects) are not inside it
   and (``size_weight``) its width, depth and height (from the floor to its top,
   :func:`standing_size`) fall within the sizes the class's training objects span: a shape
   completed too small from a partial view (a bookshelf seen up to half a metre) grows into
   unobserved space;
4. scores each candidate on the evidence and keeps the lowest: that fit's final cost, the yaw
   head's probability of the turn (``prior_weight``), where the object was seen from
   (``view_weight``, :func:`view_term`: objects are seen mostly from their front or open side;
   the camera path, else the seen-free space near the object, which lies between it and the
   cameras) and whether its back stands against a wall (``wall_weight``, :func:`wall_term`).
   On held-out rooms and simulated front views this turned fewer objects around than the yaw
   head's peaks (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.config import param, validate_config
from ssr_ros.objects.network import yaw_bin_centers, yaw_peaks
from ssr_ros.objects.observation import anchor_point, observation_grid
from ssr_ros.objects.shape_classes import ShapeGrid, class_size_range
from ssr_ros.objects.weights import ShapePrior


@dataclass
class AlignmentConfig:
    """Search and refinement of an object's pose."""

    yaw_candidates: int = param(3, "peaks of the prior's yaw head tried (coarse rotation search)", low=1, high=16)
    refine_steps: int = param(60, "gradient steps of the continuous pose and scale refinement (0 = none)", low=0, high=10000)
    snap_to_footprint: bool = param(True, "turn each yaw candidate to the nearest axis of the rectangle the observed "
                                    "footprint hugs (furniture is box-like: the head picks the quadrant, the footprint "
                                    "the exact angle)")
    refine_yaw: bool = param(True, "let the refinement turn the object (else only position and scale move)")
    learning_rate: float = param(0.02, "Adam step of the refinement (radians, metres, log scale)", low=1e-5, high=1.0)
    free_weight: float = param(1.0, "weight of seen-free space inside the object", low=0.0, high=1000.0)
    blocker_weight: float = param(2.0, "weight of other observed surfaces inside the object", low=0.0, high=1000.0)
    scale_weight: float = param(1.0, "pull of the per-axis log scale towards 1", low=0.0, high=1000.0)
    max_log_scale: float = param(1.2, "per-axis scale bound of the refinement, log (1.2: 0.3 to 3.3 times the "
                                 "completed shape)", low=0.0, high=3.0)
    square_ratio: float = param(1.0, "'turns' search: when the footprint's rectangle is closer to square than this (long "
                                "over short side), the four turns half way between are tried as well (8 candidates); "
                                "1 = never (on held-out rooms the diagonals turned more objects wrong than right)",
                                low=1.0, high=10.0)
    size_weight: float = param(4.0, "pull of the posed shape's width, depth and height into the range the class's "
                               "training objects span (a shape completed too small from a partial view grows into "
                               "unobserved space; seen-free space and other surfaces still bound it); 0 = off",
                               low=0.0, high=1000.0)
    max_free_points: int = param(6000, "seen-free points used (random subset)", low=0, high=10_000_000)
    sample_seed: int = param(0, "seed of each instance's random subset of the seen-free points (benchmarks rerun "
                             "with other seeds to tell a change from sampling noise)", low=0, high=2**31 - 1)
    search: str = param("turns", "coarse yaw search: 'turns' (the four quarter turns of the footprint's axis are "
                        "completed, refined and scored by the evidence: fit, seen-free space, where the cameras were, "
                        "walls behind), 'grid' (every one of search_yaws evenly spaced yaws is completed, refined and "
                        "scored; the fit decides) or 'head' (only the peaks of the prior's yaw head)",
                        choices=["turns", "grid", "head"])
    search_yaws: int = param(12, "yaws tried by the 'grid' search (30 degrees apart at 12)", low=1, high=72)
    turns: int = param(1, "the yaw head is read with the grid turned to this many evenly spaced yaws and the "
                       "distributions (turned back) averaged; must divide the head's bins", low=1, high=36)
    quarter_turns: bool = param(False, "also try the best peak turned by 90, 180 and 270 degrees (box-like furniture "
                                "looks alike from its sides; the fit decides)")
    prior_weight: float = param(0.25, "weight of -log(yaw head probability) when comparing candidates", low=0.0, high=100.0)
    view_weight: float = param(1.0, "weight of the view term when comparing candidates: (1 - mean cosine between the "
                               "object's front and the directions to the viewpoints) / 2; objects are seen mostly from "
                               "their front or open side", low=0.0, high=100.0)
    view_range: float = param(5.0, "viewpoints farther than this from the object take no part in the view term, metres",
                              low=0.1, high=100.0)
    wall_weight: float = param(0.5, "weight of the wall term when comparing candidates: the gap between the object's "
                               "back and the nearest other surface behind it, over wall_distance (1 when none)",
                               low=0.0, high=100.0)
    wall_distance: float = param(0.3, "gaps behind the object's back this wide or wider count as no wall, metres",
                                 low=0.01, high=10.0)
    max_yaw_change: float = param(
        10.0, "the refinement turns the object at most this far from its candidate's yaw, degrees (the footprint's "
        "axis is exact up to quarter turns; the fit alone turned a counter seen from its front 62 degrees off the "
        "wall it stands against); with the 'grid' search use at least half its spacing; 0 = no limit",
        low=0.0, high=180.0)
    wall_snap_angle: float = param(
        20.0, "'turns' search: when the axis of the observed footprint lies more than this off the axis of the "
        "observed walls within wall_distance of it, and the footprint hugs a rectangle along the walls' axis "
        "about as well (mean distance to its sides at most half a voxel more), the walls' axis is taken (furniture "
        "stands square to the wall it touches); smaller disagreements are left to the footprint, degrees; "
        "0 = off", low=0.0, high=45.0)

    def validate(self) -> "AlignmentConfig":
        return validate_config(self)


@dataclass
class AlignedShape:
    """A completed object and its pose.

    sdf: (G, G, G) float32 metres on ``grid`` (negative inside), in the shape frame;
    map frame -> shape frame: ``q = R(yaw_grid)^T (p - anchor - offset) / scale``; ``yaw`` is the
    object's front direction (its +y axis) in the map frame, radians; ``cost`` the final
    refinement cost; ``yaw_probability`` the yaw head's mass at the chosen peak; ``candidates``
    one dict per yaw candidate tried with its scored terms (yaw, fit_cost, head, view, wall,
    off_surface, free_inside, total), for diagnostics.
    """

    grid: ShapeGrid
    sdf: torch.Tensor
    yaw_grid: float
    anchor: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    yaw: float
    cost: float
    yaw_probability: float
    fit: float
    candidates: list[dict] = field(default_factory=list)

    def to_shape_frame(self, points: np.ndarray) -> np.ndarray:
        return _to_shape(torch.as_tensor(np.asarray(points), dtype=torch.float32), torch.tensor(self.yaw_grid),
                         torch.as_tensor(self.anchor + self.offset, dtype=torch.float32),
                         torch.as_tensor(np.log(self.scale), dtype=torch.float32)).numpy()

    def sdf_at(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (P,) metres of map-frame points to the posed completed surface;
        +inf outside the grid."""
        q = torch.as_tensor(self.to_shape_frame(points), dtype=torch.float32)
        inside = np.all((q.numpy() > self.grid.lo) & (q.numpy() < self.grid.lo + self.grid.size * self.grid.cell), axis=1)
        d = sample_sdf(self.sdf, self.grid, q).numpy() * float(np.min(self.scale))
        return np.where(inside, d, np.inf)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) (3,) map-frame axis-aligned bounds of the posed grid, metres: where the shape can reach."""
        corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
        corners = self.grid.lo + corners * self.grid.size * self.grid.cell
        world = (corners * self.scale) @ _rot(self.yaw_grid).T + self.anchor + self.offset
        return world.min(axis=0), world.max(axis=0)

    def box(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centre (3,) map frame, extents (3,) metres along the object's width/depth/height,
        R (3, 3) object axes in the map frame) of the completed shape's occupied cells."""
        occupied = (self.sdf < 0).numpy()
        if not occupied.any():
            occupied = self.sdf.numpy() <= self.sdf.numpy().min()
        idx = np.argwhere(occupied)
        lo = self.grid.lo + idx.min(axis=0) * self.grid.cell
        hi = self.grid.lo + (idx.max(axis=0) + 1) * self.grid.cell
        centre_shape = (lo + hi) / 2 * self.scale
        R = _rot(self.yaw_grid)
        centre = R @ centre_shape + self.anchor + self.offset
        return centre, (hi - lo) * self.scale, _rot(self.yaw)

    def bottom(self) -> float:
        """Map-frame height, metres, of the lowest point the completed shape reaches, parts thinner
        than a cell included: a leg thinner than a cell may hold no cell centre, but the centres of
        the cells it passes through lie within half a cell of its surface all the way down (the
        occupied cells of such a chair start at its seat). The lowest such centre, not below the
        frame's floor (objects of the prior's classes stand on it)."""
        reach = (self.sdf < self.grid.cell / 2).numpy()
        if not reach.any():
            reach = self.sdf.numpy() <= self.sdf.numpy().min()
        z = max(self.grid.lo[2] + (float(np.argwhere(reach)[:, 2].min()) + 0.5) * self.grid.cell, 0.0)
        return float(z * self.scale[2] + self.anchor[2] + self.offset[2])


def _rot(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _to_shape(points: torch.Tensor, yaw: torch.Tensor, origin: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Map-frame points (P, 3) in the shape frame of one pose (yaw (), origin (3,), log_scale (3,)):
    (P, 3); or of C poses at once (yaw (C,), origin (C, 3), log_scale (C, 3)): (C, P, 3)."""
    c, s = torch.cos(yaw)[..., None], torch.sin(yaw)[..., None]
    d = points - origin[..., None, :]
    x = c * d[..., 0] + s * d[..., 1]
    y = -s * d[..., 0] + c * d[..., 1]
    return torch.stack([x, y, d[..., 2]], dim=-1) / torch.exp(log_scale)[..., None, :]


def sample_sdf(sdf: torch.Tensor, grid: ShapeGrid, q: torch.Tensor) -> torch.Tensor:
    """Trilinear SDF (P,) metres at shape-frame points q (P, 3); ``grid``'s truncation value
    (its largest SDF) outside the grid. Batched: sdf (C, G, G, G) and q (C, P, 3) give (C, P)."""
    batched = sdf.dim() == 4
    sdfs, qs = (sdf, q) if batched else (sdf[None], q[None])
    top = sdfs.detach().amax(dim=(1, 2, 3))
    side = grid.size * grid.cell
    u = (qs - torch.as_tensor(grid.lo, dtype=qs.dtype)) / side * 2 - 1
    volume = (sdfs - top[:, None, None, None]).permute(0, 3, 2, 1)[:, None]  # (C, 1, Z, Y, X)
    out = F.grid_sample(volume, u[:, :, None, None, :], align_corners=False, padding_mode="zeros")
    out = out.reshape(len(sdfs), -1) + top[:, None]
    return out if batched else out[0]


@torch.no_grad()
def _run_prior(prior: ShapePrior, class_index: int, surface: np.ndarray, free: np.ndarray, yaws: list[float],
               floor_z: float) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    grid = prior.grid(prior.class_names[class_index])
    anchors = [anchor_point(surface, y, floor_z) for y in yaws]
    inputs = torch.stack([observation_grid(surface, free, y, a, grid) for y, a in zip(yaws, anchors)]).to(prior.device)
    out = prior.model(inputs, torch.full((len(yaws),), class_index, device=prior.device))
    trunc = prior.model.config.truncation_cells * grid.cell
    return (out["sdf"] * trunc).cpu(), out["yaw_logits"].cpu(), anchors


def footprint_cost(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(A,) mean distance (metres) of the points' (P, 3) floor-plane footprint to the nearest
    side of their bounding rectangle turned to each of ``angles`` (radians): how well the
    footprint hugs a rectangle along that axis."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    xy = xy - xy.mean(axis=0)
    angles = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    c, s = np.cos(angles), np.sin(angles)
    u = xy[:, 0:1] * c + xy[:, 1:2] * s
    v = -xy[:, 0:1] * s + xy[:, 1:2] * c
    d = np.minimum(np.minimum(u - u.min(axis=0), u.max(axis=0) - u), np.minimum(v - v.min(axis=0), v.max(axis=0) - v))
    return d.mean(axis=0)


def wall_axis(surface: np.ndarray, walls: np.ndarray | None, distance: float, min_points: int = 10) -> float | None:
    """Axis in [0, pi/2) (radians, up to quarter turns) of the observed wall points (W, 3) whose
    floor-plane distance to the nearest of ``surface`` (S, 3) is below ``distance``: the walls
    the object touches; None with fewer than ``min_points`` such points."""
    if walls is None or len(walls) < min_points or len(surface) == 0:
        return None
    from scipy.spatial import cKDTree

    gap, _ = cKDTree(np.asarray(surface, dtype=np.float64)[:, :2]).query(np.asarray(walls, dtype=np.float64)[:, :2])
    near = np.asarray(walls)[gap < distance]
    if len(near) < min_points:
        return None
    return footprint_yaw(near)


def snap_to_wall(surface: np.ndarray, axis: float, walls_axis: float | None, voxel_size: float, min_angle_deg: float) -> float:
    """The footprint's ``axis``, or the walls' axis when they disagree by more than
    ``min_angle_deg`` (up to quarter turns) and the footprint hugs a rectangle along the walls'
    axis within half a voxel as well as along its own (:func:`footprint_cost`): the footprint says
    little (an L of two seen sides, a cluttered top), the wall it touches says more."""
    if walls_axis is None or min_angle_deg <= 0:
        return axis
    diff = abs(math.remainder(walls_axis - axis, math.pi / 2))
    if diff <= math.radians(min_angle_deg):
        return axis
    own, along_wall = footprint_cost(surface, np.array([axis, walls_axis]))
    return walls_axis if along_wall <= own + 0.5 * voxel_size else axis


def footprint_yaw(points: np.ndarray, step_deg: float = 1.0) -> float:
    """Angle in [0, pi/2) of the rectangle whose sides the points' (P, 3) floor-plane footprint
    hugs best (least mean distance of the points to the nearest side of their bounding
    rectangle at that angle), radians: the object's axes up to quarter turns. Unlike the
    minimum-area rectangle it is not fooled by an L-shaped partial view (two seen sides), whose
    hull is a right triangle with as small a rectangle along its hypotenuse."""
    def best(angles: np.ndarray) -> float:
        return float(angles[int(np.argmin(footprint_cost(points, angles)))])

    coarse = best(np.deg2rad(np.arange(0.0, 90.0, step_deg)))
    fine = best(coarse + np.deg2rad(np.linspace(-step_deg, step_deg, 21)))
    return float(np.mod(fine, np.pi / 2))


def footprint_sides(points: np.ndarray, axis: float) -> tuple[float, float]:
    """(long, short) side, metres, of the points' (P, 3) floor-plane bounding rectangle along ``axis``."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    c, s = math.cos(axis), math.sin(axis)
    u = xy[:, 0] * c + xy[:, 1] * s
    v = -xy[:, 0] * s + xy[:, 1] * c
    short, long = sorted([float(np.ptp(u)), float(np.ptp(v))])
    return long, short


def footprint_aspect(points: np.ndarray, axis: float) -> float:
    """Long over short side (>= 1) of the points' (P, 3) floor-plane bounding rectangle along
    ``axis``."""
    long, short = footprint_sides(points, axis)
    return long / max(short, 1e-6)


def snap_yaw(yaw: float, axis: float) -> float:
    """``yaw`` turned to the nearest of ``axis + k pi/2``."""
    k = round((yaw - axis) / (math.pi / 2))
    return math.remainder(axis + k * math.pi / 2, 2 * math.pi)


def _turned_yaw_logits(prior: ShapePrior, class_index: int, surface: np.ndarray, free: np.ndarray, floor_z: float,
                       turns: int) -> torch.Tensor:
    """(1, bins) log of the yaw distribution in the map frame, averaged over ``turns`` grid yaws."""
    bins = prior.model.config.yaw_bins
    if bins % turns:
        from ssr_ros.errors import ConfigError

        raise ConfigError(f"alignment.turns={turns} must divide the prior's {bins} yaw bins")
    yaws = [2 * math.pi * t / turns for t in range(turns)]
    _, logits, _ = _run_prior(prior, class_index, surface, free, yaws, floor_z)
    probs = torch.softmax(logits.float(), dim=1)
    # grid turned by psi: the head sees the object's yaw minus psi; bin shift psi / bin width
    world = torch.stack([torch.roll(probs[t], shifts=t * bins // turns) for t in range(turns)]).mean(dim=0)
    return torch.log(world.clamp(min=1e-9))[None]


def front_vector(yaw: float) -> np.ndarray:
    """(2,) unit floor-plane direction of an object's front (its +y axis) at ``yaw``."""
    return np.array([-math.sin(yaw), math.cos(yaw)])


def view_term(centre: np.ndarray, yaw: float, viewpoints: np.ndarray, view_range: float) -> float | None:
    """(1 - mean cosine between the front at ``yaw`` and the floor-plane directions from
    ``centre`` to the viewpoints (K, 3) within ``view_range``) / 2: 0 when every viewpoint is
    straight in front, 1 when straight behind; None without viewpoints in range."""
    d = np.asarray(viewpoints, dtype=np.float64).reshape(-1, 3)[:, :2] - np.asarray(centre)[:2]
    n = np.linalg.norm(d, axis=1)
    keep = (n > 1e-6) & (n <= view_range)
    if not keep.any():
        return None
    u = d[keep] / n[keep, None]
    return float((1.0 - (u @ front_vector(yaw)).mean()) / 2.0)


def wall_term(centre: np.ndarray, yaw: float, extents: np.ndarray, floor_z: float, others: np.ndarray,
              wall_distance: float) -> float:
    """Gap between the back face of the box (``centre``, ``extents`` along width / depth /
    height, front at ``yaw``) and the nearest of ``others`` (K, 3) behind it within the box's
    width and height, over ``wall_distance``, clipped to [0, 1]: 0 for an object whose back
    touches a wall, 1 when nothing is behind it that close."""
    p = np.asarray(others, dtype=np.float64).reshape(-1, 3)
    if not len(p):
        return 1.0
    c, s = math.cos(yaw), math.sin(yaw)
    d = p - np.asarray(centre)
    x = c * d[:, 0] + s * d[:, 1]
    y = -s * d[:, 0] + c * d[:, 1]
    gap = -y - extents[1] / 2
    behind = (np.abs(x) < extents[0] / 2) & (p[:, 2] > floor_z + 0.05) & (p[:, 2] < floor_z + extents[2]) & (gap > -0.1)
    if not behind.any():
        return 1.0
    return float(np.clip(gap[behind].min() / wall_distance, 0.0, 1.0))


def standing_size(occupied: np.ndarray, grid: ShapeGrid) -> np.ndarray:
    """(3,) width, depth and height, metres, of a completed shape (``occupied``: (G, G, G) bool cells
    of ``grid``): width and depth are the occupied cells' extent, the height is their top above the
    frame's floor (z = 0). Every object of a prior class stands on the floor (its class's sizes are
    measured so), so it is as high as its top however thin its legs: a chair whose legs came out
    thinner than a cell is as high as its back, not as its seat and back."""
    idx = np.argwhere(occupied)
    size = (idx.max(axis=0) - idx.min(axis=0) + 1) * grid.cell
    size[2] = max(float(grid.lo[2] + (idx[:, 2].max() + 1) * grid.cell), grid.cell)
    return size


def refine_pose(sdf: torch.Tensor, grid: ShapeGrid, yaw0: float, anchor: np.ndarray, surface: torch.Tensor,
                free: torch.Tensor, blockers: torch.Tensor, voxel_size: float, config: AlignmentConfig,
                size_range: tuple[np.ndarray, np.ndarray] | None = None):
    """Continuous refinement of a completed shape's pose (step 3 of the module docstring).

    sdf: (G, G, G) metres on ``grid``; yaw0, anchor: the starting pose; surface, free,
    blockers: (N, 3) float32 map-frame points; size_range: (smallest, largest) width, depth and
    height (metres) of the class, for ``config.size_weight``. Returns ``(yaw, offset (3,), scale (3,),
    final cost)``: the shape frame is ``q = R(yaw)^T (p - anchor - offset) / scale``.
    """
    return refine_poses(sdf[None], grid, [yaw0], [anchor], surface, free, blockers, voxel_size, config, size_range)[0]


def refine_poses(sdfs: torch.Tensor, grid: ShapeGrid, yaws0: list[float], anchors: list[np.ndarray], surface: torch.Tensor,
                 free: torch.Tensor, blockers: torch.Tensor, voxel_size: float, config: AlignmentConfig,
                 size_range: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[float, np.ndarray, np.ndarray, float]]:
    """:func:`refine_pose` of C completed shapes of one object at once (sdfs (C, G, G, G), one
    starting yaw and anchor each): one optimisation over all C poses, each pose moved by the
    gradient of its own cost only (Adam works element by element), so each result is the one
    :func:`refine_pose` gives it alone, in a fraction of the time."""
    count = len(sdfs)
    yaw0 = torch.tensor([float(y) for y in yaws0], dtype=torch.float32)
    yaw = yaw0.clone().requires_grad_(config.refine_yaw)
    offset = torch.zeros(count, 3, requires_grad=True)
    log_scale = torch.zeros(count, 3, requires_grad=True)
    origin0 = torch.as_tensor(np.asarray(anchors, dtype=np.float64).reshape(count, 3), dtype=torch.float32)
    optimizer = torch.optim.Adam(([yaw] if config.refine_yaw else []) + [offset, log_scale], lr=config.learning_rate)
    sized = torch.zeros(count, dtype=torch.bool)  # candidates whose size the class's range bounds
    log_size = torch.zeros(count, 3)
    scale_target = torch.zeros(count, 3)
    if size_range is not None and config.size_weight > 0:
        log_lo = torch.as_tensor(np.log(np.asarray(size_range[0])), dtype=torch.float32)
        log_hi = torch.as_tensor(np.log(np.asarray(size_range[1])), dtype=torch.float32)
        for i in range(count):
            occupied = (sdfs[i] < 0).numpy()
            if occupied.any():
                sized[i] = True
                log_size[i] = torch.as_tensor(np.log(standing_size(occupied, grid)), dtype=torch.float32)
                # the pull towards the completed shape's own size stops where the class's sizes begin
                scale_target[i] = torch.clamp(torch.zeros(3), log_lo - log_size[i], log_hi - log_size[i])
    weight = torch.tensor([1.0, 1.0, 0.2])

    def cost() -> torch.Tensor:
        origin = origin0 + offset * weight
        scale = torch.exp(log_scale).amin(dim=1, keepdim=True)  # ties share the gradient, as a full min() does
        total = (sample_sdf(sdfs, grid, _to_shape(surface, yaw, origin, log_scale)) * scale).abs().mean(dim=1) / voxel_size
        if free.shape[0] and config.free_weight:
            d = sample_sdf(sdfs, grid, _to_shape(free, yaw, origin, log_scale)) * scale
            total = total + config.free_weight * F.relu(0.5 * voxel_size - d).mean(dim=1) / voxel_size
        if blockers.shape[0] and config.blocker_weight:
            d = sample_sdf(sdfs, grid, _to_shape(blockers, yaw, origin, log_scale)) * scale
            total = total + config.blocker_weight * F.relu(-d).mean(dim=1) / voxel_size
        if bool(sized.any()):
            size = log_size + log_scale
            outside = (F.relu(log_lo - size) + F.relu(size - log_hi)).sum(dim=1)
            total = total + torch.where(sized, config.size_weight * outside, torch.zeros(()))
        return total + config.scale_weight * ((log_scale - scale_target) ** 2).sum(dim=1)

    max_turn = math.radians(config.max_yaw_change)
    for _ in range(config.refine_steps):
        optimizer.zero_grad()
        cost().sum().backward()
        optimizer.step()
        with torch.no_grad():
            log_scale.clamp_(-config.max_log_scale, config.max_log_scale)
            if config.refine_yaw and max_turn > 0:
                yaw.copy_(torch.minimum(torch.maximum(yaw, yaw0 - max_turn), yaw0 + max_turn))
            offset[:, 2].clamp_(-voxel_size / 0.2, voxel_size / 0.2)  # objects stand on the floor: 1 voxel at most
    with torch.no_grad():
        final = cost()
    offsets = (offset.detach() * weight).numpy().astype(np.float64)
    scales = torch.exp(log_scale.detach()).numpy().astype(np.float64)
    return [(float(yaw[i].detach()), offsets[i], scales[i], float(final[i])) for i in range(count)]


def _mass_at(probs: torch.Tensor, yaw: float) -> float:
    """Mass (P,) of a yaw distribution within 1.5 bins of ``yaw``."""
    bins = probs.numel()
    diff = torch.remainder(yaw_bin_centers(bins) - yaw + math.pi, 2 * math.pi) - math.pi
    return float(probs[diff.abs() < 1.5 * (2 * math.pi / bins)].sum())


def free_sample(free: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """The seen-free points a fit uses: ``free`` itself, or a random subset of ``max_points`` of them."""
    if len(free) > max_points:
        return free[rng.choice(len(free), max_points, replace=False)]
    return free


def align_object(prior: ShapePrior, class_name: str, surface: np.ndarray, free: np.ndarray, blockers: np.ndarray,
                 floor_z: float, voxel_size: float, config: AlignmentConfig | None = None,
                 generator: np.random.Generator | None = None, viewpoints: np.ndarray | None = None,
                 walls: np.ndarray | None = None) -> AlignedShape | None:
    """Complete and pose one object (see the module docstring); None when the prior has no such class
    or completes it as nothing (no cell inside) at every candidate turn.

    surface: (S, 3) observed surface voxel centres of the instance; free: (F, 3) seen-free
    voxel centres near it; blockers: (K, 3) observed surface voxel centres of other things near
    it; viewpoints: (V, 3) where the object was seen from (camera positions; None: the seen-free
    points stand in, they lie between the object and the cameras); walls: (W, 3) observed wall
    surface voxel centres near it (None: the blockers stand in); all map frame, metres.
    floor_z: floor height, metres. prior: one prior, or a ShapePriorSet whose members all
    complete the object (the lowest-cost candidate of any member is kept).
    """
    config = (config or AlignmentConfig()).validate()
    k = prior.class_index(class_name)
    if k is None or len(surface) < 3:
        return None
    grid = prior.grid(class_name)
    rng = generator or np.random.default_rng(0)
    free = free_sample(free, config.max_free_points, rng)
    if viewpoints is None:
        viewpoints = free
    if config.search == "turns":
        axis = snap_to_wall(surface, footprint_yaw(surface), wall_axis(surface, walls, config.wall_distance), voxel_size,
                            config.wall_snap_angle)
        quarter = 4
        if footprint_aspect(surface, axis) < config.square_ratio:
            quarter = 8  # near-square footprint: its axis says little, try the diagonals too
        yaws = [math.remainder(axis + q * 2 * math.pi / quarter, 2 * math.pi) for q in range(quarter)]
    proposals = []  # (yaw head mass, grid yaw, completed SDF, anchor) of every member of the prior
    for member in prior.members:
        if config.search == "turns":
            sdfs, _, anchors = _run_prior(member, k, surface, free, yaws, floor_z)
            probs0 = torch.softmax(_turned_yaw_logits(member, k, surface, free, floor_z, config.turns)[0], dim=0)
            peaks = [(y, _mass_at(probs0, y)) for y in yaws]
            yaws2 = yaws
        else:
            peaks = _head_candidates(member, k, surface, free, floor_z, config)
            yaws1 = [y for y, _ in peaks]
            _, logits1, _ = _run_prior(member, k, surface, free, yaws1, floor_z)
            centers = yaw_bin_centers(logits1.shape[1])
            # second pass: remove the residual yaw the head still sees
            residual = [math.remainder(float(centers[int(l.argmax())]), 2 * math.pi) for l in logits1]
            keep = config.snap_to_footprint  # snapped yaws are already exact up to quarter turns
            yaws2 = [y + (r if abs(r) < math.radians(30) and not keep else 0.0) for y, r in zip(yaws1, residual)]
            sdfs, _, anchors = _run_prior(member, k, surface, free, yaws2, floor_z)
        proposals += [(mass, y, sdf, anchor) for (_, mass), y, sdf, anchor in zip(peaks, yaws2, sdfs, anchors)]
    s_t = torch.as_tensor(surface, dtype=torch.float32)
    f_t = torch.as_tensor(free, dtype=torch.float32).reshape(-1, 3)
    b_t = torch.as_tensor(blockers, dtype=torch.float32).reshape(-1, 3)
    best: AlignedShape | None = None
    candidates = []
    # completed as nothing: no inside to pose, write or size (an empty grid fits any surface)
    proposals = [p for p in proposals if bool((p[2] < 0).any())]
    if not proposals:
        return None
    with torch.enable_grad():
        poses = refine_poses(torch.stack([p[2] for p in proposals]), grid, [p[1] for p in proposals],
                             [p[3] for p in proposals], s_t, f_t, b_t, voxel_size, config, class_size_range(class_name))
    for (mass, yaw_grid, sdf, anchor), (yaw, offset, scale, final) in zip(proposals, poses):
        shape = AlignedShape(grid, sdf, yaw, anchor, offset, scale, yaw, final, mass, 0.0)
        terms = {"yaw": yaw, "fit_cost": final, "head": -math.log(max(mass, 1e-6)), "view": 0.0, "wall": 0.0}
        terms["off_surface"] = float(np.mean(np.abs(shape.sdf_at(surface)) >= voxel_size))
        terms["free_inside"] = float(np.mean(shape.sdf_at(free) < 0)) if len(free) else 0.0
        centre, extents, _ = shape.box()
        view = view_term(centre, yaw, viewpoints, config.view_range)
        terms["view"] = 0.5 if view is None else view
        terms["wall"] = wall_term(centre, yaw, extents, floor_z, blockers if walls is None else walls, config.wall_distance)
        total = final + config.prior_weight * terms["head"]
        if config.search == "turns":  # the evidence terms decide among turns of one axis
            total += config.view_weight * terms["view"] + config.wall_weight * terms["wall"]
        terms["total"] = total
        candidates.append(terms)
        shape.cost = total
        if best is None or total < best.cost:
            best = shape
    if best is None:
        return None
    dist = np.abs(best.sdf_at(surface))
    best.fit = float(np.mean(dist < voxel_size))
    best.candidates = candidates
    return best


def _head_candidates(prior: ShapePrior, k: int, surface: np.ndarray, free: np.ndarray, floor_z: float,
                     config: AlignmentConfig) -> list[tuple[float, float]]:
    """(yaw, head mass) candidates of the 'head' and 'grid' searches."""
    logits0 = _turned_yaw_logits(prior, k, surface, free, floor_z, config.turns)
    peaks = yaw_peaks(logits0[0], count=config.yaw_candidates)
    if config.search == "grid":
        probs = torch.softmax(logits0[0].float(), dim=0)
        bins = probs.numel()
        peaks = []
        for n in range(config.search_yaws):
            yaw_n = math.remainder(2 * math.pi * n / config.search_yaws, 2 * math.pi)
            b = int(((yaw_n + math.pi) % (2 * math.pi)) / (2 * math.pi) * bins) % bins
            peaks.append((yaw_n, float(probs[[(b + d) % bins for d in (-1, 0, 1)]].sum())))
    if config.quarter_turns:
        probs = torch.softmax(logits0[0].float(), dim=0)
        bins = probs.numel()
        for q in (1, 2, 3):
            yaw_k = peaks[0][0] + q * math.pi / 2
            if all(abs(math.remainder(yaw_k - y, 2 * math.pi)) > math.radians(20) for y, _ in peaks):
                b = int(((yaw_k + math.pi) % (2 * math.pi)) / (2 * math.pi) * bins) % bins
                mass = float(probs[[(b + d) % bins for d in (-1, 0, 1)]].sum())
                peaks.append((math.remainder(yaw_k, 2 * math.pi), mass))
    if config.snap_to_footprint and len(surface) >= 3:
        axis = footprint_yaw(surface)
        snapped: list[tuple[float, float]] = []
        for y, m in peaks:
            y = snap_yaw(y, axis)
            if all(abs(math.remainder(y - z, 2 * math.pi)) > 1e-3 for z, _ in snapped):
                snapped.append((y, m))
        peaks = snapped
    return peaks
