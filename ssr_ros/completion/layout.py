"""Room layout completion: the floor, walls and ceiling the cameras missed, from the ones they saw.

Most of what a short scan of a room misses is the room itself. On generated rooms scanned with
40 frames, 64-74 % of the ground-truth surface the fused map lacks is floor, wall or ceiling,
which a 32^3 network chunk (1.6 m) cannot see as a whole but the whole map can. This stage
finds the room's large planes in the map and writes the room's surface where nothing was
observed, in the gravity-aligned map frame (z up):

1. **Observed surface** voxels: fused, within ``surface_band`` voxels of the zero crossing by
   the TSDF over its gradient's length (a projective TSDF seen at a grazing angle is
   stretched), with normals from the gradient over observed neighbours; each is moved onto
   the zero crossing along its normal.
2. **Floor and ceiling**: the z histogram of up-facing (down-facing) surface; the floor is the
   lowest peak with at least ``min_plane_area`` below the cameras, the ceiling the highest
   above them.
3. **Walls**: a Hough transform over the azimuth of horizontal normals and the plane offset;
   each peak with ``min_plane_area`` is refined to the direction along which its inliers line
   up best and moved to the back of them (doors, pictures and cupboard backs on the wall share
   its peak a few centimetres in front of it); a wall up to 6 degrees off square to the room's
   main direction (the walls' directions averaged, weighted by the square of their seen area)
   is squared to it. A floor seen too little on its own (down to a sixteenth of
   ``min_plane_area``) is taken where walls facing different ways end on it; a ceiling so
   where one of them reaches up to it, ``min_room_height`` or more above the floor.
   A wall *bounds the room* when (nearly) every camera position lies in front of it, almost no
   seen-free space lies behind it, it is the outermost of the parallel walls facing the same
   way (a cupboard front stands in front of the wall), and, where the map has semantics, enough
   of its observed voxels are labelled wall (a door, window or picture on it counts as wall). The
   floor and ceiling obey the same free-space and label rules: a table top with free space seen
   under it is not the floor.
4. **The room** is the convex region in front of every bounding plane, clipped to the extent of
   what the cameras saw (observed surface, seen-free space, the camera positions), widened by
   ``margin`` in the horizontal directions (the floor and the walls go on beyond what a short
   scan saw of them) and reaching at least ``min_room_height`` above the floor (walls go up to
   a ceiling nobody saw); its signed distance is the minimum of the planes' signed distances. Nothing is
   written unless the map shows a room: a floor and ``min_walls`` bounding walls facing different
   ways; with ``floorless`` a room whose floor nobody saw (a corner of walls) gets its walls and ceiling, down to
   the lowest thing the cameras saw (the room's box), and no floor; with ``unseen_floor`` it stands
   on the map's floor height where what was seen allows (:func:`_assumed_floor`): walls down to it,
   the floor's voxels occupied (solid side only, never a surface).
5. **Written** into the predicted layer within ``band`` voxels of the room's surface, only in
   voxels nothing measured (never over observed voxels or seen-free space; over the network's
   predictions with ``over_network``, since the planes are measured and the network's
   continuation of them lies up to a couple of voxels off), within ``max_extension`` of the
   plane's observed part (unless the room's other planes bound it on every side: walls closing
   the room all round, and for a wall the floor and the ceiling too), and both sides of the
   surface only where, walking from it into the room, the first thing the map knows within
   ``reach`` is seen-free space: no object stands in front of it (a cupboard hides the wall
   behind it) and a camera looked there; for the floor, that space lies at least
   ``floor_view_clearance`` below the cameras (they looked down into it: a low robot camera
   looking across a bed does not see its top, and the floor under it is no surface), or the
   floor lies where a camera was (``PATH_FOOTPRINT``). A wall also goes on, both sides, above the
   highest part of it seen in each of its columns, up to the ceiling (or ``min_room_height``), where
   walking from it into the room finds nothing the map knows, nor walking from it out of the room
   (``walls_up``): a low camera sees only the lower part of a wall, and the wall does not stop there;
   a plane the cameras saw behind ends there (the top of cupboard fronts, a doorway).
   Elsewhere, with ``solid_side``, only the voxels the surface passes through and those behind
   it, all with a negative distance: occupied, with no surface of their own. Labels: floor /
   wall / ceiling by kind where the taxonomy has them (also where a window or a door covers most
   of what was seen of a wall), else the majority fused label of the plane's observed voxels; a
   door seen on a bounding wall replaces the wall over the columns where it was seen, from the
   floor up to ``door_height`` (or as high as it was seen), at its seen distance from the wall; a
   window or picture seen on it (``wall_patches``) replaces the wall over the rectangle its seen
   part spans (the rest of it is out of sight, behind what stands in front of it or cut off by
   the view, and nobody knows how far it goes beyond);
   color: the plane's median observed color; confidence: ``confidence``. A plane lying on a
   voxel face (to within ``face_tolerance``) occupies only the voxel on its solid side
   (:func:`on_face_outside`).

The stage needs nothing learned and runs on the map alone (:func:`find_layout`,
:func:`complete_layout`); ``ssr evaluate-completion`` reports it beside fusion, Poisson and
the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.config import param, validate_config
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.taxonomy import UNKNOWN_ID


@dataclass
class LayoutConfig:
    """Room layout completion (see :mod:`ssr_ros.completion.layout`)."""

    type: str = param("room", "'room': write the unseen floor, walls and ceiling of the room the cameras are in; "
                      "'none': off", choices=["room", "none"])
    min_plane_area: float = param(0.5, "observed area a floor, wall or ceiling plane needs, m^2", low=0.01, high=1000.0)
    angle_tolerance_deg: float = param(12.0, "how far a surface normal may tilt from the plane's and still count, degrees",
                                       low=1.0, high=45.0)
    band: float = param(1.5, "voxels on either side of the room's surface that are written", low=1.0, high=4.0)
    margin: float = param(
        0.5, "how far beyond the extent of what the cameras saw (surface, free space, the cameras) the room may reach "
        "in the horizontal directions, metres; where nobody saw in front of it only its solid side is marked",
        low=0.0, high=10.0)
    min_room_height: float = param(
        2.3, "the room reaches at least this high above its floor (walls go up to a ceiling the cameras did not see; "
        "a ceiling that was seen bounds them where it is), metres; 0 = only as high as what the cameras saw",
        low=0.0, high=10.0)
    max_free_behind: float = param(
        0.02, "a plane bounds the room only if at most this fraction of the space the cameras saw free lies "
        "behind it (a table top is not the floor: the cameras saw under it)", low=0.0, high=1.0)
    min_walls: int = param(
        2, "the layout is written only when the map shows a room: a floor (seen, or assumed: see unseen_floor) and "
        "at least this many bounding walls facing different ways (1: a floor and one wall, as a kitchen seen along "
        "one wall; on real recordings one 'wall' is often a row of cupboard fronts); a room without a floor (see "
        "floorless) needs at least two (a corner); 0 = write any planes found", low=0, high=8)
    floorless: bool = param(
        True, "a room whose floor no camera saw (a corner of bounding walls, no floor plane) "
        "still gets its walls and ceiling, from the lowest thing the cameras saw upwards; off: nothing is written "
        "without a floor")
    unseen_floor: bool = param(
        True, "a room whose floor no camera saw stands on planning.floor_height (REP 105: a ground robot's map "
        "frame lies on the ground) where nothing seen lies below that height and every camera stands at least "
        "0.3 m above it: its walls reach down to it and the floor's voxels are marked occupied (never drawn as a "
        "surface: nobody saw what stands on it); off: only the floorless rule")
    min_label_share: float = param(
        0.3, "where the map has semantics, a plane bounds the room only if at least this fraction of its observed "
        "voxels carry its class (floor, wall, ceiling; for a wall, doors, windows and pictures seen on it count as "
        "wall: they hang on one, a cupboard front does not)", low=0.0, high=1.0)
    camera_front_fraction: float = param(
        0.95, "fraction of camera positions that must lie in front of a wall for it to bound the room", low=0.5, high=1.0)
    reach: float = param(
        3.0, "the room's surface (both sides) is written only where, walking from it into the room, the first thing the map "
        "knows within this distance is space the cameras saw free: not an object standing in front of it (a "
        "cupboard hides the wall behind it, a bed the floor under it), not nothing (a place no camera looked at), metres",
        low=0.1, high=10.0)
    floor_view_clearance: float = param(
        0.2, "the unseen floor's surface is written only where the first space seen free above it lies at least this "
        "far below the cameras' median height: cameras above it looked down into the space over the floor there and "
        "would have seen the top of a bed or cabinet standing on it; a ground robot's low camera looks across the "
        "room over such things without seeing their tops (there, only the floor's solid side is marked, as with "
        "solid_side); the floor where a camera was (within PATH_FOOTPRINT, 0.25 m) is drawn regardless, metres; "
        "0 = off", low=0.0, high=10.0)
    walls_up: bool = param(
        True, "a bounding wall is drawn (both sides) above the highest part of it the cameras saw in each column of "
        "it, up to the ceiling (or min_room_height), where the map knows nothing in front of it within reach: walls "
        "are planes from the floor to the ceiling, and a low camera (a ground robot's) sees only their lower part; "
        "a column where nothing of the wall was seen (a wardrobe stands in front of it) is not raised, nor where "
        "something known stands in front (a shelf seen on the wall) or the cameras saw behind it (the plane ends "
        "there: the top of a row of cupboard fronts, a doorway); off: only the solid side is marked above what was "
        "seen")
    solid_side: bool = param(
        True, "where the cameras did not see the room in front of its surface (an object stands there, or no camera "
        "looked), still mark the surface's solid side occupied (the wall behind a cupboard, the floor under a bed): "
        "only the voxels the surface passes through and those behind it are written, all with a negative distance, "
        "so a surface is drawn there only against a voxel the map already knows to be in front of it")
    max_extension: float = param(
        6.0, "how far beyond its observed part a plane is extended, metres (the room's surface farther from "
        "anything seen of it is left unknown), unless the room's other planes bound it on every side (walls "
        "closing the room all round; for a wall, also the floor and the ceiling)", low=0.0, high=100.0)
    face_tolerance: float = param(
        0.1, "a plane this close to a voxel face (voxels; the precision of the fitted plane's position) lies on "
        "that face: the voxel on its room side only touches the surface along the face and is written just over "
        "half a voxel away (free by the map's rule tsdf <= half a voxel); only the voxel on its solid side is "
        "occupied, as for a surface through the voxel's inside (0 = the plane's distance as it is)",
        low=0.0, high=0.5)
    door_height: float = param(
        2.0, "a door seen on a bounding wall is written over the columns of the wall where it was seen, from the floor "
        "up to at least this height above it (standard doors are 2.0-2.1 m high; where more of it was seen, up to "
        "what was seen), at the distance from the wall its seen part lies; 0 = doors are written as wall", low=0.0, high=4.0)
    wall_patches: bool = param(
        True, "a window or picture seen on a bounding wall is written over the rectangle of the wall its seen part "
        "spans (along the wall and in height), where the wall behind is unobserved (windows and pictures are "
        "rectangles; what of them stays unseen inside that rectangle is hidden by something in front or fell "
        "between the views); off: written as wall")
    over_network: bool = param(
        True, "the room's surface replaces the completion network's predictions within ``band`` of it (the planes "
        "are measured on what the cameras saw; the network's continuation of them lies up to a couple of voxels off); "
        "off: the network's predictions are kept and the layout writes around them")
    confidence: float = param(0.8, "confidence written with layout voxels", low=0.0, high=1.0)
    period_s: float = param(5.0, "while mapping, the layout is refreshed at most this often (offline: once at the end), s",
                            low=0.0, high=3600.0)
    max_voxels: int = param(6_000_000, "largest map box (voxels) the stage works on at once (about 100 bytes per voxel "
                            "while it runs); larger maps are skipped with a reason in the report",
                            low=1000, high=2_000_000_000)

    def validate(self) -> "LayoutConfig":
        return validate_config(self)

    @property
    def enabled(self) -> bool:
        return self.type != "none"


@dataclass
class Plane:
    """A layout plane ``normal . x = offset`` (map frame, metres), normal pointing into the room.

    kind: 'floor', 'ceiling' or 'wall'; area: observed inlier area, m^2; bounding: whether it
    bounds the room (walls: cameras in front of it); label: its kind's class (what its observed
    voxels say where the taxonomy has none); color: the median of its observed voxels.
    """

    kind: str
    normal: np.ndarray
    offset: float
    area: float
    bounding: bool = True
    label: int = UNKNOWN_ID
    color: np.ndarray = field(default_factory=lambda: np.full(3, 0.6, np.float32))
    label_share: float = 1.0
    """Fraction of the plane's labelled observed voxels that carry its kind's class (1 without labels)."""
    inliers: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32), repr=False)
    """(K, 3) observed surface points on the plane."""
    assumed: bool = False
    """Not seen: the floor of a room whose floor no camera saw, at the map's floor height (``unseen_floor``)."""

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal - self.offset

    def plane_coordinates(self, points: np.ndarray) -> np.ndarray:
        """(P, 2) coordinates of ``points`` in the plane: (x, y) for floor and ceiling, (along the
        wall, z) for walls."""
        if self.kind != "wall":
            return points[:, :2]
        along = np.array([-self.normal[1], self.normal[0], 0.0])
        return np.stack([points @ along, points[:, 2]], axis=1)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "normal": np.round(self.normal, 4).tolist(), "offset": round(float(self.offset), 4),
                "area_m2": round(float(self.area), 3), "bounding": bool(self.bounding), "label": int(self.label),
                "label_share": round(float(self.label_share), 3), "assumed": bool(self.assumed)}


