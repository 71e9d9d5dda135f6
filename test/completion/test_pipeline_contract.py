"""The pipeline checks a completion model's contract and withholds models that calibration rejected."""

import pytest

from ssr_ros.completion.contract import Calibration, ModelContract
from ssr_ros.completion.inference import CompletionConfig
from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
from ssr_ros.errors import ConfigError
from ssr_ros.map import TSDFConfig
from ssr_ros.pipeline import MappingPipeline, PipelineConfig


def model_with(calibration=Calibration(), voxel_size=0.05):
    model = SSRUNet(SSRUNetConfig(base_width=2, max_width=4, levels=2))
    model.contract = ModelContract(voxel_size=voxel_size, truncation=0.2, chunk_size=32, num_classes=21,
                                   calibration=calibration)
    return model


def test_a_model_for_another_voxel_size_is_refused_with_both_sizes_named():
    with pytest.raises(ConfigError, match="0.1 m voxels but the map has 0.05 m"):
        MappingPipeline(PipelineConfig(map=TSDFConfig(voxel_size=0.05)), model=model_with(voxel_size=0.1))


def test_a_model_calibration_rejected_is_withheld_unless_a_threshold_is_set():
    rejected = Calibration(min_confidence=1.0, fitted_on="rooms 1500-1505")
    pipeline = MappingPipeline(PipelineConfig(), model=model_with(rejected))
    assert pipeline.model is None and "1500-1505" in pipeline.completion_withheld
    assert pipeline.stats()["completion_withheld"]
    forced = MappingPipeline(PipelineConfig(completion=CompletionConfig(min_confidence=0.7)), model=model_with(rejected))
    assert forced.completion_enabled and not forced.completion_withheld
    accepted = MappingPipeline(PipelineConfig(), model=model_with(Calibration(min_confidence=0.8, fitted_on="x")))
    assert accepted.completion_enabled


def test_a_different_map_truncation_is_adapted_and_noted():
    pipeline = MappingPipeline(PipelineConfig(map=TSDFConfig(truncation_voxels=3.0)), model=model_with())
    assert any("truncation" in note for note in pipeline.contract_notes)
