"""``ssr reconstruct`` and ``ssr render`` end to end: generated bag and folder, errors, real sequences."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ssr_ros.cli.main import main
from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS, write_bag
from ssr_ros.errors import DatasetError
from ssr_ros.pipeline import MappingPipeline, PipelineConfig
from ssr_ros.reconstruction import Recording, ReconstructionOptions, open_recording, reconstruct

from synthetic_frames import small_frames

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A generated room: 12 frames at 160x120 as a bag and a ScanNet folder, with GT at 5 cm."""
    out = tmp_path_factory.mktemp("synth") / "run"
    assert main(["synth", "--seed", "3", "--out", str(out), "--frames", "12", "--width", "160", "--height", "120",
                 "--format", "both", "--voxel-size", "0.05"]) == 0
    return out


def _check_outputs(out: Path) -> dict:
    for name in ("map.ssrmap", "mesh.ply", "mesh_semantic.ply", "voxels.ply", "summary.json", "previews/previews.png"):
        assert (out / name).stat().st_size > 0, name
    pipeline = MappingPipeline(PipelineConfig(completion=dataclasses.replace(PipelineConfig().completion, type="none")))
    pipeline.load(out)  # what the node's load_map service does
    assert pipeline.map.num_blocks > 0
    from plyfile import PlyData

    vertex = PlyData.read(str(out / "mesh.ply"))["vertex"]
    assert {"red", "green", "blue", "label"} <= {p.name for p in vertex.properties}
    return json.loads((out / "summary.json").read_text())


def _check_scores(summary: dict) -> None:
    metrics = summary["metrics"]
    # 12 frames see a small part of the room: observed space must be right, the rest is not scored here
    assert metrics["completion"]["observed"]["iou"] > 0.6
    assert metrics["semantics"]["observed"]["miou"] > 0.5
    assert metrics["mesh"]["precision"] > 0.9


def test_reconstruct_a_generated_bag_scores_against_its_ground_truth(synth, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reconstruct", str(synth / "bag"), "--out", str(out), "--gt", str(synth / "gt"), "--gt-points", "40000", "--no-completion",
                 "--no-progress"]) == 0
    summary = _check_outputs(out)
    assert summary["input"]["kind"] == "rosbag2" and summary["input"]["topics"]["depth"] == DEFAULT_TOPICS.depth
    assert summary["frames"]["integrated"] == 12 and summary["frames"]["dropped"] == 0
    assert summary["speed"]["integrate_fps"] > 0 and summary["map"]["num_blocks"] > 0
    assert summary["memory"]["peak_rss_mb"] > 0
    assert {"integrate", "save"} <= set(summary["speed"]["pipeline_timings"])
    _check_scores(summary)
    assert "IoU" in capsys.readouterr().out


def test_reconstruct_a_generated_folder_with_stride_and_node_config(synth, tmp_path):
    out = tmp_path / "out"
    # the node's parameter file sets map.max_depth 4.0; the flag overrides its voxel size
    assert main(["reconstruct", str(synth / "folder"), "--out", str(out), "--gt", str(synth / "gt"), "--gt-points", "40000", "--no-completion",
                 "--no-progress", "--config", str(REPO / "config" / "mapping.yaml"), "--voxel-size", "0.05",
                 "--stride", "2", "--limit", "5"]) == 0
    summary = _check_outputs(out)
    assert summary["input"]["kind"] == "scannet"
    assert summary["frames"]["read"] == 5 and summary["frames"]["integrated"] == 5
    assert summary["config"]["map"]["max_depth"] == 4.0 and summary["config"]["map"]["voxel_size"] == 0.05
    assert summary["metrics"]["completion"]["observed"]["iou"] > 0.5
    assert summary["metrics"]["mesh"]["precision"] > 0.9


def test_frames_from_a_start_frame_in_folders_and_bags(synth, tmp_path):
    for path in (synth / "folder", synth / "bag"):
        recording = open_recording(path)
        stamps = [frame.stamp_ns for frame in recording.frames()]
        assert len(set(stamps)) == len(stamps) >= 8
        assert [frame.stamp_ns for frame in recording.frames(2, 3, start=3)] == stamps[3::2][:3]
        assert [frame.stamp_ns for frame in recording.frames(start=len(stamps))] == []
    recording = open_recording(synth / "folder")
    assert recording.frames_to_use(2, None, 3) == len(stamps[3::2])
    assert recording.frames_to_use(1, None, len(stamps) + 5) == 0
    out = tmp_path / "out"
    assert main(["reconstruct", str(synth / "folder"), "--out", str(out), "--no-completion", "--no-progress",
                 "--no-previews", "--start", "4", "--limit", "3"]) == 0
    frames = json.loads((out / "summary.json").read_text())["frames"]
    assert frames["start"] == 4 and frames["read"] == 3 and frames["integrated"] == 3
    assert main(["reconstruct", str(synth / "folder"), "--out", str(out), "--start", "-1"]) != 0


