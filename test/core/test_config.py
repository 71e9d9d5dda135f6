"""Typed config dataclasses: ranges, choices, yaml loading, unknown keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ssr_ros.config import config_from_dict, load_yaml_config, param, validate_config
from ssr_ros.errors import ConfigError


@dataclass
class InnerConfig:
    mode: str = param("fast", "how to run", choices=["fast", "exact"])


@dataclass
class ExampleConfig:
    voxel_size: float = param(0.05, "voxel edge, metres", low=0.005, high=1.0)
    iterations: int = param(3, "how many", low=1)
    enabled: bool = param(True, "switch")
    inner: InnerConfig = field(default_factory=InnerConfig)


def test_defaults_validate():
    assert validate_config(ExampleConfig()).voxel_size == 0.05


def test_yaml_values_override_defaults_and_ints_become_floats():
    config = config_from_dict(ExampleConfig, {"voxel_size": 1, "inner": {"mode": "exact"}})
    assert config.voxel_size == 1.0 and isinstance(config.voxel_size, float)
    assert config.inner.mode == "exact" and config.iterations == 3


@pytest.mark.parametrize(
    "values,match",
    [
        ({"voxel_size": 2.0}, r"voxel_size=2.0 is out of range; expected \[0.005, 1.0\]"),
        ({"voxel_size": float("nan")}, "voxel_size is NaN"),
        ({"iterations": 0}, r"iterations=0 is out of range"),
        ({"inner": {"mode": "slow"}}, r"inner.mode='slow' is not allowed; expected one of \['fast', 'exact'\]"),
        ({"voxel_sise": 0.1}, r"unknown option\(s\) \['voxel_sise'\]"),
        ({"inner": {"mood": 1}}, r"unknown option\(s\) \['inner.mood'\]"),
        ({"iterations": "three"}, r"iterations='three' must be int"),
        ({"iterations": True}, r"iterations=True must be int, not bool"),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_range(values, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(ExampleConfig, values)


def test_load_yaml_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mapping:\n  voxel_size: 0.1\n  iterations: 5\n")
    config = load_yaml_config(ExampleConfig, path, section="mapping")
    assert (config.voxel_size, config.iterations) == (0.1, 5)


def test_unreadable_and_invalid_yaml_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml_config(ExampleConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml_config(ExampleConfig, bad)


def test_field_metadata_carries_descriptions():
    from ssr_ros.config import field_specs

    specs = dict(field_specs(ExampleConfig))
    assert specs["voxel_size"].metadata["description"] == "voxel edge, metres"
    assert specs["voxel_size"].metadata["low"] == 0.005
