"""``ssr reconstruct --semantics-folder``: per-frame labels, labels + confidence or probabilities
beside any folder recording; bad files drop their frame, counted, with the map unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssr_ros.errors import DatasetError, InvalidFrame
from ssr_ros.geometry import Frame
from ssr_ros.pipeline import MappingPipeline, PipelineConfig
from ssr_ros.reconstruction import ReconstructionOptions, Recording, reconstruct
from ssr_ros.semantics.folder import SemanticsFolder

from box_rooms import orbit_poses, render_box_room
from test_structure import BOXES, INTRINSICS, ROOM

C = 21


class _Frames:
    def __init__(self, frames):
        self._frames = frames

    def __len__(self):
        return len(self._frames)

    def frame(self, index):
        return self._frames[index]


@pytest.fixture(scope="module")
def frames():
    out = []
    for index, pose in enumerate(orbit_poses(ROOM, 6)):
        depth, _ = render_box_room(ROOM, BOXES, pose, INTRINSICS)
        out.append(Frame(depth=depth, intrinsics=INTRINSICS, T_world_cam=pose, stamp_ns=index, frame_id=f"frame-{index:06d}"))
    return out


def _pipeline():
    config = PipelineConfig(device="cpu")
    config.completion.type = "none"
    return MappingPipeline(config, model=None)


def test_each_file_form_is_read(frames, tmp_path):
    shape = (INTRINSICS.height, INTRINSICS.width)
    Image.fromarray(np.full(shape, 7, np.uint8)).save(tmp_path / "frame-000000.labels.png")
    Image.fromarray(np.full(shape, 128, np.uint8)).save(tmp_path / "frame-000000.confidence.png")
    probs = np.zeros((C,) + shape, np.float32)
    probs[9] = 0.8
    np.save(tmp_path / "frame-000001.probs.npy", probs[None])  # (1, N, H, W) as a network writes it
    folder = SemanticsFolder(tmp_path, C)
    first = folder.apply(frames[0])
    assert np.all(first.labels == 7) and np.allclose(first.label_confidence, 128 / 255)
    second = folder.apply(frames[1])
    assert second.labels is None and second.label_probs.shape == shape + (C,) and second.label_probs[0, 0, 9] == 0.8
    assert folder.apply(frames[2]) is frames[2] and folder.frames_found == 2
    np.save(tmp_path / "frame-000002.probs.npy", probs[:20])
    with pytest.raises(InvalidFrame, match="frame-000002.*20 classes"):
        folder.apply(frames[2])
    with pytest.raises(DatasetError, match="does not exist"):
        SemanticsFolder(tmp_path / "missing", C)


def test_reconstruct_uses_the_folder_and_drops_bad_frames(frames, tmp_path):
    semantics = tmp_path / "semantics"
    semantics.mkdir()
    shape = (INTRINSICS.height, INTRINSICS.width)
    for frame in frames[:-1]:
        Image.fromarray(np.full(shape, 4, np.uint8)).save(semantics / f"{frame.frame_id}.labels.png")
    Image.fromarray(np.full((shape[0], shape[1] + 1), 4, np.uint8)).save(semantics / f"{frames[-1].frame_id}.labels.png")
    pipeline = _pipeline()
    pipeline.semantic_source_expected = True
    recording = Recording("test", Path("frames"), _Frames(frames), len(frames))
    options = ReconstructionOptions(progress=False, previews=False, semantics=SemanticsFolder(semantics, C))
    summary = reconstruct(pipeline, recording, tmp_path / "out", options)
    assert summary["frames"]["integrated"] == len(frames) - 1
    assert summary["frames"]["dropped_by_reason"] == {"invalid semantics": 1}
    assert summary["semantics"]["source"] == "frames"
    assert set(np.unique(pipeline.surface_voxels()["labels"])) <= {0, 4}


def test_reconstruct_without_semantics_says_structure(frames, tmp_path):
    pipeline = _pipeline()
    recording = Recording("test", Path("frames"), _Frames(frames), len(frames))
    summary = reconstruct(pipeline, recording, tmp_path, ReconstructionOptions(progress=False, previews=False))
    assert summary["semantics"]["source"] == "structure"
    assert "structural labels only" in summary["semantics"]["structure"]["note"]
