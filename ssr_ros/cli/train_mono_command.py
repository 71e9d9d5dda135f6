"""``ssr train-mono CONFIG``: train (or fine-tune) the monocular depth + semantics network."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-mono",
        help="train the monocular (RGB only) depth + semantics network",
        description="Train the small 2D network of monocular mode: per-pixel log depth with a Laplace "
        "confidence and class scores, from generated rooms (exact depth and labels) and real RGB-D "
        "folders (their depth supervises the depth head; the last part of each sequence validates). "
        "Writes OUT/log.jsonl, OUT/checkpoint.pt and OUT/model.pt. With --finetune FOLDER it starts from "
        "the shipped weights (or --weights) and learns from the first part of your own RGB-D recording.",
    )
    parser.add_argument("config", help="training yaml (see config/training/mono.yaml, mono_smoke.yaml, mono_finetune.yaml)")
    parser.add_argument("--out", help="override out_dir")
    parser.add_argument("--steps", type=int, help="override optim.steps")
    parser.add_argument("--device", help="override device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--threads", type=int, help="override threads (CPU threads for torch)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--finetune", metavar="FOLDER",
                        help="fine-tune on this RGB-D folder (7-Scenes, TUM, ScanNet, Replica or Redwood layout)")
    parser.add_argument("--weights", help="with --finetune: start from these weights (default: the config's "
                        "init_weights, else models/mono_small.pt)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="render and read the training images into OUT/images.pt and stop (a later run with the "
                        "same data section reuses them)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.cli.train_command import load_run_config, print_training_result
    from ssr_ros.errors import ConfigError
    from ssr_ros.mono.predictor import default_mono_weights
    from ssr_ros.mono.training import MonoTrainingConfig, finetune_config, train_mono

    config = load_run_config(MonoTrainingConfig, args.config, args.out, args.steps, args.device)
    if args.threads is not None:
        if args.threads < 0:
            raise ConfigError(f"--threads={args.threads} must be 0 (torch default) or more")
        config.threads = args.threads
    if args.weights and not args.finetune:
        raise ConfigError("--weights only applies with --finetune FOLDER")
    if args.finetune:
        config = finetune_config(config, args.finetune, args.weights or config.init_weights or str(default_mono_weights()))
    if args.prepare_only:
        from pathlib import Path

        from ssr_ros.mono.training import training_images

        sets = training_images(config.validate())
        print(f"images in {Path(config.out_dir) / 'images.pt'}: " + ", ".join(
            f"{name} {len(images)}" for name, images in zip(("generated", "real", "validation"), sets)))
        return 0
    command = "ssr " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train-mono"] else f"ssr train-mono {args.config}"
    result = train_mono(config, resume=args.resume, progress=not args.no_progress, command=command)
    print_training_result(result)
    return 0
