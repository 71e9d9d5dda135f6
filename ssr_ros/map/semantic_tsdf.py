"""``SemanticTSDF``: the block-sparse semantic TSDF map (integration, chunks, queries, meshing).

Usage::

    tsdf = SemanticTSDF(TSDFConfig(voxel_size=0.05), num_classes=21, device="cpu")
    tsdf.integrate(frame)                      # Frame with depth, rgb?, labels? / label_probs?
    chunk = tsdf.extract_chunk(origin, (64, 64, 64))
    tsdf.write_predictions(origin, tsdf_pred, color_pred, probs_pred)
    update = tsdf.update_mesh()                # only the blocks changed since the last call
    images = tsdf.raycast(intrinsics, T_world_cam)
    tsdf.save("map.ssrmap"); SemanticTSDF.load("map.ssrmap", device="cpu")

Voxel ``v`` covers ``[v * s, (v + 1) * s)`` (centre ``(v + 0.5) * s``), block ``b`` covers
voxels ``[b * B, (b + 1) * B)``. Each voxel is *observed* when its fused weight reaches
``config.observed_min_weight`` and *predicted* when the completion network wrote it (it then
has no fused weight; the first measurement that reaches it replaces the prediction). Beside
the voxels, a coarse :class:`~ssr_ros.map.free_space.FreeSpaceLayer` records where camera rays
crossed free space beyond the truncation band; predictions never put surface there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssr_ros.errors import InvalidFrame, InvalidInput
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame, check_instance_image
from ssr_ros.geometry.pose import validate_pose
from ssr_ros.map import chunk_io, integration
from ssr_ros.map.block_hash import check_coord_range
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.instance_evidence import InstanceEvidence
from ssr_ros.map.semantic_evidence import top2_votes
from ssr_ros.map.voxel_blocks import cpu_threads, one_thread
from ssr_ros.map.voxel_layer import PREDICTED_WEIGHT, VoxelLayer

__all__ = ["PREDICTED_WEIGHT", "SemanticTSDF"]


class SemanticTSDF:
    """Block-sparse TSDF with color and compact semantic evidence, on one torch device."""

    def __init__(
        self, config: TSDFConfig | None = None, num_classes: int = 21, device: str | torch.device = "cpu"
    ) -> None:
        self.config = (config or TSDFConfig()).validate()
        self.layer = VoxelLayer(self.config, num_classes, device)
        """The map's storage (:class:`~ssr_ros.map.voxel_layer.VoxelLayer`): what the modules
        that read or write voxels take."""
        self.num_classes = self.layer.num_classes
        self.device = self.layer.device
        self.frames_integrated = 0
        self._native = self._select_native()
        from ssr_ros.map.meshing import IncrementalMesher

        self._mesher = IncrementalMesher(self.layer)
        self.instances: InstanceEvidence | None = None
        """Object instance evidence from the frames' 2D instance ids
        (:class:`~ssr_ros.map.instance_evidence.InstanceEvidence`), None until a frame brings some."""
        self.residency = None
        """:class:`~ssr_ros.map.residency.Residency` when ``config.memory_budget_mb`` or
        ``config.clear_radius_m`` is set (blocks move to disk / are dropped), else None."""
        if self.config.memory_budget_mb > 0 or self.config.clear_radius_m > 0:
            from ssr_ros.map.residency import Residency

            self.residency = Residency(self.layer, self._mesher)

    # ------------------------------------------------------------------ storage
    @property
    def hash(self):
        """The layer's block hash (:class:`~ssr_ros.map.block_hash.BlockHash`)."""
        return self.layer.hash

    @property
    def blocks(self):
        """The layer's voxel blocks (:class:`~ssr_ros.map.voxel_blocks.VoxelBlocks`)."""
        return self.layer.blocks

    @property
    def free_space(self):
        """The seen-free layer (:class:`~ssr_ros.map.free_space.FreeSpaceLayer`), None when
        ``config.free_space`` is off."""
        return self.layer.free_space

    @property
    def update_counter(self) -> int:
        """Grows by one with each integrate / write_predictions / reset call."""
        return self.layer.update_counter

    @update_counter.setter
    def update_counter(self, value: int) -> None:
        self.layer.update_counter = int(value)

    # ------------------------------------------------------------------ set-up
    def _select_native(self):
        backend = self.config.backend
        if backend == "torch":
            return None
        if self.device.type != "cpu":
            if backend == "native":
                raise InvalidInput(f"backend 'native' runs on CPU tensors only, map device is {self.device}")
            return None
        from ssr_ros.map import native

        module = native.load()
        if module is None and backend == "native":
            raise InvalidInput(f"backend 'native' requested but the C++ kernel could not be built: {native.build_error()}")
        return module

    @property
    def backend(self) -> str:
        """The integration kernel in use: 'native' or 'torch'."""
        return "native" if self._native is not None else "torch"

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

    # ------------------------------------------------------------------ integration
    def _check_frame(self, frame: Frame) -> None:
        """Shape, dtype and pose checks (cheap); raise InvalidFrame / InvalidPose."""
        if not isinstance(frame.intrinsics, CameraIntrinsics):
            raise InvalidFrame(f"frame.intrinsics must be CameraIntrinsics, got {type(frame.intrinsics).__name__}")
        shape = frame.intrinsics.shape
        depth = frame.depth
        if not isinstance(depth, (np.ndarray, torch.Tensor)) or depth.ndim != 2:
            raise InvalidFrame(f"depth must be a 2-D array, got {getattr(depth, 'shape', type(depth))}")
        if tuple(depth.shape) != shape:
            raise InvalidFrame(
                f"depth is {depth.shape[1]}x{depth.shape[0]} but the intrinsics are "
                f"{frame.intrinsics.width}x{frame.intrinsics.height}"
            )
        if frame.rgb is not None:
            if tuple(frame.rgb.shape) != shape + (3,) or frame.rgb.dtype not in (np.uint8, torch.uint8):
                raise InvalidFrame(f"rgb must be uint8 of shape {shape + (3,)}, got {frame.rgb.dtype} {tuple(frame.rgb.shape)}")
        if frame.labels is not None and frame.label_probs is not None:
            raise InvalidFrame("give either labels or label_probs, not both")
        if frame.labels is not None:
            labels = frame.labels
            if tuple(labels.shape) != shape:
                raise InvalidFrame(f"labels must have shape {shape}, got {tuple(labels.shape)}")
            if isinstance(labels, np.ndarray):
                if not np.issubdtype(labels.dtype, np.integer):
                    raise InvalidFrame(f"labels must be integer class ids, got {labels.dtype}")
                low, high = int(labels.min()), int(labels.max())
            else:
                if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                    raise InvalidFrame(f"labels must be integer class ids, got {labels.dtype}")
                low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= self.num_classes:
                raise InvalidFrame(f"labels span [{low}, {high}]; expected class ids in [0, {self.num_classes - 1}]")
        if frame.label_confidence is not None:
            confidence = frame.label_confidence
            if frame.labels is None:
                raise InvalidFrame("label_confidence needs labels")
            if tuple(confidence.shape) != shape or not (
                    confidence.dtype in (np.float32, np.float64) or getattr(confidence.dtype, "is_floating_point", False)):
                raise InvalidFrame(f"label_confidence must be a float image of shape {shape}, got "
                                   f"{confidence.dtype} {tuple(confidence.shape)}")
        if frame.label_probs is not None:
            probs = frame.label_probs
            if probs.ndim != 3 or tuple(probs.shape) != shape + (self.num_classes,):
                raise InvalidFrame(f"label_probs must have shape {shape + (self.num_classes,)}, got {tuple(probs.shape)}")
        if frame.instance_ids is not None:
            check_instance_image(frame.instance_ids, shape)
        frame.T_world_cam = validate_pose(frame.T_world_cam, "T_world_cam")

    def _to_tensor(self, array, dtype: torch.dtype | None = None) -> torch.Tensor:
        tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
        tensor = tensor.to(self.device, non_blocking=True)
        if dtype is not None and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor.contiguous()

    def _semantic_votes(self, frame: Frame) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(H, W, K) int64 class votes and (H, W, K) float32 strengths (None = 1) of a frame."""
        if frame.labels is not None:
            labels = self._to_tensor(frame.labels, torch.int64)[..., None]
            if frame.label_confidence is None:
                return labels, None
            confidence = self._to_tensor(frame.label_confidence, torch.float32)
            if not bool(torch.isfinite(confidence).all()):
                raise InvalidFrame("label_confidence has non-finite values")
            return labels, confidence.clamp(0.0, 1.0)[..., None].contiguous()
        if frame.label_probs is not None:
            labels, strengths = top2_votes(self._probabilities(frame))
            return labels.contiguous(), strengths.contiguous()
        return None, None

    def _probabilities(self, frame: Frame) -> torch.Tensor:
        """frame.label_probs as an (H, W, C) float32 or uint8 tensor on the map's device, a view
        of the caller's array where it can be (a class-major (C, H, W) array transposed to
        (H, W, C) stays class-major in memory; the kernels read it in place)."""
        probs = frame.label_probs
        if isinstance(probs, np.ndarray):
            if probs.dtype not in (np.float32, np.uint8):
                probs = probs.astype(np.float32)
            if any(stride < 0 for stride in probs.strides):
                probs = np.ascontiguousarray(probs)
            probs = torch.from_numpy(probs)
        elif probs.dtype not in (torch.float32, torch.uint8):
            probs = probs.to(torch.float32)
        return probs.to(self.device)

    def integrate(self, frame: Frame) -> dict[str, int]:
        """Fuse one RGB-D(-semantic) frame into the map.

        Raises InvalidFrame / InvalidPose (map unchanged) for a non-finite or non-rigid pose,
        images whose sizes disagree with the intrinsics, label ids out of range, or a depth
        image with no finite positive pixel. With ``config.free_space`` the frame's rays also
        mark the cells they cross in front of the measured surface in :attr:`free_space`.
        Returns counts: blocks allocated, blocks integrated.

        With a memory budget or clear radius (see :mod:`ssr_ros.map.residency`) the stored
        blocks within the frame's reach are read back first, and the budget / radius is applied
        after the frame is fused.
        """
        self._check_frame(frame)
        with cpu_threads(self.device, self.config.threads):
            if self.residency is None:
                result = self._integrate(frame)
            else:
                reach = self.residency.reach_box(frame.intrinsics, frame.T_world_cam)
                self.residency.ensure_resident(*reach)
                result = self._integrate(frame)
                self.residency.after_frame(np.asarray(frame.T_world_cam, dtype=np.float64)[:3, 3], reach)
        if frame.instance_ids is not None:
            self._integrate_instances(frame)
        return result

    def _integrate_instances(self, frame: Frame) -> None:
        if self.instances is None:
            self.instances = InstanceEvidence(self.voxel_size)
        depth = frame.depth.cpu().numpy() if isinstance(frame.depth, torch.Tensor) else frame.depth
        ids = frame.instance_ids.cpu().numpy() if isinstance(frame.instance_ids, torch.Tensor) else frame.instance_ids
        self.instances.integrate(depth, ids, frame.intrinsics, frame.T_world_cam, self.config.min_depth, self.config.max_depth)

    def _integrate(self, frame: Frame) -> dict[str, int]:
        cfg = self.config
        depth = self._to_tensor(frame.depth, torch.float32)
        rgb = self._to_tensor(frame.rgb, torch.uint8) if frame.rgb is not None else None
        proj = integration.Projection.from_pose(frame.intrinsics, frame.T_world_cam)
        proj_wc = integration.Projection.camera_to_world(frame.intrinsics, frame.T_world_cam)
        if self._native is not None and frame.depth_weight is None:  # per-pixel weights: the torch path
            # the kernel reads per-class probabilities in place, each voxel its pixel's top two
            probs = self._probabilities(frame) if frame.label_probs is not None else None
            sem_labels, sem_weights = self._semantic_votes(frame) if probs is None else (None, None)
            return self._integrate_native(frame, depth, rgb, sem_labels, sem_weights, proj, proj_wc, probs)
        sem_labels, sem_weights = self._semantic_votes(frame)
        clean, has_valid = integration.clean_depth(depth, cfg.min_depth, cfg.max_depth)
        if not has_valid:
            raise InvalidFrame("depth has no valid pixel (all zero, NaN or Inf)")
        touched = integration.touched_blocks(
            clean, proj_wc, cfg.truncation, cfg.block_extent, cfg.allocation_stride
        )
        check_coord_range(touched)
        with one_thread(self.device):
            seen_free = self._observe_free_space(clean, proj_wc)

        # --- from here on the map changes
        stamp = self.layer.next_stamp()
        previous = self.num_blocks
        slots, allocated = self.layer.allocate(touched, stamp)
        if cfg.space_carving and previous > 0:
            seen = integration.carving_blocks(
                self.blocks.block_coords[:previous], clean, proj, cfg.block_extent,
                cfg.min_depth, cfg.max_depth,
            )
            active = torch.zeros(self.num_blocks, dtype=torch.bool, device=self.device)
            active[slots] = True
            active[:previous] |= seen
            slots = torch.nonzero(active).squeeze(1)
        params = integration.FusionParams(
            cfg.voxel_size, cfg.block_size, cfg.truncation, cfg.max_weight,
            cfg.weighting == "inverse_square", cfg.semantic_max_weight, cfg.weight_dropoff,
        )
        depth_weight = self._to_tensor(frame.depth_weight, torch.float32) if frame.depth_weight is not None else None
        changed = integration.integrate_blocks(
            self.blocks, slots, clean, rgb, sem_labels, sem_weights, proj, params, depth_weight
        )
        self.blocks.block_stamp[slots[changed]] = stamp
        if seen_free is not None:
            with one_thread(self.device):
                self.free_space.mark(seen_free)
        self.frames_integrated += 1
        return {"blocks_allocated": allocated, "blocks_integrated": int(slots.numel())}

    def _integrate_native(self, frame, depth, rgb, sem_labels, sem_weights, proj, proj_wc, probs=None) -> dict[str, int]:
        """integrate() with the compiled kernels: allocation, hash insertion, carving and fusion
        in two calls, the same steps and arithmetic as the torch path."""
        cfg = self.config
        previous = self.num_blocks
        status, slots, new_coords, sorted_keys, sorted_slots = self._native.plan_frame(
            depth, proj_wc.flat(), proj.flat(), cfg.min_depth, cfg.max_depth, cfg.truncation,
            cfg.block_extent, cfg.allocation_stride, self.hash.sorted_keys, self.hash.sorted_slots,
            self.blocks.block_coords, previous, cfg.space_carving,
        )
        if status == 1:
            raise InvalidFrame("depth has no valid pixel (all zero, NaN or Inf)")
        if status == 2:
            check_coord_range(slots)  # raises, naming the range
        seen_free = None
        if self.free_space is not None:
            with one_thread(self.device):
                clean, _ = integration.clean_depth(depth, cfg.min_depth, cfg.max_depth)
                seen_free = self._observe_free_space(clean, proj_wc)

        # --- from here on the map changes
        stamp = self.layer.next_stamp()
        self.hash.load_state({"sorted_keys": sorted_keys, "sorted_slots": sorted_slots})
        if new_coords.shape[0]:
            self.blocks.add_blocks(new_coords, stamp)
        layers = self.blocks.layers
        self._native.integrate_blocks(
            layers["tsdf"], layers["weight"], layers["color"], layers["sem_label"], layers["sem_count"],
            self.blocks.block_coords, slots, depth, rgb, sem_labels, sem_weights, proj.flat(), proj.width,
            proj.height, cfg.min_depth, cfg.max_depth, cfg.voxel_size, cfg.block_size, cfg.truncation,
            cfg.max_weight, cfg.weighting == "inverse_square", cfg.semantic_max_weight, cfg.weight_dropoff,
            self.blocks.block_stamp, stamp, probs,
        )
        if seen_free is not None:
            with one_thread(self.device):
                self.free_space.mark(seen_free)
        self.frames_integrated += 1
        return {"blocks_allocated": int(new_coords.shape[0]), "blocks_integrated": int(slots.numel())}

    def _observe_free_space(self, clean: torch.Tensor, proj_wc: integration.Projection):
        """The cells this frame sees free (layer unchanged until ``mark``), or None if disabled."""
        if self.free_space is None:
            return None
        return self.free_space.observe(clean, proj_wc, self.config.truncation, self.config.min_depth)

    # ------------------------------------------------------------------ dirty tracking
    def allocated_block_coords(self) -> torch.Tensor:
        """(N, 3) int64 coordinates of all allocated blocks, in slot order."""
        return self.layer.block_coords().clone()

    def changed_blocks(self, since: int = 0) -> torch.Tensor:
        """(K, 3) int64 coordinates of blocks modified after update counter ``since``.

        ``update_counter`` grows by one with each integrate / write_predictions call; keep the
        value you saw and pass it next time to get what changed in between.
        """
        return self.layer.changed_blocks(since)

    # ------------------------------------------------------------------ chunks
    def _ensure_chunk_resident(self, origin_voxel, size) -> None:
        if self.residency is not None:
            lo = np.asarray(torch.as_tensor(origin_voxel).reshape(-1).tolist(), dtype=np.int64)
            self.residency.ensure_resident(lo, lo + np.asarray([int(n) for n in size]) - 1)

    def extract_chunk(self, origin_voxel, size) -> DenseChunk:
        """Dense copy of a box of voxels; see :func:`ssr_ros.map.chunk_io.extract_chunk`."""
        self._ensure_chunk_resident(origin_voxel, size)
        return chunk_io.extract_chunk(self.layer, origin_voxel, size)

    def chunk_snapshot(self, origin_voxel, size) -> VoxelLayer:
        """A copy of what :meth:`extract_chunk` reads for this box (its blocks and seen-free
        cells; see :meth:`VoxelLayer.box_snapshot`): ``chunk_io.extract_chunk(copy, origin_voxel,
        size)`` equals ``extract_chunk(origin_voxel, size)`` of this moment, and can run while the
        map goes on changing."""
        self._ensure_chunk_resident(origin_voxel, size)
        return self.layer.box_snapshot(origin_voxel, size)

    def write_predictions(
        self,
        origin_voxel,
        tsdf: torch.Tensor,
        color: torch.Tensor | None = None,
        semantics_probs: torch.Tensor | None = None,
        confidence: torch.Tensor | None = None,
    ) -> int:
        """Write the network's output for a chunk into the predicted layer; returns the voxels
        written. See :func:`ssr_ros.map.chunk_io.write_predictions`."""
        self._ensure_chunk_resident(origin_voxel, tuple(torch.as_tensor(tsdf).shape))
        return chunk_io.write_predictions(self.layer, origin_voxel, tsdf, color, semantics_probs, confidence)

    def clear_predictions(self, voxels: torch.Tensor) -> int:
        """Return predicted voxels (N, 3 global indices) to unknown; returns how many were.
        See :func:`ssr_ros.map.chunk_io.clear_predictions`."""
        voxels = torch.as_tensor(voxels, dtype=torch.int64).reshape(-1, 3)
        if len(voxels):
            lo = voxels.min(dim=0).values
            self._ensure_chunk_resident(lo, tuple(int(n) for n in (voxels.max(dim=0).values - lo + 1)))
        return chunk_io.clear_predictions(self.layer, voxels)

    # ------------------------------------------------------------------ queries / rendering
    def query(self, points: torch.Tensor, include_predicted: bool = True) -> dict[str, torch.Tensor]:
        """Map values at world points (N, 3) metres; see :func:`ssr_ros.map.rendering.query_points`."""
        from ssr_ros.map.rendering import query_points

        return query_points(self.layer, points, include_predicted)

    def raycast(self, intrinsics: CameraIntrinsics, T_world_cam, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Render depth, color, label, confidence, normal images; see :func:`ssr_ros.map.rendering.raycast`."""
        from ssr_ros.map.rendering import raycast

        return raycast(self.layer, intrinsics, T_world_cam, **kwargs)

    # ------------------------------------------------------------------ meshing
    def update_mesh(self, include_predicted: bool = True):
        """Re-mesh the blocks changed since the last call; returns a :class:`MeshUpdate`."""
        return self._mesher.update(include_predicted)

    def prepare_mesh_update(self, include_predicted: bool = True):
        """First half of :meth:`update_mesh`: copy what changed (reads the map; hold its lock)."""
        return self._mesher.prepare(include_predicted)

    def finish_mesh_update(self, snapshot):
        """Second half of :meth:`update_mesh`: mesh the copy (the map may change meanwhile)."""
        return self._mesher.finish(snapshot)

    def mesh(self, include_predicted: bool = True):
        """The full current mesh (all blocks, concatenated) as a :class:`BlockMesh` with index None."""
        self._mesher.update(include_predicted)
        return self._mesher.full_mesh()

    def block_meshes(self) -> list:
        """The per-block meshes as of the last ``update_mesh`` call, sorted by block index."""
        return [self._mesher.meshes[k] for k in sorted(self._mesher.meshes)]

    # ------------------------------------------------------------------ memory and disk
    def complete_layer(self) -> VoxelLayer:
        """Every block of the map, in memory and on disk (see :meth:`Residency.complete_layer`)."""
        return self.layer if self.residency is None else self.residency.complete_layer()

    def region_layer(self, lo, hi) -> VoxelLayer:
        """The blocks and seen-free blocks intersecting the box [lo, hi] (metres, map frame),
        read from memory and from the block store, as a new :class:`VoxelLayer` (the map's
        residency is unchanged); feed it to the export and meshing functions."""
        lo_voxel = np.floor(np.asarray(lo, dtype=np.float64) / self.voxel_size).astype(np.int64)
        hi_voxel = np.floor(np.asarray(hi, dtype=np.float64) / self.voxel_size).astype(np.int64)
        if lo_voxel.shape != (3,) or hi_voxel.shape != (3,) or (hi_voxel < lo_voxel).any():
            raise InvalidInput(f"region must be two corners lo <= hi of 3 numbers each, got {lo} and {hi}")
        if self.residency is None:
            from ssr_ros.map.residency import Residency

            return Residency(self.layer).region_layer(lo_voxel, hi_voxel)
        return self.residency.region_layer(lo_voxel, hi_voxel)

    def close(self) -> None:
        """Delete the block store's files (a temporary store's directory too)."""
        if self.residency is not None:
            self.residency.reset()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole map atomically (temp file + rename); see :mod:`ssr_ros.map.map_file`."""
        from ssr_ros.map.map_file import save_map

        save_map(self, path)

    def copy(self, device: str | torch.device | None = None) -> "SemanticTSDF":
        """An independent copy of the whole map, as :meth:`save` then :meth:`load` would give,
        without a file. Blocks evicted to the block store are read back: the copy holds them all
        and has no memory budget or block store (it never shares this map's files)."""
        from ssr_ros.map.map_file import map_from_state, map_state

        header, arrays = map_state(self)
        arrays = {name: np.array(array, copy=True) for name, array in arrays.items()}
        return map_from_state(type(self), header, arrays, self.device if device is None else device,
                              overrides={"memory_budget_mb": 0.0, "clear_radius_m": 0.0, "block_store_dir": ""})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", backend: str | None = None,
             overrides: dict | None = None) -> "SemanticTSDF":
        """Read a map written by :meth:`save`; foreign or corrupt files raise MapFileError."""
        from ssr_ros.map.map_file import load_map

        return load_map(cls, path, device, backend, overrides)

    # ------------------------------------------------------------------ bookkeeping
    def reset(self) -> None:
        """Forget every voxel, every seen-free cell and the instance evidence; the next ``update_mesh``
        reports all meshed blocks as vanished."""
        self.layer.clear()
        self.instances = None
        self.layer.next_stamp()
        if self.residency is not None:
            self.residency.reset()
        self.frames_integrated = 0
        self._mesher.on_reset()

    def memory_bytes(self) -> int:
        """Bytes used by the allocated blocks (voxel payload + block bookkeeping); the free-space
        layer is counted apart (``stats()["free_space_bytes"]``)."""
        return self.layer.voxel_bytes()

    def bytes_per_voxel(self) -> float:
        """memory_bytes() per allocated voxel (15 B payload + per-block overhead)."""
        voxels = self.num_blocks * self.blocks.voxels_per_block
        if voxels == 0:
            return self.blocks.bytes_per_block() / self.blocks.voxels_per_block
        return self.memory_bytes() / voxels

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for logs and diagnostics."""
        return self.finish_stats(self.prepare_stats())

    def prepare_stats(self) -> dict[str, Any]:
        """First half of :meth:`stats`: the counters, and copies of the two per-voxel arrays the
        voxel counts need (a memory copy; hold the map's lock). :meth:`finish_stats` counts them
        without the lock: scanning every voxel of a large map takes long enough to hold up fusion."""
        return {
            "weight": self.blocks.used("weight").clone(),
            "free_hits": self.free_space.hits_snapshot() if self.free_space is not None else None,
            "num_blocks": self.num_blocks,
            "num_voxels": self.num_blocks * self.blocks.voxels_per_block,
            "memory_bytes": self.memory_bytes(),
            "reserved_bytes": self.blocks.reserved_bytes(),
            "bytes_per_voxel": self.bytes_per_voxel(),
            "free_space_bytes": self.free_space.memory_bytes() if self.free_space is not None else 0,
            "map_bytes": self.layer.memory_bytes(),
            "instance_voxels": self.instances.num_voxels if self.instances is not None else 0,
            "instance_bytes": self.instances.memory_bytes() if self.instances is not None else 0,
            **(self.residency.stats() if self.residency is not None else {}),
            "frames_integrated": self.frames_integrated,
            "update_counter": self.update_counter,
            "voxel_size": self.voxel_size,
            "truncation": self.truncation,
            "backend": self.backend,
            "device": str(self.device),
        }

    def finish_stats(self, prepared: dict[str, Any]) -> dict[str, Any]:
        """Second half of :meth:`stats`: the voxel counts of a :meth:`prepare_stats` copy (does not read the map)."""
        stats = dict(prepared)
        weight, hits = stats.pop("weight").to(torch.float32), stats.pop("free_hits")
        # count_nonzero, not sum: summing a bool mask goes through int64 and took ~5x as long (5 M voxels: 24 ms)
        stats["observed_voxels"] = int(torch.count_nonzero(self.layer.observed(weight)))
        stats["predicted_voxels"] = int(torch.count_nonzero(self.layer.predicted(weight)))
        stats["free_cells"] = self.free_space.count_free_cells(hits) if hits is not None else 0
        return stats


def read_map(path: str | Path, device="cpu", taxonomy=None, backend: str | None = None, overrides: dict | None = None):
    """Open a saved map for use: ``path`` is a map file or a directory holding ``map.ssrmap``.

    Checks everything :func:`ssr_ros.map.map_file.load_map` checks (magic, version, header and array checksums,
    config ranges) and, given ``taxonomy`` (a ClassTaxonomy), that the map's class count is the
    taxonomy's. Returns a SemanticTSDF on ``device``; raises MapFileError naming the problem.
    """
    from ssr_ros.errors import MapFileError
    from ssr_ros.map.map_file import MAP_FILE, load_map

    path = Path(path)
    if path.is_dir():
        path = path / MAP_FILE
    tsdf_map = load_map(SemanticTSDF, path, device, backend, overrides)
    if taxonomy is not None and tsdf_map.num_classes != taxonomy.num_classes:
        raise MapFileError(
            f"map '{path}' has {tsdf_map.num_classes} classes but the taxonomy '{taxonomy.name}' has "
            f"{taxonomy.num_classes}; use the taxonomy the map was made with"
        )
    return tsdf_map
