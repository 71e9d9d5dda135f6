"""``ssr evaluate-completion``: fusion only vs Poisson vs fusion + network on held-out generated rooms."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-completion",
        help="score completion against fusion only and Poisson on held-out generated rooms",
        description="Generate held-out rooms, map each one through the mapping pipeline (every frame "
        "integrated, then the whole map completed), and print one markdown table: fusion only, Poisson "
        "reconstruction of the fused mesh, and fusion + completion, scored against the room's exact "
        "ground truth (mesh accuracy / completeness / precision / recall / F-score at 5 cm, occupied "
        "IoU on unobserved voxels, semantic mIoU, where the predicted surface lies).",
    )
    parser.add_argument("--weights", default="", help="completion weights (default: models/ssr_unet_small.pt)")
    parser.add_argument("--config", help="evaluation yaml (EvaluationConfig fields; see config/training/evaluation.yaml)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the held-out seeds")
    parser.add_argument("--frames", type=int, help="override the frames per room")
    parser.add_argument("--width", type=int, help="override the image width, pixels")
    parser.add_argument("--height", type=int, help="override the image height, pixels")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="completion.min_confidence (default 0: the threshold calibrated with the weights; "
                        "a model whose calibration found none is then withheld and the network row equals fusion)")
    parser.add_argument("--no-poisson", action="store_true", help="leave out the Poisson baseline")
    parser.add_argument("--no-layout", action="store_true", help="leave out the room-layout rows")
    parser.add_argument("--objects", action="store_true",
                        help="add rows with object refinement after the layout, with and without the network (the "
                        "shape prior, models/shape_prior_small.pt)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--out", help="write the full results (per seed, means, the table) as JSON here")
    parser.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[evaluate-completion] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from ssr_ros.completion_evaluation import EvaluationConfig, chunk_latency, comparison_tables, evaluate_seed, summarize
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.weights import default_weights_path
    from ssr_ros.config import config_to_dict, load_yaml_config
    from ssr_ros.errors import ConfigError
    from ssr_ros.evaluation.poisson import PoissonConfig
    from ssr_ros.pipeline import load_completion_model

    config = load_yaml_config(EvaluationConfig, args.config) if args.config else EvaluationConfig()
    if args.seeds:
        config.seeds = list(args.seeds)
    for name, value in (("frames_per_scene", args.frames), ("image_width", args.width), ("image_height", args.height)):
        if value is not None:
            setattr(config, name, value)
    config.validate()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = Path(args.weights) if args.weights else default_weights_path()
    completion = CompletionConfig(weights=str(weights), chunk_size=config.chunk_size, overlap=config.overlap,
                                  min_confidence=args.min_confidence,
                                  batch_size=config.batch_size).validate()
    model = load_completion_model(completion)  # fails here, once, when the weights do not load
    poisson = None if args.no_poisson else PoissonConfig()
    layout = None if args.no_layout else config.layout.validate()
    objects = None
    if args.objects:
        if layout is None:
            raise ConfigError("--objects needs the layout rows: it runs after the layout")
        from ssr_ros.objects.refinement import ObjectRefinementConfig, configured_prior

        objects = configured_prior(ObjectRefinementConfig())
    results = []
    for index, seed in enumerate(config.seeds):
        _say(f"room {index + 1}/{len(config.seeds)}: seed {seed}, {config.frames_per_scene} frames "
             f"{config.image_width}x{config.image_height}")
        result = evaluate_seed(int(seed), config, completion, poisson, layout=layout, objects=objects)
        results.append(result)
        scores = {m: s["fscore"] for m, s in result["methods"].items()}
        _say(f"seed {seed}: F-score " + ", ".join(f"{m} {100 * f:.1f}" for m, f in scores.items())
             + f" ({sum(result['seconds'].values()):.0f} s)")
    latency = chunk_latency(model, config.chunk_size)
    tables = comparison_tables(results)
    print(tables)
    print(f"\nchunk latency ({latency['chunk_size']}^3, {latency['device']}, {latency['threads']} threads): "
          f"median {latency['median_s']} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "weights": str(weights), "config": config_to_dict(config),
            "poisson": None if poisson is None else config_to_dict(poisson),
            "layout": None if layout is None else config_to_dict(layout), "seeds": results,
            "summary": summarize(results), "table_markdown": tables, "latency": latency,
        }, indent=1, default=str))
    return 0
