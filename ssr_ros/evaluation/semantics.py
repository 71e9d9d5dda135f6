"""Semantic scores: per-class IoU, mIoU and mAcc over voxels (or pixels).

Evaluated elements are those inside ``mask`` whose ground-truth class is not ignored
(class 0, unknown/free, by default): semantic scores judge the labels of ground-truth
surfaces, while geometry is judged by ``completion``. A prediction of 0 (or of an ignored
class) on such an element counts as a miss of the true class.

Per class c (rows of the confusion matrix are ground truth, columns predictions):
IoU_c = TP / (TP + FP + FN), Acc_c = TP / (TP + FN). mIoU and mAcc average over the
classes present in the evaluated ground truth (ScanNet benchmark convention); classes
absent from it have NaN scores and are left out of the means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.errors import InvalidInput
from ssr_ros.evaluation.grid import check_same_shape
from ssr_ros.taxonomy import UNKNOWN_ID


def confusion_matrix(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    mask: np.ndarray | None = None,
    ignore_ids: tuple[int, ...] = (UNKNOWN_ID,),
) -> np.ndarray:
    """(C, C) int64 counts: ``[g, p]`` = elements of true class g predicted as p."""
    check_same_shape(pred=pred, gt=gt, mask=mask)
    pred = np.asarray(pred).reshape(-1)
    gt = np.asarray(gt).reshape(-1)
    for name, labels in (("pred", pred), ("gt", gt)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise InvalidInput(f"{name} labels must lie in [0, {num_classes - 1}], got range [{labels.min()}, {labels.max()}]")
    keep = ~np.isin(gt, ignore_ids)
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool).reshape(-1)
    index = gt[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass
class SemanticScores:
    """per_class_iou, per_class_acc: (C,) float64, NaN for classes absent from the GT."""

    per_class_iou: np.ndarray
    per_class_acc: np.ndarray
    miou: float
    macc: float
    num_evaluated: int

    def as_dict(self, class_names: list[str] | None = None) -> dict:
        names = class_names or [str(i) for i in range(len(self.per_class_iou))]

        def clean(values):
            return {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, values)}

        return {
            "miou": None if np.isnan(self.miou) else self.miou,
            "macc": None if np.isnan(self.macc) else self.macc,
            "num_evaluated": self.num_evaluated,
            "per_class_iou": clean(self.per_class_iou),
            "per_class_acc": clean(self.per_class_acc),
        }


def scores_from_confusion(confusion: np.ndarray, ignore_ids: tuple[int, ...] = (UNKNOWN_ID,)) -> SemanticScores:
    """Per-class IoU / accuracy and their means from a confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    gt_count = confusion.sum(axis=1)
    pred_count = confusion.sum(axis=0)
    present = gt_count > 0
    present[list(ignore_ids)] = False
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, tp / (gt_count + pred_count - tp), np.nan)
        acc = np.where(present, tp / gt_count, np.nan)
    miou = float(np.mean(iou[present])) if present.any() else float("nan")
    macc = float(np.mean(acc[present])) if present.any() else float("nan")
    return SemanticScores(iou, acc, miou, macc, int(confusion.sum()))


def semantic_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    mask: np.ndarray | None = None,
    ignore_ids: tuple[int, ...] = (UNKNOWN_ID,),
) -> SemanticScores:
    """Scores of integer label volumes ``pred`` vs ``gt`` (same shape) inside ``mask``."""
    return scores_from_confusion(confusion_matrix(pred, gt, num_classes, mask, ignore_ids), ignore_ids)


def semantic_report(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    observed: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    ignore_ids: tuple[int, ...] = (UNKNOWN_ID,),
) -> dict[str, SemanticScores]:
    """Scores on ``all`` evaluated voxels and, given ``observed``, on ``observed`` / ``unobserved``."""
    check_same_shape(pred=pred, gt=gt, observed=observed, valid=valid)
    valid = np.ones(np.shape(gt), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    report = {"all": semantic_scores(pred, gt, num_classes, valid, ignore_ids)}
    if observed is not None:
        observed = np.asarray(observed, dtype=bool)
        report["observed"] = semantic_scores(pred, gt, num_classes, valid & observed, ignore_ids)
        report["unobserved"] = semantic_scores(pred, gt, num_classes, valid & ~observed, ignore_ids)
    return report
