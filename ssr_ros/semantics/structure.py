"""Structural labels without a model: floor, ceiling and walls from gravity-aligned planes.

A user with only an RGB-D camera still gets the room's structure. :class:`StructuralLabeller`
labels the depth image of each frame, given the frame's pose in a gravity-aligned frame (z up,
the map frame of :class:`ssr_ros.pipeline.MappingPipeline`):

1. every second pixel is back-projected into the aligned frame, with a surface normal from
   its neighbours (``normal_step`` pixels away);
2. a running plane model is updated with the frame's points, each weighted by the area it
   covers (m^2): a height histogram of up-facing points (the floor is the lowest large one
   below the cameras with little vertical surface seen below it: a bed or table top taken for
   the floor before the floor itself was seen would keep its floor votes), one of down-facing
   points (the ceiling is the highest large one above
   the cameras), and a histogram of vertical surfaces over (normal azimuth, offset
   ``n . p``) with the lowest and highest point and the extent along the plane of each cell
   (pixels whose normal is taken across a crease, such as a room corner, do not vote). Each
   wall direction's row is the mean of its normals. A vertical plane is a wall when it covers
   ``min_wall_area`` and spans ``min_wall_height`` (three quarters of it where it reaches 1.4 m
   above the floor, higher than furniture's tops: a wall seen only above the furniture in front
   of it) and is the outermost such plane along its
   normal (normals face the cameras, so furniture in front of a wall lies at a larger offset),
   or reaches up to the ceiling. Along each wall direction the outermost vertical surface also
   bounds the room when the cameras saw it only low down or in pieces (it stands on the floor,
   reaches at least half as high as anything seen and no floor was seen behind it: an xy grid
   of the floor seen). A wall bounds the room: a plane with much of the floor, or vertical
   surface over its own extent (an xy grid of vertical surface), seen behind it is not one, nor
   is a plane seen over a narrow strip only unless it is parallel or square to a wider wall.
   A wall lies at the back of its offset peak (things close in front of it pull the peak);
3. each pixel on one of these planes (within ``tolerance`` plus 1 % of its depth, its normal
   agreeing within ``max_normal_angle_deg``) gets the plane's class with confidence 1;
   every other pixel with depth gets ``others`` (``otherfurniture`` by default) with
   confidence ``others_confidence``, so a few structural votes outweigh it where a plane is
   confirmed only after some frames.

Labels are votes for the map's class evidence like any 2D segmentation; the pipeline uses
the labeller only for frames that carry no semantics of their own (``semantics.structure``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.taxonomy import UNKNOWN_ID, ClassTaxonomy

STRUCTURE_MODES = ("auto", "on", "off")


@dataclass
class StructureConfig:
    """The structural labeller (floor / wall / ceiling from planes; no model needed)."""

    mode: str = param(
        "auto",
        "'auto': label floor, walls and ceiling from gravity-aligned planes in frames that carry no "
        "semantics while no other semantic source is configured or has been seen; 'on': in every "
        "frame without semantics; 'off': never",
        choices=list(STRUCTURE_MODES),
    )
    others: str = param(
        "otherfurniture",
        "class of depth pixels on no structural plane ('unknown' = no vote)",
    )
    others_confidence: float = param(
        0.3, "vote strength of the 'others' class relative to a structural vote", low=0.0, high=1.0
    )
    tolerance: float = param(
        0.05, "distance of a point from a plane that still belongs to it (plus 1 % of its depth), metres",
        low=0.005, high=1.0,
    )
    max_normal_angle_deg: float = param(
        30.0, "largest angle between a pixel's normal and its plane's normal", low=1.0, high=89.0
    )
    min_floor_area: float = param(0.5, "area a horizontal plane needs to be floor or ceiling, m^2", low=0.0, high=1000.0)
    min_wall_area: float = param(0.8, "area a vertical plane needs to be a wall, m^2", low=0.0, high=1000.0)
    min_wall_height: float = param(
        1.2, "vertical extent a plane needs to be a wall (capped at 60 % of the floor-ceiling height), metres",
        low=0.0, high=20.0,
    )
    normal_step: int = param(4, "pixel distance of the neighbours a normal is computed from", low=1, high=32)
    refresh_frames: int = param(
        5, "the wall planes are re-derived every this many frames (1: every frame, a little better walls for "
        "more CPU per frame)", low=1, high=1000)

    def validate(self) -> "StructureConfig":
        return validate_config(self)


STRUCTURAL_CLASSES = ("floor", "wall", "ceiling")


@dataclass
class _Histogram1D:
    """Area (m^2) per height bin, over a fixed range."""

    bin_size: float = 0.02
    low: float = -50.0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(5000))

    def add(self, z: np.ndarray, area: np.ndarray) -> None:
        index = np.clip(((z - self.low) / self.bin_size).astype(np.int64), 0, len(self.counts) - 1)
        self.counts += np.bincount(index, weights=area, minlength=len(self.counts))

    def peaks(self, min_area: float) -> np.ndarray:
        """Heights (bin centres, weighted over +-2 bins) of local maxima holding min_area within +-2 bins."""
        smooth = np.convolve(self.counts, np.ones(5), mode="same")
        is_peak = (smooth >= np.roll(smooth, 1)) & (smooth > np.roll(smooth, -1)) & (smooth >= max(min_area, 1e-9))
        out = []
        for index in np.nonzero(is_peak)[0]:
            lo, hi = max(index - 2, 0), min(index + 3, len(self.counts))
            weights = self.counts[lo:hi]
            centres = self.low + (np.arange(lo, hi) + 0.5) * self.bin_size
            out.append(float((weights * centres).sum() / weights.sum()))
        return np.asarray(out)


class StructuralLabeller:
    """Per-frame floor / wall / ceiling labels from a running gravity-aligned plane model.

    ``label(depth, intrinsics, T_aligned_cam)`` returns ``(labels (H, W) int64, confidence
    (H, W) float32)``; the frame's points also update the model. Thread-compatible (one
    caller at a time).
    """

    AZIMUTH_BINS = 180  # 2 degrees
    HOUGH_REACH = 4  # azimuth bins a point votes for on either side of its normal's
    MAX_WALL_POINTS = 20000  # vertical points per frame that vote
    OFFSET_BIN = 0.05  # metres
    OFFSET_LOW = -30.0
    WALL_BACK_FRACTION = 0.3  # of the largest offset bin of a wall's peak: the outermost such bin is the wall
    GRID_WIDTH = 160  # the plane model samples pixels on a grid about this wide (stride 2 at least)
    LABEL_WIDTH = 320  # labels are computed on a grid at most this wide, then repeated
    FLOOR_CELL = 0.1  # metres: the xy grid recording where floor was seen
    FLOOR_MARGIN = 0.2  # metres: floor further than this beyond a plane is behind it
    MAX_FLOOR_BEYOND = 0.2  # m^2: floor seen behind an outermost plane that keeps it from being a wall
    PIECE_TOP_FRACTION = 0.5  # an outermost piece ending lower, as a fraction of the top of what was seen, is furniture
    MIN_WALL_WIDTH = 0.5  # metres along the plane: a plane seen narrower than this ...
    SQUARE_DEG = 5.0  # ... must be parallel or square to a wider wall within this, degrees
    SURFACE_MARGIN = 0.3  # metres: vertical surface further than this behind a plane is behind it ...
    MAX_SURFACE_BEHIND_FRACTION = 0.25  # ... and in more than this fraction of the plane's own area rules it out
    MAX_FLOOR_BEHIND_FRACTION = 0.2  # of all the floor seen: more behind a plane keeps it from being a wall
    WALL_FOOT = 0.3  # metres: an outermost plane whose lowest point is this close to the floor stands on it
    MIN_PIECE_HEIGHT = 0.5  # metres: vertical extent of such a plane
    ABOVE_FURNITURE = 1.4  # metres above the floor: higher than counters, desks, tables, sofas and beds reach ...
    LOW_SEEN_FRACTION = 0.75  # ... where a plane seen over this fraction of min_wall_height is tall enough
    MIN_FACING = 0.25  # a pixel's area grows as 1 / cos(view angle), at most 4x
    COS_CREASE = float(np.cos(np.radians(45.0)))  # steps to a pixel's two neighbours turn less than this ...
    CREASE_SPAN_FRACTION = 40  # ... with the neighbours 1/40 of the image width away (4 px at 160 px)
    FLOOR_BELOW_MARGIN = 0.15  # metres: vertical surface lower than this under a floor candidate ...
    MAX_VERTICAL_BELOW_FLOOR = 0.25  # m^2: ... in more than this area rules it out

    def __init__(self, config: StructureConfig, taxonomy: ClassTaxonomy) -> None:
        self.config = config.validate()
        try:
            self.floor_id = taxonomy.id_of("floor")
            self.wall_id = taxonomy.id_of("wall")
            self.ceiling_id = taxonomy.id_of("ceiling") if "ceiling" in taxonomy.names else UNKNOWN_ID
            self.others_id = UNKNOWN_ID if config.others == "unknown" else taxonomy.id_of(config.others)
        except ConfigError as error:
            raise ConfigError(f"semantics.structure needs a taxonomy with 'floor' and 'wall': {error}") from error
        self.reset()

    def reset(self) -> None:
        """Forget the plane model."""
        self._up = _Histogram1D()
        self._down = _Histogram1D()
        self._vertical = _Histogram1D()  # area of vertical surface by height
        offsets = int(round(-2 * self.OFFSET_LOW / self.OFFSET_BIN))
        self._wall_area = np.zeros((self.AZIMUTH_BINS, offsets))
        self._wall_zmin = np.full((self.AZIMUTH_BINS, offsets), np.inf)
        self._wall_zmax = np.full((self.AZIMUTH_BINS, offsets), -np.inf)
        # extent along the plane (coordinate ``t = -sin(a) x + cos(a) y``) of its points
        self._wall_tmin = np.full((self.AZIMUTH_BINS, offsets), np.inf)
        self._wall_tmax = np.full((self.AZIMUTH_BINS, offsets), -np.inf)
        self._camera_z = (np.inf, -np.inf)
        self.frames = 0
        self._azimuth_area = np.zeros(self.AZIMUTH_BINS)
        self._walls: np.ndarray | None = None
        self._walls_frame = -1
        cells = int(round(-2 * self.OFFSET_LOW / self.FLOOR_CELL))
        self._floor_cell_area = np.zeros((cells, cells))  # up-facing area well below the cameras, per xy cell
        self._floor_cell_zmin = np.full((cells, cells), np.inf)  # and its lowest point
        self._vertical_cell_area = np.zeros((cells, cells))  # vertical surface seen, per xy cell

    # ------------------------------------------------------------------ the plane model
    @property
    def floor_height(self) -> float | None:
        """Height of the floor (aligned frame, metres), None until one is found below the cameras."""
        peaks = self._up.peaks(self.config.min_floor_area)
        peaks = peaks[peaks < self._camera_z[0] - 0.3]
        # walls and the sides of furniture stand on the floor: a plane with much vertical
        # surface seen below it (a bed top, a table top before any floor was seen) is not it
        below = np.cumsum(self._vertical.counts)
        index = np.clip(((peaks - self.FLOOR_BELOW_MARGIN - self._vertical.low) / self._vertical.bin_size).astype(np.int64),
                        0, len(below) - 1)
        peaks = peaks[below[index] <= self.MAX_VERTICAL_BELOW_FLOOR]
        return float(peaks.min()) if peaks.size else None

    @property
    def ceiling_height(self) -> float | None:
        """Height of the ceiling, None until one is found above the cameras (or no ceiling class)."""
        peaks = self._down.peaks(self.config.min_floor_area)
        peaks = peaks[peaks > self._camera_z[1] + 0.1]
        return float(peaks.max()) if peaks.size else None

    def wall_planes(self) -> np.ndarray:
        """(N, 2) float64 walls as (azimuth of the inward normal (radians), offset ``n . p`` (m))."""
        if self._walls is None or self.frames - self._walls_frame >= self.config.refresh_frames:
            self._walls, self._walls_frame = self._find_walls(), self.frames
        return self._walls

    def _find_walls(self) -> np.ndarray:
        from scipy.ndimage import maximum_filter, uniform_filter

        cfg = self.config
        pooled = uniform_filter(self._wall_area, size=(1, 3), mode="constant") * 3  # +-1 offset bin
        zmin = -maximum_filter(-self._wall_zmin, size=(1, 3), mode="constant", cval=-np.inf)
        zmax = maximum_filter(self._wall_zmax, size=(1, 3), mode="constant", cval=-np.inf)
        tmin = -maximum_filter(-self._wall_tmin, size=(1, 3), mode="constant", cval=-np.inf)
        tmax = maximum_filter(self._wall_tmax, size=(1, 3), mode="constant", cval=-np.inf)
        floor, ceiling = self.floor_height, self.ceiling_height
        min_height = cfg.min_wall_height
        if floor is not None and ceiling is not None:
            min_height = min(min_height, 0.6 * (ceiling - floor))
        # wall directions: peaks of the area of vertical surface by normal azimuth (no Hough
        # spreading), at least 20 degrees apart; only their rows of the Hough histogram count,
        # which keeps the planes that tilted Hough lines through one wall would suggest out
        directions = self._azimuth_area
        smooth = sum(np.roll(directions, k) for k in (-1, 0, 1))
        dominant = (smooth >= maximum_filter(smooth, size=11, mode="wrap")) & (smooth >= max(cfg.min_wall_area, 1e-9))
        rows = np.zeros_like(pooled, dtype=bool)
        for a_bin in np.nonzero(dominant)[0]:
            rows[self._mean_direction(a_bin)] = True
        peak = rows & (pooled >= maximum_filter(pooled, size=(1, 5), mode="constant"))
        tall = zmax - zmin >= min_height
        if floor is not None:
            # a wall seen only above the furniture standing in front of it: a shorter vertical
            # extent counts where it reaches higher than furniture's working surfaces do
            tall |= (zmax - zmin >= self.LOW_SEEN_FRACTION * min_height) & (zmax - floor >= self.ABOVE_FURNITURE)
        candidate = peak & (pooled >= max(cfg.min_wall_area, 1e-9)) & tall
        if floor is not None:
            # a wall bounds the room: a plane with much of the floor seen behind it (the side of
            # a bed or a sofa standing in the room, a line through several objects) is not one
            floor_cells = self._floor_cells(floor)
            limit = max(self.MAX_FLOOR_BEYOND, self.MAX_FLOOR_BEHIND_FRACTION * float(floor_cells[2].sum()))
            for a_bin, o_bin in zip(*np.nonzero(candidate)):
                offset = self._bin_offset(o_bin)
                if self._area_beyond(floor_cells, self._bin_azimuth(a_bin), offset, self.FLOOR_MARGIN) > limit:
                    candidate[a_bin, o_bin] = False
        # nothing in a room lies behind its walls: a smaller patch facing the same way further
        # out than a candidate (the wall beside a tall bookshelf) is the wall
        behind = peak & (pooled >= 0.25 * max(cfg.min_wall_area, 1e-9)) & ~candidate
        for a_bin, o_bin in zip(*np.nonzero(candidate)):
            further = np.nonzero(behind[a_bin, : max(o_bin - 2, 0)])[0]
            candidate[a_bin, further] = True
        # the room's layout: along each wall direction the outermost vertical surface bounds the
        # room (nothing stands behind a wall) even where the cameras saw it only low down or in
        # pieces, if it stands on the floor and no floor was seen beyond it
        # and it reaches at least half as high above the floor as anything was seen (a desk or a
        # low cabinet seen where the wall behind it never was ends well below that)
        if floor is not None:
            top = self._top_seen()
            for a_bin in np.nonzero(rows.any(axis=1))[0]:
                pieces = np.nonzero(behind[a_bin] | candidate[a_bin])[0]
                if not len(pieces) or candidate[a_bin, pieces[0]]:
                    continue
                o_bin = pieces[0]
                stands = (zmin[a_bin, o_bin] <= floor + self.WALL_FOOT
                          and zmax[a_bin, o_bin] - zmin[a_bin, o_bin] >= self.MIN_PIECE_HEIGHT
                          and zmax[a_bin, o_bin] - floor >= self.PIECE_TOP_FRACTION * (top - floor))
                offset = self._bin_offset(o_bin)
                if stands and (self._area_beyond(floor_cells, self._bin_azimuth(a_bin), offset, self.FLOOR_MARGIN)
                               < self.MAX_FLOOR_BEYOND):
                    candidate[a_bin, o_bin] = True
        # nothing was seen behind a wall: a plane with vertical surface seen well behind it, over
        # its own extent (the wall above and beside a cabinet, the far wall past a line through
        # a bookshelf and a curtain), is furniture or no plane at all
        vertical_cells = self._cells(self._vertical_cell_area, self._vertical_cell_area > 0)
        for a_bin, o_bin in zip(*np.nonzero(candidate)):
            offset = self._bin_offset(o_bin)
            beyond = self._area_beyond(vertical_cells, self._bin_azimuth(a_bin), offset, self.SURFACE_MARGIN,
                                       (tmin[a_bin, o_bin], tmax[a_bin, o_bin]))
            if beyond > self.MAX_SURFACE_BEHIND_FRACTION * pooled[a_bin, o_bin]:
                candidate[a_bin, o_bin] = False
        a_bins, o_bins = np.nonzero(candidate)
        if not len(a_bins):
            return np.zeros((0, 2))
        azimuth = self._bin_azimuth(a_bins)
        offset = self._bin_offset(o_bins)
        keep = np.zeros(len(a_bins), dtype=bool)
        for i in range(len(a_bins)):  # outermost along its normal among planes facing the same way
            same = np.abs(np.angle(np.exp(1j * (azimuth - azimuth[i])))) < np.radians(10.0)
            keep[i] = offset[i] <= offset[same].min() + 0.15
            if ceiling is not None:
                keep[i] |= zmax[a_bins[i], o_bins[i]] >= ceiling - 0.25
        # a plane seen over a narrow strip only (the edges of a bookshelf and a curtain lined up
        # by chance) is a wall only where it lines up with a wall seen wide: parallel or square to it
        wide = (tmax - tmin)[a_bins, o_bins] >= self.MIN_WALL_WIDTH
        if np.any(keep & wide):
            turn = np.angle(np.exp(4j * (azimuth[:, None] - azimuth[keep & wide][None, :]))) / 4
            square = np.any(np.abs(turn) < np.radians(self.SQUARE_DEG), axis=1)
            keep &= wide | square
        else:
            keep &= wide
        # the wall is the back of its peak: curtains, pictures and cabinets close in front of it
        # pull the peak of the pooled area forward, never behind it
        for i in np.nonzero(keep)[0]:
            lo = max(o_bins[i] - 2, 0)
            raw = self._wall_area[a_bins[i], lo: o_bins[i] + 3]
            back = raw[: o_bins[i] - lo + 1] >= self.WALL_BACK_FRACTION * raw.max()
            outer = int(np.argmax(back)) if back.any() else o_bins[i] - lo
            offset[i] = self._bin_offset(lo + outer)
        return np.stack([azimuth[keep], offset[keep]], axis=1)

    def _top_seen(self) -> float:
        """Height (m) below which 99 % of the vertical surface seen lies."""
        cumulative = np.cumsum(self._vertical.counts)
        if cumulative[-1] <= 0:
            return -np.inf
        index = int(np.searchsorted(cumulative, 0.99 * cumulative[-1]))
        return self._vertical.low + (index + 1) * self._vertical.bin_size

    def _mean_direction(self, a_bin: int) -> int:
        """The azimuth bin of the area-weighted mean normal within HOUGH_REACH bins of ``a_bin``.

        The wall's own normals say where it faces; the Hough row with the largest peak nearby
        may instead be a tilted line through several pieces (two cabinet fronts at different
        depths along one wall, a cabinet front and the wall beside it).
        """
        near = (a_bin + np.arange(-self.HOUGH_REACH, self.HOUGH_REACH + 1)) % self.AZIMUTH_BINS
        weights = self._azimuth_area[near]
        if weights.sum() <= 0:
            return int(a_bin)
        mean = np.angle(np.sum(weights * np.exp(1j * self._bin_azimuth(near))))
        return int(np.round((mean + np.pi) / (2 * np.pi) * self.AZIMUTH_BINS)) % self.AZIMUTH_BINS

    def _cells(self, area: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centres x, y (m) and areas of the xy grid cells in ``mask``."""
        i, j = np.nonzero(mask)
        return (self.OFFSET_LOW + (i + 0.5) * self.FLOOR_CELL, self.OFFSET_LOW + (j + 0.5) * self.FLOOR_CELL,
                area[i, j])

    def _floor_cells(self, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The xy cells where the floor at height ``floor`` was seen (area m^2 summed over frames)."""
        return self._cells(self._floor_cell_area,
                           (self._floor_cell_area > 0) & (np.abs(self._floor_cell_zmin - floor) < 0.1))

    def _area_beyond(self, cells, azimuth: float, offset: float, margin: float,
                     along: tuple[float, float] = (-np.inf, np.inf)) -> float:
        """Area of ``cells`` more than ``margin`` beyond the vertical plane (azimuth of its inward
        normal, offset ``n . p``), between ``along`` (coordinate ``-sin(a) x + cos(a) y``) along it."""
        x, y, area = cells
        c, s = np.cos(azimuth), np.sin(azimuth)
        t = -s * x + c * y
        beyond = (c * x + s * y < offset - margin) & (t >= along[0]) & (t <= along[1])
        return float(area[beyond].sum())

    def _bin_azimuth(self, bins: np.ndarray) -> np.ndarray:
        """Azimuth (radians) of bin centres; the axes (0, 90, 180, 270 degrees) are centres."""
        return -np.pi + np.asarray(bins) * 2 * np.pi / self.AZIMUTH_BINS

    def _bin_offset(self, bins):
        """Offset ``n . p`` (m) of offset-bin centres."""
        return self.OFFSET_LOW + (np.asarray(bins) + 0.5) * self.OFFSET_BIN

    # ------------------------------------------------------------------ per frame
    def _points_normals(self, depth: np.ndarray, intrinsics: CameraIntrinsics, T: np.ndarray, stride: int,
                        with_normals: bool = True):
        """Aligned-frame points (h, w, 3), unit normals (h, w, 3) (NaN where unknown), depth (h, w),
        pixel area (h, w) m^2 and creases (h, w) bool (a normal across a crease) on the stride grid."""
        d = np.asarray(depth, dtype=np.float32)[::stride, ::stride]
        d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
        h, w = d.shape
        v, u = np.meshgrid(np.arange(h, dtype=np.float32) * stride, np.arange(w, dtype=np.float32) * stride, indexing="ij")
        cam = np.stack(intrinsics.unproject(u, v, d), axis=-1)
        R, t = T[:3, :3].astype(np.float32), T[:3, 3].astype(np.float32)
        world = cam @ R.T + t
        s = max(1, self.config.normal_step // stride)
        normals = np.full_like(world, np.nan) if with_normals else None
        creases = np.zeros(d.shape, dtype=bool)
        if with_normals and h > 2 * s and w > 2 * s:
            c = cam[s:-s, s:-s]
            right, left = cam[s:-s, 2 * s:], cam[s:-s, : -2 * s]
            below, above = cam[2 * s:, s:-s], cam[: -2 * s, s:-s]
            n = np.cross(below - above, right - left)  # faces the camera (optical frame)
            z = c[..., 2]
            tol = 0.05 * z + 0.02
            smooth = (z > 0) & (right[..., 2] > 0) & (left[..., 2] > 0) & (below[..., 2] > 0) & (above[..., 2] > 0)
            # no depth edge between the neighbours: on a plane the inverse depth is affine in the
            # pixel coordinates, so the centre's lies midway between its neighbours' (a plane seen
            # at a grazing angle, whose depth changes fast across the image, passes too)
            with np.errstate(divide="ignore", invalid="ignore"):
                ic, ir, il, ib, ia = (1.0 / q[..., 2] for q in (c, right, left, below, above))
                limit = tol / np.maximum(z, 1e-6)  # relative depth tolerance
                smooth &= (np.abs(0.5 * (ir + il) - ic) * z < limit) & (np.abs(0.5 * (ib + ia) - ic) * z < limit)
                # a crease: on a plane the steps to either neighbour are collinear; at the corner
                # of two walls they are not, and the normal across it faces neither wall. The
                # steps span a fixed fraction of the image (at least the normal's), so that
                # depth noise on a high-resolution image does not look like a crease
                k = max(s, int(round(w / self.CREASE_SPAN_FRACTION)))
                flat = np.ones((h, w), dtype=bool)
                if h > 2 * k and w > 2 * k:
                    middle = cam[k:-k, k:-k]
                    inner = np.ones((h - 2 * k, w - 2 * k), dtype=bool)
                    for after, before in ((cam[k:-k, 2 * k:] - middle, middle - cam[k:-k, : -2 * k]),
                                          (cam[2 * k:, k:-k] - middle, middle - cam[: -2 * k, k:-k])):
                        cos = np.sum(after * before, axis=-1) / (np.linalg.norm(after, axis=-1) * np.linalg.norm(before, axis=-1))
                        inner &= cos > self.COS_CREASE
                    flat[k:-k, k:-k] = inner
                flat = flat[s:-s, s:-s]
            length = np.linalg.norm(n, axis=-1)
            smooth &= length > 1e-12
            n = n / np.where(length > 0, length, 1.0)[..., None]
            normals[s:-s, s:-s] = np.where(smooth[..., None], n @ R.T, np.nan)
            creases[s:-s, s:-s] = smooth & ~flat
            # a surface seen at a grazing angle (the floor far ahead) covers more per pixel: the
            # cosine between the viewing ray and the normal, both in the optical frame
            ray = c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-9)
            facing = np.ones_like(d)
            facing[s:-s, s:-s] = np.where(smooth, np.clip(np.abs(np.sum(ray * n, axis=-1)), self.MIN_FACING, 1.0), 1.0)
        else:
            facing = 1.0
        area = (d * stride) ** 2 / (intrinsics.fx * intrinsics.fy) / facing
        return world, normals, d, area, creases

    def update(self, world: np.ndarray, normals: np.ndarray, area: np.ndarray, camera_z: float) -> None:
        """Add one frame's points (aligned frame) to the plane model."""
        self.frames += 1
        self._camera_z = (min(self._camera_z[0], camera_z), max(self._camera_z[1], camera_z))
        nz = normals[..., 2]
        valid = np.isfinite(nz)
        cos_tilt = np.cos(np.radians(self.config.max_normal_angle_deg))
        up = valid & (nz > cos_tilt)
        down = valid & (nz < -cos_tilt)
        self._up.add(world[up][:, 2], area[up])
        low = up & (world[..., 2] < camera_z - 0.5)
        if low.any():
            cells = np.clip(((world[low][:, :2] - self.OFFSET_LOW) / self.FLOOR_CELL).astype(np.int64), 0,
                            self._floor_cell_area.shape[0] - 1)
            np.add.at(self._floor_cell_area, (cells[:, 0], cells[:, 1]), area[low])
            np.minimum.at(self._floor_cell_zmin, (cells[:, 0], cells[:, 1]), world[low][:, 2])
        self._down.add(world[down][:, 2], area[down])
        vertical = valid & (np.abs(nz) < np.sin(np.radians(self.config.max_normal_angle_deg)))
        n, p, a = normals[vertical], world[vertical], area[vertical]
        if not len(p):
            return
        self._vertical.add(p[:, 2], a)
        cells = np.clip(((p[:, :2] - self.OFFSET_LOW) / self.FLOOR_CELL).astype(np.int64), 0,
                        self._vertical_cell_area.shape[0] - 1)
        np.add.at(self._vertical_cell_area, (cells[:, 0], cells[:, 1]), a)
        if len(p) > self.MAX_WALL_POINTS:  # an even subsample; the area it stands for is kept
            pick = np.linspace(0, len(p) - 1, self.MAX_WALL_POINTS).astype(np.int64)
            a = a[pick] * (len(p) / self.MAX_WALL_POINTS)
            n, p = n[pick], p[pick]
        # Hough voting: each point votes for the planes through it whose normal is within
        # HOUGH_REACH azimuth bins of its own, so noisy normals still meet at the true plane
        centre = np.round((np.arctan2(n[:, 1], n[:, 0]) + np.pi) / (2 * np.pi) * self.AZIMUTH_BINS).astype(np.int64)
        shape = self._wall_area.shape
        self._azimuth_area += np.bincount(centre % self.AZIMUTH_BINS, weights=a, minlength=self.AZIMUTH_BINS)
        for shift in range(-self.HOUGH_REACH, self.HOUGH_REACH + 1):
            a_bin = (centre + shift) % self.AZIMUTH_BINS
            theta = self._bin_azimuth(a_bin)
            offset = np.cos(theta) * p[:, 0] + np.sin(theta) * p[:, 1]
            along = -np.sin(theta) * p[:, 0] + np.cos(theta) * p[:, 1]
            o_bin = np.clip(((offset - self.OFFSET_LOW) / self.OFFSET_BIN).astype(np.int64), 0, shape[1] - 1)
            flat = a_bin * shape[1] + o_bin
            self._wall_area += np.bincount(flat, weights=a, minlength=self._wall_area.size).reshape(shape)
            # lowest and highest point per cell (sorted reduction: np.minimum.at is slow)
            order = np.argsort(flat, kind="stable")
            cells, z, t = flat[order], p[order, 2], along[order]
            starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
            cells = cells[starts]
            zmin, zmax = self._wall_zmin.reshape(-1), self._wall_zmax.reshape(-1)
            zmin[cells] = np.minimum(zmin[cells], np.minimum.reduceat(z, starts))
            zmax[cells] = np.maximum(zmax[cells], np.maximum.reduceat(z, starts))
            tmin, tmax = self._wall_tmin.reshape(-1), self._wall_tmax.reshape(-1)
            tmin[cells] = np.minimum(tmin[cells], np.minimum.reduceat(t, starts))
            tmax[cells] = np.maximum(tmax[cells], np.maximum.reduceat(t, starts))

    def label(self, depth: np.ndarray, intrinsics: CameraIntrinsics, T_aligned_cam: np.ndarray,
              update: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) int64 labels and (H, W) float32 confidences of a depth image.

        depth: (H, W) metres, 0 / NaN = invalid; T_aligned_cam: (4, 4) camera-to-aligned pose
        (z up). With ``update`` the frame first joins the plane model.
        """
        width_px = int(np.asarray(depth).shape[1])
        fine = max(1, width_px // self.LABEL_WIDTH)  # the labelling grid; the model's is a multiple of it
        stride = max(2, fine * max(1, round(width_px / self.GRID_WIDTH / fine)))
        T = np.asarray(T_aligned_cam, dtype=np.float64)
        world, normals, d, area, creases = self._points_normals(depth, intrinsics, T, stride)
        if update:  # a vertical normal taken across a crease faces neither of its walls: no wall vote
            vertical = np.abs(normals[..., 2]) < np.sin(np.radians(self.config.max_normal_angle_deg))
            self.update(world, np.where((creases & vertical)[..., None], np.nan, normals), area, float(T[2, 3]))
        # label pixels on a grid at most LABEL_WIDTH wide (each its own point, the normal of its
        # grid cell), then repeat the labels to the full image
        height, width = np.asarray(depth).shape
        if fine != stride:
            factor = stride // fine
            normals = np.repeat(np.repeat(normals, factor, 0), factor, 1)
            world, _, d, _, _ = self._points_normals(depth, intrinsics, T, fine, with_normals=False)
            normals = normals[: d.shape[0], : d.shape[1]]
        cfg = self.config
        tol = cfg.tolerance + 0.01 * d
        nz = normals[..., 2]
        known = np.isfinite(nz)
        cos_tilt = np.cos(np.radians(cfg.max_normal_angle_deg))
        labels = np.where(d > 0, self.others_id, UNKNOWN_ID).astype(np.int64)
        others_confidence = cfg.others_confidence if self.others_id != UNKNOWN_ID else 0.0
        confidence = np.where(d > 0, others_confidence, 0.0).astype(np.float32)
        z = world[..., 2]

        def assign(mask: np.ndarray, class_id: int) -> None:
            labels[mask] = class_id
            confidence[mask] = 1.0

        # pixels without a normal (depth edges, the image border) are judged by distance alone
        vertical = (~known | (np.abs(nz) < np.sin(np.radians(cfg.max_normal_angle_deg)))) & (d > 0)
        walls = self.wall_planes()
        if len(walls) and vertical.any():
            p, n = world[vertical], normals[vertical]
            azimuth = np.arctan2(n[:, 1], n[:, 0])
            unknown = ~np.isfinite(azimuth)
            on_wall = np.zeros(len(p), dtype=bool)
            for theta, offset in walls:
                facing = unknown | (np.abs(np.angle(np.exp(1j * (azimuth - theta)))) < np.radians(cfg.max_normal_angle_deg))
                distance = np.abs(np.cos(theta) * p[:, 0] + np.sin(theta) * p[:, 1] - offset)
                on_wall |= facing & (distance < tol[vertical] + 0.5 * self.OFFSET_BIN)
            hit = np.zeros_like(vertical)
            hit[vertical] = on_wall
            assign(hit, self.wall_id)
        floor = self.floor_height
        if floor is not None:
            # within half the tolerance the normal is not asked (it blurs where objects stand)
            near = np.abs(z - floor)
            assign((d > 0) & (near < tol) & (~known | (nz > cos_tilt) | (near < 0.5 * tol)), self.floor_id)
        ceiling = self.ceiling_height
        if ceiling is not None:  # without a ceiling class (ScanNet-20) the ceiling gets no vote
            on_ceiling = (d > 0) & (np.abs(z - ceiling) < tol) & (~known | (nz < -cos_tilt))
            labels[on_ceiling] = self.ceiling_id
            confidence[on_ceiling] = 1.0 if self.ceiling_id != UNKNOWN_ID else 0.0
        if fine > 1:
            labels = np.repeat(np.repeat(labels, fine, 0), fine, 1)[:height, :width]
            confidence = np.repeat(np.repeat(confidence, fine, 0), fine, 1)[:height, :width]
            raw = np.asarray(depth)
            invalid = ~(np.isfinite(raw) & (raw > 0))
            labels[invalid] = UNKNOWN_ID
            confidence[invalid] = 0.0
        return labels, confidence

    def summary(self) -> dict:
        """JSON-friendly state of the plane model."""
        return {
            "frames": self.frames,
            "floor_height_m": self.floor_height,
            "ceiling_height_m": self.ceiling_height,
            "walls": int(len(self.wall_planes())),
        }
