"""The map file: a versioned, checksummed binary dump of a ``SemanticTSDF``.

Layout: the 8-byte magic ``b"SSRTSDF\\0"``, a little-endian uint32 header length, a JSON
header (format version, config, class count, counters and, per array, name / dtype / shape /
byte offset / CRC-32), (version 3) the little-endian uint32 CRC-32 of the header bytes, then
the raw arrays: the voxel layers, block coordinates and stamps, the block hash and (version 2
on, when the map keeps one) the seen-free layer's ``free_block_coords`` and ``free_hits``.

Every byte that decides what a map means is checked: the header (voxel size, class count, ...)
by its checksum, each array by its own. Version 2 files (no header checksum) and version 1
files (no seen-free layer; it loads empty) still load. Writes go to a temporary file in the
target directory that is renamed over the target, so readers never see a half-written map.

:func:`read_map` is the one way to open a saved map for use (the node's load_map, ``ssr
render``, the demo): it takes a file or the directory holding ``map.ssrmap`` and checks the
class count against the taxonomy that will read the labels.
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
from ssr_ros.map.voxel_blocks import LAYERS
from ssr_ros.map.voxel_layer import as_layer

MAGIC = b"SSRTSDF\0"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
"""Version 1 predates the seen-free layer (its maps load with that layer empty), versions 1
and 2 the header checksum."""
CHECKSUMMED_HEADER_SINCE = 3
MAX_HEADER = 1 << 20
MAP_FILE = "map.ssrmap"
"""Name of the map file in a saved map directory."""


def _arrays(storage) -> dict[str, np.ndarray]:
    """The arrays of a map file, blocks in ascending key order (so a map's file does not depend
    on the order its blocks were allocated, evicted or reloaded in)."""
    layer = as_layer(storage)
    order = layer.hash.sorted_slots
    arrays = {name: layer.used(name)[order] for name in LAYERS}
    arrays["block_coords"] = layer.block_coords()[order]
    arrays["block_stamp"] = layer.block_stamps()[order]
    arrays["sorted_keys"] = layer.hash.sorted_keys
    arrays["sorted_slots"] = torch.arange(order.numel(), dtype=torch.int64, device=order.device)
    if layer.free_space is not None:
        arrays.update(layer.free_space.state())
    return to_numpy(arrays)


def to_numpy(arrays: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors as contiguous NumPy arrays on the CPU (float16 kept bit-exact)."""
    out = {}
    for name, tensor in arrays.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype == torch.float16:
            out[name] = tensor.view(torch.int16).numpy().view(np.float16)
        else:
            out[name] = tensor.numpy()
    return out


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """A writable CPU tensor copy of an array read from a file (float16 bit-exact)."""
    if array.dtype == np.float16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.float16)
    return torch.from_numpy(array.copy())


def write_arrays_file(path: Path, magic: bytes, header: dict, arrays: dict[str, np.ndarray], what: str) -> None:
    """Write magic, header length, JSON header (with an ``arrays`` table of name / dtype / shape /
    offset / CRC-32), the header's CRC-32, then the raw arrays, atomically."""
    entries, offset = [], 0
    for name, array in arrays.items():
        nbytes = array.nbytes
        entries.append({
            "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
            "offset": offset, "nbytes": nbytes, "crc32": zlib.crc32(array.tobytes()),
        })
        offset += nbytes
    header_bytes = json.dumps({**header, "arrays": entries}).encode("utf-8")
    with atomic_write(path, what) as handle:
        handle.write(magic)
        handle.write(struct.pack("<I", len(header_bytes)))
        handle.write(header_bytes)
        handle.write(struct.pack("<I", zlib.crc32(header_bytes)))
        for array in arrays.values():
            handle.write(array.tobytes())


def decode_arrays(entries, body: memoryview, describe: str) -> dict[str, np.ndarray]:
    """Arrays of a file body from its header table; MapFileError when one is incomplete or corrupt."""
    arrays = {}
    for entry in entries:
        start, nbytes = int(entry["offset"]), int(entry["nbytes"])
        if start + nbytes > len(body):
            raise MapFileError(f"{describe} is truncated: array {entry['name']!r} is incomplete")
        data = body[start : start + nbytes]
        if zlib.crc32(data) != entry["crc32"]:
            raise MapFileError(f"{describe} is corrupt: checksum of array {entry['name']!r} does not match")
        arrays[entry["name"]] = np.frombuffer(data, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])
    return arrays


