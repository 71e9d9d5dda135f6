"""The object list: what ``ssr refine-objects`` writes beside the map, and what the ROS layer
publishes (``ssr_ros/ObjectList``). One :class:`ObjectRecord` per instance, in the map frame
(z up), metres and radians."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ssr_ros.atomic_file import atomic_write
from ssr_ros.errors import MapFileError

FORMAT = "ssr_ros.objects"
VERSION = 1


@dataclass
class ObjectRecord:
    """One object instance of the map.

    center: (x, y, z) of its box centre; yaw: heading of its front (+y of the object frame) about z,
    radians (0 when not refined: the box is then the axis-aligned bounds); extents: (width, depth,
    height) of its box along the object's axes (a refined object's box reaches from the lowest point
    of its completed shape, legs thinner than a cell of its grid included, to its top); confidence in [0, 1];
    refined: the shape prior completed and aligned it; fit: share of its observed surface voxels
    within one voxel of the completed surface; voxels / observed_voxels: surface voxels found (all /
    observed); written_voxels: predicted voxels the refinement wrote.
    """

    instance_id: int
    class_id: int
    class_name: str
    center: tuple[float, float, float]
    yaw: float
    extents: tuple[float, float, float]
    confidence: float
    refined: bool = False
    fit: float = 0.0
    voxels: int = 0
    observed_voxels: int = 0
    written_voxels: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["center"] = [round(float(v), 4) for v in self.center]
        d["extents"] = [round(float(v), 4) for v in self.extents]
        for key in ("yaw", "confidence", "fit"):
            d[key] = round(float(d[key]), 4)
        return d


def save_object_list(objects: list[ObjectRecord], path: str | Path, frame_id: str = "map", extra: dict | None = None) -> Path:
    """Write the list as JSON (atomic)."""
    document = {"format": FORMAT, "version": VERSION, "frame_id": frame_id, **(extra or {}),
                "objects": [o.to_dict() for o in objects]}
    with atomic_write(path, "object list") as handle:
        handle.write(json.dumps(document, indent=1).encode("utf-8"))
    return Path(path)


def load_object_list(path: str | Path) -> list[ObjectRecord]:
    """Read a list written by :func:`save_object_list`; MapFileError when it is not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MapFileError(f"cannot read object list '{path}': {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != VERSION:
        raise MapFileError(f"'{path}' is not an object list (format {FORMAT!r} version {VERSION} expected)")
    try:
        return [ObjectRecord(**{**o, "center": tuple(o["center"]), "extents": tuple(o["extents"])}) for o in document["objects"]]
    except (KeyError, TypeError) as error:
        raise MapFileError(f"object list '{path}' has a malformed entry: {error}") from error
