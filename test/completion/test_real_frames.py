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
SEQUENCE = Path(os.environ.get("SSR_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data" / "7scenes_tsdf_fusion" / "data"


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
