"""The class context of the learned regulariser: it carries observed classes into unobserved
voxels, changes only the class ranking (occupied-vs-free stays), leaves voxels with their own
class evidence alone, and fits the training (loss weight on unobserved voxels, fine-tuning start)."""

import pytest
import torch

from ssr_ros.errors import ConfigError
from ssr_ros.regularization.context import ClassContext
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.training import RegularizerLossConfig, class_cross_entropy, regularizer_loss, start_from
from ssr_ros.regularization.weights import save_regularizer
from ssr_ros.regularization.data_cost import DataCostConfig

L = 5  # free + 4 classes


def _cost_with_patch(grid=(16, 16, 16)):
    """Data cost: no evidence anywhere (all zero) but a 2^3 patch confidently of class 3."""
    cost = torch.zeros((1, L) + grid)
    cost[:, 1:, 2:4, 2:4, 2:4] = 3.0
    cost[:, 3, 2:4, 2:4, 2:4] = 0.0
    cost[:, 0, 2:4, 2:4, 2:4] = 3.0
    return cost


def test_context_carries_the_observed_class_far_into_unobserved_voxels():
    ctx = ClassContext(4, 3)
    cost = _cost_with_patch()
    logits = torch.zeros((1, L, 16, 16, 16))  # the network leaves all classes tied
    out = ctx.rerank(logits, cost)
    far = (0, slice(None), 12, 12, 12)  # ~9 voxels from the patch on each axis
    assert int(out[far][1:].argmax()) + 1 == 3
    # without the coarse levels the class does not travel that far
    near_only = ClassContext(1, 3).rerank(logits, cost)
    assert torch.allclose(near_only[far][1:], near_only[far][1:].mean().expand(4), atol=1e-5)


def test_context_keeps_occupancy_and_voxels_with_own_evidence():
    torch.manual_seed(0)
    ctx = ClassContext(3, 3)
    cost = _cost_with_patch()
    cost[:, 1:, 10, 10, 10] = 30.0
    cost[:, 2, 10, 10, 10] = 0.0  # a voxel certainly of class 2, away from the patch
    cost[:, 0, 10, 10, 10] = 30.0
    logits = torch.randn((1, L, 16, 16, 16))
    out = ctx.rerank(logits, cost)
    p_in, p_out = torch.softmax(logits, 1), torch.softmax(out, 1)
    assert torch.allclose(p_in[:, 0], p_out[:, 0], atol=1e-5)  # free probability unchanged everywhere
    own = (0, slice(None), 10, 10, 10)
    assert torch.allclose(out[own], logits[own], atol=1e-4)  # certain own evidence: untouched


def test_network_with_context_pads_to_its_reach_and_counts_few_parameters():
    base = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=2, scales=2, hidden=4))
    with_ctx = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=2, scales=2, hidden=4, context_levels=3))
    assert with_ctx.size_multiple == 8
    assert with_ctx.num_parameters() - base.num_parameters() == 3 + 1 + 1  # level weights, beta, own-class weight
    out = with_ctx(torch.randn(1, L + 2, 10, 12, 9))
    assert out.shape == (1, L, 10, 12, 9) and bool(torch.isfinite(out).all())


def test_class_term_weights_unobserved_voxels_up():
    labels = torch.tensor([[1, 2]])
    counted = torch.ones_like(labels, dtype=torch.bool)
    logits = torch.zeros(1, 3, 2)
    logits[0, 1, 0] = 5.0  # voxel 0 right (low loss), voxel 1 wrong (high loss)
    logits[0, 1, 1] = 5.0
    plain = class_cross_entropy(logits, labels, counted)
    unobserved = torch.tensor([[False, True]])
    config = RegularizerLossConfig(class_weight=1.0, occupied_weight=1.0, unobserved_class_weight=3.0)
    weighted = class_cross_entropy(logits, labels, counted, None, 1.0 + 3.0 * unobserved.float())
    assert float(weighted) > float(plain)
    per = torch.nn.functional.cross_entropy(logits[:, 1:].movedim(1, -1)[0], labels[0] - 1, reduction="none")
    assert torch.isclose(weighted, (per[0] + 4 * per[1]) / 5)
    w = torch.ones(1, 2)
    assert float(regularizer_loss(logits, labels, w, config, None, unobserved)) > float(
        regularizer_loss(logits, labels, w, config, None, None))


