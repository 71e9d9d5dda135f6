"""``ssr``: the offline command line of ssr_ros (no ROS installation needed for most commands).

Each subcommand lives in its own module under ``ssr_ros.cli`` and exposes
``register(subparsers)`` (adds its parser and sets ``func``). Errors derived from
``SsrError`` print one line and exit 2; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from ssr_ros import __version__
from ssr_ros.errors import SsrError

COMMAND_MODULES = [
    "ssr_ros.cli.demo_command",
    "ssr_ros.cli.play_command",
    "ssr_ros.cli.synth_command",
    "ssr_ros.cli.evaluate_command",
    "ssr_ros.cli.reconstruct_command",
    "ssr_ros.cli.render_command",
    "ssr_ros.cli.export_command",
    "ssr_ros.cli.params_command",
    "ssr_ros.cli.train_command",
    "ssr_ros.cli.train_segmenter_command",
    "ssr_ros.cli.train_mono_command",
    "ssr_ros.cli.evaluate_completion_command",
    "ssr_ros.cli.calibrate_completion_command",
    "ssr_ros.cli.export_segmenter_command",
    "ssr_ros.cli.train_regularizer_command",
    "ssr_ros.cli.regularize_command",
    "ssr_ros.cli.train_objects_command",
    "ssr_ros.cli.refine_objects_command",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssr",
        description=(
            "ssr_ros: semantic scene reconstruction from RGB-D. Fuse frames into a semantic "
            "TSDF, complete unseen space with a self-supervised 3D network, and export meshes, "
            "maps and previews. Run 'ssr COMMAND --help' for the options of a command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ssr_ros {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv`` None: the command line (then the interpreter's start-up counts in
    the run's time, ``args.started_at``), else these arguments (timed from this call)."""
    started_at = time.perf_counter()
    if argv is None:
        from ssr_ros.process_clock import process_age_s

        started_at -= process_age_s()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started_at = started_at
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ssr: interrupted", file=sys.stderr)
        return 130
    except (SsrError, OSError) as error:
        if args.verbose:
            raise
        print(f"ssr {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