def test_render_a_saved_map_and_mesh(synth, tmp_path):
    out = tmp_path / "out"
    assert main(["reconstruct", str(synth / "bag"), "--out", str(out), "--no-completion", "--no-progress", "--no-previews",
                 "--limit", "4"]) == 0
    from PIL import Image

    assert main(["render", str(out), "--out", str(tmp_path / "orbit.png"), "--orbit", "2", "--width", "64", "--height", "48",
                 "--color-by", "label"]) == 0
    assert main(["render", str(out / "mesh.ply"), "--out", str(tmp_path / "mesh.png"), "--width", "96", "--height", "72"]) == 0
    pose = open_recording(synth / "bag").reader.__iter__().__next__().T_world_cam
    assert main(["render", str(out / "mesh_semantic.ply"), "--out", str(tmp_path / "posed.png"), "--width", "96",
                 "--height", "72", "--pose", ",".join(str(v) for v in pose.ravel())]) == 0
    for name in ("orbit_000.png", "orbit_001.png", "mesh.png", "posed.png"):
        image = np.asarray(Image.open(tmp_path / name))
        assert (np.abs(image.astype(int) - 30).sum(axis=2) > 0).mean() > 0.05, f"{name} shows almost nothing"


class _Interrupted(Recording):
    """A recording whose reader is interrupted (as by Ctrl-C) after ``after`` frames."""

    def __init__(self, frames, after):
        super().__init__("test", Path("interrupted"), None, len(frames))
        self._frames, self._after = frames, after

    def frames(self, stride=1, limit=None, start=0):
        for i, frame in enumerate(self._frames):
            if i == self._after:
                raise KeyboardInterrupt
            yield frame


def test_ctrl_c_keeps_what_was_built_and_bad_frames_are_counted(tmp_path):
    frames = [dataclasses.replace(f) for f in small_frames(4)]
    frames.insert(1, dataclasses.replace(frames[0], depth=np.zeros_like(frames[0].depth)))  # no valid depth
    bad_pose = frames[0].T_world_cam.copy()
    bad_pose[0, 0] = np.nan
    frames.insert(2, dataclasses.replace(frames[0], T_world_cam=bad_pose))
    pipeline = MappingPipeline(PipelineConfig(completion=dataclasses.replace(PipelineConfig().completion, type="none")))
    summary = reconstruct(pipeline, _Interrupted(frames, after=5), tmp_path, ReconstructionOptions(progress=False))
    assert summary["interrupted"] == "integration"
    assert summary["frames"]["read"] == 5 and summary["frames"]["integrated"] == 3
    assert summary["frames"]["dropped_by_reason"] == {"invalid depth": 1, "invalid pose": 1}
    assert (tmp_path / "map.ssrmap").exists() and (tmp_path / "mesh.ply").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] == "integration"


