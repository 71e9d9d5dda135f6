"""``ssr train-mono``: smoke training, resume, fine-tuning on an RGB-D folder, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ssr_ros.cli.main import main
from ssr_ros.completion.weights import load_model
from ssr_ros.data.folders import write_scannet_folder
from ssr_ros.mono.data import MonoDataConfig, real_images

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "config" / "training" / "mono_smoke.yaml")


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_smoke_training_writes_log_checkpoint_and_weights_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-mono", SMOKE, "--out", str(out), "--steps", "4", "--no-progress"]) == 0
    assert "weights:" in capsys.readouterr().out
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 4 and {"model", "optimizer", "scheduler", "config"} <= set(state)
    model = load_model(out / "model.pt", expected_type="mono_depth")
    assert model.config.input_width == 64
    records = _log(out)
    assert records[0]["event"] == "data" and records[0]["synthetic_images"] == 3
    assert any(r.get("event") == "validation" and r["val_synthetic_abs_rel"] > 0 for r in records)
    # resume: continues at step 4, reuses the cached images, ends at 6
    assert main(["train-mono", SMOKE, "--out", str(out), "--steps", "6", "--resume", "--no-progress"]) == 0
    records = _log(out)
    assert {"event": "resume", "step": 4} in records
    assert any(r.get("step") == 6 and "total" in r for r in records)
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 6


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    assert main(["train-mono", SMOKE, "--out", str(tmp_path / "none"), "--resume", "--no-progress"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_finetuning_on_an_rgbd_folder_trains_on_its_first_part_and_validates_on_the_rest(tmp_path):
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    sequence = SyntheticSequence(generate_scene(5), SequenceConfig(width=64, height=48, trajectory=TrajectoryConfig(num_frames=10)))
    folder = tmp_path / "recording"
    write_scannet_folder(iter(sequence), folder)
    base = tmp_path / "base"
    assert main(["train-mono", SMOKE, "--out", str(base), "--steps", "2", "--no-progress"]) == 0
    out = tmp_path / "finetuned"
    assert main(["train-mono", SMOKE, "--out", str(out), "--steps", "3", "--no-progress",
                 "--finetune", str(folder), "--weights", str(base / "model.pt")]) == 0
    data = _log(out)[0]
    assert data["synthetic_images"] == 0 and data["real_images"] == 4 and data["val_images"] == 1  # 8 / 2 frames, stride 2
    document = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert document["metadata"]["init_weights"] == str(base / "model.pt")
    split = real_images(str(folder), MonoDataConfig(real_stride=1), 48, 64, 0.96, "val")
    assert len(split) == 2


def test_weights_without_finetune_is_refused(tmp_path, capsys):
    assert main(["train-mono", SMOKE, "--out", str(tmp_path / "x"), "--weights", "w.pt", "--no-progress"]) == 2
    assert "--finetune" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mono.yaml", "mono_finetune.yaml", "mono_smoke.yaml", "mono_continue.yaml"])
def test_the_shipped_training_configs_are_valid(name):
    from ssr_ros.cli.train_command import load_run_config
    from ssr_ros.mono.training import MonoTrainingConfig

    config = load_run_config(MonoTrainingConfig, str(REPO / "config" / "training" / name))
    assert config.optim.steps > 0


def test_the_shipped_weights_load_weights_only_and_fit_the_default_taxonomy():
    from ssr_ros.mono.predictor import default_mono_weights
    from ssr_ros.taxonomy import ClassTaxonomy

    path = default_mono_weights()
    if not path.exists():
        pytest.skip(f"{path} not present")
    assert path.stat().st_size < 5 * 2**20
    model = load_model(path, expected_type="mono_depth")  # torch.load(weights_only=True)
    assert model.config.num_classes == ClassTaxonomy.load().num_classes
    assert (model.config.input_width, model.config.input_height) == (160, 120)
