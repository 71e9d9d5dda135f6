"""``VoxelLayer``: the map's storage as one object, passed to every module that reads or writes it.

It owns the block hash (:mod:`~ssr_ros.map.block_hash`), the per-voxel block storage
(:mod:`~ssr_ros.map.voxel_blocks`), the seen-free layer (:mod:`~ssr_ros.map.free_space`, None
when ``config.free_space`` is off), the map's config and class count, and the modification
clock (``update_counter``, the stamp of every block written). Integration, chunk extraction and
write-back, meshing, raycasting, export, persistence and eviction take a ``VoxelLayer`` as an
argument and use only the public methods below; :class:`~ssr_ros.map.SemanticTSDF` is the
facade that ties them together.

Voxel ``v`` covers ``[v * s, (v + 1) * s)``; block ``b`` covers voxels ``[b * B, (b + 1) * B)``.
A voxel is *observed* when its fused weight reaches ``config.observed_min_weight`` and
*predicted* when the completion network wrote it (stored weight < 0).
"""

from __future__ import annotations

import torch

from ssr_ros.errors import InvalidInput
from ssr_ros.map.block_hash import BlockHash, box_coords, pack_block_keys, unpack_block_keys
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.free_space import FreeSpaceLayer
from ssr_ros.map.voxel_access import locate_voxels, read_voxels
from ssr_ros.map.voxel_blocks import LAYERS, VoxelBlocks

PREDICTED_WEIGHT = -1.0
"""Stored weight of a voxel written by the completion network (the sign marks 'predicted')."""


