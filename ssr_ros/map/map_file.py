"""The map file: a versioned, checksummed binary dump of a ``SemanticTSDF``.

Layout: the 8-byte magic ``b"SSRTSDF\\0"``, a little-endian uint32 header length, a JSON
header (format version, config, class count, counters and, per array, name / dtype / shape /
byte offset / CRC-32), then the raw arrays: the voxel layers, block coordinates and stamps,
the block hash and (version 2, when the map keeps one) the seen-free layer's
``free_block_coords`` and ``free_hits``. Version 1 files (no seen-free layer) still load, with
an empty seen-free layer. Writes go to a temporary file in the target
directory that is renamed over the target, so readers never see a half-written map.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, InvalidInput, MapFileError
from ssr_ros.map.config import TSDFConfig

MAGIC = b"SSRTSDF\0"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 predates the seen-free layer; its maps load with that layer empty."""
MAX_HEADER = 1 << 20


def _arrays(tsdf_map) -> dict[str, np.ndarray]:
    n = tsdf_map.num_blocks
    arrays = {name: tsdf_map.blocks.layers[name][:n] for name in tsdf_map.blocks.layers}
    arrays["block_coords"] = tsdf_map.blocks.block_coords[:n]
    arrays["block_stamp"] = tsdf_map.blocks.block_stamp[:n]
    arrays["sorted_keys"] = tsdf_map.hash.sorted_keys
    arrays["sorted_slots"] = tsdf_map.hash.sorted_slots
    if tsdf_map.free_space is not None:
        arrays.update(tsdf_map.free_space.state())
    out = {}
    for name, tensor in arrays.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype == torch.float16:
            out[name] = tensor.view(torch.int16).numpy().view(np.float16)
        else:
            out[name] = tensor.numpy()
    return out


def save_map(tsdf_map, path: str | Path) -> None:
    """Write ``tsdf_map`` to ``path`` atomically; raises MapFileError on I/O failure."""
    path = Path(path)
    arrays = _arrays(tsdf_map)
    entries, offset = [], 0
    for name, array in arrays.items():
        data = array.tobytes()
        entries.append({
            "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
            "offset": offset, "nbytes": len(data), "crc32": zlib.crc32(data),
        })
        offset += len(data)
    header = json.dumps({
        "format": "ssr_ros semantic TSDF",
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(tsdf_map.config),
        "num_classes": tsdf_map.num_classes,
        "num_blocks": tsdf_map.num_blocks,
        "update_counter": tsdf_map.update_counter,
        "frames_integrated": tsdf_map.frames_integrated,
        "arrays": entries,
    }).encode("utf-8")
    with atomic_write(path, "map") as handle:
        handle.write(MAGIC)
        handle.write(struct.pack("<I", len(header)))
        handle.write(header)
        for array in arrays.values():
            handle.write(array.tobytes())


def load_map(cls, path: str | Path, device, backend: str | None = None):
    """Read a map file; raises MapFileError for missing, foreign, truncated or corrupt files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MapFileError(f"cannot read map '{path}': {error.strerror or error}") from error
    if len(raw) < 12 or raw[:8] != MAGIC:
        raise MapFileError(f"'{path}' is not an ssr_ros map file (bad magic {raw[:8]!r}; expected {MAGIC!r})")
    (header_len,) = struct.unpack("<I", raw[8:12])
    if header_len > MAX_HEADER or 12 + header_len > len(raw):
        raise MapFileError(f"map '{path}' is truncated or corrupt (header length {header_len})")
    try:
        header = json.loads(raw[12 : 12 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MapFileError(f"map '{path}' has a corrupt header: {error}") from error
    if not isinstance(header, dict) or header.get("version") not in READABLE_VERSIONS:
        raise MapFileError(
            f"map '{path}' has format version {header.get('version') if isinstance(header, dict) else None!r}; "
            f"this ssr_ros reads versions {list(READABLE_VERSIONS)}"
        )
    try:
        config_values = dict(header["config"])
        if backend is not None:
            config_values["backend"] = backend
        config = config_from_dict(TSDFConfig, config_values)
        body = memoryview(raw)[12 + header_len :]
        arrays = {}
        for entry in header["arrays"]:
            start, nbytes = int(entry["offset"]), int(entry["nbytes"])
            if start + nbytes > len(body):
                raise MapFileError(f"map '{path}' is truncated: array {entry['name']!r} is incomplete")
            data = body[start : start + nbytes]
            if zlib.crc32(data) != entry["crc32"]:
                raise MapFileError(f"map '{path}' is corrupt: checksum of array {entry['name']!r} does not match")
            arrays[entry["name"]] = np.frombuffer(data, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])
        tsdf_map = cls(config, int(header["num_classes"]), device)
        n = int(header["num_blocks"])
    except MapFileError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise MapFileError(f"map '{path}' has an invalid header: {error}") from error

    def tensor(name: str) -> torch.Tensor:
        array = arrays[name]
        if array.dtype == np.float16:
            return torch.from_numpy(array.view(np.int16).copy()).view(torch.float16)
        return torch.from_numpy(array.copy())

    blocks = tsdf_map.blocks
    try:
        if n:
            blocks.add_blocks(tensor("block_coords").to(device), 0)
            for name in blocks.layers:
                blocks.layers[name][:n] = tensor(name).to(device)
            blocks.block_stamp[:n] = tensor("block_stamp").to(device)
        tsdf_map.hash.load_state({"sorted_keys": tensor("sorted_keys"), "sorted_slots": tensor("sorted_slots")})
        if tsdf_map.free_space is not None and "free_hits" in arrays:
            tsdf_map.free_space.load_state(
                {"free_block_coords": tensor("free_block_coords"), "free_hits": tensor("free_hits")}
            )
    except (KeyError, RuntimeError, InvalidInput) as error:
        raise MapFileError(f"map '{path}' arrays do not match its header: {error}") from error
    if len(tsdf_map.hash) != n:
        raise MapFileError(f"map '{path}' is corrupt: {len(tsdf_map.hash)} hash entries for {n} blocks")
    tsdf_map.update_counter = int(header["update_counter"])
    tsdf_map.frames_integrated = int(header["frames_integrated"])
    return tsdf_map
