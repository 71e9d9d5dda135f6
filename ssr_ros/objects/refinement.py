"""Object refinement: the map stage that completes instances from the shape prior.

:func:`refine_objects` finds the map's instances (:mod:`~ssr_ros.objects.instances`; connected
components of one class that lie close and together fit the class's largest size are joined
first, :func:`join_pieces`: one bathtub seen as three pieces is completed once), completes
and aligns each one the prior knows (:mod:`~ssr_ros.objects.alignment`) and writes the posed
shape into the map's predicted layer through ``write_predictions``, with these guarantees:

- observed voxels are never written (the map refuses, and they are left out beforehand);
- no object surface or interior goes into space a camera saw free (seen-free cells, or
  observed voxels more than one voxel in front of a surface);
- nothing goes below the floor, and no object voxel lies behind an observed surface of something else (a wall, another object)
  as seen from the object's observed centre: such voxels are dropped, so a shape fitted a
  little too large does not poke through the wall behind it;
- predicted voxels the completion network left inside the object's box that the completed
  shape says are empty are set empty (the object replaces the network's blob there);
- a completed shape that would float, its bottom (legs thinner than a cell of its grid included)
  more than ``max_support_gap`` above the floor and above every observed surface of something
  else under it (:func:`supported`), is not written at all: objects stand on something.

Written voxels get the instance's class (one-hot), its mean observed color and the
confidence ``instance confidence x fit``. By default only the completed shape's inside is
written (``surface: false``, :func:`inside_only`): solid predicted voxels that fill the object
and carry its class, with a surface drawn only where they meet space already known in front of
them; ``surface: true`` also writes the band outside the shape, so the completed object's own
surface is meshed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssr_ros.config import param, validate_config
from ssr_ros.objects.alignment import AlignedShape, AlignmentConfig, align_object, footprint_sides, footprint_yaw
from ssr_ros.objects.instances import (Instance, InstanceConfig, MapRegion, find_instances, from_fused_ids, instance_mask,
                                      map_region)
from ssr_ros.objects.object_list import ObjectRecord
from ssr_ros.objects.shape_classes import CLASS_TEMPLATES, class_size_range
from ssr_ros.objects.weights import ShapePrior

WALL_CLASSES = ("wall", "door", "window", "curtain", "shower curtain")
"""Classes whose observed surfaces count as walls for the alignment's wall term."""


@dataclass
class ObjectRefinementConfig:
    """The object refinement stage."""

    type: str = param("shape_prior", "object stage: 'shape_prior' (complete and align instances) or 'none' (list them only)",
                      choices=["shape_prior", "none"])
    weights: str = param("", "shape prior weights (.pt), several separated by commas: every one completes each object and "
                         "the shape that fits its observation best is kept; empty = the packaged "
                         "models/shape_prior_small.pt, models/shape_prior_rooms2.pt and models/shape_prior_rooms.pt")
    device: str = param("cpu", "torch device of the prior")
    min_confidence: float = param(0.3, "instances below this confidence are listed but not refined", low=0.0, high=1.0)
    min_observed_voxels: int = param(10, "instances with fewer observed surface voxels are listed but not refined", low=3, high=1_000_000)
    min_fit: float = param(0.5, "a completed shape is written only when this share of the observed surface lies on it", low=0.0, high=1.0)
    max_distance: float = param(0.3, "completed voxels farther than this from the instance's observed surface are not "
                                "written, metres; 0 = the whole completed shape", low=0.0, high=10.0)
    max_distance_fraction: float = param(0.75, "writing reaches at least this part of the posed object's largest "
                                         "extent from its observed surface (large objects seen from one side); "
                                         "0 = max_distance alone", low=0.0, high=2.0)
    surface: bool = param(False, "also write the band outside each completed shape, so its own surface is meshed; "
                          "off: only its inside, as solid predicted voxels that draw a surface only against space "
                          "known in front of them (the map's mesh keeps its precision)")
    max_fill: float = param(2.0, "solid voxels a completed shape may write, as a multiple of its observed surface "
                            "voxels x its largest extent in voxels (the most a box seen from one side could hold): "
                            "of a shape grown beyond that, only the part nearest its observed surface is written; "
                            "0 = no limit", low=0.0, high=100.0)
    max_support_gap: float = param(
        0.3, "a completed shape is written only when its bottom lies at most this far above its support: the floor, "
        "or the observed top of something else (not a wall, not of its class) under its footprint and below its "
        "bottom (a lamp on a desk); the bottom counts legs thinner than a cell of the shape's grid "
        "(AlignedShape.bottom); a shape that would float (a small thing on a desk completed as the prior's nightstand, "
        "the desk top under it unseen) is listed as refined but not written, metres; 0 = no check", low=0.0, high=10.0)
    join_gap: float = param(
        0.3, "connected components of one class closer than this (metres) whose union still fits within the "
        "largest size of the class (width, depth, height of its templates, plus a voxel each side) are one "
        "object found in pieces (a bathtub seen as three): they are completed once, as one instance; 0 = never "
        "(instances from fused 2D instance ids are never joined)", low=0.0, high=5.0)
    context_margin: float = param(0.3, "seen-free space and other surfaces this far around an instance take part in its fit, metres", low=0.0, high=5.0)
    period_s: float = param(0.0, "node: seconds between object refinement runs, in a thread of their own (the "
                            "object list on ~/objects); 0 = off (ssr refine-objects runs it offline)", low=0.0, high=86400.0)
    instances: InstanceConfig = field(default_factory=InstanceConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)

    def validate(self) -> "ObjectRefinementConfig":
        validate_config(self)
        self.instances.validate()
        self.alignment.validate()
        return self


