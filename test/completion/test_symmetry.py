"""The network averaged over a chunk's symmetries about the vertical axis."""

import pytest
import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.inference import CompletionConfig, inference_symmetries
from ssr_ros.completion.network import CompletionOutput, SSRUNet, SSRUNetConfig
from ssr_ros.completion.symmetry import chunk_symmetries, symmetric_forward, transform, untransform
from ssr_ros.errors import ConfigError


def test_the_eight_symmetries_are_distinct_and_each_is_undone():
    volume = torch.arange(4 * 4 * 3, dtype=torch.float32).reshape(1, 4, 4, 3)
    images = [transform(volume, s, 1) for s in chunk_symmetries(8)]
    assert torch.equal(images[0], volume)
    assert len({tuple(i.flatten().tolist()) for i in images}) == 8
    for s, image in zip(chunk_symmetries(8), images):
        assert torch.equal(untransform(image, s, 1), volume)
        assert torch.equal(image[..., 2], transform(volume[..., 2], s, 1))  # z is never touched
    with pytest.raises(ValueError):
        chunk_symmetries(3)


def _ramp_forward(geometry, color, truncation):
    """A network that is not symmetric: its TSDF is the input plus a ramp along x."""
    ramp = torch.arange(geometry.shape[2], dtype=torch.float32)[:, None, None]
    logits = torch.stack([geometry[:, 0], -geometry[:, 0]], 1)
    return CompletionOutput(tsdf=geometry[:, 0] + ramp, color=None, semantic_logits=logits)


def test_copies_are_mapped_back_before_they_are_averaged():
    geometry = torch.rand(2, 2, 6, 6, 4)
    tsdf, color, probs, spread = symmetric_forward(_ramp_forward, geometry, None, 0.15, 2)
    # the input part comes back where it was; the ramp and its mirror image average to a constant
    assert torch.allclose(tsdf, geometry[:, 0] + 2.5)
    assert color is None and torch.allclose(probs, torch.softmax(torch.stack([geometry[:, 0], -geometry[:, 0]], 1), 1))
    # the copies differ by the ramp and its mirror image: x - (5 - x) = 2x - 5, half of it spread
    expected_spread = (torch.arange(6.0) - 2.5).abs()[:, None, None].expand(6, 6, 4) / 0.15
    assert torch.allclose(spread, expected_spread.expand_as(spread), atol=1e-4)
    alone, _, _, still = symmetric_forward(_ramp_forward, geometry, None, 0.15, 1)
    assert torch.allclose(alone, geometry[:, 0] + torch.arange(6.0)[:, None, None])
    assert torch.count_nonzero(still) == 0


def test_averaged_over_all_eight_the_network_is_equivariant():
    torch.manual_seed(0)
    model = SSRUNet(SSRUNetConfig(num_classes=3, base_width=4, max_width=8, levels=3)).eval()
    geometry = torch.rand(1, 2, 8, 8, 8) * 2 - 1
    color = torch.rand(1, model.config.color_channels, 8, 8, 8)
    with torch.no_grad():
        tsdf, rgb, probs, _ = symmetric_forward(model, geometry, color, 0.15, 8)
        turned = (True, True, False)  # a quarter turn about z
        t2, rgb2, p2, _ = symmetric_forward(model, transform(geometry, turned, 2), transform(color, turned, 2), 0.15, 8)
        plain = model(transform(geometry, turned, 2), transform(color, turned, 2), 0.15).tsdf
    assert torch.allclose(t2, transform(tsdf, turned, 1), atol=1e-5)
    assert torch.allclose(p2, transform(probs, turned, 2), atol=1e-5)
    assert torch.allclose(rgb2, transform(rgb, turned, 2), atol=1e-5)
    assert not torch.allclose(plain, transform(model(geometry, color, 0.15).tsdf, turned, 1), atol=1e-5)


def test_the_pipeline_averages_as_many_symmetries_as_the_calibration_used():
    calibrated = Calibration(fitted_on="rooms", symmetries=8)
    assert inference_symmetries(CompletionConfig(), calibrated) == 8
    assert inference_symmetries(CompletionConfig(symmetries=1), calibrated) == 1
    assert inference_symmetries(CompletionConfig(), Calibration()) == 1
    with pytest.raises(ConfigError):
        CompletionConfig(symmetries=3).validate()
    with pytest.raises(ValueError):
        Calibration(symmetries=6)


def test_copies_in_small_passes_average_to_what_one_pass_gives():
    geometry = torch.rand(2, 2, 6, 6, 4)
    calls = []

    def counting(g, c, t):
        calls.append(g.shape[0])
        return _ramp_forward(g, c, t)

    whole = symmetric_forward(counting, geometry, None, 0.15, 8)
    split = symmetric_forward(counting, geometry, None, 0.15, 8, max_batch=5)
    assert calls == [16, 4, 4, 4, 4]  # all eight copies at once; then two copies of the batch a pass
    assert all(torch.allclose(whole[i], split[i], atol=1e-5) for i in (0, 2, 3))
