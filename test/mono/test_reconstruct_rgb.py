"""``ssr reconstruct --input-mode rgb`` on a tiny generated sequence, and the pipeline's rgb mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssr_ros.cli.main import main
from ssr_ros.completion.weights import save_model
from ssr_ros.data.folders import write_scannet_folder
from ssr_ros.errors import ConfigError, InvalidFrame
from ssr_ros.mono.network import MonoDepthNet, MonoNetConfig
from ssr_ros.pipeline import MappingPipeline, PipelineConfig


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Eight 64x48 frames of a generated room as a ScanNet folder."""
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    folder = tmp_path_factory.mktemp("rec") / "room"
    sequence = SyntheticSequence(generate_scene(3), SequenceConfig(width=64, height=48, trajectory=TrajectoryConfig(num_frames=8)))
    write_scannet_folder(iter(sequence), folder)
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """An untrained network (what it predicts does not matter here, only that it is fused)."""
    torch.manual_seed(0)
    config = MonoNetConfig(base_width=4, levels=2, input_width=64, input_height=48)
    return save_model(MonoDepthNet(config), tmp_path_factory.mktemp("w") / "mono.pt")


def _mono_config(weights: Path, **overrides) -> dict:
    # an untrained head is unsure everywhere: accept every pixel; every frame is a key frame
    return {"weights": str(weights), "device": "cpu", "max_relative_uncertainty": 10.0,
            "key_frame_rotation_deg": 0.0, "key_frame_translation_m": 0.0, **overrides}


def test_reconstruct_in_rgb_mode_fuses_predicted_depth_and_scores_it_against_the_recorded(recording, weights, tmp_path, capsys):
    config = tmp_path / "mono.yaml"
    config.write_text(json.dumps({"mono": _mono_config(weights, key_frame_translation_m=0.05)}))
    out = tmp_path / "out"
    assert main(["reconstruct", str(recording), "--out", str(out), "--input-mode", "rgb", "--config", str(config),
                 "--no-completion", "--no-progress", "--no-previews", "--up", "z"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    mono = summary["mono"]
    assert summary["config"]["input_mode"] == "rgb"
    assert mono["frames_seen"] == 8 and 1 <= mono["key_frames"] <= 8
    assert summary["frames"]["integrated"] == mono["key_frames"]
    assert mono["depth_vs_recorded"]["frames"] == mono["key_frames"] and mono["depth_vs_recorded"]["abs_rel"] > 0
    assert summary["semantics"]["source"] == "frames"  # the predicted class probabilities
    assert summary["map"]["num_blocks"] > 0
    assert "monocular:" in capsys.readouterr().out


def test_rgb_mode_ignores_the_recorded_depth(recording, weights):
    """The same color with two different depth images gives the same map."""
    from ssr_ros.data.folders import open_folder

    frame = open_folder(recording).frame(0)
    maps = []
    for depth in (frame.depth, np.full_like(frame.depth, 0.7)):
        config = PipelineConfig(device="cpu", input_mode="rgb", mono=_config(weights))
        config.completion.type = "none"
        pipeline = MappingPipeline(config)
        pipeline.integrate(dataclasses.replace(frame, depth=depth))
        maps.append(pipeline.map.query(torch.tensor([[0.0, 0.0, 1.0], [0.1, 0.2, 2.0]])))
    assert torch.equal(maps[0]["weight"], maps[1]["weight"])


def _config(weights: Path, **overrides):
    from ssr_ros.mono.predictor import MonoConfig

    return MonoConfig(**_mono_config(weights, **overrides))


def test_rgb_mode_needs_color_and_a_valid_input_mode(recording, weights):
    from ssr_ros.config import config_from_dict
    from ssr_ros.data.folders import open_folder

    config = PipelineConfig(device="cpu", input_mode="rgb", mono=_config(weights))
    config.completion.type = "none"
    pipeline = MappingPipeline(config)
    frame = open_folder(recording).frame(0)
    with pytest.raises(InvalidFrame, match="color"):
        pipeline.integrate(dataclasses.replace(frame, rgb=None))
    assert pipeline.frames_integrated == 0
    with pytest.raises(ConfigError, match="input_mode"):
        config_from_dict(PipelineConfig, {"input_mode": "stereo"})
    with pytest.raises(ConfigError, match="min_depth"):
        config_from_dict(PipelineConfig, {"mono": {"min_depth": 3.0, "max_depth": 2.0}}).validate()
