"""TV-L1 multi-label labelling: operators, projections, an analytic minimiser, denoising."""

import numpy as np
import pytest
import torch

from ssr_ros.regularization.energy.tv_l1 import (
    TVL1Config, divergence, gradient, project_simplex, solve_tv_l1, tv_l1_energy,
)


def test_divergence_is_negative_adjoint_of_gradient():
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 5, 4, 6), (2, 7, 3)]:
        u = torch.randn(shape, generator=g, dtype=torch.float64)
        p = torch.randn((shape[0], len(shape) - 1) + shape[1:], generator=g, dtype=torch.float64)
        assert torch.allclose((gradient(u) * p).sum(), -(u * divergence(p)).sum())


def test_simplex_projection_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(4, 50, generator=g, dtype=torch.float64) * 2
    proj = project_simplex(v, dim=0)
    assert torch.allclose(proj.sum(0), torch.ones(50, dtype=torch.float64))
    assert (proj >= 0).all()
    # no point of the simplex is closer: compare with random simplex points
    samples = torch.distributions.Dirichlet(torch.ones(4, dtype=torch.float64)).sample((2000,))
    for j in range(5):
        best = ((samples - v[:, j]) ** 2).sum(1).min()
        assert ((proj[:, j] - v[:, j]) ** 2).sum() <= best + 1e-12


def segment_problem(n: int, k: int, margin_in: float, margin_out: float = 1.0):
    """Two labels on an n x 1 x 1 line: label 0 costs margin_in inside a centred segment of k
    voxels, label 1 costs margin_out outside it."""
    cost = torch.zeros(2, n, 1, 1, dtype=torch.float64)
    lo = (n - k) // 2
    inside = torch.zeros(n, dtype=torch.bool)
    inside[lo:lo + k] = True
    cost[1, ~inside] = margin_out
    cost[0, inside] = margin_in
    return cost, inside


@pytest.mark.parametrize("margin_in, expect_segment", [(3.0, True), (0.5, False)])
def test_converges_to_the_analytic_minimiser(margin_in, expect_segment):
    # Each jump between labels changes two indicators by 1, so it costs 2 * lambda. Keeping the
    # segment (k voxels of label 1) costs two jumps, 4 * lambda; dropping it costs k * margin_in;
    # labelling everything 1 costs (n - k) * margin_out. lambda = 2, k = 4, n = 16: margin 3 ->
    # keep (8 < 12), margin 0.5 -> drop (2 < 8).
    lam, k = 2.0, 4
    cost, inside = segment_problem(16, k, margin_in)
    result = solve_tv_l1(cost, TVL1Config(smoothness=lam, iterations=20000, tolerance=1e-7))
    expected = torch.zeros_like(cost)
    if expect_segment:
        expected[1, inside] = 1.0
    expected[0] = 1.0 - expected[1]
    assert torch.allclose(result.u, expected, atol=1e-3), result.u[1, :, 0, 0]
    e_min = min(4 * lam, k * margin_in, 12 * 1.0)
    assert float(tv_l1_energy(result.u, cost, lam)) == pytest.approx(e_min, abs=1e-3)


def test_removes_salt_and_pepper_noise_from_a_two_label_scene():
    g = torch.Generator().manual_seed(3)
    n = 16
    z = torch.arange(n).reshape(1, 1, n).expand(n, n, n)
    clean = (z >= 7).to(torch.int64)  # label 1 above a plane, label 0 below
    flip = torch.rand(n, n, n, generator=g) < 0.15
    noisy = torch.where(flip, 1 - clean, clean)
    cost = torch.stack([(noisy != 0).float(), (noisy != 1).float()])
    assert (noisy != clean).float().mean() > 0.1
    result = solve_tv_l1(cost, TVL1Config(smoothness=0.6, iterations=3000, tolerance=1e-5))
    labels = result.u.argmax(0)
    assert (labels != clean).float().mean() < 0.002
    # Without regularisation the noise stays.
    plain = solve_tv_l1(cost, TVL1Config(smoothness=0.0, iterations=50)).u.argmax(0)
    assert (plain != clean).float().mean() > 0.1
