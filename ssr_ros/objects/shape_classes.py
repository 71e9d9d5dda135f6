"""Which furniture classes get a learned shape prior, and the canonical grid of each.

A class's canonical grid is a cube of ``grid_size^3`` cells in the object frame (x along the
width, y towards the object's front, z up; the origin on the floor below the centre of the
observed part, see :func:`ssr_ros.objects.observation.anchor_point`). Its side is
``GRID_SPAN * extent`` where ``extent`` is the largest dimension any of the class's templates
reaches; z starts ``Z_BELOW * extent`` below the floor.

The prior learns, and is sized by, only the parts of a template that carry its class: the
shower curtain over a bathtub and the sink on a counter are classes of their own in the map
(their voxels never join the bathtub's or the counter's instance), so they are no part of the
completed shape (:func:`class_template`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ssr_ros.data.synthetic.furniture import TEMPLATES, ObjectTemplate
from ssr_ros.taxonomy import ClassTaxonomy

CLASS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "table": ("table", "coffee_table"),
    "chair": ("chair",),
    "bed": ("bed",),
    "sofa": ("sofa",),
    "cabinet": ("cabinet",),
    "bookshelf": ("bookshelf",),
    "desk": ("desk",),
    "refrigerator": ("refrigerator",),
    "counter": ("counter",),
    "toilet": ("toilet",),
    "bathtub": ("bathtub",),
    "otherfurniture": ("nightstand", "floor_lamp"),
}
"""Taxonomy class name -> the furniture templates whose objects carry that class (pictures and
small objects on tables have no prior: too thin or too small for a 5 cm map)."""

GRID_SPAN = 1.5
"""Grid side over the class extent: the observed part may be off the object's centre by up to a
quarter of the extent and the whole object still fits."""

Z_BELOW = 0.1
"""Part of the class extent the grid reaches below the floor."""


@dataclass(frozen=True)
class ShapeGrid:
    """The canonical grid of one class: ``size`` cells of ``cell`` metres per side; cell
    (i, j, k) has its centre at ``lo + (i + 0.5, j + 0.5, k + 0.5) * cell`` in the anchored
    object frame."""

    size: int
    cell: float

    @property
    def lo(self) -> np.ndarray:
        side = self.size * self.cell
        return np.array([-side / 2, -side / 2, -Z_BELOW * side / GRID_SPAN])

    def centers(self) -> np.ndarray:
        """(G, G, G, 3) float32 cell centres in the anchored object frame, metres."""
        axis = (np.arange(self.size) + 0.5) * self.cell
        grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
        return (grid + self.lo).astype(np.float32)


@lru_cache(maxsize=None)
def _taxonomy_names() -> frozenset[str]:
    return frozenset(ClassTaxonomy.load().names)


def class_template(template: str, class_name: str, rng: np.random.Generator) -> ObjectTemplate:
    """A random object of furniture template ``template`` with only the parts that carry
    ``class_name`` in the map: parts named by another class of the taxonomy are left out (the
    generator labels parts of no taxonomy class as 'otherfurniture', so those stay with an
    'otherfurniture' object). The declared size shrinks to the kept parts, centred as before."""
    full = TEMPLATES[template](rng)
    names = _taxonomy_names()
    keep = [p for p in full.parts
            if p.class_name == class_name or (p.class_name not in names and class_name == "otherfurniture")]
    if not keep or len(keep) == len(full.parts):
        return full
    half_x = max(abs(p.center[0]) + p.half[0] for p in keep)
    half_y = max(abs(p.center[1]) + p.half[1] for p in keep)
    top = max(p.center[2] + p.half[2] for p in keep)
    return ObjectTemplate(full.name, keep, (2 * half_x, 2 * half_y, top), full.placement, full.support_height,
                          full.mount_height, dict(full.extras))


def class_extents(samples: int = 200, seed: int = 7) -> dict[str, float]:
    """Largest width, depth or height (metres) of each prior class over ``samples`` random
    instances of each of its templates, plus 5 %."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, templates in CLASS_TEMPLATES.items():
        largest = 0.0
        for template in templates:
            for _ in range(samples):
                lo, hi = class_template(template, name, rng).local_bounds()
                largest = max(largest, float((hi - lo).max()))
        out[name] = round(1.05 * largest, 3)
    return out


def shape_grid(extent: float, size: int) -> ShapeGrid:
    """The canonical grid of a class whose objects reach ``extent`` metres."""
    return ShapeGrid(size=int(size), cell=GRID_SPAN * float(extent) / int(size))


@lru_cache(maxsize=None)
def class_size_range(name: str, samples: int = 200, seed: int = 7) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(smallest, largest) width, depth and height (metres, object frame: x, y, z) that the
    class's templates reach over ``samples`` random instances of each: the sizes the shape
    prior was trained on, for bounding a completed shape's scale."""
    rng = np.random.default_rng(seed)
    sizes = []
    for template in CLASS_TEMPLATES[name]:
        for _ in range(samples):
            lo, hi = class_template(template, name, rng).local_bounds()
            sizes.append(hi - lo)
    sizes = np.array(sizes)
    return tuple(float(v) for v in sizes.min(axis=0)), tuple(float(v) for v in sizes.max(axis=0))
