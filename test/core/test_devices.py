"""The device rule every stage and trainer shares."""

from __future__ import annotations

import pytest
import torch

from ssr_ros.devices import resolve_device
from ssr_ros.errors import ConfigError
from ssr_ros.objects.training import ShapePriorTrainingConfig, train_shape_prior
from ssr_ros.regularization.training import RegularizerTrainingConfig, train_regularizer


def test_auto_is_cuda_only_where_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # named, not opened


@pytest.mark.parametrize("train, config_type", [(train_shape_prior, ShapePriorTrainingConfig),
                                                (train_regularizer, RegularizerTrainingConfig)])
def test_a_device_torch_does_not_know_is_a_config_error_in_every_trainer(train, config_type, tmp_path):
    with pytest.raises(ConfigError, match="not a torch device"):
        resolve_device("gpu0")
    config = config_type()
    config.device = "gpu0"
    config.out_dir = str(tmp_path)
    with pytest.raises(ConfigError, match="not a torch device"):
        train(config, progress=False)
