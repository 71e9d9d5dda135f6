"""The 2D synthetic check of Cherabier et al. (Sec. 4.2): TV-L1 vs the learned regulariser.

Images of 5 labels (free, ground, building, roof, vegetation) with ordering structure (roofs
on buildings, buildings and trees on the ground), Gaussian color noise and large missing
regions (uniform data cost). Data cost ``f_l = ||I - c_l||^2``. Reports pixel accuracy over all
pixels and over the missing regions for TV-L1 (smoothness tuned on the training images) and
for the learned regulariser (``--iterations`` T, one network per value, ``--scales`` S) trained
on ``--train`` images; TV-L1 at each of ``--tv-iterations``.

    PYTHONPATH=. python benchmarks/regularizer_toy2d.py --iterations 1 2 3 5 10
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.regularization.energy.tv_l1 import TVL1Config, solve_tv_l1
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig

COLORS = np.array([[1, 1, 1], [0.5, 0.5, 0.5], [0.8, 0.1, 0.1], [0.1, 0.2, 0.8], [0.1, 0.7, 0.1]], np.float32)


def toy_scene(rng: np.random.Generator, h: int, w: int):
    """(labels (h, w) int64, missing (h, w) bool) of one random scene; row 0 is the top."""
    y, x = np.mgrid[0:h, 0:w]
    labels = np.zeros((h, w), np.int64)
    ground = int(rng.integers(h * 2 // 3, h - 4))
    labels[y >= ground] = 1
    for _ in range(int(rng.integers(1, 3))):  # buildings with roofs
        x0 = int(rng.integers(0, w - 16)); x1 = x0 + int(rng.integers(10, 24))
        top = ground - int(rng.integers(10, ground - 12))
        labels[(y >= top) & (y < ground) & (x >= x0) & (x < x1)] = 2
        roof_h = int(rng.integers(4, 10))
        cx, half = (x0 + x1) / 2, (x1 - x0) / 2
        roof = (y < top) & (y >= top - roof_h) & (np.abs(x - cx) <= half * (y - (top - roof_h)) / roof_h)
        labels[roof] = 3
    for _ in range(int(rng.integers(0, 3))):  # trees
        cx = int(rng.integers(4, w - 4)); r = int(rng.integers(3, 7))
        cy = ground - r - int(rng.integers(0, 4))
        labels[((x - cx) ** 2 + (y - cy) ** 2 <= r * r) & (labels != 2) & (labels != 3)] = 4
        labels[(np.abs(x - cx) <= 0) & (y > cy) & (y < ground)] = 4
    missing = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(4, 10))
        if rng.random() < 0.5:
            missing |= (x - cx) ** 2 + (y - cy) ** 2 <= r * r
        else:
            missing |= (np.abs(x - cx) <= r) & (np.abs(y - cy) <= r)
    return labels, missing


def dataset(n: int, seed: int, h: int, w: int, noise: float):
    rng = np.random.default_rng(seed)
    labels, costs, missing = [], [], []
    for _ in range(n):
        lab, miss = toy_scene(rng, h, w)
        image = COLORS[lab] + rng.normal(0, noise, (h, w, 3)).astype(np.float32)
        cost = ((image[None] - COLORS[:, None, None]) ** 2).sum(-1)
        cost[:, miss] = 0.0
        labels.append(lab); costs.append(cost); missing.append(miss)
    return torch.from_numpy(np.stack(labels)), torch.from_numpy(np.stack(costs)), torch.from_numpy(np.stack(missing))


def features(costs, missing):
    strength = (~missing).float()[:, None]
    return torch.cat([costs, strength, torch.zeros_like(strength)], dim=1)


def accuracy(pred, labels, missing):
    return float((pred == labels).float().mean()), float((pred == labels)[missing].float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--iterations", type=int, nargs="+", default=[10],
                        help="unrolled iterations T of the learned regulariser; one network trained per value")
    parser.add_argument("--scales", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--tv-iterations", type=int, nargs="*", default=[10, 30, 100, 300, 1000],
                        help="TV-L1 iteration counts reported (none: TV-L1 left out)")
    parser.add_argument("--out", default="benchmarks/results/regularizer_toy2d.json")
    args = parser.parse_args()
    tr_l, tr_c, tr_m = dataset(args.train, 0, args.height, args.width, args.noise)
    te_l, te_c, te_m = dataset(args.test, 1, args.height, args.width, args.noise)
    table = {"data cost only": accuracy(te_c.argmin(1), te_l, te_m)}
    result = {"images": {"train": args.train, "test": args.test, "size": [args.height, args.width], "noise": args.noise}}

    # TV-L1: smoothness tuned on 20 training images, then run on the test images
    def tv(costs, lam, iterations):
        out = []
        for c in costs:
            out.append(solve_tv_l1(c, TVL1Config(smoothness=lam, iterations=iterations, tolerance=0.0)).u.argmax(0))
        return torch.stack(out)

    if args.tv_iterations:
        tuning = {lam: accuracy(tv(tr_c[:20], lam, 300), tr_l[:20], tr_m[:20])[0] for lam in (0.1, 0.2, 0.4, 0.8)}
        lam = max(tuning, key=tuning.get)
        seconds = {}
        for iterations in args.tv_iterations:
            start = time.perf_counter()
            table[f"TV-L1 ({iterations} it.)"] = accuracy(tv(te_c, lam, iterations), te_l, te_m)
            seconds[iterations] = time.perf_counter() - start
            print(f"TV-L1 {iterations} it.: {table[f'TV-L1 ({iterations} it.)']}", flush=True)
        result["tv_l1"] = {"smoothness": lam, "tuning": tuning, "seconds": seconds}

    result["learned"] = {}
    x_tr = features(tr_c, tr_m)
    for iterations in args.iterations:
        torch.manual_seed(0)
        model = LearnedRegularizer(5, RegularizerNetworkConfig(iterations=iterations, scales=args.scales, hidden=8, dims=2))
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
        g = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for step in range(args.steps):
            idx = torch.randint(0, args.train, (16,), generator=g)
            loss = F.cross_entropy(model(x_tr[idx]), tr_l[idx])
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            if step % 100 == 0:
                print(f"T={iterations} step {step} loss {float(loss.detach()):.4f}", flush=True)
        with torch.no_grad():
            table[f"learned (T={iterations}, S={args.scales})"] = accuracy(model(features(te_c, te_m)).argmax(1), te_l, te_m)
        result["learned"][iterations] = {"scales": args.scales, "steps": args.steps, "parameters": model.num_parameters(),
                                         "train_seconds": time.perf_counter() - start}
    result["accuracy_all_missing"] = table
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    print("| method | accuracy, all pixels (%) | accuracy, missing regions (%) |")
    print("| --- | --- | --- |")
    for name, (all_acc, miss_acc) in table.items():
        print(f"| {name} | {100 * all_acc:.1f} | {100 * miss_acc:.1f} |")


if __name__ == "__main__":
    main()
