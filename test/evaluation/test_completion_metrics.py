"""Completion IoU / precision / recall on volumes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssr_ros.errors import InvalidInput
from ssr_ros.evaluation import align_to_grid, completion_report, completion_scores


def _gt():
    gt = np.zeros((4, 4, 4), dtype=bool)
    gt[:2] = True  # 32 occupied voxels
    return gt


def test_perfect_prediction_scores_one():
    s = completion_scores(_gt(), _gt())
    assert (s.iou, s.precision, s.recall) == (1.0, 1.0, 1.0)


def test_empty_prediction_scores_zero():
    s = completion_scores(np.zeros((4, 4, 4), bool), _gt())
    assert (s.iou, s.precision, s.recall) == (0.0, 0.0, 0.0)
    assert s.num_gt == 32 and s.num_pred == 0


def test_hand_made_partial_case():
    gt = _gt()  # x in {0, 1}: 32 voxels
    pred = np.zeros_like(gt)
    pred[1:3] = True  # x in {1, 2}: 32 voxels, 16 right
    s = completion_scores(pred, gt)
    assert s.num_true_positive == 16
    assert s.iou == pytest.approx(16 / 48)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(0.5)


def test_observed_and_unobserved_split():
    gt = _gt()
    pred = gt.copy()
    observed = np.zeros_like(gt)
    observed[:, :2] = True  # y < 2 observed
    pred[:, 2:] = False  # nothing predicted where unobserved
    report = completion_report(pred, gt, observed=observed)
    assert report["observed"].iou == 1.0
    assert report["unobserved"].iou == 0.0 and report["unobserved"].num_gt == 16
    assert report["all"].recall == pytest.approx(0.5) and report["all"].precision == 1.0


def test_valid_mask_excludes_voxels_and_empty_gt_is_undefined():
    gt = _gt()
    valid = np.zeros_like(gt)
    valid[2:] = True  # only the empty half
    s = completion_report(np.ones_like(gt), gt, valid=valid)["all"]
    assert s.iou == 0.0 and math.isnan(s.recall) and s.precision == 0.0 and s.num_pred == 32
    s = completion_scores(np.zeros_like(gt), gt, mask=valid)
    assert math.isnan(s.iou) and math.isnan(s.recall) and s.precision == 0.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InvalidInput, match=r"pred_occupied \(4, 4, 4\).*gt_occupied \(4, 4, 5\)"):
        completion_scores(np.zeros((4, 4, 4), bool), np.zeros((4, 4, 5), bool))


def test_align_to_grid_shifts_by_the_origin_difference():
    a = np.arange(8).reshape(2, 2, 2)
    out = align_to_grid(a, origin_voxel=(5, 0, 0), target_origin_voxel=(4, 0, -1), target_shape=(3, 2, 3), fill=-1)
    assert out[0].tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert out[1, :, 1:].tolist() == a[0].tolist() and out[2, :, 1:].tolist() == a[1].tolist()
    assert (out[:, :, 0] == -1).all()
    assert (align_to_grid(a, (10, 10, 10), (0, 0, 0), (2, 2, 2), fill=7) == 7).all()
