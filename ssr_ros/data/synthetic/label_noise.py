"""A stand-in for a 2D segmentation network: ground-truth labels with realistic mistakes.

Three kinds of error, each switchable:

- boundary errors: labels are resampled through a smooth random displacement field of a
  few pixels, so region borders wobble while region interiors stay right;
- class confusions: each visible instance is, with ``confusion_probability``, labelled with
  a plausible wrong class (table <-> desk, cabinet <-> bookshelf, chair <-> sofa, ...);
- missed small objects: instances covering fewer than ``small_object_fraction`` of the
  image are, with ``miss_probability``, filled with the labels around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, zoom

from ssr_ros.config import param, validate_config
from ssr_ros.taxonomy import UNKNOWN_ID, ClassTaxonomy

CONFUSIONS: dict[str, tuple[str, ...]] = {
    "table": ("desk", "counter"),
    "desk": ("table",),
    "cabinet": ("bookshelf", "otherfurniture", "counter"),
    "bookshelf": ("cabinet",),
    "chair": ("sofa", "otherfurniture"),
    "sofa": ("chair", "bed"),
    "bed": ("sofa",),
    "door": ("wall", "cabinet"),
    "window": ("picture", "wall"),
    "picture": ("window", "wall"),
    "curtain": ("shower curtain", "window"),
    "shower curtain": ("curtain",),
    "counter": ("cabinet", "table"),
    "refrigerator": ("cabinet",),
    "sink": ("counter", "toilet"),
    "toilet": ("sink",),
    "bathtub": ("otherfurniture",),
    "otherfurniture": ("cabinet", "table"),
}
"""Plausible wrong classes for each class, by name."""


@dataclass
class LabelNoiseConfig:
    """Parameters of the 2D predictor model."""

    enabled: bool = param(True, "corrupt the labels (False: ground truth labels)")
    boundary_shift: float = param(0.006, "amplitude of the boundary wobble, fraction of the image width", low=0.0, high=0.1)
    boundary_scale: float = param(0.05, "correlation length of the wobble, fraction of the image width", low=0.005, high=1.0)
    confusion_probability: float = param(0.08, "chance that a visible instance gets a wrong class", low=0.0, high=1.0)
    small_object_fraction: float = param(0.004, "instances below this fraction of the image are small", low=0.0, high=1.0)
    miss_probability: float = param(0.5, "chance that a small instance is missed", low=0.0, high=1.0)

    def validate(self) -> "LabelNoiseConfig":
        return validate_config(self)


def _confusion_table(taxonomy: ClassTaxonomy) -> dict[int, list[int]]:
    names = taxonomy.names
    table = {}
    for name, others in CONFUSIONS.items():
        if name in names:
            ids = [names.index(o) for o in others if o in names]
            if ids:
                table[names.index(name)] = ids
    return table


def apply_label_noise(
    class_ids: np.ndarray,
    instance_ids: np.ndarray,
    config: LabelNoiseConfig,
    rng: np.random.Generator,
    taxonomy: ClassTaxonomy,
) -> np.ndarray:
    """Predicted labels (H, W) int32 from ground-truth ``class_ids`` and ``instance_ids`` (H, W)."""
    labels = np.asarray(class_ids).astype(np.int32, copy=True)
    if not config.enabled:
        return labels
    instances = np.asarray(instance_ids)
    H, W = labels.shape
    if config.confusion_probability > 0 or config.miss_probability > 0:
        ids, counts = np.unique(instances[instances > 0], return_counts=True)
        table = _confusion_table(taxonomy)
        missed = np.zeros_like(labels, dtype=bool)
        for inst, count in zip(ids, counts):
            mask = instances == inst
            cls = int(labels[mask][0])
            if count < config.small_object_fraction * H * W and rng.random() < config.miss_probability:
                missed |= mask
            elif cls in table and rng.random() < config.confusion_probability:
                options = table[cls]
                labels[mask] = options[int(rng.integers(len(options)))]
        if missed.any() and not missed.all():
            _, (iv, iu) = distance_transform_edt(missed, return_indices=True)
            labels = labels[iv, iu]
    if config.boundary_shift > 0:
        coarse = max(2, int(round(1.0 / config.boundary_scale)))
        amplitude = config.boundary_shift * W
        field = rng.standard_normal((2, coarse, coarse)) * amplitude
        dv = zoom(field[0], (H / coarse, W / coarse), order=1)[:H, :W]
        du = zoom(field[1], (H / coarse, W / coarse), order=1)[:H, :W]
        v = np.clip(np.round(np.arange(H)[:, None] + dv), 0, H - 1).astype(np.int64)
        u = np.clip(np.round(np.arange(W)[None, :] + du), 0, W - 1).astype(np.int64)
        labels = labels[v, u]
        labels[instances == 0] = UNKNOWN_ID  # no surface: nothing to label
    return labels.astype(np.int32)
