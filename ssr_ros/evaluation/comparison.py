"""Side-by-side scores of the maps a user could get from one recording, as one table.

Each method (fusion only, a Poisson reconstruction, fusion + completion, ...) is a row of
:data:`COLUMNS`. The mesh columns come from :func:`surface_scores`; the voxel columns from
``ssr_ros.evaluation.completion`` / ``semantics``. Ratios are in [0, 1], distances in metres;
``None`` marks a score that does not apply (e.g. the predicted-surface columns of a method
that predicts nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from ssr_ros.evaluation.mesh import DEFAULT_THRESHOLD, mesh_scores, sample_surface


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    unit: str  # "%" (ratio shown x100), "cm" (metres shown x100) or "" (a count)


COLUMNS = (
    Column("accuracy", "acc", "cm"),
    Column("completeness", "comp", "cm"),
    Column("precision", "prec", "%"),
    Column("recall", "recall", "%"),
    Column("fscore", "F@5cm", "%"),
    Column("unobserved_iou", "IoU unobs", "%"),
    Column("observed_miou", "mIoU obs", "%"),
    Column("unobserved_miou", "mIoU unobs", "%"),
    Column("all_miou", "mIoU all", "%"),
    Column("predicted_precision", "pred. surface prec", "%"),
    Column("predicted_outside_room", "pred. outside room", "%"),
    Column("predicted_vertices", "pred. vertices", ""),
    Column("triangles", "triangles", ""),
)
"""The columns of the comparison table, in order."""


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def outside_box(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
    """(N,) bool: points (N, 3) farther than ``margin`` metres outside the box ``[lo, hi]``."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.any((points < np.asarray(lo) - margin) | (points > np.asarray(hi) + margin), axis=1)


def surface_scores(
    vertices: np.ndarray,
    triangles: np.ndarray,
    predicted: np.ndarray | None,
    gt_points: np.ndarray,
    room_box: tuple[np.ndarray, np.ndarray] | None = None,
    room_margin: float = 0.05,
    threshold: float = DEFAULT_THRESHOLD,
    num_points: int = 200_000,
    seed: int = 0,
) -> dict:
    """Mesh scores of one method's mesh against ground-truth surface points, metres.

    vertices: (V, 3); triangles: (T, 3); predicted: (V,) bool, the vertices the method made up
    (not measured), or None when it predicts nothing; gt_points: (G, 3) points sampled on the
    GT surface; room_box: ``(lo, hi)`` of the room interior (vertices more than ``room_margin``
    outside it are behind a wall, under the floor or above the ceiling).

    Returns accuracy, completeness, precision, recall, fscore (``ssr_ros.evaluation.mesh``, the
    mesh sampled by area with ``num_points`` points), ``predicted_precision`` (fraction of
    predicted vertices within ``threshold`` of the GT points), ``predicted_outside_room``
    (fraction of predicted vertices outside the room box), and the counts ``vertices``,
    ``triangles``, ``predicted_vertices``.
    """
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    points = sample_surface(vertices, triangles, num_points, seed) if len(triangles) else np.zeros((0, 3))
    scores = mesh_scores(points, gt_points, threshold)
    out = {
        "accuracy": _finite(scores.accuracy), "completeness": _finite(scores.completeness),
        "precision": scores.precision, "recall": scores.recall, "fscore": scores.fscore,
        "vertices": int(len(vertices)), "triangles": int(len(triangles)),
        "predicted_vertices": None, "predicted_precision": None, "predicted_outside_room": None,
    }
    if predicted is None:
        return out
    new = vertices[np.asarray(predicted, dtype=bool)]
    out["predicted_vertices"] = int(len(new))
    if len(new):
        distance, _ = cKDTree(np.asarray(gt_points, dtype=np.float64)).query(new, workers=-1)
        out["predicted_precision"] = float(np.mean(distance < threshold))
        if room_box is not None:
            out["predicted_outside_room"] = float(np.mean(outside_box(new, room_box[0], room_box[1], room_margin)))
    return out


def new_surface(vertices: np.ndarray, reference_vertices: np.ndarray, distance: float) -> np.ndarray:
    """(V,) bool: vertices farther than ``distance`` metres from every reference vertex.

    The surface a mesh-level method (e.g. Poisson) added to the fused mesh it started from.
    """
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(reference_vertices) == 0:
        return np.ones(len(vertices), dtype=bool)
    d, _ = cKDTree(np.asarray(reference_vertices, dtype=np.float64)).query(vertices, workers=-1)
    return d > distance


def mean_scores(rows: Sequence[dict]) -> dict:
    """Per key, the mean over ``rows`` of the values that are not None (None when none is)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    out = {}
    for key in keys:
        values = [row[key] for row in rows if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)]
        values = [v for v in values if math.isfinite(v)]
        out[key] = float(np.mean(values)) if values else None
    return out


def _cell(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "%":
        return f"{100 * value:.1f}"
    if unit == "cm":
        return f"{100 * value:.2f}"
    return f"{value:,.0f}"


def markdown_table(rows: Sequence[tuple[str, dict]], columns: Sequence[Column] = COLUMNS, first: str = "method") -> str:
    """A markdown table with one line per ``(label, scores)`` row; % columns x100, cm columns in cm."""
    head = [first] + [f"{c.title} ({c.unit})" if c.unit else c.title for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, scores in rows:
        lines.append("| " + " | ".join([label] + [_cell(scores.get(c.key), c.unit) for c in columns]) + " |")
    return "\n".join(lines)
