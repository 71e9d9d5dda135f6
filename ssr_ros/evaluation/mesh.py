"""Mesh quality: accuracy, completeness, precision, recall and F-score at a threshold.

As reported by Atlas, NeuralRecon and CDRNet: both surfaces are turned into point sets
(meshes sampled uniformly by area with a fixed seed, or given points), then with
``d(p, S)`` the distance from p to the nearest point of S:

- accuracy = mean over predicted points of d(p, GT)          (metres, lower is better)
- completeness = mean over GT points of d(q, prediction)     (metres, lower is better)
- precision = fraction of predicted points with d(p, GT) < threshold
- recall = fraction of GT points with d(q, prediction) < threshold
- F-score = 2 * precision * recall / (precision + recall)    (threshold 5 cm by default)

An empty prediction scores precision = recall = F-score = 0, completeness = inf and
accuracy = NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from ssr_ros.errors import InvalidInput

DEFAULT_THRESHOLD = 0.05
"""F-score distance threshold, metres (5 cm, as NeuralRecon and CDRNet report)."""


def sample_surface(vertices: np.ndarray, faces: np.ndarray, num_points: int, seed: int = 0) -> np.ndarray:
    """(num_points, 3) float64 points uniformly distributed over a triangle mesh's area.

    vertices: (V, 3); faces: (F, 3) integer indices. Degenerate meshes (no area) give an
    empty array. Deterministic for a given ``seed``.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InvalidInput(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.size == 0:
        return np.zeros((0, 3))
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InvalidInput(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InvalidInput(f"face indices must lie in [0, {len(vertices) - 1}], got [{faces.min()}, {faces.max()}]")
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = area.sum()
    if not total > 0:
        return np.zeros((0, 3))
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(faces), size=num_points, p=area / total)
    r1, r2 = rng.random(num_points), rng.random(num_points)
    s = np.sqrt(r1)
    w0, w1, w2 = 1 - s, s * (1 - r2), s * r2
    return a[tri] * w0[:, None] + b[tri] * w1[:, None] + c[tri] * w2[:, None]


@dataclass(frozen=True)
class MeshScores:
    accuracy: float
    completeness: float
    precision: float
    recall: float
    fscore: float
    threshold: float
    num_pred_points: int
    num_gt_points: int

    @property
    def chamfer(self) -> float:
        """Mean of accuracy and completeness, metres."""
        return 0.5 * (self.accuracy + self.completeness)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["chamfer"] = self.chamfer
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def mesh_scores(pred_points: np.ndarray, gt_points: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> MeshScores:
    """Scores of predicted surface points (P, 3) against ground-truth points (G, 3), metres."""
    if not (threshold > 0 and np.isfinite(threshold)):
        raise InvalidInput(f"threshold must be positive, got {threshold}")
    pred = np.asarray(pred_points, dtype=np.float64).reshape(-1, 3)
    gt = np.asarray(gt_points, dtype=np.float64).reshape(-1, 3)
    if len(gt) == 0:
        raise InvalidInput("the ground-truth surface has no points")
    if len(pred) == 0:
        return MeshScores(float("nan"), float("inf"), 0.0, 0.0, 0.0, threshold, 0, len(gt))
    dist_pred, _ = cKDTree(gt).query(pred, workers=-1)
    dist_gt, _ = cKDTree(pred).query(gt, workers=-1)
    precision = float(np.mean(dist_pred < threshold))
    recall = float(np.mean(dist_gt < threshold))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return MeshScores(float(dist_pred.mean()), float(dist_gt.mean()), precision, recall, fscore, threshold, len(pred), len(gt))


def mesh_scores_from_meshes(
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray | None,
    gt_vertices: np.ndarray,
    gt_faces: np.ndarray | None,
    threshold: float = DEFAULT_THRESHOLD,
    num_points: int = 200_000,
    seed: int = 0,
) -> MeshScores:
    """Sample both meshes by area (``num_points`` each, fixed ``seed``) and score them.

    A mesh given with ``faces=None`` is used as a point cloud (its vertices).
    """
    pred = np.asarray(pred_vertices, dtype=np.float64) if pred_faces is None else sample_surface(pred_vertices, pred_faces, num_points, seed)
    gt = np.asarray(gt_vertices, dtype=np.float64) if gt_faces is None else sample_surface(gt_vertices, gt_faces, num_points, seed + 1)
    return mesh_scores(pred, gt, threshold)
