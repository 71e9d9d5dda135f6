"""Which blocks of the map stay in memory: a memory budget with eviction to disk, or a radius.

Policy (``map.memory_budget_mb`` > 0), applied after each integrated frame:

1. Before a frame is fused, every stored region that intersects the frame's *reach* (the box
   around the camera centre and the four far corners of its view frustum at ``max_depth``,
   grown by the truncation distance and a seen-free cell diagonal, and a block radius deeper: everything
   the frame can allocate, fuse, carve or mark free; blocks never straddle regions) is read back from the block store, so the
   frame meets exactly the voxels it would have met without a budget.
2. After the frame, while the map's bytes (voxel blocks + seen-free blocks, see
   :meth:`VoxelLayer.memory_bytes`) exceed the budget, whole regions are evicted, farthest
   region centre from the camera first, until the map is down to 90 % of the budget. Regions
   intersecting the frame's reach are never evicted; when they alone exceed the budget the map
   stays over it (and :attr:`Residency.over_budget` says so).

Chunk extraction and prediction write-back read the regions of their chunk back first as well,
so completion sees the whole map. Meshing, raycasting and the voxel and occupancy outputs cover
the blocks in memory; :meth:`Residency.region_layer` reads any box back, from memory and disk.

With ``map.clear_radius_m`` > 0 (nvblox's behaviour) the blocks and seen-free blocks whose
centre is farther than that from the camera are dropped after each frame, nothing kept.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ssr_ros.map.block_store import BlockStore, BlockStoreError, region_voxels, regions_of
from ssr_ros.map.free_space import FREE_BLOCK
from ssr_ros.map.voxel_layer import VoxelLayer

LOG = logging.getLogger("ssr_ros.map")

EVICT_TO = 0.9
"""Eviction brings the map down to this fraction of the budget, so it does not run every frame."""


class Residency:
    """Keeps a :class:`VoxelLayer` within its memory budget or clear radius (see the module doc)."""

    def __init__(self, layer: VoxelLayer, mesher=None) -> None:
        config = layer.config
        self.layer = layer
        self.mesher = mesher
        self.budget_bytes = int(config.memory_budget_mb * 1e6)
        if self.budget_bytes > 0:  # spare capacity up to the blocks the budget holds, no more
            layer.blocks.capacity_limit = max(self.budget_bytes // layer.blocks.bytes_per_block(), 1)
        self.clear_radius = float(config.clear_radius_m)
        self.region_edge = region_voxels(config.block_size, config.free_space_cell_voxels)
        self.store: BlockStore | None = None
        self.blocks_evicted = 0
        self.blocks_reloaded = 0
        self.regions_evicted = 0
        self.regions_reloaded = 0
        self.blocks_cleared = 0
        self.over_budget = False
        self._told = False

    # ------------------------------------------------------------------ geometry
    def reach_box(self, intrinsics, T_world_cam) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) inclusive global voxel box a frame from this camera can change."""
        cfg = self.layer.config
        T = np.asarray(T_world_cam, dtype=np.float64)
        d = cfg.max_depth + 0.8660254 * cfg.block_extent  # carving reaches blocks centred this deep
        corners = [[0.0, 0.0], [intrinsics.width, 0.0], [0.0, intrinsics.height],
                   [intrinsics.width, intrinsics.height]]
        points = [T[:3, 3]]
        for u, v in corners:
            camera = np.array(intrinsics.unproject(u, v, d))
            points.append(T[:3, :3] @ camera + T[:3, 3])
        points = np.stack(points)
        cell = cfg.free_space_cell_voxels * cfg.voxel_size
        margin = cfg.truncation + math.sqrt(3.0) * cell + cfg.voxel_size
        lo = np.floor((points.min(0) - margin) / cfg.voxel_size).astype(np.int64)
        hi = np.floor((points.max(0) + margin) / cfg.voxel_size).astype(np.int64)
        return lo, hi

    def _region_range(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.floor_divide(lo, self.region_edge), np.floor_divide(hi, self.region_edge)

    def _block_regions(self) -> torch.Tensor:
        return regions_of(self.layer.block_coords(), self.layer.block_size, self.region_edge)

    def _free_regions(self) -> torch.Tensor | None:
        free = self.layer.free_space
        if free is None:
            return None
        return regions_of(free.block_coords(), FREE_BLOCK * free.cell_voxels, self.region_edge)

    # ------------------------------------------------------------------ reading back
    @property
    def blocks_on_disk(self) -> int:
        return self.store.num_blocks if self.store is not None else 0

    def ensure_resident(self, lo_voxel, hi_voxel) -> int:
        """Read back every stored region intersecting the inclusive voxel box; returns the blocks
        read. A corrupt region file raises BlockStoreError after the other regions are back."""
        if self.store is None or not self.store.regions:
            return 0
        rlo, rhi = self._region_range(np.asarray(lo_voxel), np.asarray(hi_voxel))
        wanted = [r for r in self.store.regions if all(rlo[i] <= r[i] <= rhi[i] for i in range(3))]
        loaded, failure = 0, None
        for region in wanted:
            try:
                voxels, free = self.store.read(region)
            except BlockStoreError as error:
                failure = failure or error
                continue
            self.layer.insert_block_data(voxels)
            if free is not None and self.layer.free_space is not None:
                self.layer.free_space.insert_blocks(free)
            self.store.remove(region)
            if self.mesher is not None:
                self.mesher.mark_dirty(voxels["block_coords"].to(self.layer.device))
            loaded += int(voxels["block_coords"].shape[0])
            self.regions_reloaded += 1
        self.blocks_reloaded += loaded
        if failure is not None:
            raise BlockStoreError(f"{failure}; the region's blocks are lost (the file was renamed to *.corrupt), "
                                  "the rest of the map is intact")
        return loaded

    # ------------------------------------------------------------------ after a frame
    def after_frame(self, camera_position, reach: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Apply the clear radius, then the budget, for a camera at ``camera_position`` (metres)."""
        position = torch.as_tensor(np.asarray(camera_position, dtype=np.float64), dtype=torch.float64)
        if self.clear_radius > 0:
            self._clear_beyond(position)
        if self.budget_bytes > 0:
            self._enforce_budget(position, reach)

    def _clear_beyond(self, position: torch.Tensor) -> None:
        layer = self.layer
        extent = layer.config.block_extent
        centres = (layer.block_coords().to(torch.float64).cpu() + 0.5) * extent
        far = ((centres - position).norm(dim=1) > self.clear_radius).to(layer.device)
        if bool(far.any()):
            gone = layer.block_coords()[far].clone()
            layer.remove_blocks(far)
            self.blocks_cleared += int(gone.shape[0])
            if self.mesher is not None:
                self.mesher.mark_dirty(gone)
        free = layer.free_space
        if free is not None and free.num_blocks:
            free_extent = FREE_BLOCK * free.cell_size
            centres = (free.block_coords().to(torch.float64).cpu() + 0.5) * free_extent
            far = ((centres - position).norm(dim=1) > self.clear_radius).to(layer.device)
            if bool(far.any()):
                free.take_blocks(far)

    def _enforce_budget(self, position: torch.Tensor, reach) -> None:
        layer = self.layer
        total = layer.memory_bytes()
        if total <= self.budget_bytes:
            self.over_budget = False
            return
        block_regions = self._block_regions().cpu()
        free_regions = self._free_regions()
        free_regions = free_regions.cpu() if free_regions is not None else torch.zeros(0, 3, dtype=torch.int64)
        regions, inverse = torch.unique(torch.cat([block_regions, free_regions]), dim=0, return_inverse=True)
        per_block = layer.voxel_bytes() // max(layer.num_blocks, 1)
        per_free = layer.free_space_bytes() // max(free_regions.shape[0], 1)
        weights = torch.cat([torch.full((block_regions.shape[0],), per_block, dtype=torch.float64),
                             torch.full((free_regions.shape[0],), per_free, dtype=torch.float64)])
        region_bytes = torch.zeros(regions.shape[0], dtype=torch.float64).index_add_(0, inverse, weights)
        edge_m = self.region_edge * layer.voxel_size
        distance = ((regions.to(torch.float64) + 0.5) * edge_m - position).norm(dim=1)
        if reach is not None:
            rlo, rhi = self._region_range(*reach)
            protected = ((regions >= torch.as_tensor(rlo)) & (regions <= torch.as_tensor(rhi))).all(1)
            distance[protected] = -1.0
        order = torch.argsort(distance, descending=True)
        target = EVICT_TO * self.budget_bytes
        chosen = []
        for index in order.tolist():
            if total <= target or distance[index] < 0:
                break
            chosen.append(index)
            total -= float(region_bytes[index])
        self.over_budget = total > self.budget_bytes
        if self.over_budget and not self._told:
            LOG.warning("map memory budget %.1f MB is smaller than what one frame can reach; the map stays over it",
                        self.budget_bytes / 1e6)
        if chosen:
            self._evict([tuple(int(c) for c in regions[i]) for i in chosen], block_regions, free_regions)

    def _evict(self, chosen: list[tuple[int, int, int]], block_regions: torch.Tensor, free_regions: torch.Tensor) -> None:
        layer = self.layer
        if self.store is None:
            config = layer.config
            self.store = BlockStore(config.block_store_dir, {
                "voxel_size": config.voxel_size, "block_size": config.block_size,
                "free_space_cell_voxels": config.free_space_cell_voxels, "num_classes": layer.num_classes})
        evict_blocks = torch.zeros(block_regions.shape[0], dtype=torch.bool)
        evict_free = torch.zeros(free_regions.shape[0], dtype=torch.bool)
        free_layer = layer.free_space
        free_data_all = free_layer.state_by_slot() if free_layer is not None and free_regions.shape[0] else None
        for region in chosen:
            key = torch.tensor(region, dtype=torch.int64)
            in_blocks = (block_regions == key).all(1)
            in_free = (free_regions == key).all(1)
            voxels = layer.block_data(torch.nonzero(in_blocks).squeeze(1).to(layer.device))
            free = None
            if free_data_all is not None:
                free = {name: tensor[in_free.to(tensor.device)] for name, tensor in free_data_all.items()}
            try:
                self.store.write(region, voxels, free)
            except BlockStoreError as error:  # keep the region in memory; the map stays over budget
                LOG.error("cannot evict region %s: %s", region, error)
                continue
            evict_blocks |= in_blocks
            evict_free |= in_free
        gone = layer.block_coords()[evict_blocks.to(layer.device)].clone()
        layer.remove_blocks(evict_blocks.to(layer.device))
        if free_layer is not None and bool(evict_free.any()):
            free_layer.take_blocks(evict_free.to(layer.device))
        if self.mesher is not None:
            self.mesher.mark_dirty(gone)
        self.blocks_evicted += int(gone.shape[0])
        self.regions_evicted += len(chosen)
        if not self._told:
            self._told = True
            LOG.info("map memory budget %.1f MB reached: blocks far from the camera go to the block store in %s; "
                     "mesh, voxel map and occupancy now cover the blocks in memory", self.budget_bytes / 1e6,
                     self.store.directory)

    # ------------------------------------------------------------------ whole map / regions
    def complete_layer(self) -> VoxelLayer:
        """The layer itself when nothing is on disk, else a new layer with every block (memory and
        disk; the store is left as it is). Raises BlockStoreError when a region cannot be read."""
        if self.store is None or not self.store.regions:
            return self.layer
        return self._copy_with(None, None)

    def region_layer(self, lo_voxel, hi_voxel) -> VoxelLayer:
        """A new layer with the blocks (and seen-free blocks) that intersect the inclusive voxel
        box, from memory and disk; the map's residency is unchanged."""
        return self._copy_with(np.asarray(lo_voxel, dtype=np.int64), np.asarray(hi_voxel, dtype=np.int64))

    def _copy_with(self, lo, hi) -> VoxelLayer:
        layer = self.layer
        out = VoxelLayer(layer.config, layer.num_classes, layer.device)
        out.update_counter = layer.update_counter

        def inside(coords: torch.Tensor, edge: int) -> torch.Tensor:
            if lo is None:
                return torch.ones(coords.shape[0], dtype=torch.bool, device=coords.device)
            first = coords * edge
            return ((first + edge - 1 >= torch.as_tensor(lo, device=coords.device))
                    & (first <= torch.as_tensor(hi, device=coords.device))).all(1)

        B = layer.block_size
        out.insert_block_data(layer.block_data(torch.nonzero(inside(layer.block_coords(), B)).squeeze(1)))
        free_edge = FREE_BLOCK * layer.config.free_space_cell_voxels
        if layer.free_space is not None and out.free_space is not None and layer.free_space.num_blocks:
            state = layer.free_space.state()
            keep = inside(state["free_block_coords"], free_edge)
            out.free_space.insert_blocks({name: tensor[keep] for name, tensor in state.items()})
        if self.store is not None and self.store.regions:
            regions = list(self.store.regions)
            if lo is not None:
                rlo, rhi = self._region_range(lo, hi)
                regions = [r for r in regions if all(rlo[i] <= r[i] <= rhi[i] for i in range(3))]
            for region in regions:
                voxels, free = self.store.read(region)
                keep = inside(voxels["block_coords"], B)
                out.insert_block_data({name: tensor[keep] for name, tensor in voxels.items()})
                if free is not None and out.free_space is not None:
                    keep = inside(free["free_block_coords"], free_edge)
                    out.free_space.insert_blocks({name: tensor[keep] for name, tensor in free.items()})
        return out

    # ------------------------------------------------------------------ bookkeeping
    def reset(self) -> None:
        """Forget what is on disk (the map was cleared)."""
        if self.store is not None:
            self.store.close()
            self.store = None

    def stats(self) -> dict[str, int | float | bool]:
        return {
            "memory_budget_bytes": self.budget_bytes,
            "blocks_on_disk": self.blocks_on_disk,
            "regions_on_disk": len(self.store.regions) if self.store is not None else 0,
            "blocks_evicted": self.blocks_evicted,
            "blocks_reloaded": self.blocks_reloaded,
            "regions_evicted": self.regions_evicted,
            "regions_reloaded": self.regions_reloaded,
            "blocks_cleared": self.blocks_cleared,
            "over_budget": self.over_budget,
            "block_store_bytes_written": self.store.bytes_written if self.store is not None else 0,
        }
