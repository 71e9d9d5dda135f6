"""The monocular network, its loss, metrics, weights file and predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssr_ros.completion.weights import load_model, read_weights, save_model
from ssr_ros.errors import InvalidInput, MapFileError
from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.mono.losses import depth_metrics, laplace_nll, mono_loss
from ssr_ros.mono.network import MAX_LOG_SCALE, MIN_LOG_SCALE, MonoDepthNet, MonoNetConfig
from ssr_ros.mono.predictor import MonoConfig, MonoPredictor

TINY = MonoNetConfig(base_width=4, levels=2, input_width=40, input_height=32, num_classes=5)


def test_outputs_have_the_input_size_and_bounded_depth_and_scale():
    model = MonoDepthNet(TINY).eval()
    out = model(torch.rand(2, 3, 30, 37))  # not a multiple of the size step: padded inside
    assert out.log_depth.shape == (2, 30, 37) and out.log_scale.shape == (2, 30, 37)
    assert out.logits.shape == (2, 5, 30, 37)
    depth = torch.exp(out.log_depth)
    assert bool((depth >= TINY.min_depth - 1e-5).all() and (depth <= TINY.max_depth + 1e-4).all())
    assert bool((out.log_scale >= MIN_LOG_SCALE).all() and (out.log_scale <= MAX_LOG_SCALE).all())
    with pytest.raises(InvalidInput):
        model(torch.rand(1, 1, 32, 32))


def test_the_nll_rewards_confidence_only_where_the_depth_is_right():
    target = torch.full((1, 4, 4), 2.0)
    right, wrong = torch.full((1, 4, 4), math.log(2.0)), torch.full((1, 4, 4), math.log(3.0))
    sure, unsure = torch.full((1, 4, 4), math.log(0.01)), torch.full((1, 4, 4), math.log(0.5))
    assert laplace_nll(right, sure, target) < laplace_nll(right, unsure, target)
    assert laplace_nll(wrong, unsure, target) < laplace_nll(wrong, sure, target)
    # pixels without a target do not count
    holes = target.clone()
    holes[0, 0] = 0.0
    wrong_there = right.clone()
    wrong_there[0, 0] = math.log(9.0)
    assert torch.isclose(laplace_nll(wrong_there, sure, holes), laplace_nll(right, sure, target))


def test_the_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    model = MonoDepthNet(TINY)
    rgb = torch.rand(2, 3, 32, 40)
    depth = 1.0 + 2.0 * rgb[:, 0]  # depth that the color tells
    labels = (rgb[:, 1] * 4).long() + 1
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        terms = mono_loss(model(rgb), depth, labels, semantic_weight=0.5)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["total"].detach()))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses  # the NLL has no floor at 0


def test_depth_metrics_on_a_known_error():
    target = torch.tensor([1.0, 2.0, 4.0, 0.0])
    predicted = torch.tensor([1.1, 2.2, 4.4, 7.0])  # 10% too far; the last pixel has no target
    m = depth_metrics(predicted, target)
    assert m["pixels"] == 3
    assert m["abs_rel"] == pytest.approx(0.1)
    assert m["rmse"] == pytest.approx(math.sqrt((0.01 + 0.04 + 0.16) / 3))
    assert m["delta1"] == 1.0
    assert depth_metrics(torch.tensor([2.0]), torch.tensor([1.0]))["delta1"] == 0.0


def test_weights_round_trip_through_a_weights_only_file(tmp_path):
    model = MonoDepthNet(TINY)
    path = save_model(model, tmp_path / "mono.pt", metadata={"note": "test"})
    document = read_weights(path)  # torch.load(weights_only=True) inside
    assert document["model_type"] == "mono_depth"
    loaded = load_model(path, expected_type=MonoDepthNet)
    assert loaded.config == TINY
    x = torch.rand(1, 3, 32, 40)
    assert torch.equal(loaded(x).log_depth, model.eval()(x).log_depth)
    with pytest.raises(MapFileError, match="expected 'ssr_unet'"):
        load_model(path, expected_type="ssr_unet")
    # the completion package's loader does not know the monocular network unless handed its class
    with pytest.raises(MapFileError, match="its class"):
        load_model(path)


def _predictor(tmp_path, **config) -> MonoPredictor:
    torch.manual_seed(0)
    path = save_model(MonoDepthNet(TINY), tmp_path / "mono.pt")
    return MonoPredictor(MonoConfig(weights=str(path), device="cpu", **config), num_classes=5)


def test_the_predictor_scales_depth_with_the_focal_length_and_drops_unsure_pixels(tmp_path):
    predictor = _predictor(tmp_path, max_relative_uncertainty=10.0, min_depth=0.0, max_depth=1000.0)
    rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    K = CameraIntrinsics(0.96 * 64, 0.96 * 64, 31.5, 23.5, 64, 48)
    K2 = CameraIntrinsics(2 * 0.96 * 64, 2 * 0.96 * 64, 31.5, 23.5, 64, 48)
    a, b = predictor(rgb, K), predictor(rgb, K2)
    assert a.depth.shape == (48, 64) and a.weight.shape == (48, 64) and a.labels.shape == (48, 64)
    assert a.labels.min() >= 0 and a.labels.max() < 5
    assert np.all((a.label_confidence >= 0.2) & (a.label_confidence <= 1.0))  # the top of 5 classes
    np.testing.assert_allclose(b.depth, 2 * a.depth, rtol=1e-5)  # twice the focal length: twice as far
    assert np.all((a.weight > 0) & (a.weight <= 1))
    # weight falls as the uncertainty grows
    order = np.argsort(a.sigma.ravel())
    assert a.weight.ravel()[order[0]] >= a.weight.ravel()[order[-1]]
    strict = _predictor(tmp_path, max_relative_uncertainty=float(np.median(a.sigma)), min_depth=0.0, max_depth=1000.0)
    c = strict(rgb, K)
    dropped = c.sigma > float(np.median(a.sigma))
    assert dropped.any() and np.all(c.depth[dropped] == 0) and np.all(c.weight[dropped] == 0)
    with pytest.raises(InvalidInput):
        predictor(rgb[..., 0], K)


def test_flip_averaging_predicts_a_mirrored_frame_as_the_mirror_of_the_frame(tmp_path):
    rgb = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    K = CameraIntrinsics(0.96 * 64, 0.96 * 64, 31.5, 23.5, 64, 48)
    loose = {"max_relative_uncertainty": 10.0, "min_depth": 0.0, "max_depth": 1000.0}
    for flip in (True, False):
        predictor = _predictor(tmp_path, flip_average=flip, **loose)
        a, b = predictor(rgb, K), predictor(np.ascontiguousarray(rgb[:, ::-1]), K)
        difference = np.abs(b.depth_unfiltered - a.depth_unfiltered[:, ::-1]).max()
        if flip:  # the average of a frame's and its mirror's predictions is the same for both, mirrored
            assert difference < 1e-4 * a.depth_unfiltered.max()
            np.testing.assert_allclose(b.sigma, a.sigma[:, ::-1], rtol=1e-4)
            # labels go back to the camera's size by nearest sampling, which is not mirror-symmetric at cell edges
            assert np.mean(b.labels == a.labels[:, ::-1]) > 0.9
        else:  # one pass of an untrained network is not mirror-symmetric
            assert difference > 1e-3 * a.depth_unfiltered.max()


def test_weights_for_another_taxonomy_are_refused(tmp_path):
    from ssr_ros.errors import ConfigError

    path = save_model(MonoDepthNet(TINY), tmp_path / "mono.pt")
    with pytest.raises(ConfigError, match="5 classes"):
        MonoPredictor(MonoConfig(weights=str(path), device="cpu"), num_classes=21)


def test_missing_weights_name_the_training_command(tmp_path):
    with pytest.raises(MapFileError, match="ssr train-mono"):
        MonoPredictor(MonoConfig(weights=str(tmp_path / "none.pt"), device="cpu"))
