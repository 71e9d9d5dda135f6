"""Per-voxel storage of the map: dense tensors indexed by block slot, 15 bytes per voxel.

Layout (structure of arrays, slot-major, ``V = block_size**3`` voxels per block, voxel
``(i, j, k)`` of a block at local index ``n = i + B * (j + B * k)``, x fastest):

============  ===================  =======  ==================================================
tensor        shape / dtype        bytes    meaning
============  ===================  =======  ==================================================
tsdf          (S, V) float16       2        signed distance / truncation, in [-1, 1]; 1 = unknown
weight        (S, V) float16       2        fused weight >= 0; a negative value marks a voxel
                                            written by the completion network (predicted)
color         (S, V, 3) uint8      3        fused RGB
sem_label     (S, V, 2) uint8      2        the two strongest class ids (top-2 heavy hitters)
sem_count     (S, V, 3) float16    6        evidence of those two classes and total evidence
============  ===================  =======  ==================================================

15 bytes per voxel, plus per block: its coordinates (3 x int64), a modification stamp (int64)
and the hash entry (2 x int64), i.e. 48 bytes per block = 0.09 byte per voxel at B = 8.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

LAYERS = {
    # name: (trailing shape, dtype, initial value)
    "tsdf": ((), torch.float16, 1.0),
    "weight": ((), torch.float16, 0.0),
    "color": ((3,), torch.uint8, 0),
    "sem_label": ((2,), torch.uint8, 0),
    "sem_count": ((3,), torch.float16, 0.0),
}
PER_BLOCK_BYTES = 3 * 8 + 8 + 2 * 8
"""Block coordinates, modification stamp and the two int64 hash entries."""


@contextmanager
def cpu_threads(device: torch.device, count: int):
    """Run the enclosed CPU tensor ops (and the native kernels) on ``count`` threads (0 = as set)."""
    threads = torch.get_num_threads() if device.type == "cpu" else count
    if count <= 0 or threads == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def one_thread(device: torch.device):
    """Run the enclosed CPU tensor ops on one thread.

    Filling and copying the layers is memory-bound, and the seen-free layer's ops are many and
    small, so more threads gain little, while every OpenMP parallel region waits for all its
    workers: on a small or busy CPU (a node whose other threads publish, a shared machine) a
    worker that is not scheduled makes a 0.3 ms operation take tens of milliseconds, and the
    workers left spinning afterwards take a core from what follows.
    """
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class VoxelBlocks:
    """Growable slot-major voxel storage; ``num_blocks`` slots are in use."""

    def __init__(self, block_size: int, device: torch.device | str, capacity: int = 256) -> None:
        self.block_size = block_size
        self.voxels_per_block = block_size**3
        self.device = torch.device(device)
        self.num_blocks = 0
        self.capacity_limit = 0
        """Blocks that spare capacity may reach (0: no limit; growth doubles). A memory budget sets
        it to the blocks the budget holds, so the tensors' reserved bytes follow the budget, not
        twice the high-water mark of the blocks in use."""
        self.layers: dict[str, torch.Tensor] = {}
        self.block_coords = torch.empty(0, 3, dtype=torch.int64, device=self.device)
        self.block_stamp = torch.empty(0, dtype=torch.int64, device=self.device)
        self._allocate(capacity)

    def _new_layer(self, name: str, capacity: int) -> torch.Tensor:
        trailing, dtype, initial = LAYERS[name]
        return torch.full(
            (capacity, self.voxels_per_block) + trailing, initial, dtype=dtype, device=self.device
        )

    def _allocate(self, capacity: int) -> None:
        with one_thread(self.device):
            for name in LAYERS:
                self.layers[name] = self._new_layer(name, capacity)
        self.block_coords = torch.zeros(capacity, 3, dtype=torch.int64, device=self.device)
        self.block_stamp = torch.zeros(capacity, dtype=torch.int64, device=self.device)

    @property
    def capacity(self) -> int:
        return int(self.block_stamp.numel())

    def __getattr__(self, name: str) -> torch.Tensor:
        layers = self.__dict__.get("layers", {})
        if name in layers:
            return layers[name]
        raise AttributeError(name)

    def add_blocks(self, coords: torch.Tensor, stamp: int) -> None:
        """Append blocks (K, 3) at slots ``num_blocks .. num_blocks + K - 1`` (fresh voxels)."""
        count = int(coords.shape[0])
        if count == 0:
            return
        needed = self.num_blocks + count
        if needed > self.capacity:
            capacity = self.grown_capacity(needed)
            with one_thread(self.device):
                for name in LAYERS:
                    grown = self._new_layer(name, capacity)
                    grown[: self.num_blocks] = self.layers[name][: self.num_blocks]
                    self.layers[name] = grown
            coords_grown = torch.zeros(capacity, 3, dtype=torch.int64, device=self.device)
            coords_grown[: self.num_blocks] = self.block_coords[: self.num_blocks]
            stamp_grown = torch.zeros(capacity, dtype=torch.int64, device=self.device)
            stamp_grown[: self.num_blocks] = self.block_stamp[: self.num_blocks]
            self.block_coords, self.block_stamp = coords_grown, stamp_grown
        self.block_coords[self.num_blocks : needed] = coords.to(self.device, torch.int64)
        self.block_stamp[self.num_blocks : needed] = stamp
        self.num_blocks = needed

    def grown_capacity(self, needed: int) -> int:
        """Slots to allocate when ``needed`` exceed the capacity: double, but with a
        :attr:`capacity_limit` no more than the limit, or, past it (a frame's blocks on top of a full
        budget, before eviction), ``needed`` plus a sixteenth of the limit so that the next frames
        do not each copy the whole map again."""
        doubled = max(needed, 2 * self.capacity)
        if not self.capacity_limit:
            return doubled
        if needed <= self.capacity_limit:
            return min(doubled, self.capacity_limit)
        return needed + max(self.capacity_limit // 16, 1)

    def copy(self, slots: torch.Tensor | None = None) -> "VoxelBlocks":
        """A copy of the in-use blocks, or of those at ``slots`` (K,) in that order at slots 0..K-1
        (no spare capacity)."""
        out = VoxelBlocks.__new__(VoxelBlocks)
        out.block_size, out.voxels_per_block, out.device = self.block_size, self.voxels_per_block, self.device
        with one_thread(self.device):
            if slots is None:
                n = self.num_blocks
                out.layers = {name: tensor[:n].clone() for name, tensor in self.layers.items()}
                out.block_coords = self.block_coords[:n].clone()
                out.block_stamp = self.block_stamp[:n].clone()
            else:
                slots = slots.to(self.device, torch.int64)
                n = int(slots.numel())
                out.layers = {name: tensor.index_select(0, slots) for name, tensor in self.layers.items()}
                out.block_coords = self.block_coords.index_select(0, slots)
                out.block_stamp = self.block_stamp.index_select(0, slots)
        out.num_blocks = n
        return out

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the in-use blocks where ``mask`` (num_blocks,) is True, packed to the front in
        their current order (the rest of the slots return to their initial values)."""
        kept = torch.nonzero(mask.to(self.device)).squeeze(1)
        count = int(kept.numel())
        if count == self.num_blocks:
            return
        with one_thread(self.device):
            for name, (_, _, initial) in LAYERS.items():
                layer = self.layers[name]
                layer[:count] = layer[kept]
                layer[count : self.num_blocks] = initial
        self.block_coords[:count] = self.block_coords[kept]
        self.block_stamp[:count] = self.block_stamp[kept]
        self.num_blocks = count

    def truncate(self, num_blocks: int) -> None:
        """Drop the blocks at slots >= num_blocks, resetting their voxels (used for rollback)."""
        for name, (_, _, initial) in LAYERS.items():
            self.layers[name][num_blocks : self.num_blocks] = initial
        self.num_blocks = num_blocks

    def clear(self) -> None:
        self.truncate(0)

    @staticmethod
    def bytes_per_voxel_payload() -> int:
        total = 0
        for trailing, dtype, _ in LAYERS.values():
            count = 1
            for n in trailing:
                count *= n
            total += count * torch.tensor([], dtype=dtype).element_size()
        return total

    def bytes_per_block(self) -> int:
        """Bytes one allocated block holds: its voxels' payload plus the per-block bookkeeping."""
        return self.voxels_per_block * self.bytes_per_voxel_payload() + PER_BLOCK_BYTES

    def used_bytes(self) -> int:
        """Bytes held by the allocated blocks (voxel payload + per-block bookkeeping)."""
        return self.num_blocks * self.bytes_per_block()

    def reserved_bytes(self) -> int:
        """Bytes of the tensors including spare capacity."""
        total = sum(t.numel() * t.element_size() for t in self.layers.values())
        return total + self.capacity * PER_BLOCK_BYTES

    def used(self, name: str) -> torch.Tensor:
        """The in-use part (num_blocks, V, ...) of a layer."""
        return self.layers[name][: self.num_blocks]
