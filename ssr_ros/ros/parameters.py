"""ROS 2 parameters declared from the core's config dataclasses (one declaration per field).

A nested config becomes dotted parameter names (``map.voxel_size``); each parameter gets
the field's description, type and range (``FloatingPointRange`` / ``IntegerRange``) so
``ros2 param describe`` shows them. Values are read back into a validated dataclass; a
value out of range raises ``ConfigError`` naming the parameter. The same field metadata
renders the README's parameter tables (:func:`parameter_table`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ssr_ros.config import config_from_dict, field_specs

_PY_TYPES = (bool, int, float, str)


def _flatten_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field, Any]]:
    """(dotted name, python type, Field, default) for every leaf field of a config class."""
    hints = typing.get_type_hints(cls)
    rows = []
    instance = cls()
    for name, spec in field_specs(cls):
        hint = hints.get(name, spec.type)
        value = getattr(instance, name)
        if dataclasses.is_dataclass(hint):
            rows += _flatten_fields(hint, f"{prefix}{name}.")
        else:
            rows.append((prefix + name, hint, spec, value))
    return rows


def _descriptor(name: str, hint: Any, spec: dataclasses.Field):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    meta = spec.metadata
    description = meta.get("description", "")
    if meta.get("choices"):
        description += f" (one of: {', '.join(str(c) for c in meta['choices'])})"
    types = {
        bool: ParameterType.PARAMETER_BOOL,
        int: ParameterType.PARAMETER_INTEGER,
        float: ParameterType.PARAMETER_DOUBLE,
        str: ParameterType.PARAMETER_STRING,
    }
    list_types = {
        float: ParameterType.PARAMETER_DOUBLE_ARRAY,
        int: ParameterType.PARAMETER_INTEGER_ARRAY,
        str: ParameterType.PARAMETER_STRING_ARRAY,
    }
    if hint in types:
        kind = types[hint]
    elif typing.get_origin(hint) in (list, tuple) and typing.get_args(hint)[0] in list_types:
        kind = list_types[typing.get_args(hint)[0]]
    else:
        raise TypeError(f"config field '{name}' of type {hint} cannot be a ROS parameter")
    descriptor = ParameterDescriptor(name=name, type=kind, description=description, read_only=False)
    low, high = meta.get("low"), meta.get("high")
    if hint is float and (low is not None or high is not None):
        descriptor.floating_point_range = [
            FloatingPointRange(
                from_value=float(low if low is not None else -1e300),
                to_value=float(high if high is not None else 1e300),
                step=0.0,
            )
        ]
    elif hint is int and (low is not None or high is not None):
        descriptor.integer_range = [
            IntegerRange(
                from_value=int(low if low is not None else -(2**62)),
                to_value=int(high if high is not None else 2**62),
                step=0,
            )
        ]
    return descriptor


def declare_config(node, cls: type, prefix: str = "") -> None:
    """Declare one ROS parameter per leaf field of ``cls`` on ``node`` (defaults from the dataclass)."""
    for name, hint, spec, default in _flatten_fields(cls):
        value = list(default) if isinstance(default, tuple) else default
        node.declare_parameter(prefix + name, value, _descriptor(prefix + name, hint, spec))


def read_config(node, cls: type, prefix: str = "") -> Any:
    """The node's current parameter values as a validated ``cls`` instance (ConfigError if invalid)."""
    values: dict[str, Any] = {}
    for name, _hint, _spec, _default in _flatten_fields(cls):
        value = node.get_parameter(prefix + name).value
        target = values
        parts = name.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = list(value) if isinstance(value, (list, tuple)) else value
    return config_from_dict(cls, values, prefix=prefix)


def parameter_table(cls: type, prefix: str = "") -> str:
    """Markdown table (name, type, default, range, description) of a config class's parameters."""
    lines = ["| parameter | type | default | range | description |", "| --- | --- | --- | --- | --- |"]
    for name, hint, spec, default in _flatten_fields(cls):
        meta = spec.metadata
        if meta.get("choices"):
            allowed = ", ".join(f"`{c}`" for c in meta["choices"])
        elif meta.get("low") is not None or meta.get("high") is not None:
            allowed = f"[{meta.get('low', '')}, {meta.get('high', '')}]".replace("None", "")
        else:
            allowed = ""
        type_name = getattr(hint, "__name__", str(hint))
        shown = f"`{default!r}`" if default != "" else '`""`'
        lines.append(f"| `{prefix}{name}` | {type_name} | {shown} | {allowed} | {meta.get('description', '')} |")
    return "\n".join(lines)