WALL_PATCH_CLASSES = ("window", "picture")
"""Classes besides the door written as rectangles over a bounding wall where seen on it
(``layout.wall_patches``)."""
WALL_MOUNTED_CLASSES = ("door",) + WALL_PATCH_CLASSES
"""Classes that lie on a wall: seen on a wall plane, they count as wall in its label share
(``layout.min_label_share``)."""
LAYOUT_CLASSES = ("floor", "wall", "ceiling") + WALL_MOUNTED_CLASSES
"""Classes the layout writes, by name; :func:`find_layout` takes their taxonomy ids."""


@dataclass
class WallPatch:
    """A door, window or picture seen on a bounding wall: a rectangle parallel to the wall, ``offset``
    metres in front of it, over ``along`` (first of the wall's :meth:`Plane.plane_coordinates`) and
    from ``bottom`` to ``top`` (map z), labelled ``label`` (the taxonomy id of its class ``name``) and
    colored ``color`` (the median of its seen part)."""

    wall: Plane
    along: tuple[float, float]
    bottom: float
    top: float
    offset: float
    label: int
    color: np.ndarray
    name: str = "door"

    def as_dict(self) -> dict:
        return {"class": self.name, "label": int(self.label), "along": [round(float(a), 3) for a in self.along],
                "bottom": round(float(self.bottom), 3), "top": round(float(self.top), 3),
                "offset": round(float(self.offset), 3), "wall": {"normal": np.round(self.wall.normal, 4).tolist(), "offset": round(float(self.wall.offset), 4)}}


@dataclass
class Layout:
    planes: list[Plane]
    lo: np.ndarray
    """(3,) lower corner of the extent of what the cameras saw, metres."""
    hi: np.ndarray
    patches: list[WallPatch] = field(default_factory=list)
    """Doors, windows and pictures seen on the bounding walls."""
    view_height: float | None = None
    """Median height of the cameras above the floor, metres (None: no floor or no camera positions)."""
    path: np.ndarray | None = None
    """(C, 2) where the cameras were, x and y, metres (None: not known)."""

    @property
    def floor(self) -> Plane | None:
        return next((p for p in self.planes if p.kind == "floor"), None)

    @property
    def ceiling(self) -> Plane | None:
        return next((p for p in self.planes if p.kind == "ceiling"), None)

    @property
    def walls(self) -> list[Plane]:
        return [p for p in self.planes if p.kind == "wall"]


@dataclass
class LayoutReport:
    """What one run of the layout found and did. ``voxels``: (N, 3) int64 global indices of the
    predicted voxels the layout holds after the run (its writes, less what it took back), to
    be passed to the next run as ``previous``; ``voxels_cleared``: earlier writes this run
    returned to unknown because the new layout no longer supports them."""

    layout: Layout | None
    voxels_written: int
    reason: str = ""
    voxels: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    voxels_cleared: int = 0

    def as_dict(self) -> dict:
        return {"voxels_written": int(self.voxels_written), "voxels_cleared": int(self.voxels_cleared),
                "reason": self.reason, "planes": [p.as_dict() for p in self.layout.planes] if self.layout else [],
                "patches": [d.as_dict() for d in self.layout.patches] if self.layout else []}


