"""The inference path of the learned regulariser (in place, channels-last, strided pooling and
softmax) gives the logits of the autograd path, class context and padding included."""

import torch
import torch.nn.functional as F

from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.primal_dual import avg_pool2, channels_last, softmax_channels


def test_strided_pooling_equals_average_pooling_on_both_layouts():
    torch.manual_seed(0)
    for d, shape in [(3, (2, 5, 6, 4, 8)), (2, (2, 5, 6, 10))]:
        x = torch.randn(shape, dtype=torch.float64)
        expected = (F.avg_pool3d if d == 3 else F.avg_pool2d)(x, 2)
        for layout in (x, channels_last(x)):
            out = avg_pool2(layout, d)
            assert out.shape == expected.shape
            assert torch.allclose(out, expected, atol=1e-12)


def test_channel_softmax_on_channels_last_equals_softmax():
    torch.manual_seed(0)
    x = torch.randn(1, 7, 4, 6, 2, dtype=torch.float64)
    for layout in (x, channels_last(x), channels_last(x)[:, 1:]):
        ref = torch.softmax(layout, dim=1)
        out = softmax_channels(layout)
        assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-12)


def test_inference_path_with_context_matches_the_autograd_path():
    torch.manual_seed(0)
    for dims, grid in [(3, (16, 8, 11)), (2, (13, 16))]:
        config = RegularizerNetworkConfig(iterations=2, scales=3, hidden=4, dims=dims, context_levels=3)
        model = LearnedRegularizer(6, config).double()
        pd = model.primal_dual
        for p in list(pd.transfer) + [k.weight for k in pd.kernels]:
            p.data.normal_()
        features = torch.randn((1, 8) + grid, dtype=torch.float64)
        features[:, :6] *= 3.0
        with torch.enable_grad():
            expected = model(features)
        with torch.inference_mode():
            fast = model(features)
            fast_cl = model(channels_last(features))
        assert torch.allclose(fast, expected, atol=1e-8), dims
        assert torch.allclose(fast_cl, expected, atol=1e-8), dims
        # the context changed the logits (so this compared it too)
        model.config.context_levels = 0
        with torch.inference_mode():
            without = model(features)
        model.config.context_levels = 3
        assert not torch.allclose(without, expected, atol=1e-3)
