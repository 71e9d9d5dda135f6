"""Self-supervised training: data preparation and the loop lowering its loss on CPU."""

import json

import torch

from ssr_ros.map.config import TSDFConfig

from analytic_scene import analytic_scene
from ssr_ros.completion.training import (
    LossWeights,
    OptimConfig,
    SceneDataConfig,
    TrainingConfig,
    build_view_set,
    export_checkpoint,
    prepare_samples,
    select_views,
    strided_intrinsics,
    train,
)
from ssr_ros.completion.network import SSRUNetConfig
from ssr_ros.completion.weights import load_model, weights_metadata
from ssr_ros.geometry import CameraIntrinsics


def _config(tmp_path, steps=40):
    return TrainingConfig(
        network=SSRUNetConfig(base_width=4, max_width=16, levels=3),
        data=SceneDataConfig(train_seeds=[0], val_seeds=[1], frames_per_scene=8,
                             map=TSDFConfig(voxel_size=0.1, truncation_voxels=3.0), chunk_size=16, chunks_per_scene=3, views_per_chunk=2,
                             render_stride=2, virtual_views_per_chunk=0),
        losses=LossWeights(),
        optim=OptimConfig(steps=steps, batch_size=2, learning_rate=3e-3, log_every=5, validate_every=20,
                          checkpoint_every=20),
        out_dir=str(tmp_path / "run"),
        device="cpu",
    )


def test_strided_intrinsics_keep_pixel_centres():
    K = CameraIntrinsics(100.0, 100.0, 63.5, 47.5, 128, 96)
    S, offset = strided_intrinsics(K, 4)
    assert (S.width, S.height, offset) == (32, 24, 1)
    # Pixel u' of the strided image is u = 4 u' + 1 of the original: same ray.
    assert abs((5 - S.cx) / S.fx - ((4 * 5 + 1) - K.cx) / K.fx) < 1e-12


def test_prepared_chunks_are_incomplete_and_seen_by_views(tmp_path):
    import random

    config = _config(tmp_path)
    samples = prepare_samples([0], config, analytic_scene, None, random.Random(0))
    assert samples
    for s in samples:
        assert s.chunk.tsdf.shape == (16, 16, 16)
        assert len(s.view_ids) > 0
        # The reference (all frames) knows at least what the input (kept frames) observed.
        assert (s.reference_known | ~s.chunk.observed).all()
    assert any((s.reference_known & ~s.chunk.observed).any() for s in samples)


def test_chunk_origins_fall_off_the_scene_lattice(tmp_path):
    """The floor and walls must not sit at the same index of every training chunk: the map's
    chunk grid puts them anywhere, and a network trained on one alignment misplaces them on
    the others."""
    import dataclasses
    import random

    config = _config(tmp_path)
    config.data = dataclasses.replace(config.data, chunks_per_scene=40)
    scene = analytic_scene(0, config.data)
    stride = config.data.chunk_size // 2

    def offsets(jitter: bool) -> set:
        data = dataclasses.replace(config.data, origin_jitter=jitter)
        samples = prepare_samples([0], dataclasses.replace(config, data=data), analytic_scene, None, random.Random(0))
        assert samples
        return {tuple(((s.chunk.origin_voxel.cpu() - torch.tensor(scene.min_voxel)) % stride).tolist()) for s in samples}

    assert offsets(False) == {(0, 0, 0)}
    jittered = offsets(True)
    assert len(jittered) > 1 and jittered != {(0, 0, 0)}


def test_smoke_training_lowers_the_loss_and_writes_log_checkpoint_weights(tmp_path, capsys):
    torch.manual_seed(0)
    config = _config(tmp_path, steps=40)
    result = train(config, provider=analytic_scene, progress=False, command="pytest")
    assert "train:" not in capsys.readouterr().err  # progress=False: no progress bar
    first, last = sum(result.losses[:8]) / 8, sum(result.losses[-8:]) / 8
    assert last < 0.8 * first, (first, last)
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "validation" for r in records)
    assert {"depth", "color", "semantic", "tsdf_3d", "surface_points"} <= set(records[-2]) | set(records[-1])
    assert (run / "checkpoint.pt").exists()
    model = load_model(result.weights_path)
    assert model.config == config.network


def test_resume_continues_from_the_checkpoint(tmp_path):
    config = _config(tmp_path, steps=10)
    config.optim.checkpoint_every = 5
    train(config, provider=analytic_scene, progress=False)
    config.optim.steps = 14
    result = train(config, provider=analytic_scene, resume=True, progress=False)
    assert len(result.losses) == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "resume" and r["step"] == 10 for r in records)
    exported = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "exported.pt", {"note": "test"})
    assert load_model(exported).config == config.network
    assert weights_metadata(exported)["steps"] == 14


def test_virtual_views_use_the_segmenter_on_rendered_color(tmp_path):
    from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig
    from ssr_ros.completion.weights import save_model

    segmenter_path = save_model(Segmenter2d(SegmenterConfig(base_width=4, levels=2)), tmp_path / "seg.pt")
    config = _config(tmp_path, steps=4)
    config.data.virtual_views_per_chunk = 1
    config.data.segmenter_weights = str(segmenter_path)
    config.data.label_source = "segmenter"
    result = train(config, provider=analytic_scene, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("virtual_semantic" in r for r in records)
    assert all(torch.isfinite(torch.tensor(result.losses)))


def test_interrupt_keeps_checkpoint_and_weights(tmp_path, monkeypatch):
    import ssr_ros.completion.training as training

    calls = {"n": 0}
    original = training.chunk_losses

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 6:  # batch of 2: interrupted during the 4th step
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "chunk_losses", interrupting)
    config = _config(tmp_path, steps=50)
    result = train(config, provider=analytic_scene, progress=False)
    assert len(result.losses) == 3
    assert weights_metadata(result.weights_path)["interrupted"] is True
    assert weights_metadata(result.weights_path)["steps"] == 3
    assert (tmp_path / "run" / "checkpoint.pt").exists()