@dataclass
class RefinementResult:
    objects: list[ObjectRecord]
    shapes: dict[int, AlignedShape]
    written_voxels: int
    region: MapRegion
    instances: list[Instance]

    def counts(self) -> dict[str, int]:
        """Instances found, refined, and predicted voxels written (for summaries)."""
        return {"instances": len(self.objects), "refined": sum(o.refined for o in self.objects),
                "voxels_written": self.written_voxels}


def _box_indices(region: MapRegion, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Region index range [a, b) covering the world box [lo, hi], clipped to the region."""
    a = np.floor(lo / region.voxel_size).astype(np.int64) - region.origin_voxel
    b = np.ceil(hi / region.voxel_size).astype(np.int64) - region.origin_voxel
    return np.clip(a, 0, region.shape), np.clip(b, 0, region.shape)


def voxels_in(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Region indices (N, 3) of the set voxels of ``mask`` within the index range [a, b) (e.g. :func:`context_box`)."""
    sub = mask[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    return np.argwhere(sub) + a


def behind_other_surface(region: MapRegion, blocking: np.ndarray, start: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """(N,) bool: the segment from world point ``start`` to the centre of each region voxel
    (N, 3) crosses a ``blocking`` voxel (region-shaped bool) before its last voxel."""
    if len(voxels) == 0:
        return np.zeros(0, dtype=bool)
    ends = region.centers(voxels)
    vec = ends - start
    length = np.linalg.norm(vec, axis=1)
    steps = int(np.ceil(length.max() / (0.5 * region.voxel_size))) + 1
    t = np.linspace(0.0, 1.0, steps)
    pts = start + vec[:, None, :] * t[None, :, None]
    near_end = (length[:, None] * (1.0 - t[None, :])) < 1.0 * region.voxel_size
    idx = np.floor(pts / region.voxel_size).astype(np.int64) - region.origin_voxel
    inside = np.all((idx >= 0) & (idx < region.shape), axis=2)
    idx = np.clip(idx, 0, np.array(region.shape) - 1)
    hit = blocking[idx[..., 0], idx[..., 1], idx[..., 2]] & inside & ~near_end
    return hit.any(axis=1)


def shape_write(region: MapRegion, inst: Instance, ids: np.ndarray, shape: AlignedShape, floor_class: int | None,
                floor_z: float, max_distance: float = 0.0) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """(origin_voxel (3,), tsdf (X, Y, Z) metres with NaN = leave, solid voxel count, cleared
    voxel count) of the completed shape over its box, following the module's rules; nothing
    goes below the floor at ``floor_z``."""
    a, b = _box_indices(region, *shape.bounds())
    if np.any(b <= a):
        return None
    size = b - a
    axes = [np.arange(a[i], b[i]) for i in range(3)]
    voxels = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    sdf = shape.sdf_at(region.centers(voxels))
    trunc = region.truncation
    observed = region.observed[tuple(voxels.T)]
    free = region.free[tuple(voxels.T)]
    solid = np.isfinite(sdf) & (sdf < trunc) & ~observed & ~free
    solid &= region.centers(voxels)[:, 2] > floor_z
    blocking = region.surface & region.observed & (ids != inst.instance_id)
    if floor_class is not None:
        blocking &= region.label != floor_class
    start = region.centers(inst.voxels[inst.observed] if inst.observed.any() else inst.voxels).mean(axis=0)
    cand = np.nonzero(solid)[0]
    solid[cand[behind_other_surface(region, blocking, start, voxels[cand])]] = False
    if max_distance > 0 and inst.observed.any():
        from scipy.spatial import cKDTree

        cand = np.nonzero(solid)[0]
        dist, _ = cKDTree(region.centers(inst.voxels[inst.observed])).query(region.centers(voxels[cand]))
        solid[cand[dist > max_distance]] = False
    lo_box, hi_box = inst.bbox_min - region.voxel_size, inst.bbox_max + region.voxel_size
    centers = region.centers(voxels)
    in_box = np.all((centers > lo_box) & (centers < hi_box), axis=1)
    clear = region.predicted[tuple(voxels.T)] & ~solid & in_box & (np.isinf(sdf) | (sdf >= trunc)) & ~observed
    tsdf = np.full(len(voxels), np.nan, dtype=np.float32)
    tsdf[solid] = np.clip(sdf[solid], -trunc, trunc)
    tsdf[clear] = trunc
    return (region.origin_voxel + a, tsdf.reshape(tuple(size)), int(solid.sum()), int(clear.sum()))


def prior_paths(config: ObjectRefinementConfig) -> list[str | Path]:
    """The weights files ``config.weights`` names (comma-separated; empty = the packaged three)."""
    from ssr_ros.objects.weights import default_shape_prior_set

    paths: list[str | Path] = [p.strip() for p in config.weights.split(",") if p.strip()]
    return paths or list(default_shape_prior_set())


def configured_prior(config: ObjectRefinementConfig) -> ShapePrior | None:
    """The shape priors ``config`` asks for (:func:`prior_paths`), on ``device``, or None with
    ``type: none`` (instances listed only); a bad file is refused here."""
    if config.type != "shape_prior":
        return None
    from ssr_ros.objects.weights import load_shape_priors

    return load_shape_priors(prior_paths(config), config.device)


def inside_only(tsdf: np.ndarray, voxel_size: float, truncation: float) -> np.ndarray:
    """A shape write (``tsdf`` metres; NaN = leave, ``+truncation`` = clear) with only the shape's
    inside kept: voxels whose centre lies inside or less than half a voxel outside the surface
    (what counts as occupied) get a negative distance (at most -1 % of a voxel), the band farther
    outside is left alone (NaN); clears stay."""
    out = np.array(tsdf, dtype=np.float32, copy=True)
    band = np.isfinite(out) & (out < truncation)
    inside = band & (out < voxel_size / 2)
    out[inside] = np.minimum(out[inside], -0.01 * voxel_size)
    out[band & ~inside] = np.nan
    return out


def _record(inst: Instance, shape: AlignedShape | None, refined: bool, written: int) -> ObjectRecord:
    if shape is not None and refined:
        centre, extents, _ = shape.box()
        top, low = centre[2] + extents[2] / 2, min(centre[2] - extents[2] / 2, shape.bottom())  # down its legs
        centre, extents = np.array([centre[0], centre[1], (top + low) / 2]), np.array([extents[0], extents[1], top - low])
        return ObjectRecord(inst.instance_id, inst.class_id, inst.class_name, tuple(centre), float(np.remainder(shape.yaw + np.pi, 2 * np.pi) - np.pi),
                            tuple(extents), inst.confidence, True, shape.fit, len(inst.voxels), int(inst.observed.sum()), written)
    return ObjectRecord(inst.instance_id, inst.class_id, inst.class_name, tuple((inst.bbox_min + inst.bbox_max) / 2), 0.0,
                        tuple(inst.bbox_max - inst.bbox_min), inst.confidence, False, shape.fit if shape else 0.0,
                        len(inst.voxels), int(inst.observed.sum()), 0)


def refine_objects(tsdf_map, class_names: list[str], prior: ShapePrior | None, config: ObjectRefinementConfig | None = None,
                   write: bool = True, region: MapRegion | None = None,
                   camera_path: np.ndarray | None = None, list_only_classes: tuple[str, ...] = (),
                   floor_height: float = 0.0) -> RefinementResult:
    """Find, complete, align and write back the objects of ``tsdf_map`` (a SemanticTSDF);
    ``prior`` None (or ``type: none``) lists the instances only. ``region``: the map's
    :func:`map_region` taken beforehand (e.g. under a lock); ``tsdf_map`` is then only written to
    (its ``write_predictions``). ``camera_path``: (K, 3) camera positions of the fused frames,
    map frame, for the alignment's view term (None: the seen-free space near each object
    stands in for them). ``list_only_classes``: instances of these classes are listed, never
    refined (e.g. the structural labeller's catch-all class, which names no kind of object).
    ``floor_height``: where no floor is observed, objects stand on a floor at this height (map
    frame, metres: the planner's ``planning.floor_height``; REP 105, a ground robot's map frame
    lies on the ground), or on the bottom of the lowest observed surface where that lies lower."""
    config = (config or ObjectRefinementConfig()).validate()
    region = region if region is not None else map_region(tsdf_map, config.instances)
    instances = object_instances(region, class_names, config.instances, config.join_gap)
    ids = instance_mask(region, instances)
    floor_class = class_names.index("floor") if "floor" in class_names else None
    floor_z = region.floor_height(floor_class, floor_height)
    observed_surface = region.surface & region.observed
    wall_ids = [class_names.index(n) for n in WALL_CLASSES if n in class_names]
    wall_label = np.isin(region.label, wall_ids)
    tops_not_walls = observed_surface & up_facing(region) & ~wall_label  # what an object can stand on
    records, shapes, total = [], {}, 0
    for inst in instances:
        shape = None
        refined = False
        written = 0
        usable = (prior is not None and config.type != "none" and inst.class_name not in list_only_classes
                  and inst.confidence >= config.min_confidence
                  and int(inst.observed.sum()) >= config.min_observed_voxels and prior.class_index(inst.class_name) is not None)
        if usable:
            a, b = context_box(region, inst, prior.extents[inst.class_name], config.context_margin)
            surface = region.centers(inst.voxels[inst.observed])
            free = region.centers(voxels_in(region.free, a, b))
            others = observed_surface & (ids != inst.instance_id)
            if floor_class is not None:
                others &= region.label != floor_class
            blockers = region.centers(voxels_in(others, a, b))
            walls = region.centers(voxels_in(observed_surface & wall_label, a, b))
            # each instance draws its own sample of the free space: its fit does not depend on the instances before it
            shape = align_object(prior, inst.class_name, surface, free, blockers, floor_z, region.voxel_size, config.alignment,
                                 np.random.default_rng(config.alignment.sample_seed), viewpoints=camera_path, walls=walls)
            if shape is not None and shape.fit >= config.min_fit:
                refined = True
                shapes[inst.instance_id] = shape
                if write:
                    _, box_extents, _ = shape.box()
                    largest_extent = float(np.max(box_extents))
                    reach = config.max_distance
                    if reach > 0 and config.max_distance_fraction > 0:
                        reach = max(reach, config.max_distance_fraction * largest_extent)
                    plan = shape_write(region, inst, ids, shape, floor_class, floor_z, reach)
                    if plan is not None and config.max_support_gap > 0:
                        bottom = shape.bottom()
                        support = tops_not_walls & (ids != inst.instance_id) & (region.label != inst.class_id)
                        if not supported(region, support, plan[0], plan[1], bottom, floor_z, config.max_support_gap):
                            plan = None
                    if plan is not None:
                        origin, tsdf, _, _ = plan
                        if not config.surface:
                            tsdf = inside_only(tsdf, region.voxel_size, region.truncation)
                        tsdf = within_fill(region, inst, origin, tsdf, largest_extent, config.max_fill)
                        written = _write(tsdf_map, region, inst, origin, tsdf, class_names, shape)
                        total += written
        records.append(_record(inst, shape, refined, written))
    return RefinementResult(records, shapes, total, region, instances)


def object_instances(region: MapRegion, class_names: list[str], config: InstanceConfig, join_gap: float) -> list[Instance]:
    """The instances the refinement completes: :func:`find_instances`, then, unless they come from
    fused 2D instance ids, pieces of one object joined (:func:`join_pieces`, ``join_gap`` metres)."""
    instances = find_instances(region, class_names, config)
    if not from_fused_ids(region, config):
        largest = {name: class_size_range(name)[1] for name in CLASS_TEMPLATES}
        instances = join_pieces(region, instances, join_gap, largest)
    return instances


def context_box(region: MapRegion, inst: Instance, extent: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Region index range [a, b) of what takes part in an instance's fit: its box grown by
    ``margin`` metres, and at least the prior's grid (side 1.5 x the class's ``extent``) around its centre."""
    grid_half = 0.75 * extent
    centre = (inst.bbox_min + inst.bbox_max) / 2
    lo = np.minimum(inst.bbox_min - margin, centre - grid_half)
    hi = np.maximum(inst.bbox_max + margin, centre + grid_half)
    return _box_indices(region, lo, hi)


def join_pieces(region: MapRegion, instances: list[Instance], max_gap: float,
                largest: dict[str, tuple[float, float, float]]) -> list[Instance]:
    """Instances (in :func:`find_instances` order: by class, then largest first) with each one that
    lies within ``max_gap`` metres of an earlier kept one of its class joined to it when their
    union still fits the class's ``largest`` (width, depth, height, metres; :func:`fits_within`);
    ids renumbered from 1. Classes missing from ``largest`` are never joined."""
    if max_gap <= 0:
        return instances
    from scipy.spatial import cKDTree

    kept: list[Instance] = []
    for inst in instances:
        size = largest.get(inst.class_name)
        host = None
        if size is not None:
            for other in kept:
                if other.class_id != inst.class_id:
                    continue
                if float(cKDTree(other.voxels).query(inst.voxels)[0].min()) * region.voxel_size > max_gap:
                    continue
                if fits_within(region.centers(np.concatenate([other.voxels, inst.voxels])), size, region.voxel_size):
                    host = other
                    break
        if host is None:
            kept.append(inst)
        else:
            join(host, inst)
    for number, inst in enumerate(kept, start=1):
        inst.instance_id = number
    return kept


def fits_within(points: np.ndarray, size: tuple[float, float, float], voxel_size: float) -> bool:
    """Whether surface voxel centres ``points`` (N, 3) fit in a box of ``size`` (width, depth,
    height, metres) standing upright and turned to the footprint's own axes
    (:func:`footprint_yaw`), with a voxel to spare on each side (surface voxels lie up to a voxel
    on either side of the surface)."""
    footprint = footprint_sides(points, footprint_yaw(points))
    allowed = sorted(size[:2], reverse=True)
    spare = 2 * voxel_size
    return (footprint[0] <= allowed[0] + spare and footprint[1] <= allowed[1] + spare
            and float(np.ptp(points[:, 2])) <= size[2] + spare)


def join(host: Instance, piece: Instance) -> None:
    """Add ``piece``'s voxels to ``host`` (box and confidence follow)."""
    count = len(host.voxels)
    host.voxels = np.concatenate([host.voxels, piece.voxels])
    host.observed = np.concatenate([host.observed, piece.observed])
    host.bbox_min = np.minimum(host.bbox_min, piece.bbox_min)
    host.bbox_max = np.maximum(host.bbox_max, piece.bbox_max)
    host.confidence = float((host.confidence * count + piece.confidence * len(piece.voxels)) / len(host.voxels))


def up_facing(region: MapRegion, min_cos: float = 0.7) -> np.ndarray:
    """(X, Y, Z) bool: voxels whose TSDF gradient points up (within ``acos(min_cos)`` of +z):
    the tops of things, where something can stand (not the sides of a table's legs)."""
    gx, gy, gz = np.gradient(region.tsdf.astype(np.float32))
    length = np.sqrt(gx * gx + gy * gy + gz * gz)
    return gz > min_cos * np.maximum(length, 1e-9)


def supported(region: MapRegion, support: np.ndarray, origin: np.ndarray, tsdf: np.ndarray, bottom: float,
              floor_z: float, max_gap: float) -> bool:
    """Whether a completed shape whose bottom is at height ``bottom`` (metres) stands on something:
    the floor at ``floor_z`` lies at most ``max_gap`` below it, or a ``support`` voxel (region-shaped
    bool: observed tops of other things, :func:`up_facing`) in a column under the shape's solid voxels (``tsdf``
    over the box at global voxel ``origin``, NaN = not written, below the truncation = solid) has
    its centre between ``max_gap`` below the bottom and a voxel above it (a shape sunk a little into
    its support), under at least a
    tenth of the footprint's columns (and two). Surfaces higher up in the footprint (the edge of a
    table a chair stands beside) hold nothing up."""
    if bottom - floor_z <= max_gap:
        return True
    solid = np.isfinite(tsdf) & (tsdf < region.truncation)
    if not solid.any():
        return True  # nothing is written: nothing floats
    columns = np.unique(np.argwhere(solid)[:, :2], axis=0) + (np.asarray(origin) - region.origin_voxel)[:2]
    inside = np.all((columns >= 0) & (columns < np.array(region.shape[:2])), axis=1)
    columns = columns[inside]
    voxel = region.voxel_size
    z_centres = (np.arange(region.shape[2]) + region.origin_voxel[2] + 0.5) * voxel
    levels = (z_centres >= bottom - max_gap) & (z_centres <= bottom + voxel)
    if not levels.any() or not len(columns):
        return False
    under = support[columns[:, 0], columns[:, 1]][:, levels].any(axis=1)
    # a stray voxel (a mislabelled seat) holds nothing up: a tenth of the footprint, at least two columns
    return int(under.sum()) >= max(2, int(math.ceil(0.1 * len(columns))))


def within_fill(region: MapRegion, inst: Instance, origin: np.ndarray, tsdf: np.ndarray, extent: float,
                max_fill: float) -> np.ndarray:
    """A completed shape's write (``tsdf`` over its box at global voxel ``origin``, NaN = not
    written) kept within ``max_fill`` x its observed surface voxels x ``extent / voxel_size``
    solid voxels: a convex object seen from one side over that many surface voxels holds at most
    that many behind them at its largest extent. A shape completed beyond that (a bathtub scaled 3x
    from a hundred voxels of its rim) is a guess far from what was seen, so its write reaches only
    as far from the observed surface as the budget allows: the solid voxels nearest the observed
    surface are kept, shell by shell of equal distance, and nothing (solid, band or cleared)
    beyond the last shell kept (nothing at all when the nearest shell alone is over the budget).
    ``max_fill`` 0: no limit. Returns ``tsdf`` itself or a trimmed copy."""
    if max_fill <= 0 or not inst.observed.any():
        return tsdf
    voxel = region.voxel_size
    finite = np.isfinite(tsdf)
    solid = finite & (tsdf <= voxel / 2)
    budget = int(max_fill * int(inst.observed.sum()) * extent / voxel)
    if int(solid.sum()) <= budget:
        return tsdf
    from scipy.spatial import cKDTree

    cells = np.argwhere(finite)
    dist, _ = cKDTree(region.centers(inst.voxels[inst.observed])).query(region.centers(cells + origin - region.origin_voxel))
    # whole shells of equal distance: the farthest reach whose solid voxels fit the budget (none may)
    levels, counts = np.unique(np.round(dist[solid[finite]] / voxel, 3), return_counts=True)
    fits = np.cumsum(counts) <= budget
    reach = levels[fits][-1] * voxel if fits.any() else -1.0
    trimmed = tsdf.copy()
    far = cells[dist > reach + 1e-3 * voxel]
    trimmed[tuple(far.T)] = np.nan
    return trimmed


def _write(tsdf_map, region: MapRegion, inst: Instance, origin: np.ndarray, tsdf: np.ndarray, class_names: list[str],
           shape: AlignedShape) -> int:
    size = tsdf.shape
    probs = np.zeros(size + (len(class_names),), dtype=np.float32)
    probs[..., inst.class_id] = 1.0
    obs = inst.voxels[inst.observed]
    color = region.color[tuple(obs.T)].mean(axis=0) if len(obs) else np.full(3, 0.5, np.float32)
    colors = np.broadcast_to(color.astype(np.float32), size + (3,)).copy()
    confidence = np.full(size, float(np.clip(inst.confidence * shape.fit, 0.0, 1.0)), dtype=np.float32)
    return int(tsdf_map.write_predictions(torch.as_tensor(origin), torch.from_numpy(tsdf), torch.from_numpy(colors),
                                          torch.from_numpy(probs), torch.from_numpy(confidence)))
