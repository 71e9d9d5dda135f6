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
from ssr_ros.mono.network import MonoDepthNet

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
    model = load_model(out / "model.pt", expected_type=MonoDepthNet)
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
    wider = tmp_path / "wider.yaml"  # the weights' network, not the config's, is fine-tuned
    wider.write_text(Path(SMOKE).read_text().replace("base_width: 4", "base_width: 6"))
    assert "base_width: 6" in wider.read_text()
    assert main(["train-mono", str(wider), "--out", str(base), "--steps", "2", "--no-progress"]) == 0
    out = tmp_path / "finetuned"
    assert main(["train-mono", SMOKE, "--out", str(out), "--steps", "3", "--no-progress",
                 "--finetune", str(folder), "--weights", str(base / "model.pt")]) == 0
    data = _log(out)[0]
    assert data["synthetic_images"] == 0 and data["real_images"] == 4 and data["val_images"] == 1  # 8 / 2 frames, stride 2
    document = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert document["metadata"]["init_weights"] == str(base / "model.pt")
    assert load_model(out / "model.pt", expected_type=MonoDepthNet).config.base_width == 6
    split = real_images(str(folder), MonoDataConfig(real_stride=1), 48, 64, 0.96, "val")
    assert len(split) == 2


def test_prepare_only_writes_the_image_cache_that_training_then_reuses(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-mono", SMOKE, "--out", str(out), "--prepare-only", "--no-progress"]) == 0
    assert "generated 3" in capsys.readouterr().out
    assert (out / "images.pt").exists() and not (out / "model.pt").exists()
    stamp = (out / "images.pt").stat().st_mtime_ns
    assert main(["train-mono", SMOKE, "--out", str(out), "--steps", "1", "--no-progress"]) == 0
    assert (out / "images.pt").stat().st_mtime_ns == stamp  # read, not rendered again


def test_parallel_rendering_gives_the_same_images_and_render_scale_the_working_size():
    from ssr_ros.mono.data import synthetic_image_set

    data = MonoDataConfig(frames_per_scene=2, workers=1)
    serial = synthetic_image_set([3, 4], data, 48, 64, 0.96)
    data.workers = 2
    parallel = synthetic_image_set([3, 4], data, 48, 64, 0.96)
    assert parallel.source == ["synthetic:3"] * 2 + ["synthetic:4"] * 2
    assert torch.equal(serial.rgb, parallel.rgb) and torch.equal(serial.depth, parallel.depth)
    data.workers, data.render_scale = 1, 2
    fine = synthetic_image_set([3], data, 48, 64, 0.96)
    assert fine.rgb.shape == (2, 48, 64, 3) and fine.depth.shape == (2, 48, 64)
    # area-averaged colour differs from the aliased render at the working size, but only a little
    difference = (fine.rgb.float() - serial.rgb[:2].float()).abs().mean()
    assert 0.1 < float(difference) < 20.0


def test_batches_mix_real_and_generated_images_as_configured():
    from ssr_ros.mono.data import ImageSet, training_batches

    def images(value, n):
        return ImageSet(torch.full((n, 4, 4, 3), value, dtype=torch.uint8), torch.full((n, 4, 4), float(value)),
                        torch.zeros(n, 4, 4, dtype=torch.int16), torch.ones(n), ["x"] * n)

    data = MonoDataConfig(real_fraction=0.25, color_jitter=0.0, flip_probability=0.5)
    batches = training_batches(images(10, 3), images(200, 2), 400, data, torch.Generator().manual_seed(0))
    x, depth, labels = next(batches)
    assert x.shape == (400, 3, 4, 4) and labels.dtype == torch.int64
    real = depth[:, 0, 0] == 200
    assert torch.equal(real | (depth[:, 0, 0] == 10), torch.ones(400, dtype=torch.bool))
    assert 0.15 < float(real.float().mean()) < 0.35
    assert torch.allclose(x[real], torch.full_like(x[real], 200 / 255))


def test_weights_without_finetune_is_refused(tmp_path, capsys):
    assert main(["train-mono", SMOKE, "--out", str(tmp_path / "x"), "--weights", "w.pt", "--no-progress"]) == 2
    assert "--finetune" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mono.yaml", "mono_finetune.yaml", "mono_smoke.yaml", "mono_continue.yaml",
                                  "mono_gpu.yaml", "mono_gpu_wide.yaml", "mono_gpu_continue.yaml",
                                  "mono_gpu_continue_b64.yaml", "mono_gpu_continue_round2.yaml"])
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
    model = load_model(path, expected_type=MonoDepthNet)  # torch.load(weights_only=True)
    assert model.config.num_classes == ClassTaxonomy.load().num_classes
    assert (model.config.input_width, model.config.input_height) == (160, 120)
