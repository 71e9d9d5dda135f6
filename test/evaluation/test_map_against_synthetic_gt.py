"""The map's voxel grid and the synthetic ground truth's agree voxel for voxel.

A synthetic sequence is fused into the semantic TSDF and compared with the scene's GT volume
on the same global grid: the comparison must be best without any shift (a one-voxel offset
in either convention would show up as a better score at a shifted position).
"""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.data.synthetic import DepthNoiseConfig, LabelNoiseConfig, SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
from ssr_ros.evaluation import completion_scores, semantic_scores

map_module = pytest.importorskip("ssr_ros.map", reason="the map is not built")


def test_fused_map_matches_gt_best_without_shift():
    scene = generate_scene(3)
    config = SequenceConfig(width=160, height=120, trajectory=TrajectoryConfig(num_frames=30),
                            depth_noise=DepthNoiseConfig(enabled=False), label_noise=LabelNoiseConfig(enabled=False))
    tsdf_map = map_module.SemanticTSDF(map_module.TSDFConfig(voxel_size=0.05), num_classes=scene.taxonomy.num_classes)
    for frame in SyntheticSequence(scene, config):
        tsdf_map.integrate(frame)
    gt = scene.gt_volume(0.05)
    chunk = tsdf_map.extract_chunk(gt.origin_voxel, gt.shape)
    observed = chunk.observed.numpy() & gt.in_room
    predicted = (chunk.tsdf.numpy() < 0.025) & observed
    surface = gt.occupied & (np.abs(gt.sdf) < 0.05)

    def iou(shift, axis):
        return completion_scores(np.roll(predicted, shift, axis=axis), surface, observed).iou

    centred = iou(0, 0)
    assert centred > 0.6
    for axis in range(3):
        assert centred > iou(1, axis) and centred > iou(-1, axis), f"grid offset along axis {axis}"
    probs = chunk.semantics.numpy()
    labels = np.where(probs.sum(-1) > 0, probs.argmax(-1), 0)
    assert semantic_scores(labels, np.where(surface, gt.class_ids, 0), scene.taxonomy.num_classes, observed).miou > 0.6
