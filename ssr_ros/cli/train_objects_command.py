"""``ssr train-objects CONFIG``: train the per-class object shape prior on the furniture templates."""

from __future__ import annotations

import argparse
import sys

from ssr_ros.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-objects",
        help="train the object shape prior (conditional SDF completion + yaw) on the furniture templates",
        description="Draw furniture of random parameters from the generator's templates, simulate partial "
        "views of each (1-3 cameras, depth noise, 5 cm voxels), and train a class-conditioned 3D U-Net that "
        "completes the object's SDF on a canonical grid and estimates its yaw. Writes OUT/log.jsonl, "
        "OUT/checkpoint.pt and OUT/model.pt (use it with 'ssr refine-objects --weights').",
    )
    parser.add_argument("config", help="training yaml (see config/training/objects_smoke.yaml)")
    parser.add_argument("--out", help="override out_dir")
    parser.add_argument("--steps", type=int, help="override optim.steps")
    parser.add_argument("--device", help="override device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--threads", type=int, help="override threads (CPU threads for torch; 1 leaves the other cores free)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.cli.train_command import load_run_config, print_training_result
    from ssr_ros.objects.training import ShapePriorTrainingConfig, train_shape_prior

    config = load_run_config(ShapePriorTrainingConfig, args.config, args.out, args.steps, args.device)
    if args.threads is not None:
        if args.threads < 0:
            raise ConfigError(f"--threads={args.threads} must be 0 (torch's default) or more")
        config.threads = args.threads
    command = "ssr " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train-objects"] else f"ssr train-objects {args.config}"
    result = train_shape_prior(config, resume=args.resume, progress=not args.no_progress, command=command)
    print_training_result(result)
    return 0
