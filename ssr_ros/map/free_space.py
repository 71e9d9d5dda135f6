"""``FreeSpaceLayer``: a coarse record of the space cameras saw to be empty.

The TSDF stores values only near measured surfaces, so far in front of them "seen free" and
"never seen" look the same. This layer keeps, per *cell* of ``cell_voxels`` voxels along each
edge (cell ``c`` covers the global voxels ``[c * cell_voxels, (c + 1) * cell_voxels)``), a
saturating uint8 count of the frames that saw the cell free. A cell counts as seen free once
the count reaches ``min_hits``.

A frame marks a cell free when a ray of a valid pixel (every ``pixel_stride``-th pixel; near
the camera, where those rays are much denser than the cells, only every 2nd, 4th, ... of them)
passes through it, up to ``truncation + cell diagonal`` short of the measured point
(so the whole cell lies at least ``truncation`` in front of the point the ray hit), and the
cell is not within ``truncation`` of any measured point of the frame (rays that graze a
surface pass close to *other* pixels' points). Pixels without a valid depth (0, NaN, beyond
``max_depth``) mark nothing. Cells within ``truncation`` of a measured point lose their count,
so space that stopped being free (an object moved in) is forgotten.

Storage: cells are grouped into *free blocks* of 8^3 cells, found through a
:class:`~ssr_ros.map.block_hash.BlockHash`; each block holds (512,) uint8 counts, local cell
``(i, j, k)`` at index ``i + 8 * (j + 8 * k)``. Seen-free space comes in large connected
volumes, so this is ~1 byte per cell plus 40 bytes per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ssr_ros.errors import InvalidInput
from ssr_ros.map.block_hash import BlockHash, box_coords, check_coord_range, pack_block_keys, unpack_block_keys
from ssr_ros.map.integration import Projection, clean_depth

FREE_BLOCK = 8
"""Cells along each edge of a free block."""
CELLS_PER_BLOCK = FREE_BLOCK**3
MAX_HITS = 255
BITMAP_LIMIT = 1 << 24
"""Largest per-frame cell bounding box deduplicated with a bitmap; larger ones use unique()."""


@dataclass(frozen=True)
class FreeSpaceObservation:
    """What one frame saw: the cells to count as free and the cells near its surfaces.

    free_cells: (F, 3) int64 unique cell coordinates seen free.
    band_cells: (N, 3) int64 unique cell coordinates within truncation of a measured point.
    """

    free_cells: torch.Tensor
    band_cells: torch.Tensor


def _dilate(occupied: torch.Tensor, radius: int) -> torch.Tensor:
    """(X, Y, Z) bool grown by ``radius`` cells along each axis (a cube, as separable ORs)."""
    if radius <= 0:
        return occupied
    grown = occupied
    for axis in range(3):
        out = grown.clone()
        n = grown.shape[axis]
        for shift in range(1, min(radius, n - 1) + 1):
            out.narrow(axis, shift, n - shift).logical_or_(grown.narrow(axis, 0, n - shift))
            out.narrow(axis, 0, n - shift).logical_or_(grown.narrow(axis, shift, n - shift))
        grown = out
    return grown


class FreeSpaceLayer:
    """Sparse seen-free cells with uint8 hit counts, on one torch device."""

    def __init__(
        self,
        voxel_size: float,
        cell_voxels: int = 2,
        pixel_stride: int = 8,
        min_hits: int = 1,
        device: str | torch.device = "cpu",
        capacity: int = 64,
    ) -> None:
        if not 1 <= int(cell_voxels) <= 64:
            raise InvalidInput(f"cell_voxels={cell_voxels} must be in [1, 64]")
        if int(pixel_stride) < 1:
            raise InvalidInput(f"pixel_stride={pixel_stride} must be >= 1")
        if not 1 <= int(min_hits) <= MAX_HITS:
            raise InvalidInput(f"min_hits={min_hits} must be in [1, {MAX_HITS}]")
        self.voxel_size = float(voxel_size)
        self.cell_voxels = int(cell_voxels)
        self.pixel_stride = int(pixel_stride)
        self.min_hits = int(min_hits)
        self.device = torch.device(device)
        self.hash = BlockHash(self.device)
        self.num_blocks = 0
        self.hits = torch.zeros(capacity, CELLS_PER_BLOCK, dtype=torch.uint8, device=self.device)

    @property
    def cell_size(self) -> float:
        """Edge length of a cell, metres."""
        return self.cell_voxels * self.voxel_size

    # ------------------------------------------------------------------ observing
    def observe(
        self, depth: torch.Tensor, proj_world_cam: Projection, truncation: float, min_depth: float
    ) -> FreeSpaceObservation:
        """The cells one frame sees free (no change to the layer).

        depth: (H, W) float32 metres, cleaned (0 = invalid; see
        :func:`~ssr_ros.map.integration.clean_depth`), on the layer's device.
        proj_world_cam: camera-to-world rotation/translation and pinhole parameters (see
        :meth:`~ssr_ros.map.integration.Projection.camera_to_world`). truncation, min_depth:
        metres. Raises InvalidInput when the cells fall outside the representable range.
        """
        device = depth.device
        empty = torch.empty(0, 3, dtype=torch.int64, device=device)
        stride = self.pixel_stride
        sub = depth[::stride, ::stride]
        v, u = torch.nonzero(sub > 0, as_tuple=True)
        if v.numel() == 0:
            return FreeSpaceObservation(empty, empty)
        d = sub[v, u]
        p = proj_world_cam
        # ray directions with unit depth (z = 1) in the camera, then in the world in cell units:
        # the point at depth t of a ray is (origin + t * direction) cells
        rx = ((u * stride).to(torch.float32) - p.cx) / p.fx
        ry = ((v * stride).to(torch.float32) - p.cy) / p.fy
        R, tr = p.R, p.t
        inv_cell = 1.0 / self.cell_size
        direction = torch.stack(
            [(R[i][0] * rx + R[i][1] * ry + R[i][2]) * inv_cell for i in range(3)], dim=1
        )  # (P, 3)
        origin = torch.tensor(tr, dtype=torch.float32, device=device) * inv_cell
        surface_cells = torch.floor(torch.addcmul(origin, d[:, None], direction))
        # the sample farthest along the ray stays truncation + cell diagonal (Euclidean) short
        # of the measured point, so its whole cell is at least truncation in front of it
        norm = torch.sqrt(rx * rx + ry * ry + 1.0)
        t_end = d - (truncation + math.sqrt(3.0) * self.cell_size) / norm
        level, t_start = self._ray_levels(u, v, min(p.fx, p.fy), min_depth)
        marching = t_end >= t_start
        direction, norm = direction[marching], norm[marching]
        t_start, t_end, level = t_start[marching], t_end[marching], level[marching]
        step = 0.5 * self.cell_size  # largest spacing of samples along the ray, metres
        count = torch.ceil((t_end - t_start) * norm / step) + 1
        spacing = (t_end - t_start) / (count - 1).clamp(min=1)  # in depth, per ray
        ends = torch.floor(torch.cat([
            torch.addcmul(origin, direction, t_start[:, None]),
            torch.addcmul(origin, direction, t_end[:, None]),
        ]))
        radius = int(math.ceil(truncation / self.cell_size))
        bounds = torch.cat([ends, surface_cells])
        lo = bounds.min(0).values - radius
        dims = bounds.max(0).values + radius - lo + 1
        num_cells = int(dims.prod())
        bitmap = num_cells <= BITMAP_LIMIT  # dedupe on a dense bitmap of the bounding box
        seen = torch.zeros(num_cells + 1 if bitmap else 0, dtype=torch.bool, device=device)
        sampled = []
        for group in torch.unique(level).tolist():  # rays of one level march similar lengths
            rays = torch.nonzero(level == group).squeeze(1)
            ray_count = count[rays]
            # ray-major samples (P, K); samples past a ray's end are masked
            k = torch.arange(int(ray_count.max()), device=device, dtype=torch.float32)
            t = torch.addcmul(t_start[rays, None], spacing[rays, None], k[None])
            past_end = k[None] >= ray_count[:, None]
            cells = [torch.addcmul(origin[i] - lo[i], t, direction[rays, i : i + 1]).floor_() for i in range(3)]
            if bitmap:
                linear = torch.addcmul(cells[1], cells[0], dims[1]).mul_(dims[2]).add_(cells[2])
                seen[linear.masked_fill_(past_end, num_cells).to(torch.int64).reshape(-1)] = True
            else:
                sampled.append(torch.stack([c[~past_end] for c in cells], dim=1))
        if bitmap:
            seen = seen[:num_cells].reshape(tuple(int(n) for n in dims))
            near = torch.zeros_like(seen)
            rel = surface_cells - lo
            near.view(-1)[torch.addcmul(rel[:, 1], rel[:, 0], dims[1]).mul_(dims[2]).add_(rel[:, 2]).to(torch.int64)] = True
            near = _dilate(near, radius)
            lo = lo.to(torch.int64)
            free_cells, band_cells = torch.nonzero(seen & ~near) + lo, torch.nonzero(near) + lo
        else:  # very large frustum: sort-based sets instead of a dense box
            free = torch.cat(sampled) + lo if sampled else torch.zeros(0, 3, device=device)
            free_cells, band_cells = self._separate(free.to(torch.int64), surface_cells.to(torch.int64), radius)
        check_coord_range(torch.div(free_cells, FREE_BLOCK, rounding_mode="floor"))
        return FreeSpaceObservation(free_cells, band_cells)

    def _ray_levels(
        self, u: torch.Tensor, v: torch.Tensor, focal: float, min_depth: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Level (P,) int64 and start depth (P,) float32 metres of the rays at stride-grid
        column ``u`` / row ``v``.

        Near the camera the rays of the stride grid are far denser than the cells, so rays march
        only where the coarser grids stop being dense enough: the grid of every ``2^j``-th ray
        (pixel spacing ``s_j = pixel_stride * 2^j``) is ``s_j * t / focal`` metres apart at depth
        ``t``, at most half a cell up to ``T_j = cell_size / 2 * focal / s_j``. A ray of level
        ``k`` (on the ``2^k`` grid but not on the ``2^(k+1)`` one) starts at ``T_(k+1)``; rays of
        the top level start at ``min_depth``.
        """
        top = 0
        while top < 12 and 0.5 * self.cell_size * focal / (self.pixel_stride * 2 ** (top + 1)) > min_depth:
            top += 1
        either = u | v
        level = torch.zeros_like(u)
        for j in range(1, top + 1):
            level += (either & (2**j - 1)) == 0
        reach = [0.5 * self.cell_size * focal / (self.pixel_stride * 2**j) for j in range(1, top + 2)]
        start = torch.tensor(reach, dtype=torch.float32, device=u.device).clamp(min=min_depth)[level]
        start = torch.where(level >= top, torch.full_like(start, min_depth), start)
        return level, start

    @staticmethod
    def _separate(free: torch.Tensor, surface: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unique free cells (F, 3) not within ``radius`` cells of a surface cell (S, 3), and
        the unique cells within that radius (the band), both (K, 3) int64, via sorted keys."""
        device = free.device
        r = torch.arange(-radius, radius + 1, device=device)
        offsets = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)
        band_keys = torch.unique(pack_block_keys((surface[:, None, :] + offsets[None]).reshape(-1, 3)))
        free_keys = torch.unique(pack_block_keys(free))
        free_keys = free_keys[~torch.isin(free_keys, band_keys)]
        return unpack_block_keys(free_keys), unpack_block_keys(band_keys)

    # ------------------------------------------------------------------ updating
    def mark(self, observation: FreeSpaceObservation) -> None:
        """Count the observation's free cells (+1 each, saturating at 255) and forget the
        counts of its band cells."""
        band = observation.band_cells
        if band.shape[0] and self.num_blocks:
            slot, local = self._locate(band)
            found = slot >= 0
            self.hits[slot[found], local[found]] = 0
        free = observation.free_cells
        if free.shape[0] == 0:
            return
        blocks = torch.div(free, FREE_BLOCK, rounding_mode="floor")
        keys = pack_block_keys(blocks)
        _, new_keys = self.hash.insert_keys(torch.unique(keys))
        slot = self.hash.lookup_keys(keys)
        self._reserve(self.num_blocks + int(new_keys.numel()))
        local = self._local_index(free - blocks * FREE_BLOCK)
        count = self.hits[slot, local]
        self.hits[slot, local] = torch.where(count < MAX_HITS, count + 1, count)

    def integrate(
        self,
        depth: torch.Tensor,
        intrinsics,
        T_world_cam,
        truncation: float,
        min_depth: float,
        max_depth: float,
    ) -> int:
        """Mark the cells one depth image sees free; returns how many cells it saw free.

        depth: (H, W) float32 metres (0 / NaN / Inf / outside [min_depth, max_depth] = invalid);
        intrinsics: :class:`~ssr_ros.geometry.camera.CameraIntrinsics`; T_world_cam: (4, 4)
        camera-to-world pose; truncation, min_depth, max_depth: metres.
        """
        depth = depth.to(self.device, torch.float32)
        clean, _ = clean_depth(depth, min_depth, max_depth)
        observation = self.observe(clean, Projection.camera_to_world(intrinsics, T_world_cam), truncation, min_depth)
        self.mark(observation)
        return int(observation.free_cells.shape[0])

    # ------------------------------------------------------------------ queries
    @staticmethod
    def _local_index(local: torch.Tensor) -> torch.Tensor:
        return local[:, 0] + FREE_BLOCK * (local[:, 1] + FREE_BLOCK * local[:, 2])

    def _locate(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3) cells -> (slot (N,), -1 where no free block; local index (N,))."""
        blocks = torch.div(cells, FREE_BLOCK, rounding_mode="floor")
        return self.hash.lookup(blocks), self._local_index(cells - blocks * FREE_BLOCK)

    def cell_hits(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, 3) int64 cell coordinates -> (N,) uint8 hit counts (0 where never seen free)."""
        slot, local = self._locate(cells.to(self.device, torch.int64))
        counts = self.hits[slot.clamp(min=0), local]
        return torch.where(slot >= 0, counts, torch.zeros_like(counts))

    def query(self, voxels: torch.Tensor) -> torch.Tensor:
        """(N, 3) int64 global voxel indices -> (N,) bool, True where the voxel's cell was seen
        free by at least ``min_hits`` frames."""
        voxels = voxels.to(self.device, torch.int64)
        cells = torch.div(voxels, self.cell_voxels, rounding_mode="floor")
        return self.cell_hits(cells) >= self.min_hits

    def free_cells(self) -> torch.Tensor:
        """(F, 3) int64 coordinates of all cells seen free (hits >= min_hits), sorted by block."""
        hits = self.hits[: self.num_blocks]
        slot, local = torch.nonzero(hits >= self.min_hits, as_tuple=True)
        block_of_slot = torch.empty(self.num_blocks, dtype=torch.int64, device=self.device)
        block_of_slot[self.hash.sorted_slots] = self.hash.sorted_keys
        origin = unpack_block_keys(block_of_slot[slot]) * FREE_BLOCK
        offset = torch.stack([local % FREE_BLOCK, (local // FREE_BLOCK) % FREE_BLOCK, local // (FREE_BLOCK**2)], dim=1)
        return origin + offset

    def num_free_cells(self) -> int:
        return self.count_free_cells(self.hits[: self.num_blocks])

    def hits_snapshot(self) -> torch.Tensor:
        """A copy of the in-use hit counts, for :meth:`count_free_cells` away from the map's lock."""
        return self.hits[: self.num_blocks].clone()

    def count_free_cells(self, hits: torch.Tensor) -> int:
        """Cells seen free often enough among hit counts (from :meth:`hits_snapshot`)."""
        return int(torch.count_nonzero(hits >= self.min_hits))  # not .sum(): a bool sum is ~5x slower on CPU

    def region_copy(self, lo_voxel: torch.Tensor, hi_voxel: torch.Tensor) -> "FreeSpaceLayer":
        """A new layer with the same settings holding copies of the free blocks that cover the
        voxels ``lo_voxel..hi_voxel`` (inclusive, (3,) int64 global indices): :meth:`query` of any
        voxel in that box answers as this layer does at the moment of the copy."""
        def free_block(voxel):
            cell = torch.div(torch.as_tensor(voxel, dtype=torch.int64, device=self.device), self.cell_voxels,
                             rounding_mode="floor")
            return torch.div(cell, FREE_BLOCK, rounding_mode="floor")

        coords = box_coords(free_block(lo_voxel), free_block(hi_voxel))
        slots = self.hash.lookup(coords) if self.num_blocks else torch.full((len(coords),), -1, dtype=torch.int64)
        kept = slots >= 0
        out = FreeSpaceLayer(self.voxel_size, self.cell_voxels, self.pixel_stride, self.min_hits, self.device,
                             capacity=max(1, int(kept.sum())))
        out.insert_blocks({"free_block_coords": coords[kept], "free_hits": self.hits[slots[kept]]})
        return out

    # ------------------------------------------------------------------ moving blocks in and out
    def block_coords(self) -> torch.Tensor:
        """(num_blocks, 3) int64 free-block coordinates in slot order."""
        block_of_slot = torch.empty(self.num_blocks, dtype=torch.int64, device=self.device)
        block_of_slot[self.hash.sorted_slots] = self.hash.sorted_keys
        return unpack_block_keys(block_of_slot)

    def state_by_slot(self) -> dict[str, torch.Tensor]:
        """``free_block_coords`` (N, 3) and ``free_hits`` (N, 512) in slot order (views)."""
        return {"free_block_coords": self.block_coords(), "free_hits": self.hits[: self.num_blocks]}

    def take_blocks(self, remove: torch.Tensor) -> dict[str, torch.Tensor]:
        """Remove the free blocks where ``remove`` (num_blocks,) bool is True and return them as
        ``free_block_coords`` (K, 3) and ``free_hits`` (K, 512) (the others keep their counts)."""
        coords = self.block_coords()
        taken = {"free_block_coords": coords[remove].clone(), "free_hits": self.hits[: self.num_blocks][remove].clone()}
        if taken["free_block_coords"].shape[0]:
            kept = ~remove
            count = int(kept.sum())
            self.hits[:count] = self.hits[: self.num_blocks][kept].clone()
            self.hits[count : self.num_blocks] = 0
            self.num_blocks = count
            self.hash.rebuild(coords[kept])
        return taken

    def _reserve(self, needed: int) -> None:
        """Grow the hit storage (doubling) to hold ``needed`` blocks and count them as used."""
        if needed > self.hits.shape[0]:
            grown = torch.zeros(max(needed, 2 * self.hits.shape[0]), CELLS_PER_BLOCK, dtype=torch.uint8, device=self.device)
            grown[: self.num_blocks] = self.hits[: self.num_blocks]
            self.hits = grown
        self.num_blocks = needed

    def insert_blocks(self, state: dict[str, torch.Tensor]) -> None:
        """Add free blocks given as by :meth:`take_blocks` (blocks already present take the given counts)."""
        coords = state["free_block_coords"].to(self.device, torch.int64)
        if coords.shape[0] == 0:
            return
        slot, new_keys = self.hash.insert_keys(pack_block_keys(coords))
        self._reserve(self.num_blocks + int(new_keys.numel()))
        self.hits[slot] = state["free_hits"].to(self.device, torch.uint8)

    # ------------------------------------------------------------------ bookkeeping
    def reset(self) -> None:
        """Forget every cell."""
        self.hash.clear()
        self.num_blocks = 0
        self.hits.zero_()

    def memory_bytes(self) -> int:
        """Bytes in use: 512 one-byte counts per free block plus its two int64 hash entries."""
        return self.num_blocks * (CELLS_PER_BLOCK + 16)

    def state(self) -> dict[str, torch.Tensor]:
        """Compact serialisable state: ``free_block_coords`` (N, 3) int64 and ``free_hits``
        (N, 512) uint8, in ascending block-key order (the same content gives the same state)."""
        return {"free_block_coords": unpack_block_keys(self.hash.sorted_keys),
                "free_hits": self.hits[self.hash.sorted_slots].clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the content with a :meth:`state`; raises InvalidInput on mismatched shapes."""
        coords = state["free_block_coords"].to(self.device, torch.int64)
        hits = state["free_hits"].to(self.device, torch.uint8)
        if coords.dim() != 2 or coords.shape[1] != 3 or tuple(hits.shape) != (coords.shape[0], CELLS_PER_BLOCK):
            raise InvalidInput(
                f"free-space state has block coords {tuple(coords.shape)} and hits {tuple(hits.shape)}; "
                f"expected (N, 3) and (N, {CELLS_PER_BLOCK})"
            )
        self.reset()
        keys = pack_block_keys(coords)
        if torch.unique(keys).numel() != keys.numel():
            raise InvalidInput("free-space state lists a block twice")
        slot, _ = self.hash.insert_keys(keys)
        self.hits = torch.zeros(max(coords.shape[0], 1), CELLS_PER_BLOCK, dtype=torch.uint8, device=self.device)
        self.hits[slot] = hits
        self.num_blocks = coords.shape[0]
