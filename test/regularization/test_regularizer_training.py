"""A short training run of the learned regulariser on one tiny generated room lowers its loss,
writes a loadable model with its contract, and resumes from its checkpoint."""

import json

import pytest
import torch

from ssr_ros.errors import ConfigError
from ssr_ros.regularization.training import RegularizerTrainingConfig, train_regularizer
from ssr_ros.regularization.weights import check_regularizer_contract, load_regularizer


def tiny_config(out_dir, steps):
    config = RegularizerTrainingConfig(out_dir=str(out_dir), seed=0)
    config.data.train_seeds = [0]
    config.data.val_seeds = [1000]
    capture = config.data.capture
    capture.frames_per_scene, capture.image_width, capture.image_height = 6, 48, 36
    capture.map.voxel_size = 0.12
    config.data.crop_size = 8
    config.network.iterations, config.network.scales, config.network.hidden = 2, 2, 4
    config.optim.steps, config.optim.batch_size, config.optim.learning_rate = steps, 2, 0.02
    config.optim.warmup_steps = 0
    config.optim.log_every, config.optim.validate_every, config.optim.checkpoint_every = 1, 0, 5
    config.optim.validation_crops = 2
    config.optim.keep_snapshots = True
    return config.validate()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train_regularizer")
    return out, train_regularizer(tiny_config(out, 24), progress=False)


def test_short_run_lowers_the_loss(trained):
    _, result = trained
    first, last = sum(result.losses[:6]) / 6, sum(result.losses[-6:]) / 6
    assert last < 0.9 * first, (first, last)


def test_weights_load_with_their_contract(trained):
    out, result = trained
    model = load_regularizer(result.weights_path)
    assert model.config.iterations == 2 and model.num_labels == 21
    from ssr_ros.taxonomy import ClassTaxonomy

    names = ClassTaxonomy.load(None).names
    check_regularizer_contract(model.contract, 0.12, 0.48, names)
    with pytest.raises(ConfigError, match="voxel_size"):
        check_regularizer_contract(model.contract, 0.05, 0.48, names)
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[-1].get("validation")
    # the validation wrote the best-so-far weights and a snapshot, both loadable, at step 24
    for path in (out / "best.pt", out / "snapshots" / "step-24.pt"):
        assert load_regularizer(path).metadata["steps"] == 24


def test_resume_continues_from_the_checkpoint(trained):
    out, result = trained
    resumed = train_regularizer(tiny_config(out, 26), resume=True, progress=False)
    assert len(resumed.losses) == 26
    assert resumed.losses[:24] == pytest.approx(result.losses[:24])
    with pytest.raises(ConfigError, match="no checkpoint"):
        train_regularizer(tiny_config(out / "elsewhere", 2), resume=True, progress=False)


def test_class_term_scores_the_class_order_alone():
    from ssr_ros.regularization.training import class_cross_entropy

    labels = torch.tensor([[0, 2, 3]])  # free, class 2, class 3
    counted = torch.ones_like(labels, dtype=torch.bool)
    logits = torch.zeros(1, 4, 3)
    logits[0, 0] = 50.0  # the network calls every voxel free ...
    logits[0, 2, 1] = logits[0, 3, 2] = 5.0  # ... but orders the classes right
    right = class_cross_entropy(logits, labels, counted)
    assert float(right) < 0.05
    wrong = logits.clone()
    wrong[0, 2:, 1:] = wrong[0, 2:, 1:].flip(0)
    assert float(class_cross_entropy(wrong, labels, counted)) > 4.0
    # the free voxel and uncounted voxels do not enter
    assert float(class_cross_entropy(logits, labels, torch.tensor([[True, False, False]]))) == 0.0


def test_balanced_class_weights_follow_the_inverse_frequency():
    from types import SimpleNamespace

    from ssr_ros.regularization.training import balanced_class_weights

    labels = torch.tensor([0] * 50 + [1] * 100 + [2] * 25)
    room = SimpleNamespace(labels=labels, in_room=torch.ones_like(labels, dtype=torch.bool))
    assert balanced_class_weights([room], 4, 0.0) is None
    w = balanced_class_weights([room], 4, 0.5)
    assert w.shape == (3,)
    assert float(w[1] / w[0]) == pytest.approx(2.0)  # 4x rarer -> 2x the weight
    assert float((w[0] * 100 + w[1] * 25) / 125) == pytest.approx(1.0)  # mean 1 over the voxels
    assert float(w[2]) == 1.0  # absent class


def test_fine_tuning_adds_the_class_context_with_its_own_learning_rate(trained):
    out, result = trained
    config = tiny_config(out / "context", 3)
    config.init_weights = str(result.weights_path)
    config.network.context_levels = 2
    config.loss.unobserved_class_weight = 2.0
    config.optim.learning_rate, config.optim.context_learning_rate = 1e-7, 0.05
    config.validate()
    tuned = train_regularizer(config, progress=False)
    before, after = load_regularizer(result.weights_path), load_regularizer(tuned.weights_path)
    assert after.config.context_levels == 2
    base_change = max(float((after.state_dict()[k] - v).abs().max()) for k, v in before.state_dict().items())
    assert base_change < 1e-5  # the trained layers start from the file and barely move
    assert abs(float(after.context.beta) - 6.0) > 0.05  # the context learns at its own rate
    config.data.crop_size = 6
    with pytest.raises(ConfigError, match="context_levels"):
        config.validate()


def test_crops_carry_the_gt_surface_through_the_augmentation(trained):
    import random

    from ssr_ros.regularization.scenes import cached_room
    from ssr_ros.regularization.training import crop_sample

    out, _ = trained
    config = tiny_config(out, 1)
    room = cached_room(0, config.data.capture, out / "rooms", 21)
    start = (0, 0, 0)
    plain = crop_sample(room, start, 8, config, None)
    assert torch.equal(plain[3], room.surface[:8, :8, :8])
    for seed in range(4):
        features, labels, weight, surface = crop_sample(room, start, 8, config, random.Random(seed))
        assert int(surface.sum()) == int(plain[3].sum())
        assert bool((labels[surface] > 0).all())  # still on the GT-occupied voxels after flips and turns
