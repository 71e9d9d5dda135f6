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


def test_resume_continues_from_the_checkpoint(trained):
    out, result = trained
    resumed = train_regularizer(tiny_config(out, 26), resume=True, progress=False)
    assert len(resumed.losses) == 26
    assert resumed.losses[:24] == pytest.approx(result.losses[:24])
    with pytest.raises(ConfigError, match="no checkpoint"):
        train_regularizer(tiny_config(out / "elsewhere", 2), resume=True, progress=False)
