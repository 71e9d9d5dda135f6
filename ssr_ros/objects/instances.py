"""Object instances of a semantic TSDF map: from fused 2D instance ids, else connected components.

:func:`map_region` copies the map's voxels into a :class:`MapRegion` (dense, one box around
everything allocated); :func:`find_instances` labels each object class's surface voxels
(observed, and predicted ones when asked) with ``scipy.ndimage.label`` (26-connected, after a
one-voxel closing that bridges gaps the sensor left) and keeps components of at least
``min_voxels``. Structural classes (wall, floor, door, ...) are never instances.

When the map holds instance evidence (frames came with 2D instance ids, see
:mod:`ssr_ros.map.instance_evidence`) and ``source`` is ``auto``, instances are the map's fused
instances instead: each surface voxel with a non-structural label takes the instance id of
the nearest voxel with evidence within ``spread`` voxels, and an instance's class is the
majority label of its voxels (instances whose majority is structural, such as walls that a 2D
instance segmenter numbered, are dropped). Touching objects of one class then stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scipy import ndimage

from ssr_ros.config import param, validate_config
from ssr_ros.map.chunk import DenseChunk

STRUCTURE_CLASSES = ("unknown", "wall", "floor", "ceiling", "door", "window", "curtain", "shower curtain")
"""Classes that are part of the room, not objects."""


@dataclass
class InstanceConfig:
    """How instances are found in the map."""

    min_voxels: int = param(15, "smallest instance, surface voxels", low=1, high=1_000_000)
    include_predicted: bool = param(
        False, "also count surface voxels the completion network predicted (measured on held-out rooms: twice the "
        "false instances for 3 points more recall)")
    closing: int = param(1, "voxels of morphological closing before labelling (bridges sensor gaps); 0 = none", low=0, high=5)
    surface_band: float = param(1.0, "a voxel is surface when |tsdf| is below this many voxel sizes", low=0.1, high=4.0)
    min_probability: float = param(0.3, "an observed voxel counts for a class when its top class probability reaches this", low=0.0, high=1.0)
    source: str = param("auto", "'auto': instances from the 2D instance ids fused in the map where it has them, else "
                        "connected components; 'components': always connected components", choices=["auto", "components"])
    spread: int = param(2, "2D instances: surface voxels this many voxels from instance evidence join that instance", low=0, high=5)

    def validate(self) -> "InstanceConfig":
        return validate_config(self)


@dataclass
class MapRegion:
    """Dense copy of a map box (numpy), what object refinement reads.

    origin_voxel: (3,) int64 global index of voxel [0, 0, 0]; voxel_size, truncation: metres.
    tsdf: (X, Y, Z) float32 metres (fused, +truncation where not fused); observed: bool;
    free: bool seen-free (or observed with tsdf above one voxel: seen empty);
    label: (X, Y, Z) int64 class of observed (argmax) and predicted voxels, 0 elsewhere;
    probability: (X, Y, Z) float32 the label's probability (predicted: their confidence);
    surface: bool observed or predicted voxel with |tsdf| within the surface band;
    predicted: bool; color: (X, Y, Z, 3) float32 in [0, 1];
    instance: (X, Y, Z) int32 fused 2D instance id (0 = none), or None when the map has no
    instance evidence.
    """

    origin_voxel: np.ndarray
    voxel_size: float
    truncation: float
    tsdf: np.ndarray
    observed: np.ndarray
    free: np.ndarray
    label: np.ndarray
    probability: np.ndarray
    surface: np.ndarray
    predicted: np.ndarray
    color: np.ndarray
    instance: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.tsdf.shape)  # type: ignore[return-value]

    def centers(self, index: np.ndarray) -> np.ndarray:
        """World centres (N, 3) metres of region voxel indices (N, 3)."""
        return (np.asarray(index, dtype=np.float64) + self.origin_voxel + 0.5) * self.voxel_size

    def floor_height(self, floor_class: int | None, unseen: float | None = None) -> float:
        """Height of the observed floor (metres): the median over observed floor-class surface
        voxels of ``centre z - tsdf`` (where a level surface crosses zero). Where no floor is
        observed: the bottom of the lowest observed surface voxel, or ``unseen`` where that lies
        lower (the floor lies below everything seen); ``unseen``, else 0, when nothing is observed."""
        surface = self.surface & self.observed
        if floor_class is not None:
            floor = surface & (self.label == floor_class)
            if floor.sum() > 20:
                idx = np.argwhere(floor)
                z = self.centers(idx)[:, 2] - self.tsdf[tuple(idx.T)]
                return float(np.median(z))
        if not surface.any():
            return 0.0 if unseen is None else float(unseen)
        lowest = float((np.nonzero(surface)[2].min() + self.origin_voxel[2]) * self.voxel_size)
        return lowest if unseen is None else min(lowest, float(unseen))


def region_from_chunk(chunk: DenseChunk, config: InstanceConfig | None = None) -> MapRegion:
    """A :class:`MapRegion` from a dense chunk of the map."""
    config = (config or InstanceConfig()).validate()
    vs = chunk.voxel_size
    observed = chunk.observed.cpu().numpy()
    tsdf = chunk.tsdf.cpu().numpy().astype(np.float32)
    predicted = chunk.predicted.cpu().numpy() & ~observed
    probs = chunk.semantics.cpu().numpy()
    obs_label = probs.argmax(axis=-1)
    obs_prob = probs.max(axis=-1)
    pred_tsdf = np.nan_to_num(chunk.predicted_tsdf.cpu().numpy(), nan=chunk.truncation) if chunk.predicted_tsdf is not None else np.full_like(tsdf, chunk.truncation)
    pred_label = chunk.predicted_label.cpu().numpy() if chunk.predicted_label is not None else np.zeros(tsdf.shape, np.int64)
    pred_conf = chunk.predicted_confidence.cpu().numpy() if chunk.predicted_confidence is not None else np.zeros_like(tsdf)
    band = config.surface_band * vs
    obs_surface = observed & (np.abs(tsdf) < band) & (obs_prob >= config.min_probability)
    pred_surface = predicted & (np.abs(pred_tsdf) < band)
    label = np.where(obs_surface, obs_label, np.where(pred_surface, pred_label, 0)).astype(np.int64)
    probability = np.where(obs_surface, obs_prob, np.where(pred_surface, pred_conf, 0.0)).astype(np.float32)
    free = observed & (tsdf > vs)
    if chunk.free is not None:
        free |= chunk.free.cpu().numpy()
    color = np.where(predicted[..., None], chunk.predicted_color.cpu().numpy(), chunk.color.cpu().numpy()) if chunk.predicted_color is not None else chunk.color.cpu().numpy()
    return MapRegion(
        origin_voxel=chunk.origin_voxel.cpu().numpy().astype(np.int64), voxel_size=vs, truncation=chunk.truncation,
        tsdf=np.where(predicted, pred_tsdf, tsdf).astype(np.float32), observed=observed, free=free, label=label,
        probability=probability, surface=obs_surface | pred_surface, predicted=predicted, color=color.astype(np.float32),
    )


def map_region(tsdf_map, config: InstanceConfig | None = None, margin: int = 2) -> MapRegion:
    """Dense :class:`MapRegion` of everything allocated in ``tsdf_map`` (a SemanticTSDF), plus
    ``margin`` voxels."""
    layer = tsdf_map.complete_layer()
    coords = layer.block_coords().cpu()
    if coords.numel() == 0:
        from ssr_ros.errors import InvalidInput

        raise InvalidInput("the map is empty: no allocated blocks to find objects in")
    B = layer.block_size
    lo = coords.min(dim=0).values * B - margin
    hi = (coords.max(dim=0).values + 1) * B + margin
    chunk = tsdf_map.extract_chunk(lo, tuple(int(n) for n in (hi - lo)))
    region = region_from_chunk(chunk, config)
    evidence = getattr(tsdf_map, "instances", None)
    if evidence is not None and evidence.num_voxels:
        region.instance = evidence.region_ids(region.origin_voxel, region.shape)
    return region


@dataclass
class Instance:
    """One object found in the map.

    voxels: (N, 3) int64 region indices of its surface voxels; observed: (N,) bool which of
    them were observed (the rest predicted); bbox_min/bbox_max: (3,) world AABB, metres;
    confidence in [0, 1]: mean class probability of its voxels.
    """

    instance_id: int
    class_id: int
    class_name: str
    voxels: np.ndarray
    observed: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    confidence: float
    extra: dict = field(default_factory=dict)


def find_instances(region: MapRegion, class_names: list[str], config: InstanceConfig | None = None,
                   exclude: tuple[str, ...] = STRUCTURE_CLASSES) -> list[Instance]:
    """Instances of every non-structural class, ids from 1 in order of class then size."""
    config = (config or InstanceConfig()).validate()
    surface = region.surface if config.include_predicted else region.surface & region.observed
    if from_fused_ids(region, config):
        return _fused_instances(region, surface, class_names, config, exclude)
    structure = np.ones((3, 3, 3), dtype=bool)
    out: list[Instance] = []
    for class_id, name in enumerate(class_names):
        if name in exclude:
            continue
        mask = surface & (region.label == class_id)
        if mask.sum() < config.min_voxels:
            continue
        grown = ndimage.binary_closing(mask, structure, iterations=config.closing) | mask if config.closing else mask
        labels, count = ndimage.label(grown, structure)
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        for k in np.argsort(-sizes):
            if sizes[k] < config.min_voxels:
                break
            voxels = np.argwhere((labels == k + 1) & mask)
            centers = region.centers(voxels)
            half = region.voxel_size / 2
            out.append(Instance(
                instance_id=len(out) + 1, class_id=class_id, class_name=name, voxels=voxels,
                observed=region.observed[tuple(voxels.T)],
                bbox_min=centers.min(axis=0) - half, bbox_max=centers.max(axis=0) + half,
                confidence=float(region.probability[tuple(voxels.T)].mean()),
            ))
    return out


def from_fused_ids(region: MapRegion, config: InstanceConfig) -> bool:
    """Whether :func:`find_instances` takes ``region``'s fused 2D instance ids (else connected components)."""
    return config.source == "auto" and region.instance is not None and bool(region.instance.any())


