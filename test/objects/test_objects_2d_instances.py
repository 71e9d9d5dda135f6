"""Instances from 2D instance ids fused in the map (instance evidence)."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.errors import InvalidFrame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.instance_evidence import InstanceEvidence, key_voxels, voxel_keys
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.objects.instances import InstanceConfig, find_instances, map_region
from ssr_ros.taxonomy import ClassTaxonomy

NAMES = ClassTaxonomy.load().names
TABLE, WALL = NAMES.index("table"), NAMES.index("wall")
K = CameraIntrinsics(fx=50.0, fy=50.0, cx=31.5, cy=23.5, width=64, height=48)


def _frame(tx: float, ids: tuple[int, int]) -> Frame:
    """Camera at (tx, 0, 0) looking along +z at the plane z = 1: a table-class strip x in
    [-0.3, 0.3) made of two touching objects (x < 0 and x >= 0, 2D ids ``ids``), wall (2D id 99)
    elsewhere."""
    pose = np.eye(4)
    pose[0, 3] = tx
    u = np.arange(K.width)
    x = (u - K.cx) / K.fx + tx
    row_labels = np.where(np.abs(x) < 0.3, TABLE, WALL)
    row_ids = np.where(np.abs(x) < 0.3, np.where(x < 0, ids[0], ids[1]), 99)  # the wall is an instance too
    return Frame(depth=np.ones((K.height, K.width), np.float32), intrinsics=K, T_world_cam=pose,
                 labels=np.tile(row_labels, (K.height, 1)).astype(np.uint8),
                 instance_ids=np.tile(row_ids, (K.height, 1)).astype(np.int32))


def _map(frames) -> SemanticTSDF:
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05), num_classes=len(NAMES))
    for frame in frames:
        tsdf_map.integrate(frame)
    return tsdf_map


def test_voxel_keys_round_trip():
    index = np.array([[0, 0, 0], [-5, 7, -1_000_000], [1_000_000, -1_000_000, 3]])
    np.testing.assert_array_equal(key_voxels(voxel_keys(index)), index)


@pytest.mark.parametrize("bad", [np.ones((48, 63), np.int32), np.ones((48, 64), np.float32), -np.ones((48, 64), np.int32)])
def test_instance_images_that_disagree_are_refused_and_the_map_is_unchanged(bad):
    tsdf_map = _map([_frame(0.0, (1, 2))])
    before = (tsdf_map.instances.keys.copy(), tsdf_map.instances.ids.copy(), tsdf_map.instances.votes.copy())
    blocks, frames = tsdf_map.num_blocks, tsdf_map.frames_integrated
    frame = _frame(0.05, (1, 2))
    frame.instance_ids = bad
    with pytest.raises(InvalidFrame, match="instance_ids"):
        tsdf_map.integrate(frame)
    with pytest.raises(InvalidFrame, match="instance_ids"):
        frame.validate()
    assert tsdf_map.num_blocks == blocks and tsdf_map.frames_integrated == frames
    for old, new in zip(before, (tsdf_map.instances.keys, tsdf_map.instances.ids, tsdf_map.instances.votes)):
        np.testing.assert_array_equal(old, new)


def test_touching_same_class_objects_with_different_2d_ids_are_two_instances():
    # the 2D ids change from frame to frame: the map associates them by voxel overlap
    frames = [_frame(tx, ids) for tx, ids in [(0.0, (1, 2)), (0.04, (7, 3)), (-0.03, (2, 9)), (0.02, (5, 4))]]
    tsdf_map = _map(frames)
    assert len(np.unique(tsdf_map.instances.ids)) == 3  # two tables and the wall, however the frames numbered them
    region = map_region(tsdf_map)
    components = find_instances(region, NAMES, InstanceConfig(min_voxels=5, source="components"))
    assert [i.class_name for i in components] == ["table"]  # components merge the two
    fused = find_instances(region, NAMES, InstanceConfig(min_voxels=5))
    assert [i.class_name for i in fused] == ["table", "table"]  # the wall's instance is structure: dropped
    centres_x = sorted(float((i.bbox_min[0] + i.bbox_max[0]) / 2) for i in fused)
    assert centres_x[0] < -0.1 and centres_x[1] > 0.1
    left, right = sorted(fused, key=lambda i: i.bbox_min[0])
    assert left.bbox_max[0] <= 0.05 + 1e-9 and right.bbox_min[0] >= -0.05 - 1e-9
    assert len(components[0].voxels) == len(left.voxels) + len(right.voxels)
    # the object stage never joins 2D instances, though together they fit within a table's size
    from ssr_ros.objects.refinement import ObjectRefinementConfig, fits_within, refine_objects
    from ssr_ros.objects.shape_classes import class_size_range

    union = region.centers(np.concatenate([left.voxels, right.voxels]))
    assert fits_within(union, class_size_range("table")[1], region.voxel_size)
    listed = refine_objects(tsdf_map, NAMES, None, ObjectRefinementConfig(type="none", instances=InstanceConfig(min_voxels=5)))
    assert [o.class_name for o in listed.objects] == ["table", "table"]


def test_instance_evidence_is_saved_with_the_map(tmp_path):
    tsdf_map = _map([_frame(0.0, (1, 2)), _frame(0.03, (4, 6))])
    tsdf_map.save(tmp_path / "map.ssrmap")
    loaded = SemanticTSDF.load(tmp_path / "map.ssrmap")
    for name in ("keys", "ids", "votes"):
        np.testing.assert_array_equal(getattr(loaded.instances, name), getattr(tsdf_map.instances, name))
    assert loaded.instances.next_id == tsdf_map.instances.next_id
    assert loaded.stats()["instance_bytes"] == 14 * loaded.instances.num_voxels > 0
    loaded.reset()
    assert loaded.instances is None and loaded.stats()["instance_voxels"] == 0
    plain = SemanticTSDF(TSDFConfig(voxel_size=0.05), num_classes=len(NAMES))
    plain.save(tmp_path / "plain.ssrmap")
    assert SemanticTSDF.load(tmp_path / "plain.ssrmap").instances is None


def test_a_voxel_changes_instance_only_when_the_other_outvotes_it():
    evidence = InstanceEvidence(0.05)
    keys = voxel_keys(np.array([[0, 0, 0]]))
    evidence._vote(keys, np.array([1], np.int32))
    evidence._vote(keys, np.array([1], np.int32))
    evidence._vote(keys, np.array([2], np.int32))
    assert evidence.lookup(keys).tolist() == [1]
    evidence._vote(keys, np.array([2], np.int32))
    assert evidence.lookup(keys).tolist() == [2]


def test_scannet_folder_carries_instance_images(tmp_path):
    from ssr_ros.data.folders import ScanNetFolder, write_scannet_folder
    from ssr_ros.errors import DatasetError

    frames = [_frame(0.0, (1, 2)), _frame(0.04, (300, 7))]
    frames[0].rgb = frames[1].rgb = np.zeros((K.height, K.width, 3), np.uint8)
    write_scannet_folder(frames, tmp_path / "scene")
    reader = ScanNetFolder(tmp_path / "scene")
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(reader.frame(i).instance_ids, frame.instance_ids)
    assert ScanNetFolder(tmp_path / "scene", instance_dir="instance").instance_dir.name == "instance"
    with pytest.raises(DatasetError, match="instance folder"):
        ScanNetFolder(tmp_path / "scene", instance_dir="missing")
    frames[0].instance_ids = None
    write_scannet_folder(frames[:1], tmp_path / "plain")
    assert ScanNetFolder(tmp_path / "plain").frame(0).instance_ids is None
