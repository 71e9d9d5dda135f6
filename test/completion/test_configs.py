"""The shipped training configs parse and validate; the CLI exposes the commands."""

from pathlib import Path

import pytest

from ssr_ros.cli.main import build_parser
from ssr_ros.cli.train_command import load_training_config
from ssr_ros.completion.segmenter_training import SegmenterTrainingConfig
from ssr_ros.completion.training import SceneDataConfig, TrainingConfig
from ssr_ros.config import config_from_dict, load_yaml_config
from ssr_ros.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "training"


@pytest.mark.parametrize("name", ["smoke.yaml", "default.yaml"])
def test_training_configs_validate(name):
    config = load_training_config(str(CONFIG_DIR / name))
    assert config.data.chunk_size % config.network.size_multiple == 0
    assert not set(config.data.train_seeds) & set(config.data.val_seeds)


def test_segmenter_config_validates():
    config = load_yaml_config(SegmenterTrainingConfig, CONFIG_DIR / "segmenter.yaml")
    assert config.network.num_classes == 21


def test_cli_overrides_and_refusals(tmp_path):
    config = load_training_config(str(CONFIG_DIR / "smoke.yaml"), out=str(tmp_path), steps=3, device="cpu")
    assert (config.out_dir, config.optim.steps, config.device) == (str(tmp_path), 3, "cpu")
    with pytest.raises(ConfigError, match="val_seeds"):
        config_from_dict(SceneDataConfig, {"train_seeds": [1, 2], "val_seeds": [2]}).validate()
    with pytest.raises(ConfigError, match="multiple of 16"):
        config_from_dict(TrainingConfig, {"data": {"chunk_size": 24}}).validate()
    with pytest.raises(ConfigError, match="unknown option"):
        config_from_dict(TrainingConfig, {"optim": {"stepz": 3}})


def test_cli_has_train_commands():
    parser = build_parser()
    args = parser.parse_args(["train", "x.yaml", "--resume"])
    assert args.resume and args.config == "x.yaml"
    assert parser.parse_args(["train-segmenter", "y.yaml"]).config == "y.yaml"


@pytest.mark.parametrize("kind, heights", [("handheld", (1.2, 1.8)), ("robot", (0.35, 0.95))])
def test_the_rooms_are_captured_along_the_configured_camera_path(kind, heights):
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.completion_evaluation import EvaluationConfig

    for config in (EvaluationConfig(frames_per_scene=6, trajectory=kind),
                   SceneDataConfig(frames_per_scene=6, trajectory=kind)):
        _, sequence = synthetic_sequence(1510, config.validate())
        z = sequence.trajectory.poses[:, 2, 3]
        assert heights[0] <= z.min() and z.max() <= heights[1]
    with pytest.raises(ConfigError):
        EvaluationConfig(trajectory="tour").validate()  # a multi-room floor's tour is no room's path
