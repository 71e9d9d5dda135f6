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
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import validate_pose
from ssr_ros.map import integration
from ssr_ros.map.block_hash import BlockHash, check_coord_range, pack_block_keys, unpack_block_keys
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.free_space import FreeSpaceLayer
from ssr_ros.map.semantic_evidence import evidence_to_probs, top2_votes
from ssr_ros.map.voxel_access import locate_voxels, read_voxels
from ssr_ros.map.voxel_blocks import VoxelBlocks

PREDICTED_WEIGHT = -1.0
"""Stored weight of a voxel written by the completion network (the sign marks 'predicted')."""


class SemanticTSDF:
    """Block-sparse TSDF with color and compact semantic evidence, on one torch device."""

    def __init__(
        self, config: TSDFConfig | None = None, num_classes: int = 21, device: str | torch.device = "cpu"
    ) -> None:
        self.config = (config or TSDFConfig()).validate()
        if not 1 <= int(num_classes) <= 255:
            raise InvalidInput(f"num_classes={num_classes} must be in [1, 255] (labels are stored as uint8)")
        self.num_classes = int(num_classes)
        self.device = torch.device(device)
        self.hash = BlockHash(self.device)
        self.blocks = VoxelBlocks(self.config.block_size, self.device)
        self.free_space = (
            FreeSpaceLayer(
                self.config.voxel_size, self.config.free_space_cell_voxels,
                self.config.free_space_pixel_stride, device=self.device,
            )
            if self.config.free_space
            else None
        )
        """The seen-free layer (:class:`~ssr_ros.map.free_space.FreeSpaceLayer`), None when
        ``config.free_space`` is off."""
        self.update_counter = 0
        self.frames_integrated = 0
        self._native = self._select_native()
        from ssr_ros.map.meshing import IncrementalMesher

        self._mesher = IncrementalMesher(self)

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
        """
        self._check_frame(frame)
        cfg = self.config
        depth = self._to_tensor(frame.depth, torch.float32)
        rgb = self._to_tensor(frame.rgb, torch.uint8) if frame.rgb is not None else None
        proj = integration.Projection.from_pose(frame.intrinsics, frame.T_world_cam)
        proj_wc = integration.Projection.camera_to_world(frame.intrinsics, frame.T_world_cam)
        if self._native is not None:
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
        seen_free = self._observe_free_space(clean, proj_wc)

        # --- from here on the map changes
        self.update_counter += 1
        stamp = self.update_counter
        previous = self.num_blocks
        slots, new_keys = self.hash.insert_keys(pack_block_keys(touched))
        if new_keys.numel():
            self.blocks.add_blocks(unpack_block_keys(new_keys), stamp)
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
        changed = integration.integrate_blocks(
            self.blocks, slots, clean, rgb, sem_labels, sem_weights, proj, params
        )
        self.blocks.block_stamp[slots[changed]] = stamp
        if seen_free is not None:
            self.free_space.mark(seen_free)
        self.frames_integrated += 1
        return {"blocks_allocated": int(new_keys.numel()), "blocks_integrated": int(slots.numel())}

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
            clean, _ = integration.clean_depth(depth, cfg.min_depth, cfg.max_depth)
            seen_free = self._observe_free_space(clean, proj_wc)

        # --- from here on the map changes
        self.update_counter += 1
        stamp = self.update_counter
        self.hash.sorted_keys, self.hash.sorted_slots = sorted_keys, sorted_slots
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
        return self.blocks.block_coords[: self.num_blocks].clone()

    def changed_blocks(self, since: int = 0) -> torch.Tensor:
        """(K, 3) int64 coordinates of blocks modified after update counter ``since``.

        ``update_counter`` grows by one with each integrate / write_predictions call; keep the
        value you saw and pass it next time to get what changed in between.
        """
        stamps = self.blocks.block_stamp[: self.num_blocks]
        return self.blocks.block_coords[: self.num_blocks][stamps > since].clone()

    # ------------------------------------------------------------------ chunks
    def _chunk_voxels(self, origin_voxel, size) -> tuple[torch.Tensor, tuple[int, int, int]]:
        origin = torch.as_tensor(origin_voxel, dtype=torch.int64, device=self.device).reshape(-1)
        if origin.numel() != 3:
            raise InvalidInput(f"origin_voxel must have 3 entries, got {origin.tolist()}")
        size = tuple(int(n) for n in size)
        if len(size) != 3 or min(size) <= 0:
            raise InvalidInput(f"chunk size must be 3 positive integers, got {size}")
        axes = [torch.arange(n, device=self.device) for n in size]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        return grid + origin, size

    def extract_chunk(self, origin_voxel, size) -> DenseChunk:
        """Dense copy of the box of ``size = (X, Y, Z)`` voxels starting at ``origin_voxel``.

        Follows :class:`~ssr_ros.map.chunk.DenseChunk`: fused values only (tsdf = +truncation,
        weight 0, color 0, semantics 0 where nothing was fused); what the network wrote earlier
        is in ``predicted`` and the ``predicted_*`` fields; ``free`` marks the voxels not
        observed by fusion whose cell the free-space layer saw free (None when it is off).
        """
        voxels, size = self._chunk_voxels(origin_voxel, size)
        values = read_voxels(self.hash, self.blocks, voxels)
        trunc = self.truncation
        weight_stored = values["weight"]
        fused = weight_stored > 0
        predicted = weight_stored < 0
        tsdf = torch.where(fused, values["tsdf"] * trunc, torch.full_like(weight_stored, trunc))
        color = values["color"].to(torch.float32) / 255.0
        semantics = evidence_to_probs(values["labels"], values["counts"], self.num_classes)
        semantics = torch.where(predicted[:, None], torch.zeros_like(semantics), semantics)
        nan = torch.full_like(weight_stored, float("nan"))
        shape = size
        observed = self._observed(weight_stored)
        free = None
        if self.free_space is not None:
            free = (self.free_space.query(voxels) & ~observed).reshape(shape)
        return DenseChunk(
            origin_voxel=voxels[0].clone() if voxels.shape[0] else torch.zeros(3, dtype=torch.int64),
            voxel_size=self.voxel_size,
            truncation=trunc,
            tsdf=tsdf.reshape(shape),
            weight=weight_stored.clamp(min=0.0).reshape(shape),
            observed=observed.reshape(shape),
            color=torch.where(fused[:, None], color, torch.zeros_like(color)).reshape(shape + (3,)),
            semantics=semantics.reshape(shape + (self.num_classes,)),
            predicted=predicted.reshape(shape),
            predicted_tsdf=torch.where(predicted, values["tsdf"] * trunc, nan).reshape(shape),
            predicted_color=torch.where(predicted[:, None], color, torch.zeros_like(color)).reshape(shape + (3,)),
            predicted_label=torch.where(predicted, values["label"], torch.zeros_like(values["label"])).reshape(shape),
            predicted_confidence=torch.where(predicted, values["confidence"], torch.zeros_like(nan)).reshape(shape),
            free=free,
        )

    def _observed(self, weight_stored: torch.Tensor) -> torch.Tensor:
        threshold = self.config.observed_min_weight
        if threshold <= 0:
            return weight_stored > 0
        return weight_stored >= threshold

    def write_predictions(
        self,
        origin_voxel,
        tsdf: torch.Tensor,
        color: torch.Tensor | None = None,
        semantics_probs: torch.Tensor | None = None,
        confidence: torch.Tensor | None = None,
    ) -> int:
        """Write the network's output for a chunk into the predicted layer.

        tsdf: (X, Y, Z) metres (NaN = no prediction for that voxel); color: (X, Y, Z, 3) in
        [0, 1] or None; semantics_probs: (X, Y, Z, N) class probabilities or None; confidence:
        (X, Y, Z) in [0, 1] or None (then the top probability). Observed voxels are never
        touched; unobserved ones (including voxels with some fused weight below
        ``observed_min_weight``) take the prediction and the ``predicted`` flag. A voxel a
        camera saw free (see :attr:`free_space`) never takes a predicted surface: where its
        predicted tsdf is below +truncation (surface or inside) it is left as it is, and no
        block is allocated for it. Blocks are allocated where the accepted prediction has a
        surface (|tsdf| < truncation). Returns the number of voxels written.
        """
        tsdf = torch.as_tensor(tsdf, device=self.device, dtype=torch.float32)
        if tsdf.dim() != 3:
            raise InvalidInput(f"tsdf must be (X, Y, Z), got shape {tuple(tsdf.shape)}")
        size = tuple(tsdf.shape)
        if color is not None:
            color = torch.as_tensor(color, device=self.device, dtype=torch.float32)
            if tuple(color.shape) != size + (3,):
                raise InvalidInput(f"color must have shape {size + (3,)}, got {tuple(color.shape)}")
        if semantics_probs is not None:
            semantics_probs = torch.as_tensor(semantics_probs, device=self.device, dtype=torch.float32)
            if tuple(semantics_probs.shape) != size + (self.num_classes,):
                raise InvalidInput(
                    f"semantics_probs must have shape {size + (self.num_classes,)}, got {tuple(semantics_probs.shape)}"
                )
        if confidence is not None:
            confidence = torch.as_tensor(confidence, device=self.device, dtype=torch.float32)
            if tuple(confidence.shape) != size:
                raise InvalidInput(f"confidence must have shape {size}, got {tuple(confidence.shape)}")
        voxels, _ = self._chunk_voxels(origin_voxel, size)
        flat_tsdf = tsdf.reshape(-1)
        valid = torch.isfinite(flat_tsdf)
        trunc = self.truncation
        if self.free_space is not None and self.free_space.num_blocks:
            valid &= ~(self.free_space.query(voxels) & (flat_tsdf < trunc))
        B = self.block_size
        surface = valid & (flat_tsdf.abs() < trunc)
        self.update_counter += 1
        stamp = self.update_counter
        if bool(surface.any()):
            need = torch.unique(torch.div(voxels[surface], B, rounding_mode="floor"), dim=0)
            check_coord_range(need)
            _, new_keys = self.hash.insert_keys(pack_block_keys(need))
            if new_keys.numel():
                from ssr_ros.map.block_hash import unpack_block_keys

                self.blocks.add_blocks(unpack_block_keys(new_keys), stamp)
        slot, local = locate_voxels(self.hash, B, voxels)
        weight_stored = self.blocks.weight[slot.clamp(min=0), local].to(torch.float32)
        write = valid & (slot >= 0) & ~self._observed(weight_stored)
        idx = torch.nonzero(write).squeeze(1)
        if idx.numel() == 0:
            return 0
        s, l = slot[idx], local[idx]
        self.blocks.tsdf[s, l] = (flat_tsdf[idx] / trunc).clamp(-1.0, 1.0).to(torch.float16)
        self.blocks.weight[s, l] = PREDICTED_WEIGHT
        if color is not None:
            rgb = torch.round(color.reshape(-1, 3)[idx].clamp(0.0, 1.0) * 255.0).to(torch.uint8)
            self.blocks.color[s, l] = rgb
        if semantics_probs is not None:
            probs = semantics_probs.reshape(-1, self.num_classes)[idx]
            top = torch.topk(probs, k=min(2, self.num_classes), dim=-1)
            p1 = top.values[:, 0].clamp(0.0, 1.0)
            p2 = top.values[:, 1].clamp(0.0, 1.0) if self.num_classes > 1 else torch.zeros_like(p1)
            l2 = top.indices[:, 1] if self.num_classes > 1 else torch.zeros_like(top.indices[:, 0])
            c1 = confidence.reshape(-1)[idx].clamp(0.0, 1.0) if confidence is not None else p1
            c2 = torch.minimum(p2, 1.0 - c1)
            self.blocks.sem_label[s, l] = torch.stack([top.indices[:, 0], l2], dim=1).to(torch.uint8)
            self.blocks.sem_count[s, l] = torch.stack([c1, c2, torch.ones_like(c1)], dim=1).to(torch.float16)
        else:
            self.blocks.sem_count[s, l] = 0.0
        self.blocks.block_stamp[torch.unique(s)] = stamp
        return int(idx.numel())

    # ------------------------------------------------------------------ queries / rendering
    def query(self, points: torch.Tensor, include_predicted: bool = True) -> dict[str, torch.Tensor]:
        """Map values at world points (N, 3) metres; see :func:`ssr_ros.map.rendering.query_points`."""
        from ssr_ros.map.rendering import query_points

        return query_points(self, points, include_predicted)

    def raycast(self, intrinsics: CameraIntrinsics, T_world_cam, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Render depth, color, label, confidence, normal images; see :func:`ssr_ros.map.rendering.raycast`."""
        from ssr_ros.map.rendering import raycast

        return raycast(self, intrinsics, T_world_cam, **kwargs)

    # ------------------------------------------------------------------ meshing
    def update_mesh(self, include_predicted: bool = True):
        """Re-mesh the blocks changed since the last call; returns a :class:`MeshUpdate`."""
        return self._mesher.update(include_predicted)

    def mesh(self, include_predicted: bool = True):
        """The full current mesh (all blocks, concatenated) as a :class:`BlockMesh` with index None."""
        self._mesher.update(include_predicted)
        return self._mesher.full_mesh()

    def block_meshes(self) -> list:
        """The per-block meshes as of the last ``update_mesh`` call, sorted by block index."""
        return [self._mesher.meshes[k] for k in sorted(self._mesher.meshes)]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole map atomically (temp file + rename); see :mod:`ssr_ros.map.map_file`."""
        from ssr_ros.map.map_file import save_map

        save_map(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", backend: str | None = None) -> "SemanticTSDF":
        """Read a map written by :meth:`save`; foreign or corrupt files raise MapFileError."""
        from ssr_ros.map.map_file import load_map

        return load_map(cls, path, device, backend)

    # ------------------------------------------------------------------ bookkeeping
    def reset(self) -> None:
        """Forget every voxel and every seen-free cell; the next ``update_mesh`` reports all meshed blocks as vanished."""
        self.hash.clear()
        self.blocks.clear()
        if self.free_space is not None:
            self.free_space.reset()
        self.update_counter += 1
        self.frames_integrated = 0
        self._mesher.on_reset()

    def memory_bytes(self) -> int:
        """Bytes used by the allocated blocks (voxel payload + block bookkeeping); the free-space
        layer is counted apart (``stats()["free_space_bytes"]``)."""
        return self.blocks.used_bytes()

    def bytes_per_voxel(self) -> float:
        """memory_bytes() per allocated voxel (15 B payload + per-block overhead)."""
        voxels = self.num_blocks * self.blocks.voxels_per_block
        if voxels == 0:
            return float(self.blocks.bytes_per_voxel_payload() + 48 / self.blocks.voxels_per_block)
        return self.memory_bytes() / voxels

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for logs and diagnostics."""
        weight = self.blocks.used("weight").to(torch.float32)
        return {
            "num_blocks": self.num_blocks,
            "num_voxels": self.num_blocks * self.blocks.voxels_per_block,
            "observed_voxels": int(self._observed(weight).sum()),
            "predicted_voxels": int((weight < 0).sum()),
            "memory_bytes": self.memory_bytes(),
            "reserved_bytes": self.blocks.reserved_bytes(),
            "bytes_per_voxel": self.bytes_per_voxel(),
            "free_cells": self.free_space.num_free_cells() if self.free_space is not None else 0,
            "free_space_bytes": self.free_space.memory_bytes() if self.free_space is not None else 0,
            "frames_integrated": self.frames_integrated,
            "update_counter": self.update_counter,
            "voxel_size": self.voxel_size,
            "truncation": self.truncation,
            "backend": self.backend,
            "device": str(self.device),
        }
