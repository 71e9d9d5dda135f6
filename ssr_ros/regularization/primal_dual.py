"""Unrolled multi-scale primal-dual layers with a learned interaction kernel.

At every scale ``s`` the regulariser is ``||W_s u_s + Up(T_{s+1} u_{s+1})||`` where ``W_s`` is
a learned ``2^d x |L| x |L| x d`` kernel (``d`` = 2 or 3 spatial dimensions; ``W = grad``
gives TV, which is how it is initialised), convolved with the label indicators ``u_s``, and
``T_{s+1}`` (a learned ``|L| x |L| x d`` kernel) passes the next coarser scale's labelling up
to scale ``s``. Each iteration runs Eq. (4)-(6) of Cherabier et al. on all scales at once:

    nu_s   <- nu_s + sigma_s (sum_l u_bar_s - 1)
    xi_s   <- Proj_{||xi_{s,l}|| <= 1}(xi_s + K_s(u_bar))            (step folded into W)
    u_s'   <- clip_[0,1](u_s - alpha_s K_s^*(xi) - tau_s (f_s + nu_s))
    u_bar_s <- 2 u_s' - u_s

with ``K_s(u) = W_s u_s + Up(T_{s+1} u_{s+1})`` and its exact adjoint (so the iteration is a
true primal-dual step for the saddle point of the learned energy). The kernels and the step
sizes ``alpha_s, tau_s, sigma_s`` are shared by all iterations. Up is nearest upsampling by 2,
its adjoint a 2^d sum pool.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


def _conv(d: int):
    return F.conv3d if d == 3 else F.conv2d


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory order (3D: the layout the CPU convolutions are fastest on)."""
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def softmax_channels(x: torch.Tensor) -> torch.Tensor:
    """``softmax(x, dim=1)``; on a channels-last tensor taken along its contiguous last axis (a
    view), which is several times faster there and returns the same layout."""
    if x.dim() >= 4 and x.stride(1) == 1 and x.shape[1] > 1:
        order = (0,) + tuple(range(2, x.dim())) + (1,)
        back = (0, x.dim() - 1) + tuple(range(1, x.dim() - 1))
        return torch.softmax(x.permute(order), dim=-1).permute(back)
    return torch.softmax(x, dim=1)


def avg_pool2(x: torch.Tensor, d: int) -> torch.Tensor:
    """Average pooling by 2 over the ``d`` spatial axes (sides even). A channels-last ``x`` is
    pooled as the sum of its 2^d strided sub-grids (each a view whose channels stay contiguous),
    several times faster than ``avg_pool`` on that layout or a copy to the standard one; the
    result keeps the layout."""
    if not x.is_contiguous(memory_format=torch.channels_last_3d if d == 3 else torch.channels_last) or x.is_contiguous():
        return (F.avg_pool3d if d == 3 else F.avg_pool2d)(x, 2)
    cl = x.permute((0,) + tuple(range(2, 2 + d)) + (1,))
    out = None
    for offsets in itertools.product((0, 1), repeat=d):
        part = cl[(slice(None),) + tuple(slice(o, None, 2) for o in offsets)]
        out = part.clone() if out is None else out.add_(part)
    return out.mul_(1.0 / 2**d).permute((0, 1 + d) + tuple(range(1, 1 + d)))


def _pad_end(x: torch.Tensor, d: int) -> torch.Tensor:
    """Replicate the last voxel of every spatial axis once (Neumann boundary)."""
    return F.pad(x, (0, 1) * d, mode="replicate")


def _pad_end_adjoint(y: torch.Tensor, d: int) -> torch.Tensor:
    """Adjoint of :func:`_pad_end`: fold the extra last slice of each axis onto the one before.
    Changes ``y`` in place (a fresh convolution output, which autograd does not keep)."""
    for axis in range(2, 2 + d):
        n = y.shape[axis]
        y.narrow(axis, n - 2, 1).add_(y.narrow(axis, n - 1, 1))
    return y[(slice(None), slice(None)) + (slice(0, -1),) * d]  # a view; the next operation makes it dense


def gradient_kernel(num_labels: int, d: int) -> torch.Tensor:
    """``W = grad / sqrt(4 d)``: forward differences per label, shape ``(d * L, L, 2, .., 2)``,
    output channel ``axis * L + l``."""
    w = torch.zeros((num_labels * d, num_labels) + (2,) * d)
    for axis in range(d):
        lo = [0] * d
        hi = [0] * d
        hi[axis] = 1
        for label in range(num_labels):
            w[(axis * num_labels + label, label) + tuple(lo)] = -1.0
            w[(axis * num_labels + label, label) + tuple(hi)] = 1.0
    return w / math.sqrt(4.0 * d)


