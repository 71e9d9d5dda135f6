"""Per-class IoU, mIoU and mAcc on labels with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssr_ros.errors import InvalidInput
from ssr_ros.evaluation import confusion_matrix, semantic_report, semantic_scores


def _gt():
    gt = np.zeros((4, 4, 2), dtype=np.int64)  # 0 = free / unknown, ignored
    gt[0] = 1  # 8 voxels of class 1
    gt[1] = 2  # 8 of class 2
    gt[2, :2] = 3  # 4 of class 3
    return gt


def test_perfect_prediction_scores_one():
    s = semantic_scores(_gt(), _gt(), num_classes=5)
    assert s.miou == 1.0 and s.macc == 1.0
    assert math.isnan(s.per_class_iou[0]) and math.isnan(s.per_class_iou[4])  # ignored / absent
    assert s.num_evaluated == 20


def test_empty_prediction_scores_zero():
    s = semantic_scores(np.zeros_like(_gt()), _gt(), num_classes=5)
    assert s.miou == 0.0 and s.macc == 0.0


def test_hand_made_partial_case():
    gt = _gt()
    pred = gt.copy()
    pred[1, :2] = 1  # 4 voxels of class 2 predicted as class 1
    pred[2, :2] = 0  # class 3 entirely missed
    pred[3] = 2  # labels on GT-free voxels are not judged here
    s = semantic_scores(pred, gt, num_classes=5)
    # class 1: TP 8, FP 4, FN 0 -> IoU 8/12, acc 1; class 2: TP 4, FN 4 -> IoU 4/8, acc 0.5; class 3: 0
    np.testing.assert_allclose(s.per_class_iou[1:4], [8 / 12, 4 / 8, 0.0])
    np.testing.assert_allclose(s.per_class_acc[1:4], [1.0, 0.5, 0.0])
    assert s.miou == pytest.approx((8 / 12 + 0.5 + 0.0) / 3)
    assert s.macc == pytest.approx(1.5 / 3)
    cm = confusion_matrix(pred, gt, 5)
    assert cm[2, 1] == 4 and cm[3, 0] == 4 and cm.sum() == 20


def test_observed_unobserved_split():
    gt = _gt()
    pred = gt.copy()
    observed = np.zeros(gt.shape, bool)
    observed[..., 0] = True
    pred[..., 1] = 0  # the unobserved half is not labelled
    report = semantic_report(pred, gt, 5, observed=observed)
    assert report["observed"].miou == 1.0
    assert report["unobserved"].miou == 0.0
    assert report["all"].macc == pytest.approx(0.5)


def test_out_of_range_labels_are_named():
    with pytest.raises(InvalidInput, match=r"pred labels must lie in \[0, 4\], got range \[0, 9\]"):
        semantic_scores(np.array([0, 9]), np.array([1, 1]), 5)


def test_as_dict_uses_class_names_and_none_for_absent():
    s = semantic_scores(_gt(), _gt(), 5)
    d = s.as_dict(["unknown", "wall", "floor", "cabinet", "bed"])
    assert d["per_class_iou"]["wall"] == 1.0 and d["per_class_iou"]["bed"] is None
