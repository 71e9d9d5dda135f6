"""``ssr evaluate-completion``: fusion only vs fusion + network on held-out generated rooms."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-completion",
        help="score completion on held-out generated rooms (fusion only vs + network)",
        description="Generate held-out rooms, fuse their full sequences, complete them with the "
        "network and report completion IoU/recall on unobserved voxels and semantic mIoU/mAcc "
        "against exact ground truth, plus the network's chunk latency.",
    )
    parser.add_argument("--weights", default="", help="completion weights (default: models/ssr_unet_small.pt)")
    parser.add_argument("--config", help="evaluation yaml (EvaluationConfig fields; see config/training/evaluation.yaml)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the held-out seeds")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--out", help="write the full results as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ssr_ros.completion.evaluation import EvaluationConfig, chunk_latency, evaluate_seed, summarize
    from ssr_ros.completion.weights import default_weights_path, load_model
    from ssr_ros.config import load_yaml_config

    config = load_yaml_config(EvaluationConfig, args.config) if args.config else EvaluationConfig()
    if args.seeds:
        config.seeds = list(args.seeds)
    config.validate()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = Path(args.weights) if args.weights else default_weights_path()
    model = load_model(weights)
    results = []
    for seed in config.seeds:
        result = evaluate_seed(model, int(seed), config)
        results.append(result)
        f, n = result["fusion"], result["network"]
        print(f"seed {seed}: unobserved IoU {f['unobserved_iou']:.3f} -> {n['unobserved_iou']:.3f}, "
              f"recall {f['unobserved_recall']:.3f} -> {n['unobserved_recall']:.3f}, "
              f"observed mIoU {f['observed_miou']:.3f} -> {n['observed_miou']:.3f}")
    summary = summarize(results)
    latency = chunk_latency(model, config.chunk_size)
    print("mean: " + json.dumps(summary))
    print(f"chunk latency ({latency['chunk_size']}^3, {latency['device']}, {latency['threads']} threads): "
          f"median {latency['median_s']} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"weights": str(weights), "config": config.__dict__, "seeds": results,
                                              "summary": summary, "latency": latency}, indent=1, default=str))
    return 0
