"""Completion on real Kinect frames must not make the map worse than fusion alone.

Every 5th of frames 0-99 of 7-Scenes RedKitchen is mapped (gravity-aligned, as ``ssr
reconstruct`` maps it) with completion; the map's fusion-only mesh and its completed mesh are
scored against the fusion of all 500 frames (``ssr_ros.completion_evaluation.evaluate_real_frames``;
``benchmarks/bench_completion_real.py`` prints the same numbers) in the user's default run: the
packaged weights through the write-back gate at their calibrated threshold (or withheld, where
their calibration found no threshold precise enough), the room layout, and the object refinement
``ssr reconstruct`` runs after them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SSR_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data"
SEQUENCE = SHARED_DATA / "7scenes_tsdf_fusion" / "data"
LIVING_ROOM = SHARED_DATA / "open3d_testdata" / "examples" / "test_data" / "reconstruction_system" / "livingroom1_clean_micro"


@pytest.fixture(scope="module")
def real_frames_results() -> dict:
    """The default run against the all-frames reference."""
    if not SEQUENCE.is_dir():
        pytest.skip(f"real sequences not available: {SEQUENCE} is absent (set SSR_SHARED_DIR)")
    from ssr_ros.completion_evaluation import RealFramesConfig, evaluate_real_frames, real_frames_reference
    from ssr_ros.completion.inference import CompletionConfig

    config = RealFramesConfig(num_points=50_000)
    reference = real_frames_reference(SEQUENCE, config)
    return {"default": evaluate_real_frames(SEQUENCE, CompletionConfig(), config, reference, progress=False)}


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_real_frames_measurement_is_sound(real_frames_results):
    """The instrument itself: 20 frames used, the sparse fusion lies on the reference surface."""
    default = real_frames_results["default"]
    fusion = default["fusion"]
    assert default["completion_enabled"] and default["frames_used"] == 20
    # the network runs unless its calibration withheld it (then it completes nothing)
    assert (default["chunks_completed"] > 0) != bool(default["completion_withheld"])
    # labels from the structural fallback only: its catch-all class is listed, never completed
    assert default["objects"] is not None and default["objects"]["instances"] > 0 and default["objects"]["refined"] == 0
    assert fusion["precision"] > 0.85 and 0.05 < fusion["recall"] < 1.0
    # the sparse frames are among the reference's: it looked wherever they saw surface
    assert fusion["unseen_by_reference"] < 0.02 and fusion["precision_seen"] >= fusion["precision"] - 0.01
    assert default["reference"]["triangles"] > fusion["triangles"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_completion_keeps_precision_and_never_lowers_fscore_on_real_frames(real_frames_results):
    result = real_frames_results["default"]
    fusion, completion = result["fusion"], result["completion"]
    assert completion["precision"] >= 0.9 * fusion["precision"], (fusion, completion)
    assert completion["fscore"] >= fusion["fscore"], (fusion, completion)


@pytest.fixture(scope="module")
def living_room_results() -> dict:
    """The default run on a stretch where the room layout finds a room: every 5th of frames 100-199
    of the ICL-NUIM living room, against the fusion of all 211."""
    if not LIVING_ROOM.is_dir():
        pytest.skip(f"real sequences not available: {LIVING_ROOM} is absent (set SSR_SHARED_DIR)")
    from ssr_ros.completion_evaluation import RealFramesConfig, evaluate_real_frames
    from ssr_ros.completion.inference import CompletionConfig

    config = RealFramesConfig(first_frame=100, reference_frames=211, num_points=50_000)
    return evaluate_real_frames(LIVING_ROOM, CompletionConfig(), config, progress=False)


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_room_layout_on_real_frames_is_right_where_the_reference_looked_and_square(living_room_results):
    """The layout writes the room's unseen floor and walls there, square to each other. Where any
    of the 211 reference frames looked, the completed mesh keeps 0.9x fusion only's precision. (Over
    all of it, it does not: 0.76x, since the walls go up to 2.3 m where no frame looked above 1.2 m,
    which the reference counts as wrong; ``benchmarks/RESULTS.md``, *Real frames beyond the first
    stretch*.)"""
    import numpy as np

    result = living_room_results
    layout = result["layout"]
    assert layout is not None and layout["reason"] == "" and layout["voxels_written"] > 1000, layout
    fusion, completion = result["fusion"], result["completion"]
    assert completion["predicted_vertices"] > 1000
    assert completion["precision_seen"] >= 0.9 * fusion["precision_seen"], (fusion, completion)
    walls = [np.array(p["normal"][:2]) for p in layout["planes"] if p["kind"] == "wall" and p["bounding"]]
    assert len(walls) >= 2
    for a in walls:
        for b in walls:
            cos = abs(float(a @ b))  # parallel or square: 1 or 0, to the 4 decimals the report keeps
            assert min(cos, 1.0 - cos) < 1e-3, (a, b)
