"""Class taxonomy: ids, names and display colors, loaded from ``config/classes/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ssr_ros.errors import ConfigError
from ssr_ros.package_files import SOURCE_ROOT, find_package_file

CONFIG_DIR = SOURCE_ROOT / "config"
"""The ``config/`` directory of a source checkout (see ``config_path`` for installs)."""

UNKNOWN_ID = 0
"""Reserved class id: unlabeled, never observed, or free space. Ignored by metrics."""


def config_path(relative: str) -> Path:
    """Locate a file under the package's ``config/`` directory.

    Looks in the source checkout first, then in the ROS share directory
    (``share/ssr_ros/config``) of an installed package.
    """
    found = find_package_file("config", relative)
    if found is not None:
        return found
    raise ConfigError(f"config file '{relative}' not found under {CONFIG_DIR} or share/ssr_ros/config")


@dataclass(frozen=True)
class SemanticClass:
    """One class: integer id, name, 8-bit RGB display color."""

    id: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class ClassTaxonomy:
    """An ordered set of classes with contiguous ids 0..N-1 (0 = unknown)."""

    name: str
    classes: tuple[SemanticClass, ...]

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if ids != list(range(len(ids))):
            raise ConfigError(f"taxonomy '{self.name}' ids must be 0..N-1 in order, got {ids}")
        if not ids or self.classes[0].name != "unknown":
            raise ConfigError(f"taxonomy '{self.name}' must start with id 0 named 'unknown'")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ConfigError(f"taxonomy '{self.name}' has duplicate class names: {names}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ClassTaxonomy":
        """Load a taxonomy yaml (``name``, ``classes: [{id, name, color: [r, g, b]}]``).

        ``None`` loads the default ScanNet-20 taxonomy.
        """
        path = Path(path) if path is not None else config_path("classes/scannet20.yaml")
        try:
            document = yaml.safe_load(path.read_text())
        except OSError as error:
            raise ConfigError(f"cannot read class taxonomy '{path}': {error.strerror}") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"class taxonomy '{path}' is not valid YAML: {error}") from error
        if not isinstance(document, dict) or not isinstance(document.get("classes"), list):
            raise ConfigError(f"class taxonomy '{path}' must be a mapping with a 'classes' list")
        classes = []
        for index, entry in enumerate(document["classes"]):
            try:
                color = tuple(int(c) for c in entry["color"])
                if len(color) != 3 or not all(0 <= c <= 255 for c in color):
                    raise ValueError(f"color {entry['color']} is not three values in 0..255")
                classes.append(SemanticClass(int(entry["id"]), str(entry["name"]), color))
            except (KeyError, TypeError, ValueError) as error:
                raise ConfigError(
                    f"class taxonomy '{path}' entry {index} ({entry!r}) is invalid: {error}; "
                    "expected {id: int, name: str, color: [r, g, b]}"
                ) from error
        return cls(str(document.get("name", path.stem)), tuple(classes))

    @property
    def num_classes(self) -> int:
        """Number of classes including id 0 (unknown)."""
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> np.ndarray:
        """(N, 3) uint8 palette indexed by class id."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    def id_of(self, name: str) -> int:
        """Class id of ``name``; raises ConfigError listing the known names otherwise."""
        for c in self.classes:
            if c.name == name:
                return c.id
        raise ConfigError(f"unknown class '{name}'; taxonomy '{self.name}' has {self.names}")

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """(..., 3) uint8 display colors of an integer label array; out-of-range ids -> black."""
        labels = np.asarray(labels)
        palette = self.colors
        inside = (labels >= 0) & (labels < len(palette))
        out = np.zeros(labels.shape + (3,), dtype=np.uint8)
        out[inside] = palette[labels[inside]]
        return out
