"""The small 2D segmenter: shapes, odd image sizes, it learns a color -> class mapping."""

import itertools

import torch

from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig, train_segmenter


def test_logits_have_image_shape_for_any_size():
    model = Segmenter2d(SegmenterConfig(num_classes=7, base_width=4, levels=3))
    assert model(torch.rand(2, 3, 30, 17)).shape == (2, 7, 30, 17)
    probs = model.predict_probs(torch.rand(5, 9, 3))
    assert probs.shape == (5, 9, 7) and torch.allclose(probs.sum(-1), torch.ones(5, 9), atol=1e-5)


def _color_class_batches(generator):
    palette = torch.tensor([[0, 0, 0], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    while True:
        labels = torch.randint(1, 4, (4, 4, 4), generator=generator)
        labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # 16x16 blocks
        rgb = palette[labels] + 0.05 * torch.randn(4, 16, 16, 3, generator=generator)
        yield rgb.clamp(0, 1), labels


def test_training_lowers_the_loss_on_a_color_coded_task():
    torch.manual_seed(0)
    model = Segmenter2d(SegmenterConfig(num_classes=4, base_width=4, levels=2))
    logs = []
    losses = train_segmenter(model, _color_class_batches(torch.Generator().manual_seed(0)), steps=60,
                             learning_rate=1e-2, log=logs.append)
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5
    assert logs[-1]["pixel_accuracy"] > 0.9
