"""Shape prior: canonical grids, simulated views, network heads, weights file, training run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ssr_ros.data.synthetic.furniture import TEMPLATES
from ssr_ros.errors import MapFileError
from ssr_ros.objects.network import ShapePriorNet, ShapePriorNetworkConfig, yaw_bin_centers, yaw_peaks, yaw_targets
from ssr_ros.objects.observation import (anchor_point, from_grid_frame, make_sample, object_sdf, observation_grid,
                                         simulate_observation, template_boxes, to_grid_frame)
from ssr_ros.objects.shape_classes import shape_grid
from ssr_ros.objects.weights import load_shape_prior, save_shape_prior


def test_grid_frame_round_trip_and_binning():
    grid = shape_grid(1.0, 16)  # 1.5 m cube of 16 cells
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1, 1, (50, 3))
    anchor = np.array([0.3, -0.2, 0.1])
    np.testing.assert_allclose(from_grid_frame(to_grid_frame(pts, 0.7, anchor), 0.7, anchor), pts, atol=1e-12)
    # a point at the anchor plus (cell centre of [8, 8, 3]) in a frame turned by 90 degrees
    centre = grid.centers()[8, 8, 3].astype(np.float64)
    world = from_grid_frame(centre[None], math.pi / 2, anchor)
    inputs = observation_grid(world, world + [[0.0, 0.0, 5.0]], math.pi / 2, anchor, grid)
    assert inputs.shape == (2, 16, 16, 16)
    assert inputs[0].sum() == 1 and inputs[0, 8, 8, 3] == 1
    assert inputs[1].sum() == 0  # the free point lies outside the grid


def test_anchor_is_the_footprint_centre_on_the_floor():
    pts = np.array([[1.0, 2.0, 0.5], [3.0, 2.0, 0.7], [1.0, 5.0, 0.2]])
    np.testing.assert_allclose(anchor_point(pts, 0.0, 0.1), [2.0, 3.5, 0.1])


def test_wall_object_is_seen_from_the_front_only_and_free_space_is_outside_it():
    rng = np.random.default_rng(3)
    template = TEMPLATES["cabinet"](rng)
    surface, free = simulate_observation(template, rng)
    lo, hi = template.local_bounds()
    assert len(surface) > 20
    # the back face (y = lo) stands against the wall: nothing observed behind the middle
    assert np.mean(surface[:, 1] < lo[1] + 0.05) < 0.1
    d_free = object_sdf(free, template_boxes(template)).numpy()
    # free samples stop 7.5 cm before the hit along each ray; grazing rays and the snapping to
    # voxel centres (up to 4.3 cm) may bring a few closer, never a voxel deep inside
    assert d_free.min() > -0.05 and np.mean(d_free > 0) > 0.99
    d_surf = object_sdf(surface, template_boxes(template)).numpy()
    assert np.median(np.abs(d_surf)) < 0.05  # voxel-snapped surface points lie near the surface


def test_training_sample_target_is_the_object_sdf_turned_by_its_yaw():
    rng = np.random.default_rng(5)
    grid = shape_grid(1.1, 16)
    sample = make_sample("chair", 0, grid, rng)
    assert sample.inputs.shape == (2, 16, 16, 16) and sample.sdf.shape == (16, 16, 16)
    assert (sample.sdf < 0).any() and (sample.sdf > 0).any()
    # observed surface cells lie on the target surface (within the voxel snapping + a cell)
    cells = sample.inputs[0] > 0
    assert sample.sdf[cells].abs().median() < 0.05 + grid.cell


def test_the_prior_learns_only_the_parts_that_carry_its_class():
    from ssr_ros.objects.shape_classes import class_size_range, class_template

    # the bathtub template carries a shower curtain 1.4 m above the tub: a class of its own in
    # the map, so no part of the completed bathtub (nor of its size range)
    full = TEMPLATES["bathtub"](np.random.default_rng(3))
    tub = class_template("bathtub", "bathtub", np.random.default_rng(3))
    assert {p.class_name for p in full.parts} == {"bathtub", "shower curtain"}
    assert {p.class_name for p in tub.parts} == {"bathtub"}
    assert full.local_bounds()[1][2] > 1.9 and tub.local_bounds()[1][2] < 0.65
    assert class_size_range("bathtub")[1][2] < 0.65
    # the training target: inside the tub's walls only below its rim (the grid's z is height
    # above the floor, up to the anchor's few millimetres)
    grid = shape_grid(1.9, 32)
    for seed in range(3):
        sample = make_sample("bathtub", 0, grid, np.random.default_rng(seed))
        inside = (sample.sdf < 0).numpy()
        assert inside.any() and grid.centers()[..., 2][inside].max() < 0.65
    # a floor lamp's parts are of no taxonomy class: they stay with the 'otherfurniture' object
    lamp = class_template("floor_lamp", "otherfurniture", np.random.default_rng(5))
    assert len(lamp.parts) == len(TEMPLATES["floor_lamp"](np.random.default_rng(5)).parts)


def test_yaw_targets_and_peaks():
    bins = 36
    targets = yaw_targets(torch.tensor([0.3, -3.1]), bins)
    assert torch.allclose(targets.sum(1), torch.ones(2))
    centers = yaw_bin_centers(bins)
    assert abs(float(centers[targets[0].argmax()]) - 0.3) < 2 * math.pi / bins
    assert abs(math.remainder(float(centers[targets[1].argmax()]) + 3.1, 2 * math.pi)) < 2 * math.pi / bins
    logits = torch.log(0.5 * yaw_targets(torch.tensor([1.0]), bins)[0] + 0.5 * yaw_targets(torch.tensor([1.0 - math.pi]), bins)[0])
    peaks = yaw_peaks(logits, count=2)
    found = sorted(p for p, _ in peaks)
    assert abs(found[0] - (1.0 - math.pi)) < 0.05 and abs(found[1] - 1.0) < 0.05


def test_weights_round_trip_and_refuse_foreign_files(tmp_path):
    net = ShapePriorNet(2, ShapePriorNetworkConfig(grid_size=16, base_width=2, class_embedding=2, yaw_bins=8))
    path = save_shape_prior(net, tmp_path / "prior.pt", ["chair", "table"], {"chair": 1.0, "table": 1.7}, {"steps": 3})
    prior = load_shape_prior(path)
    assert prior.class_names == ["chair", "table"] and prior.class_index("table") == 1 and prior.class_index("bed") is None
    assert prior.grid("table").cell == pytest.approx(1.5 * 1.7 / 16)
    x = torch.rand(1, 2, 16, 16, 16)
    out_a = net.eval()(x, torch.tensor([1]))["sdf"]
    out_b = prior.model(x, torch.tensor([1]))["sdf"]
    assert torch.allclose(out_a, out_b)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(MapFileError, match="not a shape prior"):
        load_shape_prior(tmp_path / "other.pt")
    with pytest.raises(MapFileError, match="not found"):
        load_shape_prior(tmp_path / "missing.pt")


def test_train_objects_smoke_writes_log_checkpoint_weights_and_resumes(tmp_path):
    from ssr_ros.cli.main import main

    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(
        "device: cpu\nthreads: 1\ndata: {classes: [chair], validation_samples: 2}\n"
        "network: {grid_size: 16, base_width: 2, class_embedding: 2, yaw_bins: 8}\n"
        "optim: {steps: 2, batch_size: 2, log_every: 1, validate_every: 2, checkpoint_every: 1}\n")
    assert main(["train-objects", str(config), "--out", str(out), "--no-progress"]) == 0
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and any("validation" in line for line in lines)
    prior = load_shape_prior(out / "model.pt")
    assert prior.class_names == ["chair"] and prior.metadata["steps"] == 2
    assert main(["train-objects", str(config), "--out", str(out), "--steps", "3", "--resume", "--no-progress"]) == 0
    assert load_shape_prior(out / "model.pt").metadata["steps"] == 3
    assert main(["train-objects", str(config), "--out", str(tmp_path / "none"), "--resume", "--no-progress"]) == 2


def _train_objects(tmp_path, name: str, config: str) -> int:
    """``ssr train-objects`` on the yaml text ``config`` into ``tmp_path/name``: its exit status."""
    from ssr_ros.cli.main import main

    path = tmp_path / f"{name}.yaml"
    path.write_text(config)
    return main(["train-objects", str(path), "--out", str(tmp_path / name), "--no-progress"])


def _optim(steps: int, learning_rate: str) -> str:
    """The yaml line of a short training run: ``steps`` steps of 2 samples, logged and checkpointed every step."""
    return (f"optim: {{steps: {steps}, batch_size: 2, learning_rate: {learning_rate}, log_every: 1, validate_every: 0, "
            "checkpoint_every: 1}\n")


def _tiny_prior(tmp_path, classes: str, learning_rate: str):
    """A 16^3 prior of ``classes`` trained one step into ``tmp_path/first``."""
    assert _train_objects(tmp_path, "first",
                          f"device: cpu\nthreads: 1\ndata: {{classes: [{classes}], validation_samples: 2}}\n"
                          "network: {grid_size: 16, base_width: 2, class_embedding: 2, yaw_bins: 8}\n"
                          + _optim(1, learning_rate)) == 0
    return load_shape_prior(tmp_path / "first" / "model.pt")


def test_train_objects_starts_from_given_weights_with_their_network_and_classes(tmp_path):
    start = _tiny_prior(tmp_path, "chair", "1.0e-7")
    # a config of another shape and classes: the weights' own are taken, and training goes on from them
    assert _train_objects(tmp_path, "second",
                          f"device: cpu\nthreads: 1\ninit_weights: {tmp_path / 'first' / 'model.pt'}\n"
                          "data: {classes: [table, bed], validation_samples: 2}\nnetwork: {grid_size: 24, base_width: 4}\n"
                          + _optim(1, "1.0e-7")) == 0
    tuned = load_shape_prior(tmp_path / "second" / "model.pt")
    assert tuned.class_names == ["chair"] and tuned.model.config == start.model.config
    for name, value in start.model.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-4), name
    assert _train_objects(tmp_path, "third", f"device: cpu\ninit_weights: {tmp_path / 'missing.pt'}\noptim: {{steps: 1}}\n") == 2


def test_train_classes_moves_only_their_class_embeddings(tmp_path):
    start = _tiny_prior(tmp_path, "chair, table, bathtub", "0.002")
    first = tmp_path / "first" / "model.pt"
    assert _train_objects(tmp_path, "second",
                          f"device: cpu\nthreads: 1\ninit_weights: {first}\n"
                          "data: {validation_samples: 2, train_classes: [bathtub]}\n" + _optim(3, "0.1")) == 0
    tuned = load_shape_prior(tmp_path / "second" / "model.pt")
    before, after = start.model.state_dict(), tuned.model.state_dict()
    for name, value in before.items():
        if name != "embed.weight":
            assert torch.equal(after[name], value), name
    tub = start.class_index("bathtub")
    others = [i for i in range(3) if i != tub]
    assert torch.equal(after["embed.weight"][others], before["embed.weight"][others])
    assert not torch.equal(after["embed.weight"][tub], before["embed.weight"][tub])
    # a class the weights do not know, or no weights to start from, is refused
    assert _train_objects(tmp_path, "third", f"device: cpu\ninit_weights: {first}\ndata: {{train_classes: [bed]}}\n"
                          "optim: {steps: 1}\n") == 2
    assert _train_objects(tmp_path, "fourth", "device: cpu\ndata: {train_classes: [bed]}\noptim: {steps: 1}\n") == 2


def test_shipped_weights_load_with_their_contract():
    from ssr_ros.objects.shape_classes import CLASS_TEMPLATES
    from ssr_ros.objects.weights import default_shape_prior_weights

    prior = load_shape_prior(default_shape_prior_weights())
    assert prior.class_names == list(CLASS_TEMPLATES)
    assert prior.model.config.grid_size == 32 and 0.7 < prior.extents["chair"] < 1.2
    out = prior.model(torch.zeros(1, 2, 32, 32, 32), torch.tensor([prior.class_index("chair")]))
    assert out["sdf"].shape == (1, 32, 32, 32) and out["yaw_logits"].shape == (1, prior.model.config.yaw_bins)
