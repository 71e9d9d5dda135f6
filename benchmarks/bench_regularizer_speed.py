"""Speed of one forward pass of the learned regulariser on a 64^3 chunk with 21 labels: the
current implementation against the previous one (kept here as the reference peer), in one run.

The reference is the implementation the network had before its inference path was reworked:
contiguous tensors, the adjoint of the interaction kernel by ``conv_transpose`` of a copy,
the upsampling adjoint by average pooling then a transposed 1x1 convolution, the dual projection
by ``repeat``, out-of-place updates, ``torch.no_grad``. Both run the same weights and must give
the same logits (checked). Timings: best of ``--repeats`` after one warm-up run, alternating.

    PYTHONPATH=. python benchmarks/bench_regularizer_speed.py --iterations 2 5 --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ssr_ros.evaluation.timing import best_time
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.weights import load_regularizer


def _ref_pad_end_adjoint(y):
    y = y.clone()
    for axis in range(2, 5):
        n = y.shape[axis]
        y.narrow(axis, n - 2, 1).add_(y.narrow(axis, n - 1, 1))
    return y[:, :, :-1, :-1, :-1]


def reference_forward(model: LearnedRegularizer, features: torch.Tensor) -> torch.Tensor:
    """The previous implementation's arithmetic and operators (3D, grid a multiple of 2^(S-1))."""
    pd, L, S = model.primal_dual, model.num_labels, model.primal_dual.scales
    costs = [model.encoders[0](features)]
    for s in range(1, S):
        costs.append(model.encoders[s](F.avg_pool3d(costs[-1], 2)))
    alpha, tau, sigma = F.softplus(pd.alpha), F.softplus(pd.tau), F.softplus(pd.sigma)

    def forward_op(u_bar):
        out = []
        for s in range(S):
            k = F.conv3d(F.pad(u_bar[s], (0, 1) * 3, mode="replicate"), pd.kernels[s].weight)
            if s + 1 < S:
                k = k + F.interpolate(F.conv3d(u_bar[s + 1], pd.transfer[s]), scale_factor=2, mode="nearest")
            out.append(k)
        return out

    def adjoint_op(xi):
        out = []
        for s in range(S):
            a = _ref_pad_end_adjoint(F.conv_transpose3d(xi[s], pd.kernels[s].weight))
            if s > 0:
                a = a + F.conv_transpose3d(F.avg_pool3d(xi[s - 1], 2) * 8, pd.transfer[s - 1])
            out.append(a)
        return out

    def project(xi):
        parts = [xi[:, a * L:(a + 1) * L] for a in range(3)]
        norm = torch.sqrt(sum(p * p for p in parts) + 1e-12)
        return xi / torch.clamp(norm, min=1.0).repeat((1, 3, 1, 1, 1))

    u = [torch.softmax(-c, dim=1) for c in costs]
    u_bar = list(u)
    xi = [c.new_zeros((c.shape[0], 3 * L) + tuple(c.shape[2:])) for c in costs]
    nu = [c.new_zeros((c.shape[0], 1) + tuple(c.shape[2:])) for c in costs]
    for _ in range(pd.iterations):
        nu = [nu[s] + sigma[s] * (u_bar[s].sum(1, keepdim=True) - 1.0) for s in range(S)]
        k = forward_op(u_bar)
        xi = [project(xi[s] + k[s]) for s in range(S)]
        kt = adjoint_op(xi)
        new = [torch.clamp(u[s] - alpha[s] * kt[s] - tau[s] * (costs[s] + nu[s]), 0.0, 1.0) for s in range(S)]
        u_bar = [2.0 * new[s] - u[s] for s in range(S)]
        u = new
    logits = model.contrast * model.decoder(u[0])
    if model.config.data_skip:
        logits = logits - model.data_gamma * features[:, :L]
    if model.config.context_levels:  # added after the rework: the same code in both
        logits = model.context.rerank(logits, features[:, :L])
    return logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="", help="weights file (default: a fresh network of --iterations)")
    parser.add_argument("--peer-weights", default="",
                        help="also time these weights (current implementation) in the same run, as a ratio")
    parser.add_argument("--iterations", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/regularizer_speed.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    features = torch.rand(1, 23, args.size, args.size, args.size)
    features[:, :21] *= 3.0  # data costs in [0, 3]
    rows = []
    for iterations in args.iterations:
        if args.weights:
            model = load_regularizer(args.weights)
            model.primal_dual.iterations = iterations
        else:
            model = LearnedRegularizer(21, RegularizerNetworkConfig(iterations=iterations)).eval()
        with torch.no_grad():
            ref = reference_forward(model, features)
        with torch.inference_mode():
            new = model(features)
        difference = float((ref - new).abs().max())
        if difference > 1e-3:
            raise SystemExit(f"the implementations disagree by {difference}")
        peer = None
        if args.peer_weights:
            peer = load_regularizer(args.peer_weights)
            peer.primal_dual.iterations = iterations
        for threads in args.threads:
            torch.set_num_threads(threads)
            with torch.no_grad():
                reference_forward(model, features)
            with torch.inference_mode():
                model(features)
            ref_s, new_s, peer_s = [], [], []
            for _ in range(args.repeats):  # alternate, so all see the same load
                with torch.no_grad():
                    ref_s.append(best_time(lambda: reference_forward(model, features)))
                with torch.inference_mode():
                    new_s.append(best_time(lambda: model(features)))
                    if peer is not None:
                        peer_s.append(best_time(lambda: peer(features)))
            row = {"iterations": iterations, "threads": threads, "reference_s": min(ref_s), "current_s": min(new_s),
                   "speedup": min(ref_s) / min(new_s), "max_logit_difference": difference,
                   "load_average_1min": os.getloadavg()[0]}
            if peer is not None:
                row.update({"peer_weights": args.peer_weights, "peer_s": min(peer_s),
                            "current_over_peer": min(new_s) / min(peer_s)})
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"machine": "2-core x86_64, 24 GiB, no GPU, shared", "torch": torch.__version__, "size": args.size,
              "num_labels": 21, "parameters": model.num_parameters(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