def map_state(tsdf_map) -> tuple[dict, dict[str, np.ndarray]]:
    """``(header, arrays)``: everything a map file holds of ``tsdf_map``, evicted blocks included
    (read back from the block store into a temporary copy)."""
    layer = tsdf_map.complete_layer() if hasattr(tsdf_map, "complete_layer") else as_layer(tsdf_map)
    arrays = _arrays(layer)
    if getattr(tsdf_map, "instances", None) is not None:
        arrays.update(tsdf_map.instances.state())
    header = {
        "format": "ssr_ros semantic TSDF",
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(tsdf_map.config),
        "num_classes": tsdf_map.num_classes,
        "num_blocks": layer.num_blocks,
        "update_counter": tsdf_map.update_counter,
        "frames_integrated": tsdf_map.frames_integrated,
    }
    return header, arrays


def save_map(tsdf_map, path: str | Path) -> None:
    """Write ``tsdf_map`` to ``path`` atomically; raises MapFileError on I/O failure.

    A map with blocks evicted to its block store is saved whole: the stored blocks are read
    back (into a temporary copy, for the time of the write) and saved with the resident ones.
    """
    header, arrays = map_state(tsdf_map)
    write_arrays_file(Path(path), MAGIC, header, arrays, "map")


def load_map(cls, path: str | Path, device, backend: str | None = None, overrides: dict | None = None):
    """Read a map file; raises MapFileError for missing, foreign, truncated or corrupt files.

    ``overrides``: config values that replace the file's (settings of the run, not of the
    map's content: ``memory_budget_mb``, ``clear_radius_m``, ``block_store_dir``).
    """
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
    header_bytes = raw[12 : 12 + header_len]
    stored_crc = raw[12 + header_len : 16 + header_len]
    header_crc_matches = len(stored_crc) == 4 and struct.unpack("<I", stored_crc)[0] == zlib.crc32(header_bytes)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MapFileError(f"map '{path}' has a corrupt header: {error}") from error
    version = header.get("version") if isinstance(header, dict) else None
    if version not in READABLE_VERSIONS:
        raise MapFileError(
            f"map '{path}' has format version {version!r}; this ssr_ros reads versions {list(READABLE_VERSIONS)}"
        )
    checksummed = version >= CHECKSUMMED_HEADER_SINCE
    if checksummed and not header_crc_matches:
        raise MapFileError(f"map '{path}' is corrupt: the header checksum does not match (voxel size, class count "
                           "or another header value was changed)")
    if not checksummed and header_crc_matches:
        raise MapFileError(f"map '{path}' is corrupt: its header is checksummed but claims format version {version}")
    try:
        body = memoryview(raw)[12 + header_len + (4 if checksummed else 0) :]
        arrays = decode_arrays(header["arrays"], body, f"map '{path}'")
    except MapFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise MapFileError(f"map '{path}' has an invalid header: {error}") from error
    return map_from_state(cls, header, arrays, device, backend, overrides, f"map '{path}'")


def map_from_state(cls, header: dict, arrays: dict[str, np.ndarray], device, backend: str | None = None,
                   overrides: dict | None = None, describe: str = "map"):
    """A new ``cls`` map from :func:`map_state`'s ``(header, arrays)``; MapFileError when they
    do not fit together. ``describe`` names the source in errors."""
    try:
        config_values = dict(header["config"])
        if backend is not None:
            config_values["backend"] = backend
        config_values.update(overrides or {})
        config = config_from_dict(TSDFConfig, config_values)
        tsdf_map = cls(config, int(header["num_classes"]), device)
        n = int(header["num_blocks"])
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise MapFileError(f"{describe} has an invalid header: {error}") from error

    def tensor(name: str) -> torch.Tensor:
        return to_tensor(arrays[name])

    layer = tsdf_map.layer
    blocks = layer.blocks
    try:
        if n:
            blocks.add_blocks(tensor("block_coords").to(device), 0)
            for name in LAYERS:
                blocks.layers[name][:n] = tensor(name).to(device)
            blocks.block_stamp[:n] = tensor("block_stamp").to(device)
        layer.hash.load_state({"sorted_keys": tensor("sorted_keys"), "sorted_slots": tensor("sorted_slots")})
        if layer.free_space is not None and "free_hits" in arrays:
            layer.free_space.load_state(
                {"free_block_coords": tensor("free_block_coords"), "free_hits": tensor("free_hits")}
            )
        if "instance_keys" in arrays:
            from ssr_ros.map.instance_evidence import InstanceEvidence

            tsdf_map.instances = InstanceEvidence(tsdf_map.voxel_size)
            tsdf_map.instances.load_state(arrays)
    except (KeyError, RuntimeError, ValueError, InvalidInput) as error:
        raise MapFileError(f"{describe} arrays do not match its header: {error}") from error
    if len(layer.hash) != n:
        raise MapFileError(f"{describe} is corrupt: {len(layer.hash)} hash entries for {n} blocks")
    tsdf_map.update_counter = int(header["update_counter"])
    tsdf_map.frames_integrated = int(header["frames_integrated"])
    return tsdf_map
