"""``ssr params``: the mapper's parameters (name, type, default, range, description).

Generated from the config dataclasses, the single place each parameter is declared; with
``--update-readme`` the tables in README.md between the ``parameters`` markers are rewritten.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

BEGIN, END = "<!-- parameters:begin -->", "<!-- parameters:end -->"


def parameter_tables() -> str:
    """Markdown: the node's ROS-side parameters, then the pipeline's (map, completion, scheduler)."""
    from ssr_ros.pipeline import PipelineConfig
    from ssr_ros.ros.node_config import NodeConfig
    from ssr_ros.ros.parameters import parameter_table

    return (
        "Node (topics, frames, QoS, publication rates):\n\n" + parameter_table(NodeConfig)
        + "\n\nMapping pipeline (shared with `ssr reconstruct`):\n\n" + parameter_table(PipelineConfig) + "\n"
    )


def update_readme(path: Path) -> bool:
    """Rewrite the generated block of ``path``; returns True when it changed."""
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no '{BEGIN}' ... '{END}' block")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{parameter_tables()}{END}", text, flags=re.S)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "params", help="list the mapper's parameters",
        description="Print every parameter of the mapper node and the mapping pipeline with its type, "
        "default, allowed range and description (Markdown tables).",
    )
    parser.add_argument("--update-readme", metavar="README", help="rewrite the parameter tables in this file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.update_readme:
        changed = update_readme(Path(args.update_readme))
        print(f"{args.update_readme}: {'updated' if changed else 'already up to date'}")
        return 0
    print(parameter_tables())
    return 0
