"""Object refinement with part of the answer given: where the per-object Chamfer is lost.

    PYTHONPATH=. python benchmarks/objects_oracle.py --oracle shape --seeds 6200 6201 ... [objects_eval.py flags]

The run of ``benchmarks/objects_eval.py`` (same rooms, cached maps, scores and flags) with one
stage of the object refinement replaced by the generated room's truth, for each instance whose
observed surface lies mostly on one object of the instance's class:

- ``--oracle yaw``: the alignment's candidate turns are decided by the true heading (the
  candidate within 45 degrees of it wins); the shape, scale and position are still the prior's
  and the fit's. What a perfect choice of turn would give.
- ``--oracle shape``: the completed shape is the true object (its exact signed distance, over the
  fitted shape's box joined with the object's own), written through the same rules as a completed
  shape (nothing into seen-free space, behind other surfaces, below the floor, beyond the reach
  from the observed part; the fit, support and fill checks of the fitted shape). What the
  instances and the writing rules leave for a perfect shape prior and alignment to gain.

The replacement goes in by wrapping the refinement's own functions (``align_object``,
``shape_write``, the alignment's view term); nothing in the package changes.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import objects_eval
import ssr_ros.objects.alignment as alignment
import ssr_ros.objects.refinement as refinement
from ssr_ros.objects.evaluation import object_yaw

_scene = {"scene": None, "truth": None}


def _true_object(class_name: str, surface: np.ndarray):
    """The generated object most of ``surface`` (observed voxel centres) lies on, if of ``class_name``."""
    scene = _scene["scene"]
    if scene is None or len(surface) == 0:
        return None
    d, _, ids = scene.sdf(surface)
    ids = ids[np.abs(d) < 0.05]
    if not len(ids):
        return None
    g = int(np.bincount(ids).argmax())
    found = [o for o in scene.objects if o.instance_id == g]
    if not found or scene.taxonomy.names[found[0].class_id] != class_name:
        return None
    return found[0]


def _install(oracle: str) -> None:
    generate = objects_eval.generate_scene

    def generate_scene(seed):
        scene = generate(seed)
        _scene["scene"] = scene
        return scene

    objects_eval.generate_scene = generate_scene
    align = refinement.align_object

    def align_object(prior, class_name, surface, *args, **kwargs):
        obj = _true_object(class_name, surface)
        _scene["truth"] = None if obj is None else object_yaw(_scene["scene"], obj)
        shape = align(prior, class_name, surface, *args, **kwargs)
        if shape is not None and obj is not None:
            corners = np.concatenate([_scene["scene"].boxes.corners()[b] for b in obj.box_indices])
            shape.truth = (obj.instance_id, corners.min(axis=0) - 0.1, corners.max(axis=0) + 0.1)
        return shape

    refinement.align_object = align_object
    if oracle == "yaw":
        view_term = alignment.view_term

        def told_view_term(centre, yaw, viewpoints, view_range):
            if _scene["truth"] is None:
                return view_term(centre, yaw, viewpoints, view_range)
            return 0.0 if abs(math.remainder(yaw - _scene["truth"], 2 * math.pi)) < math.radians(45) else 10.0

        alignment.view_term = told_view_term
    else:
        shape_write = refinement.shape_write

        def true_shape_write(region, inst, ids, shape, floor_class, floor_z, max_distance=0.0):
            if getattr(shape, "truth", None) is None:
                return shape_write(region, inst, ids, shape, floor_class, floor_z, max_distance)
            instance_id, lo, hi = shape.truth
            fitted_lo, fitted_hi = shape.bounds()
            return shape_write(region, inst, ids, _TrueShape(instance_id, np.minimum(fitted_lo, lo), np.maximum(fitted_hi, hi)),
                               floor_class, floor_z, max_distance)

        refinement.shape_write = true_shape_write


class _TrueShape:
    """What ``shape_write`` reads of a shape: its bounds and the true object's signed distance."""

    def __init__(self, instance_id: int, lo: np.ndarray, hi: np.ndarray):
        self.instance_id, self.lo, self.hi = instance_id, lo, hi

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo, self.hi

    def sdf_at(self, points: np.ndarray) -> np.ndarray:
        d, _, ids = _scene["scene"].sdf(points)
        d = np.asarray(d, dtype=np.float64).copy()
        d[ids != self.instance_id] = np.inf  # nearer to something else: outside this object
        return d


def main() -> None:
    if "--oracle" not in sys.argv:
        raise SystemExit("objects_oracle.py: --oracle yaw|shape is required (see the docstring)")
    i = sys.argv.index("--oracle")
    oracle = sys.argv[i + 1] if i + 1 < len(sys.argv) else ""
    if oracle not in ("yaw", "shape"):
        raise SystemExit(f"objects_oracle.py: --oracle must be yaw or shape, not '{oracle}'")
    del sys.argv[i:i + 2]
    _install(oracle)
    objects_eval.main()


if __name__ == "__main__":
    main()
