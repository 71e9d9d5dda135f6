"""Dataset folder readers on tiny fixtures of each layout, and on the shared real data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_frames import small_frames  # noqa: E402

from ssr_ros.data.folders import (  # noqa: E402
    ReplicaFolder,
    ScanNetFolder,
    SevenScenesFolder,
    TUMFolder,
    open_folder,
    scannet_label_map,
    write_scannet_folder,
)
from ssr_ros.data.image_files import write_png  # noqa: E402
from ssr_ros.data.rosbag_writer import depth_to_16uc1  # noqa: E402
from ssr_ros.errors import DatasetError  # noqa: E402
from ssr_ros.geometry.pose import quaternion_from_matrix  # noqa: E402


def _write_seven_scenes(root: Path, frames, with_labels=False):
    root.mkdir(parents=True)
    np.savetxt(root.parent / "camera-intrinsics.txt", frames[0].intrinsics.matrix)  # 3DMatch keeps it one level up
    for i, f in enumerate(frames):
        base = root / f"frame-{i:06d}"
        write_png(Path(f"{base}.color.png"), f.rgb)
        write_png(Path(f"{base}.depth.png"), depth_to_16uc1(f.depth))
        np.savetxt(f"{base}.pose.txt", f.T_world_cam, fmt="%.17g")
        if with_labels:
            write_png(Path(f"{base}.label.png"), f.labels.astype(np.uint8))


def test_scannet_writer_and_reader_round_trip(tmp_path):
    frames = small_frames()
    assert write_scannet_folder(frames, tmp_path / "scene") == len(frames)
    reader = open_folder(tmp_path / "scene")
    assert isinstance(reader, ScanNetFolder) and len(reader) == len(frames)
    for a, b in zip(frames, reader):
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.T_world_cam, b.T_world_cam)
        assert a.stamp_ns == b.stamp_ns and a.intrinsics == b.intrinsics


def test_scannet_skips_lost_tracking_and_maps_labels(tmp_path):
    frames = small_frames()
    write_scannet_folder(frames, tmp_path / "scene")
    np.savetxt(tmp_path / "scene" / "pose" / "1.txt", np.full((4, 4), -np.inf))
    (tmp_path / "scene" / "label").rename(tmp_path / "scene" / "label-filt")
    tsv = tmp_path / "labels.tsv"
    rows = ["id\traw_category\tcategory\tcount\tnyu40id"] + [f"{i}\tx\tx\t1\t{n}" for i, n in [(1, 1), (2, 2), (3, 39), (5, 14), (7, 40)]]
    tsv.write_text("\n".join(rows) + "\n")
    table = scannet_label_map(tsv)
    assert table.tolist() == [0, 1, 2, 20, 0, 13, 0, 0]
    reader = ScanNetFolder(tmp_path / "scene", label_map=np.arange(256))
    assert len(reader) == len(frames) - 1 and reader.skipped == {"non-finite pose": 1}
    np.testing.assert_array_equal(reader[1].labels, frames[2].labels)
    (tmp_path / "scene" / "pose" / "2.txt").unlink()
    with pytest.raises(DatasetError, match=r"pose file '.*pose/2.txt' is missing"):
        ScanNetFolder(tmp_path / "scene")


def test_scannet_resizes_large_color_to_depth(tmp_path):
    frames = small_frames()[:1]
    write_scannet_folder(frames, tmp_path / "scene")
    big = np.repeat(np.repeat(frames[0].rgb, 2, axis=0), 2, axis=1)
    write_png(tmp_path / "scene" / "color" / "0.png", big)
    frame = ScanNetFolder(tmp_path / "scene")[0]
    assert frame.rgb.shape == frames[0].rgb.shape
    assert np.abs(frame.rgb.astype(int) - frames[0].rgb).mean() < 12


def test_seven_scenes_folder(tmp_path):
    frames = small_frames()
    _write_seven_scenes(tmp_path / "seq-01", frames, with_labels=True)
    reader = open_folder(tmp_path / "seq-01")
    assert isinstance(reader, SevenScenesFolder) and len(reader) == len(frames)
    assert reader.intrinsics_source.endswith("camera-intrinsics.txt")
    for i, (a, b) in enumerate(zip(frames, reader)):
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.T_world_cam, b.T_world_cam, atol=1e-12)
        assert b.stamp_ns == round(i * 1e9 / 30) and b.frame_id == f"frame-{i:06d}"


def test_seven_scenes_errors_name_the_file(tmp_path):
    frames = small_frames()
    _write_seven_scenes(tmp_path / "seq", frames)
    (tmp_path / "seq" / "frame-000001.pose.txt").unlink()
    (tmp_path / "seq" / "frame-000002.color.png").write_bytes(b"not a png at all")
    np.savetxt(tmp_path / "seq" / "frame-000003.pose.txt", np.eye(3))
    reader = SevenScenesFolder(tmp_path / "seq")
    with pytest.raises(DatasetError, match=r"pose file '.*frame-000001.pose.txt' is missing"):
        reader[1]
    with pytest.raises(DatasetError, match=r"color image '.*frame-000002.color.png' cannot be read"):
        reader[2]
    with pytest.raises(DatasetError, match=r"frame-000003.pose.txt' has 9 numbers; expected 4x4"):
        reader[3]
    with pytest.raises(DatasetError, match="no frame-XXXXXX.depth.png"):
        SevenScenesFolder(tmp_path)


def test_tum_folder_pairs_by_time_and_interpolates_poses(tmp_path):
    frames = small_frames()
    root = tmp_path / "rgbd_dataset_freiburg1_xyz"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_lines, depth_lines, gt_lines = ["# color images"], ["# depth maps"], ["# timestamp tx ty tz qx qy qz qw"]
    for i, f in enumerate(frames):
        t = 1305031102.0 + i * 0.5
        write_png(root / "rgb" / f"{t + 0.01:.6f}.png", f.rgb)
        write_png(root / "depth" / f"{t:.6f}.png", (np.round(f.depth * 5000)).astype(np.uint16))
        rgb_lines.append(f"{t + 0.01:.6f} rgb/{t + 0.01:.6f}.png")
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
        trans, q = quaternion_from_matrix(f.T_world_cam)
        for dt in (-0.05, 0.05):  # the same pose just before and after: interpolation returns it
            gt_lines.append(f"{t + dt:.4f} " + " ".join(f"{v:.9f}" for v in (*trans, *q)))
    depth_lines.append(f"{1305031102.0 + 9:.6f} depth/missing.png")  # no rgb nearby: skipped
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    (root / "groundtruth.txt").write_text("\n".join(gt_lines) + "\n")
    reader = open_folder(root)
    assert isinstance(reader, TUMFolder) and len(reader) == len(frames)
    assert reader.skipped == {"no rgb within max_dt": 1}
    assert reader.intrinsics.fx == 517.3  # Freiburg 1 calibration from the folder name
    for a, b in zip(frames, reader):
        np.testing.assert_allclose(b.depth, np.round(a.depth * 5000) / 5000, atol=1e-6)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_allclose(a.T_world_cam, b.T_world_cam, atol=1e-7)
    (root / "groundtruth.txt").unlink()
    with pytest.raises(DatasetError, match="no groundtruth.txt"):
        TUMFolder(root)


def test_replica_folder(tmp_path):
    frames = small_frames()
    K = frames[0].intrinsics
    (tmp_path / "office0" / "results").mkdir(parents=True)
    (tmp_path / "cam_params.json").write_text(json.dumps({"camera": {"w": K.width, "h": K.height, "fx": K.fx, "fy": K.fy, "cx": K.cx, "cy": K.cy, "scale": 6553.5}}))
    for i, f in enumerate(frames):
        write_png(tmp_path / "office0" / "results" / f"frame{i:06d}.png", f.rgb)
        write_png(tmp_path / "office0" / "results" / f"depth{i:06d}.png", np.round(f.depth * 6553.5).astype(np.uint16))
    np.savetxt(tmp_path / "office0" / "traj.txt", np.stack([f.T_world_cam.reshape(-1) for f in frames] * 2))
    reader = open_folder(tmp_path / "office0")
    assert isinstance(reader, ReplicaFolder) and len(reader) == len(frames)
    for a, b in zip(frames, reader):
        np.testing.assert_allclose(b.depth, a.depth, atol=1 / 6553.5)
        np.testing.assert_allclose(a.T_world_cam, b.T_world_cam, atol=1e-12)
    np.savetxt(tmp_path / "office0" / "traj.txt", frames[0].T_world_cam.reshape(1, -1))
    with pytest.raises(DatasetError, match=r"traj.txt' has 1 lines but frame 3 needs line 4"):
        ReplicaFolder(tmp_path / "office0")


def test_unknown_layout_is_explained(tmp_path):
    with pytest.raises(DatasetError, match="matches no known layout"):
        open_folder(tmp_path)
    (tmp_path / "recording_0.db3").write_bytes(b"")
    with pytest.raises(DatasetError, match="looks like a rosbag2 folder .* missing its metadata.yaml"):
        open_folder(tmp_path)


# --- the shared real sequences ------------------------------------------------------------


def _reprojection(a, b, stride=4):
    """Median |depth_b(projected point of a) - z| and fraction within 3 cm."""
    K = a.intrinsics
    v, u = np.mgrid[0 : K.height : stride, 0 : K.width : stride]
    z = a.depth[v, u]
    ok = z > 0
    pts = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], -1)[ok]
    world = pts @ a.T_world_cam[:3, :3].T + a.T_world_cam[:3, 3]
    Tb = np.linalg.inv(b.T_world_cam)
    cam = world @ Tb[:3, :3].T + Tb[:3, 3]
    ub = np.round(K.fx * cam[:, 0] / cam[:, 2] + K.cx).astype(int)
    vb = np.round(K.fy * cam[:, 1] / cam[:, 2] + K.cy).astype(int)
    inside = (cam[:, 2] > 0) & (ub >= 0) & (ub < K.width) & (vb >= 0) & (vb < K.height)
    db = b.depth[vb[inside], ub[inside]]
    res = np.abs(db - cam[inside, 2])[db > 0]
    return float(np.median(res)), float(np.mean(res < 0.03))


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "folder, count, first, second, fx",
    [
        ("7scenes_tsdf_fusion/data", 500, 0, 10, 585.0),
        ("princeton_shelf_tsdf_fusion/old-version/data/sample", 50, 0, 1, 615.1951904296875),
        ("nvblox_testdata/nvblox/tests/data/3dmatch/seq-01", 5, 0, 1, 570.342205),
        ("nvblox_testdata/nvblox/tests/data/replica/office0", 4, 0, 1, 600.0),
    ],
)
def test_real_sequences_read_with_consistent_poses(shared_data, folder, count, first, second, fx):
    """Depth of one frame, moved by the poses into a later frame, lands on its depth."""
    reader = open_folder(shared_data / folder)
    assert len(reader) == count and reader.intrinsics.fx == pytest.approx(fx)
    a, b = reader[first].validate(), reader[second].validate()
    assert a.rgb.shape[:2] == a.depth.shape
    median, within = _reprojection(a, b)
    assert median < 0.02 and within > 0.6, (median, within)


def test_slightly_non_orthonormal_poses_are_repaired_and_broken_ones_refused():
    from ssr_ros.data.image_files import repair_pose
    from ssr_ros.errors import InvalidPose

    T = np.eye(4)
    T[:3, :3] += np.array([[0, 3e-4, 0], [0, 0, 0], [0, 0, 2e-4]])  # 7-Scenes-like round-off
    fixed = repair_pose(T, "pose")
    np.testing.assert_allclose(fixed[:3, :3].T @ fixed[:3, :3], np.eye(3), atol=1e-12)
    assert np.abs(fixed - T).max() < 1e-3
    T[:3, :3] *= 1.2
    with pytest.raises(InvalidPose, match="pose rotation block is not a proper rotation"):
        repair_pose(T, "pose")
