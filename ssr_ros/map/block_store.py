"""The on-disk block store: map blocks moved out of memory, one file per region.

Space is cut into cubic *regions* of ``region_voxels`` voxels along each edge (a multiple of
the block size and of the seen-free block, 64 voxels = 3.2 m at the defaults). A region's file
``region_<x>_<y>_<z>.ssrblk`` holds every evicted voxel block of the region (all voxel layers,
coordinates, modification stamps) and its seen-free blocks. The file format is the map file's
family (:mod:`ssr_ros.map.map_file`): magic ``b"SSRBLKS\\0"``, a JSON header with its own
CRC-32 and per-array CRC-32s, written atomically (temporary file + rename), so a crash leaves
either the old file or the new one.

A file that fails its checks when read back raises :class:`BlockStoreError` naming it; the file
is renamed to ``*.corrupt`` (kept for inspection) and its region forgotten, so the rest of the
map, in memory and on disk, is untouched and mapping can go on.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import torch

from ssr_ros.errors import MapFileError
from ssr_ros.map.free_space import FREE_BLOCK
from ssr_ros.map.map_file import MAX_HEADER, decode_arrays, to_numpy, to_tensor, write_arrays_file
from ssr_ros.map.voxel_blocks import LAYERS

MAGIC = b"SSRBLKS\0"
FORMAT_VERSION = 1
SUFFIX = ".ssrblk"
MIN_REGION_VOXELS = 64


class BlockStoreError(MapFileError):
    """A block-store file that cannot be written or read back."""


def region_voxels(block_size: int, free_cell_voxels: int) -> int:
    """Edge of a region in voxels: a multiple of the block size and of the seen-free block edge,
    at least :data:`MIN_REGION_VOXELS`."""
    unit = math.lcm(int(block_size), FREE_BLOCK * int(free_cell_voxels))
    return unit * max(1, math.ceil(MIN_REGION_VOXELS / unit))


def regions_of(block_coords: torch.Tensor, block_voxels: int, region_edge: int) -> torch.Tensor:
    """(N, 3) int64 region of each block whose edge is ``block_voxels`` voxels."""
    return torch.div(block_coords * block_voxels, region_edge, rounding_mode="floor")


class BlockStore:
    """Region files in one directory, with an index of what is stored kept in memory."""

    def __init__(self, directory: str | Path = "", fingerprint: dict | None = None) -> None:
        """``directory``: where the files go ('' = a new temporary directory, removed by
        :meth:`close`); created when missing. ``fingerprint``: map settings written into every
        file and checked on reading (voxel size, block size, class count)."""
        self._owns_directory = not directory
        path = Path(tempfile.mkdtemp(prefix="ssr_block_store_")) if not directory else Path(directory)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BlockStoreError(f"cannot create block store directory '{path}': {error.strerror or error}") from error
        self.directory = path
        self.fingerprint = dict(fingerprint or {})
        self.regions: dict[tuple[int, int, int], int] = {}
        """Stored regions and how many voxel blocks each holds."""
        self.bytes_written = 0
        self.bytes_read = 0

    def path_of(self, region: tuple[int, int, int]) -> Path:
        return self.directory / f"region_{region[0]}_{region[1]}_{region[2]}{SUFFIX}"

    @property
    def num_blocks(self) -> int:
        """Voxel blocks on disk."""
        return sum(self.regions.values())

    def stored_regions(self) -> torch.Tensor:
        """(R, 3) int64 coordinates of the stored regions."""
        return torch.tensor(sorted(self.regions), dtype=torch.int64).reshape(-1, 3)

    # ------------------------------------------------------------------ writing
    def write(self, region: tuple[int, int, int], voxels: dict[str, torch.Tensor],
              free: dict[str, torch.Tensor] | None) -> None:
        """Store a region's blocks (adding to what is stored for it already; blocks given now
        replace stored blocks with the same coordinates). Raises BlockStoreError when the file
        cannot be written (the previous file, if any, is left as it was)."""
        if region in self.regions:
            old_voxels, old_free = self.read(region)
            voxels = _merge(old_voxels, voxels, "block_coords")
            if free is not None and old_free is not None:
                free = _merge(old_free, free, "free_block_coords")
            elif free is None:
                free = old_free
        arrays = to_numpy({name: voxels[name] for name in (*LAYERS, "block_coords", "block_stamp")})
        if free is not None:
            arrays.update(to_numpy({name: free[name] for name in ("free_block_coords", "free_hits")}))
        header = {"format": "ssr_ros block store region", "version": FORMAT_VERSION, "region": list(region),
                  "map": self.fingerprint, "num_blocks": int(arrays["block_coords"].shape[0])}
        path = self.path_of(region)
        try:
            write_arrays_file(path, MAGIC, header, arrays, "block store region")
        except MapFileError as error:
            raise BlockStoreError(str(error)) from error
        self.regions[region] = header["num_blocks"]
        self.bytes_written += sum(a.nbytes for a in arrays.values())

    # ------------------------------------------------------------------ reading
    def read(self, region: tuple[int, int, int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """The stored blocks of a region (voxel data, seen-free data or None), CPU tensors.

        Raises BlockStoreError naming the file when it is missing, foreign or corrupt; the file is
        then renamed to ``*.corrupt`` and the region dropped from the index.
        """
        path = self.path_of(region)
        try:
            voxels, free = self._read(path, region)
        except BlockStoreError:
            self._quarantine(path, region)
            raise
        self.bytes_read += sum(t.numel() * t.element_size() for t in voxels.values())
        return voxels, free

    def _read(self, path: Path, region) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        describe = f"block store file '{path}'"
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise BlockStoreError(f"cannot read {describe}: {error.strerror or error}") from error
        if len(raw) < 16 or raw[:8] != MAGIC:
            raise BlockStoreError(f"{describe} is not a block store file (bad magic {raw[:8]!r})")
        (header_len,) = struct.unpack("<I", raw[8:12])
        if header_len > MAX_HEADER or 16 + header_len > len(raw):
            raise BlockStoreError(f"{describe} is truncated or corrupt (header length {header_len})")
        header_bytes = raw[12 : 12 + header_len]
        if struct.unpack("<I", raw[12 + header_len : 16 + header_len])[0] != zlib.crc32(header_bytes):
            raise BlockStoreError(f"{describe} is corrupt: the header checksum does not match")
        try:
            header = json.loads(header_bytes.decode("utf-8"))
            if header.get("version") != FORMAT_VERSION or list(header.get("region", [])) != list(region):
                raise BlockStoreError(f"{describe} holds region {header.get('region')} version "
                                      f"{header.get('version')}; expected region {list(region)} version {FORMAT_VERSION}")
            if header.get("map") != self.fingerprint:
                raise BlockStoreError(f"{describe} was written for map {header.get('map')}, not {self.fingerprint}")
            arrays = decode_arrays(header["arrays"], memoryview(raw)[16 + header_len :], describe)
            voxels = {name: to_tensor(arrays[name]) for name in (*LAYERS, "block_coords", "block_stamp")}
            free = None
            if "free_hits" in arrays:
                free = {name: to_tensor(arrays[name]) for name in ("free_block_coords", "free_hits")}
        except BlockStoreError:
            raise
        except MapFileError as error:
            raise BlockStoreError(str(error)) from error
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
            raise BlockStoreError(f"{describe} has an invalid header: {error}") from error
        count = voxels["block_coords"].shape[0]
        if any(voxels[name].shape[0] != count for name in voxels):
            raise BlockStoreError(f"{describe} is corrupt: its arrays disagree on the number of blocks")
        return voxels, free

    def _quarantine(self, path: Path, region) -> None:
        self.regions.pop(region, None)
        try:
            path.replace(path.with_name(path.name + ".corrupt"))
        except OSError:
            pass

    def remove(self, region: tuple[int, int, int]) -> None:
        """Forget a region (after its blocks went back into memory) and delete its file."""
        self.regions.pop(region, None)
        try:
            self.path_of(region).unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise BlockStoreError(f"cannot delete '{self.path_of(region)}': {error.strerror or error}") from error

    def close(self) -> None:
        """Delete every region file (and the directory when this store created it)."""
        for region in list(self.regions):
            try:
                self.remove(region)
            except BlockStoreError:
                pass
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def _merge(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    """Rows of ``old`` whose coordinates are not in ``new``, then all of ``new``."""
    new = {name: tensor.cpu() for name, tensor in new.items()}
    old_coords, new_coords = old[key], new[key]
    if old_coords.shape[0] == 0:
        return new
    same = (old_coords[:, None, :] == new_coords[None, :, :]).all(-1).any(1) if new_coords.shape[0] else \
        torch.zeros(old_coords.shape[0], dtype=torch.bool)
    keep = ~same
    return {name: torch.cat([old[name][keep], new[name]]) for name in new}

