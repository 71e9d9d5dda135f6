"""``ssr synth`` and ``ssr evaluate`` end to end on a small sequence."""

from __future__ import annotations

import json

import numpy as np

from ssr_ros.cli.main import main
from ssr_ros.data.folders import ScanNetFolder
from ssr_ros.data.rosbag_reader import read_bag
from ssr_ros.data.synthetic import GTVolume, SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene


def test_synth_writes_a_bag_that_reads_back_frame_for_frame(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["synth", "--seed", "3", "--out", str(out), "--frames", "5", "--width", "64", "--height", "48",
                 "--format", "both", "--voxel-size", "0.1"]) == 0
    assert "frames/min" in capsys.readouterr().out
    # the same frames regenerated from the seed equal what the bag and the folder hold
    config = SequenceConfig(width=64, height=48, trajectory=TrajectoryConfig(num_frames=5, frame_rate=15.0))
    expected = list(SyntheticSequence(generate_scene(3), config))
    for read in (read_bag(out / "bag"), list(ScanNetFolder(out / "folder"))):
        assert len(read) == 5
        for a, b in zip(expected, read):
            np.testing.assert_array_equal(a.depth, b.depth)
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_allclose(a.T_world_cam, b.T_world_cam, atol=1e-12, rtol=0)
            assert a.stamp_ns == b.stamp_ns
    gt = GTVolume.load(out / "gt" / "gt_volume.npz")
    assert gt.voxel_size == 0.1 and gt.occupied.any()
    assert np.load(out / "gt" / "gt_volume.npz")["visible"].any()
    summary = json.loads((out / "gt" / "scene.json").read_text())
    assert summary["seed"] == 3 and summary["sequence"]["width"] == 64
    assert (out / "preview.png").stat().st_size > 0 and (out / "gt" / "gt_mesh.ply").stat().st_size > 0


def test_evaluate_scores_a_perfect_and_an_observed_only_reconstruction(tmp_path, capsys):
    scene = generate_scene(5)
    gt = scene.gt_volume(0.1)
    visible = np.zeros(gt.shape, bool)
    visible[: gt.shape[0] // 2] = True  # pretend the camera saw the lower-x half
    gt.save(tmp_path / "gt_volume.npz", visible=visible)
    scene.gt_mesh(resolution=0.2).save_ply(tmp_path / "gt_mesh.ply")
    # a prediction on a grid shifted by one voxel: the evaluation aligns it
    pad = np.zeros((gt.shape[0] + 1,) + gt.shape[1:], bool)
    pad[1:] = gt.occupied
    labels = np.zeros(pad.shape, np.int64)
    labels[1:] = gt.class_ids
    np.savez(tmp_path / "perfect.npz", origin_voxel=gt.origin_voxel - [1, 0, 0], voxel_size=0.1, occupied=pad, class_ids=labels)
    assert main(["evaluate", "--gt", str(tmp_path), "--volume", str(tmp_path / "perfect.npz"), "--mesh", str(tmp_path / "gt_mesh.ply"),
                 "--fps", "5", "--points", "200000", "--json", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    for region in ("all", "observed", "unobserved"):
        assert report["completion"][region]["iou"] == 1.0
        assert report["semantics"][region]["miou"] == 1.0
    assert report["mesh"]["fscore"] > 0.95
    assert report["timing"]["eta_3d"] == report["timing"]["fps"] * 1.0 * report["mesh"]["fscore"]
    assert "IoU" in capsys.readouterr().out

    tsdf = np.where(gt.occupied & visible, -0.05, 0.1).astype(np.float32)  # only the seen half, as a TSDF
    np.savez(tmp_path / "half.npz", origin_voxel=gt.origin_voxel, voxel_size=0.1, tsdf=tsdf)
    assert main(["evaluate", "--gt-volume", str(tmp_path / "gt_volume.npz"), "--volume", str(tmp_path / "half.npz"),
                 "--json", str(tmp_path / "half.json")]) == 0
    half = json.loads((tmp_path / "half.json").read_text())
    assert half["completion"]["observed"]["iou"] == 1.0
    assert half["completion"]["unobserved"]["iou"] == 0.0 and half["completion"]["unobserved"]["num_pred"] == 0
    assert "semantics" not in half


def test_evaluate_reports_a_voxel_size_mismatch_in_one_line(tmp_path, capsys):
    gt = generate_scene(5).gt_volume(0.2)
    gt.save(tmp_path / "gt_volume.npz")
    np.savez(tmp_path / "pred.npz", origin_voxel=gt.origin_voxel, voxel_size=0.1, occupied=gt.occupied)
    assert main(["evaluate", "--gt", str(tmp_path), "--volume", str(tmp_path / "pred.npz")]) == 2
    assert "voxel size 0.1 differs from the ground truth's 0.2" in capsys.readouterr().err


def test_evaluate_scores_a_saved_map_directly(tmp_path, capsys):
    """The map file `ssr reconstruct` and the node's ~/save_map write is a --volume input."""
    from ssr_ros.map import SemanticTSDF, TSDFConfig

    scene = generate_scene(5)
    config = SequenceConfig(width=80, height=60, trajectory=TrajectoryConfig(num_frames=8))
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.1, truncation_voxels=3.0), num_classes=21)
    for frame in SyntheticSequence(scene, config):
        tsdf_map.integrate(frame)
    tsdf_map.save(tmp_path / "map" / "map.ssrmap")
    scene.gt_volume(0.1).save(tmp_path / "gt_volume.npz")
    assert main(["evaluate", "--gt", str(tmp_path), "--volume", str(tmp_path / "map"), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0.5 < report["completion"]["observed"]["iou"] <= 1.0  # the fused surface lies on the GT
    scene.gt_volume(0.2).save(tmp_path / "coarse.npz")
    assert main(["evaluate", "--gt-volume", str(tmp_path / "coarse.npz"), "--volume", str(tmp_path / "map" / "map.ssrmap")]) == 2
    assert "0.1 m voxels, the GT volume 0.2 m" in capsys.readouterr().err
