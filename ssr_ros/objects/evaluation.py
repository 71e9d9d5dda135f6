"""Per-object scores of a map against a generated room's exact objects.

- :func:`object_surface_points`: points on an object's exact outer surface (the union of its
  boxes of its own class, :func:`own_boxes`), without faces in contact with the floor, a wall or
  another object (no camera can see those, no method is judged on them);
- :func:`object_scores`: for each object, the map mesh's points whose nearest scene box
  is one of its own boxes (within ``assign_distance``) scored against its surface with
  :func:`ssr_ros.evaluation.mesh.mesh_scores` (Chamfer = mean of accuracy and completeness,
  F-score at the given thresholds);
- :func:`object_yaw` the object's true heading, :func:`yaw_error` the angle between two;
- :func:`instance_matches`: instances matched to objects by voxel IoU (same class) for
  instance precision and recall.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ssr_ros.data.synthetic.primitives import union_sdf
from ssr_ros.evaluation.mesh import mesh_scores

_FACES = [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]


def own_boxes(scene, obj) -> list[int]:
    """Indices of the boxes of ``obj`` (a SceneObject) that carry its class: a bathtub's shower
    curtain, a counter's sink are objects of their own classes to the map and to the scores."""
    own = [b for b in obj.box_indices if scene.boxes.class_ids[b] == obj.class_id]
    return own or list(obj.box_indices)


def own_instance_ids(scene, class_ids: np.ndarray, instance_ids: np.ndarray) -> np.ndarray:
    """``instance_ids`` (any shape, of points or voxels of ``scene`` with their ``class_ids``) set to 0
    where the class is not the one of that instance's object: what lies on a bathtub's shower curtain
    belongs to no object here, as its own boxes do not (:func:`own_boxes`)."""
    object_class = np.zeros(len(scene.objects) + 1, np.int64)
    object_class[[o.instance_id for o in scene.objects]] = [o.class_id for o in scene.objects]
    return np.where(class_ids == object_class[instance_ids], instance_ids, 0)


def object_surface_points(scene, obj, spacing: float = 0.01) -> np.ndarray:
    """(P, 3) map-frame points on the visible outer surface of ``obj`` (a SceneObject): of its
    boxes of its own class (:func:`own_boxes`)."""
    boxes = scene.boxes
    indices = own_boxes(scene, obj)
    own = {k: torch.as_tensor(v[indices], dtype=torch.float32) for k, v in
           (("c", boxes.centers), ("h", boxes.half_extents), ("r", boxes.rotations))}
    points, normals = [], []
    for b in indices:
        c, h, R = boxes.centers[b], boxes.half_extents[b], boxes.rotations[b]
        for axis, sign in _FACES:
            u, v = [a for a in range(3) if a != axis]
            nu, nv = max(2, int(np.ceil(2 * h[u] / spacing))), max(2, int(np.ceil(2 * h[v] / spacing)))
            gu, gv = np.meshgrid(np.linspace(-h[u], h[u], nu), np.linspace(-h[v], h[v], nv), indexing="ij")
            local = np.zeros((gu.size, 3))
            local[:, u], local[:, v], local[:, axis] = gu.ravel(), gv.ravel(), sign * h[axis]
            n = np.zeros(3)
            n[axis] = sign
            points.append(local @ R.T + c)
            normals.append(np.broadcast_to(R @ n, (gu.size, 3)))
    pts, nrm = np.concatenate(points), np.concatenate(normals)
    d_own, _ = union_sdf(torch.as_tensor(pts, dtype=torch.float32), own["c"], own["h"], own["r"])
    keep = d_own.numpy() > -1e-4
    d_scene, _, _ = scene.sdf(pts + 0.012 * nrm)
    keep &= d_scene > 0.006
    return pts[keep]


def object_yaw(scene, obj) -> float:
    """Heading of the object's front (+y of its template frame) about z, radians."""
    R = scene.boxes.rotations[obj.box_indices[0]]
    # R maps the template frame to the map frame: yaw = angle of R's x axis
    return float(math.atan2(R[1, 0], R[0, 0]))


def yaw_error(a: float, b: float, symmetry: int = 1) -> float:
    """Smallest angle (degrees) between headings a and b, with ``symmetry``-fold symmetry
    (2: a turn of 180 degrees gives the same object)."""
    period = 2 * math.pi / symmetry
    return math.degrees(abs(math.remainder(a - b, period)))


