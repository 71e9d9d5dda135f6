"""The README's parameter tables are generated from the config dataclasses and must match them."""

from __future__ import annotations

import shutil
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_parameter_tables_are_up_to_date(tmp_path):
    from ssr_ros.cli.params_command import update_readme

    copy = tmp_path / "README.md"
    shutil.copy(README, copy)
    assert not update_readme(copy), "README parameter tables are stale: run `ssr params --update-readme README.md`"


def test_every_parameter_appears_in_the_readme():
    from ssr_ros.pipeline import PipelineConfig
    from ssr_ros.ros.node_config import NodeConfig
    from ssr_ros.ros.parameters import _flatten_fields

    text = README.read_text()
    for cls in (NodeConfig, PipelineConfig):
        for name, *_ in _flatten_fields(cls):
            assert f"| `{name}` |" in text, name
