"""Multi-label TV-L1 labelling (Zach et al. / Häne et al.), minimised by Chambolle-Pock.

The energy over label indicators ``u: (L, *grid)`` with every voxel's column on the
probability simplex (labels include free space) is

    E(u) = sum_x [ lambda * sum_l ||grad u_l(x)||_2  +  <f(x), u(x)> ]

with forward differences and Neumann boundaries (the difference across the last voxel of an
axis is 0). It is convex; the primal-dual algorithm of Chambolle and Pock (2011) finds a
minimiser:

    xi   <- Proj_{||xi_l(x)||_2 <= lambda}(xi + sigma * grad(u_bar))
    u'   <- Proj_simplex(u - tau * (f - div(xi)))
    u_bar <- 2 u' - u

with ``tau * sigma * ||grad||^2 <= 1`` (``||grad||^2 <= 4 d`` on a d-dimensional grid). Every
function here works on any number of spatial dimensions (2D images, 3D volumes) and on any
device; nothing loops over voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ssr_ros.config import param, validate_config


def gradient(u: torch.Tensor) -> torch.Tensor:
    """Forward differences of ``u: (C, *grid)`` -> ``(C, d, *grid)`` (0 across the last voxel of each axis)."""
    d = u.dim() - 1
    parts = []
    for axis in range(1, d + 1):
        diff = torch.diff(u, dim=axis)
        pad_shape = list(u.shape)
        pad_shape[axis] = 1
        parts.append(torch.cat([diff, diff.new_zeros(pad_shape)], dim=axis))
    return torch.stack(parts, dim=1)


def divergence(p: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence of ``p: (C, d, *grid)`` -> ``(C, *grid)``; ``-divergence``
    is the adjoint of :func:`gradient` (``<grad u, p> == -<u, div p>``)."""
    d = p.shape[1]
    out = torch.zeros_like(p[:, 0])
    for axis in range(d):
        q = p[:, axis]
        dim = axis + 1
        n = q.shape[dim]
        if n == 1:
            continue
        first = q.narrow(dim, 0, 1)
        middle = q.narrow(dim, 1, n - 2) - q.narrow(dim, 0, n - 2)
        last = -q.narrow(dim, n - 2, 1)
        out = out + torch.cat([first, middle, last], dim=dim)
    return out


def project_simplex(v: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Euclidean projection of every column of ``v`` along ``dim`` onto the probability simplex
    (Held et al. / Duchi et al.: sort, cumulative sum, threshold)."""
    n = v.shape[dim]
    s, _ = torch.sort(v, dim=dim, descending=True)
    cssv = torch.cumsum(s, dim=dim) - 1.0
    shape = [1] * v.dim()
    shape[dim] = n
    k = torch.arange(1, n + 1, device=v.device, dtype=v.dtype).reshape(shape)
    rho = ((s - cssv / k) > 0).sum(dim=dim, keepdim=True)  # the condition holds for a prefix
    theta = torch.gather(cssv, dim, rho - 1) / rho.to(v.dtype)
    return torch.clamp(v - theta, min=0.0)


def project_ball(p: torch.Tensor, radius: float | torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Project ``p`` onto the Euclidean ball of ``radius`` along ``dim`` (one ball per other index)."""
    norm = torch.linalg.vector_norm(p, dim=dim, keepdim=True)
    return p / torch.clamp(norm / radius, min=1.0)


def tv_l1_energy(u: torch.Tensor, cost: torch.Tensor, smoothness: float) -> torch.Tensor:
    """E(u) (a scalar tensor) for ``u, cost: (L, *grid)``."""
    tv = torch.linalg.vector_norm(gradient(u), dim=1).sum()
    return smoothness * tv + (cost * u).sum()


@dataclass
class TVL1Config:
    """Parameters of the TV-L1 labelling."""

    smoothness: float = param(
        0.5, "weight lambda of the total variation against the data cost (0.5: best of 0.5 and 1 on a held-out room)",
        low=0.0, high=1000.0,
    )
    iterations: int = param(1000, "maximum Chambolle-Pock iterations", low=1, high=1_000_000)
    tolerance: float = param(
        1e-4, "stop when the largest change of an indicator over one iteration falls below this (0 = run all)",
        low=0.0, high=1.0,
    )
    check_every: int = param(10, "iterations between convergence checks", low=1, high=100000)

    def validate(self) -> "TVL1Config":
        return validate_config(self)


@dataclass
class TVL1Result:
    """u: (L, *grid) minimiser estimate on the simplex; iterations run; change: last max |du|."""

    u: torch.Tensor
    iterations: int
    change: float
    energies: list = field(default_factory=list)


def solve_tv_l1(
    cost: torch.Tensor,
    config: TVL1Config | None = None,
    u0: torch.Tensor | None = None,
    record_energy: bool = False,
    callback=None,
) -> TVL1Result:
    """Minimise the TV-L1 energy for data cost ``cost: (L, *grid)`` (float32 or float64; same device and dtype out).

    ``u0`` (default: uniform over labels) starts the primal variable. With ``record_energy``
    the energy at every convergence check is kept in ``energies``; ``callback(iteration, u)``,
    when given, is called at every check (e.g. to score the labelling as it converges).
    """
    config = (config or TVL1Config()).validate()
    if not cost.is_floating_point():
        cost = cost.to(torch.float32)
    L = cost.shape[0]
    d = cost.dim() - 1
    lam = float(config.smoothness)
    u = torch.full_like(cost, 1.0 / L) if u0 is None else u0.to(cost).clone()
    u_bar = u.clone()
    xi = cost.new_zeros((L, d) + tuple(cost.shape[1:]))
    step = 1.0 / math.sqrt(4.0 * d)  # tau = sigma, tau * sigma * 4d = 1
    energies: list[float] = []
    change = float("inf")
    it = 0
    for it in range(1, config.iterations + 1):
        if lam > 0:
            xi = project_ball(xi + step * gradient(u_bar), lam, dim=1)
            u_new = project_simplex(u - step * (cost - divergence(xi)), dim=0)
        else:
            u_new = project_simplex(u - step * cost, dim=0)
        u_bar = 2.0 * u_new - u
        if it % config.check_every == 0 or it == config.iterations:
            change = float((u_new - u).abs().max())
            if record_energy:
                energies.append(float(tv_l1_energy(u_new, cost, lam)))
            u = u_new
            if callback is not None:
                callback(it, u)
            if config.tolerance > 0 and change < config.tolerance:
                break
        else:
            u = u_new
    return TVL1Result(u=u, iterations=it, change=change, energies=energies)
