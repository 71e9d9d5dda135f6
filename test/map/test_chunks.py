"""Dense chunk extraction and prediction write-back (the completion network's contract)."""

import numpy as np
import pytest
import torch

from scenes import Plane, frame_of, small_camera
from ssr_ros.map import DenseChunk, SemanticTSDF, TSDFConfig

CAM = small_camera()


def observed_wall_map():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 2.0)], CAM, np.eye(4)))
    return tsdf_map


def test_extract_chunk_matches_point_queries():
    tsdf_map = observed_wall_map()
    origin = torch.tensor([-5, -4, 44])
    chunk = tsdf_map.extract_chunk(origin, (10, 8, 12))
    assert isinstance(chunk, DenseChunk) and chunk.size == (10, 8, 12)
    assert torch.equal(chunk.origin_voxel, origin)
    centers = chunk.voxel_centers().reshape(-1, 3)
    q = tsdf_map.query(centers)
    observed = chunk.observed.reshape(-1)
    assert observed.any() and (~observed).any()
    assert torch.allclose(chunk.tsdf.reshape(-1)[observed], q["tsdf"][observed], atol=1e-4)
    assert torch.equal(chunk.observed.reshape(-1), q["observed"])
    assert (chunk.tsdf.reshape(-1)[chunk.weight.reshape(-1) == 0] == tsdf_map.truncation).all()
    probs = chunk.semantics.reshape(-1, 21)
    near = observed & (chunk.tsdf.reshape(-1).abs() < tsdf_map.truncation)
    assert torch.allclose(probs[near].sum(-1), torch.ones(int(near.sum())), atol=1e-3)
    assert (probs[near].argmax(-1) == 2).all()
    assert (probs[chunk.weight.reshape(-1) == 0] == 0).all()
    assert not chunk.predicted.any()


def predicted_sphere(size=16, radius_vox=5.0, center_vox=8.0, voxel=0.04, trunc=0.16):
    r = torch.arange(size, dtype=torch.float32)
    g = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1) + 0.5
    d = ((g - center_vox).norm(dim=-1) - radius_vox) * voxel
    return d.clamp(-trunc, trunc)


def test_write_predictions_never_overwrites_observed_voxels():
    tsdf_map = observed_wall_map()
    origin = torch.tensor([-4, -4, 48])  # from 1.92 m to 2.24 m: the wall and unseen space behind
    before = tsdf_map.extract_chunk(origin, (8, 8, 8))
    pred_tsdf = torch.full((8, 8, 8), -0.01)
    color = torch.full((8, 8, 8, 3), 0.5)
    probs = torch.zeros(8, 8, 8, 21)
    probs[..., 9] = 0.7
    probs[..., 4] = 0.3
    written = tsdf_map.write_predictions(origin, pred_tsdf, color, probs)
    after = tsdf_map.extract_chunk(origin, (8, 8, 8))
    unobserved = ~before.observed
    assert written == int(unobserved.sum()) > 0
    assert torch.equal(after.observed, before.observed)
    assert torch.equal(after.tsdf[before.observed], before.tsdf[before.observed])
    assert torch.equal(after.predicted, unobserved)
    assert torch.allclose(after.predicted_tsdf[unobserved], torch.tensor(-0.01), atol=1e-4)
    assert (after.predicted_label[unobserved] == 9).all()
    assert torch.allclose(after.predicted_confidence[unobserved], torch.tensor(0.7), atol=1e-3)
    assert torch.allclose(after.predicted_color[unobserved], torch.tensor(128 / 255), atol=1e-3)
    q = tsdf_map.query(after.voxel_centers().reshape(-1, 3))
    assert torch.equal(q["predicted"], unobserved.reshape(-1))


def test_write_predictions_allocates_blocks_at_predicted_surfaces_only():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    origin = torch.tensor([96, 0, 0])  # block-aligned: 2 x 2 x 2 blocks
    sphere = predicted_sphere()
    far = torch.full((16, 16, 16), 0.16)  # all free space: nothing to allocate
    assert tsdf_map.write_predictions(origin + 32, far) == 0 and tsdf_map.num_blocks == 0
    written = tsdf_map.write_predictions(origin, sphere, confidence=torch.full((16, 16, 16), 0.9))
    assert tsdf_map.num_blocks == 8 and written == 16**3
    counter = tsdf_map.update_counter
    assert tsdf_map.changed_blocks(counter - 1).shape[0] == 8
    assert tsdf_map.changed_blocks(counter).shape[0] == 0
    chunk = tsdf_map.extract_chunk(origin, (16, 16, 16))
    assert chunk.predicted.all() and not chunk.observed.any()
    assert (chunk.weight == 0).all()


def test_observation_replaces_a_prediction():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    origin = torch.tensor([-8, -8, 44])
    tsdf_map.write_predictions(origin, torch.full((16, 16, 8), -0.1), torch.zeros(16, 16, 8, 3))
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 2.0)], CAM, np.eye(4)))
    chunk = tsdf_map.extract_chunk(origin, (16, 16, 8))
    assert chunk.observed.any()
    assert not (chunk.predicted & chunk.observed).any()
    q = tsdf_map.query(torch.tensor([[0.0, 0.0, 1.9]]))
    assert q["tsdf"][0] == pytest.approx(0.1, abs=2e-3) and not q["predicted"][0]
