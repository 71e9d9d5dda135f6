"""Loss terms: values on hand-made inputs, masks, empty masks."""

import torch

from ssr_ros.completion.losses import (
    color_l1,
    depth_l1,
    masked_mean,
    semantic_cross_entropy,
    soft_semantic_cross_entropy,
    surface_mask_3d,
    tsdf_l1_3d,
)


def test_depth_l1_averages_over_the_mask_only():
    rendered = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[1.5, 2.0], [0.0, 100.0]])
    mask = torch.tensor([[True, True], [False, False]])
    loss = depth_l1(rendered, target, mask)
    assert torch.isclose(loss, torch.tensor(0.25))
    loss.backward()
    assert rendered.grad[1].abs().sum() == 0


def test_empty_masks_give_zero_with_a_graph():
    x = torch.ones(2, 3, requires_grad=True)
    loss = depth_l1(x, x * 0, torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0
    loss.backward()
    logits = torch.randn(4, 5, 21, requires_grad=True)
    ce = semantic_cross_entropy(logits, torch.zeros(4, 5, dtype=torch.long), torch.ones(4, 5, dtype=torch.bool))
    assert ce.item() == 0
    ce.backward()


def test_color_l1_broadcasts_a_pixel_mask_over_channels():
    rendered = torch.zeros(2, 2, 3)
    target = torch.ones(2, 2, 3)
    mask = torch.tensor([[True, False], [False, False]])
    assert torch.isclose(color_l1(rendered, target, mask), torch.tensor(1.0))
    assert torch.isclose(masked_mean(torch.ones(2, 2, 3), mask), torch.tensor(1.0))


def test_semantic_cross_entropy_ignores_unknown_and_masked_pixels():
    logits = torch.full((1, 3, 4), -10.0)
    logits[..., 2] = 10.0  # confident class 2
    labels = torch.tensor([[2, 0, 3]])
    mask = torch.tensor([[True, True, False]])
    assert semantic_cross_entropy(logits, labels, mask) < 1e-6  # only the class-2 pixel counts
    labels_wrong = torch.tensor([[1, 0, 3]])
    assert semantic_cross_entropy(logits, labels_wrong, mask) > 10


def test_soft_cross_entropy_equals_hard_for_one_hot_targets():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6)
    labels = torch.randint(1, 6, (3, 4))
    mask = torch.ones(3, 4, dtype=torch.bool)
    one_hot = torch.nn.functional.one_hot(labels, 6).float()
    assert torch.isclose(soft_semantic_cross_entropy(logits, one_hot, mask), semantic_cross_entropy(logits, labels, mask))


def test_tsdf_l1_is_normalised_by_truncation_and_restricted_to_known():
    prediction = torch.zeros(2, 2, 2)
    target = torch.full((2, 2, 2), 0.1)
    known = torch.zeros(2, 2, 2, dtype=torch.bool)
    known[0] = True
    target[1] = 5.0
    assert torch.isclose(tsdf_l1_3d(prediction, target, known, truncation=0.2), torch.tensor(0.5))
    assert surface_mask_3d(torch.tensor([0.01, 0.05]), 0.03).tolist() == [True, False]
