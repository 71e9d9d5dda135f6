"""Multi-scale class context: carries the classes of observed surfaces into unobserved space.

The unrolled primal-dual layers move label information about one voxel per iteration and scale
level, so with few iterations they cannot label surfaces far from what a camera observed. This
module does it in one pass, as a multi-scale normalised convolution of the observed class
evidence:

    q      = softmax(-f[classes])                  class distribution of each voxel's data cost
    c      = (max q - 1/C) / (1 - 1/C)             its confidence (0: no class evidence, e.g. unobserved
                                                   or seen-free voxels, whose class costs are all equal)
    n_k, d_k = avg-pool^k(c q), avg-pool^k(c)      k = 1 .. levels (pool by 2 at each level)
    N      = sum_k a_k Up(n_k) / (sum_k a_k Up(d_k) + eps)   (coarse to fine, trilinear Up by 2)

``N`` is the distribution of the classes observed around each voxel, near ones counting more
(they appear at every level, far ones at the coarse levels alone). :meth:`ClassContext.rerank`
adds ``beta (1 - c) log(N + eps)`` to the class logits and shifts them back so that the classes'
total probability, hence occupied-vs-free, is unchanged: it only changes which class a voxel
takes, and only where the voxel has no class evidence of its own. ``a_k`` (through softplus) and
``beta`` are learned.

With ``own_weight`` w > 0, a voxel that has class evidence (c > 0) keeps its own most likely
class in the prior: ``N <- (1 - w) N + w onehot(argmax q)``. Without it a weakly observed voxel
(small c, e.g. a thin object seen once) is pulled to the classes around it, which the
validation rooms showed on observed surfaces; unobserved voxels (c = 0) are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssr_ros.regularization.primal_dual import softmax_channels

EPS = 1e-3
OWN_MIN = 1e-3
"""Confidence ``c`` above which a voxel counts as having class evidence of its own."""


class ClassContext(nn.Module):
    """See the module docstring. ``levels`` >= 1 pooling levels; works on 2D and 3D grids."""

    def __init__(self, levels: int, d: int, beta: float = 6.0, decay: float = 0.5, own: float = 0.0) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels, self.d = levels, d
        # through softplus^-1: level k weighs decay^(k-1) at the start, so nearer evidence counts
        # more; with beta = 6 and 3 levels the best untrained setting on the validation rooms
        start = decay ** torch.arange(levels, dtype=torch.float32)
        self.level_weight = nn.Parameter(torch.log(torch.expm1(start)))
        self.beta = nn.Parameter(torch.tensor(float(beta)))
        # share of the prior given to the voxel's own fused class where it has class evidence
        # (used clamped to [0, 1]; 0 = the neighbourhood alone, as in files written before it)
        self.own_weight = nn.Parameter(torch.tensor(float(own)))

    @property
    def uses_own_class(self) -> bool:
        """Whether the voxel's own class enters the prior (a learnable weight always does)."""
        return self.own_weight.requires_grad and torch.is_grad_enabled() or float(self.own_weight.detach()) > 0.0

    def evidence(self, cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(q (B, C, *grid), c (B, 1, *grid)) from the data cost ``cost`` (B, L, *grid), label 0 = free."""
        q = softmax_channels(cost[:, 1:].neg())
        classes = q.shape[1]
        c = ((q.amax(1, keepdim=True) - 1.0 / classes) / (1.0 - 1.0 / classes)).clamp(min=0.0)
        return q, c

    def neighbourhood(self, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """N (B, C, *grid): the confidence-weighted class distribution around each voxel (0 where
        no class evidence is within reach). Grid sides must be multiples of 2^levels. Without
        autograd ``q`` is overwritten."""
        pool = F.avg_pool3d if self.d == 3 else F.avg_pool2d
        mode = "trilinear" if self.d == 3 else "bilinear"
        a = F.softplus(self.level_weight)
        weighted = q.mul_(c) if not torch.is_grad_enabled() else c * q
        x = torch.cat([pool(weighted, 2), pool(c, 2)], dim=1)  # pooled apart: no full-size copy
        pooled = [x]
        for _ in range(self.levels - 1):
            x = pool(x, 2)
            pooled.append(x)
        acc = a[-1] * pooled[-1]
        for k in range(self.levels - 2, -1, -1):
            acc = F.interpolate(acc, scale_factor=2, mode=mode, align_corners=False) + a[k] * pooled[k]
        acc = F.interpolate(acc, scale_factor=2, mode=mode, align_corners=False)
        return acc[:, :-1] / (acc[:, -1:] + EPS)

    def with_own_class(self, prior: torch.Tensor, own: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``(1 - w) N + w onehot(own)`` where the voxel has class evidence (``c > 0``), ``N``
        elsewhere; ``w`` = the clamped ``own_weight``, ``own`` (B, 1, *grid) the index of the
        voxel's most likely class. In place on ``prior`` without autograd."""
        w = self.own_weight.clamp(0.0, 1.0) * (c > OWN_MIN).to(prior.dtype)
        if torch.is_grad_enabled():
            return (prior * (1.0 - w)).scatter_add(1, own, w)
        return prior.mul_(1.0 - w).scatter_add_(1, own, w)

    def rerank(self, logits: torch.Tensor, cost: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``logits`` (B, L, *grid) with the class logits re-ranked by the neighbourhood's classes
        where the voxel's own class evidence is weak; the free logit and the classes' total
        probability are unchanged. Without autograd the work is done in place: on ``logits``
        itself when ``inplace`` (the caller owns it), else on a copy."""
        q, c = self.evidence(cost)
        own = q.argmax(1, keepdim=True) if self.uses_own_class else None
        if torch.is_grad_enabled():
            prior = self.neighbourhood(q, c)
            if own is not None:
                prior = self.with_own_class(prior, own, c)
            prior = torch.log(prior + EPS)
            free, classes = logits[:, :1], logits[:, 1:]
            shifted = classes + self.beta * (1.0 - c) * prior
            shifted = shifted - torch.logsumexp(shifted, 1, keepdim=True) + torch.logsumexp(classes, 1, keepdim=True)
            return torch.cat([free, shifted], dim=1)
        prior = self.neighbourhood(q, c)
        if own is not None:
            prior = self.with_own_class(prior, own, c)
        prior = prior.add_(EPS).log_()
        out = logits if inplace else logits.clone()
        classes = out[:, 1:]
        total = torch.logsumexp(classes, 1, keepdim=True)
        classes.addcmul_(prior, c.mul_(-self.beta).add_(self.beta))  # + beta (1 - c) prior
        classes.sub_(torch.logsumexp(classes, 1, keepdim=True).sub_(total))
        return out
