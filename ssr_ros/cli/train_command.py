"""``ssr train CONFIG``: self-supervised training of the SSR completion network."""

from __future__ import annotations

import argparse
import sys

from ssr_ros.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the completion network from RGB-D frames (no 3D labels)",
        description="Generate scenes, fuse a subset of their frames into the map, and train the SSR "
        "3D U-Net by rendering its predictions into the recorded and virtual views. Writes "
        "OUT/log.jsonl, OUT/checkpoint.pt and OUT/model.pt. Multi-GPU: torchrun --nproc_per_node=N "
        "-m ssr_ros.cli.main train CONFIG.",
    )
    parser.add_argument("config", help="training yaml (see config/training/smoke.yaml)")
    parser.add_argument("--out", help="override out_dir")
    parser.add_argument("--steps", type=int, help="override optim.steps")
    parser.add_argument("--device", help="override device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def load_run_config(config_class, path: str, out: str | None = None, steps: int | None = None,
                    device: str | None = None):
    """A training config (``config_class``: a dataclass with out_dir, optim.steps and device) read
    from ``path`` with the command line's overrides applied, validated."""
    from ssr_ros.config import load_yaml_config

    config = load_yaml_config(config_class, path)
    if out:
        config.out_dir = out
    if steps is not None:
        if steps < 1:
            raise ConfigError(f"--steps={steps} must be at least 1")
        config.optim.steps = steps
    if device:
        config.device = device
    return config.validate()


def load_training_config(path: str, out: str | None = None, steps: int | None = None, device: str | None = None):
    from ssr_ros.completion.training import TrainingConfig

    return load_run_config(TrainingConfig, path, out, steps, device)


def loss_trend(losses: list[float]) -> str:
    """'loss FIRST -> LAST' from the means of the first and the last ten steps."""
    first = sum(losses[:10]) / max(len(losses[:10]), 1) if losses else float("nan")
    last = sum(losses[-10:]) / max(len(losses[-10:]), 1) if losses else float("nan")
    return f"loss {first:.4f} -> {last:.4f}"


def print_training_result(result) -> None:
    """What every ``ssr train*`` command prints at the end: steps, time and loss trend, the last
    validation scores (floats to 4 decimals) and where the weights went. ``result``: any training
    result with ``losses``, ``seconds``, ``validation`` (list of dicts) and ``weights_path``."""
    print(f"trained {len(result.losses)} steps in {result.seconds:.0f} s: {loss_trend(result.losses)}")
    if result.validation:
        print("validation: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in result.validation[-1].items()))
    print(f"weights: {result.weights_path}")


def run(args: argparse.Namespace) -> int:
    from ssr_ros.completion.training import train

    config = load_training_config(args.config, args.out, args.steps, args.device)
    command = "ssr train " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else f"ssr train {args.config}"
    result = train(config, resume=args.resume, progress=not args.no_progress, command=command)
    if result.weights_path is not None:
        print_training_result(result)
    return 0