# ----------------------------------------------------------------------------- surface samples

def _observed_gradient(tsdf: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(X, Y, Z, 3) TSDF gradient per voxel step from observed neighbours only: central
    differences where both neighbours along an axis were observed, one-sided where one was, 0
    where none. Unknown voxels hold +truncation and would bend the normals at a scan's edge."""
    gradient = np.zeros(tsdf.shape + (3,), np.float32)
    for axis in range(3):
        forward = np.zeros_like(tsdf)
        backward = np.zeros_like(tsdf)
        forward_ok = np.zeros_like(observed)
        backward_ok = np.zeros_like(observed)
        head = [slice(None)] * 3
        tail = [slice(None)] * 3
        head[axis], tail[axis] = slice(None, -1), slice(1, None)
        head, tail = tuple(head), tuple(tail)
        forward[head] = tsdf[tail] - tsdf[head]
        forward_ok[head] = observed[tail] & observed[head]
        backward[tail] = forward[head]
        backward_ok[tail] = forward_ok[head]
        both = forward_ok & backward_ok
        gradient[..., axis] = np.where(both, 0.5 * (forward + backward),
                                       np.where(forward_ok, forward, np.where(backward_ok, backward, 0.0)))
    return gradient


def surface_samples(chunk: DenseChunk, surface_band: float = 0.75, max_free_points: int = 200_000) -> dict[str, np.ndarray]:
    """Observed surface voxels of ``chunk``: points on the zero crossing, unit normals (pointing
    to the free side), colors and fused labels (arrays over the surface voxels); and
    ``free_points``, centres of (at most ``max_free_points``) voxels the cameras saw free.

    A voxel is surface when its distance to the zero crossing, the TSDF divided by the length
    of its gradient, is below ``surface_band`` voxels. A projective TSDF seen at a grazing angle
    (a floor, a wall seen along its length) is stretched: its values overstate the distance by
    the gradient's length, and a band on the raw values kept few of such a plane's voxels."""
    tsdf = chunk.tsdf.detach().cpu().numpy().astype(np.float32)
    observed = chunk.observed.detach().cpu().numpy()
    voxel = chunk.voxel_size
    origin = chunk.origin_voxel.cpu().numpy()
    free_index = np.argwhere(chunk.seen_free(0.99 * chunk.truncation).cpu().numpy())
    if len(free_index) > max_free_points:
        free_index = free_index[np.random.default_rng(0).choice(len(free_index), max_free_points, replace=False)]
    free_points = ((free_index + origin + 0.5) * voxel).astype(np.float32)
    candidate = observed & (np.abs(tsdf) < 2.0 * voxel)
    index = np.argwhere(candidate)
    gradient = _observed_gradient(tsdf, observed)[candidate]
    length = np.linalg.norm(gradient, axis=1)
    distance = tsdf[candidate] * voxel / np.maximum(length, 1e-9)  # metres to the zero crossing
    keep = (length > 1e-6) & (np.abs(distance) < surface_band * voxel)
    index, gradient, length, distance = index[keep], gradient[keep], length[keep], distance[keep]
    normals = gradient / length[:, None]
    centers = (index + origin + 0.5) * voxel
    points = centers - distance[:, None] * normals
    colors = chunk.color.detach().cpu().numpy()[tuple(index.T)]
    semantics = chunk.semantics.detach().cpu().numpy()[tuple(index.T)]
    labels = np.where(semantics.max(axis=1) > 0, semantics.argmax(axis=1), UNKNOWN_ID) if len(index) else np.zeros(0)
    return {"points": points.astype(np.float32), "normals": normals.astype(np.float32),
            "colors": colors.astype(np.float32), "labels": labels.astype(np.int64), "free_points": free_points}


def _peaks_1d(hist: np.ndarray, min_value: float) -> np.ndarray:
    smooth = np.convolve(hist, np.ones(3), mode="same")
    left = np.r_[-np.inf, smooth[:-1]]
    right = np.r_[smooth[1:], -np.inf]
    return np.flatnonzero((smooth >= min_value) & (smooth >= left) & (smooth > right))


def _free_behind(plane: Plane, free_points: np.ndarray, voxel: float) -> float:
    """Fraction of the seen-free samples more than two voxels behind ``plane``."""
    if len(free_points) == 0:
        return 0.0
    return float(np.mean(plane.signed_distance(free_points) < -2.0 * voxel))


WEAK_PLANE_SHARE = 1.0 / 16.0
"""A floor or ceiling seen over this share of ``min_plane_area`` (0.03 m^2 by default: a dozen 5 cm
voxels) is taken where walls facing two ways end on it. Room 2400 (a bathroom) showed its floor
over 0.05 m^2 with both walls seen down to it; 31 other generated rooms have no plane between this
share and the quarter used before."""


def _horizontal_plane(points: np.ndarray, normals: np.ndarray, up: bool, config: LayoutConfig, voxel: float,
                      cameras_z: np.ndarray | None, free_points: np.ndarray,
                      wall_ends: np.ndarray | None = None, min_height: float = -np.inf,
                      min_wall_ends: int = 2) -> Plane | None:
    """The floor (``up``) or the ceiling, or None. ``wall_ends``: (W,) heights where walls facing
    different ways end below (floor) or above (ceiling); when given, a plane seen over only
    ``WEAK_PLANE_SHARE`` of ``min_plane_area`` is taken where at least ``min_wall_ends`` of them end
    on it (within 0.25 m: furniture hides the foot of a wall): cues that agree. ``min_height``: no
    plane below it."""
    min_area = config.min_plane_area if wall_ends is None else WEAK_PLANE_SHARE * config.min_plane_area
    cos_tol = math.cos(math.radians(config.angle_tolerance_deg))
    facing = normals[:, 2] > cos_tol if up else normals[:, 2] < -cos_tol
    z = points[facing, 2]
    if z.size == 0:
        return None
    step = 0.5 * voxel
    lo = z.min() - step
    bins = np.floor((z - lo) / step).astype(np.int64)
    hist = np.bincount(bins).astype(np.float64) * voxel * voxel
    peaks = _peaks_1d(hist, min_area)
    heights = lo + (peaks + 0.5) * step
    if wall_ends is not None:
        on_walls = (np.abs(heights[:, None] - np.asarray(wall_ends)[None, :]) <= 0.25).sum(axis=1) >= min_wall_ends
        peaks, heights = peaks[on_walls], heights[on_walls]
    high_enough = heights >= min_height
    peaks, heights = peaks[high_enough], heights[high_enough]
    if cameras_z is not None and cameras_z.size:
        heights_ok = heights < cameras_z.min() if up else heights > cameras_z.max()
        peaks, heights = peaks[heights_ok], heights[heights_ok]
    if peaks.size == 0:
        return None
    normal = np.array([0.0, 0.0, 1.0 if up else -1.0])
    for pick in (np.argsort(heights) if up else np.argsort(-heights)):
        near = np.abs(z - heights[pick]) < voxel
        height = float(np.mean(z[near]))
        plane = Plane("floor" if up else "ceiling", normal, height if up else -height, float(near.sum() * voxel * voxel))
        if _free_behind(plane, free_points, voxel) <= config.max_free_behind:
            return plane
    return None


def _on_plane(plane: Plane, points: np.ndarray, normals: np.ndarray, config: LayoutConfig, distance: float) -> np.ndarray:
    """(P,) bool: the surface samples of ``plane``: within ``distance`` (metres) of it, with a normal
    within ``angle_tolerance_deg`` of its own."""
    cos_tol = math.cos(math.radians(config.angle_tolerance_deg))
    return (np.abs(plane.signed_distance(points)) < distance) & (normals @ plane.normal > cos_tol)


def _room_direction(walls: list[Plane]) -> float:
    """The room's main direction, radians modulo a quarter turn: the mean of the walls' normal
    directions weighted by the square of their seen area (the long walls measure it; a short piece
    fitted a few degrees off barely moves it), angles taken four times over so that walls square or
    parallel to each other agree."""
    angles = np.array([math.atan2(w.normal[1], w.normal[0]) for w in walls])
    weight = np.array([w.area for w in walls]) ** 2
    return float(math.atan2(np.sum(weight * np.sin(4 * angles)), np.sum(weight * np.cos(4 * angles))) / 4)


def _square_to_room(walls: list[Plane], points: np.ndarray, normals: np.ndarray, config: LayoutConfig,
                    voxel: float, max_turn_deg: float = 6.0) -> None:
    """Turn each wall that lies at most ``max_turn_deg`` off square or parallel to the room's main
    direction (:func:`_room_direction`) exactly so, and put it at the back of its samples along the
    turned normal. A wall seen over a short stretch takes its direction from a few noisy samples
    (5 degrees puts its far end 25 cm off over 3 m), and even a long one fitted a degree off puts
    its far end several centimetres off across a room; rooms are built square far more often than
    not. The direction comes from all walls together: squared to the largest wall alone, every
    other wall inherits that one's error."""
    if len(walls) < 2:
        return
    ref_angle = _room_direction(walls)
    for wall in walls:
        angle = math.atan2(wall.normal[1], wall.normal[0])
        turn = (angle - ref_angle + math.pi / 4) % (math.pi / 2) - math.pi / 4
        if abs(turn) > math.radians(max_turn_deg) or abs(turn) < 1e-6:
            continue
        near = _on_plane(wall, points, normals, config, 1.5 * voxel)
        if near.sum() < 10:
            continue
        normal2 = np.array([math.cos(angle - turn), math.sin(angle - turn)])
        offsets = points[near, :2].astype(np.float64) @ normal2
        centre = float(np.median(offsets))
        wall.normal = np.array([normal2[0], normal2[1], 0.0])
        wall.offset = centre + back_of_peak(offsets - centre, voxel)


def _wall_ends(walls: list[Plane], points: np.ndarray, normals: np.ndarray, config: LayoutConfig,
               voxel: float) -> np.ndarray | None:
    """(W, 2) the heights where each wall's observed surface ends below and above (its lowest and
    highest sample), or None unless at least two of the walls face different ways (more than 30
    degrees apart)."""
    ends, directions = [], []
    for wall in walls:
        near = _on_plane(wall, points, normals, config, voxel)
        if near.sum() < 10:
            continue
        ends.append((float(points[near, 2].min()), float(points[near, 2].max())))
        directions.append(wall.normal)
    turned = any(a @ b < math.cos(math.radians(30)) for i, a in enumerate(directions) for b in directions[i + 1:])
    return np.array(ends) if turned else None


def _walls(points: np.ndarray, normals: np.ndarray, config: LayoutConfig, voxel: float, max_walls: int = 16) -> list[Plane]:
    """Vertical planes with at least ``min_plane_area`` of observed surface facing the same way.

    A Hough transform over (azimuth, offset): each surface sample votes for every azimuth bin
    within ``angle_tolerance_deg`` of its normal, at the offset its position has along that
    azimuth. Offsets taken along the sample's own normal would scatter a wall's votes over
    several bins wherever its normals tilt (a wall seen far off or at a grazing angle: a 5
    degree tilt spreads a 3 m wall over 5 voxels), and the wall would not reach the area."""
    sin_tol = math.sin(math.radians(config.angle_tolerance_deg))
    vertical = np.abs(normals[:, 2]) < sin_tol
    p, n = points[vertical, :2].astype(np.float64), normals[vertical, :2].astype(np.float64)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    if len(p) == 0:
        return []
    center = p.mean(axis=0)
    p = p - center  # offsets relative to the samples' centre: the histogram spans the samples, not the map
    theta = np.mod(np.arctan2(n[:, 1], n[:, 0]), 2 * np.pi)
    angle_bins = 180
    t_index = np.floor(theta / (2 * np.pi) * angle_bins).astype(np.int64) % angle_bins
    tol = math.radians(config.angle_tolerance_deg)
    spread = int(math.floor(tol / (2 * np.pi) * angle_bins))
    reach = float(np.linalg.norm(p, axis=1).max()) + voxel
    d_lo = -reach
    area = voxel * voxel
    hist = np.zeros((angle_bins, int(math.ceil(2 * reach / voxel)) + 2))
    for shift in range(-spread, spread + 1):
        bins = (t_index + shift) % angle_bins
        angle = (bins + 0.5) / angle_bins * 2 * np.pi
        offset = p[:, 0] * np.cos(angle) + p[:, 1] * np.sin(angle)
        np.add.at(hist, (bins, np.floor((offset - d_lo) / voxel).astype(np.int64)), area)
    # 3-bin box smoothing in offset: a plane's samples lie within 1.5 voxels of it
    smooth = hist.copy()
    smooth[:, 1:] += hist[:, :-1]
    smooth[:, :-1] += hist[:, 1:]
    remaining = np.ones(len(p), bool)
    walls: list[Plane] = []
    for _ in range(max_walls):
        ti, di = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        if smooth[ti, di] < config.min_plane_area:
            break
        th = (ti + 0.5) / angle_bins * 2 * np.pi
        d0 = d_lo + (di + 0.5) * voxel
        direction = np.array([math.cos(th), math.sin(th)])
        angle_ok = (n @ direction) > math.cos(tol)
        # The peak of a plane is flat over neighbouring bins (in offset: the smoothing; in azimuth:
        # every sample votes within the tolerance), and the first of them may win: centre the
        # azimuth and offset on the samples under the peak before taking inliers.
        under_peak = remaining & angle_ok & (np.abs(p @ direction - d0) < 2.5 * voxel)
        if under_peak.any():
            mean_normal = n[under_peak].mean(axis=0)
            direction = mean_normal / max(float(np.linalg.norm(mean_normal)), 1e-9)
            angle_ok = (n @ direction) > math.cos(tol)
            d0 = float(np.median(p[under_peak] @ direction))
        inliers = remaining & angle_ok & (np.abs(p @ direction - d0) < 1.5 * voxel)
        # suppress this peak's neighbourhood whatever the refinement gives
        t_near = (np.arange(angle_bins)[:, None] - ti + angle_bins // 2) % angle_bins - angle_bins // 2
        d_near = np.arange(smooth.shape[1])[None, :] - di
        smooth[(np.abs(t_near) <= int(math.ceil(tol / (2 * np.pi) * angle_bins))) & (np.abs(d_near) <= 3)] = 0.0
        if inliers.sum() * area < config.min_plane_area:
            continue
        normal2, offset = _line_fit(p[inliers], direction, voxel)
        normal = np.array([normal2[0], normal2[1], 0.0])
        remaining &= ~inliers
        walls.append(Plane("wall", normal, float(offset + normal2 @ center), float(inliers.sum() * area)))
    return walls


def _line_fit(q: np.ndarray, direction: np.ndarray, voxel: float) -> tuple[np.ndarray, float]:
    """(unit normal (2,) facing like ``direction``, offset) of the wall through the (N, 2) samples
    ``q`` of one Hough peak: the direction along which the samples line up best
    (:func:`_sharpest_normal`, searched around a least-squares line's), at the back of the samples
    (:func:`back_of_peak`)."""
    centroid, normal = _least_squares_line(q, direction)
    centred = q - centroid
    normal = _sharpest_normal(centred, normal, voxel)
    residual = centred @ normal
    wall = back_of_peak(residual, voxel)
    back = np.abs(residual - wall) < 0.2 * voxel
    return normal, float(normal @ centroid + (residual[back].mean() if back.any() else wall))


def _sharpest_normal(q: np.ndarray, normal: np.ndarray, voxel: float, span_deg: float = 3.0,
                     step_deg: float = 0.05, max_samples: int = 20_000) -> np.ndarray:
    """The unit normal within ``span_deg`` of ``normal`` (in steps of ``step_deg``) along which the
    offsets of the (N, 2) samples ``q`` pile up highest: the peak of their density (Gaussian kernel
    of a twentieth of a voxel). A least-squares line through a wall and a door standing a few
    centimetres in front of part of it leans towards the door (a door over the middle of a 3.5 m
    wall seen mostly on one side of it: 1.2 degrees, 7 cm across the room); along the true
    direction the wall's samples and the door's each form a sharp peak, along any other both
    spread out. At most ``max_samples`` evenly spaced samples are used: every angle holds an offset
    of each, and a long wall of a map with small voxels has hundreds of thousands of samples, far
    more than the direction needs."""
    from scipy.ndimage import gaussian_filter1d

    q = q[:: max(1, math.ceil(len(q) / max_samples))]
    angles = math.atan2(normal[1], normal[0]) + np.radians(np.arange(-span_deg, span_deg + 0.5 * step_deg, step_deg))
    offsets = q @ np.stack([np.cos(angles), np.sin(angles)])  # (N, angles)
    step = 0.02 * voxel
    bins = np.floor((offsets - offsets.min(axis=0)) / step).astype(np.int64)
    width = int(bins.max()) + 1
    hist = np.bincount((bins + width * np.arange(len(angles))).ravel(), minlength=width * len(angles))
    density = gaussian_filter1d(hist.reshape(len(angles), width).astype(np.float64), 0.05 * voxel / step, axis=1,
                                mode="constant")
    best = angles[int(np.argmax(density.max(axis=1)))]
    return np.array([math.cos(best), math.sin(best)])


def _least_squares_line(q: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centroid (2,), unit normal (2,) facing like ``direction``) of the least-squares line through
    the (N, 2) points ``q``."""
    centroid = q.mean(axis=0)
    _, _, vt = np.linalg.svd(q - centroid, full_matrices=False)
    return centroid, (vt[-1] if vt[-1] @ direction >= 0 else -vt[-1])


def back_of_peak(residual: np.ndarray, voxel: float, min_share: float = 0.3) -> float:
    """Where the wall lies among the signed distances ``residual`` (metres, positive into the
    room) of a wall peak's samples: the backmost mode of their density (Gaussian kernel of a
    tenth of a voxel) holding at least ``min_share`` of the highest mode. Doors, pictures,
    skirting and the backs of cupboards lie a few centimetres in front of the wall they stand on
    and share its peak; a least-squares line through all of them sits in front of the wall and
    makes the voxel layer in front of it look occupied. Nothing lies behind the wall."""
    if residual.size == 0:
        return 0.0
    step = 0.02 * voxel
    lo = float(residual.min()) - 10 * step
    bins = np.floor((residual - lo) / step).astype(np.int64)
    hist = np.bincount(bins, minlength=int(bins.max()) + 11).astype(np.float64)
    sigma = 0.1 * voxel / step
    kernel = np.exp(-0.5 * (np.arange(-int(3 * sigma), int(3 * sigma) + 1) / sigma) ** 2)
    density = np.convolve(hist, kernel, mode="same")
    peak = (density >= np.roll(density, 1)) & (density >= np.roll(density, -1)) & (density >= min_share * density.max())
    return lo + (int(np.flatnonzero(peak)[0]) + 0.5) * step


def _keep_outermost(planes: list[Plane], tolerance: float, voxel: float) -> None:
    """Of bounding walls facing the same way (within ``tolerance`` radians), only the outermost bounds
    the room (the others are fronts of cupboards or shelves standing against it). Which one lies
    behind which is read where they were seen: a wall whose neighbour's samples lie (median) more
    than a voxel behind it is not the outermost, nor is the smaller of two whose samples coincide.
    Two walls a few degrees apart cross somewhere: their offsets alone (at the map's origin) would
    let a short tilted plane through the fronts of what stands along a wall win over the wall."""
    walls = [p for p in planes if p.kind == "wall" and p.bounding]
    inner = []
    for wall in walls:
        for other in walls:
            if other is wall or other.normal @ wall.normal <= math.cos(tolerance):
                continue
            if len(other.inliers):
                behind = float(np.median(wall.signed_distance(other.inliers)))
            else:  # no samples to place it by: its offset along this wall's normal
                behind = other.offset - wall.offset
            if behind < -voxel or (abs(behind) <= voxel and other.area > wall.area):
                inner.append(wall)
                break
    for wall in inner:
        wall.bounding = False


MIN_CAMERA_CLEARANCE = 0.3
"""An unseen floor is assumed at the map's floor height only if every camera stood at least this far
above it (metres): a recording's frame whose origin is its first camera (z = 0 there) is not a
ground robot's map frame, and its floor is not at 0."""


def _assumed_floor(height: float, points: np.ndarray, free_points: np.ndarray, cameras: np.ndarray | None,
                   voxel: float, config: LayoutConfig) -> Plane | None:
    """The floor of a room whose floor no camera saw, at ``height`` (the map's floor height), when
    what was seen allows it: every camera at least :data:`MIN_CAMERA_CLEARANCE` above it, no seen
    surface more than a voxel below it (at most 1 % of the samples: noise) and at most
    ``max_free_behind`` of the seen-free space below it; else None."""
    if cameras is None or cameras[:, 2].min() - height < MIN_CAMERA_CLEARANCE:
        return None
    if np.mean(points[:, 2] < height - voxel) > 0.01:
        return None
    floor = Plane("floor", np.array([0.0, 0.0, 1.0]), float(height), 0.0, assumed=True)
    if _free_behind(floor, free_points, voxel) > config.max_free_behind:
        return None
    return floor


def _describe(plane: Plane, samples: dict, voxel: float, config: LayoutConfig, default_label: int,
              mounted: tuple[int, ...] = ()) -> None:
    """Set the plane's inliers, and its label and color from them. ``mounted``: ids of the classes that
    hang on a wall (doors, windows, pictures); on a wall they count as its own class in its label share."""
    near = _on_plane(plane, samples["points"], samples["normals"], config, voxel)
    plane.inliers = samples["points"][near]
    if near.any():
        plane.color = np.median(samples["colors"][near], axis=0).astype(np.float32)
        labels = samples["labels"][near]
        labels = labels[labels != UNKNOWN_ID]
        if labels.size:
            counts = np.bincount(labels)
            if default_label == UNKNOWN_ID:  # no class for its kind (ScanNet-20's ceiling): what was seen
                plane.label = int(counts.argmax())
                return
            own = [default_label] + (list(mounted) if plane.kind == "wall" else [])
            plane.label_share = float(sum(counts[c] for c in own if c < counts.size) / labels.size)
    # a wall is written as wall where the window or door seen on it outnumbers the wall seen
    # around them: what nobody saw of it is more likely wall than more window
    plane.label = default_label


def find_layout(samples: dict[str, np.ndarray], voxel: float, config: LayoutConfig, camera_path: np.ndarray | None,
                class_ids: dict[str, int] | None = None, floor_height: float | None = None) -> Layout | None:
    """The floor, ceiling and walls of the room in ``samples`` (see :func:`surface_samples`),
    or None without observed surface. ``camera_path``: (T, 3) camera positions in the map
    frame; ``class_ids``: taxonomy ids of the :data:`LAYOUT_CLASSES` (those of 'floor', 'wall',
    'ceiling' label planes whose observed voxels carry no label; doors, windows and pictures are
    found by theirs); ``floor_height``: where the room's floor lies if no camera saw it (``unseen_floor``,
    :func:`_assumed_floor`), None: nowhere known."""
    points, normals = samples["points"], samples["normals"]
    if len(points) == 0:
        return None
    class_ids = class_ids or {}
    cameras = None if camera_path is None or len(camera_path) == 0 else np.asarray(camera_path, np.float64)
    cameras_z = None if cameras is None else cameras[:, 2]
    planes: list[Plane] = []
    free_points = samples.get("free_points", np.zeros((0, 3), np.float32))
    for up in (True, False):
        plane = _horizontal_plane(points, normals, up, config, voxel, cameras_z, free_points)
        if plane is not None:
            planes.append(plane)
    walls = _walls(points, normals, config, voxel)
    _square_to_room(walls, points, normals, config, voxel)
    for wall in walls:
        if cameras is not None:
            front = wall.signed_distance(cameras) > 0.0
            wall.bounding = bool(front.mean() >= config.camera_front_fraction)
        wall.bounding = wall.bounding and _free_behind(wall, free_points, voxel) <= config.max_free_behind
    floor = next((p for p in planes if p.kind == "floor"), None)
    ceiling = next((p for p in planes if p.kind == "ceiling"), None)
    ends = (_wall_ends([w for w in walls if w.bounding], points, normals, config, voxel)
            if floor is None or ceiling is None else None)
    if floor is None and ends is not None:
        # a floor seen too little to stand on its own: where walls facing different ways end on it
        floor = _horizontal_plane(points, normals, True, config, voxel, cameras_z, free_points, ends[:, 0])
        if floor is not None:
            planes.insert(0, floor)
    if floor is None and floor_height is not None and config.unseen_floor:
        floor = _assumed_floor(floor_height, points, free_points, cameras, voxel, config)
        if floor is not None:
            planes.insert(0, floor)
    if ceiling is None and floor is not None and ends is not None:
        # the same for a ceiling seen over a sliver (cameras below it see it at a grazing angle
        # over the tops of the walls) where a wall reaches up to it, at least min_room_height above
        # the floor: walls also end where the view ends, and a shelf's underside below that height
        # is no ceiling; above it, down-facing surface a wall ends on is (one wall suffices: a
        # camera that saw the ceiling over one wall's top saw the others' tops from below)
        ceiling = _horizontal_plane(points, normals, False, config, voxel, cameras_z, free_points, ends[:, 1],
                                    min_height=floor.offset + config.min_room_height, min_wall_ends=1)
        if ceiling is not None:
            planes.append(ceiling)
    planes += walls
    # a window, door or picture seen on a wall is evidence of the wall (a cupboard front is not)
    mounted = tuple(class_ids[name] for name in WALL_MOUNTED_CLASSES if class_ids.get(name, UNKNOWN_ID) != UNKNOWN_ID)
    for plane in planes:
        _describe(plane, samples, voxel, config, class_ids.get(plane.kind, UNKNOWN_ID), mounted)
        if plane.assumed:  # what is known of it: it lies under the cameras
            footprints = np.c_[cameras[:, :2], np.full(len(cameras), plane.offset)].astype(np.float32)
            plane.inliers = np.concatenate([plane.inliers, footprints])
        # where the map's semantics say what the plane is, a wall or a floor mostly labelled as
        # something else (a cupboard front, a table top) bounds nothing
        if plane.label_share < config.min_label_share:
            plane.bounding = False
    # after the label rule: a plane it rejected must not hide the true wall behind or before it
    _keep_outermost(planes, math.radians(config.angle_tolerance_deg), voxel)
    # The room reaches at least as far as what the cameras saw of it: its surface, the space
    # they saw free, and the cameras themselves (they stand inside it).
    seen = [points, free_points] + ([] if cameras is None else [cameras])
    seen = np.concatenate([np.asarray(s, np.float64).reshape(-1, 3) for s in seen])
    widen = np.array([config.margin, config.margin, 0.0])
    lo = seen.min(axis=0) - widen
    hi = seen.max(axis=0) + widen
    floor = next((p for p in planes if p.kind == "floor" and p.bounding), None)
    if floor is not None:
        hi[2] = max(hi[2], floor.offset + config.min_room_height)
        if floor.assumed:  # an unseen floor (and its solid side) lies below everything seen
            lo[2] = min(lo[2], floor.offset - voxel)
    patch_classes = (["door"] if config.door_height > 0 else []) + (list(WALL_PATCH_CLASSES) if config.wall_patches else [])
    patches = [patch for wall in planes if wall.kind == "wall" and wall.bounding
               for name in patch_classes if class_ids.get(name, UNKNOWN_ID) != UNKNOWN_ID
               for patch in _wall_patches(wall, samples, voxel, config, class_ids[name], name, floor)]
    view_height = None if floor is None or cameras is None else float(np.median(cameras[:, 2]) - floor.offset)
    return Layout(planes, lo, hi, patches, view_height, None if cameras is None else cameras[:, :2].copy())


MIN_PATCH_AREA = 0.1
"""Seen area (m^2) of a class's surface on a wall that makes a door, window or picture: a few stray
votes do not."""
PATCH_DEPTH = 0.15
"""How far in front of or behind its wall's plane a door's, window's or picture's surface may lie,
metres (frames stand proud, doors and windows sit in recesses)."""
PATCH_MIN_COS = 0.5
"""A door's, window's or picture's surface sample counts when its normal lies within 60 degrees of its
wall's: the fused normals at its edges and frame tilt well beyond the planes' angle tolerance (a
picture seen 9 voxels wide kept 7 at 12 degrees), and its label already says what it is."""


def _wall_patches(wall: Plane, samples: dict, voxel: float, config: LayoutConfig, class_id: int, name: str,
                  floor: Plane | None) -> list[WallPatch]:
    """The doors, windows or pictures (``name``) seen on ``wall``: its surface samples labelled
    ``class_id`` within ``PATCH_DEPTH`` of it and facing its way (``PATCH_MIN_COS``), split into runs
    along the wall (gaps of up to two voxels close), each with at least ``MIN_PATCH_AREA`` seen. Sideways each covers the columns
    where it was seen (its seen width is all that is known of its width). A door stands on the
    floor (``floor``, else as low as it was seen) and reaches ``door_height`` above it, or as high
    as it was seen; a window or picture spans the heights it was seen at."""
    labels, points, normals = samples["labels"], samples["points"], samples["normals"]
    distance = wall.signed_distance(points)
    seen = (labels == class_id) & (np.abs(distance) <= PATCH_DEPTH) & (normals @ wall.normal > PATCH_MIN_COS)
    if seen.sum() * voxel * voxel < MIN_PATCH_AREA:
        return []
    along = wall.plane_coordinates(points[seen].astype(np.float64))[:, 0]
    z, distance, colors = points[seen, 2], distance[seen], samples["colors"][seen]
    bins = np.floor((along - along.min()) / voxel).astype(np.int64)
    filled = np.bincount(bins) > 0
    # runs of filled columns, closing gaps of up to two empty ones
    starts, run = [], None
    for column in np.flatnonzero(filled):
        if run is None or column - run[1] > 3:
            run = [column, column]
            starts.append(run)
        else:
            run[1] = column
    patches = []
    for first, last in starts:
        member = (bins >= first) & (bins <= last)
        if member.sum() * voxel * voxel < MIN_PATCH_AREA:
            continue
        if name == "door":
            bottom = floor.offset if floor is not None else float(z[member].min())
            top = max(float(z[member].max()), bottom + config.door_height)
        else:
            bottom, top = float(z[member].min()), float(z[member].max())
        patches.append(WallPatch(wall, (float(along[member].min()), float(along[member].max())), bottom, top,
                                 float(np.median(distance[member])), class_id,
                                 np.median(colors[member], axis=0).astype(np.float32), name))
    return patches


# ----------------------------------------------------------------------------- writing

IN_FRONT_NOTHING, IN_FRONT_FREE, IN_FRONT_OBJECT = 0, 1, 2
"""What :func:`_in_front` finds first when walking from the room's surface into the room."""


def _in_front(points: np.ndarray, normals: np.ndarray, chunk: DenseChunk, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """``(found, distance)``, both (P,): walking from each point along its normal into the room (or
    along any direction ``normals`` give), the first voxel the map knows (observed or seen free)
    within ``reach``, int8: ``IN_FRONT_FREE`` when it is free space (the cameras saw the room in
    front of the point, but not the point itself), ``IN_FRONT_OBJECT`` when it is observed surface
    or solid (an object stands in front of the point), ``IN_FRONT_NOTHING`` when the map knows
    nothing there (no camera looked); and how far from the point that voxel lies, metres (float32,
    inf for nothing)."""
    voxel = chunk.voxel_size
    known = chunk.known().cpu().numpy()
    seen_free = chunk.seen_free(0.5 * voxel).cpu().numpy()
    origin = chunk.origin_voxel.cpu().numpy()
    shape = np.array(known.shape)
    decided = np.zeros(len(points), bool)
    found = np.full(len(points), IN_FRONT_NOTHING, np.int8)
    distance = np.full(len(points), np.inf, np.float32)
    for step in range(2, int(math.ceil(reach / voxel)) + 1):
        index = np.floor((points + normals * step * voxel) / voxel).astype(np.int64) - origin
        inside = np.all((index >= 0) & (index < shape), axis=1) & ~decided
        if not inside.any():
            continue
        i = index[inside]
        ijk = (i[:, 0], i[:, 1], i[:, 2])
        is_known = known[ijk]
        rows = np.flatnonzero(inside)
        is_free = seen_free[ijk]
        found[rows[is_known & is_free]] = IN_FRONT_FREE
        found[rows[is_known & ~is_free]] = IN_FRONT_OBJECT
        distance[rows[is_known]] = step * voxel
        decided[rows[is_known]] = True
    return found, distance


PATH_FOOTPRINT = 0.25
"""The floor within this distance (metres, horizontally) of where a camera was is where the person or
robot carrying it stood: nothing stands on it."""


def _near_path(points: np.ndarray, path: np.ndarray | None) -> np.ndarray:
    """(P,) bool: ``points`` lie within ``PATH_FOOTPRINT`` of the camera path, horizontally."""
    from scipy.spatial import cKDTree

    if path is None or len(path) == 0:
        return np.zeros(len(points), bool)
    return cKDTree(path).query(points[:, :2], distance_upper_bound=PATH_FOOTPRINT)[0] <= PATH_FOOTPRINT


WALL_COLUMN_SEEN = 3
"""Observed points of a wall a column of it (one voxel wide) needs before :func:`_above_seen_column`
raises the wall above them (a stray point is no wall seen there)."""


def _above_seen_column(plane: Plane, points: np.ndarray, voxel: float) -> np.ndarray:
    """(P,) bool: ``points`` on wall ``plane`` lie above the highest of its observed inliers in their
    column (a voxel wide along the wall), in columns where at least ``WALL_COLUMN_SEEN`` of them were seen."""
    if len(plane.inliers) == 0:
        return np.zeros(len(points), bool)
    seen = plane.plane_coordinates(plane.inliers.astype(np.float64))
    query = plane.plane_coordinates(points)
    first = math.floor(min(seen[:, 0].min(), query[:, 0].min()) / voxel)
    columns = np.floor(seen[:, 0] / voxel).astype(np.int64) - first
    count = np.bincount(columns)
    top = np.full(len(count), np.inf)
    np.minimum.at(top, columns, -seen[:, 1])  # the highest seen point, negated
    top = -top
    q = np.floor(query[:, 0] / voxel).astype(np.int64) - first
    inside = (q >= 0) & (q < len(count))
    above = np.zeros(len(points), bool)
    qi = q[inside]
    above[inside] = (count[qi] >= WALL_COLUMN_SEEN) & (query[inside, 1] > top[qi])
    return above


def _near_observed_part(plane: Plane, points: np.ndarray, voxel: float, max_extension: float) -> np.ndarray:
    """(P,) bool: ``points`` lie within ``max_extension`` (in the plane) of the plane's observed inliers."""
    from scipy.ndimage import distance_transform_edt

    if len(plane.inliers) == 0:
        return np.zeros(len(points), bool)
    seen = plane.plane_coordinates(plane.inliers.astype(np.float64))
    query = plane.plane_coordinates(points)
    lo = seen.min(axis=0) - max_extension - voxel
    shape = np.ceil((seen.max(axis=0) + max_extension + voxel - lo) / voxel).astype(np.int64) + 1
    grid = np.ones(shape, bool)
    cells = np.floor((seen - lo) / voxel).astype(np.int64)
    grid[cells[:, 0], cells[:, 1]] = False
    distance = distance_transform_edt(grid) * voxel
    q = np.floor((query - lo) / voxel).astype(np.int64)
    inside = np.all((q >= 0) & (q < shape), axis=1)
    near = np.zeros(len(points), bool)
    near[inside] = distance[q[inside, 0], q[inside, 1]] <= max_extension
    return near


def room_shortfall(layout: Layout, min_walls: int, floorless: bool = False) -> str:
    """What ``layout`` lacks to show a room ('' when it shows one): a bounding floor (seen, or
    assumed: :func:`_assumed_floor`) and ``min_walls`` bounding walls facing different ways (more
    than 30 degrees apart); with ``floorless`` a room without a floor, which then needs at least
    two walls (a corner). ``min_walls`` 0 accepts any layout."""
    if min_walls == 0:
        return ""
    floor = layout.floor
    has_floor = floor is not None and floor.bounding
    if not has_floor and not floorless:
        return f"no room: needs a floor and {min_walls} wall(s) facing different ways"
    needed = min_walls if has_floor else max(min_walls, 2)
    directions: list[np.ndarray] = []
    for wall in layout.walls:
        if wall.bounding and all(wall.normal @ d < math.cos(math.radians(30)) for d in directions):
            directions.append(wall.normal)
    if len(directions) >= needed:
        return ""
    if has_floor:
        return f"no room: needs {needed} wall(s) facing different ways besides the floor"
    return f"no room: no floor, and a room without one needs {needed} walls facing different ways"


def is_room(layout: Layout, min_walls: int, floorless: bool = False) -> bool:
    """Whether ``layout`` shows a room (:func:`room_shortfall`)."""
    return not room_shortfall(layout, min_walls, floorless)


def encloses(walls: list[Plane]) -> bool:
    """Whether ``walls`` close the room on every side in the horizontal plane: their normals,
    facing into the room, leave no gap of half a turn or more between neighbouring directions."""
    if len(walls) < 3:
        return False
    angles = np.sort([math.atan2(w.normal[1], w.normal[0]) for w in walls])
    gaps = np.diff(np.r_[angles, angles[0] + 2 * math.pi])
    return bool(gaps.max() < math.pi - math.radians(10.0))


def _bounded_on_every_side(plane: Plane, bounding: list[Plane]) -> bool:
    """The room's other planes bound ``plane``'s extent everywhere: the floor and ceiling lie
    between walls that close the room; a wall also needs the floor and the ceiling."""
    walls = [p for p in bounding if p.kind == "wall"]
    if not encloses(walls):
        return False
    kinds = {p.kind for p in bounding}
    return plane.kind != "wall" or {"floor", "ceiling"} <= kinds


def on_face_outside(tsdf: np.ndarray, voxel: float, tolerance: float) -> np.ndarray:
    """``tsdf`` (metres, the room's signed distance at voxel centres) with the voxels whose centre
    lies half a voxel, to within ``tolerance`` voxels, in front of the surface moved to just over
    half a voxel (``0.51 * voxel``). Such a surface lies on the face between the voxel and the
    one behind it, up to the precision of the fitted plane: it occupies the voxel on its solid
    side (centre inside), and the voxel in front only touches it. Left as it is, the map's rule
    for occupancy (``tsdf <= voxel / 2``) would mark both, a layer one voxel too thick wherever a
    floor or a wall lies on the grid, depending on which side of the face the fit happened to
    fall. The mesh moves by at most ``tolerance / 2`` voxels; other voxels are unchanged."""
    out = np.array(tsdf, np.float32, copy=True)
    if tolerance <= 0:
        return out
    touching = np.isfinite(out) & (out > (0.5 - tolerance) * voxel) & (out <= 0.51 * voxel)
    out[touching] = np.float32(0.51 * voxel)
    return out


def room_prediction(layout: Layout, chunk: DenseChunk, config: LayoutConfig, num_classes: int,
                    owned: np.ndarray | None = None):
    """Dense (tsdf, color, semantics_probs, confidence) over ``chunk`` for the room's unseen
    surface: NaN TSDF where nothing is to be written. Returns None when the layout is not a
    room (:func:`is_room`). ``owned``: (X, Y, Z) bool, predicted voxels the layout wrote
    earlier, which it may write again (other predicted voxels are the network's)."""
    bounding = [p for p in layout.planes if p.bounding]
    if not bounding or not is_room(layout, config.min_walls, config.floorless):
        return None
    voxel = chunk.voxel_size
    centers = chunk.voxel_centers().cpu().numpy().astype(np.float64)
    shape = centers.shape[:3]
    flat = centers.reshape(-1, 3)
    sdf = np.full(len(flat), np.inf, np.float32)  # the room's signed distance: min over its planes
    nearest = np.zeros(len(flat), np.int64)
    for k, plane in enumerate(bounding):
        distance = plane.signed_distance(flat).astype(np.float32)
        closer = distance < sdf
        sdf[closer], nearest[closer] = distance[closer], k
    # what each voxel is written as: its nearest plane, or a door, window or picture on it (index into `patches`)
    patches = [d for d in layout.patches if any(p is d.wall for p in bounding)]
    patch_of = np.full(len(flat), -1, np.int32) if patches else None
    for j, patch in enumerate(patches):
        # the patch's rectangle replaces its wall there, at the patch's distance in front of it
        k = next(i for i, p in enumerate(bounding) if p is patch.wall)
        index = np.flatnonzero(nearest == k)
        along = patch.wall.plane_coordinates(flat[index])[:, 0]
        z = flat[index, 2]
        on = ((along >= patch.along[0] - 0.5 * voxel) & (along <= patch.along[1] + 0.5 * voxel)
              & (z >= patch.bottom - 0.5 * voxel) & (z <= patch.top + 0.5 * voxel))
        index = index[on]
        sdf[index] -= patch.offset
        patch_of[index] = j
    inside_box = np.all((flat >= layout.lo - 0.5 * voxel) & (flat <= layout.hi + 0.5 * voxel), axis=1)
    band = config.band * voxel
    candidate = inside_box & (np.abs(sdf) <= band)
    # The min over the planes keeps a wall's surface between the floor and the ceiling (where
    # found) and inside the other walls.
    observed = chunk.observed.cpu().numpy().reshape(-1)
    predicted = chunk.predicted.cpu().numpy().reshape(-1)
    free = chunk.free.cpu().numpy().reshape(-1) if chunk.free is not None else np.zeros_like(observed)
    if config.over_network:
        predicted = np.zeros_like(predicted)  # within the band the room's surface replaces the network's
    elif owned is not None:
        predicted = predicted & ~owned.reshape(-1)
    write = candidate & ~observed & ~predicted & ~(free & (sdf < band))
    for k, plane in enumerate(bounding):
        if _bounded_on_every_side(plane, bounding):
            continue  # the room itself bounds how far the plane reaches
        index = np.flatnonzero(write & (nearest == k))
        if len(index):
            write[index[~_near_observed_part(plane, flat[index], voxel, config.max_extension)]] = False
    solid_only = np.zeros(len(flat), bool)
    if write.any():
        index = np.flatnonzero(write)
        normals = np.stack([p.normal for p in bounding])[nearest[index]]
        in_front, distance = _in_front(flat[index], normals, chunk, config.reach)
        # an assumed floor was seen nowhere, nor the room just above it: whatever stands on it
        # (a sofa nobody saw) would be drawn through by a surface, so only its solid side is marked
        assumed = np.array([p.assumed for p in bounding])[nearest[index]]
        keep = (in_front == IN_FRONT_FREE) & ~assumed
        if config.floor_view_clearance > 0 and layout.view_height is not None:
            # the floor under space the cameras only looked across, not down into: a bed may stand there
            floor = np.array([p.kind == "floor" for p in bounding])[nearest[index]]
            unlooked = floor & (distance > layout.view_height - config.floor_view_clearance)
            # except where whoever carried the camera stood
            unlooked[unlooked] = ~_near_path(flat[index[unlooked]], layout.path)
            keep &= ~unlooked
        if config.walls_up:
            # a wall seen in its column goes on up to the ceiling where nothing known stands in front of it
            rise = ~keep & (in_front == IN_FRONT_NOTHING)
            above = np.zeros(len(index), bool)
            for k, plane in enumerate(bounding):
                rows = np.flatnonzero(rise & (nearest[index] == k))
                if plane.kind == "wall" and len(rows):
                    above[rows] = _above_seen_column(plane, flat[index[rows]], voxel)
            rows = np.flatnonzero(above)
            if len(rows):
                # nor where the cameras saw behind it: the plane ends there (the top of a row of
                # cupboard fronts taken for a wall, a doorway, an opening into the next room)
                behind, _ = _in_front(flat[index[rows]], -normals[rows], chunk, config.reach)
                keep[rows[behind == IN_FRONT_NOTHING]] = True
        if config.solid_side:
            # unseen in front: only the voxels the surface passes through (as the map's occupancy
            # rule and a face-touching plane count them) and those behind it, all written with a
            # negative distance, so that no sign change among them draws a surface nobody saw
            solid = ~keep & (sdf[index] <= (0.5 - config.face_tolerance) * voxel)
            solid_only[index[solid]] = True
            keep |= solid
        write[index[~keep]] = False
    if not write.any():
        return None
    tsdf = np.full(len(flat), np.nan, np.float32)
    tsdf[write] = np.clip(sdf[write], -chunk.truncation, chunk.truncation)
    tsdf[solid_only] = np.minimum(tsdf[solid_only], -0.01 * voxel)
    tsdf[write] = on_face_outside(tsdf[write], voxel, config.face_tolerance)
    index = np.flatnonzero(write)
    labels = np.array([p.label for p in bounding], np.int64)[nearest[index]]
    colors = np.stack([p.color for p in bounding]).astype(np.float32)[nearest[index]]
    if patch_of is not None:
        on = patch_of[index]
        labels[on >= 0] = np.array([d.label for d in patches], np.int64)[on[on >= 0]]
        colors[on >= 0] = np.stack([d.color for d in patches]).astype(np.float32)[on[on >= 0]]
    color = np.zeros((len(flat), 3), np.float32)
    color[index] = colors
    probs = np.zeros((len(flat), num_classes), np.float32)
    probs[index, labels] = 1.0
    confidence = np.zeros(len(flat), np.float32)
    confidence[write] = config.confidence
    return (torch.from_numpy(tsdf.reshape(shape)), torch.from_numpy(color.reshape(shape + (3,))),
            torch.from_numpy(probs.reshape(shape + (num_classes,))), torch.from_numpy(confidence.reshape(shape)))


def complete_layout(chunk_map, config: LayoutConfig, camera_path: np.ndarray | None,
                    class_ids: dict[str, int] | None = None, previous: np.ndarray | None = None,
                    floor_height: float | None = None) -> LayoutReport:
    """Find the room's layout in ``chunk_map`` and write its unseen surface. ``chunk_map``: anything
    with ``allocated_block_coords()``, ``block_size``, ``voxel_size``, ``extract_chunk``, ``write_predictions``
    and ``clear_predictions`` (a ``SemanticTSDF``, or the pipeline's view of it that takes the map
    lock for each call).

    ``previous``: the voxels an earlier run wrote (its report's ``voxels``). The layout is
    revised, not piled up: those the new layout no longer writes (its planes moved, a room is no
    longer found) go back to unknown, and the rest may be rewritten. A run that does not look
    at the map (off, empty, too large) keeps them as they are. ``floor_height``: the map's floor
    height (``planning.floor_height``), where a room whose floor no camera saw stands
    (``unseen_floor``); None: nowhere known."""
    config = config.validate()
    kept = np.zeros((0, 3), np.int64) if previous is None else np.asarray(previous, np.int64).reshape(-1, 3)
    if not config.enabled:
        return LayoutReport(None, 0, "off", kept)
    blocks = chunk_map.allocated_block_coords().cpu().numpy()
    if len(blocks) == 0:
        return LayoutReport(None, 0, "empty map", kept)
    block = chunk_map.block_size
    # the room may reach beyond what the cameras saw (``margin`` sideways, ``min_room_height``
    # above the floor, which lies at the bottom of the map): beyond the allocated blocks too
    # (and down to the map's floor height, where an unseen floor may lie)
    block_m = chunk_map.voxel_size * block
    side = int(math.ceil(config.margin / block_m))
    bottom = int(blocks[:, 2].min())
    if floor_height is not None and config.unseen_floor:
        bottom = min(bottom, int(math.floor(floor_height / block_m)) - 1)
    up = max(0, int(math.ceil(config.min_room_height / block_m)) + 1 - int(blocks[:, 2].max() - bottom + 1))
    lo_v = np.array([blocks[:, 0].min() - side, blocks[:, 1].min() - side, bottom]) * block
    size = (blocks.max(axis=0) + 1 + np.array([side, side, up])) * block - lo_v
    if int(np.prod(size)) > config.max_voxels:
        return LayoutReport(None, 0, f"map box of {int(np.prod(size))} voxels exceeds layout.max_voxels", kept)
    chunk = chunk_map.extract_chunk(torch.as_tensor(lo_v, dtype=torch.int64), tuple(int(s) for s in size))
    # earlier writes inside the box are revised; any outside it (evicted since) are kept
    inside = np.all((kept >= lo_v) & (kept < lo_v + size), axis=1)
    owned = np.zeros(tuple(int(s) for s in size), bool)
    owned[tuple((kept[inside] - lo_v).T)] = True
    outside = kept[~inside]
    samples = surface_samples(chunk)
    layout = find_layout(samples, chunk.voxel_size, config, camera_path, class_ids, floor_height)
    prediction = None
    if layout is None:
        reason = "no observed surface"
    elif shortfall := room_shortfall(layout, config.min_walls, config.floorless):
        reason = shortfall
    else:
        prediction = room_prediction(layout, chunk, config, chunk.semantics.shape[-1], owned)
        reason = "" if prediction is not None else "nothing to write"
    written = 0
    writes = np.zeros_like(owned)
    if prediction is not None:
        tsdf, color, probs, confidence = prediction
        writes = torch.isfinite(tsdf).cpu().numpy()
        written = int(chunk_map.write_predictions(chunk.origin_voxel, tsdf, color, probs, confidence))
    stale = owned & ~writes
    cleared = int(chunk_map.clear_predictions(torch.as_tensor(np.argwhere(stale) + lo_v))) if stale.any() else 0
    voxels = np.concatenate([outside, np.argwhere(writes) + lo_v]).astype(np.int64)
    return LayoutReport(layout, written, reason, voxels, cleared)
