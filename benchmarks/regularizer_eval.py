"""Raw fusion vs TV-L1 vs the learned regulariser on held-out generated rooms with label noise.

Rooms (default seeds 4000-4002, never used in training) are captured with noisy depth and
2D-predictor labels from 60% of their frames and fused (as in training). TV-L1's smoothness is
chosen on the validation room (seed 1000) from ``--lambdas``; TV-L1 is then run to
``--tv-iterations`` on every test room and scored along the way, so the table can name the
iterations it needs for its best result. Scores: semantic mIoU and overall accuracy over the GT
surface voxels the input observed, over all GT surface voxels, and over the unobserved ones
(see ssr_ros.regularization.evaluation). Timing: one 64^3 chunk with 21 labels on this machine.

    PYTHONPATH=. python benchmarks/regularizer_eval.py --weights models/regularizer_pd_small.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ssr_ros.evaluation.timing import best_time
from ssr_ros.regularization.data_cost import DataCostConfig, crop_chunk, data_cost, network_input, raw_labels
from ssr_ros.regularization.energy.tv_l1 import TVL1Config, solve_tv_l1
from ssr_ros.regularization.evaluation import SurfaceScores, class_labels
from ssr_ros.regularization.scenes import RoomCaptureConfig, RoomVolume, cached_room
from ssr_ros.regularization.stage import TIE_BREAK
from ssr_ros.regularization.weights import load_regularizer

CHECKPOINTS = (10, 20, 50, 100, 200, 300, 500, 700, 1000, 1500, 2000)


def tv_l1_probs(u, f):
    return (u + TIE_BREAK * torch.softmax(-f, dim=0)) / (1.0 + TIE_BREAK)


def run_tv_l1(room, smoothness, iterations, costs: DataCostConfig, scores: dict | None = None, num_classes=21):
    """TV-L1 on a room; adds the labels at each checkpoint to ``scores[it]``; returns seconds/iteration."""
    f, strength = data_cost(room.chunk, costs)

    def score(it, u):
        if scores is not None and it in CHECKPOINTS:
            scores.setdefault(it, SurfaceScores(num_classes)).add(class_labels(tv_l1_probs(u, f), strength), room)

    start = time.perf_counter()
    config = TVL1Config(smoothness=smoothness, iterations=iterations, tolerance=0.0, check_every=10)
    solve_tv_l1(f, config, callback=score)
    return (time.perf_counter() - start) / iterations


def load_room(seed, capture, args, L) -> RoomVolume:
    """The room of ``seed``, cut to its central ``args.crop`` x ``args.crop`` columns when asked."""
    room = cached_room(seed, capture, args.cache, L)
    if not args.crop:
        return room
    X, Y, Z = room.labels.shape
    start = [max(0, (X - args.crop) // 2), max(0, (Y - args.crop) // 2), 0]
    size = [min(args.crop, X), min(args.crop, Y), Z]
    sl = tuple(slice(a, a + n) for a, n in zip(start, size))
    return RoomVolume(room.name, crop_chunk(room.chunk, start, size), room.labels[sl], room.in_room[sl], room.surface[sl])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="models/regularizer_pd_context.pt")
    parser.add_argument("--seeds", type=int, nargs="+", default=[4000, 4001, 4002])
    parser.add_argument("--val-seed", type=int, default=1000)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--tune-iterations", type=int, default=300)
    parser.add_argument("--tv-iterations", type=int, default=1000)
    parser.add_argument("--cache", default="out/regularizer_eval/rooms")
    parser.add_argument("--out", default="benchmarks/results/regularizer_eval.json")
    parser.add_argument("--tv-json", default="out/regularizer_eval/tv_l1.json",
                        help="TV-L1 part of the results: reused when it exists, else computed and written")
    parser.add_argument("--tv-only", action="store_true", help="compute the TV-L1 and raw-fusion part only")
    parser.add_argument("--crop", type=int, default=0,
                        help="score only the central CROP x CROP (x all z) voxels of each room (0 = whole rooms)")
    args = parser.parse_args()
    torch.manual_seed(0)
    capture = RoomCaptureConfig()
    L = 21
    tv_path = Path(args.tv_json)
    if tv_path.exists():
        tv_part = json.loads(tv_path.read_text())
    else:
        tv_part = tv_l1_part(args, capture, DataCostConfig(), L)
        tv_path.parent.mkdir(parents=True, exist_ok=True)
        tv_path.write_text(json.dumps(tv_part, indent=1))
    if args.tv_only:
        return
    model = load_regularizer(args.weights)
    costs = model.data_cost
    if costs != DataCostConfig():
        raise SystemExit("the weights use another data cost than the TV-L1 part; delete --tv-json to recompute")
    learned = SurfaceScores(L)
    for seed in args.seeds:
        room = load_room(seed, capture, args, L)
        with torch.inference_mode():
            probs = torch.softmax(model(network_input(room.chunk, costs)[None]), 1)[0]
        _, strength = data_cost(room.chunk, costs)
        learned.add(class_labels(probs, strength), room)
    chunk_features = torch.randn(1, L + 2, 64, 64, 64)
    with torch.inference_mode():
        learned_s = best_time(lambda: model(chunk_features), warmup=1)
    lam, tv_needed, tv_step_s = tv_part["tv_l1"]["smoothness"], tv_part["tv_l1"]["iterations_for_best"], tv_part["tv_l1_s_per_iteration_64"]
    result = {
        **tv_part,
        "weights": args.weights, "parameters": model.num_parameters(), "network": model.config.__dict__,
        "learned": learned.summary(),
        "timing_64": {"learned_s": learned_s, "learned_iterations": model.config.iterations,
                      "tv_l1_s_per_iteration": tv_step_s, "tv_l1_s_to_best": tv_step_s * tv_needed},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    rows = [("raw fusion", result["raw"], "-", "-", "0"),
            (f"TV-L1 (lambda {lam})", result["tv_l1_best"], str(tv_needed), f"{tv_step_s * tv_needed:.1f}", "0"),
            (f"learned (T={model.config.iterations}, S={model.config.scales})", result["learned"],
             str(model.config.iterations), f"{learned_s:.1f}", str(model.num_parameters()))]
    print("| method | mIoU obs | acc obs | mIoU all | acc all | mIoU unobs | acc unobs | iterations | s / 64^3 chunk | parameters |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, s, its, secs, params in rows:
        cells = [f"{s[r]['miou']:.1f} | {s[r]['accuracy']:.1f}" for r in ("observed", "all", "unobserved")]
        print(f"| {name} | " + " | ".join(cells) + f" | {its} | {secs} | {params} |")


def tv_l1_part(args, capture, costs, L) -> dict:
    """Raw fusion and TV-L1 (smoothness tuned on the validation room) on the test rooms."""
    val = load_room(args.val_seed, capture, args, L)
    tuning = {}
    for lam in args.lambdas:
        per = {}
        run_tv_l1(val, lam, args.tune_iterations, costs, per, L)
        tuning[lam] = per[max(per)].summary()["all"]["miou"]
        print(f"TV-L1 lambda={lam}: val mIoU(all) {tuning[lam]:.1f}", flush=True)
    lam = max(tuning, key=tuning.get)
    raw, tv, tv_iter_s = SurfaceScores(L), {}, []
    for seed in args.seeds:
        room = load_room(seed, capture, args, L)
        raw.add(raw_labels(room.chunk), room)
        tv_iter_s.append(run_tv_l1(room, lam, args.tv_iterations, costs, tv, L))
        print(f"room {seed}: TV-L1 done", flush=True)
    tv_curve = {it: sc.summary() for it, sc in sorted(tv.items())}
    best = max(v["all"]["miou"] for v in tv_curve.values())
    tv_needed = min(it for it, v in tv_curve.items() if v["all"]["miou"] >= best - 0.5)
    f64 = torch.rand(L, 64, 64, 64)
    tv_step_s = best_time(lambda: solve_tv_l1(f64, TVL1Config(smoothness=lam, iterations=20, tolerance=0.0)), warmup=1) / 20
    return {
        "machine": "2-core x86_64, 24 GiB, no GPU, shared",
        "rooms": args.seeds, "val_room": args.val_seed, "num_labels": L, "crop": args.crop,
        "tv_l1": {"smoothness": lam, "tuning_val_miou_all": tuning, "iterations_for_best": tv_needed,
                  "curve": {str(k): v for k, v in tv_curve.items()}, "room_seconds_per_iteration": tv_iter_s},
        "tv_l1_s_per_iteration_64": tv_step_s,
        "raw": raw.summary(), "tv_l1_best": tv_curve[tv_needed],
    }


if __name__ == "__main__":
    main()
