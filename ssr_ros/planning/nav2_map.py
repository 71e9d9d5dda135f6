"""2D grids in the Nav2 ``map_server`` file format: an 8-bit PGM image and a yaml beside it.

Written as ``nav2_map_server``'s map saver writes them (``map_io.cpp``), so ``map_server`` and
``amcl`` load them as they are:

- ``trinary`` (measured occupancy): occupied 0 (black), free 254, unknown 205, with
  ``occupied_thresh: 0.65`` and ``free_thresh: 0.196`` (with Nav2's saver default 0.25 the unknown
  grey 205, occupancy 0.196, would load as free);
- ``raw`` (the predicted cost grid): the pixel is the occupancy value 0..100, unknown 255.

The image's first row is the grid's last (highest y); ``origin`` is the lower-left cell's
minimum corner ``[x, y, yaw]`` in the grid's frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ssr_ros.atomic_file import atomic_write
from ssr_ros.errors import MapFileError
from ssr_ros.map.voxel_export import OccupancyGrid2D

FREE_THRESH = 0.196  # as ROS 1 map_saver writes it: the unknown grey (205) loads as unknown
OCCUPIED_THRESH = 0.65
MODES = ("trinary", "raw")


def grid_to_pixels(data: np.ndarray, mode: str) -> np.ndarray:
    """(H, W) int8 occupancy (rows = y) -> (H, W) uint8 image rows top-down, as map_saver writes."""
    data = np.asarray(data).astype(np.int16)
    unknown = (data < 0) | (data > 100)
    if mode == "trinary":
        pixels = np.full(data.shape, 205, dtype=np.uint8)
        pixels[~unknown & (data <= round(FREE_THRESH * 100))] = 254
        pixels[~unknown & (data >= round(OCCUPIED_THRESH * 100))] = 0
    elif mode == "raw":
        pixels = np.where(unknown, 255, data).astype(np.uint8)
    else:
        raise ValueError(f"mode {mode!r} is not supported; expected one of {MODES}")
    return pixels[::-1]


def pixels_to_grid(pixels: np.ndarray, mode: str, occupied_thresh: float = OCCUPIED_THRESH,
                   free_thresh: float = FREE_THRESH, negate: bool = False) -> np.ndarray:
    """The reverse, as map_server loads an 8-bit grey image: (H, W) uint8 -> (H, W) int8, rows = y."""
    pixels = np.asarray(pixels, dtype=np.float64)[::-1]
    shade = pixels / 255.0
    if mode == "trinary":
        occ = shade if negate else 1.0 - shade
        data = np.full(pixels.shape, -1, dtype=np.int8)
        data[occ < free_thresh] = 0
        data[occ > occupied_thresh] = 100
        return data
    if mode == "raw":
        value = np.rint(shade * 255)
        return np.where(value <= 100, value, -1).astype(np.int8)
    raise ValueError(f"mode {mode!r} is not supported; expected one of {MODES}")


def write_nav2_map(grid: OccupancyGrid2D, directory: str | Path, name: str, mode: str = "trinary") -> list[Path]:
    """Write ``<name>.pgm`` and ``<name>.yaml`` into ``directory`` atomically; returns both paths."""
    directory = Path(directory)
    pixels = grid_to_pixels(grid.data, mode)
    height, width = pixels.shape
    image = directory / f"{name}.pgm"
    with atomic_write(image, "Nav2 map image") as handle:
        handle.write(f"P5\n{width} {height}\n255\n".encode("ascii"))
        handle.write(np.ascontiguousarray(pixels).tobytes())
    meta = {
        "image": image.name, "mode": mode, "resolution": float(grid.resolution),
        "origin": [round(float(grid.origin[0]), 6), round(float(grid.origin[1]), 6), 0.0], "negate": 0,
        "occupied_thresh": OCCUPIED_THRESH, "free_thresh": FREE_THRESH,
    }
    meta_path = directory / f"{name}.yaml"
    with atomic_write(meta_path, "Nav2 map yaml") as handle:
        handle.write(yaml.safe_dump(meta, sort_keys=False).encode("utf-8"))
    return [image, meta_path]


def _read_pgm(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    tokens, position = [], 0
    while len(tokens) < 4:  # magic, width, height, maxval; comments start with '#'
        while raw[position:position + 1].isspace():
            position += 1
        if raw[position:position + 1] == b"#":
            position = raw.index(b"\n", position) + 1
            continue
        end = position
        while not raw[end:end + 1].isspace():
            end += 1
        tokens.append(raw[position:end].decode("ascii"))
        position = end
    if tokens[0] != "P5" or tokens[3] != "255":
        raise MapFileError(f"'{path}' is not an 8-bit binary PGM (header {tokens})")
    width, height = int(tokens[1]), int(tokens[2])
    data = np.frombuffer(raw, dtype=np.uint8, count=width * height, offset=position + 1)
    return data.reshape(height, width)


def read_nav2_map(yaml_path: str | Path) -> OccupancyGrid2D:
    """Load a map written by :func:`write_nav2_map` (or map_saver, 8-bit PGM) as map_server would."""
    yaml_path = Path(yaml_path)
    with open(yaml_path, encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    pixels = _read_pgm(yaml_path.parent / meta["image"])
    data = pixels_to_grid(pixels, meta.get("mode", "trinary"), meta["occupied_thresh"], meta["free_thresh"],
                          bool(meta.get("negate", 0)))
    return OccupancyGrid2D((float(meta["origin"][0]), float(meta["origin"][1])), float(meta["resolution"]), data)