def object_scores(scene, objects, vertices: np.ndarray, thresholds=(0.02, 0.05), assign_distance: float = 0.1) -> dict[int, dict]:
    """{instance_id: {chamfer, accuracy, completeness, fscore@2cm, fscore@5cm, points}} of the
    mesh vertices (P, 3) of a map, for each SceneObject in ``objects``."""
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(vertices):
        d, cls, inst = scene.sdf(vertices)
        inst = own_instance_ids(scene, cls, inst)
        near = np.abs(d) < assign_distance
    else:
        inst, near = np.zeros(0, np.int64), np.zeros(0, bool)
    out = {}
    for obj in objects:
        gt = object_surface_points(scene, obj)
        if len(gt) == 0:
            continue
        pred = vertices[near & (inst == obj.instance_id)]
        row = {"points": int(len(pred))}
        for t in thresholds:
            s = mesh_scores(pred, gt, t)
            row[f"fscore@{round(t * 100)}cm"] = s.fscore
            row.update(chamfer=s.chamfer, accuracy=s.accuracy, completeness=s.completeness)
        out[obj.instance_id] = row
    return out


def instance_matches(pred_masks: list[tuple[int, np.ndarray]], gt_ids: np.ndarray, gt_classes: dict[int, int],
                     iou_threshold: float = 0.25) -> tuple[list[tuple[int, int, float]], int, int]:
    """Greedy one-to-one matches (pred index, gt instance id, IoU) of predicted instances
    (class id, (X, Y, Z) bool mask on the GT grid) to GT instances (``gt_ids`` (X, Y, Z) int of
    occupied voxels, ``gt_classes`` id -> class) of the same class with IoU >= threshold;
    returns (matches, number of predictions, number of GT objects)."""
    pairs = []
    for p, (cls, mask) in enumerate(pred_masks):
        ids, counts = np.unique(gt_ids[mask], return_counts=True)
        for g, inter in zip(ids, counts):
            if g == 0 or gt_classes.get(int(g)) != cls:
                continue
            union = mask.sum() + (gt_ids == g).sum() - inter
            pairs.append((inter / union, p, int(g)))
    pairs.sort(reverse=True)
    used_p, used_g, matches = set(), set(), []
    for iou, p, g in pairs:
        if iou < iou_threshold or p in used_p or g in used_g:
            continue
        used_p.add(p)
        used_g.add(g)
        matches.append((p, g, float(iou)))
    return matches, len(pred_masks), len(gt_classes)


def region_ground_truth(scene, region):
    """The generated ``scene``'s ``GTVolume`` on ``region``'s grid."""
    lo = region.origin_voxel * region.voxel_size
    return scene.gt_volume(region.voxel_size, bounds=(lo, lo + np.array(region.shape) * region.voxel_size))


def region_instance_matches(scene, region, instances, seen_only: bool = False, min_seen_voxels: int = 10,
                            iou_threshold: float = 0.25, gt=None) -> tuple[list[tuple[int, int, float]], int, int]:
    """:func:`instance_matches` of a map's ``instances`` (each with ``class_id`` and ``voxels``,
    (N, 3) indices on ``region``'s grid) against the generated ``scene``'s objects.

    Ground truth: each object's surface voxels of its own class (occupied, within a voxel of its
    surface) on the region grid, for the objects of non-structural classes whose surface the map
    observed on at least ``min_seen_voxels`` voxels. ``seen_only``: only the true surface voxels the map observed
    (segmentation alone, without what the cameras never saw). ``gt``: :func:`region_ground_truth`
    when already computed."""
    from ssr_ros.objects.instances import STRUCTURE_CLASSES

    names = scene.taxonomy.names
    gt = region_ground_truth(scene, region) if gt is None else gt
    surface_ids = np.where(gt.occupied & (np.abs(gt.sdf) < region.voxel_size),
                           own_instance_ids(scene, gt.class_ids, gt.instance_ids), 0)
    observed_surface = region.observed & region.surface
    seen = np.bincount(surface_ids[observed_surface].ravel(), minlength=len(scene.objects) + 1)
    gt_classes = {o.instance_id: o.class_id for o in scene.objects
                  if names[o.class_id] not in STRUCTURE_CLASSES and seen[o.instance_id] >= min_seen_voxels}
    gt_ids = np.where(np.isin(surface_ids, list(gt_classes)), surface_ids, 0)
    if seen_only:
        gt_ids = np.where(observed_surface, gt_ids, 0)
    masks = []
    for instance in instances:
        mask = np.zeros(region.shape, bool)
        mask[tuple(np.asarray(instance.voxels).T)] = True
        masks.append((instance.class_id, mask))
    return instance_matches(masks, gt_ids, gt_classes, iou_threshold)
