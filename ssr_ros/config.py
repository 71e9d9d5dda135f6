"""Typed configuration: one dataclass per module, each field declared once.

A field is declared with :func:`param`, which records its description and allowed range in
the dataclass field metadata. That single declaration drives validation
(:func:`validate_config`), yaml loading (:func:`config_from_dict`), the ROS parameter
declarations of the node and the parameter tables of the README::

    @dataclass
    class TSDFConfig:
        voxel_size: float = param(0.05, "edge length of a voxel, metres", low=0.005, high=1.0)

        def validate(self) -> "TSDFConfig":
            return validate_config(self)
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ssr_ros.errors import ConfigError


def param(
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A dataclass field with a description and an optional inclusive range or choice list."""
    metadata = {"description": description, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_specs(cls_or_obj: Any) -> list[tuple[str, dataclasses.Field]]:
    """(name, Field) pairs of a config dataclass, in declaration order."""
    return [(f.name, f) for f in dataclasses.fields(cls_or_obj)]


def validate_config(config: Any, prefix: str = "") -> Any:
    """Check every field against its declared range/choices, recursing into nested configs.

    Raises ConfigError naming the field (dotted path), the bad value and what is allowed.
    Returns ``config`` for chaining.
    """
    for name, spec in field_specs(config):
        value = getattr(config, name)
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(value):
            validate_config(value, prefix=f"{path}.")
            continue
        low, high, choices = spec.metadata.get("low"), spec.metadata.get("high"), spec.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{path}={value!r} is not allowed; expected one of {list(choices)}")
        if low is not None or high is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{path}={value!r} must be a number")
            if value != value:  # NaN
                raise ConfigError(f"{path} is NaN; expected a number in [{low}, {high}]")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ConfigError(f"{path}={value!r} is out of range; expected [{low}, {high}]")
    return config


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    """Convert a yaml value to the field's annotated type (int -> float allowed)."""
    if annotation in (float, "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = {float: float, int: int, bool: bool, str: str, "float": float, "int": int, "bool": bool, "str": str}.get(annotation)
    if expected is not None:
        if expected is not bool and isinstance(value, bool):
            raise ConfigError(f"{path}={value!r} must be {expected.__name__}, not bool")
        if not isinstance(value, expected):
            raise ConfigError(f"{path}={value!r} must be {expected.__name__}")
    return value


def config_from_dict(cls: type, values: Mapping[str, Any] | None, prefix: str = "") -> Any:
    """Build and validate a config dataclass from a (yaml) mapping; unknown keys are errors."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {[prefix + k for k in unknown]}; known: {sorted(known)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        hint = hints.get(f.name, f.type)
        value = values[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = config_from_dict(hint, value, prefix=f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = _coerce(value, hint, prefix + f.name)
    return validate_config(cls(**kwargs), prefix=prefix)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config (nested dataclasses become dicts)."""
    return dataclasses.asdict(config)


def _read_yaml(path: Path) -> Any:
    """The parsed yaml document of ``path`` (``{}`` when empty); ConfigError when unreadable."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"cannot read config '{path}': {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config '{path}' is not valid YAML: {error}") from error


def load_yaml_config(cls: type, path: str | Path, section: str | None = None) -> Any:
    """Load ``cls`` from a yaml file, optionally from one top-level ``section``."""
    path = Path(path)
    document = _read_yaml(path)
    if section is not None:
        document = document.get(section, {}) if isinstance(document, dict) else None
    if not isinstance(document, dict):
        raise ConfigError(f"config '{path}' section {section!r} must be a mapping")
    return config_from_dict(cls, document)


def nest_dotted(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"map.voxel_size": 0.05}`` -> ``{"map": {"voxel_size": 0.05}}`` (nested keys merge)."""
    nested: dict[str, Any] = {}
    for key, value in values.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"option '{key}' nests under '{part}', which is a value, not a group")
            node = child
        if isinstance(value, Mapping):
            node.setdefault(parts[-1], {}).update(nest_dotted(value))
        else:
            node[parts[-1]] = value
    return nested


DEPRECATED_PARAMETERS: dict[str, tuple[str, str]] = {
    "occupancy_min_z": ("planning.min_height", "now a height above the floor (planning.floor)"),
    "occupancy_max_z": ("planning.max_height", "now a height above the floor (planning.floor)"),
    "occupancy_include_predicted": ("planning.include_predicted", ""),
    "occupancy_min_confidence": ("planning.min_confidence", ""),
}
"""Old parameter name -> (its new name, what changed): still read for one release, with a warning."""


def rename_deprecated(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``values`` (top-level or dotted names) with deprecated names renamed; and a warning for each.

    The new name wins when both are given.
    """
    renamed, warnings = dict(values), []
    for old, (new, note) in DEPRECATED_PARAMETERS.items():
        if old not in renamed:
            continue
        value = renamed.pop(old)
        parts = new.split(".")
        group = renamed.get(parts[0]) if len(parts) > 1 else None
        given = new in renamed or (isinstance(group, Mapping) and parts[-1] in group)
        warnings.append(f"parameter '{old}' is deprecated; use '{new}'" + (f" ({note})" if note else "")
                        + ("; ignored because it is also given" if given else ""))
        if not given:
            renamed[new] = value
    return renamed, warnings


def read_parameter_file(path: str | Path, node: str = "ssr_mapper") -> dict[str, Any]:
    """The parameters of a ROS 2 parameter yaml (``<node>: ros__parameters: {...}``), nested.

    Also accepts ``/**: ros__parameters:`` and a plain mapping of (dotted or nested) options,
    so one file serves the node and the offline commands.
    """
    path = Path(path)
    document = _read_yaml(path)
    if not isinstance(document, dict):
        raise ConfigError(f"config '{path}' must be a mapping")
    for key in (node, f"/{node}", "/**"):
        section = document.get(key)
        if isinstance(section, dict) and "ros__parameters" in section:
            document = section["ros__parameters"] or {}
            break
    else:
        if any(isinstance(v, dict) and "ros__parameters" in v for v in document.values()):
            raise ConfigError(f"config '{path}' has no parameters for node '{node}' (found {sorted(document)})")
    if not isinstance(document, dict):
        raise ConfigError(f"config '{path}': ros__parameters must be a mapping")
    document, warnings = rename_deprecated(document)
    for warning in warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)
    return nest_dotted(document)
