"""The Redwood / Open3D reconstruction-system layout (image/, depth/, trajectory.log), as the
augmented ICL-NUIM frames in ../shared/data use it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_frames import small_frames  # noqa: E402

from ssr_ros.data.folders import RedwoodFolder, open_folder, read_trajectory_log  # noqa: E402
from ssr_ros.data.image_files import write_png  # noqa: E402
from ssr_ros.errors import DatasetError  # noqa: E402


def write_redwood(root: Path, frames, log_dir: str = "scene", skip_pose: int | None = None, with_json: bool = True):
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir()
    blocks = []
    for i, f in enumerate(frames):
        write_png(root / "image" / f"{i:05d}.png", f.rgb)
        write_png(root / "depth" / f"{i:05d}.png", np.round(f.depth * 1000).astype(np.uint16))
        if i != skip_pose:
            rows = "\n".join(" ".join(f"{v:.17g}" for v in row) for row in f.T_world_cam)
            blocks.append(f"{i} {i} {i + 1}\n{rows}\n")
    (root / log_dir).mkdir(exist_ok=True)
    (root / log_dir / "trajectory.log").write_text("".join(blocks))
    if with_json:
        K = frames[0].intrinsics
        matrix = np.array([[K.fx, 0, K.cx], [0, K.fy, K.cy], [0, 0, 1]]).T.reshape(-1).tolist()  # column-major
        (root / "camera_intrinsic.json").write_text(json.dumps({"width": K.width, "height": K.height,
                                                                 "intrinsic_matrix": matrix}))


def test_frames_poses_and_intrinsics_read_back(tmp_path):
    frames = small_frames()
    write_redwood(tmp_path / "seq", frames)
    reader = open_folder(tmp_path / "seq")
    assert isinstance(reader, RedwoodFolder) and len(reader) == len(frames)
    for a, b in zip(frames, reader):
        np.testing.assert_allclose(b.T_world_cam, a.T_world_cam, atol=1e-9)
        np.testing.assert_allclose(b.depth, np.round(a.depth * 1000) / 1000, atol=1e-6)
        assert (b.intrinsics.fx, b.intrinsics.cx, b.intrinsics.cy) == pytest.approx(
            (a.intrinsics.fx, a.intrinsics.cx, a.intrinsics.cy))


def test_a_frame_without_a_pose_is_skipped_and_counted(tmp_path):
    frames = small_frames()
    write_redwood(tmp_path / "seq", frames, skip_pose=1, with_json=False)
    reader = RedwoodFolder(tmp_path / "seq")
    assert len(reader) == len(frames) - 1 and sum(reader.skipped.values()) == 1
    assert "PrimeSense" in reader.intrinsics_source


def test_a_malformed_log_names_the_file(tmp_path):
    (tmp_path / "trajectory.log").write_text("0 0 1\n1 0 0 0\n")
    with pytest.raises(DatasetError, match="trajectory.log"):
        read_trajectory_log(tmp_path / "trajectory.log")


def test_the_augmented_icl_nuim_frames_read_with_their_camera(shared_data):
    root = shared_data / "open3d_testdata" / "examples" / "test_data" / "reconstruction_system" / "livingroom1_clean_micro"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    reader = open_folder(root)
    assert isinstance(reader, RedwoodFolder) and len(reader) == 211
    assert reader.intrinsics.fx == pytest.approx(525.0) and reader.intrinsics.cx == pytest.approx(319.5)
    frame = reader[10]
    assert frame.depth.shape == (480, 640) and 0.3 < np.median(frame.depth[frame.depth > 0]) < 5.0
    np.testing.assert_allclose(reader[0].T_world_cam, np.eye(4), atol=1e-6)  # the log starts at identity