class VoxelLayer:
    """Block hash + voxel blocks + seen-free layer + config of one map, on one torch device."""

    def __init__(self, config: TSDFConfig, num_classes: int, device: str | torch.device = "cpu") -> None:
        self.config = config
        if not 1 <= int(num_classes) <= 255:
            raise InvalidInput(f"num_classes={num_classes} must be in [1, 255] (labels are stored as uint8)")
        self.num_classes = int(num_classes)
        self.device = torch.device(device)
        self.hash = BlockHash(self.device)
        self.blocks = VoxelBlocks(config.block_size, self.device)
        self.free_space: FreeSpaceLayer | None = (
            FreeSpaceLayer(config.voxel_size, config.free_space_cell_voxels, config.free_space_pixel_stride,
                           device=self.device)
            if config.free_space
            else None
        )
        self.update_counter = 0
        """Grows by one with each change of the voxels (integration, write-back, reset)."""

    # ------------------------------------------------------------------ geometry
    @property
    def voxel_size(self) -> float:
        return self.config.voxel_size

    @property
    def truncation(self) -> float:
        return self.config.truncation

    @property
    def block_size(self) -> int:
        return self.config.block_size

    @property
    def num_blocks(self) -> int:
        return self.blocks.num_blocks

    @property
    def voxels_per_block(self) -> int:
        return self.blocks.voxels_per_block

    # ------------------------------------------------------------------ voxel meaning
    def observed(self, weight_stored: torch.Tensor) -> torch.Tensor:
        """Bool mask of stored weights that count as observed (fused weight >= threshold)."""
        threshold = self.config.observed_min_weight
        if threshold <= 0:
            return weight_stored > 0
        return weight_stored >= threshold

    @staticmethod
    def predicted(weight_stored: torch.Tensor) -> torch.Tensor:
        """Bool mask of stored weights that mark a voxel written by the completion network."""
        return weight_stored < 0

    # ------------------------------------------------------------------ reading
    def locate(self, voxels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3) int64 global voxels -> (slot (N,), -1 where unallocated; local index (N,))."""
        return locate_voxels(self.hash, self.block_size, voxels)

    def read(self, voxels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Decoded values of voxels (N, 3); see :func:`~ssr_ros.map.voxel_access.read_voxels`."""
        return read_voxels(self.hash, self.blocks, voxels)

    def lookup(self, block_coords: torch.Tensor) -> torch.Tensor:
        """(N, 3) block coordinates -> (N,) slots, -1 where the block is not allocated."""
        return self.hash.lookup(block_coords)

    def used(self, name: str) -> torch.Tensor:
        """The in-use part (num_blocks, V, ...) of a voxel layer: tsdf, weight, color, sem_label, sem_count."""
        return self.blocks.used(name)

    def block_coords(self) -> torch.Tensor:
        """(num_blocks, 3) int64 block coordinates in slot order (a view; do not modify)."""
        return self.blocks.block_coords[: self.num_blocks]

    def block_stamps(self) -> torch.Tensor:
        """(num_blocks,) int64 update counter of each block's last change, in slot order (a view)."""
        return self.blocks.block_stamp[: self.num_blocks]

    def changed_blocks(self, since: int = 0) -> torch.Tensor:
        """(K, 3) int64 coordinates of the blocks modified after update counter ``since``."""
        return self.block_coords()[self.block_stamps() > since].clone()

    # ------------------------------------------------------------------ writing
    def next_stamp(self) -> int:
        """Advance the modification clock; returns the stamp of the change about to be made."""
        self.update_counter += 1
        return self.update_counter

    def allocate(self, block_coords: torch.Tensor, stamp: int) -> tuple[torch.Tensor, int]:
        """Make sure the unique blocks (N, 3) exist; returns their slots (N,) and how many are new."""
        slots, new_keys = self.hash.insert_keys(pack_block_keys(block_coords))
        if new_keys.numel():
            self.blocks.add_blocks(unpack_block_keys(new_keys), stamp)
        return slots, int(new_keys.numel())

    def block_data(self, slots: torch.Tensor) -> dict[str, torch.Tensor]:
        """Copies of everything stored for the blocks at ``slots``: each voxel layer (K, V, ...),
        ``block_coords`` (K, 3) and ``block_stamp`` (K,)."""
        data = {name: self.blocks.layers[name][slots].clone() for name in LAYERS}
        data["block_coords"] = self.blocks.block_coords[slots].clone()
        data["block_stamp"] = self.blocks.block_stamp[slots].clone()
        return data

    def insert_block_data(self, data: dict[str, torch.Tensor]) -> None:
        """Add blocks with the content of :meth:`block_data` (blocks already present are overwritten)."""
        coords = data["block_coords"].to(self.device, torch.int64)
        if coords.shape[0] == 0:
            return
        slots, _ = self.allocate(coords, 0)
        for name in LAYERS:
            self.blocks.layers[name][slots] = data[name].to(self.device)
        self.blocks.block_stamp[slots] = data["block_stamp"].to(self.device, torch.int64)

    def remove_blocks(self, remove: torch.Tensor) -> None:
        """Drop the blocks where ``remove`` (num_blocks,) bool is True; the others keep their
        content (their slots change)."""
        if not bool(remove.any()):
            return
        self.blocks.keep(~remove)
        self.hash.rebuild(self.block_coords())

    def clear(self) -> None:
        """Forget every voxel and every seen-free cell."""
        self.hash.clear()
        self.blocks.clear()
        if self.free_space is not None:
            self.free_space.reset()

    def snapshot(self, block_coords: torch.Tensor | None = None) -> "VoxelLayer":
        """A copy of the voxel blocks and hash (not the seen-free layer) for reading while the map
        goes on changing: the voxel outputs and meshes are computed from one outside the map's lock.

        block_coords: (K, 3) the blocks to copy (those not allocated are left out); None = all.
        """
        out = VoxelLayer.__new__(VoxelLayer)
        out.config, out.num_classes, out.device = self.config, self.num_classes, self.device
        out.free_space = None
        out.update_counter = self.update_counter
        out.hash = BlockHash(self.device)
        if block_coords is None:
            out.hash.load_state({name: tensor.clone() for name, tensor in self.hash.state().items()})
            out.blocks = self.blocks.copy()
            return out
        slots = self.lookup(block_coords.to(self.device, torch.int64).reshape(-1, 3))
        out.blocks = self.blocks.copy(torch.unique(slots[slots >= 0]))
        out.hash.rebuild(out.block_coords())
        return out

    def box_snapshot(self, origin_voxel, size) -> "VoxelLayer":
        """A copy of the blocks and seen-free cells covering the box of ``size = (X, Y, Z)`` voxels
        at ``origin_voxel``: reading any voxel of the box from it (``read``, ``observed``, the
        seen-free ``query``) gives what this layer gives at the moment of the copy. Completion
        extracts its chunks from one outside the map's lock."""
        origin = torch.as_tensor(origin_voxel, dtype=torch.int64, device=self.device).reshape(-1)
        if origin.numel() != 3 or len(tuple(size)) != 3 or min(int(n) for n in size) <= 0:
            raise InvalidInput(f"box_snapshot needs a 3-entry origin and 3 positive sizes, got {origin.tolist()} and {size}")
        last = origin + torch.as_tensor([int(n) for n in size], dtype=torch.int64, device=self.device) - 1
        B = self.block_size
        out = self.snapshot(box_coords(torch.div(origin, B, rounding_mode="floor"),
                                       torch.div(last, B, rounding_mode="floor")))
        if out.num_blocks == 0:  # an empty copy has no storage to read from: an empty layer reads the same
            out = VoxelLayer(self.config, self.num_classes, self.device)
            out.update_counter = self.update_counter
        out.free_space = self.free_space.region_copy(origin, last) if self.free_space is not None else None
        return out

    # ------------------------------------------------------------------ sizes
    def voxel_bytes(self) -> int:
        """Bytes of the allocated blocks (voxel payload + block bookkeeping)."""
        return self.blocks.used_bytes()

    def free_space_bytes(self) -> int:
        return self.free_space.memory_bytes() if self.free_space is not None else 0

    def memory_bytes(self) -> int:
        """Bytes of everything this layer holds in memory: voxel blocks and the seen-free layer."""
        return self.voxel_bytes() + self.free_space_bytes()


def as_layer(storage) -> VoxelLayer:
    """The :class:`VoxelLayer` of a map: ``storage`` itself, or the ``layer`` of a
    :class:`~ssr_ros.map.SemanticTSDF` (so export functions take either)."""
    if isinstance(storage, VoxelLayer):
        return storage
    layer = getattr(storage, "layer", None)
    if not isinstance(layer, VoxelLayer):
        raise InvalidInput(f"expected a map or its VoxelLayer, got {type(storage).__name__}")
    return layer
