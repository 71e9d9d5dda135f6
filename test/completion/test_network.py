"""The SSR 3D U-Net: shapes, variants, presets, the model registry."""

import pytest
import torch

from chunk_fixtures import make_chunk
from ssr_ros.completion.network import (
    COMPLETION_MODELS,
    SSRUNet,
    SSRUNetConfig,
    build_completion_model,
    chunk_inputs,
    parameter_count,
    preset_config,
)
from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, InvalidInput

TINY = dict(base_width=4, max_width=8, levels=3, blocks_per_level=1, fusion_blocks=1)


def test_outputs_have_chunk_shape_and_ranges():
    config = SSRUNetConfig(**TINY)
    model = SSRUNet(config)
    chunks = [make_chunk(seed=0), make_chunk(seed=1)]
    out = model.predict_chunks(chunks)
    assert out.tsdf.shape == (2, 16, 16, 16)
    assert out.color.shape == (2, 3, 16, 16, 16)
    assert out.semantic_logits.shape == (2, 21, 16, 16, 16)
    assert out.tsdf.abs().max() <= chunks[0].truncation
    assert 0 <= out.color.min() and out.color.max() <= 1


def test_default_five_levels_accept_any_multiple_of_16_and_refuse_others():
    config = SSRUNetConfig(base_width=2, max_width=4)
    model = SSRUNet(config)
    out = model(torch.zeros(1, 2, 16, 32, 16), torch.zeros(1, 3, 16, 32, 16), 0.1)
    assert out.tsdf.shape == (1, 16, 32, 16)
    with pytest.raises(InvalidInput, match="multiple of 16"):
        model(torch.zeros(1, 2, 24, 16, 16), torch.zeros(1, 3, 24, 16, 16), 0.1)


def test_untrained_network_keeps_the_sign_of_observed_tsdf():
    # The TSDF head is a residual on the input; with zeroed last layer it reproduces it.
    model = SSRUNet(SSRUNetConfig(**TINY))
    torch.nn.init.zeros_(model.tsdf_decoder.head[-1].weight)
    torch.nn.init.zeros_(model.tsdf_decoder.head[-1].bias)
    chunk = make_chunk()
    out = model.predict_chunks([chunk])
    observed = chunk.observed & (chunk.tsdf.abs() < chunk.truncation * 0.9)
    assert torch.equal(torch.sign(out.tsdf[0][observed]), torch.sign(chunk.tsdf[observed]))


def test_depth_only_variant_has_no_color_branch():
    config = SSRUNetConfig(**TINY, use_color=False)
    model = SSRUNet(config)
    assert model.color_encoder is None and model.color_decoder is None
    geometry, color = chunk_inputs([make_chunk()], config)
    assert color is None
    out = model(geometry, None, 0.15)
    assert out.color is None and out.semantic_logits.shape == (1, 21, 16, 16, 16)
    assert parameter_count(model) < parameter_count(SSRUNet(SSRUNetConfig(**TINY)))


def test_semantic_evidence_enters_the_color_encoder():
    config = SSRUNetConfig(**TINY, use_semantics_input=True)
    geometry, color = chunk_inputs([make_chunk()], config)
    assert geometry.shape == (1, 2, 16, 16, 16) and color.shape == (1, 24, 16, 16, 16)
    assert SSRUNet(config)(geometry, color, 0.15).tsdf.shape == (1, 16, 16, 16)
    with pytest.raises(ConfigError, match="use_semantics_input"):
        SSRUNetConfig(use_color=False, use_semantics_input=True).validate()


def test_inputs_are_normalised_and_masked():
    chunk = make_chunk()
    geometry, color = chunk_inputs([chunk], SSRUNetConfig())
    assert geometry[0, 0].min() >= -1 and geometry[0, 0].max() <= 1
    assert torch.equal(geometry[0, 1].bool(), chunk.observed)
    assert (color[0][:, ~chunk.observed] == 0).all()


def test_presets_parameter_counts():
    small = parameter_count(SSRUNet(preset_config("small")))
    large = parameter_count(SSRUNet(preset_config("large")))
    assert small * 4 < 20e6  # float32 weights fit the 20 MB budget of shipped models
    assert large > 5 * small
    with pytest.raises(ConfigError, match="preset"):
        preset_config("huge")


def test_config_from_yaml_mapping_and_ranges():
    config = config_from_dict(SSRUNetConfig, {"base_width": 4, "levels": 3})
    assert config.widths() == [4, 8, 16]
    with pytest.raises(ConfigError, match="levels"):
        config_from_dict(SSRUNetConfig, {"levels": 0})


def test_registry_resolves_type_keys():
    assert set(COMPLETION_MODELS) >= {"ssr_unet", "none"}
    assert isinstance(build_completion_model("ssr_unet", SSRUNetConfig(**TINY)), SSRUNet)
    assert build_completion_model("none") is None
    with pytest.raises(ConfigError, match="primal"):
        build_completion_model("primal")
