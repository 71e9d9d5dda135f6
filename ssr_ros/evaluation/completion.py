"""Geometry completion: IoU, precision and recall of occupied voxels against ground truth.

All inputs are dense boolean volumes of one shape on one voxel grid (see ``grid``). The
evaluated voxels are those in ``valid`` (default: all); the report splits them into the
voxels the camera *observed* and the *unobserved* rest, where completion has to predict.

Definitions over the evaluated voxels, with TP = pred & gt:
IoU = |TP| / |pred | gt|, precision = |TP| / |pred|, recall = |TP| / |gt|.
Undefined ratios: IoU and recall are NaN when the ground truth of a region is empty (and,
for IoU, the prediction too); precision is 0 when nothing is predicted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ssr_ros.evaluation.grid import check_same_shape


@dataclass(frozen=True)
class CompletionScores:
    """Scores of one region; counts are voxel numbers."""

    iou: float
    precision: float
    recall: float
    num_gt: int
    num_pred: int
    num_true_positive: int

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(num: int, den: int, empty: float) -> float:
    return float(num) / float(den) if den > 0 else empty


def completion_scores(pred_occupied: np.ndarray, gt_occupied: np.ndarray, mask: np.ndarray | None = None) -> CompletionScores:
    """IoU, precision, recall of ``pred_occupied`` vs ``gt_occupied`` (bool volumes) inside ``mask``."""
    check_same_shape(pred_occupied=pred_occupied, gt_occupied=gt_occupied, mask=mask)
    pred = np.asarray(pred_occupied, dtype=bool)
    gt = np.asarray(gt_occupied, dtype=bool)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        pred, gt = pred & m, gt & m
    tp = int(np.count_nonzero(pred & gt))
    n_pred, n_gt = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    union = n_pred + n_gt - tp
    return CompletionScores(
        iou=_ratio(tp, union, float("nan")),
        precision=_ratio(tp, n_pred, 0.0),
        recall=_ratio(tp, n_gt, float("nan")),
        num_gt=n_gt,
        num_pred=n_pred,
        num_true_positive=tp,
    )


def completion_report(
    pred_occupied: np.ndarray,
    gt_occupied: np.ndarray,
    observed: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> dict[str, CompletionScores]:
    """Scores on ``all`` evaluated voxels and, when ``observed`` is given, on the
    ``observed`` and ``unobserved`` parts (``valid`` restricts all three)."""
    check_same_shape(pred_occupied=pred_occupied, gt_occupied=gt_occupied, observed=observed, valid=valid)
    valid = np.ones(np.shape(gt_occupied), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    report = {"all": completion_scores(pred_occupied, gt_occupied, valid)}
    if observed is not None:
        observed = np.asarray(observed, dtype=bool)
        report["observed"] = completion_scores(pred_occupied, gt_occupied, valid & observed)
        report["unobserved"] = completion_scores(pred_occupied, gt_occupied, valid & ~observed)
    return report
