"""``ssr train-segmenter CONFIG``: train the small 2D segmenter that supplies pseudo-labels."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-segmenter",
        help="train the 2D segmenter on synthetic frames and virtual views",
        description="Render generated rooms along camera paths and from wide, pulled-back virtual "
        "views, and train the small 2D segmenter that labels recorded frames and rendered views "
        "during completion training (in place of a downloaded pretrained model).",
    )
    parser.add_argument("config", help="segmenter training yaml (see config/training/segmenter.yaml)")
    parser.add_argument("--out", help="override the weights path")
    parser.add_argument("--steps", type=int, help="override steps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.completion.segmenter_training import SegmenterTrainingConfig, run_segmenter_training
    from ssr_ros.config import load_yaml_config

    config = load_yaml_config(SegmenterTrainingConfig, args.config)
    if args.out:
        config.out = args.out
    if args.steps is not None:
        config.steps = args.steps
    summary = run_segmenter_training(config, progress=not args.no_progress, command="ssr " + " ".join(sys.argv[1:]))
    print(f"segmenter: {summary['train_seconds']} s training, loss {summary['first_loss']} -> {summary['final_loss']}, "
          f"validation pixel accuracy {summary['pixel_accuracy']}, mIoU {summary['miou']}")
    print(f"weights: {summary['weights']}")
    return 0