def _make_instance(region: MapRegion, instance_id: int, class_id: int, name: str, voxels: np.ndarray) -> Instance:
    centers = region.centers(voxels)
    half = region.voxel_size / 2
    return Instance(
        instance_id=instance_id, class_id=class_id, class_name=name, voxels=voxels,
        observed=region.observed[tuple(voxels.T)],
        bbox_min=centers.min(axis=0) - half, bbox_max=centers.max(axis=0) + half,
        confidence=float(region.probability[tuple(voxels.T)].mean()),
    )


def _fused_instances(region: MapRegion, surface: np.ndarray, class_names: list[str], config: InstanceConfig,
                     exclude: tuple[str, ...]) -> list[Instance]:
    """Instances from the map's fused 2D instance ids (see the module docstring)."""
    structural = np.array([name in exclude for name in class_names], dtype=bool)
    objectish = surface & (region.label > 0) & ~structural[region.label]
    ids = np.where(surface & (region.label > 0), region.instance, 0)
    if config.spread > 0 and ids.any():
        distance, nearest = ndimage.distance_transform_edt(ids == 0, return_indices=True)
        spread = ids[tuple(nearest)]
        ids = np.where(objectish & (ids == 0) & (distance <= config.spread), spread, ids)
    found = []
    flat_ids = ids.ravel()
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    starts = np.searchsorted(sorted_ids, np.unique(sorted_ids[sorted_ids > 0]))
    ends = np.r_[starts[1:], sorted_ids.size]
    for a, b in zip(starts, ends):
        flat = order[a:b]
        class_id = int(np.bincount(region.label.ravel()[flat]).argmax())
        if structural[class_id]:
            continue  # a wall, the floor, a door: 2D instances of the room itself
        if b - a < config.min_voxels:
            continue
        found.append((class_id, b - a, np.stack(np.unravel_index(flat, region.shape), axis=1).astype(np.int64)))
    found.sort(key=lambda f: (f[0], -f[1]))
    return [_make_instance(region, k + 1, class_id, class_names[class_id], voxels) for k, (class_id, _, voxels) in enumerate(found)]


def instance_mask(region: MapRegion, instances: list[Instance]) -> np.ndarray:
    """(X, Y, Z) int32 instance id of each region voxel (0 = none)."""
    ids = np.zeros(region.shape, dtype=np.int32)
    for inst in instances:
        ids[tuple(inst.voxels.T)] = inst.instance_id
    return ids


