"""Mesh scores of a map with and without its predicted voxels, as the demo reports them."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.evaluation.map_evaluation import completion_effect, format_completion_effect
from ssr_ros.map.meshing import BlockMesh


def strip(x0: float, x1: float, z: float, predicted: bool) -> BlockMesh:
    """A 1 m wide strip of the plane at height z between x0 and x1, as a two-triangle mesh."""
    vertices = np.array([[x0, 0, z], [x1, 0, z], [x1, 1, z], [x0, 1, z]], np.float32)
    n = len(vertices)
    return BlockMesh(None, vertices, np.array([[0, 1, 2], [0, 2, 3]]), np.zeros((n, 3), np.uint8), np.zeros(n, np.int64),
                     np.ones(n, np.float32), np.full(n, not predicted), np.full(n, predicted))


class FakeMap:
    """What ``completion_effect`` reads of a map: ``mesh(include_predicted)``."""

    def __init__(self, fused: BlockMesh, predicted: BlockMesh | None) -> None:
        self.fused, self.predicted = fused, predicted

    def mesh(self, include_predicted: bool = True) -> BlockMesh:
        parts = [self.fused] + ([self.predicted] if include_predicted and self.predicted is not None else [])
        return BlockMesh.concatenate(parts)


GT = (np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0]], float), np.array([[0, 1, 2], [0, 2, 3]]))


def test_a_correct_prediction_raises_the_fscore():
    effect = completion_effect(FakeMap(strip(0, 1, 0, False), strip(1, 2, 0, True)), GT, num_points=20_000)
    fusion, completed = effect["fusion_only"], effect["with_completion"]
    assert fusion["precision"] > 0.99 and fusion["recall"] == pytest.approx(0.5, abs=0.05)
    assert completed["precision"] > 0.99 and completed["recall"] > 0.99
    assert effect["fscore_change"] == pytest.approx(completed["fscore"] - fusion["fscore"]) and effect["fscore_change"] > 0.3
    assert completed["triangles"] == 4 and fusion["triangles"] == 2
    assert "raises the F-score" in format_completion_effect(effect)


def test_a_wrong_prediction_lowers_it_and_no_prediction_gives_no_completed_row():
    effect = completion_effect(FakeMap(strip(0, 1, 0, False), strip(1, 2, 0.5, True)), GT, num_points=20_000)
    assert effect["with_completion"]["precision"] == pytest.approx(0.5, abs=0.05) and effect["fscore_change"] < 0
    assert "lowers the F-score" in format_completion_effect(effect)
    fusion_only = completion_effect(FakeMap(strip(0, 1, 0, False), None), GT, num_points=20_000)
    assert fusion_only["with_completion"] is None and fusion_only["fscore_change"] is None
    text = format_completion_effect(fusion_only)
    assert "fusion only" in text and "F-score" in text and "raises" not in text and "lowers" not in text