def test_fine_tuning_starts_from_older_weights_and_rejects_others(tmp_path):
    old = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=2, scales=2, hidden=4))
    path = save_regularizer(old, tmp_path / "old.pt", DataCostConfig(), 0.05, 0.15, [str(i) for i in range(L)])
    new = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=2, scales=2, hidden=4, context_levels=2))
    start_from(new, str(path))
    assert torch.equal(new.primal_dual.kernels[0].weight, old.primal_dual.kernels[0].weight)
    other = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=2, scales=3, hidden=4, context_levels=2))
    with pytest.raises(ConfigError):
        start_from(other, str(path))


def test_in_place_inference_path_matches_the_autograd_path():
    torch.manual_seed(3)
    ctx = ClassContext(3, 3)
    cost = 3.0 * torch.rand((2, L, 16, 8, 16))
    logits = torch.randn((2, L, 16, 8, 16))
    expected = ctx.rerank(logits, cost)
    kept = logits.clone()
    with torch.inference_mode():
        got = ctx.rerank(logits, cost)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(logits, kept)  # the input logits are left alone


def _weak_voxel_in_a_patch():
    """A 4^3 patch confidently of class 3 with, at its centre, one voxel weakly of class 1."""
    cost = torch.zeros((1, L, 16, 16, 16))
    cost[:, :, 4:8, 4:8, 4:8] = 3.0
    cost[:, 3, 4:8, 4:8, 4:8] = 0.0
    cost[:, 1:, 6, 6, 6] = 1.0
    cost[:, 1, 6, 6, 6] = 0.6  # some evidence for class 1, little confidence
    return cost


def test_own_class_weight_keeps_a_weakly_observed_voxel_its_class():
    cost = _weak_voxel_in_a_patch()
    logits = torch.zeros((1, L, 16, 16, 16))
    logits[:, 1, 6, 6, 6] = 0.5  # the network prefers the voxel's own class a little
    voxel = (0, slice(1, None), 6, 6, 6)
    pulled = ClassContext(3, 3).rerank(logits, cost)
    assert int(pulled[voxel].argmax()) + 1 == 3  # the neighbourhood's class wins
    kept = ClassContext(3, 3, own=0.5).rerank(logits, cost)
    assert int(kept[voxel].argmax()) + 1 == 1
    # voxels without class evidence of their own are re-ranked as before
    far = (0, slice(None), 12, 12, 12)
    assert torch.allclose(kept[far], pulled[far], atol=1e-6)
    # the inference path (in place, scatter) gives the autograd path's logits
    ctx = ClassContext(3, 3, own=0.5)
    with torch.enable_grad():
        expected = ctx.rerank(logits, cost)
    with torch.inference_mode():
        assert torch.allclose(ctx.rerank(logits, cost), expected, atol=1e-5)


def test_files_without_the_own_class_weight_load_with_none(tmp_path):
    from ssr_ros.regularization.weights import load_regularizer

    model = LearnedRegularizer(L, RegularizerNetworkConfig(iterations=1, scales=1, hidden=2, context_levels=2))
    model.context.own_weight.data.fill_(0.4)
    save_regularizer(model, tmp_path / "new.pt", DataCostConfig(), 0.05, 0.2, ["a", "b", "c", "d", "e"])
    assert float(load_regularizer(tmp_path / "new.pt").context.own_weight.detach()) == pytest.approx(0.4)
    document = torch.load(tmp_path / "new.pt", weights_only=True)
    del document["state_dict"]["context.own_weight"]  # as written before the weight existed
    torch.save(document, tmp_path / "old.pt")
    assert float(load_regularizer(tmp_path / "old.pt").context.own_weight.detach()) == 0.0
