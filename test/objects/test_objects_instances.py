"""Instances from connected components of same-class surface voxels."""

from __future__ import annotations

import numpy as np
import torch

from ssr_ros.map.chunk import DenseChunk
from ssr_ros.objects.instances import InstanceConfig, find_instances, instance_mask, region_from_chunk
from ssr_ros.taxonomy import ClassTaxonomy

NAMES = ClassTaxonomy.load().names
CHAIR, TABLE, WALL = NAMES.index("chair"), NAMES.index("table"), NAMES.index("wall")


def _chunk(labels: np.ndarray, observed: np.ndarray, voxel_size: float = 0.05, origin=(10, -4, 0)) -> DenseChunk:
    shape = labels.shape
    n = len(NAMES)
    semantics = np.zeros(shape + (n,), np.float32)
    surface = labels > 0
    semantics[surface, labels[surface]] = 0.9
    tsdf = np.where(surface, 0.0, 0.2).astype(np.float32)
    return DenseChunk(
        origin_voxel=torch.tensor(origin), voxel_size=voxel_size, truncation=0.2, tsdf=torch.from_numpy(tsdf),
        weight=torch.from_numpy(observed.astype(np.float32) * 5), observed=torch.from_numpy(observed),
        color=torch.zeros(shape + (3,)), semantics=torch.from_numpy(semantics), predicted=torch.zeros(shape, dtype=torch.bool),
        free=torch.zeros(shape, dtype=torch.bool),
    )


def test_components_of_each_class_become_instances_with_boxes():
    labels = np.zeros((40, 30, 20), np.int64)
    labels[2:6, 2:6, 0:8] = CHAIR        # chair A: 4 x 4 x 8
    labels[20:24, 2:6, 0:8] = CHAIR      # chair B, far from A
    labels[8:18, 10:20, 6:8] = TABLE     # table top
    labels[:, 29, :] = WALL              # wall: structure, never an instance
    labels[30, 20, 0] = CHAIR            # a lone voxel: too small
    region = region_from_chunk(_chunk(labels, np.ones(labels.shape, bool)))
    instances = find_instances(region, NAMES, InstanceConfig(min_voxels=10, closing=0))
    classes = sorted(i.class_name for i in instances)
    assert classes == ["chair", "chair", "table"]
    chairs = [i for i in instances if i.class_name == "chair"]
    assert sorted(len(c.voxels) for c in chairs) == [128, 128]
    a = min(chairs, key=lambda c: c.bbox_min[0])
    np.testing.assert_allclose(a.bbox_min, (np.array([2, 2, 0]) + [10, -4, 0]) * 0.05, atol=1e-9)
    np.testing.assert_allclose(a.bbox_max, (np.array([6, 6, 8]) + [10, -4, 0]) * 0.05, atol=1e-9)
    assert all(0.89 < i.confidence < 0.91 for i in instances)
    assert all(i.observed.all() for i in instances)
    ids = instance_mask(region, instances)
    assert sorted(np.unique(ids).tolist()) == [0, 1, 2, 3]


def test_closing_bridges_a_one_voxel_gap_and_unobserved_voxels_are_left_out():
    labels = np.zeros((20, 10, 10), np.int64)
    labels[2:6, 2:6, 0:4] = CHAIR
    labels[7:11, 2:6, 0:4] = CHAIR  # one empty voxel layer between the halves
    observed = np.ones(labels.shape, bool)
    assert len(find_instances(region_from_chunk(_chunk(labels, observed)), NAMES, InstanceConfig(min_voxels=5, closing=0))) == 2
    assert len(find_instances(region_from_chunk(_chunk(labels, observed)), NAMES, InstanceConfig(min_voxels=5, closing=1))) == 1
    observed[7:11] = False  # never fused: no evidence there
    found = find_instances(region_from_chunk(_chunk(labels, observed)), NAMES, InstanceConfig(min_voxels=5, closing=1))
    assert len(found) == 1 and len(found[0].voxels) == 64


def test_floor_height_from_the_floor_surface_crossing():
    labels = np.zeros((10, 10, 10), np.int64)
    labels[:, :, 3] = NAMES.index("floor")
    chunk = _chunk(labels, np.ones(labels.shape, bool), origin=(0, 0, -3))
    chunk.tsdf[:, :, 3] = 0.01  # centre at z = 0.025, surface 1 cm below it
    region = region_from_chunk(chunk)
    assert abs(region.floor_height(NAMES.index("floor")) - 0.015) < 1e-6


def test_where_no_floor_is_seen_objects_stand_on_the_unseen_floor_height_unless_something_lies_lower():
    labels = np.zeros((10, 10, 20), np.int64)
    labels[2:8, 2:8, 14] = TABLE  # a table top seen from above, nothing below it
    region = region_from_chunk(_chunk(labels, np.ones(labels.shape, bool), origin=(0, 0, 0)))
    floor = NAMES.index("floor")
    assert abs(region.floor_height(floor) - 0.7) < 1e-6  # the lowest observed surface
    assert region.floor_height(floor, unseen=0.0) == 0.0
    lower = region_from_chunk(_chunk(labels, np.ones(labels.shape, bool), origin=(0, 0, -20)))
    assert abs(lower.floor_height(floor, unseen=0.0) - (-0.3)) < 1e-6
