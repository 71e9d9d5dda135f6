"""The learned multi-scale primal-dual regulariser: exact adjoints, TV at initialisation,
gradients through the unrolled iterations, parameter budget."""

import torch

from ssr_ros.regularization.energy.tv_l1 import divergence, gradient
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.primal_dual import InteractionKernel, MultiScalePrimalDual


def test_kernel_adjoint_is_exact_in_2d_and_3d():
    g = torch.Generator().manual_seed(0)
    for d, grid in [(3, (5, 6, 7)), (2, (9, 4))]:
        k = InteractionKernel(4, d).double()
        k.weight.data.normal_(generator=g)
        u = torch.randn((2, 4) + grid, generator=g, dtype=torch.float64)
        xi = torch.randn((2, 4 * d) + grid, generator=g, dtype=torch.float64)
        assert torch.allclose((k.apply(u) * xi).sum(), (u * k.adjoint(xi)).sum())


def test_multiscale_operator_adjoint_is_exact():
    g = torch.Generator().manual_seed(1)
    pd = MultiScalePrimalDual(3, 3, 1, d=3).double()
    for p in list(pd.transfer) + [k.weight for k in pd.kernels]:
        p.data.normal_(generator=g)
    us = [torch.randn((1, 3) + (n,) * 3, generator=g, dtype=torch.float64) for n in (8, 4, 2)]
    xs = [torch.randn((1, 9) + (n,) * 3, generator=g, dtype=torch.float64) for n in (8, 4, 2)]
    lhs = sum((a * b).sum() for a, b in zip(pd._forward_op(us), xs))
    rhs = sum((a * b).sum() for a, b in zip(us, pd._adjoint_op(xs)))
    assert torch.allclose(lhs, rhs)


def test_initial_kernel_is_the_scaled_gradient():
    k = InteractionKernel(3, 3).double()
    u = torch.randn(1, 3, 5, 5, 5, dtype=torch.float64)
    grad = gradient(u[0]) / 12 ** 0.5  # (L, d, ...) -> channel axis * L + label
    expected = grad.permute(1, 0, 2, 3, 4).reshape(1, 9, 5, 5, 5)
    assert torch.allclose(k.apply(u), expected)
    xi = torch.randn(1, 9, 5, 5, 5, dtype=torch.float64)
    p = xi[0].reshape(3, 3, 5, 5, 5).permute(1, 0, 2, 3, 4)
    assert torch.allclose(k.adjoint(xi)[0], -divergence(p) / 12 ** 0.5)


def test_gradients_flow_through_the_unrolled_layers():
    torch.manual_seed(0)
    model = LearnedRegularizer(5, RegularizerNetworkConfig(iterations=4, scales=2, hidden=4))
    features = torch.randn(2, 7, 8, 8, 8)
    target = torch.randint(0, 5, (2, 8, 8, 8))
    loss = torch.nn.functional.cross_entropy(model(features), target)
    loss.backward()
    pd = model.primal_dual
    for name, p in [("W0", pd.kernels[0].weight), ("W1", pd.kernels[1].weight), ("T", pd.transfer[0]),
                    ("alpha", pd.alpha), ("tau", pd.tau), ("sigma", pd.sigma),
                    ("encoder", model.encoders[0].body[0].weight), ("coarse encoder", model.encoders[1].body[0].weight)]:
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().max()) > 0, name
    # the coarse kernel only reaches the loss through the iterations and the transfer
    model.zero_grad()
    model.primal_dual.iterations = 0
    torch.nn.functional.cross_entropy(model(features), target).backward()
    assert pd.kernels[1].weight.grad is None or float(pd.kernels[1].weight.grad.abs().max()) == 0


def test_default_network_is_small_and_keeps_odd_grids():
    model = LearnedRegularizer(21)
    assert model.num_parameters() < 100_000
    out = LearnedRegularizer(4, RegularizerNetworkConfig(iterations=2, scales=3, hidden=2))(torch.randn(1, 6, 9, 6, 5))
    assert out.shape == (1, 4, 9, 6, 5)


def test_inference_path_matches_the_autograd_path():
    """Without autograd the iterations work in place; the result must be the same."""
    torch.manual_seed(0)
    for dims, grid in [(3, (8, 12, 4)), (2, (13, 10))]:
        model = LearnedRegularizer(5, RegularizerNetworkConfig(iterations=3, scales=3, hidden=4, dims=dims)).double()
        pd = model.primal_dual
        for p in list(pd.transfer) + [k.weight for k in pd.kernels]:
            p.data.normal_()
        features = torch.randn((2, 7) + grid, dtype=torch.float64)
        with torch.enable_grad():
            expected = model(features)
        with torch.inference_mode():
            fast = model(features)
        assert torch.allclose(fast, expected, atol=1e-8), dims


def test_data_skip_starts_at_the_data_and_old_files_load_without_it(tmp_path):
    from ssr_ros.regularization.data_cost import DataCostConfig
    from ssr_ros.regularization.weights import load_regularizer, save_regularizer

    torch.manual_seed(0)
    model = LearnedRegularizer(4, RegularizerNetworkConfig(iterations=0, scales=1, hidden=2))
    features = torch.zeros(1, 6, 4, 4, 4)
    features[:, :4] = 3.0 * torch.rand(1, 4, 4, 4, 4)
    with torch.no_grad():
        for unit in (model.encoders[0], model.decoder):  # encoder and decoder exactly the identity
            unit.body[-1].weight.zero_()
        model.contrast.zero_()  # leave the data skip alone
        logits = model(features)
    assert torch.equal(logits.argmax(1), features[:, :4].argmin(1))
    save_regularizer(model, tmp_path / "new.pt", DataCostConfig(), 0.05, 0.2, ["a", "b", "c", "d"])
    assert load_regularizer(tmp_path / "new.pt").config.data_skip
    old = LearnedRegularizer(4, RegularizerNetworkConfig(iterations=1, scales=1, hidden=2, data_skip=False))
    save_regularizer(old, tmp_path / "old.pt", DataCostConfig(), 0.05, 0.2, ["a", "b", "c", "d"])
    document = torch.load(tmp_path / "old.pt", weights_only=True)
    del document["network"]["data_skip"]  # as written before the skip existed
    torch.save(document, tmp_path / "old.pt")
    loaded = load_regularizer(tmp_path / "old.pt")
    assert not loaded.config.data_skip and not hasattr(loaded, "data_gamma")


def test_skipping_unreachable_levels_keeps_the_output():
    torch.manual_seed(1)
    for iterations in (1, 2, 3, 5):
        model = LearnedRegularizer(4, RegularizerNetworkConfig(iterations=iterations, scales=3, hidden=2)).double()
        pd = model.primal_dual
        for p in list(pd.transfer) + [k.weight for k in pd.kernels]:
            p.data.normal_()
        features = torch.randn(1, 6, 8, 8, 8, dtype=torch.float64)
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                pd.skip_unreachable = False
                full = model(features)
                pd.skip_unreachable = True
                assert torch.allclose(model(features), full, atol=1e-12), (iterations, grad)
