"""Mesh accuracy / completeness / precision / recall / F-score with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssr_ros.errors import InvalidInput
from ssr_ros.evaluation import mesh_scores, mesh_scores_from_meshes, sample_surface


def _square(z=0.0, size=1.0):
    v = np.array([[0, 0, z], [size, 0, z], [size, size, z], [0, size, z]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    return v, f


def test_area_sampling_is_uniform_and_seeded():
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [4, 0, 0], [4, 2, 0], [2, 2, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])  # areas 1 and 4
    p = sample_surface(v, f, 50_000, seed=1)
    np.testing.assert_array_equal(p, sample_surface(v, f, 50_000, seed=1))
    assert np.mean(p[:, 0] >= 2) == pytest.approx(0.8, abs=0.01)
    inside = p[p[:, 0] < 1.5]
    assert np.all((inside >= -1e-12) & (inside <= 1 + 1e-12))
    assert abs(np.mean(inside[:, 0] < 0.5) - 0.5) < 0.02


def test_identical_meshes_score_perfectly():
    v, f = _square()
    s = mesh_scores_from_meshes(v, f, v, f, num_points=20_000)
    assert s.precision == 1.0 and s.recall == 1.0 and s.fscore == 1.0
    assert s.accuracy < 0.01 and s.completeness < 0.01


def test_empty_prediction_scores_zero():
    v, f = _square()
    s = mesh_scores(np.zeros((0, 3)), sample_surface(v, f, 1000))
    assert s.fscore == 0.0 and s.precision == 0.0 and s.recall == 0.0
    assert math.isinf(s.completeness) and math.isnan(s.accuracy)
    assert s.as_dict()["completeness"] is None


def test_offset_surface_has_known_distance():
    """A plane 3 cm above the GT plane: accuracy = completeness = 3 cm (away from the borders)."""
    gt = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101), [0.0], indexing="ij"), -1).reshape(-1, 3)
    pred = gt + [0, 0, 0.03]
    s = mesh_scores(pred, gt, threshold=0.05)
    assert s.accuracy == pytest.approx(0.03) and s.completeness == pytest.approx(0.03)
    assert s.fscore == 1.0
    s = mesh_scores(pred, gt, threshold=0.02)
    assert s.fscore == 0.0


def test_hand_made_partial_case():
    """Prediction covers half the GT plus a same-size part 1 m away: P = R = F = 0.5."""
    gt = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101), [0.0], indexing="ij"), -1).reshape(-1, 3)
    half = gt[gt[:, 0] < 0.5 - 1e-9]
    pred = np.concatenate([half, half + [0, 0, 1.0]])
    s = mesh_scores(pred, gt)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(54 / 101)  # GT columns x = 0.00 .. 0.53 are within 5 cm of the half
    assert s.fscore == pytest.approx(2 * s.precision * s.recall / (s.precision + s.recall))


def test_bad_inputs_are_named():
    v, f = _square()
    with pytest.raises(InvalidInput, match=r"face indices must lie in \[0, 3\]"):
        sample_surface(v, f + 2, 10)
    with pytest.raises(InvalidInput, match="ground-truth surface has no points"):
        mesh_scores(v, np.zeros((0, 3)))


@pytest.mark.shared_data
def test_replica_depth_lies_on_the_replica_gt_mesh(shared_data):
    """Real data: depth points of Replica office0 frames score high precision against its GT mesh."""
    from ssr_ros.data.folders import ReplicaFolder
    from ssr_ros.evaluation.report import load_mesh

    root = shared_data / "nvblox_testdata/nvblox/tests/data/replica"
    vertices, faces = load_mesh(root / "office0_mesh.ply")
    frame = ReplicaFolder(root / "office0")[0]
    K = frame.intrinsics
    v, u = np.mgrid[0 : K.height : 8, 0 : K.width : 8]
    z = frame.depth[v, u]
    ok = z > 0
    cam = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], -1)[ok]
    points = cam @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3]
    gt = sample_surface(vertices, faces, 300_000, seed=0)
    s = mesh_scores(points, gt)
    assert s.precision > 0.9 and s.accuracy < 0.03, s
    assert s.recall < 0.5  # one frame sees a small part of the office