class InteractionKernel(nn.Module):
    """The learned ``2^d x L x L x d`` kernel ``W``: ``apply`` maps labels (B, L, *grid) to
    dual fields (B, d * L, *grid), channel ``axis * L + label``; ``adjoint`` is its exact transpose.

    Both run as one plain convolution on channels-last tensors (the fast path of the CPU
    backend): the adjoint is the convolution of the dual, zero-padded by the convolution
    itself, with the flipped, transposed kernel; that equals ``conv_transpose`` and is several
    times faster there.
    """

    def __init__(self, num_labels: int, d: int) -> None:
        super().__init__()
        self.d = d
        self.weight = nn.Parameter(gradient_kernel(num_labels, d))

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        return _conv(self.d)(channels_last(_pad_end(u, self.d)), self.weight)

    def adjoint_weight(self) -> torch.Tensor:
        """The kernel of the adjoint as a plain convolution: ``W`` flipped in space, in/out swapped."""
        return self.weight.flip(tuple(range(2, 2 + self.d))).transpose(0, 1)

    def adjoint(self, xi: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``W^T xi``; ``weight`` = :meth:`adjoint_weight` when the caller already has it."""
        full = _conv(self.d)(channels_last(xi), self.adjoint_weight() if weight is None else weight, padding=1)
        return _pad_end_adjoint(full, self.d)


def _upsample(x: torch.Tensor, d: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _add_upsampled_(fine: torch.Tensor, coarse: torch.Tensor, d: int) -> torch.Tensor:
    """``fine += Up(coarse)`` in place, through a broadcast view (no upsampled copy)."""
    blocks = fine
    for axis in range(2, 2 + d):
        blocks = blocks.unflatten(2 * axis - 2, (fine.shape[axis] // 2, 2))
    index = (slice(None), slice(None)) + (slice(None), None) * d
    blocks.add_(coarse[index])
    return fine


def _transfer_adjoint(y: torch.Tensor, transfer: torch.Tensor, d: int) -> torch.Tensor:
    """Adjoint of ``Up(transfer * u)`` (1x1 kernel, nearest upsampling by 2): the 1x1 kernel with
    in/out swapped, summed over each 2^d block, as one convolution of stride 2."""
    weight = transfer.transpose(0, 1).expand((-1, -1) + (2,) * d)
    return _conv(d)(channels_last(y), weight, stride=2)


class MultiScalePrimalDual(nn.Module):
    """``iterations`` unrolled primal-dual steps over ``scales`` levels (level 0 = finest).

    forward(costs) takes one data cost per level, ``costs[s]: (B, L, *grid_s)`` with every
    grid half the size of the previous one, and returns the finest primal variable
    ``u_0: (B, L, *grid_0)`` in [0, 1].
    """

    def __init__(self, num_labels: int, scales: int, iterations: int, d: int = 3) -> None:
        super().__init__()
        self.num_labels, self.scales, self.iterations, self.d = num_labels, scales, iterations, d
        self.skip_unreachable = True  # skip level updates that cannot reach the output (False: run all)
        self.kernels = nn.ModuleList(InteractionKernel(num_labels, d) for _ in range(scales))
        # transfer from level s + 1 to level s (1x1 kernels; small random start so that the
        # coarse levels receive gradients from the first step)
        self.transfer = nn.ParameterList(
            nn.Parameter(0.01 * torch.randn((num_labels * d, num_labels) + (1,) * d)) for _ in range(scales - 1)
        )
        # step sizes, positive through softplus; alpha = 1, tau = sigma = 1 / sqrt(4 d) at start
        inv = lambda v: math.log(math.expm1(v))  # noqa: E731  softplus inverse
        step = 1.0 / math.sqrt(4.0 * d)
        self.alpha = nn.Parameter(torch.full((scales,), inv(1.0)))
        self.tau = nn.Parameter(torch.full((scales,), inv(step)))
        self.sigma = nn.Parameter(torch.full((scales,), inv(step)))

    def _forward_op(self, u_bar: list[torch.Tensor], inplace: bool = False, levels: int | None = None) -> list[torch.Tensor]:
        """``K u_bar`` for the first ``levels`` levels (all by default)."""
        out = []
        for s in range(self.scales if levels is None else levels):
            k = self.kernels[s].apply(u_bar[s])
            if s + 1 < self.scales:
                coarse = _conv(self.d)(channels_last(u_bar[s + 1]), self.transfer[s])
                # (the 1x1 convolution returns the standard layout; the broadcast add is several
                # times faster when both sides are channels-last)
                k = _add_upsampled_(k, channels_last(coarse), self.d) if inplace else k + _upsample(coarse, self.d)
            out.append(k)
        return out

    def _adjoint_op(self, xi: list[torch.Tensor], weights: list[torch.Tensor] | None = None,
                    levels: int | None = None) -> list[torch.Tensor]:
        """``K^* xi`` for the first ``levels`` levels (all by default); ``weights`` = the kernels'
        :meth:`InteractionKernel.adjoint_weight`."""
        out = []
        for s in range(self.scales if levels is None else levels):
            a = self.kernels[s].adjoint(xi[s], None if weights is None else weights[s])
            if s > 0:
                a = a + _transfer_adjoint(xi[s - 1], self.transfer[s - 1], self.d)
            out.append(a)
        return out

    def _project_dual(self, xi: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Project each label's ``d``-vector of ``xi`` (channel ``axis * L + label``) onto the unit
        ball. ``xi`` is channels-last, so per voxel its channels are one ``(d, L)`` block."""
        cl = xi.permute((0,) + tuple(range(2, 2 + self.d)) + (1,))  # (B, *grid, d * L), a view
        blocks = cl.unflatten(-1, (self.d, self.num_labels))
        if inplace:
            norm = blocks[..., 0, :].square()  # the d components summed one by one: no (d, L) temporary
            for axis in range(1, self.d):
                norm.addcmul_(blocks[..., axis, :], blocks[..., axis, :])
            blocks.div_(norm.sqrt_().clamp_(min=1.0).unsqueeze(-2))
            return xi
        norm = torch.sqrt((blocks * blocks).sum(-2, keepdim=True) + 1e-12)  # finite gradient at 0
        scale = torch.clamp(norm, min=1.0)
        out = (blocks / scale).flatten(-2)
        return out.permute((0, 1 + self.d) + tuple(range(1, 1 + self.d)))

    def initial_labels(self, cost: torch.Tensor) -> torch.Tensor:
        """Starting point of the primal variable: the softmin of the data cost."""
        return channels_last(softmax_channels(cost.neg()))

    def forward(self, costs: list[torch.Tensor]) -> torch.Tensor:
        """See the class docstring. Without autograd (``torch.inference_mode`` / ``no_grad``) the
        iterations update their tensors in place (same arithmetic, fewer large allocations)."""
        if len(costs) != self.scales:
            raise ValueError(f"expected {self.scales} cost levels, got {len(costs)}")
        inplace = not torch.is_grad_enabled()
        alpha = F.softplus(self.alpha)
        tau = F.softplus(self.tau)
        sigma = F.softplus(self.sigma)
        costs = [channels_last(c) for c in costs]
        adjoint_weights = [k.adjoint_weight() for k in self.kernels]
        u = [self.initial_labels(c) for c in costs]
        u_bar = list(u)
        xi: list[torch.Tensor | None] = [None] * self.scales  # zero at the start
        nu: list[torch.Tensor | None] = [None] * self.scales
        for it in range(self.iterations):
            # u_0 after the last iteration depends on levels 0-1 after the one before, on levels
            # 0-2 after the one before that, ...: later iterations skip the coarse levels whose
            # updates could no longer reach the output (same result, less work).
            n = min(self.scales, self.iterations - it) if self.skip_unreachable else self.scales
            for s in range(n):
                step = sigma[s] * (u_bar[s].sum(1, keepdim=True) - 1.0)
                nu[s] = step if nu[s] is None else (nu[s].add_(step) if inplace else nu[s] + step)
            k = self._forward_op(u_bar, inplace, n)
            for s in range(n):
                if xi[s] is not None:
                    k[s] = k[s].add_(xi[s]) if inplace else xi[s] + k[s]
                xi[s] = self._project_dual(k[s], inplace)
            kt = self._adjoint_op(xi, adjoint_weights, n)
            for s in range(n):
                if inplace:  # u' = clip(u - alpha K*xi - tau (f + nu)); u_bar = 2 u' - u (in u's buffer)
                    new = torch.add(costs[s], nu[s]).mul_(-tau[s]).add_(u[s]).sub_(kt[s].mul_(alpha[s])).clamp_(0.0, 1.0)
                    if it + 1 < self.iterations:  # (the last iteration's u_bar is never used)
                        u_bar[s] = u[s].mul_(-1.0).add_(new, alpha=2.0)
                else:
                    new = torch.clamp(u[s] - alpha[s] * kt[s] - tau[s] * (costs[s] + nu[s]), 0.0, 1.0)
                    u_bar[s] = 2.0 * new - u[s]
                u[s] = new
        return u[0]
