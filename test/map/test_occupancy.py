"""The 2D occupancy grid holds measured space only unless predictions are asked for."""

import torch

from ssr_ros.map import SemanticTSDF, TSDFConfig
from ssr_ros.map.voxel_export import occupancy_projection


def predicted_wall_map():
    """A map with only predicted voxels: a wall slab at x = 1.0 m, 0-1 m high; its y < 0.5 m half
    predicted with confidence 0.95, the other half with 0.6."""
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05), num_classes=21)
    size = (40, 20, 20)
    i = torch.arange(size[0], dtype=torch.float32)
    tsdf = ((i - 20 + 0.5) * 0.05).abs().clamp(max=0.2)[:, None, None].expand(size).clone() - 0.03
    confidence = torch.full(size, 0.6)
    confidence[:, :10] = 0.95
    probs = torch.zeros(size + (21,))
    probs[..., 1] = 1.0
    tsdf_map.write_predictions(torch.tensor([0, 0, 0]), tsdf, torch.zeros(size + (3,)), probs, confidence)
    return tsdf_map


def test_predicted_voxels_stay_out_of_the_grid_by_default():
    grid = occupancy_projection(predicted_wall_map(), 0.1, 0.9)
    assert not (grid.data == 100).any()


def test_confident_predictions_enter_the_grid_when_asked_for():
    grid = occupancy_projection(predicted_wall_map(), 0.1, 0.9, include_predicted=True, min_confidence=0.9)
    occupied_rows = {int(r) for r in torch.nonzero(torch.as_tensor(grid.data == 100))[:, 0]}
    y_of_row = {r: grid.origin[1] + (r + 0.5) * grid.resolution for r in occupied_rows}
    assert occupied_rows and all(y < 0.5 for y in y_of_row.values())
    everything = occupancy_projection(predicted_wall_map(), 0.1, 0.9, include_predicted=True)
    assert (everything.data == 100).sum() > (grid.data == 100).sum()
