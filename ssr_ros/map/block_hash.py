"""Block hash: integer block coordinates -> storage slots, on any torch device.

Block coordinates ``(x, y, z)`` are packed into one int64 key (21 bits per axis, offset so
that coordinates in ``[-2^20, 2^20)`` are representable) and kept sorted; a lookup is one
``torch.searchsorted`` and an insert one merge-sort of the new keys into the table. Slots are
handed out in insertion order and never move, so per-block storage is a plain dense tensor.
"""

from __future__ import annotations

import torch

from ssr_ros.errors import InvalidInput

COORD_BITS = 21
COORD_OFFSET = 1 << (COORD_BITS - 1)
COORD_MASK = (1 << COORD_BITS) - 1
COORD_MIN = -COORD_OFFSET
COORD_MAX = COORD_OFFSET - 1


def pack_block_keys(coords: torch.Tensor) -> torch.Tensor:
    """(N, 3) int block coordinates -> (N,) int64 keys; key order is lexicographic (x, y, z)."""
    c = coords.to(torch.int64) + COORD_OFFSET
    return (c[:, 0] << (2 * COORD_BITS)) | (c[:, 1] << COORD_BITS) | c[:, 2]


def unpack_block_keys(keys: torch.Tensor) -> torch.Tensor:
    """(N,) int64 keys -> (N, 3) int64 block coordinates."""
    x = (keys >> (2 * COORD_BITS)) & COORD_MASK
    y = (keys >> COORD_BITS) & COORD_MASK
    z = keys & COORD_MASK
    return torch.stack([x, y, z], dim=1) - COORD_OFFSET


def check_coord_range(coords: torch.Tensor) -> None:
    """Raise InvalidInput when block coordinates fall outside the representable range."""
    if coords.numel() and (int(coords.min()) < COORD_MIN or int(coords.max()) > COORD_MAX):
        raise InvalidInput(
            f"block coordinates span [{int(coords.min())}, {int(coords.max())}], outside the "
            f"representable range [{COORD_MIN}, {COORD_MAX}] (pose too far from the origin?)"
        )


def box_coords(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(N, 3) int64: every block coordinate of the box ``lo..hi`` (inclusive, (3,) int64), x slowest."""
    axes = [torch.arange(int(a), int(b) + 1, device=lo.device) for a, b in zip(lo.tolist(), hi.tolist())]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


class BlockHash:
    """Sorted-key hash from block coordinates to dense slots ``0..num_blocks-1``."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.sorted_keys = torch.empty(0, dtype=torch.int64, device=self.device)
        self.sorted_slots = torch.empty(0, dtype=torch.int64, device=self.device)

    def __len__(self) -> int:
        return int(self.sorted_keys.numel())

    def lookup_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """(N,) int64 keys -> (N,) int64 slots, -1 where the block is not allocated."""
        if len(self) == 0 or keys.numel() == 0:
            return torch.full_like(keys, -1)
        pos = torch.searchsorted(self.sorted_keys, keys).clamp_(max=len(self) - 1)
        found = self.sorted_keys[pos] == keys
        return torch.where(found, self.sorted_slots[pos], torch.full_like(keys, -1))

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """(N, 3) block coordinates -> (N,) int64 slots, -1 where not allocated."""
        inside = (coords >= COORD_MIN).all(1) & (coords <= COORD_MAX).all(1)
        slots = self.lookup_keys(pack_block_keys(coords.clamp(COORD_MIN, COORD_MAX)))
        return torch.where(inside, slots, torch.full_like(slots, -1))

    def insert_keys(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Insert unique (N,) int64 keys; returns (slots (N,), new_keys (K,) in slot order).

        Keys already present keep their slot; new keys get consecutive slots in ascending key
        order, starting at the current ``len(self)``.
        """
        slots = self.lookup_keys(keys)
        missing = slots < 0
        new_keys = torch.sort(keys[missing]).values
        if new_keys.numel():
            first = len(self)
            new_slots = torch.arange(first, first + new_keys.numel(), device=self.device)
            merged_keys = torch.cat([self.sorted_keys, new_keys])
            merged_slots = torch.cat([self.sorted_slots, new_slots])
            order = torch.argsort(merged_keys)
            self.sorted_keys = merged_keys[order]
            self.sorted_slots = merged_slots[order]
            slots = self.lookup_keys(keys)
        return slots, new_keys

    def rebuild(self, coords: torch.Tensor) -> None:
        """Replace the table by the blocks ``coords`` (N, 3) at slots ``0..N-1`` (unique coords)."""
        keys = pack_block_keys(coords.to(self.device, torch.int64))
        order = torch.argsort(keys)
        self.sorted_keys = keys[order]
        self.sorted_slots = order

    def clear(self) -> None:
        self.sorted_keys = self.sorted_keys[:0]
        self.sorted_slots = self.sorted_slots[:0]

    def state(self) -> dict[str, torch.Tensor]:
        return {"sorted_keys": self.sorted_keys, "sorted_slots": self.sorted_slots}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.sorted_keys = state["sorted_keys"].to(self.device, torch.int64)
        self.sorted_slots = state["sorted_slots"].to(self.device, torch.int64)
