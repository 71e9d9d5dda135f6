"""Which chunks of the map to complete next: the dirtiest ones near the camera.

The map is tiled by a fixed grid of chunk cells with stride ``chunk_size - overlap`` voxels;
the chunk of cell ``c`` starts at voxel ``c * stride - overlap // 2`` so that neighbouring
chunks overlap by ``overlap`` voxels of context. Blocks changed by integration mark their
cell dirty; a run picks up to ``max_chunks_per_run`` dirty cells within ``radius`` of the
camera, most changed blocks first, nearest first among equals, and forgets them until they
change again. Cells farther away stay pending and are picked when the camera comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError


@dataclass
class SchedulerConfig:
    """When and where completion runs."""

    period_s: float = param(2.0, "seconds between completion runs in the node (0 = after every frame)", low=0.0, high=3600.0)
    radius: float = param(4.0, "only chunks whose centre is this close to the camera are completed, metres", low=0.1, high=100.0)
    max_chunks_per_run: int = param(4, "chunks completed per run (bounds the latency of one run)", low=1, high=1024)
    min_changed_blocks: int = param(1, "a chunk is (re)completed once this many of its blocks changed", low=1, high=4096)

    def validate(self) -> "SchedulerConfig":
        return validate_config(self)


class CompletionScheduler:
    """Accumulates changed blocks into chunk cells and hands out chunk origins to complete."""

    def __init__(self, config: SchedulerConfig, chunk_size: int, overlap: int, block_size: int):
        if not 0 <= overlap < chunk_size:
            raise ConfigError(f"overlap={overlap} must be in [0, chunk_size={chunk_size})")
        self.config = config.validate()
        self.chunk_size = int(chunk_size)
        self.overlap = int(overlap)
        self.stride = self.chunk_size - self.overlap
        self.block_size = int(block_size)
        self._pending: dict[tuple[int, int, int], int] = {}

    @property
    def pending(self) -> dict[tuple[int, int, int], int]:
        """Dirty cells and how many block changes each has accumulated."""
        return dict(self._pending)

    def clear(self) -> None:
        self._pending.clear()

    def mark_changed(self, block_coords: np.ndarray) -> None:
        """Record changed blocks, (K, 3) integer block indices."""
        block_coords = np.asarray(block_coords, dtype=np.int64).reshape(-1, 3)
        if not block_coords.size:
            return
        centres = block_coords * self.block_size + self.block_size // 2
        cells, counts = np.unique(np.floor_divide(centres, self.stride), axis=0, return_counts=True)
        for cell, count in zip(map(tuple, cells.tolist()), counts.tolist()):
            self._pending[cell] = self._pending.get(cell, 0) + int(count)

    def chunk_origin(self, cell: tuple[int, int, int]) -> tuple[int, int, int]:
        """First voxel of the chunk that covers ``cell`` (with half the overlap as margin)."""
        return tuple(int(c) * self.stride - self.overlap // 2 for c in cell)  # type: ignore[return-value]

    def select(self, camera_position: np.ndarray | None, voxel_size: float) -> list[tuple[int, int, int]]:
        """Chunk origins to complete now (removed from the pending set), best first."""
        ready = [(cell, n) for cell, n in self._pending.items() if n >= self.config.min_changed_blocks]
        if not ready:
            return []
        cells = np.array([cell for cell, _ in ready], dtype=np.int64)
        counts = np.array([n for _, n in ready], dtype=np.int64)
        centres = (cells * self.stride - self.overlap // 2 + self.chunk_size / 2.0) * voxel_size
        if camera_position is not None:
            distance = np.linalg.norm(centres - np.asarray(camera_position, dtype=np.float64)[None], axis=1)
        else:
            distance = np.zeros(len(ready))
        near = distance <= self.config.radius + 0.5 * np.sqrt(3) * self.chunk_size * voxel_size
        order = np.lexsort((distance, -counts))
        chosen = [int(i) for i in order if near[i]][: self.config.max_chunks_per_run]
        for i in chosen:
            del self._pending[tuple(cells[i].tolist())]
        return [self.chunk_origin(tuple(cells[i].tolist())) for i in chosen]