def test_errors_are_one_actionable_line(synth, tmp_path, capsys):
    # a bag whose depth topic cannot be recognised: the topics it has are listed
    topics = dataclasses.replace(DEFAULT_TOPICS, depth="/camera/infra1/image_rect_raw")
    write_bag(small_frames(2), tmp_path / "nodepth", storage="mcap", topics=topics)
    assert main(["reconstruct", str(tmp_path / "nodepth"), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no depth image topic" in err and "/camera/infra1/image_rect_raw" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    # a named topic that is not there
    assert main(["reconstruct", str(synth / "bag"), "--out", str(tmp_path / "o2"), "--depth-topic", "/nope"]) == 2
    err = capsys.readouterr().err
    assert "/nope" in err and DEFAULT_TOPICS.depth in err
    # a corrupt bag: the database file is cut short
    corrupt = tmp_path / "corrupt"
    shutil.copytree(synth / "bag", corrupt)
    db = next(corrupt.glob("*.db3"))
    db.write_bytes(db.read_bytes()[:5000])
    assert main(["reconstruct", str(corrupt), "--out", str(tmp_path / "o3"), "--no-completion", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"cannot open bag '{corrupt}'" in err and "Traceback" not in err
    with pytest.raises(DatasetError, match="cannot open bag"):
        main(["--verbose", "reconstruct", str(corrupt), "--out", str(tmp_path / "o3"), "--no-completion", "--no-progress"])
    # an output directory that cannot be created (a file is in the way)
    (tmp_path / "file").write_text("x")
    assert main(["reconstruct", str(synth / "bag"), "--out", str(tmp_path / "file" / "out")]) == 2
    assert "not writable" in capsys.readouterr().err
    # weights that do not exist are named
    assert main(["reconstruct", str(synth / "bag"), "--out", str(tmp_path / "o4"), "--model", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err
    assert not (tmp_path / "o4").exists()  # no empty output folder left behind
    # a folder in no known layout
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", str(tmp_path / "empty"), "--out", str(tmp_path / "o5")]) == 2
    assert "matches no known layout" in capsys.readouterr().err


def test_unreadable_frames_are_skipped_counted_and_too_many_stop_the_run(synth, tmp_path, capsys):
    folder = tmp_path / "folder"
    shutil.copytree(synth / "folder", folder)
    depths = sorted((folder / "depth").glob("*.png"), key=lambda p: int(p.stem))
    depths[3].write_bytes(b"this is not a PNG")
    out = tmp_path / "one_bad"
    assert main(["reconstruct", str(folder), "--out", str(out), "--no-completion", "--no-progress", "--no-previews",
                 "--limit", "6"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"]["integrated"] == 5 and summary["frames"]["dropped_by_reason"] == {"unreadable depth image": 1}
    assert summary["frames"]["unreadable"] == 1 and depths[3].name in summary["frames"]["unreadable_examples"][0]
    assert summary["error"] is None
    # then every frame from the 4th on is broken: the run stops after 3 in a row, keeping the first 3
    for path in depths[4:]:
        path.write_bytes(b"")
    capsys.readouterr()
    out = tmp_path / "many_bad"
    assert main(["reconstruct", str(folder), "--out", str(out), "--no-completion", "--no-progress", "--no-previews",
                 "--max-unreadable-run", "3"]) == 2
    err = capsys.readouterr().err
    assert "3 unreadable frames in a row" in err and "what was built is saved" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"]["integrated"] == 3 and summary["frames"]["unreadable"] == 3
    assert "unreadable frames in a row" in summary["error"]
    assert (out / "map.ssrmap").exists()
    # a limit on the total
    out = tmp_path / "total"
    assert main(["reconstruct", str(folder), "--out", str(out), "--no-completion", "--no-progress", "--no-previews",
                 "--max-unreadable-run", "0", "--max-unreadable", "5"]) == 2
    assert "5 unreadable frames in all" in capsys.readouterr().err


def test_a_run_that_fails_before_writing_leaves_no_empty_output_folder(tmp_path):
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "missing"), "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()
    (tmp_path / "kept").mkdir()
    assert main(["reconstruct", str(tmp_path / "missing"), "--out", str(tmp_path / "kept"), "--no-progress"]) == 2
    assert (tmp_path / "kept").is_dir()  # it was there before: left alone


def test_model_path_is_used(synth, tmp_path):
    from ssr_ros.completion.network import SSRUNetConfig, build_ssr_unet
    from ssr_ros.completion.weights import save_model

    from ssr_ros.completion.contract import ModelContract

    model = build_ssr_unet(SSRUNetConfig(base_width=2, max_width=4, levels=2, norm_groups=1))
    contract = ModelContract(voxel_size=0.1, truncation=0.4, chunk_size=32, num_classes=21)
    save_model(model, tmp_path / "tiny.pt", contract=contract)
    out = tmp_path / "out"
    assert main(["reconstruct", str(synth / "bag"), "--out", str(out), "--weights", str(tmp_path / "tiny.pt"), "--limit", "3",
                 "--no-progress", "--no-previews", "--voxel-size", "0.1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completion"]["enabled"] and summary["completion"]["chunks_completed"] > 0
    assert summary["config"]["completion"]["weights"].endswith("tiny.pt")
    # after completion the objects stage ran: its object list beside the map, its counts in the summary
    from ssr_ros.objects.object_list import load_object_list

    assert summary["objects"]["refined"] <= summary["objects"]["instances"] == len(load_object_list(out / "objects.json"))
    assert "objects.json" in summary["files"]
    out = tmp_path / "no_objects"
    assert main(["reconstruct", str(synth / "bag"), "--out", str(out), "--weights", str(tmp_path / "tiny.pt"), "--limit", "3",
                 "--no-progress", "--no-previews", "--voxel-size", "0.1", "--no-objects"]) == 0
    assert json.loads((out / "summary.json").read_text())["objects"] is None and not (out / "objects.json").exists()


# ----------------------------------------------------------------------------- real sequences
def test_real_7scenes_reconstructs(shared_data, tmp_path):
    out = tmp_path / "kitchen"
    assert main(["reconstruct", str(shared_data / "7scenes_tsdf_fusion" / "data"), "--out", str(out), "--stride", "100",
                 "--no-completion", "--no-progress", "--voxel-size", "0.05"]) == 0
    summary = _check_outputs(out)
    assert summary["input"]["kind"] == "7scenes" and summary["frames"]["integrated"] == 5
    # a kitchen seen from 1-3 m is room-scale for 5 cm voxels: no scale hint
    assert 1.0 < summary["scale"]["median_depth_m"] < 3.0 and summary["scale"]["hint"] is None


def test_real_3dmatch_and_shelf_reconstruct(shared_data, tmp_path):
    for name, path in (("studyroom", shared_data / "nvblox_testdata/nvblox/tests/data/3dmatch/seq-01"),
                       ("shelf", shared_data / "princeton_shelf_tsdf_fusion/old-version/data/sample")):
        assert main(["reconstruct", str(path), "--out", str(tmp_path / name), "--limit", "3", "--no-completion",
                     "--no-progress", "--no-previews", "--voxel-size", "0.04"]) == 0, name
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["frames"]["integrated"] == 3
        scale = summary["scale"]
        if name == "shelf":  # a tabletop seen from under a metre: the run names a finer voxel
            assert scale["median_depth_m"] < 1.0 and "--voxel-size 0.01" in scale["hint"]
            assert "--no-completion" not in scale["hint"]  # completion is off in this run already
        else:
            assert scale["hint"] is None


def test_real_replica_scores_against_its_gt_mesh(shared_data, tmp_path):
    replica = shared_data / "nvblox_testdata" / "nvblox" / "tests" / "data" / "replica"
    out = tmp_path / "office0"
    assert main(["reconstruct", str(replica / "office0"), "--out", str(out), "--gt", str(replica / "office0_mesh.ply"), "--gt-points", "50000",
                 "--no-completion", "--no-progress", "--no-previews", "--voxel-size", "0.05"]) == 0
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    # four frames see a part of the office: the seen part must be reconstructed well
    assert metrics["mesh_seen"]["fscore"] > 0.9 and metrics["mesh"]["precision"] > 0.9
    assert 0.05 < metrics["mesh_seen"]["seen_fraction"] < 0.5


def test_reconstruct_a_bag_with_per_class_probabilities(tmp_path):
    from ssr_ros.data.rosbag_writer import RosbagWriter

    frames = [dataclasses.replace(f, labels=None) for f in small_frames()]
    H, W = frames[0].depth.shape
    probabilities = np.zeros((H, W, 21), np.uint8)
    probabilities[..., 7] = 230
    with RosbagWriter(tmp_path / "bag") as writer:
        writer.add_topic("probabilities", "/seg/probs")
        for frame in frames:
            writer.write(frame)
            writer.write_message("probabilities", writer.image_message(frame.stamp_ns, probabilities, "8UC21"), frame.stamp_ns)
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "bag"), "--out", str(out), "--no-completion", "--no-progress",
                 "--no-previews", "--label-probabilities-topic", "/seg/probs"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["semantics"]["source"] == "frames"
    assert summary["input"]["topics"]["label_probabilities"] == "/seg/probs"


def test_the_scale_hint_names_a_finer_voxel_only_for_close_range_recordings():
    from ssr_ros.geometry import CameraIntrinsics, Frame
    from ssr_ros.reconstruction import CLOSE_RANGE_VOXELS, median_depth, scale_summary

    depth = np.full((48, 64), 0.7, np.float32)
    depth[:, :16] = np.nan  # invalid pixels do not count
    depth[:, 16:24] = 0.0
    frame = Frame(depth=depth, intrinsics=CameraIntrinsics(50.0, 50.0, 31.5, 23.5, 64, 48), T_world_cam=np.eye(4))
    assert median_depth(frame, step=1) == pytest.approx(0.7)
    assert median_depth(dataclasses.replace(frame, depth=np.zeros((48, 64), np.float32))) is None

    room = scale_summary([2.0, 2.4, 1.8], 0.05, completion=True)
    assert room["median_depth_m"] == pytest.approx(2.0) and room["voxels_across_median_depth"] == pytest.approx(40.0)
    assert room["hint"] is None
    assert scale_summary([0.93], 0.05, completion=True)["hint"] is None  # a robot's low path through a room
    shelf = scale_summary([0.7, 0.72, 0.68], 0.05, completion=True)
    assert shelf["voxels_across_median_depth"] < CLOSE_RANGE_VOXELS
    assert "--voxel-size 0.015" in shelf["hint"] and "--no-completion" in shelf["hint"]
    assert "--no-completion" not in scale_summary([0.7], 0.05, completion=False)["hint"]
    assert scale_summary([0.7], 0.01, completion=True)["hint"] is None  # 70 voxels: fine already
    assert scale_summary([], 0.05, completion=True) is None
