"""``ssr train-regularizer CONFIG``: train the learned semantic regulariser on generated rooms."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-regularizer",
        help="train the learned multi-scale primal-dual semantic regulariser (3D labels of generated rooms)",
        description="Generate rooms, fuse noisy depth and noisy 2D labels, and train the unrolled "
        "primal-dual regulariser against the rooms' exact labels (free space included). Writes "
        "OUT/log.jsonl, OUT/checkpoint.pt and OUT/model.pt; rooms are cached in OUT/rooms.",
    )
    parser.add_argument("config", help="training yaml (see config/training/regularizer_smoke.yaml)")
    parser.add_argument("--out", help="override out_dir")
    parser.add_argument("--steps", type=int, help="override optim.steps")
    parser.add_argument("--device", help="override device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def load_regularizer_training_config(path: str, out: str | None = None, steps: int | None = None,
                                     device: str | None = None):
    from ssr_ros.cli.train_command import load_run_config
    from ssr_ros.regularization.training import RegularizerTrainingConfig

    return load_run_config(RegularizerTrainingConfig, path, out, steps, device)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.cli.train_command import print_training_result
    from ssr_ros.regularization.training import train_regularizer

    config = load_regularizer_training_config(args.config, args.out, args.steps, args.device)
    command = "ssr " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train-regularizer"] else f"ssr train-regularizer {args.config}"
    result = train_regularizer(config, resume=args.resume, progress=not args.no_progress, command=command)
    print_training_result(result)
    return 0
